#!/bin/bash
# Ingress shaping at the interface: kubernetes.io/ingress-bandwidth on a container with a veth
# into the node is enforced by weir's tc program on the host-side end (weir_iface_egress),
# before the packet enters the container's namespace; the cgroup ingress program leaves it
# alone. Measured with iperf3 between real containers and the node, as shaping.t does for the
# cgroup path (whose veth peers live in a namespace that is not weir's: the cgroup path).
#
#   prove -v tests/e2e/iface-shaping.t        (root; `make` first)
#
# runc, its hooks and weir run in a network namespace this test makes ("the node", as in
# iface.t): each container's veth has its far end there, and the iperf3 servers that send
# into the containers run there. Nothing touches the host's own network namespace. Every
# server is killed when the suite ends, however it ends (on_exit, run from the EXIT trap that
# INT and TERM reach too).

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/runc.sh
. "$E2E_LIB/runc.sh"
# shellcheck source=lib/tc.sh
. "$E2E_LIB/tc.sh"
# shellcheck source=lib/checks.sh
. "$E2E_LIB/checks.sh"
# shellcheck source=lib/shaping.sh
. "$E2E_LIB/shaping.sh"

e2e_init
require_weir
require_cmd tc bpftool iperf3 ss
NODE=$E2E_PREFIX-node
ip netns add "$NODE"
on_exit ip netns del "$NODE"
on_exit runc_cleanup_all # before the namespace goes (cleanups run in reverse order)
ip -n "$NODE" link set lo up
printf '#!/bin/sh\nexec nsenter --net=/run/netns/%s %q "$@"\n' "$NODE" "$(command -v runc)" >"$E2E_TMP/bin/runc-node"
chmod +x "$E2E_TMP/bin/runc-node"
RUNC=$E2E_TMP/bin/runc-node
runc_init
PEER_NS=. # veth-hook.sh: the veth's far end in the hook's own namespace, the node's
nx() { ip netns exec "$NODE" "$@"; }

# Servers in the node, started with ip netns exec itself (it execs the server, so $! is the
# server's pid, not a subshell's). At exit, whatever the exit, they are killed, and so is
# anything else still running in the node's namespace: only this test starts processes there.
_node_pids=()
kill_node_servers() {
	local p
	for p in "${_node_pids[@]}" $(ip netns pids "$NODE" 2>/dev/null); do
		kill "$p" 2>/dev/null || true
	done
	for p in "${_node_pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
}
on_exit kill_node_servers
iperf_listening() { nx ss -Htln "sport = :$1" | grep -q .; }
for port in 5201 5202 5203; do
	ip netns exec "$NODE" iperf3 -s -p "$port" >"$E2E_TMP/iperf-$port.log" 2>&1 &
	_node_pids+=($!)
	retry 5 iperf_listening "$port" || bail_out "iperf3 server on port $port did not start"
done
ip netns exec "$NODE" "$WTOOL" tcp-server 9100 >"$E2E_TMP/rr.log" 2>&1 &
_node_pids+=($!)
retry 5 grep -qs '^listening' "$E2E_TMP/rr.log" || bail_out "tcp-server did not start: $(cat "$E2E_TMP/rr.log")"

# in_ctr NAME CMD...: CMD in container NAME's network namespace and cgroup.
in_ctr() {
	local name=$1
	shift
	in_cgroup_netns "$(runc_pid "$name")" "$(runc_cgroup "$name")" "$@"
}
# iperf NAME GW OUT PORT ARGS...: an iperf3 client in NAME towards the node address GW.
iperf() {
	local name=$1 gw=$2 json=$3 port=$4
	shift 4
	in_ctr "$name" iperf3 -J -c "$gw" -p "$port" "$@" >"$json" 2>&1
}

start() { runc_start_pass "$@"; } # NAME IDX BUNDLE-OPTIONS... -- CMD (lib/runc.sh)

# what weir list says of a container: its interface, how the program is attached, and which
# program shapes its ingress
iface_view() { weir_record "$1" | jq -r '"\(.interface.name // "-") \(.interface.tc // "-") \(.shaping.ingress // "-")"'; }

snap() { SNAP_PREV=${SNAP:-'{}'} SNAP=$(weir_snapshot "$1"); }
delta() {
	local p out=()
	for p in "$@"; do
		out+=("$(stats_delta "$SNAP_PREV" "$SNAP" "$p")")
	done
	echo "${out[*]}"
}

DURATION=4

# ---------------------------------------------------------------------------------------
diag "1. an ingress rate alone: weir's program on the veth, the limit held before the namespace"
start ish 1 --ann kubernetes.io/ingress-bandwidth=10M -- /bin/sleep 3600
start ish100 2 --ann kubernetes.io/ingress-bandwidth=100M -- /bin/sleep 3600
id=$(runc_id ish)
is "$(iface_view "$id")" "p1 tcx interface" \
	"weir list: interface p1, tcx, ingress shaping at the interface (no ingress policy)"
if has_weir_prog p1; then
	pass "bpftool net shows weir_iface_egress on p1"
else
	fail "bpftool net shows weir_iface_egress on p1" "$(tc_progs p1)"
