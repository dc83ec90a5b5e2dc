#!/bin/bash
# weir-nri end to end (TAP, run with prove): a real containerd 1.7 with CRI and NRI, real pods
# on a CNI bridge, real traffic between pods (wtool, copied into the test image), and
# .output/bin/weir-nri connected to containerd's NRI socket. Shows:
#   - weir-nri loads the datapath when it starts, not inside the first StartContainer;
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
#   - containerd restarting: weir-nri reconnects and enforces the next pod;
#   - restart under fire: a container hammers a denied destination (UDP and TCP connects,
#     counted at receivers in a network namespace of the test's) and sends allowed traffic
#     while weir-nri is SIGKILLed and restarted, containerd restarts, and weir gc runs in a
#     loop: nothing reaches the denied receiver, allowed traffic resumes after each step, the
#     endpoint is intact and enforces at the end, and nothing leaks once the pod is removed;
#     the same hammer from a pod without policy does reach the denied receiver (the control).
# Runs its own containerd (folder, sockets, bridge, subnet, cgroup root) and its own weir
# state and bpffs folder (weir-nri -c), so it disturbs no other test, and removes them all.
# WEIR_NRI_WRAP: a command weir-nri runs under, e.g. to check the capabilities it needs:
#   WEIR_NRI_WRAP="setpriv --bounding-set -all,+bpf,+net_admin,+perfmon --" prove nri.t
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T=/run/weir-test/nri
BPFFS=/sys/fs/bpf/weir-test-nri
export WEIR_CRI_DIR=$T/containerd
export WEIR_NRI_SOCK=$T/nri/nri.sock
export WEIR_CRI_BRIDGE=weirnri0
export WEIR_CRI_SUBNET4=10.89.79.0/24
export WEIR_CRI_SUBNET6=
export WEIR_CRI_CGROUP_ROOT=/weir-test-nri
export WEIR_CRI_IMAGE=localhost/weir-test/busybox-wtool:1
SUITE_TOOLS=wtool
METRICS_PORT=19464
NRI_ARGS=(--metrics-listen "127.0.0.1:$METRICS_PORT" --flow-log)
# shellcheck source=tests/e2e/cri/suite.sh
. "$HERE/suite.sh"
suite_init weir weir-nri wtool
diag "$(containerd --version)"

# before cri_stop: it keeps the bridge busy
suite_cleanup_extra() { [ -z "${RX:-}" ] || rx_cleanup; }

rec() { jq -c . "$STATE/containers/$1.json" 2>/dev/null; }
stat_of() { weir stats "$1" --json 2>/dev/null; }
delta() { # delta JSON0 JSON1 PATH
	echo $(($(jq "$3" <<<"$2") - $(jq "$3" <<<"$1")))
}
rec_state_is() { [ "$(rec_field "$1" state)" = "$2" ]; }

