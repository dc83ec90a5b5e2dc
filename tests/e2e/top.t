#!/bin/bash
# weir top end to end: two real runc containers, one of them sending UDP all the time, and
# `weir top` running in a real terminal (a tmux pane on a private tmux server): its rows are
# there, the busy container sorts first by TX bytes/s, r reverses, s cycles the sort column,
# q quits. Then --once for scripts, with the CONNTRACK column: the idle container, whose
# 64-entry conntrack map a burst of 100 flows overflowed first, shows its entries/budget and
# evictions as `weir stats` counts them, and sorts first by it.
#
#   prove -v tests/e2e/top.t        (root; `make` first)

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/runc.sh
. "$E2E_LIB/runc.sh"

e2e_init
require_weir
require_cmd tmux
runc_init

peer_create "$E2E_PREFIX"
peer_server "$E2E_TMP/peer-udp5000.log" udp-sink 5000
A4=$PEER_A4

BUSY=$(runc_id topa)
IDLE=$(runc_id topb)
for n in topa:1 topb:2; do
	runc_bundle "${n%%:*}" "${n#*:}" --ann conntrack.weir.io="$([ "${n%%:*}" = topa ] && echo 4096 || echo 64)" \
		--egress "allow $A4 udp" -- sleep 3600
	if runc_start "${n%%:*}"; then
		pass "container $(runc_id "${n%%:*}") starts with weir's hooks"
	else
		fail "container ${n%%:*} starts" "$(runc_err "${n%%:*}")"
		bail_out "no container"
	fi
done

# topb opens 100 flows once, more than its 64 conntrack entries, then stays quiet
wrun runc_exec topb /bin/wtool udp-flood "$A4" 2000 2099 1 1
is "$W_OUT" "ok flows=100 sends=100" "the idle container opens 100 flows once"

# topa sends all the time (small bursts, so the rate is steady)
(
	while :; do
		runc_exec topa /bin/wtool udp-send "$A4" 5000 50 1000 >/dev/null 2>&1 || true
		sleep 0.1 # pacing: a steady rate over time, not a wait for anything
	done
) &
SENDER=$!
on_exit kill "$SENDER"

# ---- in a terminal -------------------------------------------------------------------------

TMUX_SOCK=weir-e2e-$E2E_RUN
tm() { tmux -L "$TMUX_SOCK" "$@"; }
on_exit tmux -L "$TMUX_SOCK" kill-server
tm -f /dev/null new-session -d -s top -x 220 -y 50 \
	"TERM=screen $(printf '%q' "$WEIR") top --interval 0.5; echo TOP-EXITED rc=\$?; sleep 600"
pane() { tm capture-pane -p -t top 2>/dev/null || true; }

# line number of a row whose NAME column is $1 (0 when absent)
row_line() {
	local n
	n=$(pane | awk -v id="$1" '$2 == id { print NR; exit }')
	echo "${n:-0}"
}
busy_first() { [ "$(row_line "$BUSY")" -gt 0 ] && [ "$(row_line "$IDLE")" -gt "$(row_line "$BUSY")" ]; }
idle_first() { [ "$(row_line "$IDLE")" -gt 0 ] && [ "$(row_line "$BUSY")" -gt "$(row_line "$IDLE")" ]; }
pane_has() { pane | grep -qF -- "$1"; }

if retry 15 pane_has "$BUSY" && pane_has "$IDLE"; then
	pass "weir top in tmux shows a row for each container"
else
	fail "weir top in tmux shows a row for each container"
	diag_block pane "$(pane)"
fi
like "$(pane)" 'weir top - [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} +endpoints: 2 running' \
	"the header has the time and the endpoint totals (the suite's two containers)"
like "$(pane)" 'ID +NAME +POD +TX B/s\* +RX B/s +TX pk/s +RX pk/s +TX LIM +RX LIM +DROPS +SHAPED +GUARD +RETRANS +P50 RTT +P99 RTT +CONNTRACK' \
	"the columns, sorted by TX B/s"
# the busy container's TX B/s is a number above zero (k, M...: it sends about 50 kB/s)
busy_rate() { pane | awk -v id="$BUSY" '$2 == id { print $4 }'; }
busy_rate_ok() { [[ $(busy_rate) =~ ^([1-9][0-9]*|[0-9.]+[kMG])$ ]]; }
if retry 10 busy_rate_ok; then
	pass "the busy container's TX B/s is above zero ($(busy_rate))"
else
	fail "the busy container's TX B/s is above zero" "got: '$(busy_rate)'"
	diag_block pane "$(pane)"
