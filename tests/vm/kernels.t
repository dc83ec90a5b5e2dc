#!/bin/bash
# Kernel-version coverage: weir's datapath tests, a hook attach with real enforcement, and
# ingress at the interface on veths (tcx on 6.12, the clsact fallback on 6.1, which has no tcx)
# in qemu guests (software emulation) running Debian's cloud kernels: bookworm's 6.1 and the
# 6.12 from bookworm-backports. One TAP line per kernel per test, the kernel in the description.
# Each kernel boots twice: with "bpf" in lsm= (everything, and the security guards with
# BPF-LSM prevention), and without it (the guards' refusal and fallback).
#
# Whether the machine can run them is declared in tests/machine.conf ("vm yes|no"): declared
# "no", the suite is skipped. Declared "yes", a kernel package that cannot be downloaded is a
# failure in CI (CI=true) and a SKIP with the reason elsewhere (a developer's machine offline).
#
#   prove -v tests/vm/kernels.t           (root; `make test-build` first)
#   WEIR_VM_KERNELS="linux-image-cloud-amd64" prove -v tests/vm/kernels.t
#   WEIR_VM_SUITES=iface WEIR_VM_NOLSM_SUITES= prove -v tests/vm/kernels.t
#
# WEIR_VM_SUITES and WEIR_VM_NOLSM_SUITES choose the suites of each boot (tests/vm/run-kernel.sh
# --suites); set empty, that boot is left out.
#
# A boot that has not finished after WEIR_VM_TIMEOUT seconds (default 900: attaching escape
# detection's entry functions alone takes seconds in a guest under TCG) is killed and failed.
#
# Known kernel limits are TODO lines (TAP: reported, not failing) until weir handles them; see
# `known` below. A TODO test that starts to pass shows as "unexpectedly succeeded".
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../machine.sh
. "$here/../machine.sh"
kernels=${WEIR_VM_KERNELS:-linux-image-cloud-amd64 linux-image-6.12-cloud-amd64}
suites=${WEIR_VM_SUITES-datapath policy hook guard-lsm iface}
nolsm_suites=${WEIR_VM_NOLSM_SUITES-guard-nolsm guard-escape}
# the LSMs of Debian's kernels, with and without bpf (lsm= replaces the built-in order)
LSM_ON="lsm=lockdown,capability,landlock,yama,apparmor,bpf"
LSM_OFF="lsm=lockdown,capability,landlock,yama,apparmor"

# kernel release glob | suite | test description glob | reason
known=(
)

if ! vm=$(machine_declares vm 2>&1); then
	echo "Bail out! $vm"
	exit 1
fi
if [ "$vm" = no ]; then
	echo "1..0 # SKIP $MACHINE_CONF: this machine has no vm"
	exit 0
fi

n=0
out=$(mktemp -d /tmp/weir-vm-t.XXXXXX)
trap 'rm -rf "$out"' EXIT

tap() { # tap ok|not-ok DESCRIPTION [DIRECTIVE]
	n=$((n + 1))
	local word=ok
	[ "$1" = ok ] || word="not ok"
	echo "$word $n - $2${3:+ # $3}"
}

# unavailable KERNEL REASON: the kernel package cannot be had. The machine is declared able to
# run guests: in CI that is a failure, elsewhere a skip.
unavailable() {
	if in_ci; then
		tap not-ok "$1: the kernel package can be downloaded ($MACHINE_CONF declares vm yes): $2"
	else
		tap ok "$1" "SKIP $2"
	fi
}

todo_for() { # todo_for RELEASE SUITE DESC: print the known reason, if any
	local k rel suite desc reason
	for k in "${known[@]}"; do
		IFS='|' read -r rel suite desc reason <<<"$k"
		# shellcheck disable=SC2053
		if [[ $1 == $rel && $2 == "$suite" && $3 == $desc ]]; then
			echo "$reason"
			return 0
		fi
	done
	return 1
}

