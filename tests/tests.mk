# Tests. `make test` runs every suite through prove (TAP); see tests/run.
#
# Unit tests are cmocka programs linked against libweir; each gets a TAP wrapper in
# $(OUTPUT)/tests so prove can run them beside the shell suites.

UNIT_TESTS := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(filter-out tests/unit/test_nri_%.c,$(wildcard tests/unit/test_*.c)))
BPF_TESTS := $(patsubst tests/bpf/%.c,$(OUTPUT)/tests/%,$(wildcard tests/bpf/test_*.c))
ALL_CMOCKA := $(UNIT_TESTS) $(BPF_TESTS) $(NRI_UNIT_TESTS)

$(OUTPUT)/tests/test_%: tests/unit/test_%.c $(LIBWEIR) | $(OUTPUT)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $< $(LIBWEIR) -lcmocka $(LDLIBS) -o $@

$(OUTPUT)/tests/test_%: tests/bpf/test_%.c $(LIBWEIR) $(SKELS) | $(OUTPUT)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $< $(LIBWEIR) -lcmocka $(LDLIBS) -o $@

$(OUTPUT)/tests/%.t: $(OUTPUT)/tests/%
	$(Q)printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec "$$(dirname "$$0")/%s"\n' $* > $@
	$(Q)chmod +x $@

-include tests/e2e/tools/tools.mk

.PHONY: test-build
test-build: all $(ALL_CMOCKA) $(addsuffix .t,$(ALL_CMOCKA)) $(TEST_TOOLS)

unit: test-build
	tests/run unit
