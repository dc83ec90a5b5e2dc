#!/bin/bash
# Traffic shaping against the qdiscs, in one interleaved run (not a test: nothing passes or
# fails; it prints figures and ratios).
#
# A "container" (a cgroup whose processes run in a network namespace of the script's own) talks
# over a veth to a "host" namespace, also the script's own. Each cell (rate, direction) is
# measured with each option in turn, the options' order rotating from round to round:
#
#   weir  kubernetes.io/{egress,ingress}-bandwidth through weir-hook, with weir's default
#         burst (egress 10 ms at the rate, ingress 250 ms, at least 65 KiB). weir-hook runs in
#         the host namespace, where the veth's far end is, as on a node: egress is shaped by
#         the cgroup's program, ingress by weir's tc program on the host end (the interface
#         path; the figures say which path weir reported)
#   weircg the same, with weir-hook run outside the host namespace, so that the veth's far end
#         is not weir's and ingress is shaped by the cgroup ingress program (the path of host
#         network, macvlan and rootless containers); egress is the same as weir's
#   tbf   a TBF qdisc (latency 25 ms) on the sender's side of the veth: the container's eth0
#         for egress, the host end for ingress
#   htb   an HTB qdisc with one class (rate = ceil, default pfifo leaf), in the same place
#   cni   the CNI bandwidth plugin, run as a runtime runs it (CNI_COMMAND=ADD, a chained
#         config with the bridge's prevResult) in the script's host namespace: a TBF on the
#         host end for ingress, an ifb with a TBF for egress
#
# The qdiscs get a burst of 10 ms at the rate, at least 65 KiB, both ways.
# Per cell and option:
#   * goodput: iperf3 (TCP, one flow, the first second left out) divided by the limit; the
#     figure is the receiver's report, and a row counts only when the shaper's own counter
#     (weir's stats, the qdisc's byte count) saw at least as many bytes: traffic that went
#     around the shaper, or a report of nothing, is printed as INVALID instead. Before each
#     option the veth's qdiscs and the cgroup are checked bare (the CNI plugin's DEL leaves
#     its qdiscs on the host end to the runtime, which deletes the veth; here they are removed);
#   * a small request/response flow (sockperf ping-pong, TCP, 200 messages a second): round
#     trip p50 and p99 while one bulk iperf3 flow fills the limit, divided by the same flow's
#     round trip with the shaper in place and no load;
#   * the first second: UDP at three times the limit into a fresh shaper for one second; the
#     bytes that arrive above the limit's share of that second, against the configured burst.
# TCP is measured with each congestion control of --cc (iperf3 -C: the sender's, the container
# for egress, the host for ingress; a row counts only when iperf3's report names it as the
# sender's). The small flow keeps the namespace's default. Figures are medians over rounds.
#
# Usage: tests/bench/shaping-bench.sh [--rounds N] [--seconds S] [--quick]
#          [--rates "10M 100M 1G"] [--cc "cubic bbr"] [--options "weir weircg tbf htb cni"]
#          [--dirs "egress ingress"]                          (root, after make)
#   --quick: one round of 3-second measurements.
set -euo pipefail

# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init shaping-bench
HOOK=$BIN/weir-hook WEIR=$BIN/weir
ROUNDS=3 SECS=4 RATES="10M 100M 1G" CCS="cubic bbr" OPTS="weir weircg tbf htb cni" DIRS="egress ingress"
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift 2 ;;
	--seconds) SECS=$2; shift 2 ;;
	--quick) ROUNDS=1 SECS=3; shift ;;
	--rates) RATES=$2; shift 2 ;;
	--cc) CCS=$2; shift 2 ;;
	--options) OPTS=$2; shift 2 ;;
	--dirs) DIRS=$2; shift 2 ;;
	*) echo "shaping-bench: unknown option $1" >&2; exit 2 ;;
	esac
