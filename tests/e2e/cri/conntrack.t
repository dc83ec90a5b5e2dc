#!/bin/bash
# Conntrack across weir-nri restarts (TAP, run with prove): a real containerd with CRI and NRI,
# a pod whose ingress is default-deny holds a UDP flow open to a peer pod that answers only when
# the test says so. Shows:
#   - weir-nri stopped (SIGTERM) and started again, then killed (SIGKILL) and started again:
#     each Synchronize leaves the endpoint as it was, with the same conntrack map in its
#     weir_ct slot and pin, its entry present and its counters not reset (ct_inserted);
#   - the map's weir_ct slot cleared behind weir's back while weir-nri is down: the restart's
#     Synchronize finds the endpoint not intact and puts the pinned map back, entry and all;
#   - the held flow's answer then passes the default-deny ingress, and removing the pod leaves
#     no pin.
# Its own containerd (folder, sockets, bridge, subnet, cgroup root) and weir state and bpffs.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T=/run/weir-test/nri-ct
BPFFS=/sys/fs/bpf/weir-test-nri-ct
export WEIR_CRI_DIR=$T/containerd
export WEIR_NRI_SOCK=$T/nri/nri.sock
export WEIR_CRI_BRIDGE=weirct0
export WEIR_CRI_SUBNET4=10.89.85.0/24
export WEIR_CRI_SUBNET6=
export WEIR_CRI_CGROUP_ROOT=/weir-test-nri-ct
export WEIR_CRI_IMAGE=localhost/weir-test/busybox-wtool:1
SUITE_TOOLS=wtool
# shellcheck source=tests/e2e/cri/suite.sh
. "$HERE/suite.sh"
suite_init weir weir-nri wtool
command -v bpftool >/dev/null || skip_all "bpftool not installed (tests/install-deps.sh)"

AWAIT=
suite_cleanup_extra() { [ -n "$AWAIT" ] && kill "$AWAIT" && wait "$AWAIT"; }

CT=$BPFFS/weir/maps/weir_ct
# ep_key EP: the endpoint id as bpftool's key bytes (four words)
ep_key() { printf '%08x' "$1" | sed -E 's/(..)(..)(..)(..)/0x\4 0x\3 0x\2 0x\1/'; }
# slot_id EP: the map id in the endpoint's weir_ct slot (empty when the slot is empty)
slot_id() {
	# shellcheck disable=SC2046 # the key is four words
	bpftool -j map lookup pinned "$CT" key $(ep_key "$1") 2>/dev/null | jq -r '.inner_map_id // .value // empty' 2>/dev/null
}
pin_id() { bpftool -j map show pinned "${CT}_$1" 2>/dev/null | jq -r '.id // empty'; }
ct_of() { weir stats "$1" --json 2>/dev/null | jq -r '[.conntrack.inserted, .conntrack.entries, .ingress.udp.packets, .ingress.policy_dropped.packets] | map(tostring) | join(" ")'; }
syncs() { grep -cE 'synchronize: [0-9]+ pods' "$NRI_LOG"; }
synced_after() { [ "$(syncs)" -gt "$1" ]; }

# restart HOW: stop weir-nri (SIGTERM or SIGKILL) and start it again; waits for its Synchronize.
restart() {
	local before
	before=$(syncs)
	if [ "$1" = KILL ]; then
		kill -KILL "$NRI_PID" && wait "$NRI_PID" 2>/dev/null
		NRI_PID=
	else
		nri_stop || diag "weir-nri exited $?"
	fi
	[ -z "${2:-}" ] || "$2"
	nri_start 2>"$WORK/err" || { diag_file "$WORK/err"; bail "weir-nri did not connect again"; }
	wait_for 15 synced_after "$before"
}

PLAN=14
echo "1..$PLAN"
cri_start 2>"$WORK/err" || { diag_file "$WORK/err"; bail "containerd did not start"; }
nri_start 2>"$WORK/err" || { diag_file "$WORK/err"; bail "weir-nri did not connect"; }
ok 0 "weir-nri registers with containerd"

