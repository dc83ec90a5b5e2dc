#!/bin/bash
# Monitoring cost and the flow consumer's capacity, measured against baselines of the same
# run (not a test: nothing passes or fails).
#
#   1. TCP throughput (iperf3) and TCP request/response latency (sockperf ping-pong) of a
#      container with monitor.weir.io=flows, divided by the same with weir attached and
#      monitor.weir.io=off.
#   2. Connections per second with every connection producing a flow event while
#      `weir flows --follow` reads them, and how many events were lost.
#
# Usage: tests/bench/monitor-bench.sh [--rounds N] [--seconds S]   (root, after make)
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUTPUT:-.output}
BIN=$ROOT/$OUT/bin
HOOK=$BIN/weir-hook
WEIR=$ROOT/$OUT/bin/weir
ROUNDS=3
SECS=3
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift 2 ;;
	--seconds) SECS=$2; shift 2 ;;
	*) echo "monitor-bench: unknown option $1" >&2; exit 2 ;;
	esac
done
. tests/bench/lib.sh
bench_require_root monitor-bench
bench_sockperf

TMP=$(mktemp -d /tmp/weir-mbench.XXXXXX)
P=wmb$$
CG2=$(bench_cgroup2)
CG=$CG2/$P
bench_own_weir "$P" "$TMP" || { echo "monitor-bench: cannot set up its own weir" >&2; exit 1; }
HOOK=("$HOOK" --config "$BENCH_CONF")
WEIR=("$WEIR" --config "$BENCH_CONF")
cleanup() {
	set +e
	[ -f "$TMP/stop.json" ] && "${HOOK[@]}" poststop <"$TMP/stop.json" >/dev/null 2>&1
	for p in ${PIDS:-}; do kill "$p" 2>/dev/null; done
	bench_veth_pair_del "$P"
	wait 2>/dev/null
	rmdir "$CG" 2>/dev/null
	bench_own_weir_unload
	rm -rf "$TMP"
}
trap cleanup EXIT

gcc -O2 -o "$TMP/connload" tests/bench/connload.c
bench_veth_pair "$P" 10.124.0
bench_servers "$P-s" 10.124.0.2
ip netns exec "$P-s" "$TMP/connload" server 12000 >/dev/null &
PIDS="$!"
mkdir -p "$CG"
sh -c "echo \$\$ > $CG/cgroup.procs; exec sleep 100000" &
SLEEPER=$!
PIDS="$PIDS $SLEEPER"
bench_wait 5 bench_in_cgroup "$SLEEPER" "$CG"
bench_wait 10 bench_listening "$P-s" 12000
mkdir -p "$TMP/bundle"
printf '{"ociVersion":"1.0.2","id":"%s","status":"creating","pid":%d,"bundle":"%s"}' "$P" "$SLEEPER" "$TMP/bundle" >"$TMP/start.json"
printf '{"ociVersion":"1.0.2","id":"%s","status":"stopped","bundle":"%s"}' "$P" "$TMP/bundle" >"$TMP/stop.json"

attach() { # MONITOR
	jq -n --arg m "$1" '{ociVersion: "1.0.2", annotations: {"egress.weir.io": "allow 10.124.0.0/24", "monitor.weir.io": $m}}' >"$TMP/bundle/config.json"
	"${HOOK[@]}" createRuntime <"$TMP/start.json"
}
detach() { "${HOOK[@]}" poststop <"$TMP/stop.json"; }
in_ctr() { bench_run_in "$CG" "$P-c" "$@"; }
tput_once() { bench_tput "$CG" "$P-c" 10.124.0.2 "$SECS" 1; }
rr_once() { bench_rr "$CG" "$P-c" 10.124.0.2 "$SECS"; }

: >"$TMP/t.off"; : >"$TMP/t.on"; : >"$TMP/l.off"; : >"$TMP/l.on"; : >"$TMP/l99.off"; : >"$TMP/l99.on"
for _ in $(seq "$ROUNDS"); do
	for m in off flows; do
		attach "$m"
		f=$([ "$m" = off ] && echo off || echo on)
		tput_once >>"$TMP/t.$f"
		read -r p50 p99 < <(rr_once)
		echo "$p50" >>"$TMP/l.$f"
		echo "$p99" >>"$TMP/l99.$f"
		detach
	done
done
T0=$(median <"$TMP/t.off"); T1=$(median <"$TMP/t.on")
L0=$(median <"$TMP/l.off"); L1=$(median <"$TMP/l.on")
M0=$(median <"$TMP/l99.off"); M1=$(median <"$TMP/l99.on")
printf 'throughput (iperf3 %ss, median of %d): monitor off %.2f Gbit/s, flows %.2f Gbit/s, ratio %.3f\n' "$SECS" "$ROUNDS" "$T0" "$T1" "$(echo "$T1 / $T0" | bc -l)"
printf 'TCP_RR latency p50 (sockperf ping-pong): monitor off %.2f us, flows %.2f us, ratio %.3f\n' "$L0" "$L1" "$(echo "$L1 / $L0" | bc -l)"
printf 'TCP_RR latency p99: monitor off %.2f us, flows %.2f us, ratio %.3f\n' "$M0" "$M1" "$(echo "$M1 / $M0" | bc -l)"

# ---- flow consumer capacity ----
attach flows
lost0=$("${WEIR[@]}" status --json | jq '.events_lost')
sent0=$("${WEIR[@]}" status --json | jq '.events_sent')
"${WEIR[@]}" flows --follow --json "$P" >"$TMP/flows.out" &
READER=$!
bench_wait 10 bench_reads_ring "$READER"
read -r ndone failed secs < <(in_ctr "$TMP/connload" client 10.124.0.2 12000 "$SECS")
flow_lines() { grep -c '"type":"flow"' "$TMP/flows.out" || true; }
bench_wait 30 bench_settled flow_lines
kill "$READER"; wait "$READER" 2>/dev/null || true
lost1=$("${WEIR[@]}" status --json | jq '.events_lost')
sent1=$("${WEIR[@]}" status --json | jq '.events_sent')
got=$(grep -c '"type":"flow"' "$TMP/flows.out" || true)
printf 'flow consumer: %d connections in %.2f s (%.0f/s, %d failed); reader got %d flow events; events lost meanwhile: %d (ring delivered %d)\n' \
	"$ndone" "$secs" "$(echo "$ndone / $secs" | bc -l)" "$failed" "$got" $((lost1 - lost0)) $((sent1 - sent0))
detach
