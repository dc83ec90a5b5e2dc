#!/bin/bash
# Smoke test of the CRI/NRI e2e infrastructure (TAP, run with prove):
# setup, a real containerd 1.7 with CRI and NRI, pods with IPs on the test
# bridge, exec, pod-to-pod ping (inside namespaces this test made), a
# containerd restart with running pods, teardown, and the pod + container
# start time. Runs in its own test folder, sockets, bridge, subnet and cgroup
# root, so it does not disturb another containerd of the e2e tests.
set -euo pipefail

# Own instance (set before lib.sh reads them).
export WEIR_CRI_DIR=/run/weir-test/smoke/containerd
export WEIR_NRI_SOCK=/run/weir-test/smoke/nri/nri.sock
export WEIR_CRI_BRIDGE=weirsmoke0
export WEIR_CRI_SUBNET4=10.89.78.0/24
export WEIR_CRI_SUBNET6=fd00:89:78::/64
export WEIR_CRI_CGROUP_ROOT=/weir-test-smoke

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
# Checks below run in `bash -c`: give them the client.
export -f cri cri_socket_in_use
export WEIR_CRI_LIB_DIR WEIR_CRI_PYTHON WEIR_CRI_SOCK WEIR_NRI_SOCK

# Processes whose command line names our socket (shims), other than us.
shims_left() {
	local p cmd
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" = $$ ] && continue
		cmd=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
		case $cmd in *containerd-shim*"$WEIR_CRI_SOCK"*) echo "shim ${p#/proc/}: $cmd" ;; esac
	done
}

PLAN=25
# shellcheck source=tap.sh
. "$HERE/tap.sh"
bail() {
	echo "Bail out! $*"
	exit 1
}

cleanup() {
	local rc=$?
	set +e
	cri_stop >/dev/null 2>&1
	if cri_running; then
		echo "# cleanup: containerd still running" >&2
	fi
	rm -rf "$WORK"
	exit $rc
}

[ "$(id -u)" = 0 ] || skip_all "needs root (installs packages, runs containerd)"

