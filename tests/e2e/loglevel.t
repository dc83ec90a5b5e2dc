#!/bin/bash
# --log-level on the command line beats the node configuration's log_level, in all three
# binaries (weir, weir-hook, weir-nri); without --log-level the configuration's applies.
# No kernel and no container: each binary runs on a throw-away state folder (weir-nri's bpffs
# path cannot exist, so its datapath load fails at once and loads nothing) and logs what it
# always logs at that point.
#
#   prove -v tests/e2e/loglevel.t        (root; `make` first)

# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"

e2e_init
require_weir
WEIR_NRI=$BIN/weir-nri
[ -x "$WEIR_NRI" ] || bail_out "$WEIR_NRI missing: run make"

plan 10

# conf LEVEL: a node configuration whose log_level is LEVEL; prints its path.
conf() {
	printf '{"state_dir": "%s", "bpffs": "%s", "log_level": "%s"}\n' \
		"$E2E_STATE" "$E2E_BPFFS" "$1" >"$E2E_TMP/$1.conf"
	echo "$E2E_TMP/$1.conf"
}
ERR=$(conf error)
DBG=$(conf debug)

# hook_log CONF [LEVEL]: what weir-hook logs (its standard error) at poststop of a container
# weir does not know.
hook_log() {
	{ env -i "$WEIR_HOOK" --config "$1" ${2:+--log-level "$2"} poststop >/dev/null; } 2>&1 \
		<<<"{\"ociVersion\": \"1.0.2\", \"id\": \"$E2E_PREFIX-log\", \"status\": \"stopped\", \"bundle\": \"/\"}"
}
# (among other debug lines: the capabilities it keeps, for one)
like "$(hook_log "$ERR" debug)" "weir-hook: debug: $E2E_PREFIX-log: not a weir endpoint" \
	"weir-hook: --log-level debug beats log_level error"
is "$(hook_log "$DBG" error)" "" "weir-hook: --log-level error beats log_level debug"
like "$(hook_log "$DBG")" "debug: $E2E_PREFIX-log: not a weir endpoint" \
	"weir-hook: without --log-level, log_level debug applies"

# weir_log CONF [LEVEL]: what weir logs listing the endpoints (its standard error).
weir_log() {
	{ "$WEIR" --config "$1" ${2:+--log-level "$2"} list >/dev/null; } 2>&1
}
like "$(weir_log "$ERR" debug)" "^weir: debug: list: node configuration $ERR$" \
	"weir: --log-level debug beats log_level error"
is "$(weir_log "$DBG" error)" "" "weir: --log-level error beats log_level debug"
like "$(weir_log "$DBG")" "debug: list: node configuration" \
	"weir: without --log-level, log_level debug applies"

# nri_log CONF [LEVEL] PATTERN: start weir-nri (nothing listens on its socket, so it retries),
# wait up to 10 s for a line matching PATTERN, stop it; prints its log.
nri_log() {
	local conf=$1 level=$2 pattern=$3 log=$E2E_TMP/nri.log pid
	: >"$log"
	"$WEIR_NRI" -c "$conf" ${level:+-l "$level"} -s "$E2E_TMP/no-such.sock" </dev/null \
		>/dev/null 2>"$log" &
	pid=$!
	retry 10 grep -qE "$pattern" "$log" || true
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
	cat "$log"
}
out=$(nri_log "$ERR" debug "weir-nri: debug: cannot connect")
like "$out" "weir-nri: debug: cannot connect to $E2E_TMP/no-such.sock" \
	"weir-nri: --log-level debug beats log_level error"
like "$out" "weir-nri: info: weir-nri .* starting" "... and its info lines show too"
# Nothing goes wrong here but the connection it retries (a debug line, as above): at level
# error it says nothing at all while it retries.
out=$(nri_log "$DBG" error "weir-nri: (debug|info):")
is "$(grep -c . <<<"$out")" 0 "weir-nri: --log-level error beats log_level debug (no debug or info line)"
like "$(nri_log "$DBG" "" "weir-nri: debug: cannot connect")" "weir-nri: debug: cannot connect" \
	"weir-nri: without --log-level, log_level debug applies"

done_testing
