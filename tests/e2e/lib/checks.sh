# shellcheck shell=bash
# Checks shared by the runtime suites (runc.t, podman.t). Source common.sh first.
#
# Each suite says once how it reaches its containers and peers:
#
#   checks_setup WRUN A4 B4 A6 B6
#     WRUN NAME WTOOL-ARGS...  runs wtool in the suite's container NAME through wrun
#                              (runc.t: cw, podman.t: pcw)
#     A4 B4 A6 B6              the addresses of peer A and peer B; A is the one policies
#                              allow, B the one they leave out
#
# The checks below then take what differs from call to call: the container's name (in the
# descriptions too), its weir id, a peer-side runner. Each prints a fixed number of TAP
# lines, written in its comment.
#
# Counter checks walk a chain of `weir stats` snapshots: snap_start ID takes the first,
# snap_next ID the next; SNAP_PREV and SNAP are the last two, snap_delta PATH the change of
# one counter between them.

CHK_W='' CHK_A4='' CHK_B4='' CHK_A6='' CHK_B6=''

checks_setup() {
	CHK_W=$1 CHK_A4=$2 CHK_B4=$3 CHK_A6=$4 CHK_B6=$5
}

# chk_addrs FAM: sets a and b, peer A's and peer B's address of IPv FAM (4 or 6).
chk_addrs() {
	if [ "$1" = 4 ]; then a=$CHK_A4 b=$CHK_B4; else a=$CHK_A6 b=$CHK_B6; fi
}

