#!/bin/bash
# weir-hook on untrusted input: a missing, garbled or hostile OCI state or config.json gets one
# precise line on stderr and a non-zero exit (the runtime refuses the container), and leaves
# nothing registered, pinned or attached. The hook is run directly, as a runtime would run it,
# with no PATH in its environment. Also: the cgroups an endpoint may never be (the root, the
# hook's own, an ancestor of an endpoint, one outside the node config's endpoint_cgroups), a
# config.json that is no regular file, a state that never ends (hook_timeout_seconds), and a
# state whose annotations contradict the bundle's.
#
#   prove -v tests/e2e/hook.t        (root; `make` first)

# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"

e2e_init
require_weir
require_cmd jq bpftool mkfifo

CG2=$(cgroup2_mount)

# stop_sleeper PID: kill it and wait, so that its cgroup can be removed right after.
stop_sleeper() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# sleeper_in CGROUP: a process in CGROUP (created, and removed on exit), pid in $SLEEPER.
sleeper_in() {
	local rel=${1#"$CG2"}
	if [ "$1" != "$CG2" ] && [ ! -d "$1" ]; then
		mkdir -p "$1"
		on_exit rmdir "$1"
	fi
	sh -c "echo \$\$ > '$1/cgroup.procs'; exec sleep 1000" &
	SLEEPER=$!
	on_exit stop_sleeper "$SLEEPER"
	retry 5 grep -qx "0::${rel:-/}" "/proc/$SLEEPER/cgroup" || bail_out "pid $SLEEPER did not enter $1"
}

CG=$CG2/$E2E_PREFIX-hook
mkdir -p "$E2E_TMP/b"
sleeper_in "$CG"
pid=$SLEEPER
good_cfg='{"ociVersion":"1.0.2","annotations":{"egress.weir.io":"allow any udp/53"}}'
echo "$good_cfg" >"$E2E_TMP/b/config.json"

# what the suite's own weir holds: nothing, until the end
ids_taken() { find "$WEIR_STATE/ids" -mindepth 1 -printf '%f\n' 2>/dev/null | sort; }

# refused STDIN-TEXT EXPECTED-MESSAGE-PART DESCRIPTION
refused() {
	local out rc=0
	out=$(env -i "$WEIR_HOOK" --config "${CONF:-$E2E_CONF}" createRuntime <<<"$1" 2>&1 >/dev/null) || rc=$?
	if [ "$rc" -ne 0 ] && [ "$(grep -c . <<<"$out")" = 1 ] && [[ $out == *"$2"* ]]; then
		pass "$3"
	else
		fail "$3" "exit $rc, expected one line containing: $2" "got: $out"
	fi
}
state() { # ID PID BUNDLE [ANNOTATIONS-JSON]
	jq -nc --arg id "$1" --argjson pid "$2" --arg b "$3" --argjson ann "${4:-null}" \
		'{ociVersion: "1.0.2", id: $id, status: "creating", pid: $pid, bundle: $b}
		| if $ann == null then . else .annotations = $ann end'
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
# NUL bytes a C string would cut, and text that must not break the one line of the message
bundle() { # NAME JSON: a bundle whose config.json is JSON
	mkdir -p "$E2E_TMP/$1"
	printf '%s\n' "$2" >"$E2E_TMP/$1/config.json"
	echo "$E2E_TMP/$1"
}
refused "$(state h1 "$pid" "$(bundle nul '{"annotations": {"egress.weir.io": "allow any\u0000; deny 10.9.0.0/16"}}')")" \
	"weir-hook: egress.weir.io: control character 0x00 at byte 9: expected printable text" \
	"a NUL in an annotation value (it used to cut the policy to \"allow any\")"
refused "$(state h1 "$pid" "$(bundle nulkey '{"annotations": {"egress.weir.io": "deny any", "egress.weir.io\u0000": "allow any"}}')")" \
	"key \"egress.weir.io\" is followed by \\u0000 (a NUL character)" \
	"a NUL in an annotation key (it used to replace egress.weir.io)"
refused "$(state h1 "$pid" "$(bundle newline '{"annotations": {"egress.weir.io": "allow 10.0.0.1/8\ntcp/80"}}')")" \
	'rule 1 ("allow 10.0.0.1/8\ntcp/80"): "10.0.0.1/8" has host bits set' \
	"a newline inside a rule is escaped in the one-line message"
refused "$(state h1 "$pid" "$(bundle ctlkey '{"annotations": {"egr\u001bess\n.weir.io": "x"}}')")" \
	'weir-hook: "egr\x1bess\n.weir.io": unknown annotation' \
	"control characters in an annotation key are escaped in the message"
out=$(env -i "$WEIR_HOOK" --config "$E2E_CONF" frobnicate <<<"{}" 2>&1) && rc=0 || rc=$?
is "$rc:$out" '2:weir-hook: unknown stage "frobnicate": expected createRuntime, prestart or poststop' \
	"an unknown stage"
cfgbad=$(e2e_conf '{"fail_closed": true}')
out=$(env -i "$WEIR_HOOK" --config "$cfgbad" createRuntime <<<"$(state h1 "$pid" "$E2E_TMP/b")" 2>&1) && rc=0 || rc=$?
like "$rc:$out" "^1:weir-hook: $cfgbad: unknown key \"fail_closed\": expected state_dir" \
	"an unknown node configuration key names the key"

# fail_open: a node-side failure lets the container run, with a warning; bad annotations still refuse
cfgopen=$(e2e_conf '{"fail_open": true}')
out=$(env -i "$WEIR_HOOK" --config "$cfgopen" createRuntime <<<"$(state h1 999999999 "$E2E_TMP/b")" 2>&1) && rc=0 || rc=$?
like "$rc:$out" "^0:weir-hook: warn: h1: running UNENFORCED \\(fail_open\\): cannot find the cgroup v2 of pid 999999999" \
	"fail_open: a node-side failure lets the container run, with a warning"
mkdir -p "$E2E_TMP/badann"
echo '{"annotations":{"egress.weir.io":"allow 10.0.0.300/8"}}' >"$E2E_TMP/badann/config.json"
out=$(env -i "$WEIR_HOOK" --config "$cfgopen" createRuntime <<<"$(state h1 "$pid" "$E2E_TMP/badann")" 2>&1) && rc=0 || rc=$?
like "$rc:$out" '^1:weir-hook: egress.weir.io: rule 1 .*bad peer "10.0.0.300/8"' \
	"fail_open: a bad annotation still refuses the container"

refused "$(state h1 "$pid" "$E2E_TMP/b" '{"egress.weir.io": "allow any"}')" \
	"annotation \"egress.weir.io\" differs between the OCI state and $E2E_TMP/b/config.json: refusing" \
	"a state whose weir annotation differs from config.json's"
refused "$(state h1 "$pid" "$E2E_TMP/b" '{"egress.weir.io": "allow any udp/53", "monitor.weir.io": "off"}')" \
	"annotation \"monitor.weir.io\" is in the OCI state but not in $E2E_TMP/b/config.json" \
	"a state with a weir annotation config.json lacks"
refused "$(state h1 "$pid" "$E2E_TMP/b" '{"io.kubernetes.pod.name": "p"}')" \
	"annotation \"egress.weir.io\" is in $E2E_TMP/b/config.json but not in the OCI state" \
	"a state whose annotations lack config.json's weir annotation"

# ---- inputs that never end: a config.json that is no regular file, a state pipe left open
mkdir -p "$E2E_TMP/fifo" "$E2E_TMP/dir/config.json" "$E2E_TMP/dev"
mkfifo "$E2E_TMP/fifo/config.json"
ln -s /dev/zero "$E2E_TMP/dev/config.json"
for kind in fifo dir dev; do
	refused "$(state h1 "$pid" "$E2E_TMP/$kind")" "cannot read $E2E_TMP/$kind/config.json: not a regular file" \
		"config.json that is no regular file ($kind) is refused at once"
done
tconf=$E2E_TMP/timeout.conf
jq '. + {hook_timeout_seconds: 1}' "$E2E_CONF" >"$tconf"
# the writer keeps the pipe open: without the bound the hook would wait as long as it does
exec 7< <(echo -n '{"ociVersion": "1.0.2", '; exec sleep 60)
writer=$!
on_exit kill "$writer"
out=$(timeout 30 env -i "$WEIR_HOOK" --config "$tconf" createRuntime <&7 2>&1) && rc=0 || rc=$?
exec 7<&-
is "$rc:$out" "1:weir-hook: timed out after 1 s reading the OCI state on standard input (node config hook_timeout_seconds)" \
	"a state that never ends is given up after hook_timeout_seconds, with one line"
echo '{"hook_timeout_seconds": 0}' >"$tconf"
CONF=$tconf refused "$(state h1 "$pid" "$E2E_TMP/b")" '"hook_timeout_seconds": 0: expected an integer from 1 to 3600' \
	"hook_timeout_seconds 0 is refused"

# ---- where an endpoint may never be
root_before=$(cgroup_progs "$CG2")
sleeper_in "$CG2"
refused "$(state h1 "$SLEEPER" "$E2E_TMP/b")" "refusing cgroup $CG2: it is the root cgroup" \
	"a pid in the root cgroup is refused"
is "$(cgroup_progs "$CG2")" "$root_before" "nothing was attached to the root cgroup"

CGO=$CG2/${E2E_PREFIX}x
sleeper_in "$CGO"
refused "$(state h1 "$SLEEPER" "$E2E_TMP/b")" \
	"refusing cgroup $CGO: \"/${E2E_PREFIX}x\" matches no pattern of the node config's endpoint_cgroups" \
	"a cgroup outside the configured endpoint_cgroups is refused"
CONF=/nonexistent-weir.conf refused "$(state h1 "$pid" "$E2E_TMP/b")" "/nonexistent-weir.conf: cannot read" \
	"(an explicit node config that is missing is an error)"
echo '{}' >"$E2E_TMP/defaults.conf"
out=$(env -i "$WEIR_HOOK" --config "$E2E_TMP/defaults.conf" createRuntime <<<"$(state h1 "$pid" "$E2E_TMP/b")" 2>&1) && rc=0 || rc=$?
like "$rc:$out" "^1:weir-hook: refusing cgroup $CG: \"/$E2E_PREFIX-hook\" matches no pattern" \
	"by default only the runtimes' own cgroup trees are endpoints"

CGS=$CG2/$E2E_PREFIX-self
sleeper_in "$CGS"
mkdir -p "$CGS/sub"
on_exit rmdir "$CGS/sub"
# run_in CGROUP STATE: the hook, started inside CGROUP
run_in() {
	sh -c "echo \$\$ > '$1/cgroup.procs' && exec env -i '$WEIR_HOOK' --config '$E2E_CONF' createRuntime" <<<"$2" 2>&1
}
out=$(run_in "$CGS" "$(state h1 "$SLEEPER" "$E2E_TMP/b")") && rc=0 || rc=$?
like "$rc:$out" "^1:weir-hook: refusing cgroup $CGS: weir-hook itself runs in it \(pid [0-9]+\)$" \
	"the cgroup the hook runs in is refused"
out=$(run_in "$CGS/sub" "$(state h1 "$SLEEPER" "$E2E_TMP/b")") && rc=0 || rc=$?
like "$rc:$out" "^1:weir-hook: refusing cgroup $CGS: it is an ancestor of $CGS/sub, where weir-hook itself runs" \
	"an ancestor of the hook's own cgroup is refused"
is "$(cgroup_progs "$CGS")$(cgroup_progs "$CGO")" "" "nothing was attached to the refused cgroups"

CGA=$CG2/$E2E_PREFIX-anc
sleeper_in "$CGA"
apid=$SLEEPER
sleeper_in "$CGA/ctr"
ok_run "a container cgroup nested in another attaches" \
	env -i "$WEIR_HOOK" --config "$E2E_CONF" createRuntime <<<"$(state "$E2E_PREFIX-anc-ctr" "$SLEEPER" "$E2E_TMP/b")"
on_exit sh -c "echo '{\"id\":\"$E2E_PREFIX-anc-ctr\",\"status\":\"stopped\"}' | '$WEIR_HOOK' --config '$E2E_CONF' poststop"
refused "$(state h1 "$apid" "$E2E_TMP/b")" \
	"refusing cgroup $CGA: it is an ancestor of $CGA/ctr (endpoint $E2E_PREFIX-anc-ctr)" \
	"an ancestor of an endpoint's cgroup is refused"
is "$(cgroup_progs "$CGA")" "" "nothing was attached to the ancestor"
ok_run "the nested endpoint detaches" \
	env -i "$WEIR_HOOK" --config "$E2E_CONF" poststop <<<"{\"id\":\"$E2E_PREFIX-anc-ctr\",\"status\":\"stopped\"}"

is "$(ids_taken)" "" "no endpoint id was taken"
is "$(endpoint_dirs)" "" "no endpoint folder was pinned"
is "$(cgroup_progs "$CG")" "" "nothing is attached to the cgroup"
is "$("$WEIR" list --json | jq --arg anc "$E2E_PREFIX-anc-ctr" '[.[] | select(.id != $anc)] | length')" 0 \
	"no record was written (but the nested endpoint's, stopped)"

# the same state, well formed, attaches; poststop with no pid detaches
ok_run "a well-formed state attaches" env -i "$WEIR_HOOK" --config "$E2E_CONF" createRuntime \
	<<<"$(state "$E2E_PREFIX-h2" "$pid" "$E2E_TMP/b" '{"egress.weir.io": "allow any udp/53", "app": "x"}')"
ok_run "prestart after createRuntime is a no-op (attach is idempotent)" \
	env -i "$WEIR_HOOK" --config "$E2E_CONF" prestart <<<"$(state "$E2E_PREFIX-h2" "$pid" "$E2E_TMP/b")"
is "$(cgroup_progs "$CG" | grep -c weir_egress)" 1 "attached once"
ok_run "poststop detaches" env -i "$WEIR_HOOK" --config "$E2E_CONF" poststop <<<"{\"id\":\"$E2E_PREFIX-h2\",\"status\":\"stopped\"}"
is "$(cgroup_progs "$CG")" "" "nothing attached after poststop"
ok_run "poststop of a container weir never saw succeeds" \
	env -i "$WEIR_HOOK" --config "$E2E_CONF" poststop <<<'{"id":"never-seen","status":"stopped"}'
own_weir_empty

done_testing
