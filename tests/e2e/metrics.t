#!/bin/bash
# weir metrics end to end: a real runc container (weir-hook, an egress policy), real UDP and
# TCP traffic into the test's own peer network namespace, `weir metrics --listen` scraped with
# curl and parsed by a real Prometheus parser (python3-prometheus-client), compared with
# `weir stats --json` and with what the test sent. Then bad requests: each gets a 4xx (or, for
# a request line libmicrohttpd cannot read at all, a closed connection) and the server keeps
# serving.
#
#   prove -v tests/e2e/metrics.t        (root; `make` first)

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/runc.sh
. "$E2E_LIB/runc.sh"

e2e_init
require_weir
require_cmd curl jq
PY=${PYTHON:-/usr/bin/python3}
"$PY" -c 'import prometheus_client.parser' 2>/dev/null ||
	skip_all "python3-prometheus-client not installed (tests/install-deps.sh)"
runc_init
# TCP health and kernel drop reasons are part of what /metrics must show where the machine has
# them: whether it does is declared (tests/machine.conf), never taken from weir.
HAS_SOCKOPS=0 HAS_DROPS=0
machine_has sockops && HAS_SOCKOPS=1
machine_has kfree_skb && HAS_DROPS=1

peer_create "$E2E_PREFIX"
peer_server "$E2E_TMP/peer-udp5000.log" udp-sink 5000
peer_server "$E2E_TMP/peer-tcp8080.log" tcp-server 8080
A4=$PEER_A4 B4=$PEER_B4

cw() { runc_wtool "$@"; } # wtool in a container (lib/runc.sh)

# ---- the server ------------------------------------------------------------------------

"$WEIR" metrics --listen 127.0.0.1:0 >"$E2E_TMP/server.out" 2>"$E2E_TMP/server.err" &
SERVER=$!
on_exit kill "$SERVER"
if retry 5 grep -q 'port [0-9]' "$E2E_TMP/server.err"; then
	PORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$E2E_TMP/server.err")
	pass "weir metrics --listen 127.0.0.1:0 listens (port $PORT)"
else
	fail "weir metrics --listen starts" "$(cat "$E2E_TMP/server.err")"
	bail_out "no metrics server"
fi
URL=http://127.0.0.1:$PORT

# http_code CURL-ARGS...: the status code of one request ("000" when none came).
http_code() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" || true
}

# raw_status TEXT: send TEXT (printf escapes) on a fresh connection; the status code of the
# reply, or "closed" when the server closed without one.
raw_status() {
	"$PY" - "$PORT" "$1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
data = b""
try:
    while b"\r\n" not in data:
        d = s.recv(4096)
        if not d:
            break
        data += d
except (socket.timeout, ConnectionResetError):
    pass
line = data.split(b"\r\n")[0].split()
print(line[1].decode() if len(line) > 1 and data.startswith(b"HTTP/") else "closed")
EOF
}

# ---- the checker: a real Prometheus parser ------------------------------------------------

cat >"$E2E_TMP/check.py" <<'EOF'
# check.py METRICS STATS_JSON ID SOCKOPS DROPS: compare a /metrics rendering with
# `weir stats --json` (an array). SOCKOPS and DROPS are 1 when the machine has sockops and
# kernel drop reasons (tests/machine.conf): then the TCP and kernel drop series must be there.
# Prints "ok DESC" or "not ok DESC | DETAIL" lines.
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1]).read()
stats = json.load(open(sys.argv[2]))
cid = sys.argv[3]
want_tcp, want_drops = sys.argv[4] == "1", sys.argv[5] == "1"
res = []

def num(v):
    """a sample value as the integer it is (the parser gives floats)"""
    return "%d" % v if isinstance(v, float) and v == int(v) else "%s" % v

def check(cond, desc, detail=""):
    res.append(("ok " if cond else "not ok ") + desc + ("" if cond else " | " + detail))

try:
    fams = {f.name: f for f in text_string_to_metric_families(text)}
except Exception as e:  # the parser refuses invalid text
    print("not ok /metrics parses as Prometheus text format | " + repr(e))
    sys.exit(0)
check(True, "/metrics parses as Prometheus text format (%d families)" % len(fams))

