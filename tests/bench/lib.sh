# shellcheck shell=bash
# Shared by the benchmark scripts.

# median: the median of the numbers on standard input, one a line.
median() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_require_root NAME
bench_require_root() {
	[ "$(id -u)" = 0 ] || { echo "$1: run as root" >&2; exit 1; }
}