WORK=$(mktemp -d /tmp/weir-cri-smoke.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "1..$PLAN"

# --- 1-4: setup and start ----------------------------------------------------
t0=$(date +%s%N)
if "$HERE/setup.sh" >"$WORK/setup.log" 2>&1; then
	ok 0 "setup.sh ($((($(date +%s%N) - t0) / 1000000)) ms)"
else
	ok 1 "setup.sh"
	diag_file "$WORK/setup.log"
	bail "setup failed"
fi
diag "$(containerd --version)"

cri_stop >/dev/null 2>&1 || true # a leftover from an aborted run
if cri_start 2>"$WORK/err"; then
	ok 0 "containerd starts and opens its CRI socket (ready in ${WEIR_CRI_START_MS} ms)"
else
	ok 1 "containerd starts"
	diag_file "$WORK/err"
	bail "containerd did not start"
fi
check "NRI socket $WEIR_NRI_SOCK appears and listens" -- cri_socket_in_use "$WEIR_NRI_SOCK"
ver=$(cri version 2>"$WORK/err" | jq -r '.runtime_name + " " + .runtime_version' || true)
check "CRI Version answers containerd 1.7+ ($ver)" -- \
	bash -c "[[ '$ver' =~ ^containerd\ v?(1\.([7-9]|[1-9][0-9])|[2-9]\.) ]]"

# --- 5-6: runtime ready, image ----------------------------------------------
check "CRI Status: RuntimeReady and NetworkReady" -- cri status --ready
# shellcheck disable=SC2016 # expanded by the inner bash, which has the exported variable
check "CRI sees the imported image $WEIR_CRI_IMAGE" -- bash -c 'cri images -q | grep -qxF "$WEIR_CRI_IMAGE"'

# --- 7-13: pod A ------------------------------------------------------------
if podA=$(cri runp smoke-a -a weir.io/smoke=a -l app=smoke 2>"$WORK/err"); then
	ok 0 "RunPodSandbox smoke-a"
else
	ok 1 "RunPodSandbox smoke-a"
	diag_file "$WORK/err"
	bail "cannot run a pod"
fi
if ctrA=$(cri run "$podA" app -a weir.io/ctr=a -- sh -c 'echo hello-from-a; exec sleep 3600' 2>"$WORK/err"); then
	ok 0 "CreateContainer + StartContainer in smoke-a"
else
	ok 1 "CreateContainer + StartContainer in smoke-a"
	diag_file "$WORK/err"
	bail "cannot run a container"
fi
check "container is CONTAINER_RUNNING with its annotation" -- bash -c \
	"cri inspect $ctrA | jq -e '.status.state == \"CONTAINER_RUNNING\" and .status.annotations[\"weir.io/ctr\"] == \"a\"'"
ipA=$(cri ip "$podA" 2>/dev/null || true)
check "pod smoke-a has an IPv4 in $WEIR_CRI_SUBNET4 ($ipA)" -- \
	bash -c "[[ '$ipA' == ${WEIR_CRI_SUBNET4%.*/*}.* ]]"
check "bridge $WEIR_CRI_BRIDGE exists on the host, without an IPv4 address" -- \
	bash -c "ip link show '$WEIR_CRI_BRIDGE' >/dev/null && ! ip -4 -o addr show dev '$WEIR_CRI_BRIDGE' | grep -q inet"
check "ExecSync prints the command's output" -- \
	bash -c "[ \"\$(cri exec $ctrA -- cat /etc/hostname)\" = smoke-a ]"
check "ExecSync passes the exit status through" -- \
	bash -c "cri exec $ctrA -- sh -c 'exit 3'; [ \$? = 3 ]"

# --- 14-17: pod B, pod-to-pod traffic, isolation ------------------------------
{ podB=$(cri runp smoke-b -l app=smoke 2>"$WORK/err") && ctrB=$(cri run "$podB" app 2>>"$WORK/err"); } || true
check "pod smoke-b with an idle container runs" -- test -n "${ctrB:-}"
ipB=$(cri ip "$podB" 2>/dev/null || true)
check "pod A pings pod B over the bridge ($ipA -> $ipB)" -- \
	cri exec "$ctrA" -- ping -c 2 -w 5 "$ipB"
check "pods have no default route (nothing leaves the machine)" -- \
	bash -c "! cri exec $ctrA -- ip route | grep -q '^default' && ! cri exec $ctrA -- ip -6 route | grep -q '^default'"
cg=$(cri_cgroup2_mount)
pidA=$(cri pid "$ctrA" 2>/dev/null || echo 0)
cgpath=$(awk -F: '$1 == "0" { print $3 }' "/proc/$pidA/cgroup" 2>/dev/null || true)
check "container cgroup ($cgpath) is under $WEIR_CRI_CGROUP_ROOT on cgroup2 ($cg)" -- \
	bash -c "[[ '$cgpath' == $WEIR_CRI_CGROUP_ROOT/pod-*/$ctrA ]] && [ -d '$cg$cgpath' ]"

# --- 18-19: errors reach the caller ----------------------------------------
cri run "$podA" bad --image localhost/weir-test/no-such-image:0 >"$WORK/bad.out" 2>"$WORK/bad.err" && rc=0 || rc=$?
ok "$([ "$rc" = 1 ] && echo 0 || echo 1)" "a failing CreateContainer exits 1 (got $rc)"
check "and prints the runtime's gRPC error on stderr" -- \
	grep -Eq 'cri.py: CreateContainer: [A-Z_]+: .*no-such-image' "$WORK/bad.err"
diag "$(head -c 300 "$WORK/bad.err")"

# --- 20-21: containerd restart mid-test -----------------------------------
if cri_restart 2>"$WORK/err"; then
	ok 0 "containerd restarts with pods running (ready in ${WEIR_CRI_START_MS} ms)"
else
	ok 1 "containerd restarts"
	diag_file "$WORK/err"
	bail "restart failed"
fi
check "after the restart: NRI socket back, container still runs, exec works" -- \
	bash -c "cri_socket_in_use '$WEIR_NRI_SOCK' && [ \"\$(cri exec $ctrA -- echo alive)\" = alive ]" 

# --- 22-23: teardown through CRI ------------------------------------------
netnsA=$(cri netns "$podA" 2>/dev/null || true)
check "StopContainer + RemoveContainer" -- bash -c "cri stop $ctrA && cri rm $ctrA && ! cri inspect $ctrA 2>/dev/null"
check "StopPodSandbox + RemovePodSandbox for both pods" -- \
	bash -c "cri rmp $podA $podB && [ -z \"\$(cri pods -q)\" ] && [ ! -e '$netnsA' ]"

# --- 24: start time ----------------------------------------------------------
if cri bench 10 >"$WORK/bench.json" 2>"$WORK/err"; then
	ok 0 "10 pod + container starts"
	diag "pod+container start (RunPodSandbox+CreateContainer+StartContainer), 10 runs:" \
		"median $(jq .median_ms "$WORK/bench.json") ms," \
		"min $(jq .min_ms "$WORK/bench.json") ms, max $(jq .max_ms "$WORK/bench.json") ms"
else
	ok 1 "10 pod + container starts"
	diag_file "$WORK/err"
fi

# --- 25: stop and clean ------------------------------------------------------
cri_stop 2>"$WORK/err" || true
leftover=$(
	cri_running && echo "containerd"
	[ -S "$WEIR_CRI_SOCK" ] && echo "socket $WEIR_CRI_SOCK"
	[ -S "$WEIR_NRI_SOCK" ] && echo "socket $WEIR_NRI_SOCK"
	shims_left
	awk -v d="$WEIR_CRI_DIR/" 'index($5, d) == 1 { print "mount " $5 }' /proc/self/mountinfo
	[ -d "$cg$WEIR_CRI_CGROUP_ROOT" ] && echo "cgroup $cg$WEIR_CRI_CGROUP_ROOT"
	[ -e "/sys/class/net/$WEIR_CRI_BRIDGE" ] && echo "bridge $WEIR_CRI_BRIDGE"
	true
)
ok "$([ -z "$leftover" ] && echo 0 || echo 1)" "containerd stopped, nothing left (no shim, mount, socket, cgroup, bridge)"
[ -z "$leftover" ] || diag "$leftover"

tap_done
