#!/bin/bash
# weir end to end with runc: real containers (busybox-static + wtool), weir-hook at
# createRuntime and poststop, a test "CNI" hook giving each container a veth into a peer
# network namespace created by this test. All traffic stays between those namespaces.
#
#   prove -v tests/e2e/runc.t        (root; `make` first)
#
# Peer targets (on the peer netns's lo): A = 10.211.0.1 / fd78:a::1, B = 10.212.0.1 /
# fd78:b::1, and 10.220.I.1 / fd78:20:I::1 (I = 0..7) for the parallel test.
# Servers in the peer: tcp 8080 8000 8005 8010, udp sink 5000 5001, udp echo 5353 (on A).

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/runc.sh
. "$E2E_LIB/runc.sh"
# shellcheck source=lib/checks.sh
. "$E2E_LIB/checks.sh"

e2e_init
require_weir
runc_init

peer_create "$E2E_PREFIX"
for port in 8080 8000 8005 8010; do
	peer_server "$E2E_TMP/peer-tcp$port.log" tcp-server "$port"
done
peer_server "$E2E_TMP/peer-udp5000.log" udp-sink 5000
peer_server "$E2E_TMP/peer-udp5001.log" udp-sink 5001
# Echo servers bound to A (the peer is multi-homed: a wildcard-bound server would answer
# from its veth address, which is no reply to a flow to A).
peer_server "$E2E_TMP/peer-udp5353-4.log" udp-echo-server 5353 "$PEER_A4"
peer_server "$E2E_TMP/peer-udp5353-6.log" udp-echo-server 5353 "$PEER_A6"

A4=$PEER_A4 B4=$PEER_B4 A6=$PEER_A6 B6=$PEER_B6
EPERM_MAX_MS=200 # "at once": a dropped SYN would take the full connect timeout (2000 ms)

# cw NAME WTOOL-ARGS...: wtool in container NAME (see wrun for W_OUT/W_RC/W_MS).
cw() { runc_wtool "$@"; } # wtool in a container (lib/runc.sh)
pw() { wrun peer_exec "$WTOOL" "$@"; }
checks_setup cw "$A4" "$B4" "$A6" "$B6"

start() { runc_start_pass "$@"; } # NAME IDX BUNDLE-OPTIONS... -- CMD (lib/runc.sh)

# endpoint_of ID: the endpoint number in weir's record.
endpoint_of() {
	weir_record "$1" | jq -r '.endpoint // empty'
}

# check_running NAME MODE: record, endpoint folder, programs on the cgroup.
check_running() {
	check_record_running "$1" "$(runc_id "$1")" "$2" "$(runc_cgroup "$1")"
}

# stop_and_check NAME: delete (poststop), then nothing of it may remain but a stopped record.
# Sets FINAL_STATS to what weir stats shows afterwards.
stop_and_check() {
	local name=$1 id ep rc=0 extra=()
	id=$(runc_id "$name")
	ep=$(endpoint_of "$id")
	runc_stop "$name" || rc=$?
	if [ "$rc" -eq 0 ] && [ ! -s "$(runc_bundle_dir "$name")/delete.log" ]; then
		pass "$name: runc delete runs weir's poststop hook cleanly"
	else
		fail "$name: runc delete runs weir's poststop hook cleanly" "exit $rc"
		diag_block "runc delete" "$(cat "$(runc_bundle_dir "$name")/delete.log")"
	fi
	if bpftool cgroup tree "$(cgroup2_mount)" 2>/dev/null | grep -q "$E2E_PREFIX-$name\$"; then
		extra+=("bpftool cgroup tree still lists its cgroup")
	fi
	check_record_stopped "$name" "$id" "$ep" "$(runc_cgroup "$name")" "${extra[@]}"
}

# first_run NAME POLICY ADDR: see check_first_instruction.
first_run() {
	local name=$1 idx
	case $name in first4) idx=3 ;; first6) idx=4 ;; *) idx=5 ;; esac
	runc_bundle "$name" "$idx" --egress "$2" -- /bin/wtool connect "$3" 8080 3000
	runc_start "$name" && runc_wait_stopped "$name" 10
	runc_out "$name"
}

