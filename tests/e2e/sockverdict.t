#!/bin/bash
# Per-socket verdicts (issue 10): the cgroup programs keep a socket's verdict in its socket
# storage, so what must hold is that a cached verdict never outlives the policy it was made
# under. Real runc container, real sockets between it and the test's peer network namespace:
# TCP connections and connected UDP sockets opened in both directions, their counters checked
# exactly against the kernel's own per-socket counts, then the container's policy replaced
# (weir-hook poststop + createRuntime: a new registration, the way the product changes a
# policy) while they stay open. The next exchanges of every socket must follow the new policy:
# for SOCKVERDICT_POLICIES random policies over eight flows (TCP and UDP, IPv4 and IPv6, either
# side opening), each allowed or denied, against the model. Every other change reuses the
# endpoint id, so only the registration's gen tells the old verdicts apart. First, the kernel
# must run weir_egress with the slots (its .rodata, read with bpftool), and `weir status` say so:
# else every check here would pass on the conntrack path alone.
#
#   prove -v tests/e2e/sockverdict.t        (root; `make` first)

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/runc.sh
. "$E2E_LIB/runc.sh"

e2e_init
require_weir
runc_init

POLICIES=${SOCKVERDICT_POLICIES:-6}
peer_create "$E2E_PREFIX"
A4=$PEER_A4 A6=$PEER_A6
IDX=43
CTR=$(ctr_addr4 $IDX) CTR6=$(ctr_addr6 $IDX)
NOBODY=10.255.255.254/32
# The eight flows: the container's clients, then the peer's, IPv4 then IPv6. Ports from BASE:
# +1/+2 the container's TCP/UDP clients to the peer (IPv4), +3/+4 the peer's to the container,
# +5/+6 and +7/+8 the same over IPv6. A policy is one bit per flow, in this order.
FLOWS=(tcp4-out udp4-out tcp6-out udp6-out tcp4-in udp4-in tcp6-in udp6-in)

# egress / ingress annotations for the 8 bits, then BASE. Both directions always have a rule:
# both are default-deny.
egress_of() {
	local r="allow $NOBODY"
	[ "$1" = 0 ] || r+="; allow $A4 tcp/$((${9} + 1))"
	[ "$2" = 0 ] || r+="; allow $A4 udp/$((${9} + 2))"
	[ "$3" = 0 ] || r+="; allow $A6 tcp/$((${9} + 5))"
	[ "$4" = 0 ] || r+="; allow $A6 udp/$((${9} + 6))"
	echo "$r"
}
ingress_of() {
	local r="allow $NOBODY"
	[ "$5" = 0 ] || r+="; allow any tcp/$((${9} + 3))"
	[ "$6" = 0 ] || r+="; allow any udp/$((${9} + 4))"
	[ "$7" = 0 ] || r+="; allow any tcp/$((${9} + 7))"
	[ "$8" = 0 ] || r+="; allow any udp/$((${9} + 8))"
	echo "$r"
}
ALL=(1 1 1 1 1 1 1 1)

state_json() { # NAME PID STATUS: the OCI state the runtime gives its hooks
	local b
	b=$(runc_bundle_dir "$1")
	jq -nc --arg id "$(runc_id "$1")" --argjson pid "$2" --arg s "$3" --arg b "$b" \
		--slurpfile c "$b/config.json" \
		'{ociVersion: "1.0.2", id: $id, status: $s, pid: $pid, bundle: $b, annotations: $c[0].annotations}'
}

# reattach NAME EGRESS INGRESS [reuse]: give the running container a new policy, as a runtime
# would on a restart: poststop (detach) then createRuntime (attach) with the new annotations.
# With "reuse", every other endpoint id is taken while it attaches, so the new registration
# gets the old endpoint id back: then only the registration's gen tells the sockets' old
# verdicts apart (ids are random, and a new id would invalidate them by itself).
IDS=$E2E_STATE/ids
reattach() {
	local dir pid ep r=0
	dir=$(runc_bundle_dir "$1")
	pid=$(runc_pid "$1")
	ep=$(weir_record "$(runc_id "$1")" | jq -r .endpoint)
	jq --arg e "$2" --arg i "$3" '.annotations["egress.weir.io"] = $e | .annotations["ingress.weir.io"] = $i' \
		"$dir/config.json" >"$dir/config.json.new" && mv "$dir/config.json.new" "$dir/config.json"
	"$WEIR_HOOK" "${WEIR_HOOK_ARGS[@]}" poststop <<<"$(state_json "$1" 0 stopped)" || return 1
	if [ "${4:-}" = reuse ]; then
		find "$IDS" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort >"$E2E_TMP/ids.before"
		seq 1 16383 | grep -vx "$ep" | sort | comm -23 - "$E2E_TMP/ids.before" >"$E2E_TMP/ids.fill"
		(cd "$IDS" && xargs touch <"$E2E_TMP/ids.fill")
	fi
	"$WEIR_HOOK" "${WEIR_HOOK_ARGS[@]}" createRuntime <<<"$(state_json "$1" "$pid" creating)" || r=1
	if [ "${4:-}" = reuse ]; then
		(cd "$IDS" && xargs rm -f <"$E2E_TMP/ids.fill")
		[ "$(weir_record "$(runc_id "$1")" | jq -r .endpoint)" = "$ep" ] || r=1
	fi
	return $r
}

