#!/bin/bash
# weir's security guards (security.weir.io) end to end with runc: every guarded action is tried
# from inside a real container (raw socket, ping, bind, sysctl write, unshare -U, mount, a port
# sweep of a closed range) and is refused, killed, quarantined or reported as the README says;
# the same actions succeed in an unguarded container; audit reports without blocking; the node
# baseline is enforced for a container without annotations and an annotation that loosens it
# is refused; guard events are counted, listed and, when nobody reads them, lost and counted.
#
#   prove -v tests/e2e/security.t        (root; `make test-build` first)
#
# The containers get CAP_NET_RAW, CAP_SYS_ADMIN and CAP_NET_ADMIN and a writable /proc/sys, so
# that what the guards refuse is not refused by the runtime first (the unguarded container
# shows it). Traffic goes only to the test's peer network namespace.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/runc.sh
. "$E2E_LIB/runc.sh"
# shellcheck source=lib/checks.sh
. "$E2E_LIB/checks.sh"
# shellcheck source=lib/guards.sh
. "$E2E_LIB/guards.sh"

guards_init

peer_create "$E2E_PREFIX"
peer_server "$E2E_TMP/peer-tcp8080.log" tcp-server 8080
A4=$PEER_A4 B4=$PEER_B4
SWEEP_LO=20000 SWEEP_HI=20039 # closed ports on the peer: each connect is reset

# ---------------------------------------------------------------------------------------
diag "1. guarded (enforce): each action refused, killed or quarantined; the runtime's own setup is not"
GUARDS="raw-sockets enforce families raw; bind enforce allow tcp/8080,udp/5353; \
sysctl enforce allow net.ipv4.ping_group_range; escape kill calls namespaces,mount; \
port-scan enforce threshold 20 window 30 quarantine 4"
sec_bundle grd 2 --ann "security.weir.io=$GUARDS" -- /bin/sleep 3600
start grd
id=$(runc_id grd)
like "$(weir_record "$id" | jq -r '.security // empty')" \
	'^raw-sockets=enforce bind=enforce sysctl=enforce escape=kill port-scan=enforce$' \
	"grd: weir list shows the guards as carried out"
gis grd EPERM "a raw IPv4 socket is refused with EPERM" raw 4
gis grd EPERM "a raw IPv6 socket is refused with EPERM" raw 6
wrun runc_exec grd /bin/ping -c 1 -W 2 "$A4"
if [ "$W_RC" != 0 ] && [[ $W_ERR == *"permission denied"* ]]; then
	pass "grd: ping (busybox, a raw ICMP socket) fails: permission denied"
else
	fail "grd: ping (busybox, a raw ICMP socket) fails: permission denied" "exit $W_RC: $W_OUT $W_ERR"
fi
gis grd ok "a packet socket is allowed (families raw only)" packet
gis grd EPERM "bind tcp/8081 (not listed) is refused" bind tcp 8081
gis grd ok "bind tcp/8080 (listed) is allowed" bind tcp 8080
gis grd EPERM "bind udp/53 (not listed) is refused" bind udp 53
gis grd ok "bind udp/5353 (listed) is allowed" bind udp 5353
gis grd ok "bind to port 0 (the kernel's choice) is allowed" bind tcp 0
gis grd EPERM "writing net.ipv4.ip_forward is refused" sysctl-write net.ipv4.ip_forward 1
gis grd ok "writing net.ipv4.ping_group_range (allowed) works" sysctl-write net.ipv4.ping_group_range "0 2147483647"
gis grd ok "reading a sysctl works (reads are not guarded)" sysctl-read net.ipv4.ip_forward
killed grd "unshare(CLONE_NEWUSER) is killed (SIGKILL)" /bin/gtool unshare-user
killed grd "busybox unshare -U is killed" /bin/unshare -U /bin/true
killed grd "a mount is killed" /bin/gtool mount /tmp
gis grd ok "runc exec still works after the kills (its setup before its exec is the runtime's)" bind tcp 8080