# ---------------------------------------------------------------------------------------
diag "1. allow and deny, TCP/UDP/ICMP, IPv4 and IPv6 (egress-only policy)"
start basic 1 --egress "$(basic_policy 5353)" -- /bin/sleep 3600
check_running basic enforce
for fam in 4 6; do
	check_basic basic $fam 5353 --bulk --closed-udp-port 5001
done
stop_and_check basic

# ---------------------------------------------------------------------------------------
diag "2. counters equal exactly what was sent"
start cnt 2 --egress "allow $A4 udp/5000,icmp; allow $A6 udp/5000,icmp" -- /bin/sleep 3600
id=$(runc_id cnt)
wait_quiet "$id"
check_stats_shape cnt "$id"
check_udp_counters cnt "$id"
is "$(jq -r '.ingress.udp.packets' <<<"$SNAP")" 0 "no UDP came back, ingress.udp.packets is 0"
check_icmp_counters cnt "$id"
check_denied_connect_counter cnt "$id"
after_connect=$SNAP
cw cnt udp-send "$B6" 5000 1 10
snap_next "$id"
is "$W_OUT $(snap_delta .egress.denied_connects .egress.udp.packets)" \
	"EPERM 1 0" "a denied sendto() counts 1 in egress.denied_connects, 0 UDP packets"
cw cnt ping "$B4" 1 "$CNT_PSIZE4" 300
snap_next "$id"
is "$(snap_delta .egress.policy_dropped.packets .egress.policy_dropped.bytes .egress.icmp.packets)" \
	"1 $((20 + 8 + CNT_PSIZE4)) 0" "a denied ICMP echo: egress.policy_dropped = 1 packet, $((20 + 8 + CNT_PSIZE4)) bytes; not counted as passed"
is "$(jq -r '.egress.policy_dropped.packets' <<<"$after_connect")" 0 "socket-level denials drop no packet (policy_dropped 0 before the ICMP one)"
is "$(grep -c "^udp $CNT_SIZE4 from $(ctr_addr4 2)\$" "$E2E_TMP/peer-udp5000.log") $(grep -c "^udp $CNT_SIZE6 from $(ctr_addr6 2)\$" "$E2E_TMP/peer-udp5000.log")" \
	"$CNT_N4 $CNT_N6" "the peer received every allowed datagram ($CNT_N4 + $CNT_N6)"

last=$SNAP
stop_and_check cnt
check_final_counters "$last"

# ---------------------------------------------------------------------------------------
diag "3. enforced before the workload's first instruction"
check_first_instruction first_run
for c in first4 first6 firstok; do
	! runc_err $c | grep -qv elapsed_ms || diag_block "$c stderr" "$(runc_err $c)"
	runc_stop $c || diag "runc delete $c: $(cat "$(runc_bundle_dir $c)/delete.log")"
done

# ---------------------------------------------------------------------------------------
diag "4. replies pass in both directions; unsolicited traffic does not"
# Egress allows the peer's server, ingress is default-deny (one rule for an address nobody
# has): replies to the container's connections must still arrive.
start rep 6 --egress "$(rep_policy 5353)" --ingress "allow $CHK_NOBODY" -- /bin/wtool tcp-server 9000
check_reply 4 rep tcp
check_reply 6 rep tcp
check_reply 4 rep udp 5353
check_reply 6 rep udp 5353
check_dropped pw "$(ctr_addr4 6)" 9000 "an unsolicited connection from the peer to the container's server is dropped"
# The container's own addresses are loopback traffic, which its policy does not judge.
for fam in 4 6; do
	own=$(ctr_addr$fam 6)
	cw rep connect "$own" 9000
	is "${W_OUT%% *}" ok "IPv$fam: a connect() to the container's own address ($own) is allowed (loopback)"
	cw rep udp-send "$own" 9999 1 10
	is "${W_OUT%% *}" ok "IPv$fam: a sendto() to its own address is allowed too"
done
stop_and_check rep

