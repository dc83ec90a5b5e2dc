# shellcheck shell=bash
# Shared helpers for weir's end-to-end tests (sourced by tests/e2e/*.t and demo.sh).
#
#  * TAP output: plan, ok/pass/fail, is, like, unlike, diag, skip, done_testing.
#  * Cleanup: on_exit CMD... registers a cleanup step; all run in reverse order on exit,
#    also after a failure or an interrupt.
#  * A busybox-static rootfs with wtool (make_rootfs).
#  * A "peer" network namespace created by the test (never the host namespace), holding the
#    far end of each container's veth and the peer addresses tests talk to.
#  * weir helpers: records, stats, leftovers.
#  * Each suite's own weir (e2e_init): a state folder and a bpffs folder of its own, so what a
#    suite counts cannot include another suite's containers or leftovers.
#  * What the machine is declared to support (tests/machine.conf): machine_has.
#
# Test traffic only ever goes to addresses inside network namespaces the test created.

E2E_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_DIR=$(dirname "$E2E_LIB")
REPO=$(cd "$E2E_DIR/../.." && pwd)
OUTPUT=${WEIR_OUTPUT:-${OUTPUT:-$REPO/.output}}
case $OUTPUT in /*) ;; *) OUTPUT=$REPO/$OUTPUT ;; esac
BIN=$OUTPUT/bin
WEIR_HOOK=${WEIR_HOOK:-$BIN/weir-hook}
# The weir binary; $WEIR runs it with the suite's own configuration (e2e_init).
WEIR_BIN=${WEIR:-$BIN/weir}
WEIR=$WEIR_BIN
WTOOL=${WTOOL:-$BIN/wtool}
MACHINE_PROBE=${MACHINE_PROBE:-$BIN/machine-probe}
# The node's weir (demo.sh); e2e_init points these at the suite's own.
WEIR_BPFFS=/sys/fs/bpf/weir
WEIR_STATE=/run/weir
# Arguments every weir-hook invocation gets (the suite's --config).
WEIR_HOOK_ARGS=()

# shellcheck source=../../machine.sh
. "$REPO/tests/machine.sh"

# A short per-run tag: names of containers, namespaces and files carry it.
E2E_RUN=${E2E_RUN:-$(printf '%x%02x' "$$" "$((RANDOM % 256))")}
# shellcheck disable=SC2034 # used by the files that source this one
E2E_PREFIX=we2e-$E2E_RUN

# ---------------------------------------------------------------------------------------
# TAP

_tap_n=0
_tap_failed=0
_tap_planned=

plan() {
	_tap_planned=$1
	echo "1..$1"
}

# skip_all REASON: the whole suite cannot run here. In CI that is a failure: CI installs
# everything the suites need (tests/install-deps.sh), so a skip there would hide a suite.
skip_all() {
	if in_ci; then
		echo "1..1"
		echo "not ok 1 - the suite cannot run, and CI never skips: $*"
		_tap_planned=1
		exit 1
	fi
	echo "1..0 # SKIP $*"
	_tap_planned=0
	exit 0
}

# skip_all_declared CAP: the machine is declared unable (tests/machine.conf): skipped, also in CI.
skip_all_declared() {
	echo "1..0 # SKIP $MACHINE_CONF: this machine has no $1"
	_tap_planned=0
	exit 0
}

bail_out() {
	echo "Bail out! $*"
	exit 255
}

diag() {
	local line
	while IFS= read -r line; do
		echo "# $line"
	done <<<"$*"
}

# Indented diagnostics of a multi-line value (command output).
diag_block() {
	local title=$1 text=$2 line
	echo "#   $title:"
	while IFS= read -r line; do
		echo "#     $line"
	done <<<"$text"
}

pass() {
	_tap_n=$((_tap_n + 1))
	echo "ok $_tap_n - $1"
}

fail() {
	_tap_n=$((_tap_n + 1))
	_tap_failed=$((_tap_failed + 1))
	echo "not ok $_tap_n - $1"
	shift
	local d
	for d in "$@"; do
		diag "  $d"
	done
}

# ok RC DESC [DIAG...]: pass when RC is 0.
ok() {
	local rc=$1 desc=$2
	shift 2
	if [ "$rc" -eq 0 ]; then pass "$desc"; else fail "$desc" "$@"; fi
}

# ok_run DESC CMD...: run CMD, pass on exit 0, show its output on failure.
ok_run() {
	local desc=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -eq 0 ]; then
		pass "$desc"
	else
		fail "$desc" "command: $*" "exit: $rc"
		diag_block output "$out"
	fi
}

is() {
	local got=$1 want=$2 desc=$3
	if [ "$got" == "$want" ]; then
		pass "$desc"
	else
		fail "$desc" "got:      '$got'" "expected: '$want'"
	fi
}

# like GOT ERE DESC
like() {
	local got=$1 re=$2 desc=$3
	if [[ $got =~ $re ]]; then
		pass "$desc"
	else
		fail "$desc" "expected to match /$re/"
		diag_block got "$got"
	fi
}

unlike() {
	local got=$1 re=$2 desc=$3
	if [[ $got =~ $re ]]; then
		fail "$desc" "expected NOT to match /$re/"
		diag_block got "$got"
	else
		pass "$desc"
	fi
}

# cmp_num GOT OP WANT DESC (OP: -eq -ge -le -gt -lt)
cmp_num() {
	local got=$1 op=$2 want=$3 desc=$4
	if [[ $got =~ ^-?[0-9]+$ ]] && test "$got" "$op" "$want"; then
		pass "$desc"
	else
		fail "$desc" "got:      '$got'" "expected: $op $want"
	fi
}

# skip REASON [COUNT]: in CI, failures instead (see skip_all).
skip() {
	local reason=$1 count=${2:-1} i
	for ((i = 0; i < count; i++)); do
		if in_ci; then
			fail "skipped, and CI never skips: $reason"
		else
			_tap_n=$((_tap_n + 1))
			echo "ok $_tap_n # SKIP $reason"
		fi
	done
}

# skip_declared CAP COUNT: COUNT tests need CAP, which the machine is declared not to have.
skip_declared() {
	local i
	for ((i = 0; i < $2; i++)); do
		_tap_n=$((_tap_n + 1))
		echo "ok $_tap_n # SKIP $MACHINE_CONF: this machine has no $1"
	done
}

done_testing() {
	if [ -z "$_tap_planned" ]; then
		echo "1..$_tap_n"
	elif [ "$_tap_planned" != "$_tap_n" ]; then
		diag "planned $_tap_planned tests but ran $_tap_n"
	fi
	diag "$((_tap_n - _tap_failed)) passed, $_tap_failed failed"
	[ "$_tap_failed" -eq 0 ] || return 1
}

# ---------------------------------------------------------------------------------------
# Cleanup

_cleanups=()

on_exit() {
	local q
	printf -v q '%q ' "$@"
	_cleanups+=("$q")
}

_run_cleanups() {
	local rc=$? i
	trap - EXIT INT TERM HUP
	set +e
	for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${_cleanups[i]}" >/dev/null 2>&1
	done
	exit "$rc"
}

e2e_init() {
	set -euo pipefail
	trap _run_cleanups EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP
	[ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces, runtimes, BPF)"
	E2E_TMP=$(mktemp -d "/tmp/weir-e2e.$E2E_RUN.XXXXXX")
	if [ "${E2E_KEEP:-0}" = 1 ]; then
		diag "keeping $E2E_TMP"
	else
		on_exit rm -rf "$E2E_TMP"
	fi
	# The node config the tests' hooks run with (weir-hook --config "$E2E_CONF"): their
	# cgroups, /$E2E_PREFIX-*, are nowhere a runtime puts containers by default.
	E2E_CONF=$E2E_TMP/e2e-node.conf
	printf '{"endpoint_cgroups": ["/%s-*", "/%s-*/**"]}\n' "$E2E_PREFIX" "$E2E_PREFIX" >"$E2E_CONF"
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
	[ "${1:-}" = --node-weir ] || e2e_own_weir
}

