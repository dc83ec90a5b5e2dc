# shellcheck shell=bash
# What the test machine is declared to support (tests/machine.conf, or the file
# WEIR_TEST_MACHINE names), for the suites that source this file: tests/e2e/lib/common.sh and
# tests/vm/kernels.t.
#
#   machine_declares CAP   prints "yes" or "no"; fails, saying why on stderr, when the file
#                          cannot be read, says something else, or does not list CAP
#   machine_capabilities   every capability the file lists, one a line
#   in_ci                  true when CI=true: there, a core suite never skips for want of
#                          something, unless the file declares the machine unable

MACHINE_CONF=${WEIR_TEST_MACHINE:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/machine.conf}

in_ci() { [ "${CI:-}" = true ]; }

# _machine_read: "NAME VALUE" per declaration; fails on the first malformed line.
_machine_read() {
	local line name value rest n=0
	if [ ! -r "$MACHINE_CONF" ]; then
		echo "cannot read $MACHINE_CONF (WEIR_TEST_MACHINE)" >&2
		return 1
	fi
	while IFS= read -r line || [ -n "$line" ]; do
		n=$((n + 1))
		line=${line%%#*}
		read -r name value rest <<<"$line"
		[ -n "$name" ] || continue
		if [[ ! $name =~ ^[a-z0-9_]+$ ]] || [ -n "$rest" ] || { [ "$value" != yes ] && [ "$value" != no ]; }; then
			echo "$MACHINE_CONF:$n: expected CAPABILITY yes|no, got: $name $value $rest" >&2
			return 1
		fi
		echo "$name $value"
	done <"$MACHINE_CONF"
}

machine_capabilities() {
	local decl
	decl=$(_machine_read) || return 1
	cut -d' ' -f1 <<<"$decl" | sort -u
}

machine_declares() {
	local cap=$1 decl values
	decl=$(_machine_read) || return 1
	values=$(awk -v c="$cap" '$1 == c { print $2 }' <<<"$decl")
	case $(grep -c . <<<"$values") in
	1) echo "$values" ;;
	0)
		echo "$MACHINE_CONF does not say whether this machine has $cap: add \"$cap yes\" or \"$cap no\"" >&2
		return 1
		;;
	*)
		echo "$MACHINE_CONF lists $cap more than once" >&2
		return 1
		;;
	esac
}
