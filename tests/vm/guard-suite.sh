#!/bin/sh
# shellcheck disable=SC2317 # the helpers are called through t
# weir's security guards in a qemu guest (busybox sh; run by the guest's /init, TAP on stdout).
#
#   guard-suite.sh lsm     the kernel was booted with "bpf" in lsm=: BPF-LSM prevention works
#                          (per cgroup, then once per node), an unguarded cgroup is not touched
#   guard-suite.sh nolsm   booted without it: what asks for BPF-LSM is refused, or runs as kill
#                          with lsm_fallback "kill"; protected paths are refused either way
#   guard-suite.sh escape  escape detection on each of its paths, fentry per syscall (what the
#                          node takes where the kernel attaches fentry) and raw_tp/sys_enter
#                          (node config escape_hook "raw_tp"): which one the kernel runs, kill
#                          and audit alike on both, and what getpid outside any container costs
#                          with each attached (suite escape-bench only: a benchmark, printed,
#                          never judged)
#
# "Containers" are cgroups with a process in them, attached by weir-hook from an OCI state, as
# the hook suite does. Guards arm at the first exec in the cgroup after the attach: every
# action below runs as `sh -c 'echo $$ > cgroup.procs; exec gtool ...'`.
W=/weir
n=0
fail=0

t() { # t DESC CMD...: one TAP line
	d=$1
	shift
	n=$((n + 1))
	if "$@" >/tmp/t.out 2>&1; then
		echo "ok $n - $d"
	else
		echo "not ok $n - $d"
		fail=1
		sed 's/^/#   /' /tmp/t.out
	fi
}

# in CGROUP CMD...: run CMD in the cgroup (an exec there arms a guarded endpoint)
run_in() {
	cg=$1
	shift
	sh -c 'echo $$ > /sys/fs/cgroup/'"$cg"'/cgroup.procs; exec "$@"' sh "$@"
}

# answer CGROUP WANT GTOOL-ARGS...: gtool's one-line answer in the cgroup is WANT
answer() {
	cg=$1 want=$2
	shift 2
	got=$(run_in "$cg" "$W"/gtool "$@" 2>&1)
	echo "gtool $*: $got (want $want)"
	[ "$got" = "$want" ]
}

# killed CGROUP GTOOL-ARGS...: gtool dies by SIGKILL, printing nothing
killed() {
	cg=$1
	shift
	got=$(run_in "$cg" "$W"/gtool "$@" 2>/dev/null) # the shell's own "Killed" goes to stderr
	rc=$?
	echo "gtool $*: exit $rc, '$got'"
	[ "$rc" = 137 ] && [ -z "$got" ]
}

# entered CGROUP PID WANT CMD...: what a runtime's exec does (gtool enter: a child forked into the
# cgroup joins PID's namespaces with setns, which BPF-LSM refuses to a guarded task and escape
# kill kills, and calls keyctl), then execs CMD; WANT is "OUTPUT rc=EXIT"
entered() {
	cg=$1 pid=$2 want=$3
	shift 3
	got=$("$W"/gtool enter /sys/fs/cgroup/"$cg" "$pid" "$@" 2>/dev/null)
	got="$got rc=$?"
	echo "gtool enter ... $*: '$got' (want '$want')"
	[ "$got" = "$want" ]
}

container() { # container NAME: a cgroup with a sleeping process (prints its pid)
	mkdir -p /sys/fs/cgroup/"$1"
	sh -c 'echo $$ > /sys/fs/cgroup/'"$1"'/cgroup.procs; exec sleep 1000' >/dev/null 2>&1 &
	echo $!
}

# attach ID PID SECURITY [CONFIG]: weir-hook createRuntime with that annotation
attach() {
	mkdir -p /bundle/"$1"
	printf '{"ociVersion":"1.0.2","annotations":{"security.weir.io":"%s"}}\n' "$3" >/bundle/"$1"/config.json
	printf '{"ociVersion":"1.0.2","id":"%s","status":"creating","pid":%s,"bundle":"/bundle/%s"}\n' \
		"$1" "$2" "$1" | "$W"/weir-hook ${4:+--config "$4"} createRuntime
}

detach() { # detach ID [CONFIG]
	printf '{"ociVersion":"1.0.2","id":"%s","status":"stopped","bundle":"/bundle/%s"}\n' "$1" "$1" |
		"$W"/weir-hook ${2:+--config "$2"} poststop
}

# refused ID PID SECURITY CONFIG WANT: weir-hook refuses it with one line that holds WANT
refused() {
	if attach "$1" "$2" "$3" "$4" 2>/tmp/err; then
		cat /tmp/err
		return 1
	fi
	cat /tmp/err
	grep -q "$5" /tmp/err && [ "$(wc -l </tmp/err)" = 1 ]
}