# a round: both clients send and wait for their echoes; prints the four words
CIN=$E2E_TMP/c.in PIN=$E2E_TMP/p.in COUT=$E2E_TMP/c.out POUT=$E2E_TMP/p.out
round() {
	echo "round $1" >&7
	echo "round $1" >&8
	retry 10 grep -qs "^round $1 " "$COUT" || true
	retry 10 grep -qs "^round $1 " "$POUT" || true
	echo "$(sed -n "s/^round $1 //p" "$COUT") $(sed -n "s/^round $1 //p" "$POUT")"
}

# open BASE [6]: servers on both sides, then the clients (IPv4, and IPv6 with "6"); fd 7 drives
# the container's, 8 the peer's. USED: the indexes of FLOWS the rounds report, in their order.
open_sockets() {
	local base=$1 ps=() cs=() pc=()
	ps=("tcp-listen,$((base + 1)),$A4" "udp-listen,$((base + 2)),$A4")
	cs=("tcp,$A4,$((base + 1))" "udp,$A4,$((base + 2))")
	pc=("tcp,$CTR,$((base + 3))" "udp,$CTR,$((base + 4))")
	USED=(0 1 4 5)
	if [ "${2:-}" = 6 ]; then
		ps+=("tcp-listen,$((base + 5)),$A6" "udp-listen,$((base + 6)),$A6")
		cs+=("tcp,$A6,$((base + 5))" "udp,$A6,$((base + 6))" "tcp-listen,$((base + 7))" "udp-listen,$((base + 8))")
		pc+=("tcp,$CTR6,$((base + 7))" "udp,$CTR6,$((base + 8))")
		USED=(0 1 2 3 4 5 6 7)
	fi
	rm -f "$CIN" "$PIN" "$COUT" "$POUT"
	mkfifo "$CIN" "$PIN"
	ip netns exec "$PEER_NS" "$WTOOL" hold "${ps[@]}" </dev/null >"$E2E_TMP/ps.$base" 2>&1 &
	_peer_pids+=($!)
	retry 5 grep -qs '^listening' "$E2E_TMP/ps.$base" || bail_out "peer servers: $(cat "$E2E_TMP/ps.$base")"
	runc_exec c /bin/wtool hold "${cs[@]}" "tcp-listen,$((base + 3))" "udp-listen,$((base + 4))" \
		<"$CIN" >"$COUT" 2>&1 &
	exec 7>"$CIN"
	retry 5 grep -qs '^listening' "$COUT" || bail_out "container sockets: $(cat "$COUT")"
	ip netns exec "$PEER_NS" "$WTOOL" hold "${pc[@]}" <"$PIN" >"$POUT" 2>&1 &
	_peer_pids+=($!)
	exec 8>"$PIN"
	retry 5 grep -qs '^listening' "$POUT" || bail_out "peer clients: $(cat "$POUT")"
}
close_sockets() {
	exec 7>&- 8>&-
}

# info: the container's TCP sockets' segment counts (tcp_info), "OUT IN"
tcp_segs() {
	local n
	n=$(grep -c '^tcp segs' "$COUT" || true)
	echo info >&7
	retry 10 test "$(grep -c '^tcp segs' "$COUT")" -gt "$n" || true
	grep '^tcp segs' "$COUT" | tail -n1 | sed -E 's/^tcp segs_out=([0-9]+) segs_in=([0-9]+)$/\1 \2/'
}
# the weir_sk_cache the kernel's weir_egress was loaded with: its .rodata map, read with bpftool
kernel_sk_cache() {
	local id
	for id in $(bpftool -j prog show pinned "$WEIR_BPFFS/progs/weir_egress" | jq '.map_ids[]'); do
		[ "$(bpftool -j map show id "$id" | jq -r .name)" = weir_bpf.rodata ] || continue
		bpftool -j map dump id "$id" | jq '[.. | objects | .weir_sk_cache? // empty][0]'
	done
}
QUIET='[.egress.tcp, .egress.udp, .ingress.tcp, .ingress.udp, .egress.policy_dropped, .ingress.policy_dropped]'
counters() {
	weir_stats "$(runc_id c)" | jq -r '[.egress.tcp.packets, .egress.tcp.bytes, .ingress.tcp.packets,
		.ingress.tcp.bytes, .egress.udp.packets, .egress.udp.bytes, .ingress.udp.packets,
		.ingress.udp.bytes] | map(tostring) | join(" ")'
}