done
for f in "$HOOK" "$WEIR"; do
	[ -x "$f" ] || { echo "shaping-bench: $f missing: run make" >&2; exit 1; }
done
for c in iperf3 sockperf tc jq; do
	command -v "$c" >/dev/null || { echo "shaping-bench: $c not installed" >&2; exit 1; }
done
for c in $CCS; do
	grep -qw "$c" /proc/sys/net/ipv4/tcp_available_congestion_control ||
		{ echo "shaping-bench: the kernel has no $c congestion control" >&2; exit 1; }
done
CNI_BW=
for d in /usr/lib/cni /opt/cni/bin /usr/libexec/cni; do
	[ -x "$d/bandwidth" ] && { CNI_BW=$d/bandwidth; break; }
done
if [[ " $OPTS " == *" cni "* ]] && [ -z "$CNI_BW" ]; then
	echo "shaping-bench: the CNI bandwidth plugin is not installed (containernetworking-plugins)" >&2
	exit 1
fi

TMP=$(mktemp -d /tmp/weir-shbench.XXXXXX)
P=wshb$$
NC=$P-c NS=$P-s
C_IP=10.124.0.1 S_IP=10.124.0.2
CG2=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
CG=$CG2/$P-ctr
PIDS=
WEIR_ON=0
PATHS= # opt:dir:path, as weir list reported the shaping path at each attach
bench_own_weir "$P" "$TMP" || { echo "shaping-bench: cannot set up its own weir" >&2; exit 1; }
hook() { "$HOOK" --config "$BENCH_CONF" "$@"; }
# hook_as OPT ARGS...: weir-hook where OPT runs it: weir in the host namespace (the veth's far
# end is weir's: the interface path), weircg outside it (the cgroup path)
hook_as() {
	local opt=$1
	shift
	# nsenter, not ip netns exec: that mounts the namespace's own /sys, without the bpffs
	if [ "$opt" = weir ]; then nsenter --net="/run/netns/$NS" "$HOOK" --config "$BENCH_CONF" "$@"; else hook "$@"; fi
}
weir() { "$WEIR" --config "$BENCH_CONF" "$@"; }
cleanup() {
	set +e
	[ "$WEIR_ON" = 0 ] || hook_as "$WEIR_ON" poststop <"$TMP/ctr.stop" >/dev/null 2>&1
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$NC" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rmdir "$CG" 2>/dev/null
	bench_own_weir_unload
	rm -rf "$TMP"
}
trap cleanup EXIT

# ---- the namespaces, the servers, the container's cgroup -----------------------------------
ip netns add "$NC"
ip netns add "$NS"
ip link add eth0 netns "$NC" type veth peer name vs0 netns "$NS"
ip -n "$NC" addr add "$C_IP/24" dev eth0
ip -n "$NS" addr add "$S_IP/24" dev vs0
for n in "$NC" "$NS"; do
	ip -n "$n" link set lo up
done
ip -n "$NC" link set eth0 up
ip -n "$NS" link set vs0 up
MTU=$(ip netns exec "$NC" cat /sys/class/net/eth0/mtu)
in_srv() { ip netns exec "$NS" "$@"; }
# ip netns exec itself, not in_srv: $! is then the server's pid, which cleanup kills
for port in 5201 5202; do
	ip netns exec "$NS" iperf3 -s -p "$port" >/dev/null 2>&1 &
	PIDS="$PIDS $!"
done
ip netns exec "$NS" sockperf server --tcp -i "$S_IP" -p 11111 >/dev/null 2>&1 &
PIDS="$PIDS $!"
mkdir -p "$CG" "$TMP/ctr"
# the container's first process, in its network namespace too: weir finds the interface from it
# shellcheck disable=SC2016 # expanded by the inner sh
nsenter --net="/run/netns/$NC" sh -c 'echo $$ > "$1/cgroup.procs"; exec sleep 100000' sh "$CG" &
SLEEPER=$!
PIDS="$PIDS $SLEEPER"
bench_wait 10 bench_listening "$NS" 5201 5202 11111
bench_wait 5 bench_in_cgroup "$SLEEPER" "$CG"
jq -n --arg id "$P-ctr" --arg b "$TMP/ctr" '{ociVersion: "1.0.2", id: $id, status: "stopped", bundle: $b}' \
	>"$TMP/ctr.stop"