# none_left DESC [PROBLEM...]: pass when no problem is given, else fail listing them.
none_left() {
	local desc=$1
	shift
	if [ $# -eq 0 ]; then pass "$desc"; else fail "$desc" "$@"; fi
}

# ---------------------------------------------------------------------------------------
# Snapshots

SNAP_PREV='' SNAP=''

snap_start() { SNAP_PREV='' SNAP=$(weir_snapshot "$1"); }
snap_next() { SNAP_PREV=$SNAP SNAP=$(weir_snapshot "$1"); }

# snap_delta PATH...: the change of each counter from SNAP_PREV to SNAP, space-separated.
snap_delta() {
	local p out=()
	for p in "$@"; do
		out+=("$(stats_delta "$SNAP_PREV" "$SNAP" "$p")")
	done
	echo "${out[*]}"
}

# ---------------------------------------------------------------------------------------
# Lifecycle

# check_record_running NAME ID MODE CGROUP: 2 tests. weir's record of ID says running in
# MODE, its endpoint folder is pinned and programs are attached to CGROUP.
check_record_running() {
	local name=$1 id=$2 mode=$3 cg=$4 rec ep
	rec=$(weir_record "$id")
	if jq -e --arg m "$mode" '.state == "running" and .mode == $m and (.endpoint != null)' \
		<<<"${rec:-null}" >/dev/null 2>&1; then
		pass "$name: weir list shows it running, mode $mode"
	else
		fail "$name: weir list shows it running, mode $mode" "id $id" "record: ${rec:-<none>}"
	fi
	ep=$(jq -r '.endpoint // empty' <<<"${rec:-null}")
	if [ -n "$ep" ] && [ -d "$WEIR_BPFFS/endpoints/$ep" ] && [ -n "$(cgroup_progs "$cg")" ]; then
		pass "$name: endpoint folder $WEIR_BPFFS/endpoints/$ep and programs on its cgroup"
	else
		fail "$name: endpoint folder and programs on its cgroup" "endpoint: '$ep'" "cgroup: $cg"
		diag_block "bpftool cgroup show" "$(cgroup_progs "$cg")"
	fi
}

# check_record_stopped NAME ID EP CGROUP [PROBLEM...]: 1 test, after the runtime stopped
# and removed the container that ran with endpoint EP: no cgroup, no endpoint folder, a
# stopped record, and none of the PROBLEMs the suite found itself. Sets FINAL_STATS to
# what weir stats shows afterwards.
check_record_stopped() {
	local name=$1 id=$2 ep=$3 cg=$4 rec
	shift 4
	local left=("$@")
	[ ! -d "$cg" ] || left+=("cgroup $cg still there: $(cgroup_progs "$cg")")
	[ -n "$ep" ] || left+=("no endpoint number was recorded while it ran")
	[ -z "$ep" ] || [ ! -e "$WEIR_BPFFS/endpoints/$ep" ] || left+=("$WEIR_BPFFS/endpoints/$ep still there")
	rec=$(weir_record "$id")
	jq -e '.state == "stopped"' <<<"${rec:-null}" >/dev/null 2>&1 || left+=("record: ${rec:-<none>} (want state stopped)")
	none_left "$name: after stop nothing is attached or pinned, the record says stopped" "${left[@]}"
	FINAL_STATS=$(weir_snapshot "$id")
}

# ---------------------------------------------------------------------------------------
# 1. allow and deny

# basic_policy ECHO-PORT: the egress-only policy check_basic expects: peer A on tcp/8080,
# udp/5000, udp/ECHO-PORT and icmp, in both families.
basic_policy() {
	echo "allow $CHK_A4 tcp/8080,udp/5000,udp/$1,icmp; allow $CHK_A6 tcp/8080,udp/5000,udp/$1,icmp"
}

# check_basic NAME FAM ECHO-PORT [--bulk] [--closed-udp-port P]: 10 tests, 11 or 12 with
# the options. Under basic_policy, in IPv FAM: TCP, UDP and ICMP to peer A pass (peer A
# runs a UDP echo server on ECHO-PORT), to peer B or another port they fail at once.
#   --bulk               also a 300 KB TCP transfer to peer A
#   --closed-udp-port P  also UDP to peer A's port P (outside the policy) fails
check_basic() {
	local name=$1 fam=$2 echo_port=$3 bulk=0 closed='' a b
	shift 3
	while [ $# -gt 0 ]; do
		case $1 in
		--bulk) bulk=1; shift ;;
		--closed-udp-port) closed=$2; shift 2 ;;
		*) bail_out "check_basic: unknown option $1" ;;
		esac
	done
	chk_addrs "$fam"
	"$CHK_W" "$name" connect "$a" 8080
	wlike '^ok$' "IPv$fam: allowed TCP connect to peer A $a:8080 succeeds"
	"$CHK_W" "$name" tcp-rr "$a" 8080
	wlike '^ok reply="received 64"$' "IPv$fam: reply from peer A's server arrives (egress-only policy)"
	if [ "$bulk" = 1 ]; then
		"$CHK_W" "$name" tcp-send "$a" 8080 300000
		wlike '^ok sent=300000 reply="received 300000"$' "IPv$fam: 300 KB TCP transfer to peer A completes"
	fi
	"$CHK_W" "$name" connect "$b" 8080
	wlike '^EPERM$' "IPv$fam: TCP connect to peer B ($b, not in the policy) fails with EPERM"
	cmp_num "$W_MS" -lt "$EPERM_MAX_MS" "IPv$fam: ... at once (${W_MS} ms), not after a timeout"
	"$CHK_W" "$name" connect "$a" 8000
	wlike '^EPERM$' "IPv$fam: TCP connect to peer A on a port outside the policy fails with EPERM"
	"$CHK_W" "$name" udp-send "$a" 5000 3 100
	wlike '^ok sent=3 ' "IPv$fam: allowed UDP sendto succeeds"
	"$CHK_W" "$name" udp-rr "$a" "$echo_port"
	wlike '^ok$' "IPv$fam: UDP reply from peer A's echo server arrives"
	"$CHK_W" "$name" udp-send "$b" 5000 1 100
	wlike '^EPERM$' "IPv$fam: UDP sendto peer B fails with EPERM"
	if [ -n "$closed" ]; then
		"$CHK_W" "$name" udp-send "$a" "$closed" 1 100
		wlike '^EPERM$' "IPv$fam: UDP sendto peer A on a port outside the policy fails with EPERM"
	fi
	"$CHK_W" "$name" ping "$a" 2
	wlike '^ok sent=2 received=2' "IPv$fam: allowed ICMP echo gets its replies"
	"$CHK_W" "$name" ping "$b" 1 56 500
	wlike '^(EPERM|ETIMEDOUT)' "IPv$fam: ICMP echo to peer B fails (EPERM or dropped)"
}

