#!/bin/bash
# The datapath against its floor and its anchors, in one run (a benchmark, not a test: it
# prints figures, differences and ratios against bare measured in the same run, and targets
# marked met or not met; it never fails on speed).
#
# A client in a network namespace and a cgroup of its own talks to a server in another
# namespace over a veth (10.125.0.1 -> 10.125.0.2; nothing leaves the machine). Every option
# gets the same rule set: N non-matching egress rules (10.X.Y.0/24 tcp/443) plus the server's
# /24 (tcp/5201, tcp/11111):
#
#   bare          nothing on the client's cgroup
#   floor         a cgroup_skb egress program doing one LPM lookup of the destination over the
#                 same prefixes (tests/bench/floor.bpf.c, attached by tests/bench/floor)
#   weir-N-MODE   weir (weir-hook createRuntime, its own bpffs folder and state) with N rules
#                 and monitor.weir.io MODE: off, counters (the default) or flows
#   nft           an nftables interval set (address . port) with the same rules, in the
#                 client's output chain, stateful as weir is (established flows accepted first)
#   iptables      the same 1,000 rules as iptables rules in the client's OUTPUT, stateful too
#
# Each round measures every option in turn (the order rotates from round to round): TCP
# request/response latency p50 and p99 (sockperf ping-pong), TCP throughput with 1 and 4
# streams (iperf3). Each figure is the median over the rounds of the option's difference
# (latency) or ratio (throughput) to bare in the same round, so that the machine's noise
# hits every option alike. Then, outside the rounds:
#
#   * per-packet program time (BPF_PROG_TEST_RUN, tests/bench/progtime.c) of weir's cgroup_skb
#     programs and of its interface program (weir_iface_egress, the host side of the
#     container's veth) on each path, for each rule count and monitor mode, and of the floor;
#     then on real sockets (BPF_ENABLE_STATS, progtime --sockets), each way: a tracked flow
#     and a connected socket's cached verdict, against the floor of the same direction, and
#     the bounds of any per-socket verdict (the socket-storage slot, a counter update);
#   * container start cost: weir-hook createRuntime for a new container, less a no-op
#     process, with 1, 100 and 1,000 endpoints already attached (10 rules each);
#   * memory per endpoint: the pinned maps' sizes from their definitions and the memory the
#     kernel reports for them (bpftool's bytes_memlock, the fdinfo memlock), with 1 and with
#     1,000 endpoints attached, and the records' size on disk.
#
# Usage: tests/bench/datapath-bench.sh [--rounds N] [--seconds S] [--quick | --rr-only] (root,
# after make test-build). --quick: rule counts 10 and 10,000 only, 3 rounds of 2 s, fewer starts.
# --rr-only: bare, the floor and weir at 10,000 rules in its three monitor modes, 15 rounds of
# 3 s, and the RR targets alone: the run that can settle differences of a few hundred ns.
set -euo pipefail

# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init datapath-bench
HOOK=$BIN/weir-hook
TOOLS=$ROOT/${OUTPUT:-.output}/tests
ROUNDS='' SECS='' QUICK=0 RR_ONLY=0
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift 2 ;;
	--seconds) SECS=$2; shift 2 ;;
	--quick) QUICK=1; shift ;;
	--rr-only) RR_ONLY=1; shift ;;
	*) echo "datapath-bench: usage: $0 [--rounds N] [--seconds S] [--quick | --rr-only]" >&2; exit 2 ;;
	esac
done
if [ "$RR_ONLY" = 1 ]; then
	# the RR targets' options alone, so that many rounds fit in a quiet moment
	COUNTS=10000 ROUNDS=${ROUNDS:-15} SECS=${SECS:-3} STARTS=0 REPEAT=0
elif [ "$QUICK" = 1 ]; then
	COUNTS="10 10000" ROUNDS=${ROUNDS:-3} SECS=${SECS:-2} STARTS=10 REPEAT=100000
