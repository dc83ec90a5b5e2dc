# shellcheck shell=bash
# What every weir-nri suite of this folder (nri.t, iface.t, guard.t, shaping.t, conntrack.t)
# shares: its own containerd (lib.sh), TAP (tap.sh), its own weir state, bpffs folder and
# weir.conf, weir and weir-nri helpers, and the cleanup trap. A suite sets its folder, its
# bpffs folder and lib.sh's settings, then sources this file:
#
#   HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
#   T=/run/weir-test/nri-x BPFFS=/sys/fs/bpf/weir-test-x
#   export WEIR_CRI_DIR=$T/containerd WEIR_NRI_SOCK=$T/nri/nri.sock WEIR_CRI_BRIDGE=weirx0 ...
#   SUITE_TOOLS="wtool"             # of .output/bin, copied into the image (WEIR_CRI_IMAGE_FILES)
#   CONF_EXTRA='"security": "..."'  # more members of weir.conf (optional)
#   NRI_ARGS=(--flow-log)           # more arguments of weir-nri (optional)
#   . "$HERE/suite.sh"
#   suite_init weir weir-nri wtool  # root, built binaries, setup.sh, fresh state, conf, trap
#   cri_start; nri_start
#
# A suite's own cleanup steps go in a function suite_cleanup_extra (run first, while containerd
# still runs). WEIR_NRI_WRAP: a command weir-nri runs under, e.g. to check the capabilities it
# needs: WEIR_NRI_WRAP="setpriv --bounding-set -all,+bpf,+net_admin,+perfmon --".

ROOT=$(cd "$HERE/../../.." && pwd)
OUT=${WEIR_OUTPUT:-$ROOT/.output}
STATE=$T/state
CONF=$T/weir.conf
NRI_LOG=$T/weir-nri.log
FLOW_LOG=$T/flows.jsonl
NRI_PID=
WORK=
CONF_EXTRA=${CONF_EXTRA:-}
[ -n "${NRI_ARGS+set}" ] || NRI_ARGS=()

if [ -n "${SUITE_TOOLS:-}" ]; then
	WEIR_CRI_IMAGE_FILES=$(for b in $SUITE_TOOLS; do printf '%s ' "$OUT/bin/$b"; done)
	export WEIR_CRI_IMAGE_FILES=${WEIR_CRI_IMAGE_FILES% }
fi
# shellcheck source=tests/e2e/cri/lib.sh
. "$HERE/lib.sh"
# shellcheck source=tests/e2e/cri/tap.sh
. "$HERE/tap.sh"

bail() {
	echo "Bail out! $*"
	[ -s "$NRI_LOG" ] && tail -n 20 "$NRI_LOG" | sed 's/^/# weir-nri: /'
	exit 1
}

weir() { "$OUT/bin/weir" --config "$CONF" "$@"; }

# weir-nri on the suite's containerd, with NRI_ARGS, until it is connected (its stdout, the
# flow log with --flow-log, goes to $FLOW_LOG).
nri_start() {
	local mark
	mark=$(cri_log_mark)
	${WEIR_NRI_WRAP:-} "$OUT/bin/weir-nri" -s "$WEIR_NRI_SOCK" -c "$CONF" -l debug "${NRI_ARGS[@]}" \
		</dev/null >>"$FLOW_LOG" 2>>"$NRI_LOG" &
	NRI_PID=$!
	# under memcheck (tests/sanitize/valgrind) loading the datapath at startup takes minutes
	cri_wait_nri_plugin 10-weir "${WEIR_NRI_CONNECT_TIMEOUT:-15}" "$mark"
}

# SIGTERM weir-nri; returns its exit status.
nri_stop() {
	local rc=0
	[ -n "$NRI_PID" ] || return 0
	kill -TERM "$NRI_PID" 2>/dev/null || true
	wait "$NRI_PID" || rc=$?
	NRI_PID=
	return $rc
}

rec_field() { jq -r ".$2 // empty" "$STATE/containers/$1.json" 2>/dev/null; }

# wait_for SECONDS COMMAND...: until COMMAND succeeds, at most SECONDS.
wait_for() {
	local limit=$1 end
	shift
	end=$(($(cri_now_us) + limit * 1000000))
	while [ "$(cri_now_us)" -lt "$end" ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	"$@" >/dev/null 2>&1
}

ctr_exited() { cri inspect "$1" | jq -e '.status.state == "CONTAINER_EXITED"' >/dev/null; }

# run_once POD NAME CMD...: run a container whose command is CMD, wait until it exited; print
# "ID EXIT FIRST-LINE" (its first line of output, from the CRI log).
run_once() {
	local pod=$1 name=$2 c code
	shift 2
	c=$(cri run "$pod" "$name" -- "$@") || return 1
	wait_for 10 ctr_exited "$c" || return 1
	code=$(cri inspect "$c" | jq -r '.status.exit_code')
	echo "$c $code $(sed -n 's/^[^ ]* stdout [FP] //p' "$(cri inspect "$c" | jq -r .status.log_path)" | head -n 1)"
}

suite_cleanup() {
	local rc=$?
	set +e
	declare -F suite_cleanup_extra >/dev/null && suite_cleanup_extra >/dev/null 2>&1
	cri_stop >/dev/null 2>&1 # removes every pod: weir-nri detaches them if it runs
	nri_stop >/dev/null 2>&1
	rm -rf "$STATE" "$BPFFS" "$WORK"
	exit $rc
}

# suite_init BINARIES...: root, the binaries built, containerd set up (setup.sh), what an
# aborted run left removed, fresh state and bpffs folders, weir.conf, the cleanup trap.
suite_init() {
	local b
	[ "$(id -u)" = 0 ] || skip_all "needs root (installs packages, runs containerd, loads BPF)"
	for b in "$@"; do
		if [ ! -x "$OUT/bin/$b" ]; then
			echo "Bail out! $OUT/bin/$b missing: run 'make test-build'"
			exit 1
		fi
	done
	WORK=$(mktemp -d "/tmp/weir-$(basename "$T").XXXXXX")
	trap suite_cleanup EXIT
	trap 'exit 130' INT TERM
	if ! "$HERE/setup.sh" >"$WORK/setup.log" 2>&1; then
		diag_file "$WORK/setup.log"
		bail "tests/e2e/cri/setup.sh failed"
	fi
	cri_stop >/dev/null 2>&1 || true # what an aborted run left
	rm -rf "$STATE" "$BPFFS"
	mkdir -p "$T" "$STATE"
	# weir pins under <bpffs>/weir: a folder of the node's bpffs, mounted if the node has none
	if ! stat -f -c %T /sys/fs/bpf 2>/dev/null | grep -q '^bpf'; then
		mount -t bpf bpf /sys/fs/bpf || bail "cannot mount bpffs at /sys/fs/bpf"
	fi
	mkdir -p "$BPFFS"
	printf '{ "state_dir": "%s", "bpffs": "%s", "log_level": "info",%s "endpoint_cgroups": ["%s/**"] }\n' \
		"$STATE" "$BPFFS" "${CONF_EXTRA:+ $CONF_EXTRA,}" "$WEIR_CRI_CGROUP_ROOT" >"$CONF"
	: >"$NRI_LOG"
}
