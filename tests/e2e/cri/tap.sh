# shellcheck shell=bash
# TAP helpers of the CRI suites (smoke.t, nri.t). check writes command output to $WORK.

n=0
failed=0

diag() { printf '# %s\n' "$*"; }
diag_file() {
	[ -s "$1" ] || return 0
	sed 's/^/#   /' "$1" | head -n 40 || true
}

# skip_all REASON: the suite cannot run here; in CI (CI=true) that is a failure, not a skip.
skip_all() {
	if [ "${CI:-}" = true ]; then
		printf '1..1\nnot ok 1 - the suite cannot run, and CI never skips: %s\n' "$*"
		exit 1
	fi
	echo "1..0 # SKIP $*"
	exit 0
}

ok() { # ok STATUS DESCRIPTION: status 0 passes
	local st=$1
	shift
	n=$((n + 1))
	if [ "$st" = 0 ]; then
		echo "ok $n - $*"
	else
		echo "not ok $n - $*"
		failed=$((failed + 1))
	fi
}

is() { # is GOT WANT DESCRIPTION
	if [ "$1" = "$2" ]; then
		ok 0 "$3"
	else
		ok 1 "$3"
		diag "got:  '$1'"
		diag "want: '$2'"
	fi
}

check() { # check DESCRIPTION -- COMMAND...: ok when COMMAND succeeds
	local desc=$1
	shift
	[ "$1" = -- ] && shift
	if "$@" >"$WORK/out" 2>"$WORK/err"; then
		ok 0 "$desc"
	else
		ok 1 "$desc"
		diag "command: $*"
		diag_file "$WORK/out"
		diag_file "$WORK/err"
	fi
}

# tap_done: the suite's last line. Says when the count differs from PLAN (when the suite has one),
# prints the summary a runner reads, and gives the exit status: 0 only when nothing failed.
tap_done() {
	[ -z "${PLAN:-}" ] || [ "$n" = "$PLAN" ] || diag "ran $n tests, planned $PLAN"
	diag "$((n - failed)) passed, $failed failed"
	[ "$failed" = 0 ]
}