g grd sweep "$A4" "$SWEEP_LO" "$SWEEP_HI" 300
refused=$(awk '{print $4}' <<<"$W_OUT") eperm=$(awk '{print $8}' <<<"$W_OUT")
if [[ $refused =~ ^[0-9]+$ && $eperm =~ ^[0-9]+$ ]] && [ "$refused" -ge 19 ] && [ "$refused" -le 21 ] &&
	[ $((refused + eperm)) -eq 40 ]; then
	pass "grd: a sweep of 40 closed ports: ~20 reset, then quarantined (EPERM) ($W_OUT)"
else
	fail "grd: a sweep of 40 closed ports: ~20 reset, then quarantined (EPERM)" "sweep: $W_OUT"
fi
g grd sweep "$A4" 8080 8080 1000
like "$W_OUT" "eperm 1 " "grd: during the quarantine an open port is refused too"
deadline=$((SECONDS + 20))
until g grd sweep "$A4" 8080 8080 1000 && [[ $W_OUT == "ok 1 "* ]]; do
	[ $SECONDS -lt $deadline ] || break
	sleep 0.5
done
like "$W_OUT" "^ok 1 " "grd: after the quarantine (4 s) the open port is reachable again"

has_event "$id" "grd: event: raw-sockets denied, with the process" \
	'.guard == "raw-sockets" and .action == "denied" and .comm == "gtool" and .family == "inet" and (.pid > 0)'
has_event "$id" "grd: event: bind tcp/8081 denied" \
	'.guard == "bind" and .action == "denied" and .port == 8081 and .protocol == "tcp"'
has_event "$id" "grd: event: sysctl write of net/ipv4/ip_forward denied" \
	'.guard == "sysctl" and .action == "denied" and .sysctl == "net/ipv4/ip_forward" and .write'
has_event "$id" "grd: event: unshare killed, with syscall, arguments and call group" \
	'.guard == "escape" and .action == "killed" and .syscall == "unshare" and .call == "namespaces" and .args[0] == 268435456 and .comm == "gtool"'
has_event "$id" "grd: event: mount killed" \
	'.guard == "escape" and .action == "killed" and .syscall == "mount" and .call == "mount"'
has_event "$id" "grd: event: port scan, quarantined" \
	'.guard == "port-scan" and .action == "quarantined" and .probes >= 20 and .quarantine_ms == 4000 and .last_target == "'"$A4"'"'
st=$(weir_snapshot "$id")
is "$(guard_count "$st" raw-sockets denied) $(guard_count "$st" bind denied) $(guard_count "$st" sysctl denied) $(guard_count "$st" escape killed) $(guard_count "$st" port-scan quarantined)" \
	"3 2 1 3 1" "grd: weir stats counts raw-sockets 3 (2 + ping), bind 2, sysctl 1 denied; escape 3 killed; 1 quarantine"
cmp_num "$(jq -r '.guards.quarantine_drops // 0' <<<"$st")" -ge 21 "grd: quarantine drops counted (the refused connects)"
m=$("$WEIR" metrics 2>/dev/null | grep "^weir_guard_events_total{.*container_id=\"$id\".*guard=\"escape\",action=\"killed\"}" || true)
like "$m" ' 3$' "grd: metric weir_guard_events_total{guard=\"escape\",action=\"killed\"} is 3"
line=$("$WEIR" events "$id" 2>/dev/null | grep ' escape ' | head -n1)
like "$line" "escape +killed +unshare \(namespaces\) pid [0-9]+ \(gtool\)" "grd: weir events prints one line per event"
top=$("$WEIR" top --once --interval 0.2 2>/dev/null || true)
# numbers are right-aligned in 9 columns: the GUARD cell ends where its title ends
col=$(grep -m1 ' GUARD ' <<<"$top" | awk '{ print index($0, "GUARD") + 4 }')
val=$(grep -- "$id" <<<"$top" | awk -v c="${col:-9}" '{ print substr($0, c - 8, 9) }' | tr -d ' ')
is "$val" 10 "grd: weir top's GUARD column counts its 10 guard events (3+2+1+3+1)"

