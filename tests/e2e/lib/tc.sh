# shellcheck shell=bash
# The kernel's view of the tc and tcx hooks on a container's veth, read with bpftool rather
# than from weir's own report. The suite sets NODE, the network namespace that holds the veth's
# node end.

# tc_progs DEV: one line per program on DEV's tc and tcx hooks ("tc|tcx KIND NAME prog_id N")
tc_progs() {
	ip netns exec "$NODE" bpftool -j net show dev "$1" 2>/dev/null |
		jq -r '.[0] | ((.tc // [])[] | "tc \(.kind) \(.name // "?") prog_id \(.prog_id // "?")"),
			((.tcx // [])[]? | "tcx \(.kind) \(.name // "?") prog_id \(.prog_id // "?")")' 2>/dev/null || true
}
# has_weir_prog DEV: weir's interface program is on DEV (the kernel shows 15 characters of it)
has_weir_prog() { tc_progs "$1" | grep -q 'weir_iface_egre'; }