else
	COUNTS="10 1000 10000" ROUNDS=${ROUNDS:-7} SECS=${SECS:-4} STARTS=30 REPEAT=500000
fi
FLOOR_N=10000 IPT_N=1000 MODES="off counters flows"
for f in "$HOOK" "$BIN/weir" "$TOOLS/floor" "$TOOLS/floor.bpf.o" "$TOOLS/progtime"; do
	[ -e "$f" ] || { echo "datapath-bench: $f missing: run make test-build" >&2; exit 1; }
done
bench_sockperf
for c in sockperf iperf3 nft iptables-restore bpftool jq; do
	command -v "$c" >/dev/null || { echo "datapath-bench: $c missing" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/weir-dpbench.XXXXXX)
P=wdb$$
NET=10.125.0
SRV=$NET.2
bench_own_weir "$P" "$TMP" || { echo "datapath-bench: cannot set up its own weir" >&2; exit 1; }
bench_own_weir_conf max_rules=65536 max_annotation_bytes=1048576
hook() { "$HOOK" --config "$BENCH_CONF" "$@"; }
CG2=$(bench_cgroup2)
CG=$CG2/$P
FLOOR_PIN=$BENCH_BPFFS/floor-link
PIDS=
cleanup() {
	set +e
	[ -e "$FLOOR_PIN" ] && rm -f "$FLOOR_PIN"
	[ -f "$TMP/stop.json" ] && hook poststop <"$TMP/stop.json" >/dev/null 2>&1
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	bench_veth_pair_del "$P"
	wait 2>/dev/null
	bench_own_weir_unload
	for d in "$CG" "$CG2/$P"-*; do [ -d "$d" ] && rmdir "$d"; done
	rm -rf "$TMP"
}
trap cleanup EXIT

# ---- the rule sets ----------------------------------------------------------------------
# decoys N: the N non-matching prefixes, one a line
decoys() { awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "10.%d.%d.0/24\n", 50 + int(i / 256), i % 256 }'; }
for n in $COUNTS $FLOOR_N $IPT_N; do
	[ -e "$TMP/cidrs.$n" ] && continue
	decoys "$n" >"$TMP/cidrs.$n"
	echo "$NET.0/24" >>"$TMP/cidrs.$n"
	{
		decoys "$n" | sed 's|.*|allow & tcp/443; |' | tr -d '\n'
		echo "allow $NET.0/24 tcp/5201,tcp/11111"
	} >"$TMP/rules.$n"
done
{
	echo "table ip $P {"
	echo "  set allow { type ipv4_addr . inet_service; flags interval; elements = {"
	decoys "$FLOOR_N" | sed 's|.*|    & . 443,|'
	echo "    $NET.0/24 . 5201, $NET.0/24 . 11111 } }"
	echo "  chain out { type filter hook output priority 0; policy accept;"
	echo "    oif \"lo\" accept; ct state established,related accept"
	echo "    ip daddr . tcp dport @allow accept; drop"
	echo "  }"
	echo "}"
} >"$TMP/nft"
{
	echo '*filter'
	echo ':OUTPUT ACCEPT [0:0]'
	echo '-A OUTPUT -o lo -j ACCEPT'
	echo '-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT'
	decoys "$IPT_N" | sed 's|.*|-A OUTPUT -d & -p tcp --dport 443 -j ACCEPT|'
	echo "-A OUTPUT -d $NET.0/24 -p tcp -m multiport --dports 5201,11111 -j ACCEPT"
	echo '-A OUTPUT -j DROP'
	echo 'COMMIT'
} >"$TMP/iptables"

# ---- the client, the server, and the options ---------------------------------------------
bench_veth_pair "$P" "$NET"
bench_servers "$P-s" "$SRV"
mkdir -p "$CG" "$TMP/bundle"
sh -c "echo \$\$ > $CG/cgroup.procs; exec sleep 100000" &
SLEEPER=$!
PIDS="$PIDS $SLEEPER"
bench_wait 5 bench_in_cgroup "$SLEEPER" "$CG"
bench_oci_state "$P" "$SLEEPER" creating "$TMP/bundle" >"$TMP/start.json"

