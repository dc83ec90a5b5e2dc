#!/bin/bash
# Bash completion for weir (completion/weir.bash): commands, options, option values, and
# container ids and names, which come from `weir list --ids` with the line's --config. Here a
# stand-in weir on PATH answers `list --ids` and records its arguments; tests/e2e/trace.t
# completes the id of a real running container.
#
#   prove -v tests/pkg/completion.t

# shellcheck source-path=SCRIPTDIR
# shellcheck source=../e2e/lib/common.sh
. "$(dirname "$0")/../e2e/lib/common.sh"
set -euo pipefail
trap _run_cleanups EXIT
TMP=$(mktemp -d /tmp/weir-completion.XXXXXX)
on_exit rm -rf "$TMP"

mkdir "$TMP/bin"
cat >"$TMP/bin/weir" <<EOS
#!/bin/sh
echo "\$*" >>"$TMP/args"
[ "\$*" = "\${*%list --ids}list --ids" ] && printf 'abc123\nabd456\nweb\n'
exit 0
EOS
chmod +x "$TMP/bin/weir"

# complete WORD...: what the completion offers for the last WORD (space-separated, sorted).
complete_line() {
	PATH=$TMP/bin:$PATH bash -c '
		source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		_weir
		printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' _ "$REPO/completion/weir.bash" "$@" |
		sed 's/ $//'
}

is "$(complete_line weir '')" "flows gc list metrics policy stats status top unload" "commands"
is "$(complete_line weir st)" "stats status" "a command prefix"
is "$(complete_line weir --)" "--config --help --json --log-level --version" "global options"
is "$(complete_line weir --log-level '')" "debug error info warn" "--log-level values"
is "$(complete_line weir -j st)" "stats status" "a command after a global option"
is "$(complete_line weir policy '')" "check trace" "policy subcommands"
is "$(complete_line weir policy trace --)" "--from --json --to" "policy trace options"
is "$(complete_line weir top --sort p)" "p50 p99 pod" "--sort columns"
is "$(complete_line weir policy check -a e)" "egress.weir.io=" "annotation keys after -a"
is "$(complete_line weir list --)" "--ids --json" "list options"

: >"$TMP/args"
is "$(complete_line weir stats ab)" "abc123 abd456" "container ids from weir list --ids"
is "$(complete_line weir flows w)" "web" "container names"
is "$(complete_line weir policy trace '')" "abc123 abd456 web" "ids for policy trace"
is "$(complete_line weir policy trace web --to 10.0.0.1 t)" "tcp tcp/" "protocols after --to PEER"
: >"$TMP/args"
complete_line weir --config /etc/other.conf stats '' >/dev/null
is "$(cat "$TMP/args")" "--config /etc/other.conf list --ids" "the line's --config reaches weir list"
is "$(complete_line weir unload '')" "" "unload takes no id"

done_testing