# in_ctr CMD...: CMD in the container (its cgroup and network namespace)
# shellcheck disable=SC2016 # expanded by the inner sh
in_ctr() { sh -c 'echo $$ > "$1/cgroup.procs"; shift; exec ip netns exec "$0" "$@"' "$NC" "$CG" "$@"; }

# bps QUANTITY: bits per second of 10M, 1G...
bps() {
	case $1 in
	*G) echo $((${1%G} * 1000000000)) ;;
	*M) echo $((${1%M} * 1000000)) ;;
	*k) echo $((${1%k} * 1000)) ;;
	*) echo "$1" ;;
	esac
}
# burst_of RATE_BPS MS: bytes of MS milliseconds at the rate, at least 65 KiB
burst_of() { awk -v r="$1" -v ms="$2" 'BEGIN { b = r / 8 * ms / 1000; if (b < 66560) b = 66560; printf "%.0f", b }'; }
# payload_share LIMIT: what a limit on IP bytes leaves a bulk TCP flow's payload (MTU - 52 of
# every MTU: IPv4, TCP and timestamp headers), as tests/e2e/lib/shaping.sh has it
payload_share() { awk -v l="$1" -v m="$MTU" 'BEGIN { printf "%.0f", l * (m - 52) / m }'; }

# ---- the shapers -------------------------------------------------------------------------
# shaper_dev DIR: "NETNS DEV" where a qdisc for DIR goes (the sender's side)
shaper_dev() { if [ "$1" = egress ]; then echo "$NC eth0"; else echo "$NS vs0"; fi; }

# no_shaper_left: the veth has no qdisc but its default (noqueue) at either end, and the
# container's cgroup no weir endpoint: what one option set up cannot shape the next one's rows
no_shaper_left() {
	local left
	left=$({
		ip netns exec "$NC" tc -j qdisc show dev eth0
		ip netns exec "$NS" tc -j qdisc show dev vs0
	} | jq -r '.[] | select(.kind != "noqueue") | "\(.kind) \(.handle)"')
	[ "$WEIR_ON" = 0 ] || left="$left weir endpoint"
	if [ -n "${left// /}" ]; then
		echo "shaping-bench: left over from the previous option: $left" >&2
		exit 1
	fi
}