# the peer answers each datagram on udp/6000 once /tmp/go exists in its container
podP=$(cri runp peer -l weir-test=ct) || bail "cannot run the peer pod"
# shellcheck disable=SC2016 # the container's shell expands it
CP=$(cri run "$podP" srv -- sh -c 'exec wtool udp-reply-later 6000 /tmp/go >/tmp/late 2>&1') ||
	bail "cannot run the peer container"
P=$(cri ip "$podP")
listening() { cri exec "$CP" -- grep -q '^listening' /tmp/late; }
wait_for 10 listening || bail "the peer's server did not start"

podH=$(cri runp holder -l weir-test=ct -a "egress.weir.io=allow $P/32 udp/6000" \
	-a "ingress.weir.io=allow 192.0.2.250 tcp/7") || bail "cannot run pod holder"
cH=$(cri run "$podH" app -- sleep 3600) || bail "cannot run container app"
H=$(cri ip "$podH")
ep=$(rec_field "$cH" endpoint)
started=$(rec_field "$cH" started_ms)
cri exec "$cH" -- wtool udp-await "$P" 6000 120000 >"$WORK/await" 2>&1 &
AWAIT=$!
got() { cri exec "$CP" -- grep -q "^got 11 from $H\$" /tmp/late; }
check "the holder's datagram reaches the peer, which holds its answer back" -- wait_for 10 got
map=$(slot_id "$ep")
is "$(pin_id "$ep") $(ct_of "$cH")" "$map 1 1 0 0" \
	"endpoint $ep: its weir_ct slot and pin name one map (id $map); 1 flow inserted, 1 present"

restart TERM
is "$(rec_field "$cH" endpoint) $(rec_field "$cH" started_ms) $(rec_field "$cH" state)" "$ep $started running" \
	"weir-nri stopped and started: its Synchronize leaves the endpoint as it was"
is "$(slot_id "$ep") $(pin_id "$ep") $(ct_of "$cH")" "$map $map 1 1 0 0" \
	"... the same conntrack map in slot and pin, ct_inserted not reset, the entry present"

restart KILL
is "$(rec_field "$cH" endpoint) $(rec_field "$cH" started_ms)" "$ep $started" "weir-nri killed and started: the same endpoint"
is "$(slot_id "$ep") $(pin_id "$ep") $(ct_of "$cH")" "$map $map 1 1 0 0" \
	"... the same conntrack map in slot and pin, ct_inserted not reset, the entry present"

# shellcheck disable=SC2046 # the key is four words
clear_slot() { bpftool map delete pinned "$CT" key $(ep_key "$ep"); }
restart TERM clear_slot
check "its weir_ct slot cleared while weir-nri was down: Synchronize attaches it again" -- \
	grep -q "container $cH.*its endpoint is not whole" "$NRI_LOG"
is "$(rec_field "$cH" endpoint) $(slot_id "$ep") $(pin_id "$ep") $(ct_of "$cH")" "$ep $map $map 1 1 0 0" \
	"... on the same endpoint, the pinned map back in its slot with its entry"
grep -F "endpoint $ep" "$NRI_LOG" | grep -F conntrack | sed 's/^/# weir-nri: /'

cri exec "$CP" -- touch /tmp/go
wait "$AWAIT"
AWAIT=
is "$(grep -v elapsed_ms "$WORK/await" | tr '\n' ' ')" "sent ok " \
	"the held flow's answer passes the default-deny ingress after the three restarts"
is "$(ct_of "$cH")" "1 1 1 0" "counted: 1 answer passed, nothing dropped, still 1 flow inserted"

cri --timeout 60 rmp "$podH" "$podP" >/dev/null 2>"$WORK/err"
ok $? "the pods are stopped and removed"
check "its conntrack pin goes with it" -- wait_for 10 bash -c "[ ! -e '${CT}_$ep' ] && [ \"\$(jq -r .state '$STATE/containers/$cH.json')\" = stopped ]"
nri_stop
ok $? "weir-nri stops cleanly"
tap_done