# every family once: HELP and TYPE lines are not repeated
helps = [l.split()[2] for l in text.splitlines() if l.startswith("# HELP ")]
types = [l.split()[2] for l in text.splitlines() if l.startswith("# TYPE ")]
check(len(helps) == len(set(helps)) and len(types) == len(set(types)) and set(helps) == set(types),
      "one # HELP and one # TYPE line per family", "help=%s type=%s" % (helps, types))

ep = [o for o in stats if o.get("id") == cid]
check(len(ep) == 1 and len(stats) == 1, "weir stats --json lists the container and nothing else (the suite's own weir)",
      "ids: %s" % [o.get("id") for o in stats])
if not ep:
    print("\n".join(res))
    sys.exit(0)
ep = ep[0]

def series(fam, **labels):
    """value of the one sample of family fam (parser name, no _total) with these labels"""
    f = fams.get(fam)
    if not f:
        return None
    want = dict(container_id=cid, **labels)
    got = [s for s in f.samples if all(s.labels.get(k) == v for k, v in want.items())
           and s.name in (fam, fam + "_total")]
    return got[0].value if len(got) == 1 else ("%d samples" % len(got) if got else None)

for fam, ty in (("weir_packets", "counter"), ("weir_bytes", "counter"),
                ("weir_endpoints", "gauge")):
    check(fam in fams and fams[fam].type == ty, "%s is a %s" % (fam, ty))

mism = []
n = 0
for d in ("egress", "ingress"):
    for p in ("tcp", "udp", "icmp", "other"):
        for what in ("packets", "bytes"):
            want = ep[d][p][what]
            got = series("weir_" + what, direction=d, protocol=p)
            n += 1
            if got != want:
                mism.append("%s %s %s: metrics %s, stats %s" % (what, d, p, got, want))
    for key, fam in (("policy_dropped", "weir_policy_dropped_%s"), ("audit_denied", "weir_audit_denied_%s")):
        for what in ("packets", "bytes"):
            n += 1
            got = series(fam % what, direction=d)
            if got != ep[d][key][what]:
                mism.append("%s %s %s: metrics %s, stats %s" % (key, what, d, got, ep[d][key][what]))
    for key in ("denied_connects", "audit_denied_connects"):
        n += 1
        got = series("weir_" + key, direction=d)
        if got != ep[d][key]:
            mism.append("%s %s: metrics %s, stats %s" % (key, d, got, ep[d][key]))
check(not mism, "%d packet, byte, drop and denied-connect counters equal weir stats --json" % n,
      "; ".join(mism))

tcp = ep.get("tcp")
if want_tcp:
    check(tcp is not None, "weir stats --json has the TCP health of the container (sockops)", "keys: %s" % sorted(ep))
if tcp is not None:
    mism = []
    pairs = [("active_opens", "weir_tcp_connections_opened", {"type": "active"}),
             ("passive_opens", "weir_tcp_connections_opened", {"type": "passive"}),
             ("failed_connects", "weir_tcp_connect_failures", {}),
             ("resets_sent", "weir_tcp_resets", {"direction": "sent"}),
             ("resets_received", "weir_tcp_resets", {"direction": "received"}),
             ("retransmits", "weir_tcp_retransmits", {})]
    for key, fam, labels in pairs:
        if key in tcp and series(fam, **labels) != tcp[key]:
            mism.append("%s: metrics %s, stats %s" % (key, series(fam, **labels), tcp[key]))
    check(not mism, "TCP counters equal weir stats --json", "; ".join(mism))
    for key, fam in (("connect_latency_us", "weir_tcp_connect_latency_seconds"),
                     ("srtt_us", "weir_tcp_srtt_seconds")):
        h = tcp.get(key)
        if h is None:
            continue
        f = fams.get(fam)
        if not f or f.type != "histogram":
            check(False, fam + " is a histogram", "families: %s" % sorted(fams))
            continue
        ss = [s for s in f.samples if s.labels.get("container_id") == cid]
        buckets = sorted(((float(s.labels["le"]), s.value) for s in ss if s.name == fam + "_bucket"))
        count = [s.value for s in ss if s.name == fam + "_count"]
        total = [s.value for s in ss if s.name == fam + "_sum"]
        cum_ok = all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
        inf = [v for le, v in buckets if math.isinf(le)]
        want = []
        for le, v in buckets:
            if not math.isinf(le):
                want.append((le, sum(b["count"] for b in h["buckets"] if b["le_us"] <= round(le * 1e6))))
        got = [(le, v) for le, v in buckets if not math.isinf(le)]
        check(cum_ok and inf and count and inf[0] == count[0] and count[0] == h["count"]
              and got == want and total and abs(total[0] - h["sum_us"] / 1e6) < 1e-9,
              "%s: cumulative buckets, +Inf = _count = %d, _sum = %s s, as weir stats --json"
              % (fam, h["count"], h["sum_us"] / 1e6),
              "buckets=%s count=%s sum=%s want=%s" % (buckets, count, total, want))
    res.append("TCP_ACTIVE %s" % num(series("weir_tcp_connections_opened", type="active")))
    res.append("SRTT_COUNT %s" % (tcp.get("srtt_us") or {}).get("count"))

