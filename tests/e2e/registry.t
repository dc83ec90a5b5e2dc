#!/bin/bash
# The endpoint registry under fire. gc and crash recovery must never leave a container cut off
# or unenforced:
#  1. weir gc runs in a loop while containers attach: every endpoint ends intact and enforced.
#  2. weir-hook is killed with SIGKILL at random instants of createRuntime: whatever a kill
#     leaves is visible in weir list, an immediate retry succeeds with an intact endpoint, and
#     after poststop and one gc nothing of any attempt is left.
#  3. a container started again with the same id in a new cgroup after a lost poststop: the new
#     cgroup is attached and enforced.
#  4. records that cannot be read (a mistyped field, too large): listed as unknown; gc, stats
#     and poststop leave them and their endpoint alone, and the container stays enforced.
#  5. the largest policy the node config allows (2 x 40,000 rules, a record of more than
#     1 MiB) attaches, is listed, enforced, and detaches without a stale map entry.
#
# Every process runs in a cgroup of its own and in a network namespace of its own that holds
# only loopback: a connect to the denied TEST-NET address is refused with EPERM by weir, and
# would fail with ENETUNREACH without it, so no packet can leave the machine either way.
#
#   prove -v tests/e2e/registry.t        (root; `make` first)
#   REGISTRY_KILLS=400 REGISTRY_AIMED=200 prove -v tests/e2e/registry.t   (more kills)

# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"

e2e_init
require_weir
require_cmd jq bpftool unshare nsenter timeout
[ -x "$WTOOL" ] || bail_out "$WTOOL missing: run make test-build"

# Kills at random instants (REGISTRY_KILLS), then kills aimed at the inside of an attach: sent
# as soon as the record says "attaching" (REGISTRY_AIMED).
KILLS=${REGISTRY_KILLS:-80}
AIMED=${REGISTRY_AIMED:-40}
PARALLEL_STARTS=60

# A private state folder and bpffs folder: no other suite's endpoints count here.
STATE=$E2E_TMP/state
BPFFS=/sys/fs/bpf/$E2E_PREFIX
PINS=$BPFFS/weir
CONF=$E2E_TMP/weir.conf
mkdir -p "$STATE" "$BPFFS"
# the largest annotations the node config allows: records of more than 1 MiB (section 5)
# and endpoints in this suite's cgroups, /$E2E_PREFIX-reg/NAME, where no runtime puts any
jq -n --arg s "$STATE" --arg b "$BPFFS" --arg p "/$E2E_PREFIX-reg/*" \
	'{state_dir: $s, bpffs: $b, max_annotation_bytes: 1048576, max_rules: 65536, endpoint_cgroups: [$p]}' \
	>"$CONF"
W() { "$WEIR_BIN" --config "$CONF" "$@"; }
H() { "$WEIR_HOOK" --config "$CONF" "$@"; }
on_exit rm -rf "$BPFFS"
on_exit "$WEIR_BIN" --config "$CONF" unload