# ---------------------------------------------------------------------------------------
# 2. counters equal exactly what was sent
#
# Policy: peer A udp/5000 and icmp (both families). The datagrams sent to peer A's sink:
CNT_N4=7 CNT_SIZE4=100 CNT_N6=5 CNT_SIZE6=1000
CNT_PC4=3 CNT_PSIZE4=56 CNT_PC6=2 CNT_PSIZE6=200

# check_stats_shape NAME ID: 3 tests, and snap_start ID. Call when ID's counters are quiet.
check_stats_shape() {
	local name=$1 id=$2
	snap_start "$id"
	is "$(jq -r '[.id, .state, .mode] | join(" ")' <<<"$SNAP")" "$id running enforce" "$name: weir stats shows id, state and mode"
	is "$(missing_list_keys "$(weir_record "$id")")" "" "weir list --json entry has every documented key (id name endpoint state mode source cgroup)"
	is "$(missing_stats_keys "$SNAP")" "" "weir stats ID --json has every documented key and counter"
}

# check_udp_counters NAME ID: 2 tests. CNT_N4 and CNT_N6 datagrams to peer A's udp/5000
# count exactly (payload + UDP + IP header) in egress.udp. Leaves SNAP after the IPv6 ones.
check_udp_counters() {
	local name=$1 id=$2
	"$CHK_W" "$name" udp-send "$CHK_A4" 5000 "$CNT_N4" "$CNT_SIZE4"
	snap_next "$id"
	is "$(snap_delta .egress.udp.packets .egress.udp.bytes)" "$CNT_N4 $((CNT_N4 * (20 + 8 + CNT_SIZE4)))" \
		"IPv4 UDP: egress.udp = $CNT_N4 packets, $CNT_N4*(20+8+$CNT_SIZE4) bytes"
	"$CHK_W" "$name" udp-send "$CHK_A6" 5000 "$CNT_N6" "$CNT_SIZE6"
	snap_next "$id"
	is "$(snap_delta .egress.udp.packets .egress.udp.bytes)" "$CNT_N6 $((CNT_N6 * (40 + 8 + CNT_SIZE6)))" \
		"IPv6 UDP: egress.udp = $CNT_N6 packets, $CNT_N6*(40+8+$CNT_SIZE6) bytes"
}

# check_icmp_counters NAME ID: 4 tests. Echo requests to peer A and their replies count
# exactly in egress.icmp and ingress.icmp, IPv4 then IPv6.
check_icmp_counters() {
	local name=$1 id=$2 fam a b pc psize hdr
	for fam in 4 6; do
		chk_addrs "$fam"
		if [ "$fam" = 4 ]; then pc=$CNT_PC4 psize=$CNT_PSIZE4 hdr=20; else pc=$CNT_PC6 psize=$CNT_PSIZE6 hdr=40; fi
		"$CHK_W" "$name" ping "$a" "$pc" "$psize"
		snap_next "$id"
		is "$(snap_delta .egress.icmp.packets .egress.icmp.bytes)" "$pc $((pc * (hdr + 8 + psize)))" \
			"IPv$fam ICMP: egress.icmp = $pc echo requests, $pc*($hdr+8+$psize) bytes"
		is "$(snap_delta .ingress.icmp.packets .ingress.icmp.bytes)" "$pc $((pc * (hdr + 8 + psize)))" \
			"IPv$fam ICMP: ingress.icmp = $pc echo replies, same bytes"
	done
}

# check_denied_connect_counter NAME ID: 1 test. A connect() to peer B fails with EPERM and
# counts 1 in egress.denied_connects.
check_denied_connect_counter() {
	local name=$1 id=$2
	"$CHK_W" "$name" connect "$CHK_B4" 8080
	snap_next "$id"
	is "$W_OUT $(snap_delta .egress.denied_connects)" "EPERM 1" \
		"a denied connect() counts 1 in egress.denied_connects"
}

# check_final_counters SNAPSHOT: 1 test, after check_record_stopped: FINAL_STATS says
# stopped and still holds the counters of SNAPSHOT (the last one taken while it ran).
check_final_counters() {
	local f='[.egress.udp.packets, .egress.udp.bytes, .egress.icmp.packets, .ingress.icmp.packets]'
	is "$(jq -r "[.state] + $f | join(\" \")" <<<"$FINAL_STATS")" \
		"stopped $(jq -r "$f | join(\" \")" <<<"$1")" \
		"after stop, weir stats still shows the final counters (state stopped)"
}