fi
like "$("$WEIR" stats "$id" 2>&1)" 'ingress shaping: at the interface' "weir stats says so too"
MTU=$(in_ctr ish cat /sys/class/net/eth0/mtu)

snap "$id"
goodput "10M ingress (TCP) at the interface" 10000000 "$E2E_TMP/ish-in.json" \
	iperf ish 10.200.1.1 "$E2E_TMP/ish-in.json" 5201 -t "$DURATION" -O 1 -R
goodput "100M ingress (TCP) at the interface" 100000000 "$E2E_TMP/ish100-in.json" \
	iperf ish100 10.200.2.1 "$E2E_TMP/ish100-in.json" 5202 -t "$DURATION" -O 1 -R
snap "$id"
# what the limiter did to the bulk flows, counted at the endpoint: segments past the burst
# dropped, ECN-capable ones marked (few: a shaped container asks for ECN the DCTCP way, which a
# classic-ECN sender declines; see the README)
cmp_num "$(($(delta .ingress.ce_marked) + $(delta .ingress.shaped_dropped.packets)))" -gt 0 \
	"the interface's marks and drops of the TCP flows are counted in the endpoint's ingress counters"

# UDP: what the limiter drops is what the container misses, each counted once (give or take
# the datagrams of the run's edges iperf3 reckons differently; twice would be twice as many)
wait_quiet "$id" '[.ingress]'
snap "$id"
udp_held "UDP at 30 Mbit/s into a 10 Mbit/s limit at the interface" 10000000 \
	"$(default_burst ingress 10000000)" "$E2E_TMP/ish-udp.json" \
	iperf ish 10.200.1.1 "$E2E_TMP/ish-udp.json" 5201 -u -b 30M -t "$DURATION" -R
wait_quiet "$id" '[.ingress]'
snap "$id"
lost=$(jq -r '.end.sum.lost_packets // empty' "$E2E_TMP/ish-udp.json")
dropped=$(delta .ingress.shaped_dropped.packets)
if [ -n "$lost" ] && awk -v d="$dropped" -v l="$lost" 'BEGIN { exit !(l > 100 && d <= l * 1.01 + 10 && d >= l * 0.9) }'; then
	pass "ingress shaped_dropped counts the $dropped datagrams dropped at the interface once (iperf3 lost $lost)"
else
	fail "ingress shaped_dropped counts the dropped datagrams once" "shaped_dropped $dropped, iperf3 lost ${lost:-?}"
fi
got=$(delta .ingress.udp.packets)
recv=$(jq -r '.end.sum.packets - .end.sum.lost_packets' "$E2E_TMP/ish-udp.json" 2>/dev/null || echo 0)
if awk -v g="$got" -v r="$recv" 'BEGIN { exit !(r > 100 && g >= r * 0.99 - 10 && g <= r * 1.01 + 10) }'; then
	pass "the cgroup program counts the $got datagrams that passed, once (iperf3 received $recv)"
else
	fail "the cgroup program counts the datagrams that passed, once" "ingress udp $got, iperf3 received $recv"
fi

# ---------------------------------------------------------------------------------------
diag "2. a small flow's round trip under an ingress bulk flow: weir's limiter against TBF"
# ish (weir, 10 Mbit/s ingress at the interface) and tbf (no weir; a TBF of the same rate on
# the node's end of its veth, burst 65 KiB, latency 25 ms: what the CNI bandwidth plugin does
# on the host side), measured in turn in this run. The node sends one bulk TCP flow into each;
# meanwhile the container times ten small request/response exchanges with the node. A queue
# holds the answers behind the bulk flow; weir's limiter keeps none. Relative, never absolute:
# weir's median must be below half of TBF's.
start tbf 3 -- /bin/sleep 3600
nx tc qdisc add dev p3 root tbf rate 10mbit burst 66560 latency 25ms
check_rr_against_tbf "under an ingress bulk flow at 10 Mbit/s, at the interface" ish 10.200.1.1 tbf 10.200.3.1 -R
for n in ish ish100 tbf; do
	runc_stop "$n" || fail "$n: runc delete" "$(cat "$(runc_bundle_dir "$n")/delete.log")"
done

# ---------------------------------------------------------------------------------------
diag "3. a pod: one limiter per interface while its containers agree on the rate"
POD=$E2E_PREFIX-pod
ip netns add "$POD"
on_exit ip netns del "$POD"
ip -n "$NODE" link add p50 type veth peer name eth0 netns "$POD"
ip -n "$NODE" addr add 10.200.50.1/24 dev p50
ip -n "$NODE" link set p50 up
ip -n "$POD" link set lo up
ip -n "$POD" addr add 10.200.50.2/24 dev eth0
ip -n "$POD" link set eth0 up
start poda - --netns "/run/netns/$POD" --ann kubernetes.io/ingress-bandwidth=10M -- /bin/sleep 3600
start podb - --netns "/run/netns/$POD" --ann kubernetes.io/ingress-bandwidth=10M -- /bin/sleep 3600
ida=$(runc_id poda)
idb=$(runc_id podb)
is "$(iface_view "$ida"), $(iface_view "$idb")" "p50 tcx interface, p50 tcx interface" \
	"two containers at 10M: both shaped at p50"
