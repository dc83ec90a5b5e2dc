#!/bin/bash
# weir policy trace against real packets. For random policies, the verdict `weir policy trace`
# reads from the kernel (the endpoint's flags and its weir_policy entry) must be what a real
# connect(), send or ping from a runc container does, and what a real connection from the peer
# into the container meets. Plus: the explanation (rules, deny over allow, audit, conntrack)
# on fixed cases, live conntrack flows counted after real connections, and the errors.
#
#   prove -v tests/e2e/trace.t      (root; `make` first)
#   TRACE_SEED=N    replays one run (the seed is printed); TRACE_POLICIES=N (default 16)
#
# Peer targets (on the peer netns's lo): 10.211.0.1, 10.212.0.1, 10.220.{0,1,5,7}.1,
# fd78:a::1, fd78:b::1, fd78:20:{0,5}::1, with tcp servers on 8080 8005 9000 and a udp echo
# server on 5001 bound to each address (a reply must come from the address it answers).
# Containers run tcp servers on 8080 and 9000 for the peer's connections (from 10.200.I.1 and
# fd77:0:0:I::1, the peer's end of their veth).

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/runc.sh
. "$E2E_LIB/runc.sh"

e2e_init
require_weir
runc_init

DESTS=(10.211.0.1 10.212.0.1 10.220.0.1 10.220.1.1 10.220.5.1 10.220.7.1
	fd78:a::1 fd78:b::1 fd78:20:0::1 fd78:20:5::1)
peer_create "$E2E_PREFIX"
for port in 8080 8005 9000; do
	peer_server "$E2E_TMP/peer-tcp$port.log" tcp-server "$port"
done
for a in "${DESTS[@]}"; do
	peer_server "$E2E_TMP/peer-udp-$a.log" udp-echo-server 5001 "$a"
done

SEED=${TRACE_SEED:-$((($$ * 7919 + $(date +%s)) % 32768))}
NPOL=${TRACE_POLICIES:-16}
RANDOM=$SEED
diag "seed $SEED (TRACE_SEED=$SEED replays this run), $NPOL random policies"

pick() {
	local -n arr=$1
	echo "${arr[RANDOM % ${#arr[@]}]}"
}

# Egress peers: each covers some of DESTS and misses others, nested, overlapping. (These
# arrays are read through pick's nameref.)
# shellcheck disable=SC2034
EG_PEERS=(any 10.0.0.0/8 10.208.0.0/12 10.211.0.0/16 10.212.0.1 10.220.0.0/16 10.220.0.0/22
	10.220.4.0/22 10.220.5.1 10.220.1.0/24 10.211.0.1 fd78::/16 fd78:a::/32 fd78:b::1
	fd78:20::/32 fd78:20:4::/46 fd78:20:5::1 fd78:20::/48)
# shellcheck disable=SC2034
PORTS=(tcp tcp/8080 tcp/8000-8010 tcp/8005 tcp/9000 tcp/8000-8004 udp udp/5001 udp/5000-5010
	icmp)
# shellcheck disable=SC2034
PROBES=(tcp/8080 tcp/8005 tcp/9000 udp/5001 icmp)

# rand_rules PEER...: 1-5 rules, 3 in 10 of them denies, a quarter for every protocol.
rand_rules() {
	local n=$((1 + RANDOM % 5)) i k items out=
	for ((i = 0; i < n; i++)); do
		if ((RANDOM % 10 < 3)); then out+="deny "; else out+="allow "; fi
		out+=$(pick "$1")
		if ((RANDOM % 4)); then
			items=
			for ((k = 0; k <= RANDOM % 2; k++)); do
				items+="${items:+,}$(pick PORTS)"
			done
			out+=" $items"
		fi
		out+="; "
	done
	echo "${out%; }"
}

# trace_json ID DIR-FLAG PEER [PROTO]: weir policy trace --json (empty on failure, diagnosed).
trace_json() {
	local out
	if out=$("$WEIR" policy trace --json "$1" "$2" "$3" ${4:+"$4"} 2>&1) && jq -e .results <<<"$out" >/dev/null 2>&1; then
		echo "$out"
	else
		diag "weir policy trace $*: $out" >&2
	fi
}

