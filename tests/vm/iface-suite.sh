#!/bin/sh
# shellcheck disable=SC2317 # the helpers are called through t
# Ingress at the interface in a qemu guest (busybox sh; run by the guest's /init, TAP on stdout).
#
#   iface-suite.sh
#
# weir_iface_egress on a container's host-side veth drops what the container's ingress policy
# denies before the container's kernel answers it without a socket (an echo request, a SYN to a
# closed port), attached the way the guest's kernel allows: tcx where it has it (6.6 and
# newer), a cls_bpf filter on clsact's egress elsewhere (Debian's 6.1). Whether the kernel has
# tcx the suite finds out itself (the kernel's symbols), and it checks the attachment from the
# kernel's side (tc, bpftool), not from what weir reports. Where the kernel has tcx, a second
# round forces the fallback (node config tc_attach "clsact"). Then ingress shaping: a bulk TCP
# stream into a veth container with kubernetes.io/ingress-bandwidth is held near the limit.
#
# A "container" is a cgroup and a network namespace with a sleeping process in both; the
# namespace is held by a bind mount (`ip netns add`, as a pod sandbox holds its pod's), so it
# and its veth outlive the container. The veth's far end is in the guest's own namespace (the
# node's, weir's), where the test's packets come from. weir-hook attaches the container from an
# OCI state, as the hook suite does.
W=/weir
IP=$W/ip
TC=$W/tc
BPFTOOL=$W/bpftool
WT=$W/wtool
CONF=/etc/weir/iface.conf
NOBODY=192.0.2.250 # "allow $NOBODY tcp/7" makes ingress default-deny
n=0
fail=0

t() { # t DESC CMD...: one TAP line
	desc=$1
	shift
	n=$((n + 1))
	if "$@" >/tmp/t.out 2>&1; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc"
		fail=1
		sed 's/^/#   /' /tmp/t.out
	fi
}

# poll CMD...: until CMD succeeds, up to 30 s (a TCG guest is slow); the last try's status
poll() {
	i=0
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -lt 300 ] || break
		sleep 0.1
	done
	"$@"
}

# says REGEX CMD...: the first line CMD prints matches REGEX (a wtool client's answer)
says() {
	want=$1
	shift
	got=$("$@" 2>/tmp/says.err | head -n1)
	echo "$*: $got (want $want)"
	echo "$got" | grep -Eq "$want"
}

same_netns() { # same_netns PID NAME: PID's network namespace is /run/netns/NAME
	[ "$(stat -L -c %i /proc/"$1"/ns/net)" = "$(stat -L -c %i /run/netns/"$2")" ]
}

# ctr N: container iN: cgroup /iN, namespace iN with eth0 (10.77.N.2/24, fd77:N::2/64), the
# node's end ivN (10.77.N.1, fd77:N::1), a sleeping process in both (its pid in $pid)
ctr() {
	c=i$1
	mkdir -p /sys/fs/cgroup/"$c"
	$IP netns add "$c" || return 1
	$IP link add iv"$1" type veth peer name eth0 netns "$c" || return 1
	$IP addr add 10.77."$1".1/24 dev iv"$1"
	$IP -6 addr add fd77:"$1"::1/64 dev iv"$1" nodad
	$IP link set iv"$1" up
	$IP -n "$c" link set lo up
	$IP -n "$c" addr add 10.77."$1".2/24 dev eth0
	$IP -n "$c" -6 addr add fd77:"$1"::2/64 dev eth0 nodad
	$IP -n "$c" link set eth0 up
	sh -c 'echo $$ > /sys/fs/cgroup/'"$c"'/cgroup.procs; exec nsenter --net=/run/netns/'"$c"' sleep 1000' \
		>/dev/null 2>&1 &
	pid=$!
	poll same_netns "$pid" "$c" >/dev/null
}

cin() { # cin N CMD...: CMD in container iN's namespace and cgroup
	cns=i$1
	shift
	nsenter --net=/run/netns/"$cns" sh -c 'echo $$ > /sys/fs/cgroup/'"$cns"'/cgroup.procs; exec "$@"' sh "$@"
}