# ---------------------------------------------------------------------------------------
# 3. enforced before the workload's first instruction

# check_first_instruction RUN-FIRST: 3 tests. RUN-FIRST NAME POLICY ADDR runs a container
# NAME with egress POLICY whose workload is `wtool connect ADDR 8080 3000`, waits for it to
# exit and prints its stdout.
check_first_instruction() {
	local run=$1
	is "$("$run" first4 "allow $CHK_A4 tcp/8080" "$CHK_B4")" EPERM "first instruction connect() to a denied IPv4 address fails with EPERM"
	is "$("$run" first6 "allow $CHK_A6 tcp/8080" "$CHK_B6")" EPERM "first instruction connect() to a denied IPv6 address fails with EPERM"
	is "$("$run" firstok "allow $CHK_A4 tcp/8080" "$CHK_A4")" ok "first instruction connect() to an allowed address succeeds"
}

# ---------------------------------------------------------------------------------------
# 4. replies pass in both directions; unsolicited traffic does not

# Policies of the two containers: `rep` may reach peer A's tcp/8080 and its UDP echo
# server, ingress is default-deny; `ing` may be reached on tcp/9000 from the addresses
# given, egress is default-deny. Both deny by one rule for an address nobody has.
# shellcheck disable=SC2034 # used by the files that source this one
CHK_NOBODY=10.255.255.254/32
rep_policy() { echo "allow $CHK_A4 tcp/8080,udp/$1; allow $CHK_A6 tcp/8080,udp/$1"; }
ing_policy() { echo "allow $1 tcp/9000; allow $2 tcp/9000"; }

# check_reply FAM NAME PROTO [ECHO-PORT]: 1 test. The reply to a TCP request to peer A's
# tcp/8080 (or a UDP one to its echo server) reaches NAME although its ingress is
# default-deny.
check_reply() {
	local fam=$1 name=$2 proto=$3 a b
	chk_addrs "$fam"
	if [ "$proto" = tcp ]; then
		"$CHK_W" "$name" tcp-rr "$a" 8080
		wlike '^ok reply=' "IPv$fam: TCP reply arrives although ingress is default-deny"
	else
		"$CHK_W" "$name" udp-rr "$a" "$4"
		wlike '^ok$' "IPv$fam: UDP reply arrives although ingress is default-deny"
	fi
}

# check_dropped PEER-WRUN ADDR PORT DESC: 1 test. PEER-WRUN WTOOL-ARGS... runs wtool on a
# peer; its connection to the container's ADDR:PORT times out (dropped, not refused).
check_dropped() {
	"$1" connect "$2" "$3" 1000
	wlike '^ETIMEDOUT$' "$4"
}

# check_served PEER-WRUN WHO IP4 IP6: 2 tests. A client on the peer (WHO) gets the reply of
# the container's tcp/9000 server at IP4 and IP6 (ingress allow, egress default-deny).
check_served() {
	local peer=$1 who=$2
	"$peer" tcp-rr "$3" 9000
	wlike '^ok reply="received 64"$' "IPv4: $who's client gets the reply of the container's server (ingress allow, egress default-deny)"
	"$peer" tcp-rr "$4" 9000
	wlike '^ok reply="received 64"$' "IPv6: $who's client gets the reply of the container's server"
}

# check_egress_closed NAME: 1 test. NAME cannot open a connection (egress default-deny).
check_egress_closed() {
	"$CHK_W" "$1" connect "$CHK_A4" 8080
	wlike '^EPERM$' "the container itself cannot open a connection (egress default-deny)"
}

# ---------------------------------------------------------------------------------------
# 5. deny overrides allow; port ranges

# ovr_policy DENY4 DENY6 ALLOW6 [ALLOW4]: allow ALLOW4 (default 10.0.0.0/8) with peer B's DENY4
# inside it, and peer B's DENY6 written before ALLOW6 (which holds both peers' IPv6 addresses).
ovr_policy() { echo "allow ${4:-10.0.0.0/8}; deny $1; deny $2; allow $3"; }

