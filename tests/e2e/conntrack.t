#!/bin/bash
# Conntrack budgets (issue 10): every container has a conntrack map of its own, so one that
# opens far more flows than its share evicts its own entries, never a neighbour's. Real runc
# containers, real datagrams into the test's peer network namespace.
#
#   prove -v tests/e2e/conntrack.t        (root; `make` first)
#
# The victim sends one datagram to a peer that holds its answer back until after the flood;
# its ingress is default-deny, so the answer passes only while the victim's conntrack entry is
# there. The flooder opens more flows than the old node-wide map held (262144), each used
# twice as flows with answers are (the kernel's LRU keeps entries used again over entries used
# once). With one map for the node, as before, the victim's entry was evicted and its answer
# dropped. Section 3 removes a container's conntrack pin and then its weir_ct slot behind
# weir's back: weir gc puts each back, and a held flow's answer passes again.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/runc.sh
. "$E2E_LIB/runc.sh"

e2e_init
require_weir
runc_init
require_cmd bpftool

peer_create "$E2E_PREFIX"
A4=$PEER_A4 B4=$PEER_B4
NOBODY=10.255.255.254/32
GO=$E2E_TMP/go
# answers from A, the address the victim sent to (the peer is multi-homed)
peer_server "$E2E_TMP/late.log" udp-reply-later 6000 "$GO" "$A4"

# 5 sockets x 60000 ports: 300000 flows, more than the old node-wide map's 262144 entries
FLOOD_SOCKETS=5 FLOOD_PORTS=60000
FLOOD=$((FLOOD_SOCKETS * FLOOD_PORTS))
DEFAULT_BUDGET=4096

cw() { runc_wtool "$@"; } # wtool in a container (lib/runc.sh)

start() { runc_start_pass "$@"; } # NAME IDX BUNDLE-OPTIONS... -- CMD (lib/runc.sh)

# ct ID JQ-PATHS: the values, space-separated; -1 for one that is missing
ct() { weir_stats "$1" | jq -r "[$2] | map(if type == \"number\" then tostring else \"-1\" end) | join(\" \")" || true; }

# ep_key ID: the container's endpoint id as bpftool's key bytes (four words).
ep_key() { printf '%08x' "$(weir_record "$1" | jq -r .endpoint)" | sed -E 's/(..)(..)(..)(..)/0x\4 0x\3 0x\2 0x\1/'; }

