#!/bin/bash
# Traffic shaping with runc: kubernetes.io/{egress,ingress}-bandwidth, priority.weir.io and
# tcp-congestion.weir.io on real containers (weir-hook at createRuntime, a veth into a peer
# network namespace this test made), measured with iperf3 between the container and the peer.
# iperf3 runs from the host's binary in the container's network namespace and cgroup (the
# busybox rootfs has no iperf3): weir's programs hang off the cgroup, so its sockets are the
# container's.
#
#   prove -v tests/e2e/shaping.t        (root; `make` first)
#
# Goodput is checked against the limit (within 5 %), which is a property of the limiter, not
# a speed: iperf3 reports what arrived, whatever the machine's pace. A measurement below the
# limit is repeated (up to three runs): a starved sender on a busy machine is not the
# limiter's fault; one above it fails at once.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/runc.sh
. "$E2E_LIB/runc.sh"
# shellcheck source=lib/shaping.sh
. "$E2E_LIB/shaping.sh"

e2e_init
require_weir
require_cmd iperf3 ss nft
runc_init
peer_create "$E2E_PREFIX"

# in_ctr NAME CMD...: CMD in container NAME's network namespace and cgroup.
in_ctr() {
	local name=$1
	shift
	in_cgroup_netns "$(runc_pid "$name")" "$(runc_cgroup "$name")" "$@"
}

# iperf3 servers in the peer: one per port, killed with the peer namespace (peer_destroy).
iperf_listening() { peer_exec ss -Htln "sport = :$1" | grep -q .; }
peer_iperf() {
	peer_exec iperf3 -s -p "$1" >"$E2E_TMP/iperf-$1.log" 2>&1 &
	_peer_pids+=($!)
	retry 5 iperf_listening "$1" || bail_out "iperf3 server on port $1 did not start"
}
for port in 5201 5202 5203; do
	peer_iperf "$port"
done

# iperf NAME OUT PORT ARGS...: an iperf3 client in NAME towards its gateway; JSON in OUT.
iperf() {
	local name=$1 out=$2 port=$3 idx
	shift 3
	idx=$(cat "$(runc_bundle_dir "$name")/idx")
	in_ctr "$name" iperf3 -J -c "$(gw_addr4 "$idx")" -p "$port" "$@" >"$out" 2>&1
}

# start NAME IDX ANNOTATIONS...: a container that sleeps, one test.
start() {
	local name=$1 idx=$2 a args=()
	shift 2
	for a in "$@"; do
		args+=(--ann "$a")
	done
	runc_bundle "$name" "$idx" "${args[@]}" -- /bin/sleep 3600
	echo "$idx" >"$(runc_bundle_dir "$name")/idx"
	if runc_start "$name"; then
		pass "$name: starts with ${*:-no annotation}"
	else
		fail "$name: starts with ${*:-no annotation}"
		diag_block "runc stderr" "$(runc_err "$name")"
	fi
}

DURATION=4 # seconds of each measurement; the first is left out (-O 1)

# ---------------------------------------------------------------------------------------
diag "1. 10 Mbit/s and 100 Mbit/s, egress and ingress"
# bbr, unless it is the node's default already: then another the node has
node_cc=$(cat /proc/sys/net/ipv4/tcp_congestion_control)
CC=bbr
[ "$node_cc" != bbr ] || CC=reno
start s10 1 kubernetes.io/egress-bandwidth=10M kubernetes.io/ingress-bandwidth=10M \
	tcp-congestion.weir.io=$CC priority.weir.io=critical
start s100 2 kubernetes.io/egress-bandwidth=100M kubernetes.io/ingress-bandwidth=100M
MTU=$(in_ctr s10 cat /sys/class/net/eth0/mtu)

goodput "10M egress (TCP)" 10000000 "$E2E_TMP/s10-out.json" \
	iperf s10 "$E2E_TMP/s10-out.json" 5201 -t "$DURATION" -O 1
goodput "10M ingress (TCP)" 10000000 "$E2E_TMP/s10-in.json" \
	iperf s10 "$E2E_TMP/s10-in.json" 5201 -t "$DURATION" -O 1 -R
goodput "100M egress (TCP)" 100000000 "$E2E_TMP/s100-out.json" \
	iperf s100 "$E2E_TMP/s100-out.json" 5202 -t "$DURATION" -O 1