# attach N PID ANNOTATIONS [CONFIG]: weir-hook createRuntime for container iN; ANNOTATIONS is
# the inside of a JSON object
attach() {
	mkdir -p /bundle/i"$1"
	printf '{"ociVersion":"1.0.2","annotations":{%s}}\n' "$3" >/bundle/i"$1"/config.json
	printf '{"ociVersion":"1.0.2","id":"i%s","status":"creating","pid":%s,"bundle":"/bundle/i%s"}\n' \
		"$1" "$2" "$1" | "$W"/weir-hook --config "${4:-$CONF}" createRuntime
}

detach() { # detach N [CONFIG]
	printf '{"ociVersion":"1.0.2","id":"i%s","status":"stopped","bundle":"/bundle/i%s"}\n' "$1" "$1" |
		"$W"/weir-hook --config "${2:-$CONF}" poststop
}

# the kernel's view of ivN's egress: weir's cls_bpf filter in its slot, a tcx program of weir's
weir_filter() {
	$TC filter show dev iv"$1" egress >/tmp/tc.out 2>&1
	cat /tmp/tc.out
	grep -q 'pref 1 bpf .*handle 0x77e1 .*weir_iface_egre' /tmp/tc.out
}
weir_tcx() {
	$BPFTOOL net show dev iv"$1" >/tmp/bpftool.out 2>&1
	cat /tmp/bpftool.out
	grep -q "iv$1([0-9]*) tcx/egress weir_iface_egre" /tmp/bpftool.out
}
no_filter() { # no_filter N: no filter at all in weir's slot
	$TC filter show dev iv"$1" egress >/tmp/tc.out 2>&1
	cat /tmp/tc.out
	! grep -q 'handle 0x77e1' /tmp/tc.out
}
no_tcx() { # no_tcx N: no tcx egress program at all
	$BPFTOOL net show dev iv"$1" >/tmp/bpftool.out 2>&1
	cat /tmp/bpftool.out
	! grep -q tcx/egress /tmp/bpftool.out
}
nothing_of_weir() { # nothing_of_weir N: neither, nor a pinned tcx link
	no_filter "$1" && no_tcx "$1" && ! ls /sys/fs/bpf/weir/ifaces/* 2>/dev/null
}

dropped() { # dropped N: container iN's ingress policy_dropped packets (weir stats)
	"$W"/weir stats i"$1" | awk '$1 == "ingress" && $2 == "policy_dropped" { p = $3 } END { print p + 0 }'
}
drops_are() { # drops_are N WANT
	"$W"/weir stats i"$1"
	[ "$(dropped "$1")" = "$2" ]
}

stats_say() { # stats_say N TEXT: weir stats of iN has the line TEXT
	"$W"/weir stats i"$1" >/tmp/st 2>&1
	cat /tmp/st
	grep -qxF "$2" /tmp/st
}

# weir status says what the kernel's weir_egress was loaded with: the per-socket verdict slots
# (its .rodata weir_sk_cache 1, "in use") or not (0, "off": a verifier that refuses them; 6.1 and
# 6.12 take them since the fast and the full path are apart)
sk_verdicts_agree() {
	ids=$($BPFTOOL prog show pinned /sys/fs/bpf/weir/progs/weir_egress |
		sed -n 's/.*map_ids \([0-9,]*\).*/\1/p' | tr , ' ')
	k=
	for id in $ids; do
		$BPFTOOL map show id "$id" | grep -q 'name weir_bpf\.rodata' || continue
		k=$($BPFTOOL map dump id "$id" | sed -n 's/.*"weir_sk_cache": \([0-9]*\).*/\1/p')
	done
	"$W"/weir status >/tmp/st 2>&1
	s=$(sed -n 's/^per-socket verdicts: \([a-z ]*\) (.*/\1/p' /tmp/st)
	echo "kernel's weir_egress: weir_sk_cache=$k; weir status: per-socket verdicts $s"
	{ [ "$k" = 1 ] && [ "$s" = "in use" ]; } || { [ "$k" = 0 ] && [ "$s" = off ]; }
}