status_says() { # status_says TEXT: weir status prints a line that holds TEXT
	"$W"/weir status >/tmp/st 2>&1
	cat /tmp/st
	grep -q "$1" /tmp/st
}

event() { # event ID JQ-LESS-GREP: a recent guard event of ID holds the text
	"$W"/weir events --json "$1" >/tmp/ev 2>&1
	cat /tmp/ev
	grep -q "$2" /tmp/ev
}

mkdir -p /etc/weir /tmp/m
echo secret >/weir-secret
# the suite's cgroups, /g*, are nowhere a runtime puts containers: the node config allows
# them; a TCG guest runs 13-20 times slower than the host: the hook gets time to match
echo '{"protected_paths": ["/weir-secret"], "endpoint_cgroups": ["/g*"], "hook_timeout_seconds": 300}' >/etc/weir/weir.conf
GUARDS="escape enforce calls mount,namespaces; paths enforce; raw-sockets enforce families raw,packet"
open_pid=$(container open)

lsm_round() { # lsm_round ATTACH: BPF-LSM attached "cgroup" or "node"
	mode=$1
	pid=$(container "g$mode")
	t "$mode: weir-hook attaches a guarded container" attach "g$mode" "$pid" "$GUARDS"
	t "$mode: weir status says BPF-LSM is in use ($mode)" \
		status_says "BPF-LSM:   in use (attached $([ "$mode" = cgroup ] && echo per cgroup || echo once per node))"
	t "$mode: guarded: opening the protected host path is refused" answer "g$mode" EPERM open /weir-secret
	t "$mode: guarded: a mount is refused with EPERM (not killed)" answer "g$mode" EPERM mount /tmp/m
	t "$mode: guarded: unshare(CLONE_NEWUSER) is refused with EPERM" answer "g$mode" EPERM unshare-user
	t "$mode: guarded: a packet socket is refused with EPERM" answer "g$mode" EPERM packet
	t "$mode: guarded: a raw IPv4 socket is refused with EPERM" answer "g$mode" EPERM raw 4
	t "$mode: guarded: other files open" answer "g$mode" ok open /etc/weir/weir.conf
	t "$mode: the entry programs are attached with BPF-LSM" sh -c \
		"ls /sys/fs/bpf/weir/links/ | grep -qx weir_entry_attach && ls /sys/fs/bpf/weir/links/ | grep -qx weir_entry_fork"
	t "$mode: a runtime's exec (CLONE_INTO_CGROUP, setns, keyctl) runs; its command is refused" \
		entered "g$mode" "$pid" "EPERM rc=3" "$W"/gtool unshare-user
	t "$mode: unguarded: the protected path opens" answer open ok open /weir-secret
	t "$mode: unguarded: a mount works" answer open ok mount /tmp/m
	t "$mode: unguarded: unshare(CLONE_NEWUSER) works" answer open ok unshare-user
	t "$mode: unguarded: a packet socket works" answer open ok packet
	t "$mode: event: the open of the protected path, denied" event "g$mode" '"guard":"paths","action":"denied".*"file":"weir-secret"'
	t "$mode: event: the mount, denied by BPF-LSM" event "g$mode" '"guard":"escape","action":"denied".*"syscall":"mount"'
	t "$mode: event: the user namespace, denied" event "g$mode" '"guard":"escape","action":"denied".*"call":"namespaces"'
	kill "$pid"
	t "$mode: weir-hook detaches" detach "g$mode"
	t "$mode: the endpoint's links are gone" sh -c "! ls /sys/fs/bpf/weir/endpoints/* 2>/dev/null | grep -q ."
}

# hooked FUNCTION...: the kernel calls a trampoline (fentry) at each FUNCTION's entry (ftrace's
# list of the functions it patched)
hooked() {
	for f in "$@"; do
		grep "^$f " /sys/kernel/tracing/enabled_functions || { echo "$f: not hooked"; return 1; }
	done
}

not_hooked() { # not_hooked FUNCTION...
	for f in "$@"; do
		! grep "^$f " /sys/kernel/tracing/enabled_functions || return 1
	done
}

# unhooked FUNCTION...: none is hooked once the kernel has freed the trampolines. It does after
# the last reference to each link goes: the unpin drops it when the kernel frees the bpffs
# inode, after an RCU grace period, which a TCG guest can stretch. While the kernel takes a
# trampoline apart, ftrace can list the function again for a moment (a temporary ops while a
# direct call is modified), so one clean read is not the end: the poll waits, up to 120 s,
# for ten clean reads in a row, then checks once more. How long it took is printed.
unhooked() {
	i=0
	clean=0
	while [ "$clean" -lt 10 ] && [ "$i" -lt 1200 ]; do
		if not_hooked "$@" >/dev/null; then
			clean=$((clean + 1))
		else
			clean=0
		fi
		i=$((i + 1))
		sleep 0.1
	done
	echo "polled $i times (0.1 s apart), $clean clean in a row at the end"
	not_hooked "$@"
}

