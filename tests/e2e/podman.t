#!/bin/bash
# weir end to end with podman (runc runtime, netavark): weir-hook attached through hooks.d
# (createRuntime + poststop), containers from a busybox-static rootfs (--rootfs, offline).
#
#   prove -v tests/e2e/podman.t      (root; `make` first)
#
# Peers are other podman containers on a network this test creates (--internal: nothing
# leaves the bridge): peer A 10.212.200.10 / fd79:0:0:a::10, peer B 10.213.200.10 /
# fd79:0:0:b::10, both without weir annotations, serving tcp 8080 8000 8005 8010 9000,
# udp sink 5000 and udp echo 5001. See lib/podman.sh.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/podman.sh
. "$E2E_LIB/podman.sh"

e2e_init
require_weir
podman_init
podman_hooks_install
podman_peers

A4=$POD_A4 B4=$POD_B4 A6=$POD_A6 B6=$POD_B6
EPERM_MAX_MS=200

# Extra sysctls of enforced containers: no router solicitations (kernel-made ICMPv6 of the
# container's netns counts as its traffic; see wait_quiet).
QUIET=(--sysctl net.ipv6.conf.eth0.router_solicitations=0)

pcw() {
	local name=$1
	shift
	wrun podman_exec "$name" /bin/wtool "$@"
}

# start NAME PODMAN_RUN-OPTIONS... -- CMD
start() {
	local name=$1
	shift
	if podman_run "$name" "$@"; then
		pass "$name: container starts with weir's hooks"
	else
		fail "$name: container starts with weir's hooks"
		diag_block "podman stderr" "$(cat "$E2E_TMP/$name.err")"
	fi
}

# check_running NAME MODE
check_running() {
	local name=$1 mode=$2 id rec ep cg
	id=$(podman_id "$name")
	rec=$(weir_record "$id")
	if jq -e --arg m "$mode" '.state == "running" and .mode == $m and (.endpoint != null)' \
		<<<"${rec:-null}" >/dev/null 2>&1; then
		pass "$name: weir list shows it running, mode $mode"
	else
		fail "$name: weir list shows it running, mode $mode" "id $id" "record: ${rec:-<none>}"
	fi
	ep=$(jq -r '.endpoint // empty' <<<"${rec:-null}")
	cg=$(podman_cgroup "$name")
	if [ -n "$ep" ] && [ -d "$WEIR_BPFFS/endpoints/$ep" ] && [ -n "$(cgroup_progs "$cg")" ]; then
		pass "$name: endpoint folder $WEIR_BPFFS/endpoints/$ep and programs on its cgroup"
	else
		fail "$name: endpoint folder and programs on its cgroup" "endpoint: '$ep'" "cgroup: $cg"
	fi
}

