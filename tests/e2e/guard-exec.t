#!/bin/bash
# A runtime's exec into a running, guarded container (runc exec, and what podman exec, crictl
# exec and kubectl exec run underneath): its setup between joining the container's cgroup and
# exec'ing the user's command is the runtime's, trusted as the container's own init is; the
# command it execs, and everything that command forks or execs, is guarded.
#
# runc exec's init joins the container's cgroup, then calls keyctl(KEYCTL_JOIN_SESSION_KEYRING)
# before it execs the command: with `escape kill calls keyring` weir must not kill it, and with
# `escape audit` it must not report it. A runtime that forks its process straight into the
# cgroup (clone3 with CLONE_INTO_CGROUP) also joins the namespaces (setns) from inside it:
# `gtool enter` does what such a runtime does, from the host.
#
#   prove -v tests/e2e/guard-exec.t        (root; `make test-build` first)

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/runc.sh
. "$E2E_LIB/runc.sh"
# shellcheck source=lib/checks.sh
. "$E2E_LIB/checks.sh"
# shellcheck source=lib/guards.sh
. "$E2E_LIB/guards.sh"

guards_init

# no_escape_event_but_gtool ID DESC: every escape event of ID is of the test's own commands.
no_escape_event_but_gtool() {
	local evs n
	evs=$(events_of "$1")
	n=$(jq -s '[.[] | select(.guard == "escape" and .comm != "gtool")] | length' <<<"${evs:-}" 2>/dev/null || echo "?")
	if [ "$n" = 0 ]; then
		pass "$2"
	else
		fail "$2" "$n escape events of other commands"
		diag_block "weir events --json" "$(tail -n 20 <<<"$evs")"
	fi
}

# ---------------------------------------------------------------------------------------
diag "1. escape kill of every call group runc's exec setup makes: runc exec runs, its command is guarded"
sec_bundle xk - --ann "security.weir.io=escape kill calls keyring,namespaces,mount" -- /bin/sleep 3600
start xk
kid=$(runc_id xk)
wrun runc_exec xk /bin/echo hello
if [ "$W_RC" = 0 ] && [ "$W_OUT" = hello ]; then
	pass "xk: runc exec runs its command (its init's keyctl before the exec is the runtime's)"
else
	fail "xk: runc exec runs its command (its init's keyctl before the exec is the runtime's)" \
		"exit $W_RC, output '$W_OUT'"
	diag_block stderr "$W_ERR"
fi
killed xk "the exec'd command's own keyctl is killed" /bin/gtool keyring
killed xk "the exec'd command's own unshare(CLONE_NEWUSER) is killed" /bin/gtool unshare-user
wrun runc_exec xk /bin/gtool fork keyring
is "$W_RC $W_OUT" "137 killed" "xk: a child the exec'd command forks (no exec of its own) is killed at keyctl"
wrun runc_exec xk /bin/sh -c '/bin/gtool keyring; echo "rc=$?"'
is "$W_RC $W_OUT" "0 rc=137" "xk: a command the exec'd shell forks and execs is killed at keyctl"
killed xk "a command the exec'd shell execs in its own place is killed at keyctl" \
	/bin/sh -c 'exec /bin/gtool keyring'
wrun runc_exec xk /bin/sh -c 'echo still here'
is "$W_RC $W_OUT" "0 still here" "xk: runc exec still works after the kills"

wrun "$GTOOL" enter "$(runc_cgroup xk)" "$(runc_pid xk)" /bin/echo entered
is "$W_RC $W_OUT" "0 entered" \
	"xk: a runtime that forks into the cgroup (CLONE_INTO_CGROUP), joins the namespaces (setns) and calls keyctl there before its exec is not killed"
wrun "$GTOOL" enter "$(runc_cgroup xk)" "$(runc_pid xk)" /bin/gtool keyring
is "$W_RC $W_OUT" "137 " "xk: ... the command it execs is killed at keyctl"

st=$(weir_snapshot "$kid")
is "$(guard_count "$st" escape killed)" 6 \
	"xk: weir stats counts 6 escape kills: the commands', none of the runtime's setup"
no_escape_event_but_gtool "$kid" "xk: no escape event of runc's init (runc:[2:INIT]) or of a runtime's setup"
has_event "$kid" "xk: event: keyctl of the exec'd command, killed" \
	'.guard == "escape" and .action == "killed" and .syscall == "keyctl" and .call == "keyring" and .comm == "gtool"'

# ---------------------------------------------------------------------------------------
diag "2. escape audit: the runtime's exec setup is not reported, the command is"
sec_bundle xa - --ann "security.weir.io=escape audit calls keyring,namespaces,mount" -- /bin/sleep 3600
start xa
aid=$(runc_id xa)
for i in 1 2 3; do
	ok_run "xa: runc exec $i runs" runc_exec xa /bin/true
done
ok_run "xa: a runtime's entry by CLONE_INTO_CGROUP runs" "$GTOOL" enter "$(runc_cgroup xa)" "$(runc_pid xa)" /bin/true
is "$(guard_count "$(weir_snapshot "$aid")" escape audit)" 0 \
	"xa: three runc execs and an entry by CLONE_INTO_CGROUP report nothing (their keyctl and setns are the runtime's)"
gis xa ok "keyctl of the exec'd command is allowed (audit) ..." keyring
is "$(guard_count "$(weir_snapshot "$aid")" escape audit)" 1 "xa: ... and reported, once"
has_event "$aid" "xa: event: keyctl audited, with the command" \
	'.guard == "escape" and .action == "audit" and .syscall == "keyctl" and .call == "keyring" and .comm == "gtool"'
no_escape_event_but_gtool "$aid" "xa: no event of runc's init"

# ---------------------------------------------------------------------------------------
diag "3. the container's own first process is still guarded from its first instruction"
sec_bundle xf - --ann "security.weir.io=escape kill calls keyring" -- /bin/gtool keyring
runc_start xf && runc_wait_stopped xf 10
is "$(runc_out xf)" "" "xf: the container's first process is killed at keyctl (prints nothing)"
has_event "$(runc_id xf)" "xf: event: its keyctl, killed" \
	'.guard == "escape" and .action == "killed" and .syscall == "keyctl" and .comm == "gtool"'
runc_stop xf || true

# ---------------------------------------------------------------------------------------
diag "4. detach leaves nothing of the node programs"
for c in xk xa; do
	runc_stop "$c" >/dev/null 2>&1 || true
done
left=()
for l in weir_sys_enter weir_exec weir_entry_attach weir_entry_fork; do
	[ ! -e "$WEIR_BPFFS/links/$l" ] || left+=("$l is still attached")
done
none_left "the last guarded container's poststop detaches the node's guard programs" "${left[@]}"
ok_run "weir gc runs" "$WEIR" gc
done_testing
