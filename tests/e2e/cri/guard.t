#!/bin/bash
# weir's security guards through containerd, CRI and weir-nri (TAP, run with prove): a node
# baseline in weir.conf guards a pod that has no weir annotation, from its container's first
# instruction; guard events reach weir-nri's --flow-log; an annotation that loosens the
# baseline refuses the pod with weir's message, unless the pod's namespace is one the node
# config trusts (loosen_namespaces); an exec into a container whose escape guard kills keyctl
# (containerd's ExecSync: runc exec, whose init calls keyctl before its exec) runs, and the
# exec'd command's own keyctl is killed. Runs its own containerd (folder, sockets, bridge, subnet,
# cgroup root), weir state and bpffs folder, and removes them all.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUT=${WEIR_OUTPUT:-$ROOT/.output}

T=/run/weir-test/nri-guard
export WEIR_CRI_DIR=$T/containerd
export WEIR_NRI_SOCK=$T/nri/nri.sock
export WEIR_CRI_BRIDGE=weirgrd0
export WEIR_CRI_SUBNET4=10.89.81.0/24
export WEIR_CRI_SUBNET6=
export WEIR_CRI_CGROUP_ROOT=/weir-test-guard
export WEIR_CRI_IMAGE=localhost/weir-test/busybox-gtool:1
export WEIR_CRI_IMAGE_FILES="$OUT/bin/wtool $OUT/bin/gtool"
# shellcheck source=tests/e2e/cri/lib.sh
. "$HERE/lib.sh"

STATE=$T/state
BPFFS=/sys/fs/bpf/weir-test-guard
CONF=$T/weir.conf
NRI_LOG=$T/weir-nri.log
FLOW_LOG=$T/flows.jsonl
NRI_PID=

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root (installs packages, runs containerd, loads BPF)"
	exit 0
fi
for b in weir weir-nri wtool gtool; do
	if [ ! -x "$OUT/bin/$b" ]; then
		echo "Bail out! $OUT/bin/$b missing: run 'make test-build'"
		exit 1
	fi
done

WORK=$(mktemp -d /tmp/weir-guard-e2e.XXXXXX)
# shellcheck source=tests/e2e/cri/tap.sh
. "$HERE/tap.sh"
bail() {
	echo "Bail out! $*"
	[ -s "$NRI_LOG" ] && tail -n 20 "$NRI_LOG" | sed 's/^/# weir-nri: /'
	exit 1
}

weir() { "$OUT/bin/weir" --config "$CONF" "$@"; }
rec_field() { jq -r ".$2 // empty" "$STATE/containers/$1.json" 2>/dev/null; }

