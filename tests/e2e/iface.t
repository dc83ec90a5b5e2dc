#!/bin/bash
# Ingress at the interface: weir's tc program on a container's host-side veth drops what the
# container's ingress policy denies before the container's kernel answers it without a socket
# (an echo request, a SYN to a closed port), where the cgroup programs never see it.
#
#   prove -v tests/e2e/iface.t        (root; `make` first)
#
# runc, its hooks and weir run in a network namespace this test makes ("the node", $NODE):
# each container's veth has its far end there, as a CNI's has on a real node, and the test's
# packets come from there. Nothing touches the host's own network namespace.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/runc.sh
. "$E2E_LIB/runc.sh"
# shellcheck source=lib/tc.sh
. "$E2E_LIB/tc.sh"
# shellcheck source=lib/checks.sh
. "$E2E_LIB/checks.sh"

e2e_init
require_weir
require_cmd tc bpftool
NODE=$E2E_PREFIX-node
ip netns add "$NODE"
on_exit ip netns del "$NODE"
on_exit runc_cleanup_all # before the namespace goes (cleanups run in reverse order)
ip -n "$NODE" link set lo up
ip netns exec "$NODE" sysctl -qw net.ipv4.ping_group_range="0 2147483647" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
printf '#!/bin/sh\nexec nsenter --net=/run/netns/%s %q "$@"\n' "$NODE" "$(command -v runc)" >"$E2E_TMP/bin/runc-node"
chmod +x "$E2E_TMP/bin/runc-node"
RUNC=$E2E_TMP/bin/runc-node
runc_init
# veth-hook.sh: the veth's far end in the hook's own namespace, the node's
PEER_NS=.

# A packet dropped at the egress of the node's own veth is dropped before it leaves the sender's
# own namespace: a ping from the node learns that at once (ENOBUFS), like any local qdisc drop;
# a forwarded packet (another pod's) just disappears. Either way no reply comes.
NOBODY=192.0.2.250 # an address nobody has: "allow $NOBODY tcp/7" makes ingress default-deny
PSIZE=56
nx() { ip netns exec "$NODE" "$@"; }
# nw WTOOL-ARGS: wtool from the node (the container's peer), see wrun
nw() { wrun nx "$WTOOL" "$@"; }
cw() { runc_wtool "$@"; } # wtool in a container (lib/runc.sh)

start() { runc_start_pass "$@"; } # NAME IDX BUNDLE-OPTIONS... -- CMD (lib/runc.sh)


# iface_of ID: the interface weir's record names
iface_of() { weir_record "$1" | jq -r '.interface.name // empty'; }
iface_tc_of() { weir_record "$1" | jq -r '.interface.tc // empty'; }

wait_settled() { wait_quiet "$1" '[.ingress, .egress]'; }
snap() { SNAP_PREV=${SNAP:-'{}'} SNAP=$(weir_snapshot "$1"); }
delta() {
	local p out=()
	for p in "$@"; do
		out+=("$(stats_delta "$SNAP_PREV" "$SNAP" "$p")")
	done
	echo "${out[*]}"
}

# ---------------------------------------------------------------------------------------
diag "1. default-deny ingress: no echo reply, no reset, counted once at the interface"
start deny 1 --ingress "allow $NOBODY tcp/7" -- /bin/wtool tcp-server 9000
id=$(runc_id deny)
retry 5 grep -q 'listening tcp/9000' "$(runc_bundle_dir deny)/stdout" || diag "server in deny did not start"
is "$(iface_of "$id") $(iface_tc_of "$id")" "p1 tcx" "weir list names the host-side veth p1, attached with tcx"
if has_weir_prog p1; then
	pass "bpftool net shows weir_iface_egress on p1"
else
	fail "bpftool net shows weir_iface_egress on p1" "$(tc_progs p1)"
fi
wait_settled "$id"
snap "$id"
nw ping "$(gw_addr4 1 | sed 's/1$/2/')" 1 "$PSIZE" 1000
wlike '^(ETIMEDOUT|ENOBUFS)' "IPv4: a ping to the container gets no reply (ingress denies ICMP)"
nw ping "fd77:0:0:1::2" 1 "$PSIZE" 1000
wlike '^(ETIMEDOUT|ENOBUFS)' "IPv6: the same"
snap "$id"
is "$(delta .ingress.policy_dropped.packets .ingress.policy_dropped.bytes .ingress.icmp.packets .egress.icmp.packets)" \
	"2 $((20 + 8 + PSIZE + 40 + 8 + PSIZE)) 0 0" \
	"counters: 2 echo requests dropped ($((20 + 8 + PSIZE)) + $((40 + 8 + PSIZE)) bytes), nothing passed either way"