# check_override NAME DENY4 DENY6 ALLOW6 [ALLOW4]: 4 tests. Under ovr_policy: peer A is
# reachable, peer B gets EPERM, in both families.
check_override() {
	local name=$1 deny4=$2 deny6=$3 allow6=$4 allow4=${5:-10.0.0.0/8}
	"$CHK_W" "$name" connect "$CHK_A4" 8080
	wlike '^ok$' "allow $allow4: peer A $CHK_A4 reachable"
	"$CHK_W" "$name" connect "$CHK_B4" 8080
	wlike '^EPERM$' "deny $deny4 inside allow $allow4: peer B $CHK_B4 gets EPERM"
	"$CHK_W" "$name" connect "$CHK_A6" 8080
	wlike '^ok$' "allow $allow6: peer A $CHK_A6 reachable"
	"$CHK_W" "$name" connect "$CHK_B6" 8080
	wlike '^EPERM$' "deny $deny6 written before allow $allow6: peer B $CHK_B6 gets EPERM"
}

range_policy() { echo "allow $CHK_A4 tcp/8000-8010,udp/5000-5001; deny $CHK_A4 tcp/8005; allow $CHK_A6 tcp/8000-8010"; }

# check_ranges NAME: 8 tests. Under range_policy: the bounds of a range are in, the ports
# just outside are not, a deny of one port overrides the range (on that address only).
check_ranges() {
	local name=$1 p
	for p in 8000 8010; do
		"$CHK_W" "$name" connect "$CHK_A4" $p
		wlike '^ok$' "tcp/8000-8010: port $p (bound) allowed"
	done
	for p in 7999 8011; do
		"$CHK_W" "$name" connect "$CHK_A4" $p
		wlike '^EPERM$' "tcp/8000-8010: port $p (just outside) denied"
	done
	"$CHK_W" "$name" connect "$CHK_A4" 8005
	wlike '^EPERM$' "deny $CHK_A4 tcp/8005 overrides the allowed range"
	"$CHK_W" "$name" connect "$CHK_A6" 8005
	wlike '^ok$' "... while $CHK_A6 tcp/8005 (no deny) is allowed"
	"$CHK_W" "$name" udp-send "$CHK_A4" 5001 1 10
	wlike '^ok' "udp/5000-5001: port 5001 allowed"
	"$CHK_W" "$name" udp-send "$CHK_A4" 5002 1 10
	wlike '^EPERM$' "udp/5000-5001: port 5002 denied"
}

# ---------------------------------------------------------------------------------------
# 6. audit mode (policy: peer A tcp/8080 only)

AUD_N=6 AUD_SIZE=50

# check_audit_connect NAME ID: 2 tests, from snap_start ID (take it when quiet). A connect
# to peer B succeeds and counts in audit_denied_connects, not in denied_connects.
check_audit_connect() {
	local name=$1 id=$2
	snap_start "$id"
	"$CHK_W" "$name" connect "$CHK_B4" 8080
	wlike '^ok$' "audit: a connect outside the policy succeeds"
	snap_next "$id"
	is "$(snap_delta .egress.audit_denied_connects .egress.denied_connects)" "1 0" \
		"audit: counted in egress.audit_denied_connects, not in denied_connects"
}

# check_audit_udp NAME ID: 2 tests. AUD_N datagrams of AUD_SIZE bytes to peer B's sink are
# sent and count exactly in egress.audit_denied.
check_audit_udp() {
	local name=$1 id=$2
	"$CHK_W" "$name" udp-send "$CHK_B4" 5000 "$AUD_N" "$AUD_SIZE"
	wlike "^ok sent=$AUD_N " "audit: UDP to a denied peer is sent"
	snap_next "$id"
	is "$(snap_delta .egress.audit_denied.packets .egress.audit_denied.bytes)" "$AUD_N $((AUD_N * (20 + 8 + AUD_SIZE)))" \
		"audit: egress.audit_denied = $AUD_N packets, $AUD_N*(20+8+$AUD_SIZE) bytes"
}

