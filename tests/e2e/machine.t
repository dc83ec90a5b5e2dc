#!/bin/bash
# The test machine is what tests/machine.conf (or WEIR_TEST_MACHINE) declares. Each kernel
# capability is asked of the kernel by machine-probe, which loads and attaches the smallest
# program of the kind with libbpf and never runs weir: declared "yes", the kernel must have it
# (else every suite relying on it fails for a false reason); declared "no", it must lack it
# (else suites skip what the machine could test). The file lists nothing it does not know.
#
#   prove -v tests/e2e/machine.t        (root; `make test-build` first)

# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"

e2e_init --node-weir
[ -x "$MACHINE_PROBE" ] || bail_out "$MACHINE_PROBE missing: run 'make test-build'"

KERNEL_CAPS=(sockops kfree_skb tcx bpf_lsm fentry)
OTHER_CAPS=(vm)

listed=$(machine_capabilities 2>&1) || bail_out "$listed"
unknown=$(comm -23 <(echo "$listed") <(printf '%s\n' "${KERNEL_CAPS[@]}" "${OTHER_CAPS[@]}" | sort))
is "$unknown" "" "$MACHINE_CONF lists only capabilities the suites know"

for cap in "${KERNEL_CAPS[@]}"; do
	if ! said=$(machine_declares "$cap" 2>&1); then
		fail "$MACHINE_CONF declares $cap" "$said"
		continue
	fi
	rc=0
	got=$("$MACHINE_PROBE" --cgroup2 "$(cgroup2_mount)" "$cap" 2>&1) || rc=$?
	if [ "$rc" -gt 1 ]; then
		fail "$cap: machine-probe answers" "exit $rc: $got"
	elif [ "$said" = yes ] && [ "$rc" = 0 ]; then
		pass "$cap: declared yes, and the kernel has it"
	elif [ "$said" = no ] && [ "$rc" = 1 ]; then
		pass "$cap: declared no, and the kernel lacks it (${got#"$cap no: "})"
	else
		fail "$cap: declared $said, but the kernel says otherwise" "machine-probe: $got"
	fi
done

# vm: tests/vm boots qemu guests (software emulation) on kernels fetched with apt-get; what it
# cannot fetch it reports itself (a failure in CI). Here: the emulator is there.
if said=$(machine_declares vm 2>&1); then
	if [ "$said" = yes ]; then
		ok_run "vm: declared yes, and qemu-system-x86_64 is installed" command -v qemu-system-x86_64
	else
		pass "vm: declared no (tests/vm skips)"
	fi
else
	fail "$MACHINE_CONF declares vm" "$said"
fi

done_testing