# ---------------------------------------------------------------------------------------
diag "1. open sockets in both directions; counters exact on the cached path"
base=7000
runc_bundle c "$IDX" --egress "$(egress_of "${ALL[@]}" $base)" --ingress "$(ingress_of "${ALL[@]}" $base)" \
	-- /bin/sleep 3600
if runc_start c; then
	pass "the container starts with weir's hooks"
else
	fail "the container starts with weir's hooks" "$(runc_err c)"
	bail_out "no container"
fi
cid=$(runc_id c)
is "$(kernel_sk_cache)" 1 "the kernel's weir_egress has the per-socket verdict slots (.rodata weir_sk_cache = 1)"
like "$("$WEIR" status)" $'\nper-socket verdicts: in use ' "weir status says the per-socket verdicts are in use"
is "$("$WEIR" status --json | jq -c .socket_verdicts)" true "weir status --json: socket_verdicts true"
open_sockets $base
is "$(round 1)" "ok ok ok ok" "every flow passes its first exchange (the full path keeps each verdict)"
wait_quiet "$cid" "$QUIET"
read -r so0 si0 < <(tcp_segs)
read -r etp0 etb0 itp0 itb0 eup0 eub0 iup0 iub0 < <(counters)
R=5
all=ok
for ((r = 2; r < 2 + R; r++)); do
	w=$(round $r)
	[ "$w" = "ok ok ok ok" ] || all="round $r: $w"
done
is "$all" ok "$R more exchanges of each flow pass (the sockets' cached verdicts)"
wait_quiet "$cid" "$QUIET"
read -r so1 si1 < <(tcp_segs)
read -r etp1 etb1 itp1 itb1 eup1 eub1 iup1 iub1 < <(counters)
# each round: the container sends its UDP request and the echo of the peer's: 2 datagrams of
# 100 bytes plus 28 of headers, and receives 2
is "$((eup1 - eup0)) $((eub1 - eub0))" "$((2 * R)) $((2 * R * 128))" \
	"egress UDP counted exactly: $((2 * R)) datagrams, $((2 * R * 128)) bytes"
is "$((iup1 - iup0)) $((iub1 - iub0))" "$((2 * R)) $((2 * R * 128))" \
	"ingress UDP counted exactly: $((2 * R)) datagrams, $((2 * R * 128)) bytes"
is "$((etp1 - etp0))" "$((so1 - so0))" "egress TCP packets = the sockets' own segs_out ($((so1 - so0)))"
is "$((itp1 - itp0))" "$((si1 - si0))" "ingress TCP packets = the sockets' own segs_in ($((si1 - si0)))"
# bytes: 20 (IPv4) + 32 (TCP with timestamps) a segment, and each round's 2 x 100 payload bytes
is "$((etb1 - etb0))" "$(((so1 - so0) * 52 + 2 * R * 100))" "egress TCP bytes exact"
is "$((itb1 - itb0))" "$(((si1 - si0) * 52 + 2 * R * 100))" "ingress TCP bytes exact"

# ---------------------------------------------------------------------------------------
diag "1b. the cgroup's guess of the endpoint: a wrong one costs time, never a verdict or a count"
# hex LE N BYTES: N as BYTES little-endian hex words, for bpftool's "key hex" and "value hex"
hex_le() {
	local h i out=""
	h=$(printf "%0$(($2 * 2))x" "$1")
	for ((i = $2 * 2 - 2; i >= 0; i -= 2)); do out+="${h:i:2} "; done
	echo "$out"
}
ep=$(weir_record "$cid" | jq -r .endpoint)
cg=$(weir_record "$cid" | jq -r .cgroup)
[ -d "$cg" ] || cg=$(cgroup2_mount)$cg
cgid=$(stat -c %i "$cg")
read -ra CGKEY <<<"$(hex_le "$cgid" 8)"
hint_map=""
for id in $(bpftool -j prog show pinned "$WEIR_BPFFS/progs/weir_egress" | jq '.map_ids[]'); do
	[ "$(bpftool -j map show id "$id" | jq -r .name)" = weir_ep_hint ] && hint_map=$id
