#!/bin/bash
# weir gc: what a lost poststop (a crashed runtime, a killed hook) leaves behind is found
# and removed: endpoints whose cgroup is gone are detached with their final counters kept,
# orphan endpoint ids, keys and pin folders are cleaned, expired records are deleted.
# tests/e2e/registry.t runs gc against starts under way and kills the hook mid-attach.
#
#   prove -v tests/e2e/gc.t        (root; `make` first)

# The checks below are shell tests in single quotes, evaluated by check() when it runs them.
# shellcheck disable=SC2016
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"

e2e_init
require_weir
require_cmd jq bpftool

# check DESC SHELL-TEST: pass when the test holds
check() {
	if eval "$2"; then pass "$1"; else fail "$1" "$2"; fi
}

CG2=$(cgroup2_mount)
CG=$CG2/$E2E_PREFIX-gc
ID=$E2E_PREFIX-gc
mkdir -p "$E2E_TMP/bundle"
jq -n '{ociVersion: "1.0.2", annotations: {"egress.weir.io": "allow any udp/53"}}' >"$E2E_TMP/bundle/config.json"

spawn_in_cgroup "$CG"
pid=$SPAWNED
state=$(jq -nc --arg id "$ID" --argjson pid "$pid" --arg b "$E2E_TMP/bundle" \
	'{ociVersion: "1.0.2", id: $id, status: "creating", pid: $pid, bundle: $b}')
ok_run "the hook attaches a process's cgroup" "$WEIR_HOOK" "${WEIR_HOOK_ARGS[@]}" createRuntime <<<"$state"
ep=$(weir_record "$ID" | jq -r .endpoint)
check "endpoint $ep has its link folder" '[ -d "$WEIR_BPFFS/endpoints/$ep" ]'
check "endpoint id $ep is taken" '[ -e "$WEIR_STATE/ids/$ep" ]'

# the container dies and its cgroup is removed, but no poststop ever runs
kill "$pid"
wait "$pid" 2>/dev/null || true
retry 5 rmdir "$CG" || true
is "$(weir_record "$ID" | jq -r .state)" running "without poststop the record still says running"

out=$("$WEIR" gc --json)
cmp_num "$(jq -r .detached <<<"$out")" -ge 1 "weir gc detaches the endpoint whose cgroup is gone"
is "$(weir_record "$ID" | jq -r .state)" stopped "its record is now stopped"
check "its link folder is gone" '[ ! -d "$WEIR_BPFFS/endpoints/$ep" ]'
check "its endpoint id is free again" '[ ! -e "$WEIR_STATE/ids/$ep" ]'
is "$("$WEIR" stats "$ID" --json | jq -r '.counters_available // true')" true \
	"its final counters are kept"

# orphans: what a hook killed between taking its endpoint id and writing its record leaves: an
# id, a keys file, a pin folder, a temporary record. Every writer holds the registry lock, which
# gc takes too, so gc takes them at once, however fresh.
orphan=16000
mkdir -p "$WEIR_BPFFS/endpoints/$orphan" "$WEIR_STATE/keys"
echo "$E2E_PREFIX-nobody" >"$WEIR_STATE/ids/$orphan"
: >"$WEIR_STATE/keys/$orphan"
echo '{' >"$WEIR_STATE/containers/$E2E_PREFIX-nobody.json.tmp.99999999"
out=$("$WEIR" gc --json)
is "$(jq -r .orphans <<<"$out")" 4 "weir gc removes an orphan id, keys file, pin folder and temporary record"
check "all four are gone" '[ ! -e "$WEIR_STATE/ids/$orphan" ] && [ ! -e "$WEIR_STATE/keys/$orphan" ] &&
	[ ! -d "$WEIR_BPFFS/endpoints/$orphan" ] && [ ! -e "$WEIR_STATE/containers/$E2E_PREFIX-nobody.json.tmp.99999999" ]'

# stale map entries: a policy key of an endpoint id nobody holds (a teardown that lost its record)
key="60 00 00 00 81 3e 00 00 00 04 00 00 0a 09 09 00 $(printf '00 %.0s' $(seq 12))"
val="0f $(printf '00 %.0s' $(seq 131))"
# shellcheck disable=SC2086 # the hex bytes are separate words on purpose
bpftool map update pinned "$WEIR_BPFFS/maps/weir_policy" key hex $key value hex $val
out=$("$WEIR" gc --json)
cmp_num "$(jq -r .stale_entries <<<"$out")" -ge 1 "weir gc deletes policy entries of an endpoint id nobody holds"
# shellcheck disable=SC2086
if bpftool map lookup pinned "$WEIR_BPFFS/maps/weir_policy" key hex $key >/dev/null 2>&1; then
	fail "the stale policy entry is gone"
else
	pass "the stale policy entry is gone"
fi

# expiry: a record stopped longer ago than the retention is deleted
cfg=$(e2e_conf '{"stopped_retention_seconds": 0}')
out=$("$WEIR_BIN" --config "$cfg" gc --json)
cmp_num "$(jq -r .expired <<<"$out")" -ge 1 "with a zero retention the stopped record expires"
is "$(weir_record "$ID")" "" "and is no longer listed"

done_testing