wait_for() { # wait_for SECONDS COMMAND...
	local end=$(($(cri_now_us) + $1 * 1000000))
	shift
	while [ "$(cri_now_us)" -lt "$end" ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	"$@" >/dev/null 2>&1
}
ctr_exited() { cri inspect "$1" | jq -e '.status.state == "CONTAINER_EXITED"' >/dev/null; }

# A container of pod $1 named $2 running the rest; prints "ID EXIT FIRST-LINE" once it exited.
run_once() {
	local pod=$1 name=$2 c code
	shift 2
	c=$(cri run "$pod" "$name" -- "$@") || return 1
	wait_for 10 ctr_exited "$c" || return 1
	code=$(cri inspect "$c" | jq -r '.status.exit_code')
	echo "$c $code $(sed -n 's/^[^ ]* stdout [FP] //p' "$(cri inspect "$c" | jq -r .status.log_path)" | head -n 1)"
}

gt() { # gt CONTAINER GTOOL-ARGS...: gtool's answer in the container
	local c=$1
	shift
	cri exec "$c" -- gtool "$@" 2>/dev/null | head -n 1
}

cleanup() {
	local rc=$?
	set +e
	cri_stop >/dev/null 2>&1
	[ -n "$NRI_PID" ] && kill -TERM "$NRI_PID" 2>/dev/null && wait "$NRI_PID"
	rm -rf "$STATE" "$BPFFS" "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! "$HERE/setup.sh" >"$WORK/setup.log" 2>&1; then
	diag_file "$WORK/setup.log"
	bail "tests/e2e/cri/setup.sh failed"
fi
cri_stop >/dev/null 2>&1 || true
rm -rf "$STATE" "$BPFFS"
mkdir -p "$T" "$STATE" "$BPFFS"
cat >"$CONF" <<EOF
{ "state_dir": "$STATE", "bpffs": "$BPFFS", "log_level": "info",
  "security": "raw-sockets enforce families raw; bind enforce allow tcp/8080",
  "loosen_namespaces": ["trusted"], "endpoint_cgroups": ["$WEIR_CRI_CGROUP_ROOT/**"] }
EOF
: >"$NRI_LOG"

echo "1..13"
cri_start 2>"$WORK/err" || { diag_file "$WORK/err"; bail "containerd did not start"; }
mark=$(cri_log_mark)
"$OUT/bin/weir-nri" -s "$WEIR_NRI_SOCK" -c "$CONF" -l debug --flow-log </dev/null \
	>>"$FLOW_LOG" 2>>"$NRI_LOG" &
NRI_PID=$!
if cri_wait_nri_plugin 10-weir 15 "$mark"; then
	ok 0 "weir-nri registers with containerd"
else
	ok 1 "weir-nri registers with containerd"
	bail "weir-nri did not connect"
fi

# --- the baseline, on a pod without any weir annotation --------------------------------------
podB=$(cri runp plain --namespace default -l weir-test=guard) || bail "cannot run pod plain"
read -r cF codeF outF < <(run_once "$podB" first gtool bind tcp 8081) || true
is "$codeF $outF" "3 EPERM" "no annotation: the baseline refuses the container's first instruction, a bind to tcp/8081"
is "$(rec_field "$cF" source) $(rec_field "$cF" security)" "nri raw-sockets=enforce bind=enforce" \
	"its record: attached by weir-nri, with the baseline's guards"
cB=$(cri run "$podB" app) || bail "cannot run container app"
is "$(gt "$cB" raw 4) $(gt "$cB" bind tcp 8080)" "EPERM ok" \
	"exec in app: a raw socket is refused, tcp/8080 (allowed) binds"
check "weir-nri --flow-log writes the guard events" -- wait_for 5 bash -c \
	"grep '\"container\":\"$cB\"' '$FLOW_LOG' | grep -q '\"type\":\"guard\",\"guard\":\"raw-sockets\",\"action\":\"denied\"'"

# --- loosening: refused, unless the namespace is trusted -------------------------------------
if cri runp loose --namespace default -l weir-test=guard -a "security.weir.io=bind audit" \
	>/dev/null 2>"$WORK/loose"; then
	ok 1 "a pod whose annotation loosens the baseline is refused"
else
	ok 0 "a pod whose annotation loosens the baseline is refused"
fi
check "the CRI error carries weir's message" -- grep -qF \
	"security.weir.io: guard \"bind audit\" loosens the node baseline (\"bind enforce allow tcp/8080\" in $CONF): mode audit is weaker than enforce" \
	"$WORK/loose"
diag "$(cat "$WORK/loose")"
podT=$(cri runp easy --namespace trusted -l weir-test=guard -a "security.weir.io=bind audit") ||
	bail "a pod of a trusted namespace may loosen the baseline"
read -r cT codeT outT < <(run_once "$podT" first gtool bind tcp 8081) || true
is "$codeT $outT" "0 ok" "namespace trusted (loosen_namespaces): bind audit replaces the baseline's enforce"
is "$(rec_field "$cT" security)" "raw-sockets=enforce bind=audit" \
	"... and the baseline's other guards still apply"
check "the bind is reported as audit" -- wait_for 5 bash -c \
	"'$OUT/bin/weir' --config '$CONF' events --json '$cT' | grep -q '\"guard\":\"bind\",\"action\":\"audit\"'"

# --- an exec into a running container: the runtime's setup is trusted, the command is not ----
podX=$(cri runp execd --namespace default -l weir-test=guard -a \
	"security.weir.io=raw-sockets enforce families raw; bind enforce allow tcp/8080; escape kill calls keyring,namespaces") ||
	bail "cannot run pod execd"
cX=$(cri run "$podX" app) || bail "cannot run container app of pod execd"
is "$(cri exec "$cX" -- echo hello 2>&1 | head -n 1)" "hello" \
	"escape kill calls keyring: an exec into the container (ExecSync, runc exec's keyctl before its exec) runs its command"
rc=0
cri exec "$cX" -- gtool keyring >"$WORK/xk" 2>/dev/null || rc=$?
is "$rc $(head -n 1 "$WORK/xk")" "137 " "... and the exec'd command's own keyctl is killed"
escape_events() {
	weir events --json "$cX" | jq -s '[.[] | select(.guard == "escape")] | map(.comm + " " + .action + " " + .syscall) | join(",")'
}
check "... reported once, as the command's: no event of the runtime's setup" -- wait_for 5 bash -c \
	"[ \"\$('$OUT/bin/weir' --config '$CONF' events --json '$cX' | jq -rs '[.[] | select(.guard == \"escape\")] | map(.comm + \" \" + .action + \" \" + .syscall) | join(\",\")')\" = 'gtool killed keyctl' ]"
diag "escape events of $cX: $(escape_events)"

cri stop "$cX" >/dev/null
cri rm "$cX" >/dev/null
cri stop "$cB" >/dev/null
cri rm "$cB" >/dev/null
echo "# $((n - failed)) passed, $failed failed"
[ "$failed" = 0 ]