# ---------------------------------------------------------------------------------------
diag "2. the same actions in an unguarded container succeed"
sec_bundle open 1 --ann "monitor.weir.io=counters" -- /bin/sleep 3600
start open
gis open ok "a raw socket works" raw 4
ok_run "open: ping works" runc_exec open /bin/ping -c 1 -W 2 "$A4"
gis open ok "a packet socket works" packet
gis open ok "bind tcp/8081 works" bind tcp 8081
gis open ok "writing a sysctl works" sysctl-write net.ipv4.ip_forward 1
gis open ok "unshare(CLONE_NEWUSER) works" unshare-user
gis open ok "a mount works" mount /tmp
g open sweep "$A4" "$SWEEP_LO" "$SWEEP_HI" 300
like "$W_OUT" "^ok 0 refused 40 timeout 0 eperm 0" "open: a sweep of 40 closed ports: 40 resets, nothing refused"
is "$(events_of "$(runc_id open)" | wc -l)" 0 "open: no guard event"

# ---------------------------------------------------------------------------------------
diag "3. audit: everything reported, nothing refused"
sec_bundle aud 3 --ann "security.weir.io=raw-sockets audit; bind audit allow tcp/8080; sysctl audit; escape audit calls namespaces,mount; port-scan audit threshold 10" \
	-- /bin/sleep 3600
start aud
aid=$(runc_id aud)
gis aud ok "a raw socket works" raw 4
gis aud ok "a packet socket works" packet
gis aud ok "bind tcp/8081 works" bind tcp 8081
gis aud ok "writing a sysctl works" sysctl-write net.ipv4.ip_forward 1
gis aud ok "unshare(CLONE_NEWUSER) works" unshare-user
gis aud ok "a mount works" mount /tmp
g aud sweep "$A4" "$SWEEP_LO" "$SWEEP_HI" 300
like "$W_OUT" "^ok 0 refused 40 timeout 0 eperm 0" "aud: the sweep is not quarantined"
st=$(weir_snapshot "$aid")
is "$(guard_count "$st" raw-sockets audit) $(guard_count "$st" bind audit) $(guard_count "$st" sysctl audit) $(guard_count "$st" escape audit) $(guard_count "$st" port-scan audit)" \
	"2 1 1 3 1" "aud: reported, not refused: raw-sockets 2 (inet at sock_create, packet at socket()), bind 1, sysctl 1, escape 3 (unshare, mount, umount2), port-scan 1"
is "$(jq -r '[.guards[] | objects | .denied + .killed + .quarantined] | add' <<<"$st")" 0 \
	"aud: nothing denied, killed or quarantined"
has_event "$aid" "aud: the packet socket is reported at socket() entry" \
	'.guard == "raw-sockets" and .action == "audit" and .family == "packet" and .syscall == "socket"'

# ---------------------------------------------------------------------------------------
diag "4. the first instruction is guarded"
sec_bundle first 4 --ann "security.weir.io=bind enforce allow tcp/8080" -- /bin/gtool bind tcp 8081
runc_start first && runc_wait_stopped first 10
is "$(runc_out first)" "EPERM" "first: the container's own first process gets EPERM for a forbidden bind"
runc_stop first || true
sec_bundle firstk 5 --ann "security.weir.io=escape kill calls namespaces" -- /bin/gtool unshare-user
runc_start firstk && runc_wait_stopped firstk 10
is "$(runc_out firstk)" "" "firstk: the container's own first process is killed at unshare (prints nothing)"
runc_stop firstk || true

# ---------------------------------------------------------------------------------------
diag "5. BPF-LSM: asked for, it is used where the kernel runs it, else refused or the node's fallback"
sec_bundle lsm 6 --ann "security.weir.io=escape enforce calls namespaces" -- /bin/sleep 3600
# tests/machine.conf says whether this machine runs BPF-LSM (machine_has checks the kernel)
if machine_has bpf_lsm; then
	diag "this kernel runs BPF-LSM"
	start lsm
	gis lsm EPERM "unshare(CLONE_NEWUSER) is refused with EPERM (BPF-LSM)" unshare-user
	runc_stop lsm || true
	diag "the refusal and the fallback without BPF-LSM: tests/vm boots kernels without it"
