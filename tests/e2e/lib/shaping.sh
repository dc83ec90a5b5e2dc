# shellcheck shell=bash
# Traffic shaping yardsticks shared by the shaping suites (shaping.t with runc,
# podman-shaping.t, cri/shaping.t). Source after common.sh (or define pass, fail and
# diag_block the way it does). MTU must be set to the container's eth0 MTU before goodput or
# payload_share is used.
#
# Goodput is checked against the limit less headers (within 5 %), which is a property of the
# limiter, not a speed: iperf3 reports what arrived, whatever the machine's pace. A reading
# below the limit is repeated (a starved sender on a busy machine is not the limiter's fault);
# one above it fails at once: no noise makes a limiter let more through.

# in_cgroup_netns PID CGROUP CMD...: CMD in the network namespace of PID and in the cgroup
# directory CGROUP (a container's, so that weir's programs on it see CMD's sockets). The host's
# binaries run there: the test images have no iperf3.
in_cgroup_netns() {
	local pid=$1 cg=$2
	shift 2
	# shellcheck disable=SC2016 # expanded by the inner shell
	nsenter --net="/proc/$pid/ns/net" sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' \
		sh "$cg" "$@"
}

# within GOT LIMIT PCT: GOT (bits/s) is within PCT % of LIMIT.
within() { awk -v g="$1" -v l="$2" -v p="$3" 'BEGIN { exit !(g >= l * (1 - p / 100) && g <= l * (1 + p / 100)) }'; }
above() { awk -v g="$1" -v l="$2" -v p="$3" 'BEGIN { exit !(g > l * (1 + p / 100)) }'; }
mbit() { awk -v g="$1" 'BEGIN { printf "%.2f Mbit/s", g / 1e6 }'; }
rx_bps() { jq -r '.end.sum_received.bits_per_second // empty' "$1" 2>/dev/null; }
# iperf_summary OUT: what to show of a run that failed: its error, or its end sums.
iperf_summary() {
	jq -c '{error, received: .end.sum_received, sent: .end.sum_sent, sum: .end.sum} | with_entries(select(.value != null))' \
		"$1" 2>/dev/null || head -c 600 "$1"
}

# payload_share LIMIT: the goodput a limit on IP bytes leaves a bulk TCP flow: full-sized
# segments carry MTU - 52 bytes (IPv4 20, TCP 20, timestamps 12) of every MTU on the wire.
payload_share() { awk -v l="$1" -v m="$MTU" 'BEGIN { printf "%.0f", l * (m - 52) / m }'; }

# goodput LABEL LIMIT OUT RUN...: 1 test: RUN (which writes iperf3's JSON to OUT) measures a
# goodput within 5 % of LIMIT less headers. Above fails at once; below is retried
# (GOODPUT_TRIES, 3 by default).
goodput() {
	local label=$1 limit=$2 out=$3 got try seen=() want
	shift 3
	want=$(payload_share "$limit")
	for try in $(seq "${GOODPUT_TRIES:-3}"); do
		"$@"
		got=$(rx_bps "$out")
		seen+=("${got:+$(mbit "$got")}")
		if [ -n "$got" ] && within "$got" "$want" 5; then
			pass "$label: goodput $(mbit "$got") is within 5 % of $(mbit "$want") (the limit, $(mbit "$limit"), less TCP/IP headers)${seen[1]:+ (try $try)}"
			return 0
		fi
		if [ -z "$got" ] || above "$got" "$want" 5; then
			break
		fi
	done
	fail "$label: goodput within 5 % of $(mbit "$want") (the limit, $(mbit "$limit"), less TCP/IP headers)" \
		"measured: ${seen[*]}"
	diag_block iperf3 "$(iperf_summary "$out")"
}

# goodput_pair LABEL_A LIMIT_A OUT_A LABEL_B LIMIT_B OUT_B RUN...: 2 tests: RUN runs two
# flows at once, writing iperf3's JSON to OUT_A and OUT_B; each is held to its own limit, as
# goodput checks it. RUN is repeated (3 times at most) while one is below its yardstick and
# neither above it.
goodput_pair() {
	local la=$1 lima=$2 outa=$3 lb=$4 limb=$5 outb=$6 try a b wa wb
	shift 6
	wa=$(payload_share "$lima")
	wb=$(payload_share "$limb")
	for try in 1 2 3; do
		"$@"
		a=$(rx_bps "$outa")
		b=$(rx_bps "$outb")
		if [ -z "$a" ] || [ -z "$b" ] || above "$a" "$wa" 5 || above "$b" "$wb" 5; then
			break
		fi
		if within "$a" "$wa" 5 && within "$b" "$wb" 5; then
			break
		fi
	done
	GOODPUT_TRIES=1 goodput "$la" "$lima" "$outa" true
	GOODPUT_TRIES=1 goodput "$lb" "$limb" "$outb" true
}