goodput "100M ingress (TCP)" 100000000 "$E2E_TMP/s100-in.json" \
	iperf s100 "$E2E_TMP/s100-in.json" 5202 -t "$DURATION" -O 1 -R

# ---------------------------------------------------------------------------------------
diag "2. UDP is policed to the limit, both ways"
# At most the limit (+5 %) and one default burst (10 ms at the rate, at least 65 KiB, for
# egress; 250 ms for ingress) spread over the run: the limiter was idle before it.
for dir in egress ingress; do
	rev=()
	[ $dir = egress ] || rev=(-R)
	udp_held "UDP $dir at 30 Mbit/s into a 10 Mbit/s limit" 10000000 "$(default_burst $dir 10000000)" \
		"$E2E_TMP/s10-udp-$dir.json" iperf s10 "$E2E_TMP/s10-udp-$dir.json" 5201 -u -b 30M -t "$DURATION" "${rev[@]}"
done
st=$("$WEIR" stats --json "$(runc_id s10)")
cmp_num "$(jq -r '.egress.shaped_dropped.packets' <<<"$st")" -gt 0 "weir stats counts the egress datagrams shaping dropped"
cmp_num "$(jq -r '.ingress.shaped_dropped.packets' <<<"$st")" -gt 0 "and the ingress ones"
is "$(jq -r '[.egress.rate_limit_bps, .ingress.rate_limit_bps] | join(" ")' <<<"$st")" \
	"10000000 10000000" "weir stats shows the configured rates"
is "$(weir_record "$(runc_id s10)" | jq -r '"\(.shaping.egress) \(.shaping.ingress)"')" "cgroup cgroup" \
	"weir list: both directions shaped by the cgroup programs (the veth's far end is not in weir's namespace; iface-shaping.t has the interface path)"
cmp_num "$(jq -r '.egress.congestion_notified + .ingress.ce_marked' <<<"$st")" -gt 0 \
	"and the congestion notifications and CE marks of the limiter"
top=$("$WEIR" top --once --interval 0.2 2>&1 | awk -v id="$(runc_id s10)" '$2 == id')
like "$top" ' 1\.2[0-9]*M +1\.2[0-9]*M ' "weir top shows its limits (TX LIM, RX LIM: 1.25 MB/s)"
like "$("$WEIR" metrics 2>&1 | grep '^weir_shaping_rate_limit_bits_per_second{.*direction="egress"' | grep "container_id=\"$(runc_id s10)\"")" \
	'} 10000000$' "the metrics show the egress limit as a gauge"

# ---------------------------------------------------------------------------------------
diag "2b. the first second: nothing above the default burst passes a fresh limit"
# A new container's limiter is idle: it owes one burst and no more. UDP at 3x the limit for
# one second, each way, delivers at most the limit for that second (+5 %: iperf3's timing)
# plus the documented default burst: 10 ms at the rate (at least 65 KiB) for egress, 250 ms
# for ingress.
start s1s 3 kubernetes.io/egress-bandwidth=10M kubernetes.io/ingress-bandwidth=10M
for dir in egress ingress; do
	f=$E2E_TMP/s1s-udp-$dir.json
	rev=()
	burst=66560
	[ $dir = egress ] || { rev=(-R); burst=312500; }
	iperf s1s "$f" 5203 -u -b 30M -t 1 "${rev[@]}"
	got=$(jq -r '(.end.sum.packets - .end.sum.lost_packets) * .start.test_start.blksize' "$f" 2>/dev/null)
	most=$(awk -v b="$burst" -v t="$(jq -r '.end.sum.seconds' "$f" 2>/dev/null)" 'BEGIN { printf "%.0f", 1250000 * t * 1.05 + b }')
	if [ -n "$got" ] && awk -v g="$got" -v m="$most" 'BEGIN { exit !(g > 1000000 && g <= m) }'; then
		pass "$dir: 30 Mbit/s of UDP into a fresh 10 Mbit/s limit: $got bytes arrive in the first second (at most $most: the limit and a $burst-byte burst)"
	else
		fail "$dir: 30 Mbit/s of UDP into a fresh 10 Mbit/s limit: at most the limit and a $burst-byte burst ($most bytes) in the first second" \
			"got ${got:-nothing}"
		diag_block iperf3 "$(head -c 1500 "$f")"
	fi
done

