#!/bin/bash
# weir end to end with podman (runc runtime, netavark): weir-hook attached through hooks.d
# (createRuntime + poststop), containers from a busybox-static rootfs (--rootfs, offline).
#
#   prove -v tests/e2e/podman.t      (root; `make` first)
#
# Peers are other podman containers on a network this test creates (--internal: nothing
# leaves the bridge): peer A 10.212.200.10 / fd79:0:0:a::10, peer B 10.213.200.10 /
# fd79:0:0:b::10 (or the next free pair: lib/podman.sh), both without weir annotations, serving tcp 8080 8000 8005 8010 9000,
# udp sink 5000 and udp echo 5001. See lib/podman.sh.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/podman.sh
. "$E2E_LIB/podman.sh"
# shellcheck source=lib/checks.sh
. "$E2E_LIB/checks.sh"

# Against an installed package (tests/pkg/deb.t), podman runs the package's hook with the node's
# own configuration: the suite reads the node's weir then, not one of its own.
if [ -n "${PODMAN_HOOKS_INSTALLED:-}" ]; then e2e_init --node-weir; else e2e_init; fi
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
# peerA WTOOL-ARGS..., peerB WTOOL-ARGS...: wtool in a peer container.
peerA() { wrun podman_exec peerA /bin/wtool "$@"; }
peerB() { wrun podman_exec peerB /bin/wtool "$@"; }
checks_setup pcw "$A4" "$B4" "$A6" "$B6"

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
	check_record_running "$1" "$(podman_id "$1")" "$2" "$(podman_cgroup "$1")"
}

# stop_and_check NAME: podman stop + rm (podman runs poststop), then nothing may remain
# but a stopped record. Sets FINAL_STATS.
stop_and_check() {
	local name=$1 id ep cg rc=0
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
	check_record_stopped "$name" "$id" "$ep" "$cg"
}

# first_run NAME POLICY ADDR: see check_first_instruction.
first_run() {
	podman_run "$1" --fg --rm --egress "$2" -- /bin/wtool connect "$3" 8080 3000 || true
	cat "$E2E_TMP/$1.out"
}

peer_log() { "$PODMAN" logs "$(podman_name "peer$1")" 2>/dev/null; }

# ---------------------------------------------------------------------------------------
diag "1. allow and deny, TCP/UDP/ICMP, IPv4 and IPv6 (egress-only policy)"
start basic "${QUIET[@]}" --egress "$(basic_policy 5001)" -- /bin/sleep 3600
check_running basic enforce
podman_wait_v6 basic || diag "basic: IPv6 address still tentative"
for fam in 4 6; do
	check_basic basic $fam 5001
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
check_stats_shape cnt "$id"
check_udp_counters cnt "$id"
check_icmp_counters cnt "$id"
check_denied_connect_counter cnt "$id"
cnt_received() { echo "$(peer_log A | grep -c "^udp $CNT_SIZE4 from $ip4\$") $(peer_log A | grep -c "^udp $CNT_SIZE6 from $ip6\$")"; }
cnt_all_received() { [ "$(cnt_received)" = "$CNT_N4 $CNT_N6" ]; }
retry 5 cnt_all_received || true
is "$(cnt_received)" "$CNT_N4 $CNT_N6" "peer A received every datagram ($CNT_N4 + $CNT_N6)"
last=$SNAP
stop_and_check cnt
check_final_counters "$last"

# ---------------------------------------------------------------------------------------
diag "3. enforced before the workload's first instruction"
check_first_instruction first_run

# ---------------------------------------------------------------------------------------
diag "4. replies pass in both directions; unsolicited traffic does not"
start rep --egress "$(rep_policy 5001)" --ingress "allow $CHK_NOBODY" -- /bin/wtool tcp-server 9000
podman_wait_v6 rep || true
check_reply 4 rep tcp
check_reply 6 rep tcp
check_reply 4 rep udp 5001
check_dropped peerA "$(podman_ip4 rep)" 9000 "an unsolicited connection from peer A to the container's server is dropped"
stop_and_check rep

start ing --ingress "$(ing_policy "$A4" "$A6")" --egress "allow $CHK_NOBODY" \
	-- /bin/sh -c 'wtool tcp-server 9000 & wtool tcp-server 9001 & wait'