else
	diag "this kernel does not run BPF-LSM"
	rc=0
	runc_start lsm || rc=$?
	err=$(runc_err lsm)
	if [ "$rc" -ne 0 ] && [[ ${err//\\\"/\"} == *'security.weir.io: guard "escape enforce calls namespaces": escape enforce needs BPF-LSM, which this node does not offer'* ]]; then
		pass "lsm: escape enforce is refused (fail closed) with one precise line"
	else
		fail "lsm: escape enforce is refused (fail closed)" "runc exit $rc"
		diag_block "runc stderr" "$err"
	fi
	left=()
	[ -z "$(weir_record "$(runc_id lsm)")" ] || left+=("a weir record")
	[ ! -d "$(runc_cgroup lsm)" ] || left+=("its cgroup")
	none_left "lsm: nothing left of the refused container" "${left[@]}"
	"$RUNC" delete -f "$(runc_id lsm)" >/dev/null 2>&1 || true
	sec_bundle lsmk 6 --ann "security.weir.io=escape enforce calls namespaces" -- /bin/sleep 3600
	with_config lsmk "$(e2e_conf '{"lsm_fallback": "kill"}')"
	start lsmk
	like "$(weir_record "$(runc_id lsmk)" | jq -r '.security // empty')" 'escape=enforce\(kill: no BPF-LSM\)' \
		"lsmk: with lsm_fallback kill it runs, and weir list says it was downgraded"
	killed lsmk "unshare(CLONE_NEWUSER) is killed instead" /bin/gtool unshare-user
	runc_stop lsmk || true
fi
runc_stop lsm >/dev/null 2>&1 || true

# ---------------------------------------------------------------------------------------
diag "6. node baseline: enforced without annotations, can only be tightened"
BASE_CONF=$(e2e_conf "$(jq -n --arg e "allow $A4 tcp/8080; allow 10.200.0.0/16" \
	'{security: "raw-sockets enforce families raw; escape audit calls namespaces", egress: $e}')")
sec_bundle base 7 --no-weir -- /bin/sleep 3600
# no weir annotation at all: only the hook, as a hooks.d file with "always" would run it
dir=$(runc_bundle_dir base)
jq --arg h "$WEIR_HOOK" --arg f "$BASE_CONF" \
	'.hooks.createRuntime += [{path: $h, args: ["weir-hook", "--config", $f, "createRuntime"]}]
	 | .hooks.poststop = [{path: $h, args: ["weir-hook", "--config", $f, "poststop"]}]' \
	"$dir/config.json" >"$dir/c.new" && mv "$dir/c.new" "$dir/config.json"
start base
bid=$(runc_id base)
like "$(weir_record "$bid" | jq -r '.state + " " + (.security // "")')" '^running raw-sockets=enforce escape=audit$' \
	"base: a container without annotations is an endpoint with the baseline's guards"
gis base EPERM "the baseline refuses a raw socket" raw 4
g base sweep "$A4" 8080 8080 1000
like "$W_OUT" "^ok 1 " "base: the baseline's egress allows $A4 tcp/8080"
g base sweep "$B4" 8080 8080 1000
like "$W_OUT" "eperm 1 " "base: the baseline's egress refuses $B4 (EPERM at connect)"
gis base ok "unshare works (escape audit) ..." unshare-user
has_event "$bid" "base: ... and is reported" '.guard == "escape" and .action == "audit" and .syscall == "unshare"'

loosen_cases=(
	"loose|security.weir.io=raw-sockets audit|guard \"raw-sockets audit\" loosens the node baseline (\"raw-sockets enforce families raw\" in $BASE_CONF): mode audit is weaker than enforce"
	"loose2|security.weir.io=escape audit calls mount|guard \"escape audit calls mount\" loosens the node baseline (\"escape audit calls namespaces\" in $BASE_CONF): call group namespaces is left out"
	"loose3|policy-mode.weir.io=audit|policy-mode.weir.io: \"audit\" loosens the node baseline"
)
for c in "${loosen_cases[@]}"; do
	IFS='|' read -r name ann want <<<"$c"
	sec_bundle "$name" 8 --ann "$ann" -- /bin/sleep 3600
	with_config "$name" "$BASE_CONF"
	rc=0
	runc_start "$name" || rc=$?
	err=$(runc_err "$name")
	if [ "$rc" -ne 0 ] && [[ ${err//\\\"/\"} == *"$want"* ]]; then
		pass "$name: an annotation that loosens the baseline is refused ($ann)"
	else
		fail "$name: an annotation that loosens the baseline is refused ($ann)" "runc exit $rc" "expected: $want"
		diag_block "runc stderr" "$err"
	fi
	"$RUNC" delete -f "$(runc_id "$name")" >/dev/null 2>&1 || true
done
sec_bundle tight 9 --ann "security.weir.io=raw-sockets enforce families raw,packet; escape kill calls namespaces" \
	--ann "egress.weir.io=allow $B4; allow $A4 tcp/9000" -- /bin/sleep 3600
with_config tight "$BASE_CONF"
if machine_declares bpf_lsm | grep -qx yes; then
	start tight
else
	# packet needs BPF-LSM or the fallback: the tightened guard set is refused here
	rc=0
	runc_start tight || rc=$?
	like "$(runc_err tight)" "refusing socket families other than raw needs BPF-LSM" \
		"tight: tightening to packet sockets needs BPF-LSM (refused here)"
	"$RUNC" delete -f "$(runc_id tight)" >/dev/null 2>&1 || true
	sec_bundle tight 9 --ann "security.weir.io=escape kill calls namespaces" \
		--ann "egress.weir.io=allow $B4; allow $A4 tcp/9000" -- /bin/sleep 3600
	with_config tight "$BASE_CONF"
	start tight
fi
killed tight "a tightened guard (escape kill) applies" /bin/gtool unshare-user
g tight sweep "$A4" 8080 8080 1000
like "$W_OUT" "eperm 1 " "tight: the intersection refuses $A4 tcp/8080 (its own rules do not allow it)"
g tight sweep "$B4" 8080 8080 1000
like "$W_OUT" "eperm 1 " "tight: the intersection refuses $B4 (the baseline does not allow it)"

# ---------------------------------------------------------------------------------------
diag "7. a bad guard refuses the container with one line, the same as weir policy check"
bad_cases=(
	"badname|rawsockets enforce|unknown guard \"rawsockets\""
	"badmode|bind kill|mode \"kill\" is for escape only"
	"badport|bind enforce allow tcp/99999|bad port item \"tcp/99999\""
	"badcall|escape kill calls chroot|unknown call group \"chroot\""
)
for c in "${bad_cases[@]}"; do
	IFS='|' read -r name value token <<<"$c"
	sec_bundle "$name" - --ann "security.weir.io=$value" -- /bin/true
	rc=0
	runc_start "$name" || rc=$?
	err=$(runc_err "$name")
	err=${err//\\\"/\"}
	msg=$("$WEIR" policy check -a "security.weir.io=$value" 2>&1 | head -n1 || true)
	msg=${msg#weir: }
	if [ "$rc" -ne 0 ] && [[ $err == *"$token"* ]] && [ -n "$msg" ] && [[ $err == *"$msg"* ]] &&
		[ -z "$(weir_record "$(runc_id "$name")")" ]; then
		pass "$name: refused (\"$value\"), weir policy check says the same, no record"
	else
		fail "$name: refused (\"$value\"), weir policy check says the same, no record" \
			"runc exit $rc" "policy check: $msg"
		diag_block "runc stderr" "$err"
	fi
	"$RUNC" delete -f "$(runc_id "$name")" >/dev/null 2>&1 || true
done

# ---------------------------------------------------------------------------------------
diag "8. events nobody reads are lost and counted, never silently"
sec_bundle flood - --ann "security.weir.io=raw-sockets audit families raw" -- /bin/sleep 3600
start flood
fid=$(runc_id flood)
before=$("$WEIR" status --json)
g flood repeat 20000 raw 4
after=$("$WEIR" status --json)
sent=$(($(jq -r '.guard_events_sent' <<<"$after") - $(jq -r '.guard_events_sent' <<<"$before")))
lost=$(($(jq -r '.guard_events_lost' <<<"$after") - $(jq -r '.guard_events_lost' <<<"$before")))
is "$((sent + lost))" 20000 "flood: 20000 raw sockets: every event is delivered or counted lost (sent $sent, lost $lost)"
cmp_num "$lost" -ge 14000 "flood: the 1 MiB ring (about 5,900 events) with no reader loses the rest, counted"
is "$(guard_count "$(weir_snapshot "$fid")" raw-sockets audit)" 20000 "flood: the guard counter counts all 20000"
like "$("$WEIR" status)" "guard events: [0-9]+ delivered, [0-9]+ lost" "weir status shows guard events delivered and lost"
# which path escape detection takes, and why: what the machine declares, not what weir says
if machine_declares fentry | grep -qx yes; then
	like "$("$WEIR" status)" "escape detection: fentry per syscall \([0-9]+ entry functions" \
		"weir status: escape detection per syscall (the machine declares fentry)"
else
	like "$("$WEIR" status)" "escape detection: raw_tp/sys_enter .*: the kernel refuses fentry programs" \
		"weir status: escape detection on raw_tp/sys_enter, because the kernel refuses fentry"
fi
m=$("$WEIR" metrics 2>/dev/null | grep '^weir_guard_events_lost_total ' || true)
cmp_num "${m##* }" -ge "$lost" "metric weir_guard_events_lost_total counts the loss"

# ---------------------------------------------------------------------------------------
diag "9. detach and gc leave nothing of the guards"
eps=()
for c in grd open aud base tight flood lsmk; do
	ep=$(weir_record "$(runc_id "$c")" | jq -r '.endpoint // empty')
	[ -n "$ep" ] && eps+=("$ep")
	runc_stop "$c" >/dev/null 2>&1 || true
done
left=()
for ep in "${eps[@]}"; do
	[ ! -d "$WEIR_BPFFS/endpoints/$ep" ] || left+=("endpoint folder $ep")
	cfg=$(bpftool -j map lookup pinned "$WEIR_BPFFS/maps/weir_guards" key $((ep & 255)) $(((ep >> 8) & 255)) 0 0 2>/dev/null | jq -r '.formatted.value.gen // empty' 2>/dev/null || true)
	[ -z "$cfg" ] || [ "$cfg" = 0 ] || left+=("weir_guards[$ep] gen $cfg")
done
n=$(bpftool -j map dump pinned "$WEIR_BPFFS/maps/weir_sysctl" 2>/dev/null | jq --argjson e "$(printf '%s\n' "${eps[@]}" | jq -s .)" '[.[] | select(.formatted.key.ep_id as $k | $e | index($k))] | length' 2>/dev/null || echo 0)
[ "$n" = 0 ] || left+=("$n sysctl allow-list entries")
none_left "stopped containers leave no endpoint folder, guard config or sysctl entry" "${left[@]}"
running_guarded=$("$WEIR" list --json | jq '[.[] | select(.state == "running" and .security != null)] | length')
if [ "$running_guarded" = 0 ]; then
	left=()
	for l in weir_sys_enter weir_exec weir_entry_attach weir_entry_fork; do
		[ ! -e "$WEIR_BPFFS/links/$l" ] || left+=("$l is still attached")
	done
	for l in "$WEIR_BPFFS"/links/weir_esc_*; do
		[ ! -e "$l" ] || left+=("${l##*/} is still attached")
	done
	none_left "the last guarded container's poststop detaches the node's guard programs (no gc needed)" "${left[@]}"
else
	skip "another test's guarded containers are running: the node programs stay" 1
fi
ok_run "weir gc runs" "$WEIR" gc
done_testing
