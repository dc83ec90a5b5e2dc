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
T=/run/weir-test/nri-guard
BPFFS=/sys/fs/bpf/weir-test-guard
export WEIR_CRI_DIR=$T/containerd
export WEIR_NRI_SOCK=$T/nri/nri.sock
export WEIR_CRI_BRIDGE=weirgrd0
export WEIR_CRI_SUBNET4=10.89.81.0/24
export WEIR_CRI_SUBNET6=
export WEIR_CRI_CGROUP_ROOT=/weir-test-guard
export WEIR_CRI_IMAGE=localhost/weir-test/busybox-gtool:1
SUITE_TOOLS="wtool gtool"
CONF_EXTRA='"security": "raw-sockets enforce families raw; bind enforce allow tcp/8080",
  "loosen_namespaces": ["trusted"]'
NRI_ARGS=(--flow-log)
# shellcheck source=tests/e2e/cri/suite.sh
. "$HERE/suite.sh"
suite_init weir weir-nri wtool gtool

gt() { # gt CONTAINER GTOOL-ARGS...: gtool's answer in the container
	local c=$1
	shift
	cri exec "$c" -- gtool "$@" 2>/dev/null | head -n 1
}

echo "1..13"
cri_start 2>"$WORK/err" || { diag_file "$WORK/err"; bail "containerd did not start"; }
if nri_start; then
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
tap_done