# inner_map_id ID: the id of the container's conntrack map, as the weir_ct slot of its
# endpoint names it.
inner_map_id() {
	# shellcheck disable=SC2046 # the key is four words
	bpftool -j map lookup pinned "$WEIR_BPFFS/maps/weir_ct" key $(ep_key "$1") 2>/dev/null |
		jq -r '.inner_map_id // .value // empty' 2>/dev/null || true
}
map_gone() { ! bpftool map show id "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------------------------------
diag "1. a container flooding new flows evicts only its own conntrack entries"
start victim 31 --egress "allow $A4 udp/6000" --ingress "allow $NOBODY" -- /bin/sleep 3600
start flood 32 --egress "allow $B4 udp" --ingress "allow $NOBODY" -- /bin/sleep 3600
vid=$(runc_id victim) fid=$(runc_id flood)

runc_exec victim /bin/wtool udp-await "$A4" 6000 30000 >"$E2E_TMP/await.out" 2>&1 &
await_pid=$!
if retry 10 grep -q "^got 11 from $(ctr_addr4 31)\$" "$E2E_TMP/late.log"; then
	pass "the victim's datagram reached the peer, which holds its answer back"
else
	fail "the victim's datagram reached the peer, which holds its answer back" "$(cat "$E2E_TMP/late.log")"
fi

id=$(inner_map_id "$fid")
if [ -n "$id" ] && bpftool map show id "$id" 2>/dev/null | grep -q lru_hash; then
	pass "the flooder's conntrack map is an LRU of its own (map id $id)"
else
	fail "the flooder's conntrack map is an LRU of its own" "id '$id'"
fi
flood_map=$id
fep=$(weir_record "$(runc_id flood)" | jq -r .endpoint)
vep=$(weir_record "$(runc_id victim)" | jq -r .endpoint)
is "$(cd "$WEIR_BPFFS" && find . -name 'weir_ct_*' | sort | tr '\n' ' ')" \
	"$(printf './maps/weir_ct_%s\n' "$fep" "$vep" | sort | tr '\n' ' ')" \
	"each container's map is pinned as maps/weir_ct_<endpoint>, nothing else"

wait_quiet "$fid"
before=$(ct "$fid" .conntrack.inserted)
t0=$(ms_now)
cw flood udp-flood "$B4" 1024 $((1024 + FLOOD_PORTS - 1)) "$FLOOD_SOCKETS" 2
t1=$(ms_now)
is "$W_OUT" "ok flows=$FLOOD sends=$((2 * FLOOD))" "the flooder sent $FLOOD flows, two datagrams each"
diag "flood: $((2 * FLOOD)) datagrams in $((t1 - t0)) ms"
touch "$GO"
wait "$await_pid" || true
is "$(grep -v elapsed_ms "$E2E_TMP/await.out" | tr '\n' ' ')" "sent ok " \
	"the victim's answer, held back until after the flood, passes its default-deny ingress"
read -r budget entries inserted evicted mem < <(ct "$fid" '.conntrack.budget, .conntrack.entries, .conntrack.inserted, .conntrack.evicted, .conntrack.memory_bytes')
is "$budget" "$DEFAULT_BUDGET" "the flooder's budget is the node default, $DEFAULT_BUDGET entries"
is "$((inserted - before))" "$FLOOD" "conntrack.inserted counts each of the $FLOOD new flows exactly once"
cmp_num "$entries" -le "$budget" "the flooder's map holds at most its budget ($entries entries)"
is "$evicted" "$((inserted - entries))" "conntrack.evicted = inserted - entries, exactly ($evicted)"
cmp_num "$evicted" -ge "$((inserted - budget))" "... at least every flow beyond the budget"
diag "memory of a $budget-entry map: $mem bytes ($((mem / budget)) per entry)"

is "$(ct "$vid" '.conntrack.inserted, .conntrack.entries, .conntrack.evicted')" "1 1 0" \
	"the victim: 1 entry added, 1 present, none evicted"
is "$(ct "$vid" '.ingress.udp.packets, .ingress.policy_dropped.packets')" "1 0" \
	"the victim's answer counted as passed, nothing dropped"

line=$("$WEIR" stats "$fid" | grep -E '^ +conntrack:' || true)
like "$line" "conntrack: $entries of $budget entries \\([0-9]+ KiB\\), inserted=$inserted evicted=$evicted" \
	"weir stats shows the conntrack line"
m=$("$WEIR" metrics)
like "$(grep "^weir_conntrack_evictions_total{container_id=\"$fid\"" <<<"$m")" " $evicted\$" \
	"metrics: weir_conntrack_evictions_total of the flooder"
like "$(grep "^weir_conntrack_budget_entries{container_id=\"$vid\"" <<<"$m")" " $DEFAULT_BUDGET\$" \
	"metrics: weir_conntrack_budget_entries of the victim"

runc_stop victim || true
runc_stop flood || true
if retry 10 map_gone "$flood_map"; then
	pass "the flooder's conntrack map is freed when it stops"
else
	fail "the flooder's conntrack map is freed when it stops" "$(bpftool map show id "$flood_map")"
fi
is "$(weir_record "$fid" | jq -r .state)" stopped "the flooder's record is stopped"
is "$(find "$WEIR_BPFFS" -name 'weir_ct_*' | wc -l)" 0 "their pins are gone"
final=$(weir_stats "$fid" | jq -r '.conntrack.evicted // empty')
is "$final" "$evicted" "the stopped record keeps the final conntrack counters"

# ---------------------------------------------------------------------------------------
diag "2. conntrack.weir.io sets a container's budget"
start small 33 --ann conntrack.weir.io=128 --egress "allow $B4 udp" --ingress "allow $NOBODY" -- /bin/sleep 3600
sid=$(runc_id small)
wait_quiet "$sid"
before=$(ct "$sid" .conntrack.inserted)
cw small udp-flood "$B4" 1024 2023 1 2
is "$W_OUT" "ok flows=1000 sends=2000" "1000 flows sent"
read -r budget entries inserted evicted mem < <(ct "$sid" '.conntrack.budget, .conntrack.entries, .conntrack.inserted, .conntrack.evicted, .conntrack.memory_bytes')
is "$budget $((inserted - before))" "128 1000" "budget 128, 1000 entries added"
cmp_num "$entries" -le 128 "at most 128 entries ($entries)"
is "$evicted" "$((inserted - entries))" "evicted = inserted - entries ($evicted)"
diag "memory of a 128-entry map: $mem bytes"
small_map=$(inner_map_id "$sid")
runc_stop small || true
if retry 10 map_gone "$small_map"; then
	pass "its map is freed when it stops"
else
	fail "its map is freed when it stops"
fi

for bad in 10 100000 12x ""; do
	runc_bundle "bad" - --ann "conntrack.weir.io=$bad" -- /bin/true
	rc=0
	runc_start bad || rc=$?
	if [ "$rc" -ne 0 ] && [[ $(runc_err bad) == *"conntrack.weir.io: \\\"$bad\\\": expected a number of entries from 64 to 65536"* ]]; then
		pass "conntrack.weir.io=\"$bad\" is refused with weir's message"
	else
		fail "conntrack.weir.io=\"$bad\" is refused with weir's message" "exit $rc" "$(runc_err bad | tail -n 2)"
	fi
	"$RUNC" delete -f "$(runc_id bad)" >/dev/null 2>&1 || true
done

# ---------------------------------------------------------------------------------------
diag "3. a conntrack map whose pin or weir_ct slot goes behind weir's back: weir gc puts it back"
# two flows held open: the answer of the first is let go while the slot is empty (dropped), the
# second's once gc has put the map back (passes: its entry survived in the pinned map)
GO1=$E2E_TMP/go1 GO2=$E2E_TMP/go2
peer_server "$E2E_TMP/late1.log" udp-reply-later 6001 "$GO1" "$A4"
peer_server "$E2E_TMP/late2.log" udp-reply-later 6002 "$GO2" "$A4"
start holder 34 --egress "allow $A4 udp" --ingress "allow $NOBODY" -- /bin/sleep 3600
hid=$(runc_id holder)
hep=$(weir_record "$hid" | jq -r .endpoint)
hpin=$WEIR_BPFFS/maps/weir_ct_$hep
runc_exec holder /bin/wtool udp-await "$A4" 6001 60000 >"$E2E_TMP/await1.out" 2>&1 &
await1=$!
runc_exec holder /bin/wtool udp-await "$A4" 6002 60000 >"$E2E_TMP/await2.out" 2>&1 &
await2=$!
got_both() { grep -q "^got 11 from $(ctr_addr4 34)\$" "$E2E_TMP/late1.log" && grep -q "^got 11 from $(ctr_addr4 34)\$" "$E2E_TMP/late2.log"; }
if retry 10 got_both; then
	pass "the holder's two datagrams reached the peer, which holds the answers back"
else
	fail "the holder's two datagrams reached the peer" "$(cat "$E2E_TMP/late1.log" "$E2E_TMP/late2.log")"
fi
hmap=$(inner_map_id "$hid")
is "$(ct "$hid" '.conntrack.inserted, .conntrack.entries')" "2 2" "its conntrack map (id $hmap) tracks both flows"

rm -f "$hpin"
out=$("$WEIR" gc --json 2>"$E2E_TMP/gc.err" || true)
is "$(jq -r .repaired <<<"$out")" 1 "its pin removed: weir gc repairs the endpoint" ||
	diag_block "gc" "$out $(cat "$E2E_TMP/gc.err")"
is "$(bpftool -j map show pinned "$hpin" 2>/dev/null | jq -r .id) $(inner_map_id "$hid")" "$hmap $hmap" \
	"the pin names the map of its weir_ct slot again"
is "$(ct "$hid" '.conntrack.inserted, .conntrack.entries')" "2 2" "weir stats reads it: both flows, nothing reset"

# shellcheck disable=SC2046 # the key is four words
bpftool map delete pinned "$WEIR_BPFFS/maps/weir_ct" key $(ep_key "$hid")
is "$(inner_map_id "$hid")" "" "its weir_ct slot cleared behind weir's back"
touch "$GO1"
dropped() { [ "$(ct "$hid" .ingress.policy_dropped.packets)" = 1 ]; }
if retry 10 dropped; then
	pass "without its slot, the first held flow's answer is dropped by the default-deny ingress"
else
	fail "without its slot, the first held flow's answer is dropped" "$(ct "$hid" '.ingress.policy_dropped.packets, .ingress.udp.packets')"
fi
kill "$await1" 2>/dev/null || true
wait "$await1" 2>/dev/null || true
out=$("$WEIR" gc --json 2>"$E2E_TMP/gc.err" || true)
is "$(jq -r .repaired <<<"$out")" 1 "weir gc repairs it" || diag_block "gc" "$out $(cat "$E2E_TMP/gc.err")"
is "$(inner_map_id "$hid")" "$hmap" "the slot names the pinned map again (id $hmap)"
touch "$GO2"
wait "$await2" || true
is "$(grep -v elapsed_ms "$E2E_TMP/await2.out" | tr '\n' ' ')" "sent ok " \
	"the second held flow's answer passes: its entry survived in the pinned map"
is "$(ct "$hid" '.conntrack.inserted, .conntrack.entries, .ingress.udp.packets')" "2 2 1" \
	"conntrack: 2 inserted, 2 present; 1 answer passed"
runc_stop holder || true
is "$(find "$WEIR_BPFFS" -name 'weir_ct_*' | wc -l)" 0 "its pin goes when it stops"

# ---------------------------------------------------------------------------------------
ok_run "weir gc runs" "$WEIR" gc
own_weir_empty
done_testing
