#!/bin/bash
# A test "CNI" for runc: an OCI createRuntime hook that gives the container an eth0.
#
#   veth-hook.sh PEER_NETNS IDX        (OCI state JSON on stdin, with the container's pid)
#
# Creates a veth pair inside the test's peer network namespace (never in the host's), moves
# one end into the container's netns as eth0 and addresses both ends. PEER_NETNS "." is the
# hook's own network namespace: iface.t runs runc (and so its hooks) in a namespace it made,
# which then plays the node's part (the veth's far end is where weir runs).
#   container eth0  10.200.IDX.2/24  fd77:0:0:IDX::2/64   default routes via the peer end
#   peer     pIDX   10.200.IDX.1/24  fd77:0:0:IDX::1/64
# MACs are fixed (02:77:00:00:IDX:01 peer side, :02 container side).
# Hooks get no PATH: set one. IPv6 addresses are nodad so they are usable at once.
set -euo pipefail
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

peer=$1
idx=$2
state=$(cat)
pid=$(jq -r '.pid // empty' <<<"$state")
[ -n "$pid" ] || { echo "veth-hook: no pid in state" >&2; exit 1; }

n=(-n "$peer")
[ "$peer" != . ] || n=()
mac=$(printf '02:77:00:00:%02x' "$idx")
ip "${n[@]}" link add "p$idx" address "$mac:01" type veth peer name eth0 address "$mac:02" netns "$pid"
ip "${n[@]}" addr add "10.200.$idx.1/24" dev "p$idx"
ip "${n[@]}" -6 addr add "fd77:0:0:$idx::1/64" dev "p$idx" nodad
ip "${n[@]}" link set "p$idx" up
ip "${n[@]}" neigh replace "10.200.$idx.2" lladdr "$mac:02" dev "p$idx" nud permanent
ip "${n[@]}" -6 neigh replace "fd77:0:0:$idx::2" lladdr "$mac:02" dev "p$idx" nud permanent

c() { nsenter --net="/proc/$pid/ns/net" "$@"; }
# A quiet netns: no DAD, no router solicitations, static neighbours (no NDP). Kernel-made
# ICMPv6 of the container's netns counts as the container's traffic; keep it to the few MLD
# reports sent when eth0 comes up.
c sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
	net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0 \
	net.ipv6.conf.eth0.router_solicitations=0 net.ipv6.conf.eth0.accept_dad=0
c ip link set lo up
c ip addr add "10.200.$idx.2/24" dev eth0
c ip -6 addr add "fd77:0:0:$idx::2/64" dev eth0 nodad
c ip link set eth0 up
c ip route add default via "10.200.$idx.1"
c ip -6 route add default via "fd77:0:0:$idx::1"
c ip neigh replace "10.200.$idx.1" lladdr "$mac:01" dev eth0 nud permanent
c ip -6 neigh replace "fd77:0:0:$idx::1" lladdr "$mac:01" dev eth0 nud permanent
