#!/bin/bash
# weir-nri's cost at pod start, and its slowest handler under load (a benchmark, not a test:
# no pass/fail).
#
# 1. Median time of RunPodSandbox + CreateContainer + StartContainer (the CRI calls, timed
#    inside one client process) for an annotated pod, with weir-nri connected, divided by the
#    same with weir-nri not running. Both in one run on one containerd, in alternating rounds
#    so that drift hits both alike. Every pod carries the same egress.weir.io annotation;
#    without weir-nri containerd calls no plugin.
# 2. Under load: JOBS pods started at once, LOAD_PODS in all, with weir-nri connected; the
#    time of each of weir-nri's handlers (its debug log: "handled in N us"), per event: count,
#    p50, p99 and max, against containerd's 2 s request timeout (past it, containerd drops
#    the plugin and runs the container without it: docs/nri-protocol.md §4). Also the time
#    weir-nri took at startup to load and verify the datapath on a node that had none (work
#    no StartContainer does any more).
#
#   sudo tests/bench/nri-bench.sh [ROUNDS=12] [PODS_PER_ROUND=5] [JOBS=4] [LOAD_PODS=40]
#
# Needs `make` (weir-nri) and tests/e2e/cri/setup.sh (run here, idempotent). Uses its own
# containerd, bridge, subnet, weir state and bpffs folder, and removes them on exit.
set -euo pipefail

ROUNDS=${1:-12}
PER=${2:-5}
JOBS=${3:-4}
LOAD_PODS=${4:-40}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${WEIR_OUTPUT:-$ROOT/.output}
T=/run/weir-test/nri-bench
export WEIR_CRI_DIR=$T/containerd
export WEIR_NRI_SOCK=$T/nri/nri.sock
export WEIR_CRI_BRIDGE=weirnbench0
export WEIR_CRI_SUBNET4=10.89.80.0/24
export WEIR_CRI_SUBNET6=
export WEIR_CRI_CGROUP_ROOT=/weir-test-nri-bench
. "$ROOT/tests/e2e/cri/lib.sh"

STATE=$T/state
BPFFS=/sys/fs/bpf/weir-test-nri-bench
CONF=$T/weir.conf
NRI_PID=
ANN="egress.weir.io=allow 10.89.80.0/24 tcp/80,udp/5000; allow any udp/53; deny 10.89.80.99/32"

. "$HERE/lib.sh"
bench_require_root nri-bench
[ -x "$OUT/bin/weir-nri" ] || { echo "nri-bench: $OUT/bin/weir-nri missing: run make" >&2; exit 1; }

nri_start() {
	local mark
	mark=$(cri_log_mark)
	"$OUT/bin/weir-nri" -s "$WEIR_NRI_SOCK" -c "$CONF" -l debug </dev/null >>"$T/weir-nri.log" 2>&1 &
	NRI_PID=$!
	cri_wait_nri_plugin 10-weir 15 "$mark"
}
nri_stop() {
	[ -n "$NRI_PID" ] || return 0
	kill -TERM "$NRI_PID" 2>/dev/null || true
	wait "$NRI_PID" || true
	NRI_PID=
}
cleanup() {
	set +e
	cri_stop >/dev/null 2>&1
	nri_stop
	rm -rf "$STATE" "$BPFFS" "$T/times" "$T/weir-nri.log"
}
trap cleanup EXIT

"$ROOT/tests/e2e/cri/setup.sh" >/dev/null 2>&1 || { echo "nri-bench: setup.sh failed" >&2; exit 1; }
cri_stop >/dev/null 2>&1 || true
rm -rf "$STATE" "$BPFFS"
mkdir -p "$STATE" "$T/times"
: >"$T/weir-nri.log"
stat -f -c %T /sys/fs/bpf 2>/dev/null | grep -q '^bpf' || mount -t bpf bpf /sys/fs/bpf
mkdir -p "$BPFFS"
printf '{ "state_dir": "%s", "bpffs": "%s", "endpoint_cgroups": ["%s/**"] }\n' \
	"$STATE" "$BPFFS" "$WEIR_CRI_CGROUP_ROOT" >"$CONF"
