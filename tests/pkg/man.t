#!/bin/bash
# The man pages: each renders without a warning at 80 columns, carries this build's version,
# and says what the code and the README say: every annotation key and node configuration key
# of the README, every command of `weir --help`, every option of each program's --help.
#
#   prove -v tests/pkg/man.t      (`make` first: the pages are built in $OUTPUT/man)

# shellcheck source-path=SCRIPTDIR
# shellcheck source=../e2e/lib/common.sh
. "$(dirname "$0")/../e2e/lib/common.sh"
set -euo pipefail
trap _run_cleanups EXIT
require_cmd man scdoc

MAN=$OUTPUT/man
PAGES=(weir.8 weir-hook.8 weir-nri.8 weir.conf.5 weir-annotations.5)
version=$("$WEIR" --version | awk 'NR == 1 { print $2 }')

declare -A text
for p in "${PAGES[@]}"; do
	if [ ! -s "$MAN/$p" ]; then
		fail "$p: built" "$MAN/$p is missing: run make"
		continue
	fi
	# groff's warnings (-ww) go to standard error; the page to standard output
	err=$(MANWIDTH=80 man --warnings -l "$MAN/$p" 2>&1 >/dev/null) || true
	is "$err" "" "$p: renders at 80 columns without a warning"
	text[$p]=$(MANWIDTH=80 man -l "$MAN/$p" 2>/dev/null | col -b)
	like "${text[$p]}" "weir $version" "$p: carries the version ($version)"
done

# in_page PAGE WHAT WORD...: every WORD appears in the rendered PAGE.
in_page() {
	local page=$1 what=$2 w missing=()
	shift 2
	for w in "$@"; do
		grep -qF -- "$w" <<<"${text[$page]:-}" || missing+=("$w")
	done
	if [ $# -eq 0 ]; then
		fail "$page: names every $what" "found none to look for"
	elif [ ${#missing[@]} -eq 0 ]; then
		pass "$page: names every $what ($#)"
	else
		fail "$page: names every $what ($#)" "missing: ${missing[*]}"
	fi
}

# The README's tables: annotation keys, then weir.conf keys (the backquotes are the README's).
# shellcheck disable=SC2016
mapfile -t keys < <(sed -n '/^## Annotations/,/^## /s/^| `\([a-z.-]*weir\.io\)` |.*/\1/p' "$REPO/README.md")
in_page weir-annotations.5 "annotation key of the README" "${keys[@]}"
# shellcheck disable=SC2016
mapfile -t conf < <(sed -n '/^## Node configuration/,/^## /s/^| `\([a-z_]*\)` |.*/\1/p' "$REPO/README.md")
in_page weir.conf.5 "configuration key of the README" "${conf[@]}"
in_page weir-annotations.5 "NRI suffix" "/pod" "/container.NAME"

mapfile -t cmds < <("$WEIR" --help | sed -n '/^commands:/,/^$/s/^  \([a-z]\+\).*/\1/p' | sort -u)
in_page weir.8 "command of weir --help" "${cmds[@]}"
for prog in weir weir-hook weir-nri; do
	mapfile -t opts < <("$BIN/$prog" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
	in_page "$prog.8" "option of $prog --help" "${opts[@]}"
done

done_testing
