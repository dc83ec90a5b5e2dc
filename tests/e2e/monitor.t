#!/bin/bash
# Per-container observability, end to end with runc: TCP health from sockops (opens,
# failures, resets, retransmissions, RTT), kernel drop reasons, flow and denial events, and
# event loss when nobody reads the ring. Real containers, real traffic between the
# container and a peer network namespace this test creates.
#
#   prove -v tests/e2e/monitor.t        (root; `make test-build` first)

# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/runc.sh
. "$E2E_LIB/runc.sh"

e2e_init
require_weir
require_cmd python3 nft ss nsenter
runc_init

peer_create "$E2E_PREFIX"
peer_server "$E2E_TMP/peer-tcp8080.log" tcp-server 8080
A4=$PEER_A4
B4=$PEER_B4

cw() {
	local name=$1
	shift
	wrun runc_exec "$name" /bin/wtool "$@"
}

start() {
	local name=$1
	runc_bundle "$@"
	if runc_start "$name"; then
		pass "$name: container starts"
	else
		fail "$name: container starts"
		diag_block "runc stderr" "$(runc_err "$name")"
	fi
}

# flows_json ID: every recent event of ID, one JSON object a line.
flows_json() {
	"$WEIR" flows --json "$1" 2>/dev/null || true
}

node() { "$WEIR" status --json | jq -r ".$1 // 0"; }

# In the container's cgroup and network namespace, run python3 from the host: for the few
# checks that need a socket held open (RTT) or tens of thousands of syscalls.
in_ctr() {
	local name=$1 pid cg
	shift
	pid=$(runc_pid "$name")
	cg=$(runc_cgroup "$name")
	sh -c "echo \$\$ > '$cg/cgroup.procs' && exec nsenter --net=/proc/$pid/ns/net \"\$@\"" sh "$@"
}

# ---- a container with monitor.weir.io=flows ----------------------------------------------
start mon 1 --egress "allow $A4/32 tcp; allow fd78::/16" --ann monitor.weir.io=flows -- sleep 1000
ID=$(runc_id mon)
wait_quiet "$ID" || true

# ---- failed connect, reset received --------------------------------------------------------
before=$(weir_snapshot "$ID")
cw mon connect "$A4" 9 2000
is "$W_OUT" ECONNREFUSED "connect to a closed port is refused"
after=$(weir_snapshot "$ID")
is "$(stats_delta "$before" "$after" .tcp.failed_connects)" 1 "one failed connect counted"
is "$(stats_delta "$before" "$after" .tcp.resets_received)" 1 "one reset received counted"
is "$(stats_delta "$before" "$after" .tcp.active_opens)" 0 "no connection counted as opened"

# ---- a flow's bytes, its open and its connect latency ------------------------------------------
before=$after
cw mon tcp-send "$A4" 8080 250000 5000
wlike '^ok' "tcp-send of 250000 bytes to the peer"
after=$(retry 5 weir_snapshot "$ID")
is "$(stats_delta "$before" "$after" .tcp.active_opens)" 1 "one active open counted"
is "$(stats_delta "$before" "$after" .tcp.connect_latency_us.count)" 1 \
	"one connect latency sample in the histogram"
flow=""
for _ in $(seq 20); do
	flow=$(flows_json "$ID" | jq -c 'select(.type == "flow" and .remote_port == 8080)' | tail -n1)
	[ -n "$flow" ] && break
	sleep 0.2
done
is "$(jq -r '.bytes_out // "none"' <<<"${flow:-null}")" 250000 \
	"the flow reports the 250000 payload bytes the container sent"
reply="received 250000"
is "$(jq -r '.bytes_in // "none"' <<<"${flow:-null}")" "$((${#reply} + 1))" \
	"and the bytes of the server's reply line it received"
is "$(jq -r '.verdict // "none"' <<<"${flow:-null}")" allowed "its verdict is allowed"

# ---- a denial is reported once per flow ------------------------------------------------------------
before=$(weir_snapshot "$ID")
cw mon udp-send "$B4" 7777 5 100
like "$W_OUT" EPERM "UDP to a denied peer fails with EPERM"
after=$(weir_snapshot "$ID")
sent=$(stats_delta "$before" "$after" .egress.denied_connects)
cmp_num "$sent" -ge 1 "the denied sends are counted ($sent)"
n=$(flows_json "$ID" | jq -c "select(.type == \"denied\" and .remote_port == 7777)" | wc -l)
is "$n" 1 "exactly one denial event for the flow, however many sends"

# ---- retransmissions: none on a clean path, some on a lossy one ------------------------------------
# A loaded machine can stall the receiver past the tail-loss-probe timeout, and the kernel then
# really retransmits: up to three tries for a transfer without any.
clean=""
for try in 1 2 3; do
	before=$(weir_snapshot "$ID")
	cw mon tcp-send "$A4" 8080 4000000 10000
	after=$(weir_snapshot "$ID")
	clean=$(stats_delta "$before" "$after" .tcp.retransmits)
	[ "$clean" = 0 ] && break
	diag "try $try: $clean retransmissions on the clean path (a stalled receiver?)"
done
wlike '^ok' "4 MB over a clean path"
is "$clean" 0 "no retransmission on a clean path"

peer_exec nft -f - <<'NFT'
table inet weirloss {
	chain in {
		type filter hook input priority 0;
		tcp dport 8080 numgen random mod 10 == 0 drop
	}
}
NFT
on_exit peer_exec nft delete table inet weirloss
before=$after
cw mon tcp-send "$A4" 8080 4000000 30000
wlike '^ok' "4 MB over a path that drops one packet in ten"
after=$(weir_snapshot "$ID")
rt=$(stats_delta "$before" "$after" .tcp.retransmits)
cmp_num "$rt" -gt 0 "retransmissions counted on the lossy path ($rt)"
peer_exec nft delete table inet weirloss

