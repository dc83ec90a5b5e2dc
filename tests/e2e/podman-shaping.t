#!/bin/bash
# Traffic shaping with podman: containers run with --annotation
# kubernetes.io/{egress,ingress}-bandwidth=..., weir-hook attached by podman through hooks.d
# (the shipped file's matcher, which fires for the Kubernetes bandwidth keys alone), real
# traffic measured with iperf3 over the suite's podman network (--internal: nothing leaves
# the bridge) to a peer container without weir.
#
#   prove -v tests/e2e/podman-shaping.t      (root; `make` first)
#
# iperf3 runs from the host's binary in the container's network namespace and cgroup (the
# busybox rootfs has no iperf3), as in shaping.t: weir's programs hang off the cgroup, so its
# sockets are the container's. The yardsticks are shaping.t's (lib/shaping.sh): goodput
# within 5 % of the limit less headers, readings below retried, above failing at once.
#
# 1 Gbit/s is checked where the machine can carry more: the same path without a limit is
# measured first in this run; below 1.1 Gbit/s that direction says SKIP with the figure.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/podman.sh
. "$E2E_LIB/podman.sh"
# shellcheck source=lib/shaping.sh
. "$E2E_LIB/shaping.sh"

e2e_init
require_weir
require_cmd iperf3 ss nsenter
podman_init
podman_hooks_install

DURATION=4 # seconds of each TCP measurement; the first is left out (-O 1)

# in_ctr NAME CMD...: CMD in container NAME's network namespace and cgroup.
in_ctr() {
	local name=$1 pid
	shift
	pid=$("$PODMAN" inspect -f '{{.State.Pid}}' "$(podman_name "$name")")
	in_cgroup_netns "$pid" "$(podman_cgroup "$name")" "$@"
}

# The peer: a podman container without weir annotations, iperf3 servers in its network
# namespace (one per port).
podman_run peer --ip4 "$POD_A4" -- /bin/sleep 3600 || bail_out "the peer did not start: $(cat "$E2E_TMP/peer.err")"
PEER_PID=$("$PODMAN" inspect -f '{{.State.Pid}}' "$(podman_name peer)")
peer_net() { nsenter --net="/proc/$PEER_PID/ns/net" "$@"; }
iperf_listening() { peer_net ss -Htln "sport = :$1" | grep -q .; }
for port in 5201 5202 5203; do
	# a simple command, not peer_net: $! is then iperf3's own pid (nsenter execs it), not a
	# subshell's whose death would leave the server running
	nsenter --net="/proc/$PEER_PID/ns/net" iperf3 -s -p "$port" >"$E2E_TMP/iperf-$port.log" 2>&1 &
	on_exit kill_wait "$!"
	retry 5 iperf_listening "$port" || bail_out "iperf3 server on port $port did not start"
done

# iperf NAME OUT PORT ARGS...: an iperf3 client in NAME towards the peer; JSON in OUT.
iperf() {
	local name=$1 out=$2 port=$3
	shift 3
	in_ctr "$name" iperf3 -J -c "$POD_A4" -p "$port" "$@" >"$out" 2>&1
}

# start NAME ANNOTATIONS...: a container that sleeps, one test.
start() {
	local name=$1 a args=()
	shift
	for a in "$@"; do
		args+=(--ann "$a")
	done
	if podman_run "$name" "${args[@]}" -- /bin/sleep 3600; then
		pass "$name: podman run with ${*:-no annotation}"
	else
		fail "$name: podman run with ${*:-no annotation}"
		diag_block "podman stderr" "$(cat "$E2E_TMP/$name.err")"
	fi
}

# ---------------------------------------------------------------------------------------
diag "1. 10 Mbit/s and 100 Mbit/s, egress and ingress, from the Kubernetes annotations alone"
start s10 kubernetes.io/egress-bandwidth=10M kubernetes.io/ingress-bandwidth=10M
start s100 kubernetes.io/egress-bandwidth=100M kubernetes.io/ingress-bandwidth=100M
MTU=$(in_ctr s10 cat /sys/class/net/eth0/mtu)
is "$("$WEIR" stats --json "$(podman_id s10)" 2>&1 | jq -r '[.egress.rate_limit_bps, .ingress.rate_limit_bps] | join(" ")' 2>&1)" \
	"10000000 10000000" "podman's hooks.d ran weir-hook for the bandwidth annotations: weir stats shows both limits"

