#!/bin/bash
# What the security guards cost, measured against baselines of the same run (not a test:
# nothing passes or fails).
#
# A syscall-heavy workload (gtool loop: getpid, open/close of /proc/self/stat, fork+exec of
# /bin/true) runs in "containers" (cgroups attached by weir-hook) and in a process outside any
# container, in three phases of one run:
#   1. no guard program attached on the node (weir gc detached them): an unguarded container
#      (attached, no guards) and the outside process;
#   2. a container with the guards that hang off its own cgroup (raw-sockets, bind, sysctl,
#      port-scan) runs: the node gains only raw_tp/sched_process_exec;
#   3. a container with every guard, escape audit for all call groups too, runs: the node gains
#      escape detection: fentry on each watched syscall's entry function where the kernel
#      attaches fentry (only those syscalls pass through weir), else raw_tp/sys_enter, which
#      every syscall of every process passes. The report says which path it measured (from
#      the pinned links, and what weir status says).
# Each round goes through the three phases (the guarded containers are detached and gc run at
# its end); each figure is the median of its rounds, in ns per iteration, and each percentage
# the median of the per-round ratios.
#
# Usage: tests/bench/guard-bench.sh [--rounds N] [--scale F]   (root, after make test-build)
set -euo pipefail

# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init guard-bench
HOOK=$BIN/weir-hook WEIR=$BIN/weir GTOOL=$BIN/gtool
ROUNDS=7 SCALE=1
[ $# -eq 0 ] || [ "$1" != --rounds ] || { ROUNDS=$2; shift 2; }
[ $# -eq 0 ] || [ "$1" != --scale ] || { SCALE=$2; shift 2; }
[ $# -eq 0 ] || { echo "guard-bench: usage: $0 [--rounds N] [--scale F]" >&2; exit 2; }
for f in "$HOOK" "$WEIR" "$GTOOL"; do
	[ -x "$f" ] || { echo "guard-bench: $f missing: run make test-build" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/weir-gbench.XXXXXX)
P=wgb$$
bench_own_weir "$P" "$TMP" || { echo "guard-bench: cannot set up its own weir" >&2; exit 1; }
hook() { "$HOOK" --config "$BENCH_CONF" "$@"; }
weir() { "$WEIR" --config "$BENCH_CONF" "$@"; }
CG2=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
PIDS=
cleanup() {
	set +e
	for c in escape cgroup open; do
		[ -f "$TMP/$c.stop" ] && hook poststop <"$TMP/$c.stop" >/dev/null 2>&1
	done
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rmdir "$CG2/$P-escape" "$CG2/$P-cgroup" "$CG2/$P-open" 2>/dev/null
	bench_own_weir_unload
	rm -rf "$TMP"
}
trap cleanup EXIT

# attach NAME SECURITY: a cgroup with a process in it, attached by weir-hook
attach() {
	local name=$1 ann=$2 cg=$CG2/$P-$1 pid
	mkdir -p "$cg" "$TMP/$name"
	sh -c 'echo $$ > "$1/cgroup.procs"; exec sleep 100000' sh "$cg" &
	pid=$!
	PIDS="$PIDS $pid"
	jq -n --arg s "$ann" '{ociVersion: "1.0.2", annotations: (if $s == "" then {"monitor.weir.io": "counters"} else {"security.weir.io": $s} end)}' \
		>"$TMP/$name/config.json"
	bench_wait 5 bench_in_cgroup "$pid" "$cg"
	jq -n --arg id "$P-$name" --argjson pid "$pid" --arg b "$TMP/$name" \
		'{ociVersion: "1.0.2", id: $id, status: "creating", pid: $pid, bundle: $b}' | hook createRuntime
	jq -n --arg id "$P-$name" --arg b "$TMP/$name" \
		'{ociVersion: "1.0.2", id: $id, status: "stopped", bundle: $b}' >"$TMP/$name.stop"
}

# run WHERE WORKLOAD N: ns per iteration (WHERE: a cgroup name, or "host")
run() {
	local where=$1
	shift
	if [ "$where" = host ]; then
		taskset -c 1 "$GTOOL" loop "$@"
	else
		# the exec arms the guards, as a container's workload would
		# shellcheck disable=SC2016 # expanded by the inner sh
		taskset -c 1 sh -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' sh "$CG2/$P-$where" \
			"$GTOOL" loop "$@"
	fi
}

WORKLOADS=("getpid $(awk -v s="$SCALE" 'BEGIN { print int(2000000 * s) }')"
	"open $(awk -v s="$SCALE" 'BEGIN { print int(200000 * s) }')"
	"forkexec $(awk -v s="$SCALE" 'BEGIN { print int(1000 * s) }')")

# measure PHASE PLACE...: every workload once in every place, into TMP/PHASE-PLACE-WORKLOAD
measure() {
	local phase=$1 w p
	shift
	for w in "${WORKLOADS[@]}"; do
		for p in "$@"; do
			# shellcheck disable=SC2086 # "getpid 2000000": two arguments
			run "$p" $w >>"$TMP/$phase-$p-${w%% *}"
		done
	done
}


med() { median <"$TMP/$1"; }

# escape_path: the escape detection links pinned now, as a path name ("none" when detached)
escape_path() {
	local links=$BENCH_BPFFS/weir/links
	if compgen -G "$links/weir_esc_*" >/dev/null; then
		echo "fentry per syscall ($(find "$links" -name 'weir_esc_*' | wc -l) entry functions)"
	elif [ -e "$links/weir_sys_enter" ]; then
		echo "raw_tp/sys_enter"
	else
		echo none
	fi
}

weir gc >/dev/null 2>&1 || true
attach open ""
if [ -e /sys/fs/bpf/weir/links/weir_sys_enter ] || compgen -G "/sys/fs/bpf/weir/links/weir_esc_*" >/dev/null; then
	echo "guard-bench: the node's weir keeps the guard programs attached:" \
		"every phase below includes them" >&2
fi
# Each round goes through the three phases, so that a change of the machine's load between
# rounds weighs on every phase alike; each ratio is taken within its round.
for ((r = 0; r < ROUNDS; r++)); do
	echo "round $((r + 1))/$ROUNDS: phase 1 (no guard program on the node)" >&2
	measure base host open
	attach cgroup "raw-sockets enforce families raw; bind enforce allow tcp/8080; sysctl enforce; port-scan audit"
	echo "round $((r + 1))/$ROUNDS: phase 2 (a container with its cgroup's guards: the node gains the exec program)" >&2
	measure cg host cgroup
	attach escape "raw-sockets enforce families raw; bind enforce allow tcp/8080; sysctl enforce; escape audit; port-scan audit"
	ESC_PATH=$(escape_path)
	echo "round $((r + 1))/$ROUNDS: phase 3 (escape detection: the node gains $ESC_PATH)" >&2
	measure esc host open escape
	hook poststop <"$TMP/escape.stop" >/dev/null
	hook poststop <"$TMP/cgroup.stop" >/dev/null
	weir gc >/dev/null 2>&1 || true
	if [ "$(escape_path)" != none ]; then
		echo "guard-bench: escape detection ($(escape_path)) still attached after the round's detach and gc" >&2
		exit 1
	fi
done

# ratio A B: the median of the per-round ratios A/B, as a change in percent
ratio() {
	paste "$TMP/$1" "$TMP/$2" | awk '{ print ($1 / $2 - 1) * 100 }' | median
}

printf '%-9s %9s %9s %9s %9s %9s %9s | %8s %8s %8s %8s\n' workload host host+cg host+esc \
	unguarded cg-guard esc-guard host+cg host+esc cg-guard esc-guard
for w in "${WORKLOADS[@]}"; do
	w=${w%% *}
	printf '%-9s %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f | %+7.1f%% %+7.1f%% %+7.1f%% %+7.1f%%\n' \
		"$w" "$(med "base-host-$w")" "$(med "cg-host-$w")" "$(med "esc-host-$w")" \
		"$(med "base-open-$w")" "$(med "cg-cgroup-$w")" "$(med "esc-escape-$w")" \
		"$(ratio "cg-host-$w" "base-host-$w")" "$(ratio "esc-host-$w" "base-host-$w")" \
		"$(ratio "cg-cgroup-$w" "base-open-$w")" "$(ratio "esc-escape-$w" "base-open-$w")"
done
echo "(ns per iteration, medians of $ROUNDS rounds, each round through phases 1, 2 and 3. host: a"
echo " process outside any container, in phase 1, 2 (+cg) and 3 (+esc); unguarded: an attached"
echo " container without guards; cg-guard, esc-guard: the guarded containers of phases 2 and 3."
echo " The percentages are medians of per-round ratios against phase 1's host or unguarded.)"
echo "escape detection measured (phase 3): $ESC_PATH; weir status says:"
weir status 2>/dev/null | grep '^escape detection:' | sed 's/^/  /' || true
