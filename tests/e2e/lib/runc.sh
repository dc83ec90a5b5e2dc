# shellcheck shell=bash
# runc helpers for weir's e2e tests. Source common.sh first.
#
# A container NAME has the id $E2E_PREFIX-NAME, a bundle in $E2E_TMP/bundles/NAME sharing
# the read-only rootfs $RUNC_ROOTFS, the cgroup /$E2E_PREFIX-NAME (cgroupsPath), and hooks:
#   createRuntime: veth-hook.sh (test "CNI", gives eth0), then weir-hook createRuntime
#   poststop:      weir-hook poststop
# (weir-hook with WEIR_HOOK_ARGS: the suite's own weir configuration).
# The workload's stdout and stderr go to BUNDLE/stdout and BUNDLE/stderr (runc's too).

RUNC=${RUNC:-runc}
RUNC_ROOTFS=

runc_init() {
	require_cmd runc jq ip nsenter bpftool
	ensure_wtool
	RUNC_ROOTFS=$E2E_TMP/rootfs
	make_rootfs "$RUNC_ROOTFS"
	mkdir -p "$E2E_TMP/bundles"
	on_exit runc_cleanup_all
}

runc_id() { echo "$E2E_PREFIX-$1"; }
runc_bundle_dir() { echo "$E2E_TMP/bundles/$1"; }
runc_cgroup() { echo "$(cgroup2_mount)/$E2E_PREFIX-$1"; }

