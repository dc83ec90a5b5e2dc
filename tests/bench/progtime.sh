#!/bin/bash
# Build tests/bench/progtime.c against this build's libweir and skeleton, and run it (root).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUTPUT:-.output}
make -s all "$OUT/tests/progtime"
exec "$OUT/tests/progtime" "$@"
