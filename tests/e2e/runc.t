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
cw() {
	local name=$1
	shift
	wrun runc_exec "$name" /bin/wtool "$@"
}
pw() { wrun peer_exec "$WTOOL" "$@"; }

# start NAME IDX BUNDLE-OPTIONS... -- CMD: build and start, one test line.
start() {
	local name=$1
	runc_bundle "$@"
	if runc_start "$name"; then
		pass "$name: container starts with weir's hooks"
	else
		fail "$name: container starts with weir's hooks"
		diag_block "runc stderr" "$(runc_err "$name")"
	fi
}

# endpoint_of ID: the endpoint number in weir's record.
endpoint_of() {
	weir_record "$1" | jq -r '.endpoint // empty'
}

# check_running NAME MODE: record, endpoint folder, programs on the cgroup.
check_running() {
	local name=$1 mode=$2 id rec ep
	id=$(runc_id "$name")
	rec=$(weir_record "$id")
	if jq -e --arg m "$mode" '.state == "running" and .mode == $m and (.endpoint != null)' \
		<<<"${rec:-null}" >/dev/null 2>&1; then
		pass "$name: weir list shows it running, mode $mode"
	else
		fail "$name: weir list shows it running, mode $mode" "record: ${rec:-<none>}"
	fi
	ep=$(jq -r '.endpoint // empty' <<<"${rec:-null}")
	if [ -n "$ep" ] && [ -d "$WEIR_BPFFS/endpoints/$ep" ] && [ -n "$(cgroup_progs "$(runc_cgroup "$name")")" ]; then
		pass "$name: endpoint folder $WEIR_BPFFS/endpoints/$ep and programs on its cgroup"
	else
		fail "$name: endpoint folder and programs on its cgroup" "endpoint: '${ep}'" \
			"cgroup: $(runc_cgroup "$name")"
		diag_block "bpftool cgroup show" "$(cgroup_progs "$(runc_cgroup "$name")")"
	fi
}

