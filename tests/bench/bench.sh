#!/bin/bash
# weir benchmarks: ratios against a baseline measured in the same run (the machine is shared and
# noisy, so absolute numbers alone mean little). Not a test: nothing here passes or fails.
#
#   1. container start: median `runc run -d` with the weir hook and an egress policy, divided by
#      the same without the hook, and the difference in ms.
#   2. throughput: TCP (iperf3) from a cgroup through a veth, with the policy programs attached
#      and 1,000 egress rules, divided by the same cgroup without them.
#
#   3. TCP request/response latency (sockperf ping-pong, p50 and p99) with the same 1,000
#      rules, divided by the same without them.
#   4. The programs' own time per packet (tests/bench/progtime.sh, BPF_PROG_TEST_RUN). The
#      kernel's run_time_ns statistics are not used: they read the clock twice per run, which
#      on a virtual machine costs more than the program itself.
#
# Usage: tests/bench/bench.sh [--starts N] [--rounds N] [--seconds S]   (root)
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUTPUT:-.output}
HOOK=$ROOT/$OUT/bin/weir-hook
STARTS=30
ROUNDS=3
SECONDS_PER=4

while [ $# -gt 0 ]; do
	case $1 in
	--starts) STARTS=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--seconds) SECONDS_PER=$2; shift 2 ;;
	*) echo "bench: unknown option $1" >&2; exit 2 ;;
	esac
done