# ---------------------------------------------------------------------------------------
# The suite's own weir
#
# A state folder and a bpffs folder named after the suite, in a config file that every weir
# and weir-hook run of the suite is given ($WEIR is a wrapper that passes it; hooks get
# WEIR_HOOK_ARGS). The suite's containers are the only endpoints there, so it can count
# exactly. At exit, after the suite's containers are gone (cleanups run in reverse order), its
# datapath is unloaded and both folders removed; what a killed run left is removed at the next
# start. demo.sh runs on the node's own weir instead (e2e_init --node-weir).

e2e_own_weir() {
	local suite
	suite=$(basename "$0" .t)
	E2E_STATE=/run/weir-test/e2e-$suite
	E2E_BPFFS=/sys/fs/bpf/weir-test-e2e-$suite
	E2E_CONF=$E2E_TMP/weir.conf
	WEIR_STATE=$E2E_STATE
	WEIR_BPFFS=$E2E_BPFFS/weir
	# weir mounts bpffs only at the configured path itself: the folder must be on one
	if [ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" != bpf_fs ]; then
		mount -t bpf bpf /sys/fs/bpf || bail_out "cannot mount bpffs at /sys/fs/bpf"
	fi
	# the test cgroups, /$E2E_PREFIX-*, are nowhere a runtime puts containers by default: they
	# join the default patterns (podman's, containerd's), which a list given replaces
	jq -n --arg s "$E2E_STATE" --arg b "$E2E_BPFFS" --arg p "/$E2E_PREFIX" \
		'{state_dir: $s, bpffs: $b, endpoint_cgroups: ([$p + "-*", $p + "-*/**"] +
		["/kubepods/**", "/kubepods.slice/**", "/libpod_parent/**",
		 "/machine.slice/libpod-*.scope", "/machine.slice/machine-libpod_pod_*.slice/**",
		 "/system.slice/runc-*.scope"])}' >"$E2E_CONF"
	_e2e_drop_weir
	on_exit _e2e_drop_weir
	# root-only, as weir makes its own state folder (privilege.t checks it)
	mkdir -p "$E2E_BPFFS" "$E2E_TMP/bin" "$(dirname "$E2E_STATE")"
	mkdir -m 0700 "$E2E_STATE"
	# shellcheck disable=SC2034 # used by the files that source this one
	WEIR_HOOK_ARGS=(--config "$E2E_CONF")
	printf '#!/bin/bash\nexec %q --config %q "$@"\n' "$WEIR_BIN" "$E2E_CONF" >"$E2E_TMP/bin/weir"
	chmod +x "$E2E_TMP/bin/weir"
	WEIR=$E2E_TMP/bin/weir
}