# check_audit_nothing_dropped NAME ID: 2 tests. An ICMPv6 echo to peer B gets its replies;
# nothing was dropped or denied all along.
check_audit_nothing_dropped() {
	local name=$1 id=$2
	"$CHK_W" "$name" ping "$CHK_B6" 2
	wlike '^ok sent=2 received=2' "audit: ICMPv6 echo to a denied peer gets its replies"
	snap_next "$id"
	is "$(jq -r '[.egress.policy_dropped.packets, .ingress.policy_dropped.packets, .egress.denied_connects] | join(" ")' <<<"$SNAP")" \
		"0 0 0" "audit: nothing dropped, no connect denied"
}

# ---------------------------------------------------------------------------------------
# 7. bad annotations

# LABEL|KEY|VALUE|TOKEN: a value weir refuses and what its message must name. The suites
# add their own cases (values they pass in their own way).
# shellcheck disable=SC2034 # used by the files that source this one
BAD_CASES=(
	"cidr|egress.weir.io|allow 10.0.0.0/33 tcp/80|10.0.0.0/33"
	"port|egress.weir.io|allow 10.0.0.1 tcp/70000|70000"
	"proto|ingress.weir.io|allow any sctp/80|sctp"
	"key|bogus.weir.io|1|bogus.weir.io"
	"empty|egress.weir.io|allow 10.0.0.1 tcp/80;;deny any|"
)

# check_refused LABEL WHAT RC ERR KEY TOKEN: 1 test. The start failed (RC not 0) and its
# error ERR names KEY and TOKEN. WHAT says who refused ("runc refuses the container").
check_refused() {
	local label=$1 what=$2 rc=$3 err=$4 key=$5 token=$6
	local desc="$label: $what; its error names $key${token:+ and \"$token\"}"
	if [ "$rc" -ne 0 ] && [[ $err == *"$key"* ]] && [[ $err == *"$token"* ]]; then
		pass "$desc"
	else
		fail "$desc" "exit $rc"
		diag_block stderr "${err:0:2000}"
	fi
}

# ---------------------------------------------------------------------------------------
# 8. containers started at once

# par_policy OWN4 OWN6: egress to one peer's tcp/8080.
par_policy() { echo "allow $1 tcp/8080; allow $2 tcp/8080"; }

# par_reach NAME OWN4 OWN6 OTHER4 OTHER6: no test; appends to PAR_BAD what NAME got wrong
# under par_policy OWN4 OWN6: its own peer must answer, the other give EPERM.
PAR_BAD=()
par_reach() {
	local name=$1 addr want i=0
	shift
	for addr in "$@"; do
		if [ $i -lt 2 ]; then want=ok; else want=EPERM; fi
		i=$((i + 1))
		"$CHK_W" "$name" connect "$addr" 8080
		[ "$W_OUT" = "$want" ] || PAR_BAD+=("$name -> $addr: $W_OUT (want $want)")
	done
}

# check_par_endpoints_stopped STOP ID-OF CGROUP-OF NAME...: 2 tests. The running
# containers NAME... have distinct endpoints; STOP NAME, run for all of them at once, leaves
# no endpoint folder, no cgroup (CGROUP-OF NAME ID) and a stopped record of each (ID-OF NAME).
check_par_endpoints_stopped() {
	local stop=$1 id_of=$2 cg_of=$3
	shift 3
	local names=("$@") ids=() eps pids=() left=() i p ep
	for i in "${!names[@]}"; do ids[i]=$("$id_of" "${names[i]}"); done
	eps=$(for i in "${ids[@]}"; do weir_record "$i" | jq -r '.endpoint // empty'; done)
	is "$(sort -u <<<"$eps" | grep -c . || true)" "${#names[@]}" "weir list shows ${#names[@]} distinct endpoints"
	for i in "${!names[@]}"; do
		"$stop" "${names[i]}" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || true; done
	for ep in $eps; do
		[ ! -e "$WEIR_BPFFS/endpoints/$ep" ] || left+=("$WEIR_BPFFS/endpoints/$ep")
	done
	for i in "${!names[@]}"; do
		[ "$(weir_record "${ids[i]}" | jq -r .state)" = stopped ] || left+=("${names[i]}: record not stopped")
		[ ! -d "$("$cg_of" "${names[i]}" "${ids[i]}")" ] || left+=("${names[i]}: cgroup remains")
	done
	none_left "stopped in parallel: no endpoint folder or cgroup left, records stopped" "${left[@]}"
}