for fam in 4 6; do
	addr=10.200.1.2
	[ $fam = 4 ] || addr=fd77:0:0:1::2
	# one SYN: a connect timeout below the first retransmission (1 s)
	nw connect "$addr" 9001 600
	wlike '^ETIMEDOUT' "IPv$fam: a SYN to a closed port gets no reset (the scan sees nothing)"
	nw connect "$addr" 9000 600
	wlike '^ETIMEDOUT' "IPv$fam: a SYN to the open port is dropped too"
done
snap "$id"
is "$(delta .ingress.policy_dropped.packets .ingress.tcp.packets .egress.tcp.packets .egress.tcp_resets)" \
	"4 0 0 0" "counters: 4 SYNs dropped, once each; no TCP passed, no reset left"
cw deny ping 10.200.1.1 1 "$PSIZE" 2000
wlike '^ok' "the container's own ping to the node is answered (a reply of its flow)"
cw deny connect 10.200.1.1 9 1000
wlike '^ECONNREFUSED' "the container's connect to a closed port of the node gets its reset"

# ---------------------------------------------------------------------------------------
diag "2. an allowed peer is answered: echo replies and resets"
start allow 2 --ingress "allow 10.200.2.1 icmp,tcp; allow fd77:0:0:2::1 icmp,tcp" -- /bin/sleep 3600
id2=$(runc_id allow)
if has_weir_prog p2; then
	pass "weir_iface_egress on p2"
else
	fail "weir_iface_egress on p2" "$(tc_progs p2)"
fi
wait_settled "$id2"
snap "$id2"
nw ping 10.200.2.2 1 "$PSIZE" 2000
wlike '^ok' "IPv4: a ping the ingress policy allows is answered"
nw ping fd77:0:0:2::2 1 "$PSIZE" 2000
wlike '^ok' "IPv6: the same"
nw connect 10.200.2.2 9001 2000
wlike '^ECONNREFUSED' "IPv4: a SYN to a closed port from an allowed peer gets its reset"
nw connect fd77:0:0:2::2 9001 2000
wlike '^ECONNREFUSED' "IPv6: the same"
snap "$id2"
is "$(delta .ingress.policy_dropped.packets)" 0 "nothing dropped"

# ---------------------------------------------------------------------------------------
diag "3. audit mode drops nothing at the interface"
start aud 3 --mode audit --ingress "allow $NOBODY tcp/7" -- /bin/sleep 3600
id3=$(runc_id aud)
wait_settled "$id3"
snap "$id3"
nw ping 10.200.3.2 1 "$PSIZE" 2000
wlike '^ok' "audit: the ping is answered"
nw connect 10.200.3.2 9001 2000
wlike '^ECONNREFUSED' "audit: the closed port resets"
snap "$id3"
is "$(delta .ingress.policy_dropped.packets)" 0 "audit: nothing dropped"

# ---------------------------------------------------------------------------------------
diag "4. after delete, nothing of weir's is left on the node"
for c in deny allow aud; do
	runc_stop "$c" || diag "runc delete $c: $(cat "$(runc_bundle_dir "$c")/delete.log")"
done
pins=$(find "$WEIR_BPFFS/ifaces" -mindepth 1 2>/dev/null || true)
is "$pins" "" "no tcx link pinned under $WEIR_BPFFS/ifaces"
is "$(bpftool map dump pinned "$WEIR_BPFFS/maps/weir_ifaces" -j 2>/dev/null | jq length)" 0 "weir_ifaces is empty"