CNI_IFB=
shaper_on() { # OPT DIR RATE_BPS QDISC_BURST
	local opt=$1 dir=$2 rate=$3 burst=$4 ns dev
	read -r ns dev <<<"$(shaper_dev "$dir")"
	case $opt in
	none) ;;
	weir | weircg)
		jq -n --arg k "kubernetes.io/$dir-bandwidth" --arg v "$rate" \
			'{ociVersion: "1.0.2", annotations: {($k): $v}}' >"$TMP/ctr/config.json"
		jq -n --arg id "$P-ctr" --argjson pid "$SLEEPER" --arg b "$TMP/ctr" \
			'{ociVersion: "1.0.2", id: $id, status: "creating", pid: $pid, bundle: $b}' | hook_as "$opt" createRuntime
		WEIR_ON=$opt
		PATHS="$PATHS $opt:$dir:$(weir list --json | jq -r --arg id "$P-ctr" --arg d "$dir" '.[] | select(.id == $id) | .shaping[$d] // "?"')"
		;;
	tbf)
		ip netns exec "$ns" tc qdisc replace dev "$dev" root tbf rate "${rate}bit" burst "$burst" latency 25ms ;;
	htb)
		ip netns exec "$ns" tc qdisc replace dev "$dev" root handle 1: htb default 1
		ip netns exec "$ns" tc class add dev "$dev" parent 1: classid 1:1 htb rate "${rate}bit" \
			ceil "${rate}bit" burst "$burst" cburst "$burst"
		;;
	cni)
		cni_bandwidth ADD "$dir" "$rate" "$burst" >"$TMP/cni.out" ||
			{ echo "shaping-bench: the CNI bandwidth plugin failed: $(cat "$TMP/cni.out")" >&2; exit 1; }
		CNI_IFB=$(jq -r '[.interfaces[] | select(.name | startswith("bwp"))][0].name // empty' "$TMP/cni.out")
		;;
	esac
}
shaper_off() { # OPT DIR RATE_BPS QDISC_BURST
	local ns dev
	read -r ns dev <<<"$(shaper_dev "$2")"
	case $1 in
	weir | weircg) hook_as "$1" poststop <"$TMP/ctr.stop"; WEIR_ON=0 ;;
	tbf | htb) ip netns exec "$ns" tc qdisc del dev "$dev" root ;;
	cni)
		cni_bandwidth DEL "$2" "$3" "$4" >/dev/null
		# the plugin deletes its ifb only, and leaves the qdiscs on the host end to the
		# runtime, which deletes the veth: here the veth stays for the next option
		if [ "$2" = ingress ]; then
			in_srv tc qdisc del dev vs0 root
		else
			in_srv tc qdisc del dev vs0 ingress
		fi
		;;
	esac
}

# cni_bandwidth ADD|DEL DIR RATE_BPS BURST: the plugin as a runtime chains it after a bridge or
# veth plugin, with that plugin's result (the host end, the container's eth0 in its netns)
cni_bandwidth() {
	local cmd=$1 dir=$2 rate=$3 burst=$4 mac_c mac_s conf
	mac_c=$(ip netns exec "$NC" cat /sys/class/net/eth0/address)
	mac_s=$(ip netns exec "$NS" cat /sys/class/net/vs0/address)
	conf=$(jq -n --arg d "$dir" --argjson r "$rate" --argjson b "$((burst * 8))" \
		--arg mc "$mac_c" --arg ms "$mac_s" --arg nsp "/var/run/netns/$NC" --arg ip "$C_IP/24" '
		{cniVersion: "1.0.0", name: "wshb", type: "bandwidth"}
		+ (if $d == "ingress" then {ingressRate: $r, ingressBurst: $b} else {egressRate: $r, egressBurst: $b} end)
		+ {prevResult: {cniVersion: "1.0.0",
			interfaces: [{name: "vs0", mac: $ms}, {name: "eth0", mac: $mc, sandbox: $nsp}],
			ips: [{address: $ip, interface: 1}]}}')
	CNI_COMMAND=$cmd CNI_CONTAINERID=$P CNI_NETNS=/var/run/netns/$NC CNI_IFNAME=eth0 \
		CNI_PATH=$(dirname "$CNI_BW") ip netns exec "$NS" "$CNI_BW" <<<"$conf"
}

# shaper_bytes OPT DIR: bytes the shaper has seen so far (its own counter)
shaper_bytes() {
	local ns dev
	read -r ns dev <<<"$(shaper_dev "$2")"
	case $1 in
	weir | weircg) weir stats --json "$P-ctr" | jq --arg d "$2" '.[$d].tcp.bytes + .[$d].udp.bytes' ;;
	tbf | htb) ip netns exec "$ns" tc -s -j qdisc show dev "$dev" | jq '[.[] | select(.root == true)][0].bytes' ;;
	cni)
		if [ "$2" = egress ]; then
			ip netns exec "$NS" tc -s -j qdisc show dev "$CNI_IFB" | jq '[.[] | select(.kind == "tbf")][0].bytes'
		else
			ip netns exec "$NS" tc -s -j qdisc show dev vs0 | jq '[.[] | select(.kind == "tbf")][0].bytes'
		fi
		;;
	*) echo 0 ;;
	esac
}