# udp_held LABEL LIMIT BURST OUT RUN...: 1 test: RUN sends UDP above LIMIT (bits/s) for
# some seconds and writes iperf3's JSON to OUT; what arrives is at most the limit (+5 %) and
# BURST bytes spread over the run (the limiter was idle before it), and at least 80 % of it.
udp_held() {
	local label=$1 limit=$2 burst=$3 out=$4 udp most secs
	shift 4
	"$@"
	udp=$(jq -r '.end.sum.bits_per_second * (100 - .end.sum.lost_percent) / 100' "$out" 2>/dev/null)
	secs=$(jq -r '.end.sum.seconds' "$out" 2>/dev/null)
	most=$(awk -v l="$limit" -v b="$burst" -v t="${secs:-1}" 'BEGIN { printf "%.0f", l * 1.05 + b * 8 / t }')
	if [ -n "$udp" ] && awk -v g="$udp" -v m="$most" -v l="$limit" 'BEGIN { exit !(g <= m && g >= l * 0.8) }'; then
		pass "$label: $(mbit "$udp") arrive (at most $(mbit "$most"): the limit and the burst)"
	else
		fail "$label: arrives at $(mbit "$((limit * 8 / 10))") to $(mbit "$most") (the limit and the burst)" "got ${udp:-nothing}"
		diag_block iperf3 "$(iperf_summary "$out")"
	fi
}

# default_burst DIR LIMIT: weir's default burst in bytes: 10 ms at the rate for egress, 250 ms
# for ingress, at least 65 KiB.
default_burst() {
	awk -v d="$1" -v l="$2" 'BEGIN { b = l / 8 * (d == "egress" ? 0.010 : 0.250); if (b < 66560) b = 66560; printf "%.0f", b }'
}

# rr_under_load NAME GW PORT [IPERF-ARGS...]: the median (ms) of ten small TCP exchanges from
# container NAME with the wtool tcp-server on GW port 9100, each timed while NAME runs a bulk
# iperf3 flow with GW:PORT (add -R for one towards NAME). The suite defines in_ctr NAME CMD...
rr_under_load() {
	local name=$1 gw=$2 port=$3 bulk ms=()
	shift 3
	in_ctr "$name" iperf3 -c "$gw" -p "$port" "$@" -t 8 -i 0.5 --forceflush \
		>"$E2E_TMP/bulk-$name.log" 2>&1 &
	bulk=$!
	retry 10 _bulk_flowing "$name" || true
	for _ in $(seq 10); do
		wrun in_ctr "$name" "$WTOOL" tcp-rr "$gw" 9100 3000
		ms+=("$W_MS")
	done
	wait "$bulk" || true
	printf '%s\n' "${ms[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (v[5] + v[6]) / 2 }'
}
# NAME's bulk flow has run for a second (its third interval report)
_bulk_flowing() { [ "$(grep -c ' sec ' "$E2E_TMP/bulk-$1.log" 2>/dev/null)" -ge 3 ]; }

# check_rr_against_tbf WHAT WEIR-NAME WEIR-GW TBF-NAME TBF-GW [IPERF-ARGS...]: 1 test, side by
# side in one run: under a bulk flow at the limit (iperf3 port 5201 behind weir, 5203 behind the
# TBF), a small exchange behind weir's limiter takes less than half its time behind a TBF,
# since weir keeps no queue. WHAT says which limiter and direction, for the test line.
check_rr_against_tbf() {
	local what=$1 wname=$2 wgw=$3 tname=$4 tgw=$5 w t
	shift 5
	w=$(rr_under_load "$wname" "$wgw" 5201 "$@")
	t=$(rr_under_load "$tname" "$tgw" 5203 "$@")
	if awk -v w="$w" -v t="$t" 'BEGIN { exit !(w != "" && t != "" && w * 2 < t) }'; then
		pass "$what: a small exchange takes $w ms behind weir's limiter and $t ms behind a TBF (medians of ten)"
	else
		fail "$what: a small exchange behind weir's limiter takes less than half its time behind a TBF" \
			"weir: $w ms, TBF: $t ms (medians of ten)"
		diag_block "bulk flows" "$(tail -n 3 "$E2E_TMP/bulk-$wname.log"; tail -n 3 "$E2E_TMP/bulk-$tname.log")"
	fi
}
