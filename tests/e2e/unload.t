#!/bin/bash
# weir unload: the node datapath goes (programs, maps, node links, the anchor cgroup), but
# never while an endpoint is attached; the next container start loads it again.
#
#   prove -v tests/e2e/unload.t        (root; `make` first)

# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"

e2e_init
require_weir
require_cmd jq bpftool

CG2=$(cgroup2_mount)
CG=$CG2/$E2E_PREFIX-unload
ID=$E2E_PREFIX-unload
mkdir -p "$E2E_TMP/b"
echo '{"ociVersion":"1.0.2","annotations":{"egress.weir.io":"allow any"}}' >"$E2E_TMP/b/config.json"
spawn_in_cgroup "$CG"
pid=$SPAWNED
state=$(jq -nc --arg id "$ID" --argjson pid "$pid" --arg b "$E2E_TMP/b" \
	'{ociVersion: "1.0.2", id: $id, status: "creating", pid: $pid, bundle: $b}')
echo "$state" >"$E2E_TMP/state.json"
on_exit sh -c "'$WEIR_HOOK' --config '$E2E_CONF' poststop <'$E2E_TMP/state.json'"

ok_run "an endpoint attaches (the datapath is loaded)" "$WEIR_HOOK" "${WEIR_HOOK_ARGS[@]}" createRuntime <<<"$state"
out=$("$WEIR" unload 2>&1) && rc=0 || rc=$?
like "$rc:$out" "^1:weir: unload: endpoints are attached" "unload is refused while an endpoint is attached"
check_loaded() { [ -e "$WEIR_BPFFS/progs/weir_egress" ] && [ -e "$WEIR_BPFFS/maps/weir_policy" ]; }
if check_loaded; then pass "the datapath is still pinned"; else fail "the datapath is still pinned"; fi
is "$(cgroup_progs "$CG" | grep -c weir_egress)" 1 "and the endpoint still enforced"

ok_run "poststop detaches" "$WEIR_HOOK" "${WEIR_HOOK_ARGS[@]}" poststop <<<"$state"
# the suite's own weir: nothing else is attached in it, so unload must go through
# the ids of the programs this datapath pinned (the node may run other BPF of its own)
ids=$(for f in "$WEIR_BPFFS"/progs/*; do bpftool -j prog show pinned "$f" | jq -r .id; done | sort)
ok_run "weir unload" "$WEIR" unload
if [ ! -e "$WEIR_BPFFS" ]; then pass "nothing is left under $WEIR_BPFFS"; else
	fail "nothing is left under $WEIR_BPFFS" "$(find "$WEIR_BPFFS" | head)"
fi
if [ ! -d "$CG2/weir.anchor" ]; then pass "the anchor cgroup is gone"; else
	fail "the anchor cgroup is gone"
fi
# a program is freed once its last reference goes, after an RCU grace period
progs_left() { bpftool -j prog show | jq -r '.[].id' | sort | comm -12 - <(echo "$ids"); }
none_left_in_kernel() { [ -z "$(progs_left)" ]; }
retry 5 none_left_in_kernel || true
is "$(progs_left)" "" "none of its $(echo "$ids" | grep -c .) programs is left in the kernel"
ok_run "the next container start loads the datapath again" "$WEIR_HOOK" "${WEIR_HOOK_ARGS[@]}" createRuntime <<<"$state"
is "$(cgroup_progs "$CG" | grep -c weir_egress)" 1 "and enforces it"
ok_run "poststop detaches it again" "$WEIR_HOOK" "${WEIR_HOOK_ARGS[@]}" poststop <<<"$state"
own_weir_empty

done_testing