CG2=$(cgroup2_mount)
BASE=$CG2/$E2E_PREFIX-reg
mkdir -p "$BASE"
cleanup_cgroups() {
	local cg
	for cg in "$BASE"/*/; do
		[ -d "$cg" ] || continue
		xargs -r kill -9 <"$cg/cgroup.procs" 2>/dev/null
		retry 5 rmdir "$cg" 2>/dev/null
	done
	rmdir "$BASE"
}
on_exit cleanup_cgroups
on_exit "$WEIR_BIN" --config "$CONF" gc

BUNDLE=$E2E_TMP/bundle
mkdir -p "$BUNDLE"
jq -n '{ociVersion: "1.0.2", annotations: {"egress.weir.io": "allow 192.0.2.0/24 udp/53"}}' \
	>"$BUNDLE/config.json"

# start_proc NAME: a process in cgroup BASE/NAME and a network namespace of its own; prints pid
start_proc() {
	local cg=$BASE/$1 pid
	mkdir -p "$cg"
	unshare -n sh -c "echo \$\$ >'$cg/cgroup.procs'; exec sleep 1000" </dev/null >/dev/null 2>&1 &
	pid=$!
	retry 5 grep -qx "$pid" "$cg/cgroup.procs" || return 1
	echo "$pid"
}

stop_proc() {
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null || true
}

state_json() { # ID PID STATUS [BUNDLE]: the runtime's state carries config.json's annotations
	local b=${4:-$BUNDLE}
	jq -nc --arg id "$1" --argjson pid "$2" --arg s "$3" --arg b "$b" --slurpfile c "$b/config.json" \
		'{ociVersion: "1.0.2", id: $id, status: $s, pid: $pid, bundle: $b, annotations: $c[0].annotations}'
}
attach() { H createRuntime <<<"$(state_json "$1" "$2" creating)"; }
detach() { H poststop <<<"$(state_json "$1" 0 stopped)"; }

record() { W list --json | jq -c --arg id "$1" '.[] | select(.id == $id)'; }
cgroup_id() { stat -c %i "$1"; }
cgroup_owner() { # CGID: the endpoint weir_cgroups maps it to, or empty
	bpftool -j map dump pinned "$PINS/maps/weir_cgroups" |
		jq -r --argjson k "$1" '.[] | select(.formatted.key == $k) | .formatted.value'
}
nprogs() { bpftool cgroup show "$1" 2>/dev/null | tail -n +2 | grep -c . || true; }

# intact ID CGROUP: why the endpoint of ID is not what "running" promises (empty when it is)
intact() {
	local rec ep owner pins progs
	rec=$(record "$1")
	[ "$(jq -r .state <<<"$rec")" = running ] || { echo "state $(jq -r .state <<<"$rec")"; return; }
	ep=$(jq -r .endpoint <<<"$rec")
	owner=$(cgroup_owner "$(cgroup_id "$2")")
	[ "$owner" = "$ep" ] || { echo "weir_cgroups says ${owner:-nothing}, record says $ep"; return; }
	pins=$(find "$PINS/endpoints/$ep" -mindepth 1 2>/dev/null | grep -c . || true)
	progs=$(nprogs "$2")
	if [ "$pins" -lt 6 ] || [ "$pins" != "$progs" ]; then
		echo "$pins pins, $progs programs on the cgroup"
		return
	fi
	if [ ! -e "$STATE/ids/$ep" ] || [ ! -e "$STATE/keys/$ep" ]; then
		echo "id or keys file of $ep missing"
	fi
}

# enforced PID CGROUP: a denied connect from the process's cgroup and namespace gets EPERM
enforced() {
	local out
	out=$(nsenter -t "$1" -n sh -c "echo \$\$ >'$2/cgroup.procs'; exec '$WTOOL' connect 192.0.2.1 80 500" 2>/dev/null) || true
	[ "${out%% *}" = EPERM ]
}

# check DESC CMD...: pass when CMD succeeds
check() { if "${@:2}"; then pass "$1"; else fail "$1" "command: ${*:2}"; fi; }

# leftovers: files and map entries of no running endpoint (one line each; empty when clean)
leftovers() {
	local running
	running=$(W list --json | jq -r '.[] | select(.state != "stopped") | .endpoint')
	find "$STATE/ids" "$STATE/keys" "$PINS/endpoints" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null |
		sort -u | grep -vxF -f <(echo "$running"; echo _none_) | sed 's/^/endpoint /' || true
	find "$STATE/containers" -name '*.tmp.*' 2>/dev/null || true
	bpftool -j map dump pinned "$PINS/maps/weir_policy" |
		jq -r '.[].formatted.key.ep_id' | sort -u | grep -vxF -f <(echo "$running"; echo _none_) |
		sed 's/^/policy entries of /' || true
}

# --- 1. gc in a loop while containers attach ------------------------------------------------
attach "$E2E_PREFIX-warm" "$(start_proc warm)" || bail_out "the first attach failed (loads the datapath)"
pids=()
for i in $(seq "$PARALLEL_STARTS"); do
	pids[i]=$(start_proc "g$i") || bail_out "cannot start a process in a cgroup"
done
(while [ ! -e "$E2E_TMP/stop-gc" ]; do W gc >/dev/null 2>&1 || true; done) &
gcloop=$!
failed=0
for i in $(seq "$PARALLEL_STARTS"); do
	attach "$E2E_PREFIX-g$i" "${pids[i]}" &
done
for job in $(jobs -p); do
	[ "$job" = "$gcloop" ] && continue
	wait "$job" || failed=$((failed + 1))
done
touch "$E2E_TMP/stop-gc"
wait "$gcloop" || true
is "$failed" 0 "$PARALLEL_STARTS attaches while weir gc runs in a loop all succeed"
broken=()
for i in $(seq "$PARALLEL_STARTS"); do
	why=$(intact "$E2E_PREFIX-g$i" "$BASE/g$i")
	[ -z "$why" ] || broken+=("g$i: $why")
done
is "${#broken[@]}" 0 "every one of them is intact (record, weir_cgroups, pins, programs)" ||
	diag "${broken[@]:0:5}"
bad=0
for i in $(seq "$PARALLEL_STARTS"); do
	enforced "${pids[i]}" "$BASE/g$i" || bad=$((bad + 1))
done
is "$bad" 0 "and every one refuses a denied connect with EPERM"
W gc >/dev/null || true
bad=0
for i in $(seq "$PARALLEL_STARTS"); do
	[ -z "$(intact "$E2E_PREFIX-g$i" "$BASE/g$i")" ] || bad=$((bad + 1))
done
is "$bad" 0 "another gc leaves all of them alone"
for i in $(seq "$PARALLEL_STARTS"); do
	detach "$E2E_PREFIX-g$i" || true
	stop_proc "${pids[i]}"
done
detach "$E2E_PREFIX-warm" || true
is "$(leftovers)" "" "after poststop nothing of them is left"

# --- 2. SIGKILL at random instants of an attach ---------------------------------------------
ID=$E2E_PREFIX-k
pid=$(start_proc k) || bail_out "cannot start a process in a cgroup"
CG=$BASE/k
invisible=0 retry_failed=0 not_intact=0 not_enforced=0 not_clean=0
declare -A left=()
# how long one attach takes here: kills are spread over it
t0=$(date +%s%N)
for i in 1 2 3; do attach "$ID" "$pid" >/dev/null && detach "$ID" >/dev/null; done
span_us=$((($(date +%s%N) - t0) / 3000 / 2)) # an attach is about half of attach + detach
diag "an attach takes about $span_us us here"
# kill_attach I: start an attach and kill it, at a random instant for the first KILLS, then
# as soon as its record says attaching (bash reads the file without a fork: fast enough)
kill_attach() {
	local hp rec=$STATE/containers/$ID.json
	if [ "$1" -le "$KILLS" ]; then
		delay=$(printf '0.%06d' $(((RANDOM * 32768 + RANDOM) % (span_us * 3 / 2 + 1))))
		# a subshell, so that bash's "Killed" notice stays out of the TAP stream
		(timeout --foreground -s KILL "$delay" "$WEIR_HOOK" --config "$CONF" createRuntime \
			<<<"$(state_json "$ID" "$pid" creating)" >/dev/null 2>&1) 2>/dev/null || true
		return
	fi
	delay=aimed
	"$WEIR_HOOK" --config "$CONF" createRuntime <<<"$(state_json "$ID" "$pid" creating)" \
		>/dev/null 2>&1 &
	hp=$!
	while kill -0 "$hp" 2>/dev/null; do
		if [[ -e $rec && $(<"$rec") == *'"attaching"'* ]]; then
			kill -9 "$hp" 2>/dev/null
			break
		fi
	done
	wait "$hp" 2>/dev/null || true
}
for kills in $(seq $((KILLS + AIMED))); do
	kill_attach "$kills"
	st=$(record "$ID" | jq -r '.state // "none"')
	left[$st]=$((${left[$st]:-0} + 1))
	# programs on the cgroup with no record that owns them would be invisible to operators
	if [ "$(nprogs "$CG")" -gt 0 ] && [ "$st" = none ]; then
		invisible=$((invisible + 1))
	fi
	if ! attach "$ID" "$pid" >/dev/null 2>"$E2E_TMP/err"; then
		retry_failed=$((retry_failed + 1))
		[ "$retry_failed" -gt 1 ] || diag "retry after a kill at ${delay}s: $(cat "$E2E_TMP/err")"
	fi
	why=$(intact "$ID" "$CG")
	if [ -n "$why" ]; then
		not_intact=$((not_intact + 1))
		[ "$not_intact" -gt 1 ] || diag "after a kill at ${delay}s: $why"
	fi
	enforced "$pid" "$CG" || not_enforced=$((not_enforced + 1))
	detach "$ID" >/dev/null 2>&1 || true
	[ "$(nprogs "$CG")" = 0 ] || not_clean=$((not_clean + 1))
done
diag "$kills kills left: $(for k in "${!left[@]}"; do printf '%s %s, ' "${left[$k]}" "$k"; done)"
cmp_num "${left[attaching]:-0}" -ge 1 "kills landed inside an attach (its record left attaching)"
is "$invisible" 0 "no kill left programs on a cgroup that weir list does not show"
is "$retry_failed" 0 "an immediate retry after every kill succeeds"
is "$not_intact" 0 "and leaves an intact endpoint"
is "$not_enforced" 0 "that refuses a denied connect with EPERM"
is "$not_clean" 0 "poststop detaches every one of them from the cgroup"
out=$(W gc --json)
is "$(leftovers)" "" "after one gc nothing of $kills killed attaches is left (ids, keys, pins, policy)"
is "$(bpftool -j map dump pinned "$PINS/maps/weir_cgroups" | jq length)" 0 "and weir_cgroups is empty"
is "$(jq -r .unknown <<<"$out")" 0 "and no record is unreadable"

# --- 3. started again in a new cgroup after a lost poststop ---------------------------------
ID=$E2E_PREFIX-r
p1=$(start_proc r)
ok_run "a container attaches" attach "$ID" "$p1"
old=$(record "$ID" | jq -r .endpoint)
stop_proc "$p1"
retry 5 rmdir "$BASE/r"
p2=$(start_proc r) # the same path, a new cgroup
ok_run "the same id attaches again after its cgroup was made anew (no poststop ran)" attach "$ID" "$p2"
is "$(intact "$ID" "$BASE/r")" "" "the new cgroup is the endpoint's, intact"
check "and enforced" enforced "$p2" "$BASE/r"
new=$(record "$ID" | jq -r .endpoint)
check_old_gone() { [ "$old" = "$new" ] || { [ ! -e "$PINS/endpoints/$old" ] && [ ! -e "$STATE/ids/$old" ]; }; }
check "the old endpoint's pins and id are gone" check_old_gone
detach "$ID" && stop_proc "$p2"

# --- 4. unreadable records ------------------------------------------------------------------
ID=$E2E_PREFIX-d
pd=$(start_proc d)
attach "$ID" "$pd" || bail_out "cannot attach $ID"
REC=$STATE/containers/$ID.json
cp "$REC" "$E2E_TMP/good.json"
jq '.endpoint = "seven"' "$E2E_TMP/good.json" >"$REC"
like "$(W list --json | jq -c --arg id "$ID" '.[] | select(.id == $id)')" '"state":"unknown".*field \\"endpoint\\"' \
	"a record with a mistyped field is listed as unknown, naming the field"
ok_run "weir stats survives it" W stats --json
out=$(W gc --json) && rc=0 || rc=$?
is "$rc $(jq -r .unknown <<<"$out")" "1 1" "weir gc reports it (exit 1) and leaves it alone"
ep=$(jq -r .endpoint "$E2E_TMP/good.json")
has_pins() { [ -d "$PINS/endpoints/$ep" ] && [ "$(nprogs "$BASE/d")" -ge 6 ] && [ -e "$STATE/ids/$ep" ]; }
check "its endpoint keeps its id, pins and programs" has_pins
check "and its container stays enforced" enforced "$pd" "$BASE/d"
if detach "$ID" 2>"$E2E_TMP/err"; then
	fail "poststop refuses to guess what an unreadable record owns"
else
	pass "poststop refuses to guess what an unreadable record owns"
fi
like "$(cat "$E2E_TMP/err")" 'field "endpoint"' "and says which field is wrong"
check "the endpoint is still in place after that poststop" has_pins
# too large: more than the 64 MiB readers accept
head -c $((65 << 20)) /dev/zero | tr '\0' ' ' >"$REC"
like "$(W list --json | jq -c --arg id "$ID" '.[] | select(.id == $id)')" 'larger than' \
	"a record over the size bound is listed as unknown"
W gc >/dev/null 2>&1 || true
check "gc leaves its endpoint in place" has_pins
check "and its container enforced" enforced "$pd" "$BASE/d"
cp "$E2E_TMP/good.json" "$REC"
ok_run "once the record is repaired, poststop detaches" detach "$ID"
stop_proc "$pd"
# the final counters of a stopped record are read back field by field too
jq '.final.egress.tcp.packets = "many"' "$REC" >"$E2E_TMP/final.json" && cp "$E2E_TMP/final.json" "$REC"
st=$(W stats "$ID" --json)
is "$(jq -r '.counters_available' <<<"$st")" false "damaged final counters are not shown as counters"
like "$(jq -r '.error' <<<"$st")" 'egress.tcp.packets' "weir stats names the damaged counter"
ok_run "weir metrics renders the node regardless" W metrics
is "$(leftovers)" "" "and nothing is left"

# --- 5. a record of more than 1 MiB ---------------------------------------------------------
ID=$E2E_PREFIX-big
big_rules() { # N: "deny 10.a.b.c" host rules, then an allow (kept short: 1 MiB per value)
	awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "deny 10.%d.%d.%d; ", int(i / 62500), int(i / 250) % 250, i % 250 + 1; print "allow 192.0.2.0/24 udp/53" }'
}
mkdir -p "$E2E_TMP/bigbundle"
big_rules 40000 >"$E2E_TMP/rules" # too long for one command-line argument
jq -n --rawfile r "$E2E_TMP/rules" \
	'{ociVersion: "1.0.2", annotations: {"egress.weir.io": ($r | rtrimstr("\n")), "ingress.weir.io": ($r | rtrimstr("\n"))}}' \
	>"$E2E_TMP/bigbundle/config.json"
pb=$(start_proc big)
if H createRuntime <<<"$(state_json "$ID" "$pb" creating "$E2E_TMP/bigbundle")" 2>"$E2E_TMP/err"; then
	pass "80,000 rules attach"
else
	fail "80,000 rules attach" "$(cat "$E2E_TMP/err")"
fi
cmp_num "$(stat -c %s "$STATE/containers/$ID.json")" -gt $((1 << 20)) "the record is larger than 1 MiB"
is "$(record "$ID" | jq -r .state)" running "and weir list reads it back: running"
check "the container is enforced" enforced "$pb" "$BASE/big"
nkeys=$(bpftool -j map dump pinned "$PINS/maps/weir_policy" | jq length)
cmp_num "$nkeys" -ge 80000 "its policy entries are in the kernel ($nkeys)"
ok_run "poststop detaches it" detach "$ID"
stop_proc "$pb"
is "$(bpftool -j map dump pinned "$PINS/maps/weir_policy" | jq length)" 0 "and deletes every policy entry it wrote"
is "$(leftovers)" "" "and nothing else is left"

done_testing