# Ingress allows the peer's client on port 9000 only, egress is default-deny: the server's
# replies must still leave.
start ing 7 --ingress "$(ing_policy "$(gw_addr4 7)" "$(gw_addr6 7)")" --egress "allow $CHK_NOBODY" \
	-- /bin/sh -c 'wtool tcp-server 9000 & wtool tcp-server 9001 & wait'
retry 5 grep -q 'listening tcp/9001' "$(runc_bundle_dir ing)/stdout" || diag "servers in ing did not start"
check_served pw "the peer" "$(ctr_addr4 7)" "$(ctr_addr6 7)"
snap_start "$(runc_id ing)"
check_dropped pw "$(ctr_addr4 7)" 9001 "IPv4: a connection to a port outside the ingress policy is dropped"
snap_next "$(runc_id ing)"
cmp_num "$(snap_delta .ingress.policy_dropped.packets)" -ge 1 "... and counted in ingress.policy_dropped"
check_dropped pw "$(ctr_addr6 7)" 9001 "IPv6: a connection to a port outside the ingress policy is dropped"
check_egress_closed ing
stop_and_check ing

# ---------------------------------------------------------------------------------------
diag "4b. a UDP server answers what its ingress let in, whatever egress says"
# Egress names one TCP service nobody runs (issue 10's example); ingress lets the peer's
# client reach udp/5353-5354. Replies leave from sendto() (5353) and from a socket bound to
# the port that connect()s to the client (5354); the servers still get EPERM towards peer B,
# who never sent them anything. udp/5355 is outside the ingress policy: nothing comes in.
gw4=$(gw_addr4 11) gw6=$(gw_addr6 11)
start udps 11 --egress "allow 10.150.0.64/26 tcp/65533" \
	--ingress "allow $gw4 udp/5353-5354; allow $gw6 udp/5353-5354" \
	-- /bin/sh -c "wtool udp-reply-server 5353 sendto $B4 $B6 5000 & wtool udp-reply-server 5354 connect $B4 $B6 5000 & wtool udp-reply-server 5355 sendto & wait"
udps_listening() { runc_out udps | grep -c '^listening udp/'; }
retry 5 count_at_least 3 udps_listening || diag "servers in udps did not start: $(runc_out udps)"
id=$(runc_id udps)
wait_quiet "$id"
snap_start "$id"
for fam in 4 6; do
	pw udp-rr "$(ctr_addr$fam 11)" 5353 2000
	wlike '^ok$' "IPv$fam: the container's UDP server answers with sendto() (ingress allowed the client, egress does not)"
	pw udp-rr "$(ctr_addr$fam 11)" 5354 2000
	wlike '^ok$' "IPv$fam: ... and from a socket it connect()s to the client"
done
snap_next "$id"
is "$(snap_delta .ingress.udp.packets .egress.udp.packets .egress.denied_connects .egress.policy_dropped.packets .ingress.policy_dropped.packets)" \
	"4 4 4 0 0" "counters: 4 datagrams in, 4 replies out, the 4 sends to peer B refused at sendmsg, nothing dropped"
udps_log() { runc_out udps | grep -E '^(reply|also) ' | sed -E 's/^(reply|also) [0-9]+ /\1 /' | sort | uniq -c | sed -E 's/^ +//' | tr '\n' ';'; }
want="2 also to $B4: EPERM;2 also to $B6: EPERM;2 reply to $gw4: ok;2 reply to $gw6: ok;"
is "$(udps_log)" "$want" "the servers' own account: every reply ok, every send to peer B (IPv4 and IPv6) EPERM"
cw udps udp-send "$B4" 5000 1 10
wlike '^EPERM$' "IPv4: a datagram to a peer that never sent to the container is refused"
cw udps udp-send "$B6" 5000 1 10
wlike '^EPERM$' "IPv6: the same"
pw udp-rr "$(ctr_addr4 11)" 5355 1000
wlike '^ETIMEDOUT$' "a datagram to udp/5355 (outside the ingress policy) gets no answer"
snap_next "$id"
is "$(snap_delta .egress.denied_connects .ingress.policy_dropped.packets .egress.udp.packets)" "2 1 0" \
	"counters: 2 more sends refused, the datagram to udp/5355 dropped at ingress, no UDP out"