podman_wait_v6 ing || true
retry 5 _podman_listening ing 2 || diag "servers in ing did not start"
ip4=$(podman_ip4 ing) ip6=$(podman_ip6 ing)
check_served peerA "peer A" "$ip4" "$ip6"
check_dropped peerB "$ip4" 9000 "peer B (not in the ingress policy) cannot connect"
check_dropped peerA "$ip6" 9001 "peer A cannot connect to a port outside the ingress policy"
check_egress_closed ing
stop_and_check ing

# ---------------------------------------------------------------------------------------
diag "5. deny overrides allow; port ranges"
start ovr --egress "$(ovr_policy "$POD_B4_NET" "$POD_B6_NET" "$POD_SUPER6" "$POD_SUPER4")" -- /bin/sleep 3600
podman_wait_v6 ovr || true
check_override ovr "$POD_B4_NET" "$POD_B6_NET" "$POD_SUPER6" "$POD_SUPER4"
stop_and_check ovr

start rng --egress "$(range_policy)" -- /bin/sleep 3600
podman_wait_v6 rng || true
check_ranges rng
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
check_audit_connect aud "$id"
check_audit_udp aud "$id"
aud_received() { peer_log B | grep -c "^udp $AUD_SIZE from $ip4\$"; }
retry 5 count_at_least "$AUD_N" aud_received || true
is "$(aud_received)" "$AUD_N" "audit: peer B received all $AUD_N datagrams"
check_audit_nothing_dropped aud "$id"
stop_and_check aud

# ---------------------------------------------------------------------------------------
diag "7. bad annotations: podman run fails with weir's message, nothing is left"
big=$(printf 'allow 10.1.2.3 tcp/80;%.0s' $(seq 4700))
bad_cases=(
	"${BAD_CASES[@]}"
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
	check_refused "$label" "podman run fails" "$rc" "$err" "$key" "$token"
	left=()
	cid=$(podman_cid "$name")
	[ -n "$cid" ] || left+=("podman wrote no container id (--cidfile)")
	[ -z "$("$PODMAN" ps -aq --filter "name=^$(podman_name "$name")\$")" ] || left+=("podman still lists the container")
	after_eps=$(endpoint_dirs)
	[ "$after_eps" = "$before_eps" ] || left+=("endpoint folders before: [${before_eps//$'\n'/ }], after: [${after_eps//$'\n'/ }]")
	if [ -n "$cid" ]; then
		rec=$(weir_record "$cid")
		[ -z "$rec" ] || left+=("weir record: $rec")
		cg=$(cgroup2_mount)/libpod_parent/libpod-$cid
		[ ! -d "$cg" ] || left+=("cgroup $cg exists, programs: $(cgroup_progs "$cg")")
	fi
	none_left "$label: nothing left (no container, endpoint folder, record or attached program)" "${left[@]}"
	"$PODMAN" rm -f "$(podman_name "$name")" >/dev/null 2>&1 || true
done

# ---------------------------------------------------------------------------------------
diag "8. eight containers started at once are all enforced"
par=()
pids=()
for ((i = 0; i < 8; i++)); do
	if ((i % 2)); then own4=$B4 own6=$B6; else own4=$A4 own6=$A6; fi
	podman_run "par$i" --egress "$(par_policy "$own4" "$own6")" -- /bin/sleep 3600 &
	pids+=($!)
	par+=("par$i")
done
failed=()
for i in "${!pids[@]}"; do
	wait "${pids[i]}" || failed+=("${par[i]}: $(tail -n 3 "$E2E_TMP/${par[i]}.err")")
done
none_left "8 containers started in parallel" "${failed[@]}"
for ((i = 0; i < 8; i++)); do
	if ((i % 2)); then own4=$B4 own6=$B6 oth4=$A4 oth6=$A6; else own4=$A4 own6=$A6 oth4=$B4 oth6=$B6; fi
	podman_wait_v6 "par$i" || true
	par_reach "par$i" "$own4" "$own6" "$oth4" "$oth6"
done
none_left "each reaches its own peer and gets EPERM for the other (IPv4 and IPv6)" "${PAR_BAD[@]}"
# par_cgroup NAME ID: where podman put the cgroup of ID (known after it stopped).
par_cgroup() { echo "$(cgroup2_mount)/libpod_parent/libpod-$2"; }
check_par_endpoints_stopped podman_stop podman_id par_cgroup "${par[@]}"
own_weir_empty

done_testing