# ---- the measurements ---------------------------------------------------------------------
RES=$TMP/results # round opt rate dir cc metric value
rev() { [ "$1" = egress ] || echo -R; }

# iperf_json OUT ARGS...: one iperf3 run from the container to port 5201 (again when the
# server was still busy with the previous test)
iperf_json() {
	local out=$1 try
	shift
	for try in 1 2 3 4 5; do
		in_ctr iperf3 -J -c "$S_IP" -p 5201 "$@" >"$out" 2>&1 || true
		jq -e '.end.sum_received.bytes // .end.sum.bytes' "$out" >/dev/null 2>&1 && return 0
		bench_wait 5 bench_listening "$NS" 5201
		[ "$try" -lt 5 ] || break
	done
	echo "shaping-bench: iperf3 $*: $(jq -r '.error // empty' "$out" 2>/dev/null || head -c 300 "$out")" >&2
	return 1
}


# m_goodput R OPT RATE DIR CC
m_goodput() {
	local r=$1 opt=$2 rate=$3 dir=$4 cc=$5 b0 b1 got rbytes seen sender why=
	b0=$(shaper_bytes "$opt" "$dir")
	# shellcheck disable=SC2046 # rev is one word or none
	iperf_json "$TMP/gp.json" -t "$SECS" -O 1 -C "$cc" $(rev "$dir") || return 0
	b1=$(shaper_bytes "$opt" "$dir")
	got=$(jq -r '.end.sum_received.bits_per_second' "$TMP/gp.json")
	rbytes=$(jq -r '.end.sum_received.bytes' "$TMP/gp.json")
	sender=$(jq -r '.end.sender_tcp_congestion // "?"' "$TMP/gp.json")
	seen=$((b1 - b0))
	if [ "$opt" != none ]; then
		awk -v g="$rbytes" 'BEGIN { exit !(g > 0) }' || why="iperf3's receiver reports nothing"
		[ -n "$why" ] || [ "$seen" -ge "$rbytes" ] ||
			why="the shaper saw $seen bytes, the receiver got $rbytes: traffic went around it"
	fi
	[ "$sender" = "$cc" ] || why="${why:+$why; }the sender ran $sender, not $cc"
	if [ -n "$why" ]; then
		echo "  INVALID $opt $rate $dir $cc goodput: $why" >&2
		echo "$r $opt $rate $dir $cc invalid 1" >>"$RES"
		return 0
	fi
	echo "$r $opt $rate $dir $cc goodput $got" >>"$RES"
}

# sockperf_rtt: "p50 p99" round trips in us of the small flow, for SECS seconds
sockperf_rtt() {
	in_ctr sockperf ping-pong --tcp -i "$S_IP" -p 11111 -t "$SECS" --mps 200 -m 64 --full-rtt 2>&1 |
		awk '/percentile 50.000/ { p50 = $NF } /percentile 99.000/ { p99 = $NF } END { if (p50 != "") print p50, p99 }'
}

bulk_running() { [ "$(grep -c ' sec ' "$TMP/bulk.log" 2>/dev/null)" -ge 3 ]; }

# m_rtt R OPT RATE DIR CC: the small flow's round trip under one bulk flow (port 5202)
m_rtt() {
	local r=$1 opt=$2 rate=$3 dir=$4 cc=$5 bulk rtt
	: >"$TMP/bulk.log"
	# shellcheck disable=SC2046 # rev is one word or none
	in_ctr iperf3 -c "$S_IP" -p 5202 -t $((SECS + 4)) -i 0.5 --forceflush -C "$cc" $(rev "$dir") >"$TMP/bulk.log" 2>&1 &
	bulk=$!
	bench_wait 15 bulk_running # 1.5 s of the bulk flow: past its start
	rtt=$(sockperf_rtt)
	wait "$bulk" || true
	bench_wait 5 bench_listening "$NS" 5202
	[ -n "$rtt" ] || { echo "  sockperf gave nothing ($opt $rate $dir $cc)" >&2; return 0; }
	echo "$r $opt $rate $dir $cc rtt50 ${rtt% *}" >>"$RES"
	echo "$r $opt $rate $dir $cc rtt99 ${rtt#* }" >>"$RES"
}