is "$(udps_log)" "$want" "the server on udp/5355 never saw a datagram"
stop_and_check udps

# Audit mode: a datagram the ingress policy denies passes, but opens no flow, so its reply
# is judged by the egress policy and passes audited too, at sendmsg and as a packet.
start udpa 12 --mode audit --egress "allow $CHK_NOBODY" --ingress "allow $CHK_NOBODY" \
	-- /bin/wtool udp-reply-server 5353 sendto
retry 5 grep -q '^listening udp/' "$(runc_bundle_dir udpa)/stdout" || diag "server in udpa did not start"
id=$(runc_id udpa)
wait_quiet "$id"
snap_start "$id"
for fam in 4 6; do
	pw udp-rr "$(ctr_addr$fam 12)" 5353 2000
	wlike '^ok$' "audit, IPv$fam: the denied request and its reply both pass"
done
snap_next "$id"
is "$(snap_delta .ingress.audit_denied.packets .egress.audit_denied_connects .egress.audit_denied.packets .egress.denied_connects .egress.udp.packets)" \
	"2 2 2 0 2" "audit: 2 requests audited at ingress, 2 replies audited at sendmsg and as packets, none refused"
stop_and_check udpa

# ---------------------------------------------------------------------------------------
diag "5. deny overrides allow; port ranges"
start ovr 8 --egress "$(ovr_policy 10.212.0.0/16 fd78:b::/32 fd78::/16)" -- /bin/sleep 3600
check_override ovr 10.212.0.0/16 fd78:b::/32 fd78::/16
cw ovr connect "$(par_addr4 1)" 8080
wlike '^ok$' "allow 10.0.0.0/8: $(par_addr4 1) reachable"
stop_and_check ovr

start rng 9 --egress "$(range_policy)" -- /bin/sleep 3600
check_ranges rng
cw rng connect "$A4" 5000
wlike '^EPERM$' "a UDP range allows no TCP"
stop_and_check rng

# ---------------------------------------------------------------------------------------
diag "6. audit mode: nothing dropped, would-drops counted"
start aud 10 --mode audit --egress "allow $A4 tcp/8080" -- /bin/sleep 3600
check_running aud audit
id=$(runc_id aud)
wait_quiet "$id"
check_audit_connect aud "$id"
check_audit_udp aud "$id"
is "$(snap_delta .egress.udp.packets .egress.udp.bytes)" \
	"$AUD_N $((AUD_N * (20 + 8 + AUD_SIZE)))" "audit: the same packets count as passed UDP"
aud_received() { grep -c "^udp $AUD_SIZE from $(ctr_addr4 10)\$" "$E2E_TMP/peer-udp5000.log"; }
retry 5 count_at_least "$AUD_N" aud_received || true
is "$(aud_received)" "$AUD_N" "audit: the peer received all $AUD_N datagrams"
check_audit_nothing_dropped aud "$id"
stop_and_check aud