# round NAME MODE D A [CONFIG]: a default-deny container D and one that lets the node in, A;
# MODE is the attachment the kernel should show (tcx or clsact)
round() {
	r=$1 mode=$2 d=$3 a=$4 cf=${5:-$CONF}
	t "$r: a namespace with a veth into the node's, iv$d, and a process in it and its cgroup" ctr "$d"
	dpid=$pid
	t "$r: weir-hook attaches a container whose ingress is default-deny" \
		attach "$d" "$dpid" "\"ingress.weir.io\":\"allow $NOBODY tcp/7\"" "$cf"
	t "$r: weir stats names its interface iv$d, $mode" stats_say "$d" "  interface: iv$d ($mode)"
	if [ "$mode" = tcx ]; then
		t "$r: the kernel has weir_iface_egress on iv$d's tcx egress (bpftool net)" weir_tcx "$d"
		t "$r: ... and no cls_bpf filter in weir's slot (tc filter show)" no_filter "$d"
	else
		t "$r: the kernel has weir_iface_egress as a cls_bpf filter on iv$d's clsact egress, priority 1, handle 0x77e1 (tc filter show)" \
			weir_filter "$d"
		t "$r: ... and no tcx program (bpftool net)" no_tcx "$d"
	fi
	sed -n '/ bpf /s/^/# tc filter show: /p' /tmp/tc.out
	sed -n '/iv/s/^/# bpftool net show: /p' /tmp/bpftool.out
	t "$r: IPv4: a ping to the container gets no reply" says '^(ETIMEDOUT|ENOBUFS)' "$WT" ping 10.77."$d".2 1 56 1000
	t "$r: IPv6: a ping to the container gets no reply" says '^(ETIMEDOUT|ENOBUFS)' "$WT" ping fd77:"$d"::2 1 56 1000
	# one SYN: a connect timeout below the first retransmission (1 s)
	t "$r: a SYN to a closed port gets no reset" says '^ETIMEDOUT' "$WT" connect 10.77."$d".2 9001 600
	t "$r: weir stats counts the 3 packets dropped at the interface" drops_are "$d" 3
	t "$r: the container's own ping to the node is answered (a reply of its flow)" \
		says '^ok' cin "$d" "$WT" ping 10.77."$d".1 1 56 2000

	t "$r: another, iv$a" ctr "$a"
	apid=$pid
	t "$r: weir-hook attaches a container whose ingress allows the node" \
		attach "$a" "$apid" "\"ingress.weir.io\":\"allow 10.77.$a.1 icmp,tcp; allow fd77:$a::1 icmp,tcp\"" "$cf"
	t "$r: IPv4: a ping the ingress policy allows is answered" says '^ok' "$WT" ping 10.77."$a".2 1 56 2000
	t "$r: IPv6: the same" says '^ok' "$WT" ping fd77:"$a"::2 1 56 2000
	t "$r: a SYN to a closed port from the allowed peer gets its reset" \
		says '^ECONNREFUSED' "$WT" connect 10.77."$a".2 9001 2000
	t "$r: nothing dropped" drops_are "$a" 0
}

# end_round NAME D A [CONFIG]: detach both; nothing of weir's is left on their veths, which live
# on with their namespaces; then the namespaces go
end_round() {
	r=$1 d=$2 a=$3 cf=${4:-$CONF}
	kill "$dpid" "$apid"
	t "$r: weir-hook detaches the default-deny container" detach "$d" "$cf"
	t "$r: weir-hook detaches the other" detach "$a" "$cf"
	t "$r: nothing of weir's is left on iv$d (no filter, no tcx program, no pinned link)" nothing_of_weir "$d"
	t "$r: nor on iv$a" nothing_of_weir "$a"
	t "$r: the first container's namespace answers pings again" says '^ok' "$WT" ping 10.77."$d".2 1 56 2000
	$IP netns del i"$d"
	$IP netns del i"$a"
}

# stream N: Mbit/s of a bulk TCP stream of $BYTES bytes from the node into container iN's server
# on port 5001, all of it received (the server's reply), timed by wtool from connect to reply
stream() {
	"$WT" tcp-send 10.77."$1".2 5001 "$BYTES" 120000 >/tmp/send.out 2>/tmp/send.err
	cat /tmp/send.out /tmp/send.err >&2
	grep -q "^ok sent=$BYTES reply=\"received $BYTES\"" /tmp/send.out || return 1
	awk -v b="$BYTES" -v ms="$(sed -n 's/^elapsed_ms=//p' /tmp/send.err)" \
		'BEGIN { if (ms > 0) printf "%.2f\n", b * 8 / ms / 1000 }'
}