OPTIONS="bare floor"
for n in $COUNTS; do for m in $MODES; do OPTIONS="$OPTIONS weir-$n-$m"; done; done
[ "$RR_ONLY" = 1 ] || OPTIONS="$OPTIONS nft iptables"

option_on() {
	case $1 in
	bare) ;;
	floor) "$TOOLS/floor" "$TOOLS/floor.bpf.o" "$CG" "$FLOOR_PIN" "$TMP/cidrs.$FLOOR_N" ;;
	nft) ip netns exec "$P-c" nft -f "$TMP/nft" ;;
	iptables) ip netns exec "$P-c" iptables-restore <"$TMP/iptables" ;;
	weir-*)
		local n=${1#weir-} m=${1##*-}
		n=${n%-*}
		jq -n --rawfile r "$TMP/rules.$n" --arg m "$m" \
			'{ociVersion: "1.0.2", annotations: {"egress.weir.io": $r, "monitor.weir.io": $m}}' \
			>"$TMP/bundle/config.json"
		hook createRuntime <"$TMP/start.json"
		bench_oci_state "$P" 0 stopped "$TMP/bundle" >"$TMP/stop.json"
		;;
	esac
}
option_off() {
	case $1 in
	bare) ;;
	floor) rm "$FLOOR_PIN" ;;
	nft | iptables) ip netns exec "$P-c" nft flush ruleset ;;
	weir-*) hook poststop <"$TMP/stop.json" && rm "$TMP/stop.json" ;;
	esac
}