# both at once: the pod's total is held to the pod's rate, as the CNI plugin holds it
both() {
	iperf poda 10.200.50.1 "$E2E_TMP/pa.json" 5201 -t "$DURATION" -O 1 -R &
	local a=$!
	iperf podb 10.200.50.1 "$E2E_TMP/pb.json" 5202 -t "$DURATION" -O 1 -R || true
	wait "$a" || true
	jq -s '.[0].end.sum_received.bits_per_second + .[1].end.sum_received.bits_per_second | {end: {sum_received: {bits_per_second: .}}}' \
		"$E2E_TMP/pa.json" "$E2E_TMP/pb.json" >"$E2E_TMP/pab.json" 2>/dev/null || true
}
goodput "the pod's two flows together (TCP)" 10000000 "$E2E_TMP/pab.json" both
start podc - --netns "/run/netns/$POD" --ann kubernetes.io/ingress-bandwidth=20M -- /bin/sleep 3600
is "$(iface_view "$ida"), $(iface_view "$(runc_id podc)")" "p50 tcx cgroup, p50 tcx cgroup" \
	"a third at 20M: the rates differ, every container is shaped by its cgroup program"
goodput "poda at 10M, by its cgroup program now (TCP)" 10000000 "$E2E_TMP/pa1.json" \
	iperf poda 10.200.50.1 "$E2E_TMP/pa1.json" 5201 -t "$DURATION" -O 1 -R
runc_stop podc || true
is "$(iface_view "$ida")" "p50 tcx interface" "it leaves: the interface shapes the pod again"
runc_stop podb || true
if has_weir_prog p50; then pass "weir's program stays on p50 while poda runs"; else fail "weir's program stays on p50 while poda runs" "$(tc_progs p50)"; fi
runc_stop poda || true
if has_weir_prog p50; then fail "the pod's last container deleted, weir's program is gone from p50" "$(tc_progs p50)"; else pass "the pod's last container deleted, weir's program is gone from p50"; fi
is "$(find "$WEIR_BPFFS/ifaces" -mindepth 1 2>/dev/null || true)" "" "no tcx link pinned under $WEIR_BPFFS/ifaces"

# ---------------------------------------------------------------------------------------
diag "4. the clsact fallback (tc_attach clsact) shapes too"
hook_args=("${WEIR_HOOK_ARGS[@]}")
WEIR_HOOK_ARGS=(--config "$(e2e_conf '{"tc_attach": "clsact"}')")
weir_filter() { nx tc filter show dev p50 egress | grep -c 'pref 1 bpf .*handle 0x77e1' || true; }
start podd - --netns "/run/netns/$POD" --ann kubernetes.io/ingress-bandwidth=10M -- /bin/sleep 3600
idd=$(runc_id podd)
is "$(iface_view "$idd")" "p50 clsact interface" "weir list: p50, clsact, shaped at the interface"
is "$(weir_filter)" 1 "tc filter show: weir's filter at priority 1, handle 0x77e1"
snap "$idd"
goodput "clsact: 10M ingress (TCP)" 10000000 "$E2E_TMP/pd.json" \
	iperf podd 10.200.50.1 "$E2E_TMP/pd.json" 5201 -t "$DURATION" -O 1 -R
udp_held "clsact: UDP at 30 Mbit/s into 10 Mbit/s" 10000000 "$(default_burst ingress 10000000)" \
	"$E2E_TMP/pd-udp.json" iperf podd 10.200.50.1 "$E2E_TMP/pd-udp.json" 5201 -u -b 30M -t "$DURATION" -R
snap "$idd"
cmp_num "$(delta .ingress.shaped_dropped.packets)" -gt 0 "clsact: the drops are counted"
runc_stop podd || true
is "$(weir_filter)" 0 "clsact: the container deleted, weir's filter is gone"

# someone else's filter in weir's slot: a container that wants the program for shaping only
# is not refused (shaping is no security guarantee); its cgroup program shapes its ingress
nx tc filter add dev p50 egress pref 1 handle 0x77e1 bpf bytecode '1,6 0 0 0,'
start pode - --netns "/run/netns/$POD" --ann kubernetes.io/ingress-bandwidth=10M -- /bin/sleep 3600
ide=$(runc_id pode)
is "$(iface_view "$ide")" "p50 none cgroup" \
	"weir's slot taken: the container runs, its ingress shaped by the cgroup program, the record says so"
udp_held "cgroup fallback: UDP at 30 Mbit/s into 10 Mbit/s" 10000000 "$(default_burst ingress 10000000)" \
	"$E2E_TMP/pe-udp.json" iperf pode 10.200.50.1 "$E2E_TMP/pe-udp.json" 5201 -u -b 30M -t "$DURATION" -R
runc_stop pode || true
nx tc filter del dev p50 egress pref 1 handle 0x77e1 bpf
WEIR_HOOK_ARGS=("${hook_args[@]}")

ok_run "weir gc runs" "$WEIR" gc
own_weir_empty
done_testing