# rate_between LO HI N: container iN's stream runs at LO to HI Mbit/s (HI "-": no bound)
rate_between() {
	rate=$(stream "$3") || return 1
	echo "$rate Mbit/s (want $1 to $2)"
	echo "# stream into i$3: $rate Mbit/s" >>/tmp/rates
	awk -v r="$rate" -v lo="$1" -v hi="$2" 'BEGIN { exit !(r != "" && r >= lo && (hi == "-" || r <= hi)) }'
}

servers() { # servers N...: a tcp-server on port 5001 in each container iN, listening
	for c in "$@"; do
		cin "$c" "$WT" tcp-server 5001 >/tmp/srv"$c".out 2>&1 &
	done
	for c in "$@"; do
		poll grep -q '^listening' /tmp/srv"$c".out || return 1
	done
}

detach_all() { # detach_all N...
	for c in "$@"; do
		detach "$c" || return 1
	done
}

# Ingress shaping on a veth container: a limit low enough for a TCG guest (LIMIT Mbit/s), and an
# ingress policy, so the interface program is attached too. The same stream into a container
# without a limit shows the guest can run past the bound (the check can fail).
LIMIT=4
BYTES=3000000
shaping() {
	t "shaping: a namespace with a veth, iv6, a process in it and its cgroup" ctr 6
	p6=$pid
	t "shaping: another, iv7" ctr 7
	p7=$pid
	pol="\"ingress.weir.io\":\"allow 10.77.6.1 tcp; allow 10.77.7.1 tcp\""
	t "shaping: weir-hook attaches a container with an ingress policy and no limit" attach 6 "$p6" "$pol"
	t "shaping: weir-hook attaches one with kubernetes.io/ingress-bandwidth ${LIMIT}M too" \
		attach 7 "$p7" "$pol,\"kubernetes.io/ingress-bandwidth\":\"${LIMIT}M\""
	t "shaping: a TCP server listens in each" servers 6 7
	t "shaping: without a limit, a bulk TCP stream from the node runs past 1.3 x $LIMIT Mbit/s" \
		rate_between "$(awk -v l=$LIMIT 'BEGIN { print 1.3 * l }')" - 6
	t "shaping: with ingress-bandwidth ${LIMIT}M, the same stream is held at 0.5 to 1.3 x the limit" \
		rate_between "$(awk -v l=$LIMIT 'BEGIN { print 0.5 * l }')" "$(awk -v l=$LIMIT 'BEGIN { print 1.3 * l }')" 7
	t "shaping: weir stats says iv7's container is shaped by the interface program, not its cgroup's" \
		stats_say 7 "  ingress shaping: at the interface, before the container's namespace"
	cat /tmp/rates
	kill "$p6" "$p7"
	t "shaping: weir-hook detaches both" detach_all 6 7
	$IP netns del i6
	$IP netns del i7
}

mkdir -p /etc/weir
# the suite's cgroups, /i*, are nowhere a runtime puts containers: the node config allows them;
# a TCG guest runs 13-20 times slower than the host: the hook gets time to load the datapath
echo '{"endpoint_cgroups": ["/i*"], "hook_timeout_seconds": 300}' >$CONF
echo '{"tc_attach": "clsact", "endpoint_cgroups": ["/i*"], "hook_timeout_seconds": 300}' >/etc/weir/iface-clsact.conf
# a datapath of this suite's own, whatever ran before in this boot
"$W"/weir unload >/dev/null 2>&1

if grep -qw tcx_prog_attach /proc/kallsyms; then
	echo "# the kernel has tcx: auto attaches with tcx; a second round forces clsact"
	auto=tcx
else
	echo "# the kernel has no tcx: auto falls back to clsact"
	auto=clsact
fi
round "auto ($auto)" $auto 1 2
t "weir status says whether the datapath has the per-socket verdict slots, as the kernel's weir_egress (.rodata) does" \
	sk_verdicts_agree
sed -n 's/^kernel.s weir_egress: /# the &/p' /tmp/t.out
end_round "auto ($auto)" 1 2
if [ $auto = tcx ]; then
	round "tc_attach clsact" clsact 4 5 /etc/weir/iface-clsact.conf
	end_round "tc_attach clsact" 4 5 /etc/weir/iface-clsact.conf
fi
shaping
echo "1..$n"
exit $fail