# ---------------------------------------------------------------------------------------
diag "3. two containers at once each get their own limit; congestion control per container"
# both_at_once: the two limited containers send at once; their congestion control is read
# while both run.
both_at_once() {
	iperf s10 "$E2E_TMP/par10.json" 5201 -t "$DURATION" -O 1 &
	p10=$!
	iperf s100 "$E2E_TMP/par100.json" 5202 -t "$DURATION" -O 1 &
	p100=$!
	retry 3 has_flow s10 5201 || true
	cc10=$(ss_cc s10 5201)
	retry 3 has_flow s100 5202 || true
	cc100=$(ss_cc s100 5202)
	wait "$p10" || true
	wait "$p100" || true
}
ss_cc() { in_ctr "$1" ss -Htin state established "dport = :$2" | grep -oE '\b(bbr|cubic|reno)\b' | sort -u | tr '\n' ' '; }
has_flow() { [ -n "$(ss_cc "$1" "$2")" ]; }
goodput_pair "10M next to 100M" 10000000 "$E2E_TMP/par10.json" \
	"100M next to 10M" 100000000 "$E2E_TMP/par100.json" both_at_once
is "$cc10" "$CC " "ss -ti in the container with tcp-congestion.weir.io=$CC shows $CC"
default_cc=$(in_ctr s100 cat /proc/sys/net/ipv4/tcp_congestion_control)
is "$cc100" "$default_cc " "its neighbour without the annotation keeps the node default ($default_cc)"

# ---------------------------------------------------------------------------------------
diag "4. priority.weir.io=critical: DSCP EF seen on the host side, skb priority 6"
peer_exec nft -f - <<'NFT'
table inet weirtest {
	chain pre {
		type filter hook prerouting priority 0;
		iifname "p1" ip dscp ef counter
		iifname "p1" ip dscp != ef counter
	}
}
NFT
in_ctr s10 nft -f - <<'NFT'
table inet weirtest {
	chain post {
		type filter hook postrouting priority 0;
		oifname "eth0" meta priority 0:6 counter
		oifname "eth0" meta priority != 0:6 counter
	}
}
NFT
iperf s10 "$E2E_TMP/prio.json" 5201 -t 1
iperf s10 "$E2E_TMP/prio-udp.json" 5201 -u -b 1M -t 1
counts() { "$@" nft list table inet weirtest | grep -oE 'packets [0-9]+' | awk '{printf "%s ", $2}'; }
read -r ef other <<<"$(counts peer_exec)"
cmp_num "$ef" -gt 100 "the peer receives the container's TCP and UDP packets with DSCP EF"
is "$other" 0 "and none without it"
read -r p6 pother <<<"$(counts in_ctr s10)"
cmp_num "$p6" -gt 100 "they leave eth0 with skb priority 6 (TC_PRIO_INTERACTIVE)"
is "$pother" 0 "and none with another priority"

# ---------------------------------------------------------------------------------------
diag "5. a small flow's round trip under load: weir's limiter against a TBF qdisc, side by side"
# Two containers at 10 Mbit/s egress, measured in turn in this run: s10 (weir) and tbf (no
# weir; a TBF qdisc of the same rate on its eth0, burst 65 KiB, latency 25 ms: what the CNI
# bandwidth plugin sets up). Each sends one bulk TCP flow; meanwhile a small request/response
# (a TCP connection, 64 bytes each way) is timed ten times. A queue holds the small flow behind
# the bulk one; weir's limiter keeps none. The comparison is relative, never an absolute time:
# weir's median must be below half of TBF's (measured 3 ms against 34 ms here).
start tbf 4
nsenter --net="/proc/$(runc_pid tbf)/ns/net" tc qdisc add dev eth0 root tbf rate 10mbit burst 66560 latency 25ms
peer_server "$E2E_TMP/rr.log" tcp-server 9100
check_rr_against_tbf "under a bulk flow at 10 Mbit/s" s10 "$(gw_addr4 "$(cat "$(runc_bundle_dir s10)/idx")")" \
	tbf "$(gw_addr4 "$(cat "$(runc_bundle_dir tbf)/idx")")"

# ---------------------------------------------------------------------------------------
diag "6. stop: nothing left"
for n in s10 s100 s1s tbf; do
	runc_stop "$n" || fail "$n: runc delete" "$(cat "$(runc_bundle_dir "$n")/delete.log")"
done
own_weir_empty

done_testing