# stop_and_check NAME: podman stop + rm (podman runs poststop), then nothing may remain
# but a stopped record. Sets FINAL_STATS.
stop_and_check() {
	local name=$1 id ep cg rec rc=0
	id=$(podman_id "$name")
	ep=$(weir_record "$id" | jq -r '.endpoint // empty')
	cg=$(podman_cgroup "$name")
	podman_stop "$name" || rc=$?
	if [ "$rc" -eq 0 ] && ! grep -qi 'error\|warn' "$E2E_TMP/$name.rm"; then
		pass "$name: podman stop and rm run cleanly (poststop hook)"
	else
		fail "$name: podman stop and rm run cleanly (poststop hook)" "exit $rc"
		diag_block "podman rm" "$(cat "$E2E_TMP/$name.rm")"
	fi
	local left=()
	[ ! -d "$cg" ] || left+=("cgroup $cg still there: $(cgroup_progs "$cg")")
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

peer_log() { "$PODMAN" logs "$(podman_name "peer$1")" 2>/dev/null; }

# ---------------------------------------------------------------------------------------
diag "1. allow and deny, TCP/UDP/ICMP, IPv4 and IPv6 (egress-only policy)"
start basic "${QUIET[@]}" --egress "allow $A4 tcp/8080,udp/5000,udp/5001,icmp; allow $A6 tcp/8080,udp/5000,udp/5001,icmp" -- /bin/sleep 3600
check_running basic enforce
podman_wait_v6 basic || diag "basic: IPv6 address still tentative"
for fam in 4 6; do
	if [ $fam = 4 ]; then a=$A4 b=$B4; else a=$A6 b=$B6; fi
	pcw basic connect "$a" 8080
	wlike '^ok$' "IPv$fam: allowed TCP connect to peer A $a:8080 succeeds"
	pcw basic tcp-rr "$a" 8080
	wlike '^ok reply="received 64"$' "IPv$fam: reply from peer A's server arrives"
	pcw basic connect "$b" 8080
	wlike '^EPERM$' "IPv$fam: TCP connect to peer B ($b, not in the policy) fails with EPERM"
	cmp_num "$W_MS" -lt "$EPERM_MAX_MS" "IPv$fam: ... at once (${W_MS} ms), not after a timeout"
	pcw basic connect "$a" 8000
	wlike '^EPERM$' "IPv$fam: TCP connect to peer A on a port outside the policy fails with EPERM"
	pcw basic udp-send "$a" 5000 3 100
	wlike '^ok sent=3 ' "IPv$fam: allowed UDP sendto succeeds"
	pcw basic udp-rr "$a" 5001
	wlike '^ok$' "IPv$fam: UDP reply from peer A's echo server arrives"
	pcw basic udp-send "$b" 5000 1 100
	wlike '^EPERM$' "IPv$fam: UDP sendto peer B fails with EPERM"
	pcw basic ping "$a" 2
	wlike '^ok sent=2 received=2' "IPv$fam: allowed ICMP echo gets its replies"
	pcw basic ping "$b" 1 56 500
	wlike '^(EPERM|ETIMEDOUT)' "IPv$fam: ICMP echo to peer B fails (EPERM or dropped)"
done
stop_and_check basic

# ---------------------------------------------------------------------------------------
diag "2. counters equal exactly what was sent"
start cnt "${QUIET[@]}" --egress "allow $A4 udp/5000,udp/5001,icmp; allow $A6 udp/5000,udp/5001,icmp" -- /bin/sleep 3600
podman_wait_v6 cnt || diag "cnt: IPv6 address still tentative"
id=$(podman_id cnt)
ip4=$(podman_ip4 cnt) ip6=$(podman_ip6 cnt)
# Resolve the neighbours first (NDP is ICMPv6 from the container's netns), then wait.
pcw cnt udp-rr "$A4" 5001
pcw cnt udp-rr "$A6" 5001
wait_quiet "$id"
s0=$(weir_snapshot "$id")
is "$(jq -r '[.id, .state, .mode] | join(" ")' <<<"$s0")" "$id running enforce" "cnt: weir stats shows id, state and mode"
is "$(missing_list_keys "$(weir_record "$id")")" "" "weir list --json entry has every documented key (id name endpoint state mode source cgroup)"
is "$(missing_stats_keys "$s0")" "" "weir stats ID --json has every documented key and counter"
n=7 size=100
pcw cnt udp-send "$A4" 5000 $n $size
s1=$(weir_snapshot "$id")
is "$(stats_delta "$s0" "$s1" .egress.udp.packets) $(stats_delta "$s0" "$s1" .egress.udp.bytes)" \
	"$n $((n * (20 + 8 + size)))" "IPv4 UDP: egress.udp = $n packets, $n*(20+8+$size) bytes"
n6=5 size6=1000
pcw cnt udp-send "$A6" 5000 $n6 $size6
s2=$(weir_snapshot "$id")
is "$(stats_delta "$s1" "$s2" .egress.udp.packets) $(stats_delta "$s1" "$s2" .egress.udp.bytes)" \
	"$n6 $((n6 * (40 + 8 + size6)))" "IPv6 UDP: egress.udp = $n6 packets, $n6*(40+8+$size6) bytes"
pc=3 psize=56
pcw cnt ping "$A4" $pc $psize
s3=$(weir_snapshot "$id")
is "$(stats_delta "$s2" "$s3" .egress.icmp.packets) $(stats_delta "$s2" "$s3" .egress.icmp.bytes)" \
	"$pc $((pc * (20 + 8 + psize)))" "IPv4 ICMP: egress.icmp = $pc echo requests, $pc*(20+8+$psize) bytes"
is "$(stats_delta "$s2" "$s3" .ingress.icmp.packets) $(stats_delta "$s2" "$s3" .ingress.icmp.bytes)" \
	"$pc $((pc * (20 + 8 + psize)))" "IPv4 ICMP: ingress.icmp = $pc echo replies, same bytes"
pc6=2 psize6=200
pcw cnt ping "$A6" $pc6 $psize6
s4=$(weir_snapshot "$id")
is "$(stats_delta "$s3" "$s4" .egress.icmp.packets) $(stats_delta "$s3" "$s4" .egress.icmp.bytes)" \
	"$pc6 $((pc6 * (40 + 8 + psize6)))" "IPv6 ICMP: egress.icmp = $pc6 echo requests, $pc6*(40+8+$psize6) bytes"
is "$(stats_delta "$s3" "$s4" .ingress.icmp.packets) $(stats_delta "$s3" "$s4" .ingress.icmp.bytes)" \
	"$pc6 $((pc6 * (40 + 8 + psize6)))" "IPv6 ICMP: ingress.icmp = $pc6 echo replies, same bytes"
pcw cnt connect "$B4" 8080
s5=$(weir_snapshot "$id")
is "$W_OUT $(stats_delta "$s4" "$s5" .egress.denied_connects)" "EPERM 1" \
	"a denied connect() counts 1 in egress.denied_connects"
sleep 0.3
is "$(peer_log A | grep -c "^udp $size from $ip4\$") $(peer_log A | grep -c "^udp $size6 from $ip6\$")" \
	"$n $n6" "peer A received every datagram ($n + $n6)"
stop_and_check cnt
is "$(jq -r '[.state, .egress.udp.packets, .egress.udp.bytes, .egress.icmp.packets, .ingress.icmp.packets] | join(" ")' <<<"$FINAL_STATS")" \
	"stopped $(jq -r '[.egress.udp.packets, .egress.udp.bytes, .egress.icmp.packets, .ingress.icmp.packets] | join(" ")' <<<"$s5")" \
	"after stop, weir stats still shows the final counters (state stopped)"

# ---------------------------------------------------------------------------------------
diag "3. enforced before the workload's first instruction"
podman_run first4 --fg --rm --egress "allow $A4 tcp/8080" -- /bin/wtool connect "$B4" 8080 3000 || true
is "$(cat "$E2E_TMP/first4.out")" EPERM "first instruction connect() to a denied IPv4 address fails with EPERM"
podman_run first6 --fg --rm --egress "allow $A6 tcp/8080" -- /bin/wtool connect "$B6" 8080 3000 || true
is "$(cat "$E2E_TMP/first6.out")" EPERM "first instruction connect() to a denied IPv6 address fails with EPERM"
podman_run firstok --fg --rm --egress "allow $A4 tcp/8080" -- /bin/wtool connect "$A4" 8080 3000 || true
is "$(cat "$E2E_TMP/firstok.out")" ok "first instruction connect() to an allowed address succeeds"

# ---------------------------------------------------------------------------------------
diag "4. replies pass in both directions; unsolicited traffic does not"
start rep --egress "allow $A4 tcp/8080,udp/5001; allow $A6 tcp/8080,udp/5001" \
	--ingress "allow 10.255.255.254/32" -- /bin/wtool tcp-server 9000
podman_wait_v6 rep || true
pcw rep tcp-rr "$A4" 8080
wlike '^ok reply=' "IPv4: TCP reply arrives although ingress is default-deny"
pcw rep tcp-rr "$A6" 8080
wlike '^ok reply=' "IPv6: TCP reply arrives although ingress is default-deny"
pcw rep udp-rr "$A4" 5001
wlike '^ok$' "IPv4: UDP reply arrives although ingress is default-deny"
wrun podman_exec peerA /bin/wtool connect "$(podman_ip4 rep)" 9000 1000
wlike '^ETIMEDOUT$' "an unsolicited connection from peer A to the container's server is dropped"
stop_and_check rep

start ing --ingress "allow $A4 tcp/9000; allow $A6 tcp/9000" --egress "allow 10.255.255.254/32" \
	-- /bin/sh -c 'wtool tcp-server 9000 & wtool tcp-server 9001 & wait'
podman_wait_v6 ing || true
retry 5 _podman_listening ing 2 || diag "servers in ing did not start"
ip4=$(podman_ip4 ing) ip6=$(podman_ip6 ing)
wrun podman_exec peerA /bin/wtool tcp-rr "$ip4" 9000
wlike '^ok reply="received 64"$' "IPv4: peer A's client gets the reply of the container's server (ingress allow, egress default-deny)"
wrun podman_exec peerA /bin/wtool tcp-rr "$ip6" 9000
wlike '^ok reply="received 64"$' "IPv6: peer A's client gets the reply of the container's server"
wrun podman_exec peerB /bin/wtool connect "$ip4" 9000 1000
wlike '^ETIMEDOUT$' "peer B (not in the ingress policy) cannot connect"
wrun podman_exec peerA /bin/wtool connect "$ip6" 9001 1000
wlike '^ETIMEDOUT$' "peer A cannot connect to a port outside the ingress policy"
pcw ing connect "$A4" 8080
wlike '^EPERM$' "the container itself cannot open a connection (egress default-deny)"
stop_and_check ing

# ---------------------------------------------------------------------------------------
diag "5. deny overrides allow; port ranges"
start ovr --egress "allow 10.0.0.0/8; deny 10.213.0.0/16; deny fd79:0:0:b::/64; allow fd79::/16" -- /bin/sleep 3600
podman_wait_v6 ovr || true
pcw ovr connect "$A4" 8080
wlike '^ok$' "allow 10.0.0.0/8: peer A $A4 reachable"
pcw ovr connect "$B4" 8080
wlike '^EPERM$' "deny 10.213.0.0/16 inside allow 10.0.0.0/8: peer B $B4 gets EPERM"
pcw ovr connect "$A6" 8080
wlike '^ok$' "allow fd79::/16: peer A $A6 reachable"
pcw ovr connect "$B6" 8080
wlike '^EPERM$' "deny fd79:0:0:b::/64 written before allow fd79::/16: peer B $B6 gets EPERM"
stop_and_check ovr

start rng --egress "allow $A4 tcp/8000-8010,udp/5000-5001; deny $A4 tcp/8005; allow $A6 tcp/8000-8010" -- /bin/sleep 3600
podman_wait_v6 rng || true
for p in 8000 8010; do
	pcw rng connect "$A4" $p
	wlike '^ok$' "tcp/8000-8010: port $p (bound) allowed"
done
for p in 7999 8011; do
	pcw rng connect "$A4" $p
	wlike '^EPERM$' "tcp/8000-8010: port $p (just outside) denied"
done
pcw rng connect "$A4" 8005
wlike '^EPERM$' "deny $A4 tcp/8005 overrides the allowed range"
pcw rng connect "$A6" 8005
wlike '^ok$' "... while $A6 tcp/8005 (no deny) is allowed"
pcw rng udp-send "$A4" 5001 1 10
wlike '^ok' "udp/5000-5001: port 5001 allowed"
pcw rng udp-send "$A4" 5002 1 10
wlike '^EPERM$' "udp/5000-5001: port 5002 denied"
stop_and_check rng

# ---------------------------------------------------------------------------------------
diag "6. audit mode: nothing dropped, would-drops counted"
start aud "${QUIET[@]}" --mode audit --egress "allow $A4 tcp/8080" -- /bin/sleep 3600
check_running aud audit
podman_wait_v6 aud || true
id=$(podman_id aud)
ip4=$(podman_ip4 aud)
pcw aud udp-rr "$B4" 5001
wait_quiet "$id"
s0=$(weir_snapshot "$id")
pcw aud connect "$B4" 8080
wlike '^ok$' "audit: a connect outside the policy succeeds"
s1=$(weir_snapshot "$id")
is "$(stats_delta "$s0" "$s1" .egress.audit_denied_connects) $(stats_delta "$s0" "$s1" .egress.denied_connects)" "1 0" \
	"audit: counted in egress.audit_denied_connects, not in denied_connects"
n=6 size=50
pcw aud udp-send "$B4" 5000 $n $size
wlike "^ok sent=$n " "audit: UDP to a denied peer is sent"
s2=$(weir_snapshot "$id")
is "$(stats_delta "$s1" "$s2" .egress.audit_denied.packets) $(stats_delta "$s1" "$s2" .egress.audit_denied.bytes)" \
	"$n $((n * (20 + 8 + size)))" "audit: egress.audit_denied = $n packets, $n*(20+8+$size) bytes"
sleep 0.3
is "$(peer_log B | grep -c "^udp $size from $ip4\$")" "$n" "audit: peer B received all $n datagrams"
pcw aud ping "$B6" 2
wlike '^ok sent=2 received=2' "audit: ICMPv6 echo to a denied peer gets its replies"
s3=$(weir_snapshot "$id")
is "$(jq -r '[.egress.policy_dropped.packets, .ingress.policy_dropped.packets, .egress.denied_connects] | join(" ")' <<<"$s3")" \
	"0 0 0" "audit: nothing dropped, no connect denied"
stop_and_check aud

# ---------------------------------------------------------------------------------------
diag "7. bad annotations: podman run fails with weir's message, nothing is left"
big=$(printf 'allow 10.1.2.3 tcp/80;%.0s' $(seq 4700))
bad_cases=(
	"cidr|egress.weir.io|allow 10.0.0.0/33 tcp/80|10.0.0.0/33"
	"port|egress.weir.io|allow 10.0.0.1 tcp/70000|70000"
	"proto|ingress.weir.io|allow any sctp/80|sctp"
	"key|bogus.weir.io|1|bogus.weir.io"
	"empty|egress.weir.io|allow 10.0.0.1 tcp/80;;deny any|"
	"big|egress.weir.io|$big|"
	"utf8|egress.weir.io|allow 10.0.0.1 tcp/80"$'\xff\xfe'"|"
)
for case in "${bad_cases[@]}"; do
	IFS='|' read -r label key value token <<<"$case"
	name=bad-$label
	before_eps=$(endpoint_dirs)
	rc=0
	podman_run "$name" --fg --rm --ann "$key=$value" -- /bin/true || rc=$?
	err=$(cat "$E2E_TMP/$name.err")
	if [ "$rc" -ne 0 ] && [[ $err == *"$key"* ]] && [[ $err == *"$token"* ]]; then
		pass "$label: podman run fails; its error names $key${token:+ and \"$token\"}"
	else
		fail "$label: podman run fails; its error names $key${token:+ and \"$token\"}" "podman exit $rc"
		diag_block "podman stderr" "${err:0:2000}"
	fi
	left=()
	cid=$(podman_cid "$name")
	[ -n "$cid" ] || left+=("podman wrote no container id (--cidfile)")
	[ -z "$("$PODMAN" ps -aq --filter "name=^$(podman_name "$name")\$")" ] || left+=("podman still lists the container")
	orphans=$(new_orphan_endpoints "$before_eps")
	[ -z "$orphans" ] || left+=("new endpoint folders no record accounts for: $(echo "$orphans" | tr '\n' ' ')")
	if [ -n "$cid" ]; then
		rec=$(weir_record "$cid")
		[ -z "$rec" ] || left+=("weir record: $rec")
		cg=$(cgroup2_mount)/libpod_parent/libpod-$cid
		[ ! -d "$cg" ] || left+=("cgroup $cg exists, programs: $(cgroup_progs "$cg")")
	fi
	if [ ${#left[@]} -eq 0 ]; then
		pass "$label: nothing left (no container, endpoint folder, record or attached program)"
	else
		fail "$label: nothing left (no container, endpoint folder, record or attached program)" "${left[@]}"
	fi
	"$PODMAN" rm -f "$(podman_name "$name")" >/dev/null 2>&1 || true
done

# ---------------------------------------------------------------------------------------
diag "8. eight containers started at once are all enforced"
par=()
pids=()
for ((i = 0; i < 8; i++)); do
	if ((i % 2)); then own4=$B4 own6=$B6; else own4=$A4 own6=$A6; fi
	podman_run "par$i" --egress "allow $own4 tcp/8080; allow $own6 tcp/8080" -- /bin/sleep 3600 &
	pids+=($!)
	par+=("par$i")
done
failed=()
for i in "${!pids[@]}"; do
	wait "${pids[i]}" || failed+=("${par[i]}: $(tail -n 3 "$E2E_TMP/${par[i]}.err")")
done
if [ ${#failed[@]} -eq 0 ]; then pass "8 containers started in parallel"; else fail "8 containers started in parallel" "${failed[@]}"; fi
bad=()
for ((i = 0; i < 8; i++)); do
	if ((i % 2)); then own4=$B4 own6=$B6 oth4=$A4 oth6=$A6; else own4=$A4 own6=$A6 oth4=$B4 oth6=$B6; fi
	podman_wait_v6 "par$i" || true
	pcw "par$i" connect "$own4" 8080
	[ "$W_OUT" = ok ] || bad+=("par$i -> $own4: $W_OUT (want ok)")
	pcw "par$i" connect "$own6" 8080
	[ "$W_OUT" = ok ] || bad+=("par$i -> $own6: $W_OUT (want ok)")
	pcw "par$i" connect "$oth4" 8080
	[ "$W_OUT" = EPERM ] || bad+=("par$i -> $oth4: $W_OUT (want EPERM)")
	pcw "par$i" connect "$oth6" 8080
	[ "$W_OUT" = EPERM ] || bad+=("par$i -> $oth6: $W_OUT (want EPERM)")
done
if [ ${#bad[@]} -eq 0 ]; then
	pass "each reaches its own peer and gets EPERM for the other (IPv4 and IPv6)"
else
	fail "each reaches its own peer and gets EPERM for the other (IPv4 and IPv6)" "${bad[@]}"
fi
ids=()
for c in "${par[@]}"; do ids+=("$(podman_id "$c")"); done
eps=$(for i in "${ids[@]}"; do weir_record "$i" | jq -r '.endpoint // empty'; done)
is "$(sort -u <<<"$eps" | grep -c . || true)" 8 "weir list shows 8 distinct endpoints"
pids=()
for c in "${par[@]}"; do
	podman_stop "$c" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
left=()
for ep in $eps; do
	[ ! -e "$WEIR_BPFFS/endpoints/$ep" ] || left+=("$WEIR_BPFFS/endpoints/$ep")
done
for i in "${ids[@]}"; do
	[ "$(weir_record "$i" | jq -r .state)" = stopped ] || left+=("$i: record not stopped")
	[ ! -d "$(cgroup2_mount)/libpod_parent/libpod-$i" ] || left+=("$i: cgroup remains")
done
if [ ${#left[@]} -eq 0 ]; then
	pass "stopped in parallel: no endpoint folder or cgroup left, records stopped"
else
	fail "stopped in parallel: no endpoint folder or cgroup left, records stopped" "${left[@]}"
fi

done_testing