# ---------------------------------------------------------------------------------------
diag "5. a pod: two containers share a network namespace and its interface"
POD=$E2E_PREFIX-pod
ip netns add "$POD"
on_exit ip netns del "$POD"
ip -n "$NODE" link add p50 type veth peer name eth0 netns "$POD"
ip -n "$NODE" addr add 10.200.50.1/24 dev p50
ip -n "$NODE" -6 addr add fd77:0:0:50::1/64 dev p50 nodad
ip -n "$NODE" link set p50 up
ip -n "$POD" link set lo up
ip -n "$POD" addr add 10.200.50.2/24 dev eth0
ip -n "$POD" -6 addr add fd77:0:0:50::2/64 dev eth0 nodad
ip -n "$POD" link set eth0 up
# a CNI's own program on the same hook: a cls_bpf filter (classic BPF, returns "no match")
nx tc qdisc add dev p50 clsact
nx tc filter add dev p50 egress pref 100 handle 0x1 bpf bytecode '1,6 0 0 0,'
other() { nx tc filter show dev p50 egress | grep -c 'pref 100 bpf'; }
cmp_num "$(other)" -ge 1 "the test's own filter is on p50 before any container"
retry 5 nx "$WTOOL" ping 10.200.50.2 1 "$PSIZE" 500 >/dev/null 2>&1 || true
nw ping 10.200.50.2 1 "$PSIZE" 2000
wlike '^ok' "without weir the pod answers pings"

start poda - --netns "/run/netns/$POD" --ingress "allow $NOBODY tcp/7" -- /bin/sleep 3600
ida=$(runc_id poda)
is "$(iface_of "$ida") $(iface_tc_of "$ida")" "p50 tcx" "poda: weir list names p50"
wait_settled "$ida"
snap "$ida"
nw ping 10.200.50.2 1 "$PSIZE" 1000
wlike '^(ETIMEDOUT|ENOBUFS)' "poda alone (ingress denies ICMP): no reply"
snap "$ida"
is "$(delta .ingress.policy_dropped.packets)" 1 "counted at poda"

start podb - --netns "/run/netns/$POD" --ingress "allow 10.200.50.1 icmp" -- /bin/sleep 3600
idb=$(runc_id podb)
is "$(iface_of "$idb")" p50 "podb: weir list names p50 too"
wait_settled "$idb"
snap "$ida"
nw ping 10.200.50.2 1 "$PSIZE" 2000
wlike '^ok' "podb allows ICMP from the node: the pod answers (any endpoint allowing is enough)"
snap "$ida"
is "$(delta .ingress.policy_dropped.packets)" 0 "nothing dropped"
runc_stop podb || diag "runc delete podb: $(cat "$(runc_bundle_dir podb)/delete.log")"
snap "$ida"
nw ping 10.200.50.2 1 "$PSIZE" 1000
wlike '^(ETIMEDOUT|ENOBUFS)' "podb gone: poda's policy alone again, no reply"
snap "$ida"
is "$(delta .ingress.policy_dropped.packets)" 1 "counted at poda"
if has_weir_prog p50; then
	pass "weir's program stays on p50 while poda runs"
else
	fail "weir's program stays on p50 while poda runs" "$(tc_progs p50)"
fi
runc_stop poda || diag "runc delete poda: $(cat "$(runc_bundle_dir poda)/delete.log")"
if has_weir_prog p50; then
	fail "the last container of the pod deleted: weir's program is off p50, which lives on" "$(tc_progs p50)"
else
	pass "the last container of the pod deleted: weir's program is off p50, which lives on"
fi
cmp_num "$(other)" -ge 1 "the test's own filter on p50 is still there"
nw ping 10.200.50.2 1 "$PSIZE" 2000
wlike '^ok' "the pod answers pings again"

# ---------------------------------------------------------------------------------------
diag "6. weir gc of a killed container takes its program off the interface"
start podc - --netns "/run/netns/$POD" --ingress "allow $NOBODY tcp/7" -- /bin/sleep 3600
idc=$(runc_id podc)
if has_weir_prog p50; then
	pass "podc: weir's program on p50"
else
	fail "podc: weir's program on p50" "$(tc_progs p50)"
fi
"$RUNC" kill "$idc" KILL
runc_wait_stopped podc 10 || true
retry 5 rmdir "$(runc_cgroup podc)" || true
gcout=$("$WEIR" gc --json 2>&1) || true
cmp_num "$(jq -r .detached <<<"$gcout" 2>/dev/null || echo 0)" -ge 1 "weir gc detaches the killed container"
if has_weir_prog p50; then
	fail "after gc weir's program is off p50" "$(tc_progs p50)"
else
	pass "after gc weir's program is off p50"
