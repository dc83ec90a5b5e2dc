#!/bin/bash
# weir-hook on untrusted input: a missing, garbled or hostile OCI state or config.json gets one
# precise line on stderr and a non-zero exit (the runtime refuses the container), and leaves
# nothing registered, pinned or attached. The hook is run directly, as a runtime would run it,
# with no PATH in its environment.
#
#   prove -v tests/e2e/hook.t        (root; `make` first)

# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"

e2e_init
require_weir
require_cmd jq bpftool

CG2=$(cgroup2_mount)
CG=$CG2/$E2E_PREFIX-hook
mkdir -p "$CG" "$E2E_TMP/b"
on_exit rmdir "$CG"
sh -c "echo \$\$ > '$CG/cgroup.procs'; exec sleep 1000" &
pid=$!
on_exit kill "$pid"
sleep 0.2
good_cfg='{"ociVersion":"1.0.2","annotations":{"egress.weir.io":"allow any udp/53"}}'
echo "$good_cfg" >"$E2E_TMP/b/config.json"

ids_before=$(ls "$WEIR_STATE/ids" 2>/dev/null | sort)
eps_before=$(endpoint_dirs)

# refused STDIN-TEXT EXPECTED-MESSAGE-PART DESCRIPTION
refused() {
	local out rc=0
	out=$(env -i "$WEIR_HOOK" createRuntime <<<"$1" 2>&1 >/dev/null) || rc=$?
	if [ "$rc" -ne 0 ] && [ "$(grep -c . <<<"$out")" = 1 ] && [[ $out == *"$2"* ]]; then
		pass "$3"
	else
		fail "$3" "exit $rc, expected one line containing: $2" "got: $out"
	fi
}
state() { # ID PID BUNDLE
	jq -nc --arg id "$1" --argjson pid "$2" --arg b "$3" \
		'{ociVersion: "1.0.2", id: $id, status: "creating", pid: $pid, bundle: $b}'
}

refused "" "the OCI state on stdin is not valid JSON" "empty state"
refused "{not json" "the OCI state on stdin is not valid JSON" "garbled state"
refused "[1,2]" "the OCI state on stdin is not a JSON object" "state that is not an object"
refused '{"pid": 1, "bundle": "/tmp"}' 'OCI state: missing "id" string' "state without an id"
refused "$(state "x/../../etc" "$pid" "$E2E_TMP/b")" 'container id "x/../../etc": expected 1-128 characters' \
	"an id that would escape the state folder"
refused "$(jq -c '.pid = "12"' <<<"$(state h1 "$pid" "$E2E_TMP/b")")" '"pid": expected a positive process id' \
	"a pid that is not a number"
refused "$(state h1 -5 "$E2E_TMP/b")" '"pid": expected a positive process id' "a negative pid"
refused "$(state h1 "$pid" relative/path)" '"bundle": expected an absolute path' "a relative bundle"
refused "$(state h1 "$pid" "$E2E_TMP/missing")" "$E2E_TMP/missing/config.json: No such file" \
	"a bundle without config.json"
mkdir -p "$E2E_TMP/garbled"
printf '{"annotations": {' >"$E2E_TMP/garbled/config.json"
refused "$(state h1 "$pid" "$E2E_TMP/garbled")" "$E2E_TMP/garbled/config.json is not valid JSON" \
	"a garbled config.json"
mkdir -p "$E2E_TMP/nonstr"
echo '{"annotations": {"egress.weir.io": 5}}' >"$E2E_TMP/nonstr/config.json"
refused "$(state h1 "$pid" "$E2E_TMP/nonstr")" 'annotation "egress.weir.io" is not a string' \
	"an annotation value that is not a string"
mkdir -p "$E2E_TMP/big"
head -c 20000000 /dev/zero | tr '\0' ' ' >"$E2E_TMP/big/config.json"
refused "$(state h1 "$pid" "$E2E_TMP/big")" "config.json: too large" "a 20 MB config.json"
refused "$(state h1 999999999 "$E2E_TMP/b")" "cannot find the cgroup v2 of pid 999999999" \
	"a pid that does not exist"
out=$(env -i "$WEIR_HOOK" frobnicate <<<"{}" 2>&1) && rc=0 || rc=$?
is "$rc:$out" '2:weir-hook: unknown stage "frobnicate": expected createRuntime, prestart or poststop' \
	"an unknown stage"
cfgbad=$E2E_TMP/weir.conf
echo '{"fail_closed": true}' >"$cfgbad"
out=$(env -i "$WEIR_HOOK" --config "$cfgbad" createRuntime <<<"$(state h1 "$pid" "$E2E_TMP/b")" 2>&1) && rc=0 || rc=$?
like "$rc:$out" "^1:weir-hook: $cfgbad: unknown key \"fail_closed\": expected state_dir" \
	"an unknown node configuration key names the key"

# fail_open: a node-side failure lets the container run, with a warning; bad annotations still refuse
cfgopen=$E2E_TMP/open.conf
echo '{"fail_open": true}' >"$cfgopen"
out=$(env -i "$WEIR_HOOK" --config "$cfgopen" createRuntime <<<"$(state h1 999999999 "$E2E_TMP/b")" 2>&1) && rc=0 || rc=$?
like "$rc:$out" "^0:weir-hook: warn: h1: running UNENFORCED \\(fail_open\\): cannot find the cgroup v2 of pid 999999999" \
	"fail_open: a node-side failure lets the container run, with a warning"
mkdir -p "$E2E_TMP/badann"
echo '{"annotations":{"egress.weir.io":"allow 10.0.0.300/8"}}' >"$E2E_TMP/badann/config.json"
out=$(env -i "$WEIR_HOOK" --config "$cfgopen" createRuntime <<<"$(state h1 "$pid" "$E2E_TMP/badann")" 2>&1) && rc=0 || rc=$?
like "$rc:$out" '^1:weir-hook: egress.weir.io: rule 1 .*bad peer "10.0.0.300/8"' \
	"fail_open: a bad annotation still refuses the container"

is "$(ls "$WEIR_STATE/ids" 2>/dev/null | sort)" "$ids_before" "no endpoint id was taken"
is "$(endpoint_dirs)" "$eps_before" "no endpoint folder was pinned"
is "$(cgroup_progs "$CG")" "" "nothing is attached to the cgroup"
is "$(weir_record h1)" "" "no record was written"

# the same state, well formed, attaches; poststop with no pid detaches
ok_run "a well-formed state attaches" env -i "$WEIR_HOOK" createRuntime <<<"$(state "$E2E_PREFIX-h2" "$pid" "$E2E_TMP/b")"
ok_run "prestart after createRuntime is a no-op (attach is idempotent)" \
	env -i "$WEIR_HOOK" prestart <<<"$(state "$E2E_PREFIX-h2" "$pid" "$E2E_TMP/b")"
is "$(cgroup_progs "$CG" | grep -c weir_egress)" 1 "attached once"
ok_run "poststop detaches" env -i "$WEIR_HOOK" poststop <<<"{\"id\":\"$E2E_PREFIX-h2\",\"status\":\"stopped\"}"
is "$(cgroup_progs "$CG")" "" "nothing attached after poststop"
ok_run "poststop of a container weir never saw succeeds" \
	env -i "$WEIR_HOOK" poststop <<<'{"id":"never-seen","status":"stopped"}'

done_testing
