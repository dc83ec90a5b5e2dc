# shellcheck shell=bash
# Helpers of the guard suites (security.t, guard-exec.t) on runc containers. Source common.sh,
# runc.sh and checks.sh first; guards_init sets GTOOL, the gtool binary.

# guards_init: the suite's start (e2e_init, weir, runc), with gtool in the containers' /bin.
guards_init() {
	e2e_init
	require_weir
	runc_init
	GTOOL=${GTOOL:-$BIN/gtool}
	[ -x "$GTOOL" ] || bail_out "$GTOOL missing: run make test-build"
	cp "$GTOOL" "$RUNC_ROOTFS/bin/gtool"
}

# sec_bundle NAME IDX [runc_bundle options] -- CMD: a bundle whose process may do what the
# guards judge (capabilities, writable /proc/sys), and whose runtime writes a sysctl after
# weir's hook (runc applies linux.sysctl after createRuntime: the guards must let it).
sec_bundle() {
	local name=$1 dir
	runc_bundle "$@"
	dir=$(runc_bundle_dir "$name")
	jq '.process.capabilities |= with_entries(.value += ["CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_NET_ADMIN"])
		| .linux.readonlyPaths -= ["/proc/sys"]
		| .linux.sysctl["net.ipv4.tcp_syn_retries"] = "3"' \
		"$dir/config.json" >"$dir/config.json.new"
	mv "$dir/config.json.new" "$dir/config.json"
}

# with_config NAME FILE: weir-hook reads the node config FILE (both stages; FILE from e2e_conf,
# so the suite's own state and bpffs folders).
with_config() {
	local dir
	dir=$(runc_bundle_dir "$1")
	jq --arg f "$2" '.hooks |= with_entries(.value |= map(
		if .args[0] == "weir-hook" then .args = ["weir-hook", "--config", $f, .args[-1]] else . end))' \
		"$dir/config.json" >"$dir/config.json.new"
	mv "$dir/config.json.new" "$dir/config.json"
}

start() {
	local name=$1
	if runc_start "$name"; then
		pass "$name: container starts"
	else
		fail "$name: container starts"
		diag_block "runc stderr" "$(runc_err "$name")"
	fi
}

# g NAME GTOOL-ARGS...: gtool in container NAME (W_OUT, W_RC, W_ERR: see wrun).
g() {
	local name=$1
	shift
	wrun runc_exec "$name" /bin/gtool "$@"
}

# gis NAME WANT DESC GTOOL-ARGS...: gtool's answer is WANT.
gis() {
	local name=$1 want=$2 desc=$3
	shift 3
	g "$name" "$@"
	if [ "$W_OUT" = "$want" ]; then
		pass "$name: $desc"
	else
		fail "$name: $desc" "gtool $*: got '$W_OUT' (exit $W_RC), expected '$want'"
		diag_block stderr "$W_ERR"
	fi
}

# killed NAME DESC CMD...: the command dies by SIGKILL before it prints anything.
killed() {
	local name=$1 desc=$2
	shift 2
	wrun runc_exec "$name" "$@"
	if [ "$W_RC" = 137 ] && [ -z "$W_OUT" ]; then
		pass "$name: $desc"
	else
		fail "$name: $desc" "$*: exit $W_RC, output '$W_OUT' (expected death by SIGKILL, 137)"
		diag_block stderr "$W_ERR"
	fi
}

# events_of ID: the container's recent guard events, JSON lines.
events_of() {
	"$WEIR" events --json "$1" 2>/dev/null || true
}

# has_event ID DESC JQ-FILTER: one of ID's guard events matches the filter.
has_event() {
	local evs
	evs=$(events_of "$1")
	if jq -es "map(select($3)) | length > 0" <<<"${evs:-}" >/dev/null 2>&1; then
		pass "$2"
	else
		fail "$2" "no event matches: $3"
		diag_block "weir events --json" "$(tail -n 20 <<<"$evs")"
	fi
}

guard_count() { # guard_count STATS GUARD ACTION
	jq -r --arg g "$2" --arg a "$3" '.guards[$g][$a] // "null"' <<<"$1"
}