# runc_bundle NAME IDX [options] -- CMD...
#   IDX         network index (veth pIDX, 10.200.IDX.0/24); "-" for no network at all
#   --egress V / --ingress V / --mode V    weir annotations
#   --ann K=V   any annotation (repeatable; V may be empty)
#   --ann-file K FILE   annotation value read from FILE (large or odd values)
#   --no-weir   no weir hooks (infrastructure checks)
#   --netns P   join the network namespace at P (a pod's) instead of a new one (IDX "-")
runc_bundle() {
	local name=$1 idx=$2
	shift 2
	local dir ann='{}' weir=1 hooks netns=""
	dir=$(runc_bundle_dir "$name")
	while [ $# -gt 0 ]; do
		case $1 in
		--egress) ann=$(jq -c --arg v "$2" '. + {"egress.weir.io": $v}' <<<"$ann"); shift 2 ;;
		--ingress) ann=$(jq -c --arg v "$2" '. + {"ingress.weir.io": $v}' <<<"$ann"); shift 2 ;;
		--mode) ann=$(jq -c --arg v "$2" '. + {"policy-mode.weir.io": $v}' <<<"$ann"); shift 2 ;;
		--ann) ann=$(jq -c --arg k "${2%%=*}" --arg v "${2#*=}" '. + {($k): $v}' <<<"$ann"); shift 2 ;;
		--ann-file) ann=$(jq -c --arg k "$2" --rawfile v "$3" '. + {($k): $v}' <<<"$ann"); shift 3 ;;
		--no-weir) weir=0; shift ;;
		--netns) netns=$2; shift 2 ;;
		--) shift; break ;;
		*) bail_out "runc_bundle: unknown option $1" ;;
		esac
	done
	[ $# -gt 0 ] || bail_out "runc_bundle: no command"
	rm -rf "$dir"
	mkdir -p "$dir"
	(cd "$dir" && "$RUNC" spec)

	hooks=$(jq -n --arg veth "$E2E_LIB/veth-hook.sh" --arg peer "${PEER_NS:-}" --arg idx "$idx" \
		--arg hook "$WEIR_HOOK" --argjson weir "$weir" --argjson conf "$(weir_hook_args_json)" '
		{createRuntime: ((if $idx == "-" then [] else
				[{path: $veth, args: ["veth-hook.sh", $peer, $idx], timeout: 20}] end)
			+ (if $weir == 1 then [{path: $hook, args: (["weir-hook"] + $conf + ["createRuntime"]), timeout: 20}]
				else [] end)),
		 poststop: (if $weir == 1 then [{path: $hook, args: (["weir-hook"] + $conf + ["poststop"]), timeout: 20}]
				else [] end)}')

	local cmd='[]' a
	for a in "$@"; do
		cmd=$(jq -c --arg a "$a" '. + [$a]' <<<"$cmd")
	done
	jq --arg rootfs "$RUNC_ROOTFS" --arg cg "/$E2E_PREFIX-$name" --arg host "$name" --arg netns "$netns" \
		--argjson ann "$ann" --argjson hooks "$hooks" --argjson cmd "$cmd" '
		.process.terminal = false
		| .process.args = $cmd
		| .process.env = ["PATH=/bin:/sbin", "HOME=/root"]
		| .root = {path: $rootfs, readonly: true}
		| .hostname = $host
		| .linux.cgroupsPath = $cg
		| if $netns == "" then . else .linux.namespaces |= map(if .type == "network" then .path = $netns else . end) end
		| .linux.sysctl = {"net.ipv4.ping_group_range": "0 2147483647"}
		| .annotations = $ann
		| .hooks = $hooks
		| if ($hooks.createRuntime | length) == 0 then del(.hooks.createRuntime) else . end
		| if ($hooks.poststop | length) == 0 then del(.hooks.poststop) else . end
		' <"$dir/config.json" >"$dir/config.json.new"
	mv "$dir/config.json.new" "$dir/config.json"
}

# runc_start NAME: start detached; returns runc's exit status (stderr in BUNDLE/stderr).
runc_start() {
	local dir id
	dir=$(runc_bundle_dir "$1")
	id=$(runc_id "$1")
	"$RUNC" run -d --bundle "$dir" "$id" </dev/null >"$dir/stdout" 2>"$dir/stderr"
}

runc_status() {
	"$RUNC" state "$(runc_id "$1")" 2>/dev/null | jq -r .status 2>/dev/null || echo absent
}

runc_pid() {
	"$RUNC" state "$(runc_id "$1")" | jq -r .pid
}

# runc_wait_stopped NAME [TIMEOUT_S]
runc_wait_stopped() {
	local name=$1 t=${2:-10}
	retry "$t" _runc_is_stopped "$name"
}
_runc_is_stopped() { [ "$(runc_status "$1")" = stopped ]; }

runc_exec() {
	local name=$1
	shift
	"$RUNC" exec "$(runc_id "$name")" "$@"
}

# runc_wtool NAME WTOOL-ARGS...: wtool in the container, through wrun (W_RC, W_OUT, W_ERR, W_MS).
runc_wtool() {
	local name=$1
	shift
	wrun runc_exec "$name" /bin/wtool "$@"
}

# runc_start_pass NAME IDX BUNDLE-OPTIONS... -- CMD: build and start, one test line (runc's
# stderr shown when it fails).
runc_start_pass() {
	local name=$1
	runc_bundle "$@"
	if runc_start "$name"; then
		pass "$name: container starts with weir's hooks"
	else
		fail "$name: container starts with weir's hooks"
		diag_block "runc stderr" "$(runc_err "$name")"
	fi
}

# runc_out NAME: the workload's stdout so far.
runc_out() { cat "$(runc_bundle_dir "$1")/stdout" 2>/dev/null || true; }
runc_err() { cat "$(runc_bundle_dir "$1")/stderr" 2>/dev/null || true; }

# runc_stop NAME: kill the workload, then delete (runs the poststop hooks). Output of
# `runc delete` (poststop hook failures) goes to BUNDLE/delete.log; returns its status.
runc_stop() {
	local name=$1 id dir
	id=$(runc_id "$name")
	dir=$(runc_bundle_dir "$name")
	if [ "$(runc_status "$name")" = running ]; then
		"$RUNC" kill "$id" KILL 2>/dev/null || true
		runc_wait_stopped "$name" 10 || true
	fi
	"$RUNC" delete "$id" >"$dir/delete.log" 2>&1
}

# Every container of this run, whatever state it is in.
runc_cleanup_all() {
	local id
	for id in $("$RUNC" list -q 2>/dev/null | grep "^$E2E_PREFIX-" || true); do
		"$RUNC" delete -f "$id" >/dev/null 2>&1 || true
	done
}