# getpid_ns: ns per getpid outside any container, the median of 3 loops
getpid_ns() {
	for _ in 1 2 3; do "$W"/gtool loop getpid 200000; done | sort -n | sed -n 2p
}

# bench_escape PATH: what getpid outside any container costs while escape detection is attached
# on PATH, against not attached, in rounds (each one detached, attached, detached again, a
# container with escape audit attached for the middle): a TCG guest on a shared machine is
# noisy, each round's ratio is against its own baselines and the median ratio is printed. A
# benchmark: nothing passes or fails on it.
bench_escape() {
	rounds=5
	rm -f /tmp/bench."$1"
	for r in $(seq "$rounds"); do
		before=$(getpid_ns)
		pid=$(container gb)
		t0=$(cut -d' ' -f1 /proc/uptime)
		attach gb "$pid" "escape audit calls namespaces,mount,keyring" >/dev/null 2>&1 || return 1
		t1=$(cut -d' ' -f1 /proc/uptime)
		links=$(find /sys/fs/bpf/weir/links -name 'weir_esc_*' -o -name weir_sys_enter | wc -l)
		on=$(getpid_ns)
		kill "$pid"
		{ detach gb && "$W"/weir gc && unhooked __x64_sys_unshare; } >/dev/null 2>&1 || return 1
		after=$(getpid_ns)
		echo "$on $before $after" >>/tmp/bench."$1"
		echo "# bench round $r/$rounds: getpid ns $before off, $on on $1, $after off;" \
			"the attach that linked escape detection ($links links): $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s"
	done
	awk '{ print 2 * $1 / ($2 + $3) }' /tmp/bench."$1" | sort -n >/tmp/ratios."$1"
	echo "# bench: getpid outside any container with escape detection on $1 attached vs not," \
		"median of $rounds per-round ratios: $(sed -n "$(((rounds + 1) / 2))p" /tmp/ratios."$1")" \
		"(all: $(tr '\n' ' ' </tmp/ratios."$1"))"
}

# escape_round PATH: PATH is "fentry" or "raw_tp", the node's escape detection
escape_round() {
	path=$1
	ge=$(container ge)
	ga=$(container ga)
	calls="calls namespaces,mount,keyring"
	t "$path: weir-hook attaches a container with escape kill" attach ge "$ge" "escape kill $calls"
	t "$path: weir-hook attaches a container with escape audit" attach ga "$ga" "escape audit $calls"
	if [ "$path" = fentry ]; then
		t "$path: weir status says escape detection is per syscall" \
			status_says "escape detection: fentry per syscall"
		# from the kernel's side: ftrace lists the entry functions a trampoline hooks
		t "$path: the kernel hooks unshare, mount, keyctl, setns and the 32-bit unshare" \
			hooked __x64_sys_unshare __x64_sys_mount __x64_sys_keyctl __x64_sys_setns __ia32_sys_unshare
		t "$path: ... and not getpid, open or close" \
			not_hooked __x64_sys_getpid __x64_sys_openat __x64_sys_close
		t "$path: no raw_tp/sys_enter link" sh -c "! ls /sys/fs/bpf/weir/links/ | grep -qx weir_sys_enter"
	else
		t "$path: weir status says escape detection is on raw_tp/sys_enter, and why" \
			status_says 'escape detection: raw_tp/sys_enter .*escape_hook "raw_tp"'
		t "$path: no syscall entry function is hooked" not_hooked __x64_sys_unshare __x64_sys_keyctl
		t "$path: the raw_tp link is pinned" sh -c "ls /sys/fs/bpf/weir/links/ | grep -qx weir_sys_enter"
	fi
	t "$path: killed: unshare(CLONE_NEWUSER)" killed ge unshare-user
	t "$path: killed: unshare(CLONE_NEWUSER) of the 32-bit ABI" killed ge unshare-user32
	t "$path: killed: a mount" killed ge mount /tmp/m
	t "$path: killed: keyctl" killed ge keyring
	t "$path: audit: unshare(CLONE_NEWUSER) runs" answer ga ok unshare-user
	t "$path: audit: keyctl runs" answer ga ok keyring
	t "$path: unguarded: unshare(CLONE_NEWUSER) runs" answer open ok unshare-user
	t "$path: unguarded: 32-bit unshare(CLONE_NEWUSER) runs" answer open ok unshare-user32
	t "$path: unguarded: a mount runs" answer open ok mount /tmp/m
	t "$path: unguarded: keyctl runs" answer open ok keyring
	t "$path: a runtime's exec (CLONE_INTO_CGROUP, setns, keyctl) is not killed; its command is" \
		entered ge "$ge" "in rc=137" /bin/sh -c "echo in; exec $W/gtool unshare-user"
	t "$path: event: keyctl killed, with its container" event ge '"guard":"escape","action":"killed".*"syscall":"keyctl"'
	t "$path: event: the 32-bit unshare killed" event ge '"action":"killed".*"syscall":"unshare","syscall_nr":310,"compat":true'
	t "$path: event: the mount killed" event ge '"action":"killed".*"syscall":"mount"'
	t "$path: event: unshare reported (audit)" event ga '"guard":"escape","action":"audit".*"syscall":"unshare"'
	kill "$ge" "$ga"
	t "$path: weir-hook detaches the killed one" detach ge
	t "$path: weir-hook detaches the audited one" detach ga
	t "$path: weir gc detaches escape detection" "$W"/weir gc
	t "$path: no escape link is left" sh -c "! ls /sys/fs/bpf/weir/links/ | grep 'weir_esc_\|weir_sys_enter'"
	t "$path: no entry function is hooked" unhooked __x64_sys_unshare __x64_sys_keyctl __ia32_sys_unshare
	# the benchmark only when asked for (suite guard-escape-bench): it is no test, and its
	# rounds of attaching every entry function take minutes in a guest
	if [ "$BENCH" = 1 ]; then
		t "$path: benchmark rounds ran (attach, detach, gc)" bench_escape "$path"
		grep '^# bench' /tmp/t.out
	fi
}

