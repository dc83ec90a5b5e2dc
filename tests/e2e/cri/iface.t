#!/bin/bash
# Ingress at the interface through weir-nri (TAP, run with prove): a real containerd with CRI and
# NRI, pods on the CNI bridge plugin's veths (whose node end is in the node's namespace, where
# weir-nri runs), real pings and SYNs from a peer pod over the bridge. Shows:
#   - a pod whose ingress policy denies ICMP gets weir's tc program on its veth (tcx) and
#     answers no ping; a SYN to a closed port gets no reset; the drops are counted exactly;
#   - a pod whose policy allows the peer answers the ping and resets the SYN;
#   - removing the pods leaves no interface attachment (no pinned link, no weir_ifaces entry).
# Its own containerd (folder, sockets, bridge, subnet, cgroup root) and weir state and bpffs.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T=/run/weir-test/nri-iface
BPFFS=/sys/fs/bpf/weir-test-nri-iface
export WEIR_CRI_DIR=$T/containerd
export WEIR_NRI_SOCK=$T/nri/nri.sock
export WEIR_CRI_BRIDGE=weirif0
export WEIR_CRI_SUBNET4=10.89.83.0/24
export WEIR_CRI_SUBNET6=
export WEIR_CRI_CGROUP_ROOT=/weir-test-nri-iface
export WEIR_CRI_IMAGE=localhost/weir-test/busybox-wtool:1
SUITE_TOOLS=wtool
# shellcheck source=tests/e2e/cri/suite.sh
. "$HERE/suite.sh"
suite_init weir weir-nri wtool

dropped() { weir stats "$1" --json 2>/dev/null | jq -r '.ingress.policy_dropped.packets'; }
# wtool in container $1: the first word of its answer (ok or the errno name)
cw() {
	local c=$1 out
	shift
	out=$(cri exec "$c" -- wtool "$@" 2>/dev/null | head -n 1)
	echo "${out%% *}"
}
weir_prog_on() { bpftool -j net show dev "$1" 2>/dev/null | grep -q weir_iface_egre; }

PLAN=14
echo "1..$PLAN"
cri_start 2>"$WORK/err" || { diag_file "$WORK/err"; bail "containerd did not start"; }
nri_start 2>"$WORK/err" || { diag_file "$WORK/err"; bail "weir-nri did not connect"; }
ok 0 "weir-nri registers with containerd"

podP=$(cri runp peer -l weir-test=iface) || bail "cannot run the peer pod"
CP=$(cri run "$podP" cli -- sleep 3600) || bail "cannot run the peer container"
P=$(cri ip "$podP")

# --- a pod whose ingress denies everything but a service nobody uses --------------------------
podD=$(cri runp deny -l weir-test=iface -a "ingress.weir.io=allow 192.0.2.250 tcp/7") || bail "cannot run pod deny"
cD=$(cri run "$podD" srv -- wtool tcp-server 9000) || bail "cannot run container srv"
D=$(cri ip "$podD")
dev=$(rec_field "$cD" iface_name)
is "$(rec_field "$cD" iface_tc)" tcx "its record names the pod's host-side veth ($dev), attached with tcx"
check "bpftool net shows weir_iface_egress on $dev" -- weir_prog_on "$dev"
d0=$(dropped "$cD")
is "$(cw "$CP" ping "$D" 1 56 1000)" ETIMEDOUT "a ping from the peer pod gets no reply (ingress denies ICMP)"
is "$(cw "$CP" connect "$D" 9001 600)" ETIMEDOUT "a SYN to a closed port gets no reset"
is "$(cw "$CP" connect "$D" 9000 600)" ETIMEDOUT "a SYN to the open port is dropped too"
is "$(($(dropped "$cD") - d0))" 3 "counted: 3 ingress policy drops, one per packet"

# --- a pod that allows the peer -------------------------------------------------------------
podA=$(cri runp allow -l weir-test=iface -a "ingress.weir.io=allow $P/32 icmp,tcp") || bail "cannot run pod allow"
cA=$(cri run "$podA" srv -- sleep 3600) || bail "cannot run container srv in pod allow"
A=$(cri ip "$podA")
check "weir_iface_egress on the allowed pod's veth too" -- weir_prog_on "$(rec_field "$cA" iface_name)"
is "$(cw "$CP" ping "$A" 1 56 2000)" ok "a ping the policy allows is answered"
is "$(cw "$CP" connect "$A" 9001 2000)" ECONNREFUSED "a SYN to a closed port from the allowed peer gets its reset"
is "$(dropped "$cA")" 0 "nothing dropped"

cri --timeout 60 rmp "$podD" "$podA" >/dev/null 2>"$WORK/err"
ok $? "the pods are stopped and removed"
check "no interface attachment is left (no pinned tcx link, no weir_ifaces entry)" -- \
	wait_for 10 bash -c "[ -z \"\$(find '$BPFFS/weir/ifaces' -mindepth 1)\" ] && [ \"\$(bpftool map dump pinned '$BPFFS/weir/maps/weir_ifaces' -j | jq length)\" = 0 ]"
nri_stop
ok $? "weir-nri stops cleanly"
tap_done