mkdir "$TMP/r"
read -ra OPTS <<<"$OPTIONS"
# warm up the path (the first connections of a new namespace pair are slower): not counted
bench_rr "$CG" "$P-c" "$SRV" 1 >/dev/null
bench_tput "$CG" "$P-c" "$SRV" 1 4 >/dev/null
echo "datapath-bench: ${#OPTS[@]} options, $ROUNDS rounds of ${SECS}s per figure" >&2
for ((r = 0; r < ROUNDS; r++)); do
	for ((i = 0; i < ${#OPTS[@]}; i++)); do
		o=${OPTS[(i + r) % ${#OPTS[@]}]}
		option_on "$o"
		read -r p50 p99 < <(bench_rr "$CG" "$P-c" "$SRV" "$SECS") || true
		[ -n "${p99:-}" ] || { echo "datapath-bench: sockperf failed with $o" >&2; exit 1; }
		echo "$p50" >>"$TMP/r/$o.p50"
		echo "$p99" >>"$TMP/r/$o.p99"
		bench_tput "$CG" "$P-c" "$SRV" "$SECS" 1 >>"$TMP/r/$o.t1"
		bench_tput "$CG" "$P-c" "$SRV" "$SECS" 4 >>"$TMP/r/$o.t4"
		option_off "$o"
	done
	echo "datapath-bench: round $((r + 1))/$ROUNDS done" >&2
done

med() { median <"$TMP/r/$1"; }
echo
echo "TCP through a veth from a cgroup; medians of $ROUNDS rounds (${SECS}s each); differences and"
echo "ratios are medians of the per-round figures against bare in the same round"
printf '%-20s %8s %8s %8s %8s | %9s %9s %8s %8s\n' option "p50 us" "p99 us" "1-str G" "4-str G" \
	"p50 diff" "p99 diff" "1-str x" "4-str x"
for o in "${OPTS[@]}"; do
	label=$o
	case $o in
	floor | nft) label="$o ($FLOOR_N)" ;;
	iptables) label="$o ($IPT_N)" ;;
	esac
	printf '%-20s %8.2f %8.2f %8.2f %8.2f | %+9.2f %+9.2f %8.3f %8.3f\n' "$label" \
		"$(med "$o.p50")" "$(med "$o.p99")" "$(med "$o.t1")" "$(med "$o.t4")" \
		"$(bench_diff "$TMP/r/$o.p50" "$TMP/r/bare.p50")" \
		"$(bench_diff "$TMP/r/$o.p99" "$TMP/r/bare.p99")" \
		"$(bench_ratio "$TMP/r/$o.t1" "$TMP/r/bare.t1")" \
		"$(bench_ratio "$TMP/r/$o.t4" "$TMP/r/bare.t4")"
done

verdict() { if awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; then echo met; else echo "NOT met"; fi; }
# rr_targets N: the two RR targets, at N rules
rr_targets() {
	local d
	d=$(bench_diff "$TMP/r/weir-$1-counters.p50" "$TMP/r/bare.p50")
	printf '  weir, %s rules, counters: RR p50 %+.2f us over bare (target <= +0.3 us): %s
' "$1" "$d" "$(verdict "$d" 0.3)"
	d=$(bench_diff "$TMP/r/weir-$1-flows.p50" "$TMP/r/weir-$1-counters.p50")
	printf '  flows over counters, %s rules: RR p50 %+.2f us (target <= +0.1 us): %s
' "$1" "$d" "$(verdict "$d" 0.1)"
}
if [ "$RR_ONLY" = 1 ]; then
	echo
	echo "targets"
	rr_targets 10000
	echo "  (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores)"
	exit 0
fi

# ---- per-packet program time ----------------------------------------------------------------
echo
echo "per-packet program time, ns (BPF_PROG_TEST_RUN, the kernel's average over $REPEAT runs)"
mapfile -t PT_COUNTS < <(tr ' ' '\n' <<<"$COUNTS $FLOOR_N" | sort -nu)
"$TOOLS/progtime" --table "$TOOLS/floor.bpf.o" "$REPEAT" "${PT_COUNTS[@]}" >"$TMP/progtime"
printf '%-6s %-9s %9s %9s %9s %9s %9s %9s | %s\n' rules monitor tracked reply new-lpm new-miss \
	if-reply if-lpm "floor (one LPM lookup)"
for n in $COUNTS; do
	fl=$(awk -v n="$n" '$1 == "floor" && $2 == n { print $5 }' "$TMP/progtime")
	for m in $MODES; do
		pt() { awk -v n="$n" -v m="$m" -v p="$1" '$1 == "weir" && $2 == n && $3 == m && $4 == p { print $5 }' "$TMP/progtime"; }
		printf '%-6s %-9s %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f | %.1f\n' "$n" "$m" "$(pt egress-tracked)" \
			"$(pt ingress-reply)" "$(pt egress-new-lpm)" "$(pt egress-new-miss)" \
			"$(pt iface-reply)" "$(pt iface-new-lpm)" "$fl"
	done
done
echo "(cgroup programs: tracked: egress packet of an established flow; reply: its ingress reply;"
echo " new-lpm: a new flow the LPM finds the server's /24 for, refused by port; new-miss: no prefix"
echo " matches. Interface program (host side of the veth, the same rules as ingress policy too):"
echo " if-reply: the established flow's reply into the container; if-lpm: a new connection into"
echo " it, allowed by the ingress LPM)"

# The sockets' cached verdicts need real sockets (a test run's socket is a dummy of its own):
# real datagrams, each program timed by the kernel (BPF_ENABLE_STATS), medians over rounds.
echo
echo "per-packet program time on real sockets, ns (BPF_ENABLE_STATS; 1,000 rules; medians of 15 rounds)"
"$TOOLS/progtime" --sockets "$TOOLS/floor.bpf.o" 50000 15 >"$TMP/sockets"
printf '%-20s %9s %9s\n' path ns "x floor"
awk '$1 == "sockets" { printf "%-20s %9.1f %9.3f\n", $2, $3, $4 }' "$TMP/sockets"
echo "(floor: one LPM lookup; weir-tracked: a sendto() socket's established flow, conntrack hit;"
echo " weir-cached: a connected socket, its verdict kept in socket storage; -in: the same sockets"
echo " receiving from their peer, against floor-in, the floor's lookup of the source;"
echo " bound-*: the parts of any per-socket verdict alone, outbound: a program that only passes,"
echo " one per-CPU counter update, the socket-storage slot, slot and counters side by side, and"
echo " -dep: the counters' key read from the slot, as weir's cached path must, so their loads wait)"

# ---- container start with 1, 100 and 1,000 endpoints attached -------------------------------
# Endpoints with 10 rules, registered by weir-hook as for a container: a process is moved into
# each new cgroup for its createRuntime, then on to the next (the cgroups stay, attached).
EPCOUNT=0
mkdir -p "$TMP/ep"
jq -n --rawfile r "$TMP/rules.10" '{ociVersion: "1.0.2", annotations: {"egress.weir.io": $r}}' \
	>"$TMP/ep/config.json"
sh -c 'exec sleep 100000' &
MOVER=$!
PIDS="$PIDS $MOVER"
endpoints_to() { # N: register endpoints until N are attached
	while [ "$EPCOUNT" -lt "$1" ]; do
		EPCOUNT=$((EPCOUNT + 1))
		mkdir "$CG2/$P-e$EPCOUNT"
		echo "$MOVER" >"$CG2/$P-e$EPCOUNT/cgroup.procs"
		bench_oci_state "$P-e$EPCOUNT" "$MOVER" creating "$TMP/ep" | hook createRuntime
	done
}
# start_cost: STARTS samples of (weir-hook createRuntime of a new container) less (a no-op
# process), in us, into TMP/start.$EPCOUNT
start_cost() {
	local k t0 t1 t2 cg
	for ((k = 0; k < STARTS; k++)); do
		cg=$CG2/$P-s$EPCOUNT-$k
		mkdir "$cg"
		echo "$MOVER" >"$cg/cgroup.procs"
		bench_oci_state "$P-s$EPCOUNT-$k" "$MOVER" creating "$TMP/ep" >"$TMP/s.json"
		t0=$(date +%s%N)
		/bin/true <"$TMP/s.json"
		t1=$(date +%s%N)
		hook createRuntime <"$TMP/s.json"
		t2=$(date +%s%N)
		echo "$(((t2 - t1) - (t1 - t0)))" | awk '{ print $1 / 1e6 }' >>"$TMP/start.$EPCOUNT"
		echo "$MOVER" >"$CG2/cgroup.procs"
		bench_oci_state "$P-s$EPCOUNT-$k" 0 stopped "$TMP/ep" | hook poststop
		rmdir "$cg"
	done
}
# map_mem: one line per pinned map: name type key value max_entries memlock
map_mem() {
	local f
	for f in "$BENCH_BPFFS"/weir/maps/*; do
		bpftool -j map show pinned "$f" |
			jq -r '[.name, .type, .bytes_key, .bytes_value, .max_entries, .bytes_memlock] | @tsv'
	done | LC_ALL=C sort
}
endpoints_to 1
start_cost
map_mem >"$TMP/mem.1"
du -sb --apparent-size "$TMP/state" | cut -f1 >"$TMP/disk.1"
endpoints_to 100
start_cost
endpoints_to 1000
start_cost
map_mem >"$TMP/mem.1000"
du -sb --apparent-size "$TMP/state" | cut -f1 >"$TMP/disk.1000"

echo
echo "container start: weir-hook createRuntime (10 rules) less a no-op process, median of $STARTS"
for n in 1 100 1000; do
	printf '  %5d endpoints attached: %7.2f ms\n' "$n" "$(median <"$TMP/start.$n")"
done

echo
NCPU=$(nproc --all)
echo "memory per endpoint (10 rules, counters): pinned maps, 1 -> 1,000 endpoints attached"
printf '  %-22s %-14s %5s %6s %8s %12s %12s %10s\n' map type key value entries "memlock@1" "memlock@1000" "per ep"
LC_ALL=C join -t "$(printf '\t')" "$TMP/mem.1" "$TMP/mem.1000" |
	awk -F'\t' '{ d = ($11 - $6) / 999; t += d
		printf "  %-22s %-14s %5d %6d %8d %12d %12d %10.0f\n", $1, $2, $3, $4, $5, $6, $11, d }
		END { printf "  kernel-reported growth per endpoint: %.0f bytes\n", t }'
awk -F'\t' '{ s += $6 } END { printf "  all pinned maps: %.1f MiB (memlock), whatever the number of endpoints\n", s / 1048576 }' \
	"$TMP/mem.1"
awk -F'\t' -v ncpu="$NCPU" '
	# per-endpoint slots reserved by the arrays indexed by endpoint id (from the definitions)
	($2 == "array" || $2 == "percpu_array") && ($5 == 16384 || $5 == 32768) {
		per = $4 * ($2 == "percpu_array" ? ncpu : 1) * $5 / 16384; s += per
		printf "  reserved per endpoint id in %s: %d bytes\n", $1, per }
	END { printf "  reserved per endpoint id (arrays, %d CPUs): %d bytes, for all 16,384 ids whether used or not\n", ncpu, s }' \
	"$TMP/mem.1000"
printf '  records and ids on disk: %.0f bytes per endpoint\n' \
	"$(echo "($(cat "$TMP/disk.1000") - $(cat "$TMP/disk.1")) / 999" | bc -l)"

# ---- targets ----------------------------------------------------------------------------
t10k=$(tr ' ' '\n' <<<"$COUNTS" | tail -n 1)
echo
echo "targets"
rr_targets "$t10k"
w=$(awk -v n="$t10k" '$1 == "weir" && $2 == n && $3 == "counters" && $4 == "egress-tracked" { print $5 }' "$TMP/progtime")
l=$(awk -v n="$t10k" '$1 == "weir" && $2 == n && $3 == "counters" && $4 == "egress-new-lpm" { print $5 }' "$TMP/progtime")
f=$(awk -v n="$t10k" '$1 == "floor" && $2 == n { print $5 }' "$TMP/progtime")
x=$(echo "$w / $f" | bc -l)
printf '  per-packet time, %s rules, tracked flow: %.1f ns, %.2fx the floor %.1f ns (target <= 1.25x): %s\n' \
	"$t10k" "$w" "$x" "$f" "$(verdict "$x" 1.25)"
x=$(awk '$1 == "sockets" && $2 == "weir-cached" { print $4 }' "$TMP/sockets")
printf '  per-packet time on real sockets, cached verdict: %.2fx the floor (target <= 1.25x): %s\n' \
	"$x" "$(verdict "$x" 1.25)"
b=$(awk '$1 == "sockets" && $2 == "bound-sk-counter" { print $4 }' "$TMP/sockets")
d=$(awk '$1 == "sockets" && $2 == "bound-sk-counter-dep" { print $4 }' "$TMP/sockets")
printf '  (its bounds: slot and counters side by side %.2fx, the counters keyed from the slot %.2fx)\n' \
	"$b" "$d"
x=$(echo "$l / $f" | bc -l)
printf '  per-packet time, %s rules, new flow (LPM): %.1f ns, %.2fx the floor (target <= 1.25x): %s\n' \
	"$t10k" "$l" "$x" "$(verdict "$x" 1.25)"
s1=$(median <"$TMP/start.1")
s1000=$(median <"$TMP/start.1000")
x=$(awk -v a="$s1000" -v b="$s1" 'BEGIN { print a / b }')
printf '  start cost, 1,000 endpoints against 1: %.2fx (%.2f -> %.2f ms; target: flat, <= 1.10x): %s\n' "$x" "$s1" "$s1000" "$(verdict "$x" 1.10)"
echo "  (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores)"