fi
if retry 10 busy_first; then
	pass "sorted by TX B/s, descending: the busy container comes first"
else
	fail "sorted by TX B/s, descending: the busy container comes first"
	diag_block pane "$(pane)"
fi

tm send-keys -t top r
if retry 5 pane_has "sort: TX B/s ascending" && retry 5 idle_first; then
	pass "r reverses: the idle container comes first"
else
	fail "r reverses: the idle container comes first"
	diag_block pane "$(pane)"
fi

tm send-keys -t top s
if retry 5 pane_has "sort: RX B/s descending" && pane | grep -qE 'TX B/s +RX B/s\*'; then
	pass "s moves the sort to the next column (RX B/s)"
else
	fail "s moves the sort to the next column (RX B/s)"
	diag_block pane "$(pane)"
fi
# RX B/s -> ... -> GUARD -> ... -> P99 RTT -> CONNTRACK -> ID -> NAME: thirteen more
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13; do
	tm send-keys -t top s
done
if retry 5 pane_has "sort: NAME ascending" && retry 5 busy_first; then
	pass "s cycles through every column back to NAME, ascending (topa before topb)"
else
	fail "s cycles through every column back to NAME, ascending"
	diag_block pane "$(pane)"
fi

tm send-keys -t top q
if retry 5 pane_has "TOP-EXITED rc=0"; then
	pass "q quits, exit 0"
else
	fail "q quits, exit 0"
	diag_block pane "$(pane)"
fi

# ---- for scripts -------------------------------------------------------------------------

out=$("$WEIR" top --once --interval 0.5 --sort name 2>&1) && rc=0 || rc=$?
is "$rc" 0 "weir top --once exits 0"
like "$out" "sort: NAME ascending" "--sort name"
busy=$(awk -v id="$BUSY" '$2 == id { print NR }' <<<"$out")
idle=$(awk -v id="$IDLE" '$2 == id { print NR }' <<<"$out")
if [ -n "$busy" ] && [ -n "$idle" ] && [ "$busy" -lt "$idle" ]; then
	pass "--once prints both rows, in NAME order"
else
	fail "--once prints both rows, in NAME order"
	diag_block output "$out"
fi
rate=$(awk -v id="$BUSY" '$2 == id { print $4 }' <<<"$out")
like "$rate" '^([1-9][0-9]*|[0-9.]+[kMG])$' "--once measures a rate over the interval (TX B/s $rate)"
# CONNTRACK: entries/budget, and evictions once there are some, as weir stats counts them
ct_want() { weir_stats "$1" | jq -r '.conntrack | "\(.entries)/\(.budget)" + (if .evicted > 0 then " ev \(.evicted)" else "" end)'; }
want_idle=$(ct_want "$IDLE")
like "$want_idle" '^[0-9]+/64 ev [1-9][0-9]*$' "weir stats: the idle container's 64-entry map evicted entries ($want_idle)"
like "$(awk -v id="$IDLE" '$2 == id' <<<"$out")" " $want_idle\$" "CONNTRACK of the idle container: $want_idle"
# the busy one opens a flow with each send (a new socket): entries grow, its budget is 4096
like "$(awk -v id="$BUSY" '$2 == id' <<<"$out")" ' [1-9][0-9]*/4096$' "CONNTRACK of the busy container: entries/4096, no evictions shown"
out=$("$WEIR" top --once --interval 0.2 --sort ct 2>&1) && rc=0 || rc=$?
busy=$(awk -v id="$BUSY" '$2 == id { print NR }' <<<"$out")
idle=$(awk -v id="$IDLE" '$2 == id { print NR }' <<<"$out")
if [ "$rc" = 0 ] && [ -n "$busy" ] && [ -n "$idle" ] && [ "$idle" -lt "$busy" ]; then
	pass "--sort ct: the fuller conntrack map comes first"
else
	fail "--sort ct: the fuller conntrack map comes first"
	diag_block output "$out"
fi
out=$("$WEIR" top --interval 0 2>&1) && rc=0 || rc=$?
like "$rc $out" '^2 .*--interval "0": expected seconds' "--interval 0 is refused"
out=$("$WEIR" top --sort bogus 2>&1) && rc=0 || rc=$?
like "$rc $out" '^2 .*--sort "bogus"' "--sort bogus is refused"
out=$("$WEIR" top </dev/null 2>&1) && rc=0 || rc=$?
like "$rc $out" '^1 .*needs a terminal' "without a terminal: an error pointing to --once"

done_testing