# ---- RTT agrees with the kernel's own view (ss -ti) ------------------------------------------------
cat >"$E2E_TMP/rtt.py" <<'PY'
import socket, subprocess, sys, time
addr, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((addr, port))
for _ in range(50):
    s.sendall(b"x" * 20000)
    time.sleep(0.01)
time.sleep(0.5)  # quiet: no new RTT sample before the two readings
out = subprocess.run(["ss", "-tin", "dst", addr, "dport", "=", str(port)],
                     capture_output=True, text=True).stdout
print(out.strip().replace("\n", " "))
s.close()
PY
ssout=$(in_ctr mon python3 "$E2E_TMP/rtt.py" "$A4" 8080 2>&1 || true)
ss_us=$(sed -n 's/.* rtt:\([0-9.]*\)\/.*/\1/p' <<<"$ssout" | awk '{ printf "%d", $1 * 1000 }')
flow=""
for _ in $(seq 20); do
	flow=$(flows_json "$ID" | jq -c 'select(.type == "flow" and .bytes_out == 1000000)' | tail -n1)
	[ -n "$flow" ] && break
	sleep 0.2
done
ours=$(jq -r '.srtt_us // empty' <<<"${flow:-null}")
if [ -n "$ss_us" ] && [ -n "$ours" ] &&
	awk -v a="$ss_us" -v b="$ours" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.25 * a + 50) }'; then
	pass "the flow's smoothed RTT ($ours us) agrees with ss -ti ($ss_us us) within 25% + 50 us"
else
	fail "the flow's smoothed RTT agrees with ss -ti" "ss: '${ss_us}' us ($ssout)" "weir: '${ours}' us"
fi
hist=$(weir_snapshot "$ID" | jq -r '.tcp.srtt_us.count // 0')
cmp_num "$hist" -gt 0 "RTT samples are in the histogram ($hist)"

# ---- kernel drop reasons of the container's packets ------------------------------------------------
before=$(weir_snapshot "$ID")
pid=$(runc_pid mon)
peer_exec python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(20):
    s.sendto(b'z' * 10, ('10.200.1.2', 9999))
"
sleep 0.3
after=$(weir_snapshot "$ID")
d=$(stats_delta "$before" "$after" '.kernel_drops.NO_SOCKET')
if [ "$(node kernel_drop_reasons)" = true ]; then
	is "$d" 20 "20 datagrams to a closed port count as kernel drops NO_SOCKET"
else
	skip "kernel drop reasons unavailable on this kernel (no BTF or tp_btf refused)"
fi

# ---- event loss is counted when nobody reads the ring ----------------------------------------------
cat >"$E2E_TMP/burst.py" <<'PY'
import errno, socket, sys
addr, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
denied = 0
for port in range(10001, 10001 + n):  # ports no earlier check was denied on
    try:
        s.sendto(b"x", (addr, port))
    except PermissionError:
        denied += 1
print(denied)
PY
lost0=$(node events_lost)
sent0=$(node events_sent)
denied=$(in_ctr mon python3 "$E2E_TMP/burst.py" "$B4" 45000)
is "$denied" 45000 "45000 sends to distinct denied ports all fail with EPERM"
lost1=$(node events_lost)
sent1=$(node events_sent)
cmp_num "$((lost1 - lost0))" -gt 0 "with no reader the ring overflows and the loss is counted ($((lost1 - lost0)))"
cmp_num "$(((lost1 - lost0) + (sent1 - sent0)))" -ge 45000 "every denial event is either delivered or counted as lost"
like "$("$WEIR" status)" "events: +[0-9]+ delivered, $lost1 lost" "weir status reports the loss"

# a reader drains the ring; new events are delivered again
"$WEIR" flows --follow --json "$ID" >"$E2E_TMP/follow.out" 2>&1 &
follower=$!
on_exit kill "$follower"
sleep 1
lost2=$(node events_lost)
cw mon udp-send "$B4" 6001 1 10
sleep 1
grep -q '"remote_port":6001' "$E2E_TMP/follow.out" && pass "a live reader gets new events again" ||
	fail "a live reader gets new events again" "$(tail -n3 "$E2E_TMP/follow.out")"
is "$(node events_lost)" "$lost2" "no event lost while the reader keeps up"
kill "$follower" 2>/dev/null || true

# ---- monitor.weir.io=off attaches no sockops ------------------------------------------------------
start quiet 2 --egress "allow any" --ann monitor.weir.io=off -- sleep 1000
progs=$(cgroup_progs "$(runc_cgroup quiet)")
unlike "$progs" sock_ops "monitor off: no sockops program on the cgroup"
cw quiet tcp-send "$A4" 8080 1000 5000
q=$(weir_snapshot "$(runc_id quiet)")
is "$(jq -r '.tcp.active_opens' <<<"$q")" 0 "monitor off: no TCP health counted"
is "$(jq -r '.egress.tcp.packets > 0' <<<"$q")" true "monitor off: packet counters still count"

runc_stop quiet
runc_stop mon
final=$(weir_snapshot "$ID")
is "$(jq -r .state <<<"$final")" stopped "after stop the record is stopped"
cmp_num "$(jq -r .tcp.active_opens <<<"$final")" -ge 3 "and keeps the final TCP counters"

done_testing