. tests/bench/lib.sh
bench_require_root bench
[ -x "$HOOK" ] || { echo "bench: build first (make)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/weir-bench.XXXXXX)
PREFIX=weirbench$$
# the benchmark's cgroups (/$PREFIX-*) are nowhere a runtime puts containers by default
CONF=$TMP/weir.conf
printf '{"endpoint_cgroups": ["/%s-*"]}\n' "$PREFIX" >"$CONF"
CG2=$(bench_cgroup2)
cleanup() {
	set +e
	for id in $(runc list -q 2>/dev/null | grep "^$PREFIX" || true); do
		runc delete -f "$id" >/dev/null 2>&1
	done
	[ -n "${SLEEPER:-}" ] && kill "$SLEEPER" 2>/dev/null
	[ -f "$TMP/state-tp.json" ] && "$HOOK" --config "$CONF" poststop <"$TMP/state-tp.json" >/dev/null 2>&1
	bench_veth_pair_del "$PREFIX"
	wait 2>/dev/null
	rmdir "$CG2/$PREFIX-tp" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT


# ---- 1. container start -------------------------------------------------------------------
ROOTFS=$TMP/rootfs
mkdir -p "$ROOTFS/bin" "$ROOTFS/proc" "$ROOTFS/sys" "$ROOTFS/dev" "$ROOTFS/tmp"
cp /bin/busybox "$ROOTFS/bin/busybox"
chroot "$ROOTFS" /bin/busybox --install -s /bin

make_bundle() { # DIR none|noop|weir
	mkdir -p "$1"
	(cd "$1" && runc spec)
	jq --arg rootfs "$ROOTFS" --arg hook "$HOOK" --arg kind "$2" --arg cg "/$PREFIX-$(basename "$1")" \
		--arg conf "$CONF" '
		.process.terminal = false | .process.args = ["sleep", "1000"]
		| .root = {path: $rootfs, readonly: true}
		| .linux.cgroupsPath = $cg
		| if $kind == "weir" then
			.annotations = {"egress.weir.io": "allow 10.0.0.0/8 tcp/443; allow any udp/53; deny 10.9.0.0/16"}
			| .hooks = {createRuntime: [{path: $hook, args: ["weir-hook", "--config", $conf, "createRuntime"]}],
				    poststop: [{path: $hook, args: ["weir-hook", "--config", $conf, "poststop"]}]}
		  elif $kind == "noop" then
			.hooks = {createRuntime: [{path: "/bin/true"}], poststop: [{path: "/bin/true"}]}
		  else . end' "$1/config.json" >"$1/config.new"
	mv "$1/config.new" "$1/config.json"
}

start_once() { # BUNDLE ID -> ms
	local t0 t1
	t0=$(date +%s%N)
	runc run -d -b "$1" "$2" </dev/null >/dev/null 2>"$TMP/runc.err" || { cat "$TMP/runc.err" >&2; exit 1; }
	t1=$(date +%s%N)
	runc delete -f "$2" >/dev/null 2>&1
	echo "scale=3; ($t1 - $t0) / 1000000" | bc
}

make_bundle "$TMP/plain" none
make_bundle "$TMP/noop" noop
make_bundle "$TMP/weir" weir
# warm up both paths (the very first weir start on a node loads the datapath)
start_once "$TMP/plain" "$PREFIX-w0" >/dev/null
start_once "$TMP/weir" "$PREFIX-w1" >/dev/null
: >"$TMP/plain.ms"
: >"$TMP/noop.ms"
: >"$TMP/weir.ms"
for i in $(seq "$STARTS"); do
	start_once "$TMP/plain" "$PREFIX-p$i" >>"$TMP/plain.ms"
	start_once "$TMP/noop" "$PREFIX-n$i" >>"$TMP/noop.ms"
	start_once "$TMP/weir" "$PREFIX-h$i" >>"$TMP/weir.ms"
done
P=$(median <"$TMP/plain.ms")
N=$(median <"$TMP/noop.ms")
W=$(median <"$TMP/weir.ms")
printf 'container start (runc run -d, median of %d): no hook %.2f ms, a no-op hook (/bin/true) %.2f ms, weir %.2f ms\n' "$STARTS" "$P" "$N" "$W"
printf '  weir vs no hook: ratio %.3f, added %.2f ms\n' "$(echo "$W / $P" | bc -l)" "$(echo "$W - $P" | bc -l)"
printf '  weir vs a no-op hook (what weir itself costs): ratio %.3f, added %.2f ms\n' "$(echo "$W / $N" | bc -l)" "$(echo "$W - $N" | bc -l)"

# ---- 2. throughput with 1,000 rules ---------------------------------------------------------
bench_veth_pair "$PREFIX" 10.123.0
bench_servers "$PREFIX-s" 10.123.0.2
mkdir -p "$CG2/$PREFIX-tp"
rr_once() { bench_rr "$CG2/$PREFIX-tp" "$PREFIX-c" 10.123.0.2 "$SECONDS_PER"; } # "p50 p99" in us

# 1,000 rules: 999 decoys and the server's /24, all with ports, so every lookup goes deep
{
	for i in $(seq 0 998); do printf 'allow 10.%d.%d.0/24 tcp/5201,udp/53; ' $((i / 250 + 50)) $((i % 250)); done
	printf 'allow 10.123.0.0/24 tcp/5201,tcp/11111'
} >"$TMP/rules"
mkdir -p "$TMP/tp-bundle"
jq -n --rawfile r "$TMP/rules" '{ociVersion: "1.0.2", annotations: {"egress.weir.io": $r}}' >"$TMP/tp-bundle/config.json"

iperf_once() { bench_tput "$CG2/$PREFIX-tp" "$PREFIX-c" 10.123.0.2 "$SECONDS_PER" 1 || exit 1; } # Gbit/s

sh -c "echo \$\$ > $CG2/$PREFIX-tp/cgroup.procs; exec sleep 100000" &
SLEEPER=$!
bench_wait 5 bench_in_cgroup "$SLEEPER" "$CG2/$PREFIX-tp"
printf '{"ociVersion":"1.0.2","id":"%s-tp","status":"creating","pid":%d,"bundle":"%s"}' \
	"$PREFIX" "$SLEEPER" "$TMP/tp-bundle" >"$TMP/state-tp-create.json"
printf '{"ociVersion":"1.0.2","id":"%s-tp","status":"stopped","bundle":"%s"}' \
	"$PREFIX" "$TMP/tp-bundle" >"$TMP/state-tp.json"

: >"$TMP/bare.gbps"
: >"$TMP/weir.gbps"
: >"$TMP/bare.rr"
: >"$TMP/weir.rr"
for _ in $(seq "$ROUNDS"); do
	iperf_once >>"$TMP/bare.gbps"
	rr_once >>"$TMP/bare.rr"
	"$HOOK" --config "$CONF" createRuntime <"$TMP/state-tp-create.json"
	iperf_once >>"$TMP/weir.gbps"
	rr_once >>"$TMP/weir.rr"
	"$HOOK" --config "$CONF" poststop <"$TMP/state-tp.json"
done
B=$(median <"$TMP/bare.gbps")
T=$(median <"$TMP/weir.gbps")
printf 'TCP throughput (iperf3 %ss, median of %d): bare %.2f Gbit/s, weir with 1,000 rules %.2f Gbit/s\n' \
	"$SECONDS_PER" "$ROUNDS" "$B" "$T"
printf '  ratio %.3f\n' "$(echo "$T / $B" | bc -l)"
BP50=$(cut -d' ' -f1 "$TMP/bare.rr" | median); BP99=$(cut -d' ' -f2 "$TMP/bare.rr" | median)
WP50=$(cut -d' ' -f1 "$TMP/weir.rr" | median); WP99=$(cut -d' ' -f2 "$TMP/weir.rr" | median)
printf 'TCP request/response latency (sockperf ping-pong %ss): bare p50 %.2f us p99 %.2f us; weir with 1,000 rules p50 %.2f us p99 %.2f us\n' \
	"$SECONDS_PER" "$BP50" "$BP99" "$WP50" "$WP99"
printf '  p50 ratio %.3f (%+.2f us), p99 ratio %.3f\n' "$(echo "$WP50 / $BP50" | bc -l)" \
	"$(echo "$WP50 - $BP50" | bc -l)" "$(echo "$WP99 / $BP99" | bc -l)"
echo "program time per packet (BPF_PROG_TEST_RUN, kernel average over 200,000 runs):"
tests/bench/progtime.sh | sed 's/^/  /'