kd = ep.get("kernel_drops")
if want_drops:
    check(kd is not None, "weir stats --json has the container's kernel drop reasons", "keys: %s" % sorted(ep))
if kd is not None:
    mism = [r for r, v in kd.items() if series("weir_kernel_drops", reason=r) != v]
    check(not mism, "kernel drop reasons equal weir stats --json (%d reasons)" % len(kd), "%s" % mism)

running = sum(1 for o in stats if o.get("state") == "running")
stopped = sum(1 for o in stats if o.get("state") == "stopped")
g = {s.labels.get("state"): s.value for s in fams["weir_endpoints"].samples} if "weir_endpoints" in fams else {}
check(g.get("running") == running and g.get("stopped") == stopped,
      "weir_endpoints{state} = %d running, %d stopped, as weir stats --json" % (running, stopped),
      "metrics: %s" % g)
node = {n: fams[n].samples[0].value for n in ("weir_datapath_loaded", "weir_events_lost", "weir_events_sent")
        if n in fams and fams[n].samples}
check(node.get("weir_datapath_loaded") == 1 and "weir_events_lost" in node,
      "node metrics: weir_datapath_loaded 1, weir_events_lost_total present", "%s" % node)
res.append("UDP_EGRESS %s %s" % (num(series("weir_packets", direction="egress", protocol="udp")),
                                 num(series("weir_bytes", direction="egress", protocol="udp"))))
res.append("DENIED_EGRESS %s" % num(series("weir_denied_connects", direction="egress")))
res.append("STATE %s" % ep.get("state"))
print("\n".join(res))
EOF

# scrape_and_check ID TAG: scrape /metrics between two identical `weir stats --json` readings
# (retrying while something moves) and run check.py; its "ok"/"not ok" lines become tests,
# its other lines (KEY VALUE) are left in $E2E_TMP/TAG.vals.
scrape_and_check() {
	local id=$1 tag=$2 line s1 s2
	for _ in 1 2 3 4 5 6 7 8; do
		"$WEIR" stats --json >"$E2E_TMP/$tag.s1" 2>/dev/null || true
		curl -s --max-time 10 -o "$E2E_TMP/$tag.prom" "$URL/metrics" || true
		"$WEIR" stats --json >"$E2E_TMP/$tag.s2" 2>/dev/null || true
		s1=$(jq -S 'map(del(.started_ms))' "$E2E_TMP/$tag.s1" 2>/dev/null || echo a)
		s2=$(jq -S 'map(del(.started_ms))' "$E2E_TMP/$tag.s2" 2>/dev/null || echo b)
		[ "$s1" = "$s2" ] && break
		sleep 0.5 # a poll: something still moves (a late packet, a TCP timer)
	done
	[ "$s1" = "$s2" ] || diag "$tag: weir stats kept moving; comparing anyway"
	: >"$E2E_TMP/$tag.vals"
	while IFS= read -r line; do
		case $line in
		"ok "*) pass "$tag: ${line#ok }" ;;
		"not ok "*)
			line=${line#not ok }
			fail "$tag: ${line%% | *}" "${line#* | }"
			;;
		*) echo "$line" >>"$E2E_TMP/$tag.vals" ;;
		esac
	done < <("$PY" "$E2E_TMP/check.py" "$E2E_TMP/$tag.prom" "$E2E_TMP/$tag.s1" "$id" "$HAS_SOCKOPS" "$HAS_DROPS" 2>&1)
}
val() { sed -n "s/^$2 //p" "$E2E_TMP/$1.vals"; }