goodput "10M egress (TCP)" 10000000 "$E2E_TMP/s10-out.json" \
	iperf s10 "$E2E_TMP/s10-out.json" 5201 -t "$DURATION" -O 1
goodput "10M ingress (TCP)" 10000000 "$E2E_TMP/s10-in.json" \
	iperf s10 "$E2E_TMP/s10-in.json" 5201 -t "$DURATION" -O 1 -R
goodput "100M egress (TCP)" 100000000 "$E2E_TMP/s100-out.json" \
	iperf s100 "$E2E_TMP/s100-out.json" 5202 -t "$DURATION" -O 1
goodput "100M ingress (TCP)" 100000000 "$E2E_TMP/s100-in.json" \
	iperf s100 "$E2E_TMP/s100-in.json" 5202 -t "$DURATION" -O 1 -R

# ---------------------------------------------------------------------------------------
diag "2. two containers with different limits, sending at once, each get their own"
both_at_once() {
	local d=$1 p10 p100
	iperf s10 "$E2E_TMP/par10-$d.json" 5201 -t "$DURATION" -O 1 "${@:2}" &
	p10=$!
	iperf s100 "$E2E_TMP/par100-$d.json" 5202 -t "$DURATION" -O 1 "${@:2}" &
	p100=$!
	wait "$p10" || true
	wait "$p100" || true
}
goodput_pair "10M next to 100M, egress" 10000000 "$E2E_TMP/par10-out.json" \
	"100M next to 10M, egress" 100000000 "$E2E_TMP/par100-out.json" both_at_once out
goodput_pair "10M next to 100M, ingress" 10000000 "$E2E_TMP/par10-in.json" \
	"100M next to 10M, ingress" 100000000 "$E2E_TMP/par100-in.json" both_at_once in -R

# ---------------------------------------------------------------------------------------
diag "3. UDP is held to the limit, both ways"
for dir in egress ingress; do
	rev=()
	[ $dir = egress ] || rev=(-R)
	udp_held "UDP $dir at 30 Mbit/s into a 10 Mbit/s limit" 10000000 "$(default_burst $dir 10000000)" \
		"$E2E_TMP/udp-$dir.json" iperf s10 "$E2E_TMP/udp-$dir.json" 5201 -u -b 30M -t "$DURATION" "${rev[@]}"
done

# skip_measured REASON: a SKIP that a measurement of the machine decided (also in CI: a
# machine too slow for the case is no missing installation).
skip_measured() {
	_tap_n=$((_tap_n + 1))
	echo "ok $_tap_n # SKIP $1"
}

# ---------------------------------------------------------------------------------------
diag "4. 1 Gbit/s, where the machine carries more without a limit"
# The path without a limit first, in this run: a container without annotations (no weir).
start plain
declare -A free=()
for dir in egress ingress; do
	rev=()
	[ $dir = egress ] || rev=(-R)
	best=0
	for _ in 1 2; do
		iperf plain "$E2E_TMP/plain-$dir.json" 5203 -t 2 "${rev[@]}" || true
		got=$(rx_bps "$E2E_TMP/plain-$dir.json")
		best=$(awk -v a="$best" -v b="${got:-0}" 'BEGIN { printf "%.0f", (b > a ? b : a) }')
	done
	free[$dir]=$best
	diag "$dir without a limit: $(mbit "$best")"
done
podman_stop plain || true
start s1g kubernetes.io/egress-bandwidth=1G kubernetes.io/ingress-bandwidth=1G
for dir in egress ingress; do
	rev=()
	[ $dir = egress ] || rev=(-R)
	if awk -v g="${free[$dir]}" 'BEGIN { exit !(g < 1100000000) }'; then
		skip_measured "1G $dir: this machine carries $(mbit "${free[$dir]}") without a limit (measured in this run), not above 1.1 Gbit/s"
		continue
	fi
	goodput "1G $dir (TCP)" 1000000000 "$E2E_TMP/s1g-$dir.json" \
		iperf s1g "$E2E_TMP/s1g-$dir.json" 5203 -t "$DURATION" -O 1 "${rev[@]}"
done

# ---------------------------------------------------------------------------------------
diag "5. stop: nothing left"
for n in s10 s100 s1g; do
	podman_stop "$n" || fail "$n: podman rm" "$(cat "$E2E_TMP/$n.rm")"
done
podman_stop peer || true
own_weir_empty

done_testing