# m_idle R OPT RATE DIR
m_idle() {
	local rtt
	rtt=$(sockperf_rtt)
	[ -n "$rtt" ] || return 0
	echo "$1 $2 $3 $4 - idle50 ${rtt% *}" >>"$RES"
	echo "$1 $2 $3 $4 - idle99 ${rtt#* }" >>"$RES"
}

# m_first R OPT RATE DIR RATE_BPS: UDP at 3x the limit for one second into the fresh shaper
m_first() {
	local r=$1 opt=$2 rate=$3 dir=$4 bps=$5 got secs offered
	# shellcheck disable=SC2046 # rev is one word or none
	iperf_json "$TMP/first.json" -u -b $((bps * 3)) -t 1 $(rev "$dir") || return 0
	got=$(jq -r '(.end.sum.packets - .end.sum.lost_packets) * .start.test_start.blksize' "$TMP/first.json")
	secs=$(jq -r '.end.sum.seconds' "$TMP/first.json")
	offered=$(jq -r '.end.sum.packets * .start.test_start.blksize * 8 / .end.sum.seconds' "$TMP/first.json")
	echo "$r $opt $rate $dir - first $(awk -v g="$got" -v b="$bps" -v s="$secs" 'BEGIN { printf "%.0f", g - b / 8 * s }')" >>"$RES"
	echo "$r $opt $rate $dir - offered $offered" >>"$RES"
}