# ---- a container with a policy, and exact traffic --------------------------------------

NAME=met
ID=$(runc_id "$NAME")
runc_bundle "$NAME" 1 --egress "allow $A4 udp/5000; allow $A4 tcp/8080" -- sleep 3600
if runc_start "$NAME"; then
	pass "container $ID starts with weir's hooks and an egress policy"
else
	fail "container starts" "$(runc_err "$NAME")"
	bail_out "no container"
fi
retry 5 test -n "$(weir_record "$ID")" || bail_out "no weir record for $ID"
wait_quiet "$ID"

scrape_and_check "$ID" before
read -r P0 B0 <<<"$(val before UDP_EGRESS)"
D0=$(val before DENIED_EGRESS)

N=17 SIZE=100 # each datagram: 20 (IPv4) + 8 (UDP) + 100 bytes on the wire
cw "$NAME" udp-send "$A4" 5000 "$N" "$SIZE"
is "$W_RC" 0 "container sends $N UDP datagrams of $SIZE bytes to an allowed peer"
cw "$NAME" udp-send "$B4" 5000 1 10
is "$W_OUT" "EPERM" "a datagram to a peer the policy does not allow fails with EPERM"
cw "$NAME" tcp-send "$A4" 8080 5000
is "$W_RC" 0 "container sends 5000 bytes over TCP to an allowed peer"
wait_quiet "$ID"

scrape_and_check "$ID" after
read -r P1 B1 <<<"$(val after UDP_EGRESS)"
D1=$(val after DENIED_EGRESS)
is "$((P1 - P0)) $((B1 - B0))" "$N $((N * (SIZE + 28)))" \
	"/metrics: weir_packets_total/weir_bytes_total{direction=egress,protocol=udp} grew by exactly what was sent"
is "$((D1 - D0))" 1 "/metrics: weir_denied_connects_total{direction=egress} grew by 1"
if [ "$HAS_SOCKOPS" = 1 ]; then
	is "$(val after TCP_ACTIVE)" 1 "/metrics: the container's one TCP connection counts as one active open"
	cmp_num "$(val after SRTT_COUNT)" -ge 1 "/metrics: the smoothed RTT histogram has samples"
else
	skip_declared sockops 2
fi

# the one-shot form parses too
if "$WEIR" metrics >"$E2E_TMP/once.prom" 2>"$E2E_TMP/once.err" &&
	"$PY" -c 'import sys; from prometheus_client.parser import text_string_to_metric_families as p; n = sum(len(f.samples) for f in p(open(sys.argv[1]).read())); assert n > 0, n' \
		"$E2E_TMP/once.prom" 2>"$E2E_TMP/once.py"; then
	pass "weir metrics (no --listen) prints one rendering that parses"
else
	fail "weir metrics (no --listen) prints one rendering that parses" "$(cat "$E2E_TMP/once.err" "$E2E_TMP/once.py")"
fi

# ---- HTTP: what is served, what is refused --------------------------------------------------

is "$(curl -s --max-time 10 -o /dev/null -w '%{http_code} %{content_type}' "$URL/metrics")" \
	"200 text/plain; version=0.0.4; charset=utf-8" "GET /metrics: 200, text/plain; version=0.0.4"
is "$(curl -s --max-time 10 "$URL/healthz")" "ok" "GET /healthz: ok"
is "$(http_code "$URL/nope")" 404 "GET /nope: 404"
is "$(http_code "$URL/metrics/x")" 404 "GET /metrics/x: 404"
is "$(http_code -X POST -d x=1 "$URL/metrics")" 405 "POST /metrics: 405"
is "$(http_code -X PUT -d x "$URL/healthz")" 405 "PUT /healthz: 405"
is "$(http_code -X DELETE "$URL/metrics")" 405 "DELETE /metrics: 405"
is "$(http_code -I "$URL/metrics")" 200 "HEAD /metrics: 200"
long=$(head -c 40000 /dev/zero | tr '\0' a)
is "$(http_code "$URL/metrics?$long")" 414 "a 40 KB request line: 414"
is "$(http_code -H "X-Big: $long" "$URL/metrics")" 431 "a 40 KB header: 431"
is "$(raw_status 'GET /metrics HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n')" 400 \
	"a header line without a colon: 400"