# weir_hook_args_json: WEIR_HOOK_ARGS as a JSON array (for hook definitions).
weir_hook_args_json() {
	local a j='[]'
	for a in "${WEIR_HOOK_ARGS[@]}"; do
		j=$(jq -c --arg a "$a" '. + [$a]' <<<"$j")
	done
	echo "$j"
}

# e2e_conf JSON: a config file of the suite's own weir with the keys of JSON added (printed).
_e2e_confs=0
e2e_conf() {
	local f
	_e2e_confs=$((_e2e_confs + 1))
	f=$E2E_TMP/weir-$_e2e_confs.conf
	jq --argjson add "$1" '. + $add' "$E2E_CONF" >"$f" || bail_out "e2e_conf: bad JSON $1"
	echo "$f"
}

_e2e_drop_weir() {
	[ ! -d "$E2E_BPFFS/weir" ] || "$WEIR_BIN" --config "$E2E_CONF" unload >/dev/null 2>&1
	rm -rf "$E2E_BPFFS" "$E2E_STATE"
}

# own_weir_empty: 1 test. Nothing of the suite's containers is left in its weir: no endpoint
# id, no pinned endpoint folder, no record still running. Call when they have all stopped.
own_weir_empty() {
	local left=() ids eps running
	ids=$(find "$WEIR_STATE/ids" -mindepth 1 -printf '%f ' 2>/dev/null || true)
	eps=$(endpoint_dirs | tr '\n' ' ')
	running=$("$WEIR" list --json 2>/dev/null | jq -r '[.[] | select(.state != "stopped") | .id] | join(" ")')
	[ -z "$ids" ] || left+=("endpoint ids taken: $ids")
	[ -z "${eps// /}" ] || left+=("endpoint folders pinned: $eps")
	[ -z "$running" ] || left+=("records not stopped: $running")
	if [ ${#left[@]} -eq 0 ]; then
		pass "nothing is left in the suite's weir (no endpoint id, pinned endpoint or running record)"
	else
		fail "nothing is left in the suite's weir" "${left[@]}"
	fi
}

# ---------------------------------------------------------------------------------------
# What the machine supports

# machine_has CAP: 0 when tests/machine.conf says the machine has CAP, 1 when it says it has
# not (the caller skips what needs CAP with skip_declared or skip_all_declared). A file that
# does not list CAP stops the suite. Declared, CAP is also asked of the kernel, without weir
# (machine-probe): one test, which fails when the kernel lacks it; the checks that need CAP
# then run anyway, and fail too.
machine_has() {
	local cap=$1 said out
	said=$(machine_declares "$cap" 2>&1) || bail_out "$said"
	[ "$said" = yes ] || return 1
	[ -x "$MACHINE_PROBE" ] || bail_out "$MACHINE_PROBE missing: run 'make test-build'"
	if out=$("$MACHINE_PROBE" --cgroup2 "$(cgroup2_mount)" "$cap" 2>&1); then
		pass "the kernel has $cap, as $MACHINE_CONF declares"
	else
		fail "the kernel has $cap, as $MACHINE_CONF declares" "$out"
	fi
	return 0
}

require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip_all "$c not installed (tests/install-deps.sh)"
	done
}

# The built product must exist: a missing binary is a failure, not a skip.
require_weir() {
	[ -x "$WEIR_HOOK" ] || bail_out "$WEIR_HOOK missing: run make"
	[ -x "$WEIR" ] || bail_out "$WEIR missing: run make"
}

# wtool: built by make (tests/e2e/tools/tools.mk); built here as a fallback.
ensure_wtool() {
	local src=$E2E_DIR/tools/wtool.c
	if [ ! -x "$WTOOL" ] || [ "$src" -nt "$WTOOL" ]; then
		mkdir -p "$(dirname "$WTOOL")"
		if ! gcc -std=gnu11 -O2 -Wall -Wextra -Werror -Wshadow -static "$src" -o "$WTOOL.tmp.$$"; then
			bail_out "cannot build wtool"
		fi
		mv "$WTOOL.tmp.$$" "$WTOOL"
	fi
}

cgroup2_mount() {
	awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' \
		/proc/self/mountinfo
}

ms_now() {
	local t
	t=$(date +%s%N)
	echo $((t / 1000000))
}

# retry TIMEOUT_S CMD...: run CMD until it succeeds or TIMEOUT_S seconds pass.
retry() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# in_cgroup PID DIR: PID is a member of the cgroup DIR (for retry: a process that moves
# itself there has done so).
in_cgroup() {
	grep -qx "$1" "$2/cgroup.procs" 2>/dev/null
}

# spawn_in_cgroup DIR: make the cgroup DIR and start a long sleep in it; sets SPAWNED to its
# pid once it is in there. At exit the process is killed and reaped, then DIR removed (a cgroup
# cannot go while a process, even a dying one, is in it).
spawn_in_cgroup() {
	mkdir -p "$1"
	on_exit rmdir "$1"
	sh -c "echo \$\$ > '$1/cgroup.procs' && exec sleep 1000" &
	SPAWNED=$!
	on_exit kill_wait "$SPAWNED"
	retry 5 in_cgroup "$SPAWNED" "$1" || bail_out "process $SPAWNED did not enter the cgroup $1"
}

# kill_wait PID: SIGTERM a child of this shell and reap it.
kill_wait() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# count_at_least N CMD...: CMD prints a number; it has reached N (for retry).
count_at_least() {
	local n=$1 got
	shift
	got=$("$@") || return 1
	[[ $got =~ ^[0-9]+$ ]] && [ "$got" -ge "$n" ]
}

# ---------------------------------------------------------------------------------------
# Rootfs

# make_rootfs DIR: busybox-static + /bin/wtool, nothing else.
make_rootfs() {
	local dir=$1 bb
	bb=$(command -v busybox) || bail_out "busybox-static not installed"
	mkdir -p "$dir"/{bin,sbin,etc,proc,sys,dev,tmp,run,root,var/tmp,out}
	cp "$bb" "$dir/bin/busybox"
	chroot "$dir" /bin/busybox --install -s /bin
	cp "$WTOOL" "$dir/bin/wtool"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$dir/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
	printf '127.0.0.1 localhost\n::1 localhost\n' >"$dir/etc/hosts"
	: >"$dir/etc/resolv.conf"
	: >"$dir/etc/hostname"
	chmod 1777 "$dir/tmp"
}

# ---------------------------------------------------------------------------------------
# Peer network namespace (runc tests). Each container gets a veth whose far end lives here.
#
#   container IDX:  eth0 10.200.IDX.2/24, fd77:0:0:IDX::2/64; peer side 10.200.IDX.1, ::1
#   peer targets on the peer's lo (reachable from every container through its veth):
PEER_A4=10.211.0.1
PEER_B4=10.212.0.1
PEER_A6=fd78:a::1
PEER_B6=fd78:b::1
# 8 more for the parallel test: 10.220.I.1 / fd78:20:I::1, I = 0..7
PEER_PAR=8

ctr_addr4() { echo "10.200.$1.2"; }
ctr_addr6() { echo "fd77:0:0:$1::2"; }
gw_addr4() { echo "10.200.$1.1"; }
gw_addr6() { echo "fd77:0:0:$1::1"; }
par_addr4() { echo "10.220.$1.1"; }
par_addr6() { echo "fd78:20:$1::1"; }

_peer_pids=()

# peer_create NAME: the peer netns with its target addresses.
peer_create() {
	PEER_NS=$1
	ip netns add "$PEER_NS"
	on_exit peer_destroy "$PEER_NS"
	local x="ip -n $PEER_NS" i
	$x link set lo up
	ip netns exec "$PEER_NS" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
	ip netns exec "$PEER_NS" sysctl -qw net.ipv6.conf.all.accept_dad=0
	ip netns exec "$PEER_NS" sysctl -qw net.ipv6.conf.default.accept_dad=0
	$x addr add "$PEER_A4/32" dev lo
	$x addr add "$PEER_B4/32" dev lo
	$x -6 addr add "$PEER_A6/128" dev lo
	$x -6 addr add "$PEER_B6/128" dev lo
	for ((i = 0; i < PEER_PAR; i++)); do
		$x addr add "$(par_addr4 "$i")/32" dev lo
		$x -6 addr add "$(par_addr6 "$i")/128" dev lo
	done
}

peer_destroy() {
	local ns=$1 p
	for p in "${_peer_pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	# Anything else still running in the namespace was started by this test.
	for p in $(ip netns pids "$ns" 2>/dev/null); do
		kill "$p" 2>/dev/null
	done
	ip netns del "$ns" 2>/dev/null
}

peer_exec() {
	ip netns exec "$PEER_NS" "$@"
}

# peer_server LOG WTOOL-ARGS...: a wtool server in the peer netns, in the background.
peer_server() {
	local log=$1
	shift
	ip netns exec "$PEER_NS" "$WTOOL" "$@" >"$log" 2>&1 &
	_peer_pids+=($!)
	retry 5 grep -qs '^listening' "$log" || bail_out "peer server $* did not start: $(cat "$log")"
}

# ---------------------------------------------------------------------------------------
# weir

# weir_record ID: the `weir list --json` entry of ID (empty if none).
weir_record() {
	"$WEIR" list --json 2>/dev/null | jq -c --arg id "$1" '.[]? | select(.id == $id)'
}

weir_stats() {
	"$WEIR" stats "$1" --json
}

# stat_get JSON JQ-PATH: one number out of a stats object ("null" if absent).
stat_get() {
	jq -r "$2 // \"null\"" <<<"$1"
}

# Which endpoint folders exist now (one name a line).
endpoint_dirs() {
	find "$WEIR_BPFFS/endpoints" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort || true
}

# Programs attached to a cgroup directory (empty if none or if the cgroup is gone).
cgroup_progs() {
	[ -d "$1" ] || return 0
	bpftool cgroup show "$1" 2>/dev/null | tail -n +2 || true
}

# JSON-quote a string (for hooks and configs).
json_str() {
	jq -Rn --arg s "$1" '$s'
}

# wrun CMD...: run a wtool invocation (through runc exec, podman exec, ip netns exec...).
# Sets W_OUT (stdout), W_RC (exit status), W_MS (elapsed_ms that wtool reported), W_ERR.
wrun() {
	W_RC=0
	"$@" >"$E2E_TMP/wrun.out" 2>"$E2E_TMP/wrun.err" </dev/null || W_RC=$?
	W_OUT=$(cat "$E2E_TMP/wrun.out")
	W_ERR=$(cat "$E2E_TMP/wrun.err")
	W_MS=$(sed -n 's/^elapsed_ms=//p' "$E2E_TMP/wrun.err" | tail -n1)
	W_MS=${W_MS:-999999}
}

# stats_delta BEFORE AFTER JQ-PATH: AFTER - BEFORE of one counter.
stats_delta() {
	local a b
	a=$(jq -r "$3 // 0" <<<"$1")
	b=$(jq -r "$3 // 0" <<<"$2")
	echo $((b - a))
}

# wlike ERE DESC: like "$W_OUT", with wtool's stderr in the diagnostics on failure.
wlike() {
	if [[ $W_OUT =~ $1 ]]; then
		pass "$2"
	else
		fail "$2" "expected output to match /$1/, exit $W_RC"
		diag_block stdout "$W_OUT"
		diag_block stderr "$W_ERR"
	fi
}

# weir_snapshot_json ID: stats JSON, or "{}" with a diagnostic when weir fails.
weir_snapshot() {
	local out
	if out=$("$WEIR" stats "$1" --json 2>&1) && jq -e 'type == "object"' <<<"$out" >/dev/null 2>&1; then
		echo "$out"
	else
		diag "weir stats $1 --json failed: $out" >&2
		echo '{}'
	fi
}

# wait_quiet ID [FILTER]: wait until ID's egress counters stop moving (the kernel's own ICMPv6 of a
# new netns, MLD reports when eth0 comes up, counts as the container's traffic) so that
# exact deltas can be measured. Gives up after 15 s. FILTER (jq) picks the counters to watch.
wait_quiet() {
	local filter=${2:-'[.egress.icmp, .egress.other, .egress.udp, .egress.tcp]'}
	local prev='' cur same=0 deadline=$((SECONDS + 15))
	while [ "$SECONDS" -lt "$deadline" ]; do
		cur=$("$WEIR" stats "$1" --json 2>/dev/null | jq -c "$filter" 2>/dev/null || true)
		if [ -n "$cur" ] && [ "$cur" = "$prev" ]; then
			same=$((same + 1))
			[ "$same" -lt 4 ] || return 0
		else
			same=0
		fi
		prev=$cur
		sleep 0.5
	done
	diag "wait_quiet $1: counters still moving after 15 s"
}

# Keys the interface promises, missing from a `weir list --json` entry / a `weir stats ID
# --json` object (printed space-separated; empty when complete). Values may be null.
missing_list_keys() {
	jq -r '[("id", "name", "endpoint", "state", "mode", "source", "cgroup") as $k
		| select(has($k) | not) | $k] | join(" ")' <<<"${1:-null}" 2>/dev/null || echo "(not an object)"
}
missing_stats_keys() {
	jq -r '[(("id", "name", "endpoint", "state", "mode") as $k | select(has($k) | not) | $k),
		(("egress", "ingress") as $d | (.[$d] // {}) as $o
		| (("tcp", "udp", "icmp", "other", "policy_dropped", "audit_denied") as $c
			| (select(($o[$c] | type) != "object") | "\($d).\($c)"),
			  (("packets", "bytes") as $f | select(($o[$c] | if type == "object" then .[$f] else null end | type) != "number") | "\($d).\($c).\($f)")),
		  (("denied_connects", "audit_denied_connects") as $c
			| select(($o[$c] | type) != "number") | "\($d).\($c)"))
		] | unique | join(" ")' <<<"${1:-null}" 2>/dev/null || echo "(not an object)"
}
