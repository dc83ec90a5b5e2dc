#!/bin/bash
# weir-nri end to end (TAP, run with prove): a real containerd 1.7 with CRI and NRI, real pods
# on a CNI bridge, real traffic between pods (wtool, copied into the test image), and
# .output/bin/weir-nri connected to containerd's NRI socket. Shows:
#   - a pod's egress policy is in force from its container's first instruction (EPERM), and
#     an allowed peer is reached;
#   - egress.weir.io/container.<name> beats egress.weir.io/pod beats egress.weir.io;
#   - counters equal what was sent (N datagrams of S bytes = N packets, N*(S+28) bytes);
#   - stop and remove leave nothing (record stopped with its final counters, no pinned
#     endpoint, no link on the cgroup);
#   - a bad annotation refuses RunPodSandbox or CreateContainer with weir's message and leaves
#     nothing;
#   - weir-nri restarting under continuous traffic: no denied datagram gets through, allowed
#     ones all do; after the restart Synchronize attaches a pod started while weir-nri was down
#     (containerd does not wait for an absent plugin: such a pod runs unenforced until then)
#     and detaches the endpoint of a container that stopped meanwhile;
#   - containerd restarting: weir-nri reconnects and enforces the next pod.
# Runs its own containerd (folder, sockets, bridge, subnet, cgroup root) and its own weir
# state and bpffs folder (weir-nri -c), so it disturbs no other test, and removes them all.
# WEIR_NRI_WRAP: a command weir-nri runs under, e.g. to check the capabilities it needs:
#   WEIR_NRI_WRAP="setpriv --bounding-set -all,+bpf,+net_admin,+perfmon --" prove nri.t
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUT=${WEIR_OUTPUT:-$ROOT/.output}

T=/run/weir-test/nri
export WEIR_CRI_DIR=$T/containerd
export WEIR_NRI_SOCK=$T/nri/nri.sock
export WEIR_CRI_BRIDGE=weirnri0
export WEIR_CRI_SUBNET4=10.89.79.0/24
export WEIR_CRI_SUBNET6=
export WEIR_CRI_CGROUP_ROOT=/weir-test-nri
export WEIR_CRI_IMAGE=localhost/weir-test/busybox-wtool:1
export WEIR_CRI_IMAGE_FILES=$OUT/bin/wtool
. "$HERE/lib.sh"

STATE=$T/state
BPFFS=/sys/fs/bpf/weir-test-nri
CONF=$T/weir.conf
NRI_LOG=$T/weir-nri.log
FLOW_LOG=$T/flows.jsonl
METRICS_PORT=19464
NRI_PID=

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root (installs packages, runs containerd, loads BPF)"
	exit 0
fi
for b in weir weir-nri wtool; do
	if [ ! -x "$OUT/bin/$b" ]; then
		echo "Bail out! $OUT/bin/$b missing: run 'make test-build'"
		exit 1
	fi
done

WORK=$(mktemp -d /tmp/weir-nri-e2e.XXXXXX)

# --- TAP: tests/e2e/cri/tap.sh ---------------------------------------------------------
. "$HERE/tap.sh"
bail() {
	echo "Bail out! $*"
	[ -s "$NRI_LOG" ] && tail -n 20 "$NRI_LOG" | sed 's/^/# weir-nri: /'
	exit 1
}

# --- weir and weir-nri ---------------------------------------------------------------------
weir() { "$OUT/bin/weir" --config "$CONF" "$@"; }