is "$(raw_status 'GET /metrics HTTP/1.1\r\n\r\n')" 400 "HTTP/1.1 without Host: 400"
is "$(raw_status 'GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n')" 400 \
	"a malformed Content-Length: 400"
st=$(raw_status 'GARBAGE\r\n\r\n')
like "$st" '^(4[0-9][0-9]|closed)$' "a request line without method and URI: 4xx or closed, never served ($st)"
# a client that opens connections and sends nothing, beyond the connection limit; it says
# when it has tried them all, and holds them until it is killed
"$PY" - "$PORT" >"$E2E_TMP/idle.out" <<'EOF' &
import socket, sys, time
socks = []
for _ in range(80):
    try:
        socks.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2))
    except OSError:
        pass
print("opened %d" % len(socks), flush=True)
time.sleep(600)
EOF
IDLE=$!
retry 30 grep -q '^opened' "$E2E_TMP/idle.out" || diag "the idle client did not finish opening connections"
diag "idle client: $(cat "$E2E_TMP/idle.out")"
kill "$IDLE" 2>/dev/null
wait "$IDLE" 2>/dev/null || true
ok=0
retry 15 test "$(curl -s --max-time 2 "$URL/healthz" 2>/dev/null)" = ok || ok=1
ok "$ok" "the server still answers after bad requests and idle connections"
is "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$URL/metrics")" 200 "... and still serves /metrics"
kill -0 "$SERVER" 2>/dev/null
ok $? "the server process is alive"

# ---- the stopped container keeps its series ------------------------------------------------

runc_stop "$NAME" || diag "runc delete: $(cat "$(runc_bundle_dir "$NAME")/delete.log")"
scrape_and_check "$ID" stopped
is "$(val stopped STATE)" stopped "weir stats shows the container stopped"
read -r P2 B2 <<<"$(val stopped UDP_EGRESS)"
is "$P2 $B2" "$P1 $B1" "/metrics keeps the stopped container's final counters"

# ---- listen addresses --------------------------------------------------------------------

out=$("$WEIR" metrics --listen 127.0.0.1:70000 2>&1) && rc=0 || rc=$?
is "$rc" 1 "--listen 127.0.0.1:70000 fails"
like "$out" 'bad port "70000"' "... naming the bad port"
out=$("$WEIR" metrics --listen localhost:9464 2>&1) && rc=0 || rc=$?
like "$rc $out" '^1 .*bad IPv4 address "localhost"' "--listen localhost:9464 fails: names are not resolved"
out=$("$WEIR" metrics --listen ::1:9464 2>&1) && rc=0 || rc=$?
like "$rc $out" '^1 .*in brackets' "--listen ::1:9464 fails: IPv6 goes in brackets"
out=$("$WEIR" metrics --listen "127.0.0.1:$PORT" 2>&1) && rc=0 || rc=$?
like "$rc $out" "^1 .*cannot listen on 127.0.0.1:$PORT" "a port in use is an error, not a hang"
# IPv6 is part of every suite (the runtime suites test both families): ::1 must be there
"$WEIR" metrics --listen '[::1]:0' 2>"$E2E_TMP/server6.err" &
S6=$!
on_exit kill "$S6"
retry 5 grep -q 'port [0-9]' "$E2E_TMP/server6.err" || true
P6=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$E2E_TMP/server6.err")
is "$(curl -s --max-time 10 "http://[::1]:${P6:-1}/healthz")" ok "--listen [::1]:0 serves over IPv6"

kill -TERM "$SERVER"
rc=0
server_gone() { ! kill -0 "$SERVER" 2>/dev/null; }
if ! retry 5 server_gone; then
	fail "SIGTERM stops weir metrics"
else
	wait "$SERVER" || rc=$?
	is "$rc" 0 "SIGTERM stops weir metrics, exit 0"
fi

done_testing