# expected WTOOL-RESULT of a probe, from a trace: "ok" when it passes (allowed, or denied in
# audit mode), else what enforcement does: EPERM at the socket for egress (an ICMPv6 socket
# reports no error: the echo just gets no reply), a dropped SYN (ETIMEDOUT) for ingress.
expected() {
	local json=$1 dir=$2 probe=$3 dest=$4 v mode
	v=$(jq -r '.results[0].verdict' <<<"$json")
	mode=$(jq -r .mode <<<"$json")
	if [ "$v" = allowed ] || [ "$mode" = audit ]; then
		echo ok
	elif [ "$dir" = egress ] && ! [[ $probe == icmp && $dest == *:* ]]; then
		echo EPERM
	else
		echo ETIMEDOUT
	fi
}

# listening NAME: both servers of the container listen (ports 8080 and 9000, in hex).
listening() {
	local t
	t=$(runc_exec "$1" cat /proc/net/tcp6 2>/dev/null) || return 1
	grep -q ':1F90 ' <<<"$t" && grep -q ':2328 ' <<<"$t"
}

cw() { runc_wtool "$@"; } # wtool in a container (lib/runc.sh)

# real NAME DEST PROBE: what a real attempt from the container gives (wtool's first word).
real_egress() {
	local name=$1 dest=$2 probe=$3
	case $probe in
	tcp/*) cw "$name" connect "$dest" "${probe#tcp/}" 1000 ;;
	udp/*) cw "$name" udp-rr "$dest" "${probe#udp/}" 1000 ;;
	icmp) cw "$name" ping "$dest" 1 56 1000 ;;
	esac
	echo "${W_OUT%% *}"
}

# ---------------------------------------------------------------------------------------
diag "fixed cases: the explanation"
FX=100
fx_eg="allow 10.211.0.0/16 tcp/8000-8090,udp/5001; deny 10.211.0.1 tcp/8005; allow any icmp; allow fd78:a::/32 tcp/8080"
runc_bundle fx "$FX" --egress "$fx_eg" --ingress "allow 10.200.$FX.1 tcp/9000" \
	-- /bin/sh -c 'wtool tcp-server 8080 & wtool tcp-server 9000 & wait'
runc_start fx || bail_out "fx: the container does not start: $(runc_err fx)"
fx=$(runc_id fx)
retry 5 listening fx || diag "fx: the container's servers are not listening yet"

# Shell completion offers the ids of the records, a running container's among them.
got=$(PATH=$(dirname "$WEIR"):$PATH bash -c 'source "$1"; COMP_WORDS=(weir policy trace "${2:0:12}"); COMP_CWORD=3
	_weir; printf "%s\n" "${COMPREPLY[@]}"' _ "$REPO/completion/weir.bash" "$fx")
is "$(grep -cxF "$fx" <<<"$got")" 1 "bash completion offers the running container's id"

out=$("$WEIR" policy trace "$fx" --to 10.211.0.1 tcp/8005 2>&1)
like "$out" "tcp/8005: DENIED: connect\(\) fails with EPERM" "text: a denied port names the verdict and its effect"
like "$out" 'denied by rule 2 \("deny 10.211.0.1 tcp/8005"\): deny overrides the allow of rule 1 \("allow 10.211.0.0/16 tcp/8000-8090,udp/5001"\)' \
	"text: which rules decided, and that a deny overrode an allow"
like "$out" "the weir_policy entry for 10.211.0.1/32 allows tcp 8000-8004, 8006-8090; udp 5001; icmp" \
	"text: the kernel entry the longest-prefix match found, and what it allows"
json=$(trace_json "$fx" --to 10.211.0.1 tcp/8005)
is "$(jq -c '[.kernel_entry.prefix, .results[0].deny_overrides_allow, .record_agrees, .mode, .default]' <<<"$json")" \
	'["10.211.0.1/32",true,true,"enforce","deny"]' "json: prefix, deny over allow, agreement, mode, default"

json=$(trace_json "$fx" --to 10.211.0.1 "")
is "$(jq -c '[.results[] | [.protocol, .verdict, (.ports // null)]]' <<<"$json")" \
	'[["tcp","some ports",["8000-8004","8006-8090"]],["udp","some ports",["5001"]],["icmp","allowed",null]]' \
	"without a protocol: every class, and the ports that pass"
json=$(trace_json "$fx" --to 10.212.0.1 tcp/8080)
is "$(jq -c '[.kernel_entry.prefix, .results[0].verdict, .results[0].reason]' <<<"$json")" \
	'["0.0.0.0/0","denied","no rule allows it: egress has rules, so it is default-deny"]' \
	"a peer only \"any\" covers: the 0.0.0.0/0 entry, default-deny"
json=$(trace_json "$fx" --to 127.0.0.1 tcp/80)
is "$(jq -r '.results[0].verdict' <<<"$json")" allowed "loopback is always allowed"
json=$(trace_json "$fx" --from "10.200.$FX.1" tcp/9000)
is "$(jq -c '[.direction, .results[0].verdict, .results[0].allowed_by[0].text, .results[0].conntrack.text]' <<<"$json")" \
	"[\"ingress\",\"allowed\",\"allow 10.200.$FX.1 tcp/9000\",\"the first packet opens a tracked flow: replies pass egress although egress is default-deny\"]" \
	"--from: the ingress rule, and replies through conntrack"

# Conntrack as the kernel holds it: flows counted after real connections.
live() { trace_json "$fx" "$1" "$2" "$3" | jq -r ".results[0].conntrack.$4"; }
l0=$(live --to 10.211.0.1 tcp/8080 live_flows)
for i in 1 2 3; do cw fx connect 10.211.0.1 8080 1000; done
is "$(($(live --to 10.211.0.1 tcp/8080 live_flows) - l0))" 3 "three real connections: three more tracked flows"
is "$(live --to "10.200.$FX.1" tcp live_flows_opened_by_peer)" 0 "no flow opened by the peer yet"
wrun peer_exec "$WTOOL" connect "$(ctr_addr4 $FX)" 9000 1000
is "$W_OUT" ok "the peer connects to the container (its replies pass egress)"
json=$(trace_json "$fx" --to "10.200.$FX.1" tcp)
is "$(jq -c '[.results[0].verdict, (.results[0].conntrack.live_flows_opened_by_peer >= 1)]' <<<"$json")" \
	'["denied",true]' "egress to the peer is denied, yet the flow it opened is tracked: replies pass"

# The kernel is the truth: drop the 10.211.0.1/32 entry behind weir's back; the /16 entry
# then decides, the trace says so, and a real connect to tcp/8005 goes through.
ep=$(weir_record "$fx" | jq -r .endpoint)
key=$(printf '60 00 00 00 %02x %02x %02x %02x 00 04 00 00 0a d3 00 01 %s' \
	$((ep & 255)) $(((ep >> 8) & 255)) $(((ep >> 16) & 255)) $(((ep >> 24) & 255)) "$(printf '00 %.0s' {1..12})")
# shellcheck disable=SC2086 # one word per byte
bpftool map delete pinned "$WEIR_BPFFS/maps/weir_policy" key hex $key ||
	diag "cannot delete the 10.211.0.1/32 entry of endpoint $ep"
json=$(trace_json "$fx" --to 10.211.0.1 tcp/8005)
is "$(jq -c '[.kernel_entry.prefix, .results[0].verdict, .record_agrees]' <<<"$json")" \
	'["10.211.0.0/16","allowed",false]' "a kernel entry removed: the trace follows the kernel and says the record disagrees"
like "$("$WEIR" policy trace "$fx" --to 10.211.0.1 tcp/8005)" "warning: the kernel's policy for this peer is not what the record" \
	"text: the disagreement is a warning"
cw fx connect 10.211.0.1 8005 1000
is "$W_OUT" ok "and a real connect does what the trace said"

out=$("$WEIR" policy check "$fx" 2>&1)
like "$out" "10.211.0.1/32  tcp 8000-8004, 8006-8090; udp 5001; icmp" "policy check ID: the effective, normalised policy"
is "$("$WEIR" policy check --json "$fx" | jq -c '.policy.egress.rules[1]')" \
	'{"rule":2,"action":"deny","peer":"10.211.0.1/32","protocols":["tcp/8005"]}' "policy check --json: normalised rules"
runc_stop fx || true

out=$("$WEIR" policy trace "$fx" --to 10.211.0.1 tcp/80 2>&1) && rc=0 || rc=$?
is "$rc:$out" "1:weir: policy trace: no running endpoint matches \"$fx\"" "a stopped container has nothing to trace"
out=$("$WEIR" policy trace "$fx" --to 10.211.0.0/16 2>&1) && rc=0 || rc=$?
is "$rc:$out" '2:weir: policy trace: peer "10.211.0.0/16": expected one IPv4 or IPv6 address (no prefix length)' \
	"a prefix is not a peer"
out=$("$WEIR" policy trace "$fx" --to 10.211.0.1 sctp/80 2>&1) && rc=0 || rc=$?
is "$rc:$out" '2:weir: policy trace: protocol "sctp/80": expected tcp, udp, icmp, tcp/PORT or udp/PORT' \
	"an unknown protocol"

runc_bundle au "$((FX + 1))" --mode audit --egress "allow 10.212.0.1 tcp/8080" -- /bin/sleep 600
runc_start au || bail_out "au: the container does not start: $(runc_err au)"
json=$(trace_json "$(runc_id au)" --to 10.211.0.1 tcp/8080)
is "$(jq -c '[.mode, .results[0].verdict, (.results[0].effect | startswith("passes: audit mode"))]' <<<"$json")" \
	'["audit","denied",true]' "audit mode: denied, and it passes"
cw au connect 10.211.0.1 8080 1000
is "$W_OUT" ok "audit mode: a real connect passes"
runc_stop au || true

# ---------------------------------------------------------------------------------------
# Random policies: the trace's verdict against real traffic.

for ((p = 1; p <= NPOL; p++)); do
	name=r$p
	# shellcheck disable=SC2034 # read through pick's nameref
	ing_peers=(any 10.0.0.0/8 10.200.0.0/16 "10.200.$p.0/24" "10.200.$p.1" 10.211.0.0/16
		fd77::/16 "fd77:0:0:$p::/64" "fd77:0:0:$p::1" fd78::/16)
	opts=()
	egress=$(rand_rules EG_PEERS)
	ingress=
	case $((RANDOM % 4)) in
	0) ;; # egress only
	1) ingress=$(rand_rules ing_peers) egress= ;;
	*) ingress=$(rand_rules ing_peers) ;;
	esac
	[ -z "$egress" ] || opts+=(--egress "$egress")
	[ -z "$ingress" ] || opts+=(--ingress "$ingress")
	mode=enforce
	if ((RANDOM % 5 == 0)); then mode=audit; fi
	opts+=(--mode "$mode")
	diag "policy $p ($mode): egress \"$egress\" ingress \"$ingress\""
	runc_bundle "$name" "$p" "${opts[@]}" -- /bin/sh -c 'wtool tcp-server 8080 & wtool tcp-server 9000 & wait'
	if ! runc_start "$name"; then
		fail "policy $p: the container starts" "$(runc_err "$name")"
		continue
	fi
	id=$(runc_id "$name")
	retry 5 listening "$name" || diag "policy $p: the container's servers are not listening yet"

	bad=()
	n=0
	for dest in "${DESTS[@]}"; do
		probe=$(pick PROBES)
		json=$(trace_json "$id" --to "$dest" "$probe")
		[ -n "$json" ] || { bad+=("--to $dest $probe: no trace"); continue; }
		[ "$(jq -r .record_agrees <<<"$json")" = true ] || bad+=("--to $dest $probe: the trace says the kernel and the record disagree")
		want=$(expected "$json" egress "$probe" "$dest")
		got=$(real_egress "$name" "$dest" "$probe")
		n=$((n + 1))
		[ "$got" = "$want" ] || bad+=("--to $dest $probe: trace says $(jq -c '[.results[0].verdict, .results[0].reason]' <<<"$json") ($want), a real attempt gives $got")
	done
	for src in "10.200.$p.1" "fd77:0:0:$p::1"; do
		port=$((RANDOM % 2 ? 8080 : 9000))
		json=$(trace_json "$id" --from "$src" "tcp/$port")
		[ -n "$json" ] || { bad+=("--from $src tcp/$port: no trace"); continue; }
		want=$(expected "$json" ingress tcp "$src")
		if [[ $src == *:* ]]; then dst=$(ctr_addr6 "$p"); else dst=$(ctr_addr4 "$p"); fi
		wrun peer_exec "$WTOOL" connect "$dst" "$port" 600
		got=${W_OUT%% *}
		n=$((n + 1))
		[ "$got" = "$want" ] || bad+=("--from $src tcp/$port: trace says $(jq -c '[.results[0].verdict, .results[0].reason]' <<<"$json") ($want), a real connection gives $got")
	done
	if [ ${#bad[@]} -eq 0 ]; then
		pass "policy $p: the trace's verdict matches all $n real attempts"
	else
		fail "policy $p: the trace's verdict matches all $n real attempts" "${bad[@]}"
	fi
	runc_stop "$name" || diag "policy $p: runc delete: $(cat "$(runc_bundle_dir "$name")/delete.log")"
done

done_testing
