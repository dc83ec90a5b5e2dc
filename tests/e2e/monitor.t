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
# TCP health and flows come from sockops: a machine declared without it has nothing to test
# here. Whether it has it is declared (tests/machine.conf), never taken from weir.
machine_has sockops || skip_all_declared sockops
HAS_DROPS=0
machine_has kfree_skb && HAS_DROPS=1
runc_init

peer_create "$E2E_PREFIX"
peer_server "$E2E_TMP/peer-tcp8080.log" tcp-server 8080
A4=$PEER_A4
B4=$PEER_B4

cw() { runc_wtool "$@"; } # wtool in a container (lib/runc.sh)

start() { runc_start_pass "$@"; } # NAME IDX BUNDLE-OPTIONS... -- CMD (lib/runc.sh)

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
after=$(weir_snapshot "$ID")
is "$(stats_delta "$before" "$after" .tcp.active_opens)" 1 "one active open counted"
is "$(stats_delta "$before" "$after" .tcp.connect_latency_us.count)" 1 \
	"one connect latency sample in the histogram"
# flow_where JQ-FILTER: the last recent event of mon that matches (empty when none yet).
flow_where() { flows_json "$ID" | jq -c "select($1)" | tail -n1; }
flow_there() { [ -n "$(flow_where "$1")" ]; }
retry 5 flow_there '.type == "flow" and .remote_port == 8080' || true
flow=$(flow_where '.type == "flow" and .remote_port == 8080')
is "$(jq -r '.bytes_out // "none"' <<<"${flow:-null}")" 250000 \
	"the flow reports the 250000 payload bytes the container sent"
reply="received 250000"
is "$(jq -r '.bytes_in // "none"' <<<"${flow:-null}")" "$((${#reply} + 1))" \
	"and the bytes of the server's reply line it received"
is "$(jq -r '.verdict // "none"' <<<"${flow:-null}")" allowed "its verdict is allowed"

# ---- a denial is reported once per flow ------------------------------------------------------------
before=$(weir_snapshot "$ID")
outs=()
for _ in 1 2 3; do
	cw mon udp-send "$B4" 7777 1 100
	outs+=("$W_OUT")
done
is "${outs[*]}" "EPERM EPERM EPERM" "UDP to a denied peer fails with EPERM, three times"
after=$(weir_snapshot "$ID")
is "$(stats_delta "$before" "$after" .egress.denied_connects)" 3 "the three refused sends are counted"
n=$(flows_json "$ID" | jq -c "select(.type == \"denied\" and .remote_port == 7777)" | wc -l)
is "$n" 1 "exactly one denial event for the flow, however many sends"

# ---- retransmissions: none on a clean path, some on a lossy one ------------------------------------
# A loaded machine can stall the receiver past the tail-loss-probe timeout, and the kernel then
# really retransmits: up to three tries for a transfer without any.
clean=""
opens=1 # the one connection above (the refused one opened nothing); each transfer adds one
for try in 1 2 3; do
	opens=$((opens + 1))
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
opens=$((opens + 1))
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
opens=$((opens + 1))
ssout=$(in_ctr mon python3 "$E2E_TMP/rtt.py" "$A4" 8080 2>&1 || true)
ss_us=$(sed -n 's/.* rtt:\([0-9.]*\)\/.*/\1/p' <<<"$ssout" | awk '{ printf "%d", $1 * 1000 }')
retry 5 flow_there '.type == "flow" and .bytes_out == 1000000' || true
flow=$(flow_where '.type == "flow" and .bytes_out == 1000000')
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
if [ "$HAS_DROPS" = 1 ]; then
	before=$(weir_snapshot "$ID")
	peer_exec python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(20):
    s.sendto(b'z' * 10, ('10.200.1.2', 9999))
"
	# the datagrams are dropped in the receiving namespace's softirq, maybe after sendto returns
	no_socket_drops() { stats_delta "$before" "$(weir_snapshot "$ID")" '.kernel_drops.NO_SOCKET'; }
	retry 5 count_at_least 20 no_socket_drops || true
	is "$(no_socket_drops)" 20 "20 datagrams to a closed port count as kernel drops NO_SOCKET"
else
	skip_declared kfree_skb 1
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
# The reader is draining once a denial sent after it started reaches it. Each probe is a new
# flow (a denial is reported once per flow per 10 s); they stop at the first one delivered.
follower_gets() { # follower_gets PORT: deny a datagram to PORT, wait up to 2 s to see it
	cw mon udp-send "$B4" "$1" 1 10
	retry 2 grep -q "\"remote_port\":$1[,}]" "$E2E_TMP/follow.out"
}
port=6100
until follower_gets "$port"; do
	port=$((port + 1))
	[ "$port" -lt 6110 ] || break
done
lost2=$(node events_lost)
if follower_gets 6001; then
	pass "a live reader gets new events again"
else
	fail "a live reader gets new events again" "$(tail -n3 "$E2E_TMP/follow.out")"
fi
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

# ---- a reader started before two containers names each one's events ------------------------------
# It learns who an endpoint is from the records: one that appears after the reader started,
# even within a second of another, must be named, never printed without its container.
"$WEIR" flows --follow --json >"$E2E_TMP/all.out" 2>&1 &
allf=$!
on_exit kill "$allf"
# denial_named PORT ID: the reader printed the denial of a datagram to PORT, as ID's
denial_named() {
	grep "\"remote_port\":$1[,}]" "$E2E_TMP/all.out" | grep -q "\"container\":\"$2\""
}
port=6200 # the reader drains once a denial sent after it started reaches it
until cw mon udp-send "$B4" "$port" 1 10 && retry 2 denial_named "$port" "$ID"; do
	port=$((port + 1))
	[ "$port" -lt 6210 ] || break
done
for n in 1 2; do
	start "late$n" $((2 + n)) --egress "allow $A4/32 tcp" --ann monitor.weir.io=flows -- sleep 1000
	cw "late$n" udp-send "$B4" "$((6300 + n))" 1 10
	if retry 3 denial_named "$((6300 + n))" "$(runc_id "late$n")"; then
		pass "late$n, started after the reader: its denial carries its container id"
	else
		fail "late$n, started after the reader: its denial carries its container id" \
			"$(grep "\"remote_port\":$((6300 + n))[,}]" "$E2E_TMP/all.out" | head -n2)"
	fi
done
kill "$allf" 2>/dev/null || true
runc_stop late1
runc_stop late2

runc_stop quiet
runc_stop mon
final=$(weir_snapshot "$ID")
is "$(jq -r .state <<<"$final")" stopped "after stop the record is stopped"
is "$(jq -r .tcp.active_opens <<<"$final")" "$opens" "and keeps the final TCP counters (its $opens connections)"
own_weir_empty

done_testing
