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

# bench_cgroup2: where the cgroup v2 hierarchy is mounted.
bench_cgroup2() { awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo; }

# bench_own_weir_conf KEY=JSON...: add settings to the config bench_own_weir wrote
# (e.g. max_rules=65536).
bench_own_weir_conf() {
	local kv
	for kv in "$@"; do
		jq --arg k "${kv%%=*}" --argjson v "${kv#*=}" '.[$k] = $v' "$BENCH_CONF" >"$BENCH_CONF.new"
		mv "$BENCH_CONF.new" "$BENCH_CONF"
	done
}

# bench_veth_pair PREFIX NET: network namespaces PREFIX-c (client, NET.1 on bench0) and
# PREFIX-s (server, NET.2 on bench1), joined by a veth made in them (so the names are theirs
# alone); NET is the first three octets (10.125.0).
bench_veth_pair() {
	ip netns add "$1-c"
	ip netns add "$1-s"
	ip link add bench0 netns "$1-c" type veth peer name bench1 netns "$1-s"
	ip -n "$1-c" addr add "$2.1/24" dev bench0
	ip -n "$1-s" addr add "$2.2/24" dev bench1
	ip -n "$1-c" link set bench0 up
	ip -n "$1-s" link set bench1 up
	ip -n "$1-c" link set lo up
	ip -n "$1-s" link set lo up
}

# bench_veth_pair_del PREFIX: the namespaces go, their processes are killed first.
bench_veth_pair_del() {
	local ns p
	for ns in "$1-c" "$1-s"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
}

# bench_sockperf: sockperf, which only the benchmarks use, so install-deps.sh leaves it out
bench_sockperf() {
	command -v sockperf >/dev/null || apt-get install -y -q sockperf >/dev/null
}

# bench_servers NETNS ADDR: iperf3 (5201) and sockperf (TCP 11111) servers in NETNS, listening
# when it returns; bench_veth_pair_del stops them.
bench_servers() {
	bench_sockperf
	ip netns exec "$1" iperf3 -s -B "$2" -p 5201 >/dev/null 2>&1 &
	ip netns exec "$1" sockperf server --tcp -i "$2" -p 11111 >/dev/null 2>&1 &
	bench_wait 10 bench_listening "$1" 5201 11111
}

# bench_run_in CGROUP NETNS CMD...: CMD in the cgroup directory CGROUP and the namespace NETNS.
bench_run_in() {
	# shellcheck disable=SC2016 # expanded by the inner sh
	sh -c 'echo $$ >"$1/cgroup.procs"; shift; exec ip netns exec "$@"' sh "$@"
}

# bench_rr CGROUP NETNS ADDR SECONDS: TCP request/response latency (sockperf ping-pong against
# bench_servers), "p50 p99" in us as sockperf reports them (half the round trip).
bench_rr() {
	bench_run_in "$1" "$2" sockperf ping-pong --tcp -i "$3" -p 11111 -t "$4" 2>&1 |
		awk '/percentile 50.000/ { p50 = $NF } /percentile 99.000/ { p99 = $NF }
			END { if (p50 == "") exit 1; print p50, p99 }'
}

# bench_tput CGROUP NETNS ADDR SECONDS STREAMS: TCP throughput (iperf3 against bench_servers)
# in Gbit/s; retried while the server is still busy with the previous client.
bench_tput() {
	local out
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		out=$(bench_run_in "$1" "$2" iperf3 -c "$3" -t "$4" -P "$5" -J 2>&1) || true
		if jq -e '.end.sum_received.bits_per_second' <<<"$out" >/dev/null 2>&1; then
			jq '.end.sum_received.bits_per_second / 1e9' <<<"$out"
			return 0
		fi
		sleep 0.2 # the server is still finishing the last test: nothing to wait on but time
	done
	echo "bench: iperf3 failed: $(jq -r '.error // empty' <<<"$out" 2>/dev/null || head -c 300 <<<"$out")" >&2
	return 1
}

# bench_oci_state ID PID STATUS BUNDLE: the OCI state a runtime hands its hooks.
bench_oci_state() {
	printf '{"ociVersion":"1.0.2","id":"%s","status":"%s","pid":%d,"bundle":"%s"}' "$1" "$3" "$2" "$4"
}

# bench_diff A B: the median of the per-line differences A - B of two files of one number a line
# (per-round figures of two options: noise between rounds hits both alike).
bench_diff() { paste "$1" "$2" | awk '{ print $1 - $2 }' | median; }

# bench_ratio A B: the same for the ratios A / B.
bench_ratio() { paste "$1" "$2" | awk '{ print ($2 == 0 ? 0 : $1 / $2) }' | median; }