nri_start() {
	local mark
	mark=$(cri_log_mark)
	${WEIR_NRI_WRAP:-} "$OUT/bin/weir-nri" -s "$WEIR_NRI_SOCK" -c "$CONF" -l debug \
		--metrics-listen "127.0.0.1:$METRICS_PORT" --flow-log </dev/null >>"$FLOW_LOG" 2>>"$NRI_LOG" &
	NRI_PID=$!
	cri_wait_nri_plugin 10-weir 15 "$mark"
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

rec() { jq -c . "$STATE/containers/$1.json" 2>/dev/null; }
rec_field() { jq -r ".$2 // empty" "$STATE/containers/$1.json" 2>/dev/null; }
stat_of() { weir stats "$1" --json 2>/dev/null; }
delta() { # delta JSON0 JSON1 PATH
	echo $(($(jq "$3" <<<"$2") - $(jq "$3" <<<"$1")))
}

# Wait up to $1 seconds for a command to succeed.
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
rec_state_is() { [ "$(rec_field "$1" state)" = "$2" ]; }

# Links attached to the cgroup with kernel id $1.
links_on_cgroup() {
	bpftool -j link show 2>/dev/null | jq --argjson id "$1" '[.[] | select(.cgroup_id == $id)] | length'
}

# The expected error line for an annotation: what `weir policy check` prints, without its
# program prefix.
policy_msg() { weir policy check -a "$1" 2>&1 | sed -n 's/^weir: //p' | head -n 1; }

# wtool in container $1, one line of output (first word: ok or the errno name).
cw() {
	local c=$1
	shift
	cri exec "$c" -- wtool "$@" 2>/dev/null | head -n 1
}
# Datagrams of SIZE from IP that the peer's sink on PORT got.
sink_count() { # PORT SIZE IP
	cri exec "$CP" -- cat "/tmp/u$1" 2>/dev/null | grep -c "^udp $2 from $3\$"
}

ctr_exited() { cri inspect "$1" | jq -e '.status.state == "CONTAINER_EXITED"' >/dev/null; }

# Run a container (pod $1, name $2) whose command is the rest, wait until it exited; print
# its exit code and its first line of output (from the CRI log).
run_once() {
	local pod=$1 name=$2 c code
	shift 2
	c=$(cri run "$pod" "$name" -- "$@") || return 1
	wait_for 10 ctr_exited "$c" || return 1
	code=$(cri inspect "$c" | jq -r '.status.exit_code')
	echo "$c $code $(sed -n 's/^[^ ]* stdout [FP] //p' "$(cri inspect "$c" | jq -r .status.log_path)" | head -n 1)"
}

cleanup() {
	local rc=$?
	set +e
	cri_stop >/dev/null 2>&1 # removes every pod: weir-nri detaches them if it runs
	nri_stop >/dev/null 2>&1
	rm -rf "$STATE" "$BPFFS" "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- setup ---------------------------------------------------------------------------------
t0=$(date +%s%N)
if ! "$HERE/setup.sh" >"$WORK/setup.log" 2>&1; then
	diag_file "$WORK/setup.log"
	bail "tests/e2e/cri/setup.sh failed"
fi
diag "setup.sh: $((($(date +%s%N) - t0) / 1000000)) ms; $(containerd --version)"
cri_stop >/dev/null 2>&1 || true # what an aborted run left
rm -rf "$STATE" "$BPFFS"
mkdir -p "$T" "$STATE"
# weir pins under <bpffs>/weir: a folder of the node's bpffs, mounted if the node has none.
if ! stat -f -c %T /sys/fs/bpf 2>/dev/null | grep -q '^bpf'; then
	mount -t bpf bpf /sys/fs/bpf || bail "cannot mount bpffs at /sys/fs/bpf"
fi
mkdir -p "$BPFFS"
printf '{ "state_dir": "%s", "bpffs": "%s", "log_level": "info" }\n' "$STATE" "$BPFFS" >"$CONF"
: >"$NRI_LOG"

echo "1..62"

cri_start 2>"$WORK/err" || { diag_file "$WORK/err"; bail "containerd did not start"; }
if nri_start 2>"$WORK/err"; then
	ok 0 "weir-nri registers with containerd (plugin 10-weir connected)"
else
	ok 1 "weir-nri registers with containerd"
	diag_file "$WORK/err"
	bail "weir-nri did not connect"
fi

# --- the peer: servers on tcp/80-82, udp sinks on 5000 and 5001 -----------------------------
podP=$(cri runp peer -l weir-test=nri) || bail "cannot run the peer pod"
CP=$(cri run "$podP" srv -- sh -c 'wtool udp-sink 5000 >/tmp/u5000 2>&1 &
	wtool udp-sink 5001 >/tmp/u5001 2>&1 &
	for p in 80 81 82; do wtool tcp-server $p >/dev/null 2>&1 & done; wait') ||
	bail "cannot run the peer container"
P=$(cri ip "$podP")
peer_ready() { [ "$(cri exec "$CP" -- netstat -lntu 2>/dev/null | grep -cE ':(80|81|82|5000|5001) ')" -ge 5 ]; }
wait_for 10 peer_ready || bail "peer servers did not start"
diag "peer pod $P"

# --- 2-9: enforced from the first instruction ------------------------------------------------
podA=$(cri runp first -l weir-test=nri -a "egress.weir.io=allow $P/32 tcp/80,udp/5000") ||
	bail "cannot run pod first"
read -r cF codeF outF < <(run_once "$podA" deny-first wtool connect "$P" 81) || true
is "$codeF $outF" "3 EPERM" "first instruction: connect to the denied $P:81 fails with EPERM (exit 3)"
check "its record: source nri, pod weir-test/first, stopped after the exit" -- \
	wait_for 5 bash -c "jq -e '.source == \"nri\" and .pod_name == \"first\" and .pod_namespace == \"weir-test\" and .state == \"stopped\"' '$STATE/containers/$cF.json'"
s=$(stat_of "$cF")
is "$(jq -r '[.state, .egress.denied_connects, .egress.tcp.packets] | join(" ")' <<<"$s")" "stopped 1 0" \
	"its final counters: 1 denied connect, no TCP packet left"
read -r cO codeO outO < <(run_once "$podA" allow-first wtool connect "$P" 80) || true
is "$codeO $outO" "0 ok" "first instruction: connect to the allowed $P:80 succeeds"

cA=$(cri run "$podA" app) || bail "cannot run container app in pod first"
A=$(cri ip "$podA")
check "app: running record for the container, endpoint pinned under $BPFFS/weir/endpoints" -- \
	bash -c "jq -e '.state == \"running\"' '$STATE/containers/$cA.json' && [ -d '$BPFFS/weir/endpoints/$(rec_field "$cA" endpoint)' ]"
cgA=$(rec_field "$cA" cgroup)
cgidA=$(rec_field "$cA" cgroup_id)
is "$cgA" "$(cri_cgroup2_mount)$WEIR_CRI_CGROUP_ROOT/pod-$(cri inspectp "$podA" | jq -r .status.metadata.uid)/$cA" \
	"attached to the container's own cgroup v2 ($(cri_cgroup2_mount)/...)"
npinned=$(ls "$BPFFS/weir/endpoints/$(rec_field "$cA" endpoint)" 2>/dev/null | grep -c .)
is "$(links_on_cgroup "${cgidA:-0}") $([ "$npinned" -ge 4 ] && echo pinned)" "$npinned pinned" \
	"the endpoint's $npinned pinned bpf links are the ones on that cgroup"
is "$(cw "$cA" connect "$P" 82)" "EPERM" "exec in app: tcp/82 is refused too"

# --- 10-15: exact counters -------------------------------------------------------------------
N=37 S=123
s0=$(stat_of "$cA")
is "$(cw "$cA" udp-send "$P" 5000 $N $S)" "ok sent=$N size=$S" "app sends $N datagrams of $S bytes to $P:5000"
s1=$(stat_of "$cA")
is "$(delta "$s0" "$s1" .egress.udp.packets) $(delta "$s0" "$s1" .egress.udp.bytes)" \
	"$N $((N * (S + 28)))" "weir stats: egress.udp = $N packets, $N*($S+28) bytes"
is "$(delta "$s0" "$s1" .egress.tcp.packets) $(delta "$s0" "$s1" .ingress.udp.packets)" "0 0" \
	"nothing else counted"
is "$(sink_count 5000 $S "$A")" "$N" "the peer received the $N datagrams"
is "$(cw "$cA" udp-send "$P" 5001 2 $S)" "EPERM" "a datagram to the denied $P:5001 fails with EPERM"
s2=$(stat_of "$cA")
is "$(delta "$s1" "$s2" .egress.denied_connects) $(delta "$s1" "$s2" .egress.udp.packets) $(sink_count 5001 $S "$A")" \
	"1 0 0" "counted as 1 denied connect, no packet sent, none received"

# --- metrics served by weir-nri, flow log, one instance per node -------------------------------
metrics=$(curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" 2>"$WORK/err" || true)
want=$(jq -r '.egress.udp.packets' <<<"$s2")
got=$(grep "^weir_packets_total{" <<<"$metrics" | grep "container_id=\"$cA\"" |
	grep 'direction="egress"' | grep 'protocol="udp"' | awk '{ print $NF }')
is "$got" "$want" "weir-nri --metrics-listen: weir_packets_total of app's egress UDP equals weir stats"
is "$(grep -c "^weir_packets_total{.*pod=\"first\".*namespace=\"weir-test\"" <<<"$metrics" | tr -d ' ' | sed 's/^0$/none/;s/^[1-9][0-9]*$/labelled/')" \
	labelled "its series carry the pod and namespace labels"
podF=$(cri runp flows -l weir-test=nri -a "egress.weir.io=allow $P/32 tcp/80" -a "monitor.weir.io=flows") ||
	bail "cannot run pod flows"
cFl=$(cri run "$podF" talker) || bail "cannot run container talker"
is "$(cw "$cFl" tcp-send "$P" 80 4321 | cut -d" " -f1-2)" "ok sent=4321" "talker sends 4321 bytes to the allowed $P:80"
is "$(cw "$cFl" connect "$P" 81)" "EPERM" "talker's connect to $P:81 is refused"
flowline() { grep "\"container\":\"$cFl\"" "$FLOW_LOG" | jq -c "select($1)" 2>/dev/null | head -n 1; }
wait_for 5 bash -c "grep -q '\"remote_port\":81' '$FLOW_LOG'"
is "$(flowline '.type == "flow" and .remote_port == 80' | jq -r '.bytes_out')" 4321 \
	"weir-nri --flow-log: the connection's flow line reports its 4321 payload bytes"
is "$(flowline '.type == "denied" and .remote_port == 81' | jq -r '.verdict + " " + .at')" "denied socket" \
	"and the refused connect as one denied line"
"$OUT/bin/weir-nri" -s "$WEIR_NRI_SOCK" -c "$CONF" </dev/null >"$WORK/out" 2>"$WORK/err"
rc=$?
is "$rc $(grep -c 'another weir-nri is running' "$WORK/err")" "1 1" \
	"a second weir-nri on the node refuses to start (it would attach every container twice)"
cri stop "$cFl" >/dev/null
cri rm "$cFl" >/dev/null && cri rmp "$podF" >/dev/null

# --- 16-21: stop and remove leave nothing -----------------------------------------------------
epA=$(rec_field "$cA" endpoint)
cri stop "$cA" >/dev/null
check "StopContainer: the record is stopped" -- wait_for 5 rec_state_is "$cA" stopped
check "no endpoint $epA pinned any more" -- test ! -e "$BPFFS/weir/endpoints/$epA"
is "$(links_on_cgroup "${cgidA:-0}")" 0 "no bpf link on the container's cgroup (bpftool)"
if [ -d "$cgA" ]; then
	is "$(bpftool cgroup show "$cgA" 2>/dev/null | grep -c .)" 0 "bpftool cgroup show of the still existing cgroup: nothing"
else
	ok 0 "the cgroup itself is gone (nothing can be attached to it)"
fi
s3=$(stat_of "$cA")
is "$(jq -r '[.state, .egress.udp.packets, .egress.udp.bytes, .egress.denied_connects] | join(" ")' <<<"$s3")" \
	"stopped $(jq -r '[.egress.udp.packets, .egress.udp.bytes, .egress.denied_connects] | join(" ")' <<<"$s2")" \
	"the stopped record keeps the final counters"
cri rm "$cA" >/dev/null && cri rmp "$podA" >/dev/null
is "$(rec_field "$cA" state) $(ls "$BPFFS/weir/endpoints" 2>/dev/null | grep -c .)" "stopped 0" \
	"RemoveContainer + RemovePodSandbox: still stopped, no endpoint pinned"

# --- 22-28: container.<name> beats /pod beats plain --------------------------------------------
podO=$(cri runp ovr -l weir-test=nri \
	-a "egress.weir.io=allow $P/32 tcp/81" \
	-a "egress.weir.io/pod=allow $P/32 tcp/80" \
	-a "egress.weir.io/container.c2=allow $P/32 tcp/82") || bail "cannot run pod ovr"
c1=$(cri run "$podO" c1) && c2=$(cri run "$podO" c2) || bail "cannot run containers in pod ovr"
is "$(cw "$c1" connect "$P" 80) $(cw "$c1" connect "$P" 81) $(cw "$c1" connect "$P" 82)" "ok EPERM EPERM" \
	"c1: egress.weir.io/pod (tcp/80) beats egress.weir.io (tcp/81)"
is "$(cw "$c2" connect "$P" 82) $(cw "$c2" connect "$P" 80) $(cw "$c2" connect "$P" 81)" "ok EPERM EPERM" \
	"c2: egress.weir.io/container.c2 (tcp/82) beats egress.weir.io/pod"
is "$(jq -r '.annotations["egress.weir.io"]' "$STATE/containers/$c2.json")" "allow $P/32 tcp/82" \
	"c2's record holds the resolved policy"
podPl=$(cri runp plain -l weir-test=nri -a "egress.weir.io=allow $P/32 tcp/81") &&
	c3=$(cri run "$podPl" c3) || bail "cannot run pod plain"
is "$(cw "$c3" connect "$P" 81) $(cw "$c3" connect "$P" 80)" "ok EPERM" "plain egress.weir.io alone applies"

# --- bad annotations ------------------------------------------------------------------------
nrec=$(ls "$STATE/containers" | wc -l)
neps=$(ls "$BPFFS/weir/endpoints" | wc -l)
bad='allow 10.0.0.300/8 tcp/443'
if cri runp bad-pod -l weir-test=nri -a "egress.weir.io=$bad" >/dev/null 2>"$WORK/bad1"; then
	ok 1 "RunPodSandbox with a bad egress.weir.io fails"
else
	ok 0 "RunPodSandbox with a bad egress.weir.io fails"
fi
want="weir: pod weir-test/bad-pod: $(policy_msg "egress.weir.io=$bad")"
check "the CRI error carries weir's message: $want" -- grep -qF "RunPodSandbox: UNKNOWN: NRI RunPodSandbox failed: rpc error: code = Unknown desc = $want" "$WORK/bad1"
diag "$(cat "$WORK/bad1")"
is "$(cri pods | jq '[.[] | select(.metadata.name == "bad-pod")] | length')" 0 "no pod bad-pod is left"

podQ=$(cri runp q -l weir-test=nri -a "egress.weir.io/container.bad=allow any tcp/99999") ||
	bail "a pod whose only bad key is for container 'bad' should start"
if cri run "$podQ" bad >/dev/null 2>"$WORK/bad2"; then
	ok 1 "CreateContainer 'bad' with a bad egress.weir.io/container.bad fails"
else
	ok 0 "CreateContainer 'bad' with a bad egress.weir.io/container.bad fails"
fi
want="weir: container bad in pod weir-test/q: $(policy_msg "egress.weir.io=allow any tcp/99999" | sed 's|^egress.weir.io:|egress.weir.io/container.bad:|')"
check "the CRI error names the key the user wrote: $want" -- grep -qF "$want" "$WORK/bad2"
diag "$(cat "$WORK/bad2")"
if cri run "$podO" bad3 -a "policy-mode.weir.io=strict" >/dev/null 2>"$WORK/bad3"; then
	ok 1 "a bad CRI container annotation (policy-mode.weir.io=strict) fails CreateContainer"
else
	grep -q "weir: container bad3 in pod weir-test/ovr: policy-mode.weir.io" "$WORK/bad3"
	ok $? "a bad CRI container annotation (policy-mode.weir.io=strict) fails CreateContainer"
	diag "$(cat "$WORK/bad3")"
fi
is "$(cri ps -a | jq '[.[] | select(.metadata.name == "bad" or .metadata.name == "bad3")] | length') $(ls "$STATE/containers" | wc -l) $(ls "$BPFFS/weir/endpoints" | wc -l)" \
	"0 $nrec $neps" "refused containers left nothing: no container, record or endpoint"
cri rmp "$podQ" >/dev/null

# --- weir-nri restart under traffic, Synchronize -----------------------------------------------
podR=$(cri runp restart -l weir-test=nri -a "egress.weir.io=allow $P/32 udp/5000") &&
	cR=$(cri run "$podR" app) || bail "cannot run pod restart"
R=$(cri ip "$podR")
podG=$(cri runp gone -l weir-test=nri -a "egress.weir.io=allow $P/32 tcp/80") &&
	cG=$(cri run "$podG" app) || bail "cannot run pod gone"
epG=$(rec_field "$cG" endpoint)
check "pods restart and gone are attached" -- bash -c "[ '$(rec_field "$cR" state)' = running ] && [ -d '$BPFFS/weir/endpoints/$epG' ]"
# Every 5 ms: one datagram (33 bytes) to the allowed udp/5000, one (34 bytes) to the denied
# udp/5001. "A" = allowed datagram sent, "D" = denied one refused, "LEAK" = denied one sent.
LOOPS=300
cri exec --exec-timeout 120 "$cR" -- sh -c "i=0; while [ \$i -lt $LOOPS ]; do
	wtool udp-send $P 5000 1 33 >/dev/null 2>&1 && echo A || echo A-FAILED
	if wtool udp-send $P 5001 1 34 >/dev/null 2>&1; then echo LEAK; else echo D; fi
	i=\$((i + 1)); usleep 5000; done" >"$WORK/traffic" 2>&1 &
traffic=$!
sleep 0.5
nri_stop
ok $? "weir-nri exits 0 on SIGTERM while traffic runs"
check "enforcement stays: restart's record running, its links pinned" -- \
	bash -c "[ '$(rec_field "$cR" state)' = running ] && [ -n \"\$(ls '$BPFFS/weir/endpoints/$(rec_field "$cR" endpoint)')\" ]"
# While weir-nri is away: containerd does not call it. A pod started now runs unenforced
# (documented), and a container that stops keeps its endpoint until the next Synchronize.
podD=$(cri runp adopt -l weir-test=nri -a "egress.weir.io=allow $P/32 tcp/80") &&
	cD=$(cri run "$podD" app) || bail "cannot run pod adopt"
is "$(cw "$cD" connect "$P" 81) $(test -e "$STATE/containers/$cD.json" && echo record || echo no-record)" "ok no-record" \
	"documented: a pod started while weir-nri is down runs unenforced (no record, tcp/81 reached)"
cri stop "$cG" >/dev/null
is "$(rec_field "$cG" state)" running "a container stopped while weir-nri is down keeps its record running"
sleep 0.3
if nri_start 2>"$WORK/err"; then ok 0 "weir-nri restarted and registered"; else
	ok 1 "weir-nri restarted and registered"
	diag_file "$WORK/err"
fi
alive_at_reconnect=$(kill -0 "$traffic" 2>/dev/null && echo yes || echo no)
is "$alive_at_reconnect" yes "the traffic loop was still running when weir-nri reconnected"
wait "$traffic"
is "$(grep -c '^A$' "$WORK/traffic") $(grep -c '^D$' "$WORK/traffic") $(grep -c LEAK "$WORK/traffic")" "$LOOPS $LOOPS 0" \
	"during the restart: $LOOPS allowed datagrams sent, $LOOPS denied ones refused, 0 leaked"
is "$(sink_count 5000 33 "$R") $(sink_count 5001 34 "$R")" "$LOOPS 0" \
	"the peer received all $LOOPS allowed datagrams and none of the denied ones"
check "Synchronize attached the pod started while weir-nri was down" -- \
	wait_for 5 bash -c "jq -e '.state == \"running\" and .source == \"nri\" and .pod_name == \"adopt\"' '$STATE/containers/$cD.json'"
is "$(cw "$cD" connect "$P" 81) $(cw "$cD" connect "$P" 80)" "EPERM ok" "... and its policy is now enforced"
is "$(rec_field "$cG" state) $(test -e "$BPFFS/weir/endpoints/$epG" && echo pinned || echo unpinned)" "stopped unpinned" \
	"Synchronize detached the endpoint of the container that stopped meanwhile"
check "weir-nri logged the synchronisation" -- grep -q "synchronize: detached container $cG" "$NRI_LOG"

# --- containerd restart --------------------------------------------------------------------------
mark=$(cri_log_mark)
pid_before=$NRI_PID
cri_restart 2>"$WORK/err" || { diag_file "$WORK/err"; bail "containerd restart failed"; }
if cri_wait_nri_plugin 10-weir 20 "$mark" 2>"$WORK/err"; then
	ok 0 "containerd restarted: weir-nri reconnected (containerd logged plugin 10-weir connected)"
else
	ok 1 "containerd restarted: weir-nri reconnected"
	diag_file "$WORK/err"
	tail -n 20 "$NRI_LOG" | sed 's/^/# weir-nri: /'
fi
is "$(kill -0 "$pid_before" 2>/dev/null && echo alive)" alive "the same weir-nri process carried on"
is "$(cw "$cR" udp-send "$P" 5001 1 35)" EPERM "existing pods stay enforced across the containerd restart"
podE=$(cri runp after -l weir-test=nri -a "egress.weir.io=allow $P/32 tcp/80") || bail "cannot run pod after"
read -r cE codeE outE < <(run_once "$podE" first wtool connect "$P" 81) || true
is "$codeE $outE" "3 EPERM" "a new pod after the restart is enforced from its first instruction"
is "$(rec_field "$cE" source) $(rec_field "$cE" pod_name)" "nri after" "... by weir-nri"

# --- the end: removing every pod leaves nothing -----------------------------------------------
ids=$(ls "$STATE/containers" | sed 's/\.json$//')
cri --timeout 60 rm-all >/dev/null 2>"$WORK/err"
ok $? "every pod stopped and removed"
is "$(jq -s '[.[] | select(.state != "stopped")] | length' "$STATE"/containers/*.json) $(ls "$BPFFS/weir/endpoints" | grep -c .)" \
	"0 0" "every record stopped, no endpoint pinned"
left=0
for id in $ids; do
	cg=$(rec_field "$id" cgroup_id)
	[ -n "$cg" ] && [ "$(links_on_cgroup "$cg")" != 0 ] && left=$((left + 1))
done
is "$left" 0 "no bpf link left on any of the test's cgroups"
nri_stop
ok $? "weir-nri stops cleanly"
check "weir-nri logged no error" -- bash -c "! grep -E 'error|crash|abort' '$NRI_LOG'"
if [ "$failed" != 0 ]; then
	diag "weir-nri log: $NRI_LOG (last lines)"
	tail -n 30 "$NRI_LOG" | sed 's/^/#   /'
	cp "$NRI_LOG" "$WORK/../weir-nri-e2e.log" 2>/dev/null || true
fi
[ "$n" = 55 ] || diag "ran $n tests, planned 55"
[ "$failed" = 0 ]