# ---- the run --------------------------------------------------------------------------------
echo "shaping-bench: $ROUNDS round(s) of ${SECS} s measurements; rates $RATES; $DIRS; options $OPTS; senders $CCS; MTU $MTU"
read -r -a opts <<<"$OPTS"
: >"$RES"
for r in $(seq "$ROUNDS"); do
	# the machine's own pace, unshaped, both ways
	for dir in $DIRS; do
		m_goodput "$r" none unshaped "$dir" "${CCS%% *}"
	done
	for rate in $RATES; do
		bps=$(bps "$rate")
		qburst=$(burst_of "$bps" 10)
		for dir in $DIRS; do
			for i in "${!opts[@]}"; do
				opt=${opts[$(((i + r - 1) % ${#opts[@]}))]}
				echo "$(date +%T) round $r: $rate $dir $opt" >&2
				no_shaper_left
				shaper_on "$opt" "$dir" "$bps" "$qburst"
				m_first "$r" "$opt" "$rate" "$dir" "$bps"
				m_idle "$r" "$opt" "$rate" "$dir"
				for cc in $CCS; do
					m_goodput "$r" "$opt" "$rate" "$dir" "$cc"
					m_rtt "$r" "$opt" "$rate" "$dir" "$cc"
				done
				shaper_off "$opt" "$dir" "$bps" "$qburst"
			done
		done
	done
done

# ---- the figures --------------------------------------------------------------------------
# med OPT RATE DIR CC METRIC: the median over rounds ("" when none)
med() { awk -v o="$1" -v ra="$2" -v d="$3" -v c="$4" -v m="$5" '$2 == o && $3 == ra && $4 == d && $5 == c && $6 == m { print $7 }' "$RES" | median; }
cnt() { awk -v o="$1" -v ra="$2" -v d="$3" -v c="$4" -v m="$5" '$2 == o && $3 == ra && $4 == d && $5 == c && $6 == m' "$RES" | wc -l; }
fmt() { awk -v v="$1" -v d="$2" -v f="$3" 'BEGIN { if (v == "" || d == "" || d == 0) print "-"; else printf f, v / d }'; }

echo
for dir in $DIRS; do
	g=$(med none unshaped "$dir" "${CCS%% *}" goodput)
	echo "unshaped $dir (${CCS%% *}): $(fmt "$g" 1000000000 '%.2f Gbit/s')"
done
echo
echo "goodput / limit (TCP, iperf3 receiver; in brackets: / the limit less headers); RTT of a small flow under load / idle (p50, p99; idle p50 in ms);"
echo "first second: bytes above the limit's share, UDP at 3x (burst: weir egress 10 ms / ingress 250 ms at the rate, qdiscs 10 ms; all at least 65 KiB)"
printf '%-5s %-5s %-7s %-5s %-15s %-8s %-8s %-9s %-9s %s\n' rate dir option cc goodput rtt50 rtt99 idle50ms load50ms "first s (burst)"
for rate in $RATES; do
	bps=$(bps "$rate")
	for dir in $DIRS; do
		for opt in "${opts[@]}"; do
			if [[ $opt == weir* ]] && [ "$dir" = ingress ]; then b=$(burst_of "$bps" 250); else b=$(burst_of "$bps" 10); fi
			f=$(med "$opt" "$rate" "$dir" - first)
			off=$(med "$opt" "$rate" "$dir" - offered)
			i50=$(med "$opt" "$rate" "$dir" - idle50)
			for cc in $CCS; do
				g=$(med "$opt" "$rate" "$dir" "$cc" goodput)
				bad=$(cnt "$opt" "$rate" "$dir" "$cc" invalid)
				l50=$(med "$opt" "$rate" "$dir" "$cc" rtt50)
				l99=$(med "$opt" "$rate" "$dir" "$cc" rtt99)
				i99=$(med "$opt" "$rate" "$dir" - idle99)
				gp="$(fmt "$g" "$bps" '%.3f') ($(fmt "$g" "$(payload_share "$bps")" '%.3f'))"
				[ "$bad" = 0 ] || gp="$gp INVALID x$bad"
				printf '%-5s %-5s %-7s %-5s %-15s %-8s %-8s %-9s %-9s %s\n' "$rate" "${dir:0:5}" "$opt" "$cc" "$gp" \
					"$(fmt "$l50" "$i50" '%.1f')" "$(fmt "$l99" "$i99" '%.1f')" "$(fmt "$i50" 1000 '%.3f')" \
					"$(fmt "$l50" 1000 '%.3f')" "${f:--} ($b)$(awk -v o="$off" -v b="$bps" 'BEGIN { if (o != "" && o < 1.2 * b) printf " offered only %.2f of the limit", o / b }')"
			done
		done
	done
done
echo
for opt in weir weircg; do
	for dir in $DIRS; do
		p=$(tr ' ' '\n' <<<"$PATHS" | awk -F: -v o="$opt" -v d="$dir" '$1 == o && $2 == d { print $3 }' | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')
		[ -z "$p" ] || echo "$opt $dir shaped by: $p (weir list)"
	done
done
echo
echo "weir against the qdiscs (goodput, median over congestion controls and rounds):"
for rate in $RATES; do
	bps=$(bps "$rate")
	for dir in $DIRS; do
		line="$rate $dir: weir $(fmt "$(awk -v ra="$rate" -v d="$dir" '$2 == "weir" && $3 == ra && $4 == d && $6 == "goodput" { print $7 }' "$RES" | median)" "$bps" '%.3f')"
		for opt in "${opts[@]}"; do
			[ "$opt" != weir ] || continue
			w=$(awk -v ra="$rate" -v d="$dir" '$2 == "weir" && $3 == ra && $4 == d && $6 == "goodput" { print $7 }' "$RES" | median)
			q=$(awk -v o="$opt" -v ra="$rate" -v d="$dir" '$2 == o && $3 == ra && $4 == d && $6 == "goodput" { print $7 }' "$RES" | median)
			line="$line, $opt $(fmt "$q" "$bps" '%.3f') (weir/$opt $(fmt "$w" "$q" '%.3f'))"
		done
		echo "  $line"
	done
done