done
# the guess weir_egress and weir_ingress share for the container's cgroup: the endpoint id + 1
hint() {
	local v
	v=$(bpftool -j map lookup id "$hint_map" key hex "${CGKEY[@]}" |
		jq -r 'if .formatted then .formatted.value
			else "0x" + (.value | reverse | map(ltrimstr("0x")) | join("")) end')
	echo $((v))
}
if [ -n "$hint_map" ]; then
	is "$(hint)" "$((ep + 1))" "the container's cgroup guesses its endpoint ($ep) after cached packets"
	# another id, whose counters must not move: the guess's config and counters are loaded, and
	# must be dropped for the slot's
	other=$((ep % 16383 + 1))
	read -ra OKEY <<<"$(hex_le "$other" 4)"
	read -ra OVAL <<<"$(hex_le "$((other + 1))" 4)"
	other_counters() {
		bpftool -j map lookup pinned "$WEIR_BPFFS/maps/weir_counters" key hex "${OKEY[@]}" 2>/dev/null ||
			echo none
	}
	oc0=$(other_counters)
	bpftool map update id "$hint_map" key hex "${CGKEY[@]}" value hex "${OVAL[@]}"
	is "$(hint)" "$((other + 1))" "a wrong guess written into the cgroup's storage (endpoint $other)"
	read -r so0 si0 < <(tcp_segs)
	read -r etp0 etb0 itp0 itb0 eup0 eub0 iup0 iub0 < <(counters)
	all=ok
	for ((r = 10; r < 10 + R; r++)); do
		w=$(round $r)
		[ "$w" = "ok ok ok ok" ] || all="round $r: $w"
	done
	is "$all" ok "$R exchanges of each flow pass under the wrong guess"
	wait_quiet "$cid" "$QUIET"
	read -r so1 si1 < <(tcp_segs)
	read -r etp1 etb1 itp1 itb1 eup1 eub1 iup1 iub1 < <(counters)
	is "$((eup1 - eup0)) $((eub1 - eub0)) $((iup1 - iup0)) $((iub1 - iub0))" \
		"$((2 * R)) $((2 * R * 128)) $((2 * R)) $((2 * R * 128))" \
		"UDP counted exactly to the container under the wrong guess"
	is "$((etp1 - etp0)) $((itp1 - itp0))" "$((so1 - so0)) $((si1 - si0))" \
		"TCP packets counted exactly to the container under the wrong guess"
	is "$(other_counters)" "$oc0" "nothing counted to the guessed endpoint $other"
	is "$(hint)" "$((ep + 1))" "the guess is corrected from the socket's slot"
else
	fail "weir_egress uses a map named weir_ep_hint" "$(bpftool -j prog show pinned "$WEIR_BPFFS/progs/weir_egress")"
fi

# ---------------------------------------------------------------------------------------
diag "2. policy replaced under open sockets: every next exchange follows the new policy"
# the first change denies everything, then random ones (a denial must be among them)
for ((i = 0; i < POLICIES; i++)); do
	if [ "$i" -gt 0 ]; then
		close_sockets
		base=$((7000 + 10 * i))
		reattach c "$(egress_of "${ALL[@]}" $base)" "$(ingress_of "${ALL[@]}" $base)" ||
			bail_out "re-attach with everything allowed failed"
		open_sockets $base 6
		w=$(round "o$i")
		[ "$w" = "ok ok ok ok ok ok ok ok" ] || fail "policy $i: the sockets open and pass ($w)"
		round "p$i" >/dev/null # the verdicts are in the sockets now
	fi
	bits=()
	for f in 0 1 2 3 4 5 6 7; do
		if [ "$i" -eq 0 ]; then bits+=(0); else bits+=($((RANDOM % 2))); fi
	done
	# even rounds: the same endpoint id again, odd ones: a new id
	how=$([ $((i % 2)) = 0 ] && echo reuse || echo new)
	reattach c "$(egress_of "${bits[@]}" $base)" "$(ingress_of "${bits[@]}" $base)" "$how" ||
		bail_out "re-attach ($how endpoint id) failed"
	for r in a b; do
		read -r -a got <<<"$(round "n$i$r")"
		want="" res=""
		for k in "${!USED[@]}"; do
			f=${USED[k]}
			want+="${FLOWS[f]}=$([ "${bits[f]}" = 1 ] && echo ok || echo denied) "
			res+="${FLOWS[f]}=$([ "${got[k]:-}" = ok ] && echo ok || echo denied) "
		done
		is "$res" "$want" "policy $i (${bits[*]}, $how id), exchange $r after the change: as the model says (${got[*]})"
	done
done
close_sockets

# ---------------------------------------------------------------------------------------
runc_stop c || true
ok_run "weir gc runs" "$WEIR" gc
own_weir_empty
done_testing