BENCH=0
case "$1" in
escape | escape-bench)
	[ "$1" = escape-bench ] && BENCH=1
	# a datapath of this suite's own: its load picks the path
	"$W"/weir unload >/dev/null 2>&1
	escape_round fentry
	t "weir unload" "$W"/weir unload
	echo '{"escape_hook": "raw_tp", "endpoint_cgroups": ["/g*"], "hook_timeout_seconds": 300}' >/etc/weir/weir.conf
	escape_round raw_tp
	;;
lsm)
	lsm_round cgroup
	# the same once per node: a new datapath, loaded with lsm "global"
	t "weir unload removes the datapath" "$W"/weir unload
	echo '{"protected_paths": ["/weir-secret"], "lsm": "global", "endpoint_cgroups": ["/g*"], "hook_timeout_seconds": 300}' >/etc/weir/weir.conf
	lsm_round node
	t "weir gc detaches the node's BPF-LSM links once no endpoint needs them" sh -c \
		"$W/weir gc && ! ls /sys/fs/bpf/weir/links/ | grep -q weir_lsm_"
	;;
nolsm)
	pid=$(container g1)
	echo '{"lsm_fallback": "kill", "protected_paths": ["/weir-secret"], "endpoint_cgroups": ["/g*"], "hook_timeout_seconds": 300}' >/etc/weir/fb.conf
	t "escape enforce is refused (fail closed) with one line" refused g1 "$pid" \
		'escape enforce calls namespaces' '' 'escape enforce needs BPF-LSM, which this node does not offer'
	t "the refused container left no endpoint" sh -c "! $W/weir list | grep -q '^g1 '"
	t "weir status says BPF-LSM is unavailable, and why" \
		status_says 'BPF-LSM:   unavailable: .*bpf.*; lsm_fallback refuse'
	t "protected paths are refused even with lsm_fallback kill" refused g1 "$pid" \
		'paths enforce' /etc/weir/fb.conf 'protected paths need BPF-LSM'
	t "with lsm_fallback kill, escape enforce runs as kill" attach g1 "$pid" \
		'escape enforce calls namespaces,mount' /etc/weir/fb.conf
	t "weir list says so" sh -c "$W/weir list --json | tee /tmp/l; grep -q 'escape=enforce(kill: no BPF-LSM)' /tmp/l"
	t "the entry programs are attached with escape detection" sh -c \
		"ls /sys/fs/bpf/weir/links/ | grep -qx weir_entry_attach && ls /sys/fs/bpf/weir/links/ | grep -qx weir_entry_fork"
	t "unshare(CLONE_NEWUSER) is killed" killed g1 unshare-user
	t "a mount is killed" killed g1 mount /tmp/m
	t "a runtime's exec (CLONE_INTO_CGROUP, setns, keyctl) is not killed; its command is" \
		entered g1 "$pid" "in rc=137" /bin/sh -c "echo in; exec $W/gtool unshare-user"
	t "an unguarded cgroup still mounts" answer open ok mount /tmp/m
	t "event: killed, reported per container" event g1 '"guard":"escape","action":"killed".*"syscall":"unshare"'
	kill "$pid"
	t "weir-hook detaches" detach g1 /etc/weir/fb.conf
	;;
*)
	echo "not ok 1 - guard-suite.sh: unknown round $1"
	exit 1
	;;
esac
kill "$open_pid" 2>/dev/null
echo "1..$n"
exit $fail
