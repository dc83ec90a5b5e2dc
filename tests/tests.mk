# Tests. `make test` runs every suite through prove (TAP); see tests/run.
#
# Unit tests are cmocka programs linked against libweir; each gets a TAP wrapper in
# $(OUTPUT)/tests so prove can run them beside the shell suites.

UNIT_TESTS := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(filter-out tests/unit/test_nri_%.c,$(wildcard tests/unit/test_*.c)))
BPF_TESTS := $(patsubst tests/bpf/%.c,$(OUTPUT)/tests/%,$(wildcard tests/bpf/test_*.c))
ALL_CMOCKA := $(UNIT_TESTS) $(BPF_TESTS) $(NRI_UNIT_TESTS)

# Test helpers shared by the unit tests and the fuzzers (tests/fuzz).
TEST_LIB_OBJS := $(patsubst %.c,$(OUTPUT)/%.o,$(wildcard tests/lib/*.c))
$(TEST_LIB_OBJS): $(OUTPUT)/%.o: %.c $(wildcard tests/lib/*.h) $(SKELS) | $(OUTPUT)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/lib -c $< -o $@

$(OUTPUT)/tests/test_%: tests/unit/test_%.c $(LIBWEIR) $(TEST_LIB_OBJS) | $(OUTPUT)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Ishared/node -Itests/lib $< $(TEST_LIB_OBJS) $(LIBWEIR) -lcmocka $(LDLIBS) -o $@

$(OUTPUT)/tests/test_%: tests/bpf/test_%.c $(LIBWEIR) $(SKELS) | $(OUTPUT)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Ishared/node $< $(LIBWEIR) -lcmocka $(LDLIBS) -o $@

$(OUTPUT)/tests/%.t: $(OUTPUT)/tests/%
	$(Q)printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec "$$(dirname "$$0")/%s"\n' $* > $@
	$(Q)chmod +x $@

-include tests/e2e/tools/tools.mk

# Benchmark helpers (tests/bench): datapath-bench.sh's floor, a cgroup egress program doing one
# LPM lookup, with its loader; progtime, the programs' time per packet (BPF_PROG_TEST_RUN).
$(OUTPUT)/tests/floor.bpf.o: tests/bench/floor.bpf.c | $(OUTPUT)/tests
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/tests/floor: tests/bench/floor.c tests/bench/floor.h | $(OUTPUT)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $< $(LDLIBS) -o $@

$(OUTPUT)/tests/progtime: tests/bench/progtime.c tests/bench/floor.h $(LIBWEIR) $(SKELS) | $(OUTPUT)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Ishared/node $< $(LIBWEIR) $(LDLIBS) -o $@

BENCH_TOOLS := $(OUTPUT)/tests/floor.bpf.o $(OUTPUT)/tests/floor $(OUTPUT)/tests/progtime

.PHONY: test-build
test-build: all $(ALL_CMOCKA) $(addsuffix .t,$(ALL_CMOCKA)) $(TEST_TOOLS) $(BENCH_TOOLS)

unit: test-build
	tests/run unit

-include tests/fuzz/fuzz.mk

# ASan + UBSan build of everything (.output-asan): every report is fatal (no recovery), so a
# suite that passes with it is clean. tests/sanitize/run builds it and runs the suites on it.
ASAN_OUTPUT ?= .output-asan
ASAN_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

.PHONY: asan-build asan-test valgrind-test
asan-build:
	$(MAKE) OUTPUT=$(ASAN_OUTPUT) CFLAGS="$(ASAN_CFLAGS)" test-build

asan-test: asan-build
	tests/sanitize/run -o $(ASAN_OUTPUT)

valgrind-test: test-build
	tests/sanitize/valgrind -o $(OUTPUT)