# Turn one guest's results into TAP lines. $1: kernel release, $2: results file.
report() {
	local rel=$1 f=$2 line suite='' planned='' seen=0 rc desc status todo
	while IFS= read -r line; do
		case "$line" in
		"#@ suite "*)
			suite=${line#\#@ suite }
			planned='' seen=0
			;;
		"#@ end "*)
			rc=$(sed -n 's/.* rc=\([0-9]*\).*/\1/p' <<<"$line")
			echo "# $rel $suite: ${line##* seconds=} s in the guest"
			if [ -n "$planned" ] && [ "$planned" != "$seen" ]; then
				tap not-ok "$rel $suite: $seen of $planned planned tests reported (crashed?)"
			elif [ "$seen" = 0 ] && [ "$planned" != 0 ]; then
				tap not-ok "$rel $suite: no test ran (exit status $rc)"
			elif [ "$rc" != 0 ] && ! grep -q "^#@ $suite had-failures" "$f.state" 2>/dev/null; then
				tap not-ok "$rel $suite: exit status $rc although every test passed"
			fi
			suite=
			;;
		"#@ WEIR-VM-DONE"*) ;;
		"1..0"*) planned=0; echo "# $rel $suite: ${line#1..0}" ;;
		1..*) planned=${line#1..} ;;
		"ok "* | "not ok "*)
			[ -n "$suite" ] || continue
			seen=$((seen + 1))
			status=ok
			[ "${line%%ok *}" = "not " ] && status=not-ok
			desc=$(sed -E 's/^(not )?ok [0-9]+( - )?//' <<<"$line")
			[ "$status" = ok ] || echo "#@ $suite had-failures" >>"$f.state"
			if todo=$(todo_for "$rel" "$suite" "$desc"); then
				tap "$status" "$rel $suite: $desc" "TODO $todo"
			else
				tap "$status" "$rel $suite: $desc"
			fi
			;;
		*) echo "# $line" ;;
		esac
	done <"$f"
}

seen_pkgs=" "
total_start=$SECONDS
for k in $kernels; do
	pkg=$("$here/run-kernel.sh" --print-package "$k" 2>"$out/err") || {
		unavailable "$k" "$(tr '\n' ' ' <"$out/err")"
		continue
	}
	case "$seen_pkgs" in *" $pkg "*)
		echo "# $k is $pkg again: already run"
		continue ;;
	esac
	seen_pkgs+="$pkg "
	start=$SECONDS
	for boot in on off; do
		if [ "$boot" = on ]; then want=$suites append=$LSM_ON; else want=$nolsm_suites append=$LSM_OFF; fi
		[ -n "$want" ] || continue
		rc=0
		"$here/run-kernel.sh" --suites "$want" --append "$append" --console "$out/console" \
			--timeout "${WEIR_VM_TIMEOUT:-900}" "$k" \
			>"$out/results" 2>"$out/err" || rc=$?
		sed 's/^/# /' "$out/err"
		rel=$(sed -n 's/^# guest kernel \([^ ,]*\).*/\1/p' "$out/results" | head -n1)
		rel=${rel:-$pkg}
		[ "$boot" = on ] || rel="$rel (no bpf in lsm=)"
		case $rc in
		77)
			unavailable "$k" "$(grep -v '^run-kernel.sh: booting' "$out/err" | tr '\n' ' ')"
			continue 2
			;;
		0 | 1) report "$rel" "$out/results" ;;
		*)
			report "$rel" "$out/results"
			tap not-ok "$rel ($pkg): the guest finished its tests (run-kernel.sh exit status $rc)"
			tr -d '\r' <"$out/console" | tail -n 40 | sed 's/^/#   console: /'
			;;
		esac
		rm -f "$out/results.state"
	done
	echo "# $rel ($pkg): $((SECONDS - start)) s from download check to poweroff"
	rm -f "$out/results.state"
done
echo "# all kernels: $((SECONDS - total_start)) s"
echo "1..$n"
