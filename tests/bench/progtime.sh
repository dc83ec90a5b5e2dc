#!/bin/bash
# Build and run tests/bench/progtime.c against this build's libweir and skeleton (root).
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s all
OUT=${OUTPUT:-.output}
eval "$(make -s -p -n 2>/dev/null | awk -F' := ' '/^ALL_CFLAGS :=|^LDLIBS :=/ { gsub(/\$\(OUTPUT\)/, "'"$OUT"'", $2); print "" }')"
cc -std=gnu11 -O2 -D_GNU_SOURCE -I. -I"$OUT" -Ishared tests/bench/progtime.c "$OUT/libweir.a" \
	"$(pkg-config --variable=libdir libbpf)/libbpf.a" -Wl,-Bstatic -lelf -lz -ljson-c -Wl,-Bdynamic -lcap \
	-o "$OUT/progtime"
exec "$OUT/progtime" "$@"