# stop_and_check NAME: delete (poststop), then nothing of it may remain but a stopped record.
# Sets FINAL_STATS to what weir stats shows afterwards.
stop_and_check() {
	local name=$1 id ep rc=0 rec
	id=$(runc_id "$name")
	ep=$(endpoint_of "$id")
	runc_stop "$name" || rc=$?
	if [ "$rc" -eq 0 ] && [ ! -s "$(runc_bundle_dir "$name")/delete.log" ]; then
		pass "$name: runc delete runs weir's poststop hook cleanly"
	else
		fail "$name: runc delete runs weir's poststop hook cleanly" "exit $rc"
		diag_block "runc delete" "$(cat "$(runc_bundle_dir "$name")/delete.log")"
	fi
	local left=()
	[ ! -d "$(runc_cgroup "$name")" ] || left+=("cgroup $(runc_cgroup "$name") still there")
	if bpftool cgroup tree "$(cgroup2_mount)" 2>/dev/null | grep -q "$E2E_PREFIX-$name\$"; then
		left+=("bpftool cgroup tree still lists its cgroup")
	fi
	[ -n "$ep" ] || left+=("no endpoint number was recorded while it ran")
	[ -z "$ep" ] || [ ! -e "$WEIR_BPFFS/endpoints/$ep" ] || left+=("$WEIR_BPFFS/endpoints/$ep still there")
	rec=$(weir_record "$id")
	jq -e '.state == "stopped"' <<<"${rec:-null}" >/dev/null 2>&1 || left+=("record: ${rec:-<none>} (want state stopped)")
	if [ ${#left[@]} -eq 0 ]; then
		pass "$name: after stop nothing is attached or pinned, the record says stopped"
	else
		fail "$name: after stop nothing is attached or pinned, the record says stopped" "${left[@]}"
	fi
	FINAL_STATS=$(weir_snapshot "$id")
}

# ---------------------------------------------------------------------------------------
diag "1. allow and deny, TCP/UDP/ICMP, IPv4 and IPv6 (egress-only policy)"
start basic 1 --egress "allow $A4 tcp/8080,udp/5000,udp/5353,icmp; allow $A6 tcp/8080,udp/5000,udp/5353,icmp" -- /bin/sleep 3600
check_running basic enforce

for fam in 4 6; do
	if [ $fam = 4 ]; then a=$A4 b=$B4; else a=$A6 b=$B6; fi
	cw basic connect "$a" 8080
	wlike '^ok$' "IPv$fam: allowed TCP connect to $a:8080 succeeds"
	cw basic tcp-rr "$a" 8080
	wlike '^ok reply="received 64"$' "IPv$fam: reply from the peer's server arrives (egress-only policy)"
	cw basic tcp-send "$a" 8080 300000
	wlike '^ok sent=300000 reply="received 300000"$' "IPv$fam: 300 KB TCP transfer to an allowed peer completes"
	cw basic connect "$b" 8080
	wlike '^EPERM$' "IPv$fam: TCP connect to a peer outside the policy ($b) fails with EPERM"
	cmp_num "$W_MS" -lt "$EPERM_MAX_MS" "IPv$fam: ... at once (${W_MS} ms), not after a timeout"
	cw basic connect "$a" 8000
	wlike '^EPERM$' "IPv$fam: TCP connect to an allowed peer on a port outside the policy fails with EPERM"
	cw basic udp-send "$a" 5000 3 100
	wlike '^ok sent=3 ' "IPv$fam: allowed UDP sendto succeeds"
	cw basic udp-rr "$a" 5353
	wlike '^ok$' "IPv$fam: UDP reply from the peer's echo server arrives"
	cw basic udp-send "$b" 5000 3 100
	wlike '^EPERM$' "IPv$fam: UDP sendto a denied peer fails with EPERM"
	cw basic udp-send "$a" 5001 1 100
	wlike '^EPERM$' "IPv$fam: UDP sendto a port outside the policy fails with EPERM"
	cw basic ping "$a" 2
	wlike '^ok sent=2 received=2' "IPv$fam: allowed ICMP echo gets its replies"
	cw basic ping "$b" 1 56 500
	wlike '^(EPERM|ETIMEDOUT)' "IPv$fam: ICMP echo to a denied peer fails (EPERM or dropped)"
done
stop_and_check basic

# ---------------------------------------------------------------------------------------
diag "2. counters equal exactly what was sent"
start cnt 2 --egress "allow $A4 udp/5000,icmp; allow $A6 udp/5000,icmp" -- /bin/sleep 3600
id=$(runc_id cnt)
wait_quiet "$id"
s0=$(weir_snapshot "$id")
is "$(jq -r '[.id, .state, .mode] | join(" ")' <<<"$s0")" "$id running enforce" "cnt: weir stats shows id, state and mode"
is "$(missing_list_keys "$(weir_record "$id")")" "" "weir list --json entry has every documented key (id name endpoint state mode source cgroup)"
is "$(missing_stats_keys "$s0")" "" "weir stats ID --json has every documented key and counter"

n=7 size=100
cw cnt udp-send "$A4" 5000 $n $size
s1=$(weir_snapshot "$id")
is "$(stats_delta "$s0" "$s1" .egress.udp.packets) $(stats_delta "$s0" "$s1" .egress.udp.bytes)" \
	"$n $((n * (20 + 8 + size)))" "IPv4 UDP: egress.udp = $n packets, $n*(20+8+$size) bytes"
n6=5 size6=1000
cw cnt udp-send "$A6" 5000 $n6 $size6
s2=$(weir_snapshot "$id")
is "$(stats_delta "$s1" "$s2" .egress.udp.packets) $(stats_delta "$s1" "$s2" .egress.udp.bytes)" \
	"$n6 $((n6 * (40 + 8 + size6)))" "IPv6 UDP: egress.udp = $n6 packets, $n6*(40+8+$size6) bytes"
is "$(jq -r '.ingress.udp.packets' <<<"$s2")" 0 "no UDP came back, ingress.udp.packets is 0"

pc=3 psize=56
cw cnt ping "$A4" $pc $psize
s3=$(weir_snapshot "$id")
is "$(stats_delta "$s2" "$s3" .egress.icmp.packets) $(stats_delta "$s2" "$s3" .egress.icmp.bytes)" \
	"$pc $((pc * (20 + 8 + psize)))" "IPv4 ICMP: egress.icmp = $pc echo requests, $pc*(20+8+$psize) bytes"
is "$(stats_delta "$s2" "$s3" .ingress.icmp.packets) $(stats_delta "$s2" "$s3" .ingress.icmp.bytes)" \
	"$pc $((pc * (20 + 8 + psize)))" "IPv4 ICMP: ingress.icmp = $pc echo replies, same bytes"
pc6=2 psize6=200
cw cnt ping "$A6" $pc6 $psize6
s4=$(weir_snapshot "$id")
is "$(stats_delta "$s3" "$s4" .egress.icmp.packets) $(stats_delta "$s3" "$s4" .egress.icmp.bytes)" \
	"$pc6 $((pc6 * (40 + 8 + psize6)))" "IPv6 ICMP: egress.icmp = $pc6 echo requests, $pc6*(40+8+$psize6) bytes"
is "$(stats_delta "$s3" "$s4" .ingress.icmp.packets) $(stats_delta "$s3" "$s4" .ingress.icmp.bytes)" \
	"$pc6 $((pc6 * (40 + 8 + psize6)))" "IPv6 ICMP: ingress.icmp = $pc6 echo replies, same bytes"

cw cnt connect "$B4" 8080
s5=$(weir_snapshot "$id")
is "$W_OUT $(stats_delta "$s4" "$s5" .egress.denied_connects)" "EPERM 1" \
	"a denied connect() counts 1 in egress.denied_connects"
cw cnt udp-send "$B6" 5000 1 10
s6=$(weir_snapshot "$id")
is "$W_OUT $(stats_delta "$s5" "$s6" .egress.denied_connects) $(stats_delta "$s5" "$s6" .egress.udp.packets)" \
	"EPERM 1 0" "a denied sendto() counts 1 in egress.denied_connects, 0 UDP packets"
cw cnt ping "$B4" 1 $psize 300
s7=$(weir_snapshot "$id")
is "$(stats_delta "$s6" "$s7" .egress.policy_dropped.packets) $(stats_delta "$s6" "$s7" .egress.policy_dropped.bytes) $(stats_delta "$s6" "$s7" .egress.icmp.packets)" \
	"1 $((20 + 8 + psize)) 0" "a denied ICMP echo: egress.policy_dropped = 1 packet, $((20 + 8 + psize)) bytes; not counted as passed"
is "$(jq -r '.egress.policy_dropped.packets' <<<"$s5")" 0 "socket-level denials drop no packet (policy_dropped 0 before the ICMP one)"
is "$(grep -c "^udp $size from $(ctr_addr4 2)\$" "$E2E_TMP/peer-udp5000.log") $(grep -c "^udp $size6 from $(ctr_addr6 2)\$" "$E2E_TMP/peer-udp5000.log")" \
	"$n $n6" "the peer received every allowed datagram ($n + $n6)"

stop_and_check cnt
is "$(jq -r '[.state, .egress.udp.packets, .egress.udp.bytes, .egress.icmp.packets, .ingress.icmp.packets] | join(" ")' <<<"$FINAL_STATS")" \
	"stopped $(jq -r '[.egress.udp.packets, .egress.udp.bytes, .egress.icmp.packets, .ingress.icmp.packets] | join(" ")' <<<"$s7")" \
	"after stop, weir stats still shows the final counters (state stopped)"

# ---------------------------------------------------------------------------------------
diag "3. enforced before the workload's first instruction"
runc_bundle first4 3 --egress "allow $A4 tcp/8080" -- /bin/wtool connect "$B4" 8080 3000
runc_start first4 && runc_wait_stopped first4 10
is "$(runc_out first4)" EPERM "first instruction connect() to a denied IPv4 address fails with EPERM"
runc_bundle first6 4 --egress "allow $A6 tcp/8080" -- /bin/wtool connect "$B6" 8080 3000
runc_start first6 && runc_wait_stopped first6 10
is "$(runc_out first6)" EPERM "first instruction connect() to a denied IPv6 address fails with EPERM"
runc_bundle firstok 5 --egress "allow $A4 tcp/8080" -- /bin/wtool connect "$A4" 8080 3000
runc_start firstok && runc_wait_stopped firstok 10
is "$(runc_out firstok)" ok "first instruction connect() to an allowed address succeeds"
for c in first4 first6 firstok; do
	! runc_err $c | grep -qv elapsed_ms || diag_block "$c stderr" "$(runc_err $c)"
	runc_stop $c || diag "runc delete $c: $(cat "$(runc_bundle_dir $c)/delete.log")"
done

# ---------------------------------------------------------------------------------------
diag "4. replies pass in both directions; unsolicited traffic does not"
# Egress allows the peer's server, ingress is default-deny (one rule for an address nobody
# has): replies to the container's connections must still arrive.
start rep 6 --egress "allow $A4 tcp/8080,udp/5353; allow $A6 tcp/8080,udp/5353" \
	--ingress "allow 10.255.255.254/32" -- /bin/wtool tcp-server 9000
cw rep tcp-rr "$A4" 8080
wlike '^ok reply=' "IPv4: TCP reply arrives although ingress is default-deny"
cw rep tcp-rr "$A6" 8080
wlike '^ok reply=' "IPv6: TCP reply arrives although ingress is default-deny"
cw rep udp-rr "$A4" 5353
wlike '^ok$' "IPv4: UDP reply arrives although ingress is default-deny"
cw rep udp-rr "$A6" 5353
wlike '^ok$' "IPv6: UDP reply arrives although ingress is default-deny"
pw connect "$(ctr_addr4 6)" 9000 1000
wlike '^ETIMEDOUT$' "an unsolicited connection from the peer to the container's server is dropped"
stop_and_check rep

# Ingress allows the peer's client on port 9000 only, egress is default-deny: the server's
# replies must still leave.
start ing 7 --ingress "allow $(gw_addr4 7) tcp/9000; allow $(gw_addr6 7) tcp/9000" \
	--egress "allow 10.255.255.254/32" -- /bin/sh -c 'wtool tcp-server 9000 & wtool tcp-server 9001 & wait'
retry 5 grep -q 'listening tcp/9001' "$(runc_bundle_dir ing)/stdout" || diag "servers in ing did not start"
pw tcp-rr "$(ctr_addr4 7)" 9000
wlike '^ok reply="received 64"$' "IPv4: a client in the peer gets the reply of the container's server (ingress allow, egress default-deny)"
pw tcp-rr "$(ctr_addr6 7)" 9000
wlike '^ok reply="received 64"$' "IPv6: a client in the peer gets the reply of the container's server"
s0=$(weir_snapshot "$(runc_id ing)")
pw connect "$(ctr_addr4 7)" 9001 1000
wlike '^ETIMEDOUT$' "IPv4: a connection to a port outside the ingress policy is dropped"
s1=$(weir_snapshot "$(runc_id ing)")
cmp_num "$(stats_delta "$s0" "$s1" .ingress.policy_dropped.packets)" -ge 1 "... and counted in ingress.policy_dropped"
pw connect "$(ctr_addr6 7)" 9001 1000
wlike '^ETIMEDOUT$' "IPv6: a connection to a port outside the ingress policy is dropped"
cw ing connect "$A4" 8080
wlike '^EPERM$' "the container itself cannot open a connection (egress default-deny)"
stop_and_check ing

# ---------------------------------------------------------------------------------------
diag "5. deny overrides allow; port ranges"
start ovr 8 --egress "allow 10.0.0.0/8; deny 10.212.0.0/16; deny fd78:b::/32; allow fd78::/16" -- /bin/sleep 3600
cw ovr connect "$A4" 8080
wlike '^ok$' "allow 10.0.0.0/8: $A4 reachable"
cw ovr connect "$B4" 8080
wlike '^EPERM$' "deny 10.212.0.0/16 inside allow 10.0.0.0/8: $B4 gets EPERM"
cw ovr connect "$(par_addr4 1)" 8080
wlike '^ok$' "allow 10.0.0.0/8: $(par_addr4 1) reachable"
cw ovr connect "$A6" 8080
wlike '^ok$' "allow fd78::/16: $A6 reachable"
cw ovr connect "$B6" 8080
wlike '^EPERM$' "deny fd78:b::/32 written before allow fd78::/16: $B6 gets EPERM"
stop_and_check ovr

start rng 9 --egress "allow $A4 tcp/8000-8010,udp/5000-5001; deny $A4 tcp/8005; allow $A6 tcp/8000-8010" -- /bin/sleep 3600
for p in 8000 8010; do
	cw rng connect "$A4" $p
	wlike '^ok$' "tcp/8000-8010: port $p (bound) allowed"
done
for p in 7999 8011; do
	cw rng connect "$A4" $p
	wlike '^EPERM$' "tcp/8000-8010: port $p (just outside) denied"
done
cw rng connect "$A4" 8005
wlike '^EPERM$' "deny $A4 tcp/8005 overrides the allowed range"
cw rng connect "$A6" 8005
wlike '^ok$' "... while $A6 tcp/8005 (no deny) is allowed"
cw rng udp-send "$A4" 5001 1 10
wlike '^ok' "udp/5000-5001: port 5001 allowed"
cw rng udp-send "$A4" 5002 1 10
wlike '^EPERM$' "udp/5000-5001: port 5002 denied"
cw rng connect "$A4" 5000
wlike '^EPERM$' "a UDP range allows no TCP"
stop_and_check rng

# ---------------------------------------------------------------------------------------
diag "6. audit mode: nothing dropped, would-drops counted"
start aud 10 --mode audit --egress "allow $A4 tcp/8080" -- /bin/sleep 3600
check_running aud audit
id=$(runc_id aud)
wait_quiet "$id"
s0=$(weir_snapshot "$id")
cw aud connect "$B4" 8080
wlike '^ok$' "audit: a connect outside the policy succeeds"
s1=$(weir_snapshot "$id")
is "$(stats_delta "$s0" "$s1" .egress.audit_denied_connects) $(stats_delta "$s0" "$s1" .egress.denied_connects)" "1 0" \
	"audit: counted in egress.audit_denied_connects, not in denied_connects"
n=6 size=50
cw aud udp-send "$B4" 5000 $n $size
wlike "^ok sent=$n " "audit: UDP to a denied peer is sent"
s2=$(weir_snapshot "$id")
is "$(stats_delta "$s1" "$s2" .egress.audit_denied.packets) $(stats_delta "$s1" "$s2" .egress.audit_denied.bytes)" \
	"$n $((n * (20 + 8 + size)))" "audit: egress.audit_denied = $n packets, $n*(20+8+$size) bytes"
is "$(stats_delta "$s1" "$s2" .egress.udp.packets) $(stats_delta "$s1" "$s2" .egress.udp.bytes)" \
	"$n $((n * (20 + 8 + size)))" "audit: the same packets count as passed UDP"
sleep 0.2
is "$(grep -c "^udp $size from $(ctr_addr4 10)\$" "$E2E_TMP/peer-udp5000.log")" "$n" "audit: the peer received all $n datagrams"
cw aud ping "$B6" 2
wlike '^ok sent=2 received=2' "audit: ICMPv6 echo to a denied peer gets its replies"
s3=$(weir_snapshot "$id")
is "$(jq -r '[.egress.policy_dropped.packets, .ingress.policy_dropped.packets, .egress.denied_connects] | join(" ")' <<<"$s3")" \
	"0 0 0" "audit: nothing dropped, no connect denied"
stop_and_check aud

# ---------------------------------------------------------------------------------------
diag "7. bad annotations: the container does not start, weir's message shows, nothing is left"
big=$E2E_TMP/big-annotation
printf 'allow 10.1.2.3 tcp/80;%.0s' $(seq 4700) >"$big" # 22 bytes x 4700: over 100 KB
bad_cases=(
	"cidr|egress.weir.io|allow 10.0.0.0/33 tcp/80|10.0.0.0/33"
	"port|egress.weir.io|allow 10.0.0.1 tcp/70000|70000"
	"proto|ingress.weir.io|allow any sctp/80|sctp"
	"key|bogus.weir.io|1|bogus.weir.io"
	"empty|egress.weir.io|allow 10.0.0.1 tcp/80;;deny any|"
	"mode|policy-mode.weir.io|enforcing|enforcing"
	"big|egress.weir.io|@big|"
	"utf8|egress.weir.io|allow 10.0.0.1 tcp/80@NONUTF8@|"
)
for case in "${bad_cases[@]}"; do
	IFS='|' read -r label key value token <<<"$case"
	name=bad-$label
	if [ "$value" = "@big" ]; then
		runc_bundle "$name" - --ann-file "$key" "$big" -- /bin/true
	else
		runc_bundle "$name" - --ann "$key=$value" -- /bin/true
	fi
	if [ "$label" = utf8 ]; then
		# Raw invalid UTF-8 bytes in config.json (jq cannot write them).
		sed -i 's/@NONUTF8@/\xff\xfe/' "$(runc_bundle_dir "$name")/config.json"
	fi
	before=$(endpoint_dirs)
	rc=0
	runc_start "$name" || rc=$?
	err=$(runc_err "$name")
	if [ "$rc" -ne 0 ] && [[ $err == *"$key"* ]] && [[ $err == *"$token"* ]]; then
		pass "$label: runc refuses the container; its error names $key${token:+ and \"$token\"}"
	else
		fail "$label: runc refuses the container; its error names $key${token:+ and \"$token\"}" "runc exit $rc"
		diag_block "runc stderr" "$err"
	fi
	left=()
	st=$(runc_status "$name")
	[ "$st" = absent ] || left+=("runc state: $st")
	[ ! -d "$(runc_cgroup "$name")" ] || left+=("cgroup $(runc_cgroup "$name") exists, programs: $(cgroup_progs "$(runc_cgroup "$name")")")
	orphans=$(new_orphan_endpoints "$before")
	[ -z "$orphans" ] || left+=("new endpoint folders no record accounts for: $(echo "$orphans" | tr '\n' ' ')")
	rec=$(weir_record "$(runc_id "$name")")
	[ -z "$rec" ] || left+=("weir record: $rec")
	if [ ${#left[@]} -eq 0 ]; then
		pass "$label: nothing left (no container, cgroup, endpoint folder or record)"
	else
		fail "$label: nothing left (no container, cgroup, endpoint folder or record)" "${left[@]}"
	fi
	"$RUNC" delete -f "$(runc_id "$name")" >/dev/null 2>&1 || true
	# The CLI gives the same verdict offline.
	if [ "$label" != utf8 ]; then
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
	j=$(((i + 1) % PEER_PAR))
	runc_bundle "par$i" $((20 + i)) --egress "allow $(par_addr4 $i) tcp/8080; allow $(par_addr6 $i) tcp/8080" -- /bin/sleep 3600
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
if [ ${#failed[@]} -eq 0 ]; then pass "8 containers started in parallel"; else fail "8 containers started in parallel" "${failed[@]}"; fi
bad=()
for ((i = 0; i < PEER_PAR; i++)); do
	j=$(((i + 1) % PEER_PAR))
	cw "par$i" connect "$(par_addr4 $i)" 8080
	[ "$W_OUT" = ok ] || bad+=("par$i -> $(par_addr4 $i): $W_OUT (want ok)")
	cw "par$i" connect "$(par_addr6 $i)" 8080
	[ "$W_OUT" = ok ] || bad+=("par$i -> $(par_addr6 $i): $W_OUT (want ok)")
	cw "par$i" connect "$(par_addr4 $j)" 8080
	[ "$W_OUT" = EPERM ] || bad+=("par$i -> $(par_addr4 $j): $W_OUT (want EPERM)")
	cw "par$i" connect "$(par_addr6 $j)" 8080
	[ "$W_OUT" = EPERM ] || bad+=("par$i -> $(par_addr6 $j): $W_OUT (want EPERM)")
done
if [ ${#bad[@]} -eq 0 ]; then
	pass "each reaches its own peer and gets EPERM for its neighbour's (IPv4 and IPv6)"
else
	fail "each reaches its own peer and gets EPERM for its neighbour's (IPv4 and IPv6)" "${bad[@]}"
fi
eps=$(for c in "${par[@]}"; do endpoint_of "$(runc_id "$c")"; done | sort -u | grep -c . || true)
is "$eps" "$PEER_PAR" "weir list shows $PEER_PAR distinct endpoints"
eps_list=$(for c in "${par[@]}"; do endpoint_of "$(runc_id "$c")"; done)
pids=()
for c in "${par[@]}"; do
	runc_stop "$c" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
left=()
for ep in $eps_list; do
	[ ! -e "$WEIR_BPFFS/endpoints/$ep" ] || left+=("$WEIR_BPFFS/endpoints/$ep")
done
for c in "${par[@]}"; do
	[ "$(weir_record "$(runc_id "$c")" | jq -r .state)" = stopped ] || left+=("$c: record not stopped")
	[ ! -d "$(runc_cgroup "$c")" ] || left+=("$c: cgroup remains")
done
if [ ${#left[@]} -eq 0 ]; then
	pass "stopped in parallel: no endpoint folder or cgroup left, records stopped"
else
	fail "stopped in parallel: no endpoint folder or cgroup left, records stopped" "${left[@]}"
fi

# ---------------------------------------------------------------------------------------
ok_run "weir status runs" "$WEIR" status
ok_run "weir gc runs" "$WEIR" gc
done_testing
