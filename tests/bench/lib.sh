# shellcheck shell=bash
# Shared by the benchmark scripts.

# median: the median of the numbers on standard input, one a line.
median() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_require_root NAME
bench_require_root() {
	[ "$(id -u)" = 0 ] || { echo "$1: run as root" >&2; exit 1; }
}

# bench_init NAME: from the repository's root, with the build's binaries (ROOT, BIN) and root
# rights; the script's own options are its to parse.
bench_init() {
	cd "$(dirname "${BASH_SOURCE[1]}")/../.." || exit 1
	ROOT=$PWD
	# shellcheck disable=SC2034 # for the script that sources this file
	BIN=$ROOT/${OUTPUT:-.output}/bin
	bench_require_root "$1"
}

# bench_wait TIMEOUT_S CMD...: poll until CMD succeeds; the benchmark stops after TIMEOUT_S.
bench_wait() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "bench: gave up waiting for: $*" >&2
			exit 1
		fi
		sleep 0.05
	done
}

# bench_listening NETNS PORT...: each TCP PORT has a listener in NETNS.
bench_listening() {
	local ns=$1 out p
	shift
	out=$(ip netns exec "$ns" ss -Hltn) || return 1
	for p in "$@"; do
		grep -qE ":${p}[[:space:]]" <<<"$out" || return 1
	done
}

# bench_in_cgroup PID DIR: PID is in the cgroup DIR.
bench_in_cgroup() { grep -qx "$1" "$2/cgroup.procs"; }

# bench_reads_ring PID: PID holds a BPF ring buffer map (type 27) open: `weir flows --follow`
# has attached to the event ring.
bench_reads_ring() { grep -qsx 'map_type:[[:space:]]*27' /proc/"$1"/fdinfo/*; }

# bench_settled CMD...: CMD prints the same before and after 0.3 s of quiet (for bench_wait:
# a reader has drained what was sent).
bench_settled() {
	local a b
	a=$("$@")
	sleep 0.3 # the quiet window itself, not a wait for something
	b=$("$@")
	[ "$a" = "$b" ]
}

# bench_own_weir PREFIX TMP: a weir of the benchmark's own (state in TMP, bpffs folder
# /sys/fs/bpf/PREFIX, endpoints in the cgroups /PREFIX and /PREFIX-*), so that the node's weir and its
# endpoint_cgroups play no part; BENCH_CONF names its config. bench_own_weir_unload removes
# its datapath and folders.
bench_own_weir() {
	BENCH_BPFFS=/sys/fs/bpf/$1
	# shellcheck disable=SC2034 # for the script that sources this file
	BENCH_CONF=$2/weir.conf
	if [ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" != bpf_fs ]; then
		mount -t bpf bpf /sys/fs/bpf || return 1
	fi
	mkdir -m 0700 "$BENCH_BPFFS" || return 1
	jq -n --arg s "$2/state" --arg b "$BENCH_BPFFS" --arg p "/$1" \
		'{state_dir: $s, bpffs: $b, endpoint_cgroups: [$p, $p + "-*"]}' >"$BENCH_CONF"
}

bench_own_weir_unload() {
	[ -n "${BENCH_CONF:-}" ] && [ -f "$BENCH_CONF" ] || return 0
	"$BIN/weir" --config "$BENCH_CONF" unload >/dev/null 2>&1
	rm -rf "${BENCH_BPFFS:?}/weir" && rmdir "$BENCH_BPFFS"
}