fi
cmp_num "$(other)" -ge 1 "the test's own filter on p50 is still there"
is "$(find "$WEIR_BPFFS/ifaces" -mindepth 1 2>/dev/null)" "" "no tcx link pinned under $WEIR_BPFFS/ifaces"
"$RUNC" delete -f "$idc" >/dev/null 2>&1 || true

# ---------------------------------------------------------------------------------------
diag "7. the clsact fallback (tc_attach clsact): a cls_bpf filter next to the test's own"
hook_args=("${WEIR_HOOK_ARGS[@]}")
WEIR_HOOK_ARGS=(--config "$(e2e_conf '{"tc_attach": "clsact"}')")
weir_filter() { nx tc filter show dev p50 egress | grep -c 'pref 1 bpf .*handle 0x77e1' || true; }
start podd - --netns "/run/netns/$POD" --ingress "allow $NOBODY tcp/7" -- /bin/sleep 3600
idd=$(runc_id podd)
is "$(iface_of "$idd") $(iface_tc_of "$idd")" "p50 clsact" "podd: weir list says p50, clsact"
is "$(weir_filter)" 1 "tc filter show: weir's filter at priority 1, handle 0x77e1"
cmp_num "$(other)" -ge 1 "the test's own filter is still there"
wait_settled "$idd"
snap "$idd"
nw ping 10.200.50.2 1 "$PSIZE" 1000
wlike '^(ETIMEDOUT|ENOBUFS)' "clsact: a denied ping gets no reply"
nw connect 10.200.50.2 9001 600
wlike '^ETIMEDOUT' "clsact: a SYN to a closed port gets no reset"
snap "$idd"
is "$(delta .ingress.policy_dropped.packets .ingress.icmp.packets .ingress.tcp.packets)" "2 0 0" "clsact: both dropped and counted once"
start pode - --netns "/run/netns/$POD" --ingress "allow 10.200.50.1 icmp" -- /bin/sleep 3600
nw ping 10.200.50.2 1 "$PSIZE" 2000
wlike '^ok' "clsact: with a second container that allows ICMP the pod answers"
runc_stop pode || true
is "$(weir_filter)" 1 "clsact: weir's filter stays while podd runs"
runc_stop podd || true
is "$(weir_filter)" 0 "clsact: the pod's last container deleted, weir's filter is gone"
cmp_num "$(other)" -ge 1 "the test's own filter is still there"

# someone else's filter in weir's slot: the container is refused, nothing of weir's is left
nx tc filter add dev p50 egress pref 1 handle 0x77e1 bpf bytecode '1,6 0 0 0,'
runc_bundle podf - --netns "/run/netns/$POD" --ingress "allow $NOBODY tcp/7" -- /bin/sleep 3600
before=$(endpoint_dirs)
rc=0
runc_start podf || rc=$?
err=$(runc_err podf)
if [ "$rc" -ne 0 ] && grep -q "weir's filter (egress, priority 1, handle 0x77e1) to p50" <<<"$err"; then
	pass "a foreign filter in weir's slot: the container is refused with weir's message"
else
	fail "a foreign filter in weir's slot: the container is refused with weir's message" "exit $rc" "$err"
fi
left=()
[ "$(endpoint_dirs)" = "$before" ] || left+=("endpoint folders: $(endpoint_dirs)")
[ -z "$(weir_record "$(runc_id podf)")" ] || left+=("record: $(weir_record "$(runc_id podf)")")
[ "$(bpftool map dump pinned "$WEIR_BPFFS/maps/weir_ifaces" -j 2>/dev/null | jq length)" = 0 ] || left+=("weir_ifaces: $(bpftool map dump pinned "$WEIR_BPFFS/maps/weir_ifaces" 2>&1)")
none_left "refused: no record, endpoint or interface entry left" "${left[@]}"
if nx tc filter show dev p50 egress | grep -q 'pref 1 bpf .*handle 0x77e1'; then
	pass "the foreign filter in weir's slot is still there"
else
	fail "the foreign filter in weir's slot is still there"
fi
"$RUNC" delete -f "$(runc_id podf)" >/dev/null 2>&1 || true
nx tc filter del dev p50 egress pref 1 handle 0x77e1 bpf
WEIR_HOOK_ARGS=("${hook_args[@]}")

ok_run "weir gc runs" "$WEIR" gc
own_weir_empty
done_testing