cri_start

# Warm up both paths (image, snapshotter). The bpffs folder is new: this first weir-nri loads
# and verifies the datapath at startup.
nri_start
load_ms=$(sed -n 's/.*node datapath ready (\([0-9]*\) ms).*/\1/p' "$T/weir-nri.log" | head -n 1)
cri bench 3 -a "$ANN" >/dev/null
nri_stop
: >"$T/weir-nri.log"
cri bench 3 -a "$ANN" >/dev/null

for ((r = 1; r <= ROUNDS; r++)); do
	for mode in with without; do
		# alternate which goes first
		[ $((r % 2)) = 0 ] && mode=$([ "$mode" = with ] && echo without || echo with)
		[ "$mode" = with ] && nri_start
		cri bench "$PER" -a "$ANN" | jq -r '.all_ms[]' >>"$T/times/$mode"
		[ "$mode" = with ] && nri_stop
	done
done

mw=$(median <"$T/times/with")
mo=$(median <"$T/times/without")
nw=$(wc -l <"$T/times/with")
no=$(wc -l <"$T/times/without")
echo "pod+container start (RunPodSandbox+CreateContainer+StartContainer), annotated pod, $(containerd --version | awk '{print $3}')"
printf '  with weir-nri:    median %.1f ms (%d starts)\n' "$mw" "$nw"
printf '  without weir-nri: median %.1f ms (%d starts)\n' "$mo" "$no"
awk -v a="$mw" -v b="$mo" 'BEGIN { printf "  ratio %.3f, difference %+.1f ms\n", a / b, a - b }'
# weir-nri's own share: time spent in its handlers per pod (its debug log), the rest of the
# difference is containerd's NRI round trips.
awk '/ handled in [0-9]+ us$/ && ($3 == "RunPodSandbox" || $3 == "CreateContainer" || $3 == "StartContainer") {
	t[$5] += $(NF - 1) } END { for (p in t) print t[p] / 1000 }' "$T/weir-nri.log" >"$T/times/handlers"
if [ -s "$T/times/handlers" ]; then
	printf '  in weir-nri handlers (RunPodSandbox+CreateContainer+StartContainer): median %.2f ms per pod\n' \
		"$(median <"$T/times/handlers")"
fi
echo "  load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"

# --- 2. handlers under load ----------------------------------------------------------------
: >"$T/weir-nri.log"
nri_start
cri bench "$LOAD_PODS" -j "$JOBS" -a "$ANN" >"$T/times/load.json"
nri_stop
echo
echo "weir-nri's handlers, $LOAD_PODS annotated pods started $JOBS at a time (plus the Synchronize of each connection)"
printf '  %-18s %6s %9s %9s %9s\n' handler count "p50 ms" "p99 ms" "max ms"
awk '/ handled in [0-9]+ us$/ { print $3, $(NF - 1) }' "$T/weir-nri.log" | sort -k1,1 -k2,2n |
	awk '{ n[$1]++; v[$1, n[$1]] = $2 }
	function q(h, p,   i) { i = int(p * n[h] + 0.999999); if (i < 1) i = 1; return v[h, i] / 1000 }
	END { for (h in n) printf "  %-18s %6d %9.2f %9.2f %9.2f\n", h, n[h], q(h, 0.5), q(h, 0.99), v[h, n[h]] / 1000 }' |
	sort
slowest=$(awk '/ handled in [0-9]+ us$/ { if ($(NF - 1) > m) m = $(NF - 1) } END { print m / 1000 }' "$T/weir-nri.log")
printf '  slowest handler: %.2f ms, %.2f%% of containerd'"'"'s 2 s request timeout\n' "$slowest" \
	"$(awk -v s="$slowest" 'BEGIN { print s / 20 }')"
printf '  pod+container start under this load: median %.1f ms, max %.1f ms\n' \
	"$(jq .median_ms "$T/times/load.json")" "$(jq .max_ms "$T/times/load.json")"
[ -n "$load_ms" ] && echo "  datapath load and verification at weir-nri's startup (not in any handler): $load_ms ms"