# Entries of a folder (0 when it does not exist).
entries() { find "$1" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

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

PLAN=91
echo "1..$PLAN"

cri_start 2>"$WORK/err" || { diag_file "$WORK/err"; bail "containerd did not start"; }
if nri_start 2>"$WORK/err"; then
	ok 0 "weir-nri registers with containerd (plugin 10-weir connected)"
else
	ok 1 "weir-nri registers with containerd"
	diag_file "$WORK/err"
	bail "weir-nri did not connect"
fi
check "weir-nri loaded and pinned the datapath at startup, before any container started" -- \
	bash -c "[ -e '$BPFFS/weir/progs/weir_egress' ] && grep -q 'node datapath ready' '$NRI_LOG'"

# --- the peer: servers on tcp/80-82, udp sinks on 5000 and 5001 -----------------------------
podP=$(cri runp peer -l weir-test=nri) || bail "cannot run the peer pod"
# shellcheck disable=SC2016 # the container's shell expands it
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
read -r _ codeO outO < <(run_once "$podA" allow-first wtool connect "$P" 80) || true
is "$codeO $outO" "0 ok" "first instruction: connect to the allowed $P:80 succeeds"

cA=$(cri run "$podA" app) || bail "cannot run container app in pod first"
A=$(cri ip "$podA")
check "app: running record for the container, endpoint pinned under $BPFFS/weir/endpoints" -- \
	bash -c "jq -e '.state == \"running\"' '$STATE/containers/$cA.json' && [ -d '$BPFFS/weir/endpoints/$(rec_field "$cA" endpoint)' ]"
cgA=$(rec_field "$cA" cgroup)
cgidA=$(rec_field "$cA" cgroup_id)
is "$cgA" "$(cri_cgroup2_mount)$WEIR_CRI_CGROUP_ROOT/pod-$(cri inspectp "$podA" | jq -r .status.metadata.uid)/$cA" \
	"attached to the container's own cgroup v2 ($(cri_cgroup2_mount)/...)"
npinned=$(entries "$BPFFS/weir/endpoints/$(rec_field "$cA" endpoint)")
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
is "$(rec_field "$cA" state) $(entries "$BPFFS/weir/endpoints")" "stopped 0" \
	"RemoveContainer + RemovePodSandbox: still stopped, no endpoint pinned"

# --- 22-28: container.<name> beats /pod beats plain --------------------------------------------
podO=$(cri runp ovr -l weir-test=nri \
	-a "egress.weir.io=allow $P/32 tcp/81" \
	-a "egress.weir.io/pod=allow $P/32 tcp/80" \
	-a "egress.weir.io/container.c2=allow $P/32 tcp/82") || bail "cannot run pod ovr"
{ c1=$(cri run "$podO" c1) && c2=$(cri run "$podO" c2); } || bail "cannot run containers in pod ovr"
is "$(cw "$c1" connect "$P" 80) $(cw "$c1" connect "$P" 81) $(cw "$c1" connect "$P" 82)" "ok EPERM EPERM" \
	"c1: egress.weir.io/pod (tcp/80) beats egress.weir.io (tcp/81)"
is "$(cw "$c2" connect "$P" 82) $(cw "$c2" connect "$P" 80) $(cw "$c2" connect "$P" 81)" "ok EPERM EPERM" \
	"c2: egress.weir.io/container.c2 (tcp/82) beats egress.weir.io/pod"
is "$(jq -r '.annotations["egress.weir.io"]' "$STATE/containers/$c2.json")" "allow $P/32 tcp/82" \
	"c2's record holds the resolved policy"
{ podPl=$(cri runp plain -l weir-test=nri -a "egress.weir.io=allow $P/32 tcp/81") &&
	c3=$(cri run "$podPl" c3); } || bail "cannot run pod plain"
is "$(cw "$c3" connect "$P" 81) $(cw "$c3" connect "$P" 80)" "ok EPERM" "plain egress.weir.io alone applies"

# --- bad annotations ------------------------------------------------------------------------
nrec=$(entries "$STATE/containers")
neps=$(entries "$BPFFS/weir/endpoints")
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
is "$(cri ps -a | jq '[.[] | select(.metadata.name == "bad" or .metadata.name == "bad3")] | length') $(entries "$STATE/containers") $(entries "$BPFFS/weir/endpoints")" \
	"0 $nrec $neps" "refused containers left nothing: no container, record or endpoint"
cri rmp "$podQ" >/dev/null

# --- weir-nri restart under traffic, Synchronize -----------------------------------------------
{ podR=$(cri runp restart -l weir-test=nri -a "egress.weir.io=allow $P/32 udp/5000") &&
	cR=$(cri run "$podR" app); } || bail "cannot run pod restart"
R=$(cri ip "$podR")
{ podG=$(cri runp gone -l weir-test=nri -a "egress.weir.io=allow $P/32 tcp/80") &&
	cG=$(cri run "$podG" app); } || bail "cannot run pod gone"
epG=$(rec_field "$cG" endpoint)
check "pods restart and gone are attached" -- bash -c "[ '$(rec_field "$cR" state)' = running ] && [ -d '$BPFFS/weir/endpoints/$epG' ]"
# Every 5 ms: one datagram (33 bytes) to the allowed udp/5000, one (34 bytes) to the denied
# udp/5001. "A" = allowed datagram sent, "D" = denied one refused, "LEAK" = denied one sent.
# The loop runs until the test tells it to stop (a file in the container), after weir-nri is
# back, however long its restart takes (a busy machine, valgrind); at most 20,000 rounds.
cri exec --exec-timeout 300 "$cR" -- sh -c "i=0; while [ \$i -lt 20000 ] && [ ! -e /tmp/traffic-stop ]; do
	wtool udp-send $P 5000 1 33 >/dev/null 2>&1 && echo A || echo A-FAILED
	if wtool udp-send $P 5001 1 34 >/dev/null 2>&1; then echo LEAK; else echo D; fi
	i=\$((i + 1)); usleep 5000; done" >"$WORK/traffic" 2>&1 &
traffic=$!
# weir-nri goes away while the traffic runs: once it has started. Its output comes back only
# when the exec ends, so the progress is read at the peer: allowed datagrams received.
traffic_past() { [ "$(sink_count 5000 33 "$R")" -ge "$1" ]; }
wait_for 30 traffic_past 10 || diag "the traffic loop has not started"
nri_stop
ok $? "weir-nri exits 0 on SIGTERM while traffic runs"
check "enforcement stays: restart's record running, its links pinned" -- \
	bash -c "[ '$(rec_field "$cR" state)' = running ] && [ -n \"\$(ls '$BPFFS/weir/endpoints/$(rec_field "$cR" endpoint)')\" ]"
# While weir-nri is away: containerd does not call it. A pod started now runs unenforced
# (documented), and a container that stops keeps its endpoint until the next Synchronize.
{ podD=$(cri runp adopt -l weir-test=nri -a "egress.weir.io=allow $P/32 tcp/80") &&
	cD=$(cri run "$podD" app); } || bail "cannot run pod adopt"
is "$(cw "$cD" connect "$P" 81) $(test -e "$STATE/containers/$cD.json" && echo record || echo no-record)" "ok no-record" \
	"documented: a pod started while weir-nri is down runs unenforced (no record, tcp/81 reached)"
cri stop "$cG" >/dev/null
is "$(rec_field "$cG" state)" running "a container stopped while weir-nri is down keeps its record running"
# and traffic goes on while it is down (10 more rounds of the loop)
down_at=$(sink_count 5000 33 "$R")
wait_for 30 traffic_past $((down_at + 10)) || diag "no traffic while weir-nri was down"
if nri_start 2>"$WORK/err"; then ok 0 "weir-nri restarted and registered"; else
	ok 1 "weir-nri restarted and registered"
	diag_file "$WORK/err"
fi
alive_at_reconnect=$(kill -0 "$traffic" 2>/dev/null && echo yes || echo no)
is "$alive_at_reconnect" yes "the traffic loop was still running when weir-nri reconnected"
# ten more rounds with weir-nri back, then the loop stops
back_at=$(sink_count 5000 33 "$R")
wait_for 30 traffic_past $((back_at + 10)) || diag "no traffic after weir-nri came back"
cri exec "$cR" -- touch /tmp/traffic-stop >/dev/null 2>&1 || diag "cannot stop the traffic loop"
wait "$traffic"
rounds=$(grep -c '^A$' "$WORK/traffic" || true)
check "the traffic loop ran through the restart ($rounds rounds)" -- test "$rounds" -ge 20
is "$(grep -c '^D$' "$WORK/traffic") $(grep -c LEAK "$WORK/traffic") $(grep -c A-FAILED "$WORK/traffic")" "$rounds 0 0" \
	"during the restart: $rounds allowed datagrams sent, as many denied ones refused, 0 leaked"
is "$(sink_count 5000 33 "$R") $(sink_count 5001 34 "$R")" "$rounds 0" \
	"the peer received all $rounds allowed datagrams and none of the denied ones"
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
if cri_wait_nri_plugin 10-weir "${WEIR_NRI_CONNECT_TIMEOUT:-20}" "$mark" 2>"$WORK/err"; then
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

# --- restart under fire ------------------------------------------------------------------------
# A pod's container hammers a denied destination without pause (every ms a datagram and a TCP
# connect attempt: wtool hammer), and sends allowed traffic, while in turn weir-nri is killed
# with SIGKILL and restarted, containerd restarts (the pod runs on in its shim), and weir gc
# runs in a loop. The receivers sit in a network namespace of this test's, on the pods' bridge:
# D (denied) and A (allowed). What reaches D is counted there, by nft counters on every packet
# from the pod (a SYN included) and by the sinks; not from weir's counters. A pod without weir
# annotations runs the same hammer first: its traffic does reach D, so the counts can fail.
fire_t0=$(date +%s%N)
RX=weir-fire-$$
RXV=wfire$$
A=${WEIR_CRI_SUBNET4%.*}.250
D=${WEIR_CRI_SUBNET4%.*}.251
rx() { ip netns exec "$RX" "$@"; }
RX_PIDS=()
rx_cleanup() {
	local p
	for p in "${RX_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${RX_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	RX_PIDS=()
	ip netns del "$RX" 2>/dev/null
	ip link del "$RXV" 2>/dev/null
	return 0
}
rx_setup() {
	ip netns add "$RX" &&
		ip link add "$RXV" type veth peer name eth0 netns "$RX" &&
		ip link set "$RXV" master "$WEIR_CRI_BRIDGE" up &&
		rx ip link set lo up && rx ip addr add "$A/24" dev eth0 &&
		rx ip addr add "$D/24" dev eth0 && rx ip link set eth0 up || return 1
	local s a
	for s in "udp-sink 7000 $A" "tcp-server 7001 $A" "udp-sink 7000 $D" "tcp-server 7001 $D"; do
		read -r -a a <<<"$s"
		# ip netns exec execs wtool: $! is the receiver itself (a function would fork a
		# shell in between, and killing that would leave the receiver running)
		WTOOL_LIFETIME=600 ip netns exec "$RX" "$OUT/bin/wtool" "${a[@]}" \
			>"$WORK/rx-${a[0]}-${a[2]}" 2>&1 </dev/null &
		RX_PIDS+=($!)
	done
}
rx_listening() { [ "$(rx ss -Hlntu 2>/dev/null | grep -cE "($A|$D):700[01] ")" = 4 ]; }
# rx_rules NAME SRC: counters of what SRC sends D: every packet (NAME_d), and what only the
# sender starts, datagrams (NAME_u) and connection requests (SYN without ACK, NAME_s)
rx_rules() {
	rx nft -f - <<NFT
add table ip fire
add chain ip fire pre { type filter hook prerouting priority -300; policy accept; }
add counter ip fire $1_d
add counter ip fire $1_u
add counter ip fire $1_s
add rule ip fire pre ip saddr $2 ip daddr $D counter name $1_d
add rule ip fire pre ip saddr $2 ip daddr $D udp dport 7000 counter name $1_u
add rule ip fire pre ip saddr $2 ip daddr $D tcp flags & (syn | ack) == syn counter name $1_s
NFT
}
rx_count() { rx nft -j list counter ip fire "$1" | jq '.nftables[] | select(.counter) | .counter.packets'; }
# lines of receiver file KIND-PORT-ADDR from SRC
rx_lines() { grep -c " from $3\$" "$WORK/rx-$1-$2" 2>/dev/null; }
# allowed traffic arrives: $1 more datagrams at A from the pod than at the last mark
allowed_past() { [ "$(rx_lines udp-sink "$A" "$F")" -ge "$1" ]; }
resumes() { # resumes DESCRIPTION: 20 more allowed datagrams and 2 more connections arrive
	local u t
	u=$(rx_lines udp-sink "$A" "$F")
	t=$(rx_lines tcp-server "$A" "$F")
	if wait_for 20 allowed_past $((u + 20)) && wait_for 10 bash -c \
		"[ \$(grep -c ' from $F\$' '$WORK/rx-tcp-server-$A') -ge $((t + 2)) ]"; then
		ok 0 "$1: allowed traffic arrives at $A (UDP and TCP)"
	else
		ok 1 "$1: allowed traffic arrives at $A (UDP and TCP)"
		diag "udp $u -> $(rx_lines udp-sink "$A" "$F"), tcp $t -> $(rx_lines tcp-server "$A" "$F")"
	fi
}
kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; } # kv "a=1 b=2" b -> 2
ep_intact() { # why the endpoint of container $1 is not intact (empty when it is)
	local ep cgid pins links owner
	[ "$(rec_field "$1" state)" = running ] || { echo "state $(rec_field "$1" state)"; return; }
	ep=$(rec_field "$1" endpoint)
	cgid=$(rec_field "$1" cgroup_id)
	owner=$(bpftool -j map dump pinned "$BPFFS/weir/maps/weir_cgroups" |
		jq -r --argjson k "$cgid" '.[] | select(.formatted.key == $k) | .formatted.value')
	[ "$owner" = "$ep" ] || { echo "weir_cgroups maps $cgid to '${owner}', not $ep"; return; }
	pins=$(entries "$BPFFS/weir/endpoints/$ep")
	links=$(links_on_cgroup "$cgid")
	{ [ "$pins" -ge 4 ] && [ "$pins" = "$links" ]; } || { echo "$pins pins, $links links"; return; }
	[ -e "$STATE/ids/$ep" ] && [ -e "$STATE/keys/$ep" ] || echo "ids or keys file of $ep missing"
}
weir_nri_procs() { # weir-nri processes of this test's config
	local p c=0
	for p in /proc/[0-9]*; do
		{ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q "$OUT/bin/weir-nri .*-c $CONF " &&
			c=$((c + 1))
	done
	echo "$c"
}

rx_setup 2>"$WORK/err" || { diag_file "$WORK/err"; bail "cannot set up the receiver namespace $RX"; }
check "receivers in netns $RX on the pods' bridge: UDP and TCP on $A (allowed) and $D (denied)" -- \
	wait_for 10 rx_listening
{ podC=$(cri runp control -l weir-test=nri) && cC=$(cri run "$podC" app); } ||
	bail "cannot run pod control"
C=$(cri ip "$podC")
rx_rules ctl "$C" 2>"$WORK/err" || { diag_file "$WORK/err"; bail "nft in $RX failed"; }
ctl=$(cri exec --exec-timeout 20 "$cC" -- wtool hammer "$D" "$A" 7000 7001 1 2>/dev/null | tail -n 1)
diag "control hammer, unenforced: $ctl"
cd_pkts=$(rx_count ctl_d)
cd_udp=$(rx_lines udp-sink "$D" "$C")
[ "$(kv "$ctl" denied_udp_sent)" -gt 0 ] && [ "$(kv "$ctl" denied_tcp_leak)" -gt 0 ] &&
	[ "${cd_pkts:-0}" -gt 0 ] && [ "${cd_udp:-0}" -gt 0 ]
ok $? "control: the same hammer from a pod without policy reaches $D ($cd_pkts packets counted at the receiver, $cd_udp datagrams in its sink)"

podH=$(cri runp fire -l weir-test=nri -a "egress.weir.io=allow $WEIR_CRI_SUBNET4; deny $D/32") ||
	bail "cannot run pod fire"
F=$(cri ip "$podH")
rx_rules fire "$F" 2>"$WORK/err" || { diag_file "$WORK/err"; bail "nft in $RX failed"; }
cH=$(cri run "$podH" hammer -- wtool hammer "$D" "$A" 7000 7001 600 /tmp/hammer) ||
	bail "cannot run the hammer container"
epH=$(rec_field "$cH" endpoint)
is "$(ep_intact "$cH")" "" "the hammer's container is attached (endpoint $epH): record, weir_cgroups, pins, links"
resumes "the hammer runs"

# 1. weir-nri: SIGKILL, then a new one
kill -KILL "$NRI_PID" 2>/dev/null
{ wait "$NRI_PID"; } 2>/dev/null # no job notice in the TAP stream
is "$?" 137 "weir-nri killed with SIGKILL while the hammer runs"
NRI_PID=
resumes "weir-nri dead"
if nri_start 2>"$WORK/err"; then ok 0 "a new weir-nri registers"; else
	ok 1 "a new weir-nri registers"
	diag_file "$WORK/err"
fi
resumes "after weir-nri's restart"

# 1b. weir-nri SIGKILLed inside an attach: a second pod's container is started, and weir-nri is
# killed as soon as that container's record says attaching (read with a builtin: no fork).
# containerd goes on without the plugin; the next weir-nri's Synchronize must finish the attach.
kill_in_attach() { # kill_in_attach CONTAINER-ID: 0 when the kill landed inside the attach
	local rec=$STATE/containers/$1.json r='' st
	cri start "$1" >/dev/null 2>&1 &
	st=$!
	while kill -0 "$st" 2>/dev/null; do
		[[ -e $rec ]] && IFS= read -r -d '' r <"$rec"
		if [[ $r == *'"attaching"'* ]]; then
			kill -KILL "$NRI_PID" 2>/dev/null
			{ wait "$NRI_PID"; } 2>/dev/null
			NRI_PID=
			break
		fi
	done
	wait "$st"
	[ -z "$NRI_PID" ] && [ "$(rec_field "$1" state)" = attaching ]
}
podK=$(cri runp killed -l weir-test=nri -a "egress.weir.io=allow $WEIR_CRI_SUBNET4; deny $D/32") ||
	bail "cannot run pod killed"
K=$(cri ip "$podK")
rx_rules kil "$K" 2>"$WORK/err" || { diag_file "$WORK/err"; bail "nft in $RX failed"; }
landed=no
for try in $(seq 10); do # the kill misses when the attach ends before the poll sees it
	cK=$(cri create "$podK" "hammer$try" -- wtool hammer "$D" "$A" 7000 7001 600 /tmp/hammer) ||
		bail "cannot create a container in pod killed"
	if kill_in_attach "$cK"; then
		landed=yes
		break
	fi
	[ -n "$NRI_PID" ] || nri_start 2>/dev/null || bail "weir-nri did not come back"
	cri stop "$cK" >/dev/null 2>&1
	cri rm "$cK" >/dev/null 2>&1
done
is "$landed" yes "weir-nri SIGKILLed inside StartContainer's attach (record left attaching, try $try)"
diag "container $cK after the kill: $(cri inspect "$cK" | jq -r .status.state), record $(rec_field "$cK" state)"
if nri_start 2>"$WORK/err"; then ok 0 "a new weir-nri registers"; else
	ok 1 "a new weir-nri registers"
	diag_file "$WORK/err"
fi
intact_now() { [ -z "$(ep_intact "$1")" ]; }
wait_for 5 intact_now "$cK"
is "$(ep_intact "$cK")" "" "its Synchronize finishes the interrupted attach: record running, endpoint intact"
is "$(cw "$cK" udp-send "$D" 7000 1 10) $(cw "$cK" connect "$D" 7001) $(cw "$cK" connect "$A" 7001)" "EPERM EPERM ok" \
	"and the container enforces its policy: $D refused (UDP, TCP), $A reached"
# From here on the container is enforced. What it started during the gap may still bring
# packets from its kernel, without a socket weir could filter (the RST or TIME_WAIT ACK that
# answers the receiver's late segments): only datagrams and connection requests count.
kil_mark="$(rx_count kil_u) $(rx_count kil_s) $(rx_count kil_d)"

# 2. containerd
hpid=$(cri pid "$cH")
mark=$(cri_log_mark)
cri_restart 2>"$WORK/err" || { diag_file "$WORK/err"; bail "containerd restart failed"; }
cri_wait_nri_plugin 10-weir "${WEIR_NRI_CONNECT_TIMEOUT:-20}" "$mark" 2>"$WORK/err"
ok $? "containerd restarted under fire, weir-nri reconnected"
is "$(cri pid "$cH")" "$hpid" "the hammer ran on through the containerd restart (same pid $hpid)"
resumes "after containerd's restart"

# 3. weir gc in a loop
gc_failed=0 gc_touched=0
for i in $(seq 10); do
	out=$(weir gc --json 2>>"$WORK/gc.err") || gc_failed=$((gc_failed + 1))
	gc_touched=$((gc_touched + $(jq '.detached + .repaired' <<<"$out" 2>/dev/null || echo 1)))
done
is "$gc_failed $gc_touched" "0 0" "weir gc 10 times under fire: every run succeeds, none detaches or repairs anything"
[ "$gc_failed $gc_touched" = "0 0" ] || diag_file "$WORK/gc.err"
resumes "after the gc loop"

# what got through, in total
hs=$(cri exec "$cH" -- cat /tmp/hammer 2>/dev/null)
diag "fire hammer: $hs"
is "$(kv "$hs" denied_udp_sent) $(kv "$hs" denied_tcp_leak) $(kv "$hs" denied_udp_other) $(kv "$hs" denied_tcp_other)" \
	"0 0 0 0" "the hammer: every denied datagram and connect refused (EPERM), none sent"
[ "$(kv "$hs" denied_udp_eperm)" -gt 1000 ] && [ "$(kv "$hs" denied_tcp_eperm)" -gt 1000 ] &&
	[ "$(kv "$hs" allowed_tcp_fail)" = 0 ] && [ "$(kv "$hs" allowed_udp_fail)" = 0 ]
ok $? "... of $(kv "$hs" denied_udp_eperm) datagrams and $(kv "$hs" denied_tcp_eperm) connects; all allowed traffic was sent"
is "$(rx_count fire_d) $(rx_lines udp-sink "$D" "$F") $(rx_lines tcp-server "$D" "$F")" "0 0 0" \
	"at the receiver: 0 packets of any kind from the pod reached $D (nft), 0 datagrams, 0 connections"
is "$(ep_intact "$cH") $(rec_field "$cH" endpoint)" " $epH" "the record and endpoint $epH are intact, the same as before"
read -r ku ks kd <<<"$kil_mark"
is "$(($(rx_count kil_u) - ku)) $(($(rx_count kil_s) - ks)) $(ep_intact "$cK")" "0 0 " \
	"the container whose attach was interrupted: 0 datagrams and 0 SYNs reached $D since, still intact"
diag "from it since: $(($(rx_count kil_d) - kd)) packets of any kind (answers to what the gap let through)"
is "$(cw "$cH" udp-send "$D" 7000 1 10) $(cw "$cH" connect "$D" 7001) $(cw "$cH" connect "$A" 7001)" "EPERM EPERM ok" \
	"and enforce: $D refused (UDP, TCP), $A reached"
cgH=$(rec_field "$cH" cgroup_id)
epK=$(rec_field "$cK" endpoint)
cgK=$(rec_field "$cK" cgroup_id)
rc=0
for p in "$podH" "$podC" "$podK"; do
	cri stopp "$p" >/dev/null && cri rmp "$p" >/dev/null || rc=1
done
ok $rc "the fire, killed and control pods stop and are removed"
check "their records are stopped" -- wait_for 5 bash -c \
	"jq -e '.state == \"stopped\"' '$STATE/containers/$cH.json' '$STATE/containers/$cK.json'"
gc=$(weir gc --json)
leaked_ep() { # leaked_ep ENDPOINT CGROUP-ID
	[ -e "$BPFFS/weir/endpoints/$1" ] && echo "pins of $1"
	[ -e "$STATE/ids/$1" ] && echo "id file $1"
	[ -e "$STATE/keys/$1" ] && echo "keys file $1"
	[ "$(links_on_cgroup "$2")" != 0 ] && echo "links on cgroup $2"
	bpftool -j map dump pinned "$BPFFS/weir/maps/weir_policy" | jq -e --argjson e "$1" \
		'any(.[]; .formatted.key.ep_id == $e)' >/dev/null && echo "policy entries of $1"
	return 0
}
leak=$( (
	leaked_ep "$epH" "$cgH"
	leaked_ep "$epK" "$cgK"
	[ "$(jq '.orphans + .stale_entries' <<<"$gc")" = 0 ] || echo "gc cleaned $gc"
	[ "$(weir_nri_procs)" = 1 ] || echo "$(weir_nri_procs) weir-nri processes"
) | paste -sd, -)
is "$leak" "" "nothing leaked: no pins, id, keys, links or policy entries of $epH or $epK; gc finds nothing; one weir-nri"
rx_pids=("${RX_PIDS[@]}")
rx_cleanup
left=0
for p in "${rx_pids[@]}"; do kill -0 "$p" 2>/dev/null && left=$((left + 1)); done
is "$left $(ip netns list | grep -c "^$RX\b")" "0 0" "the receivers and their namespace are gone"
diag "restart under fire: $((($(date +%s%N) - fire_t0) / 1000000)) ms"

# --- the end: removing every pod leaves nothing -----------------------------------------------
ids=$(find "$STATE/containers" -mindepth 1 -maxdepth 1 -name '*.json' -printf '%f\n' | sed 's/\.json$//')
cri --timeout 60 rm-all >/dev/null 2>"$WORK/err"
ok $? "every pod stopped and removed"
is "$(jq -s '[.[] | select(.state != "stopped")] | length' "$STATE"/containers/*.json) $(entries "$BPFFS/weir/endpoints")" \
	"0 0" "every record stopped, no endpoint pinned"
left=0
for id in $ids; do
	cg=$(rec_field "$id" cgroup_id)
	[ -n "$cg" ] && [ "$(links_on_cgroup "$cg")" != 0 ] && left=$((left + 1))
done
is "$left" 0 "no bpf link left on any of the test's cgroups"
nri_stop
ok $? "weir-nri stops cleanly"
check "weir-nri logged no error" -- bash -c "! grep -E 'weir-nri: error: |crash|abort' '$NRI_LOG'"
if [ "$failed" != 0 ]; then
	diag "weir-nri log: $NRI_LOG (last lines)"
	tail -n 30 "$NRI_LOG" | sed 's/^/#   /'
	cp "$NRI_LOG" "$WORK/../weir-nri-e2e.log" 2>/dev/null || true
fi
tap_done