# ---------------------------------------------------------------------------------------
diag "7. bad annotations: the container does not start, weir's message shows, nothing is left"
big=$E2E_TMP/big-annotation
printf 'allow 10.1.2.3 tcp/80;%.0s' $(seq 4700) >"$big" # 22 bytes x 4700: over 100 KB
bad_cases=(
	"${BAD_CASES[@]}"
	"mode|policy-mode.weir.io|enforcing|enforcing"
	"big|egress.weir.io|@big|"
	"utf8|egress.weir.io|allow 10.0.0.1 tcp/80@NONUTF8@|"
	"bw-suffix|kubernetes.io/egress-bandwidth|10Q|10Q"
	"bw-negative|kubernetes.io/ingress-bandwidth|-1M|-1M"
	"bw-zero|kubernetes.io/egress-bandwidth|0|expected a Kubernetes quantity"
	"bw-max|kubernetes.io/egress-bandwidth|2P|from 1k to 1P"
	"bw-utf8|kubernetes.io/egress-bandwidth|10M@NONUTF8@|"
	"burst|bandwidth-burst.weir.io|12|bad burst"
	"prio|priority.weir.io|urgent|urgent"
	"cc|tcp-congestion.weir.io|nosuchcc|nosuchcc"
)
for case in "${bad_cases[@]}"; do
	IFS='|' read -r label key value token <<<"$case"
	name=bad-$label
	if [ "$value" = "@big" ]; then
		runc_bundle "$name" - --ann-file "$key" "$big" -- /bin/true
	else
		runc_bundle "$name" - --ann "$key=$value" -- /bin/true
	fi
	if [[ $label == *utf8 ]]; then
		# Raw invalid UTF-8 bytes in config.json (jq cannot write them).
		sed -i 's/@NONUTF8@/\xff\xfe/' "$(runc_bundle_dir "$name")/config.json"
	fi
	before=$(endpoint_dirs)
	rc=0
	runc_start "$name" || rc=$?
	err=$(runc_err "$name")
	check_refused "$label" "runc refuses the container" "$rc" "$err" "$key" "$token"
	left=()
	st=$(runc_status "$name")
	[ "$st" = absent ] || left+=("runc state: $st")
	[ ! -d "$(runc_cgroup "$name")" ] || left+=("cgroup $(runc_cgroup "$name") exists, programs: $(cgroup_progs "$(runc_cgroup "$name")")")
	after=$(endpoint_dirs)
	[ "$after" = "$before" ] || left+=("endpoint folders before: [${before//$'\n'/ }], after: [${after//$'\n'/ }]")
	rec=$(weir_record "$(runc_id "$name")")
	[ -z "$rec" ] || left+=("weir record: $rec")
	none_left "$label: nothing left (no container, cgroup, endpoint folder or record)" "${left[@]}"
	"$RUNC" delete -f "$(runc_id "$name")" >/dev/null 2>&1 || true
	# The CLI gives the same verdict offline.
	if [[ $label != *utf8 ]]; then
		[ "$value" != "@big" ] || value=$(cat "$big")
		crc=0
		cout=$("$WEIR" policy check -a "$key=$value" 2>&1) || crc=$?
		# Compare the messages without the program names ("weir: ", "weir-hook: ") and with
		# runc's quoting (\") undone.
		msg=$(head -n1 <<<"$cout")
		msg=${msg#weir: }
		if [ "$crc" -ne 0 ] && [ -n "$msg" ] && [[ ${err//\\\"/\"} == *"$msg"* ]]; then
			pass "$label: weir policy check fails with the same message"
		else
			fail "$label: weir policy check fails with the same message" "exit $crc" "policy check said: ${cout:0:300}"
		fi
	fi
done

# ---------------------------------------------------------------------------------------
diag "8. eight containers started at once are all enforced"
par=()
for ((i = 0; i < PEER_PAR; i++)); do
	runc_bundle "par$i" $((20 + i)) --egress "$(par_policy "$(par_addr4 $i)" "$(par_addr6 $i)")" -- /bin/sleep 3600
	par+=("par$i")
done
pids=()
for c in "${par[@]}"; do
	runc_start "$c" &
	pids+=($!)
done
failed=()
for i in "${!pids[@]}"; do
	wait "${pids[i]}" || failed+=("${par[i]}: $(runc_err "${par[i]}" | tail -n 3)")
done
none_left "8 containers started in parallel" "${failed[@]}"
for ((i = 0; i < PEER_PAR; i++)); do
	j=$(((i + 1) % PEER_PAR))
	par_reach "par$i" "$(par_addr4 $i)" "$(par_addr6 $i)" "$(par_addr4 $j)" "$(par_addr6 $j)"
done
none_left "each reaches its own peer and gets EPERM for its neighbour's (IPv4 and IPv6)" "${PAR_BAD[@]}"
check_par_endpoints_stopped runc_stop runc_id runc_cgroup "${par[@]}"

# ---------------------------------------------------------------------------------------
ok_run "weir status runs" "$WEIR" status
ok_run "weir gc runs" "$WEIR" gc
own_weir_empty
done_testing
