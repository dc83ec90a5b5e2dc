# Fuzzing: libFuzzer targets, one per tests/fuzz/fuzz_<name>.c, each with its seed corpus in
# tests/fuzz/corpus/<name>/. Included from tests/tests.mk. See tests/fuzz/README.md.
#
#   make fuzz                       build with clang (libFuzzer, ASan, UBSan) in $(FUZZ_OUTPUT),
#                                   then run every target for FUZZ_SECONDS (default 60)
#   make fuzz FUZZ_SECONDS=3600 FUZZ_TARGETS="policy oci"
#
# The fuzz build is a separate tree: the whole of libweir compiled with the sanitizers and
# libFuzzer's coverage, never mixed with the normal build.

FUZZ_OUTPUT ?= .output-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(FUZZ_NAMES)
# clang warns where gcc, the project's compiler, does not: gcc's own warning options,
# shared/annot.c's "DOMAIN + 1" (meant as a pointer into the literal), and vsnprintf() in
# functions that take a va_list without a format attribute
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer -Wno-unknown-warning-option -Wno-string-plus-int \
	-Wno-format-nonliteral \
	-fsanitize=address,undefined -fno-sanitize-recover=all -fsanitize=fuzzer-no-link

FUZZ_BINS := $(patsubst %,$(OUTPUT)/fuzz/fuzz_%,$(FUZZ_NAMES))
# Everything a target may call: libweir, the NRI protocol core and handlers, the hook's input
# parsing, the test helpers. Static archives and --as-needed keep each binary to what it uses.
FUZZ_OBJS := $(TEST_LIB_OBJS) $(OUTPUT)/hooks/oci.o $(OUTPUT)/nri/handlers.o $(OUTPUT)/nri/backend.o $(NRI_CORE_OBJS)

.PHONY: fuzz fuzz-build fuzz-bins
fuzz:
	$(MAKE) fuzz-build
	tests/fuzz/run -o $(FUZZ_OUTPUT) -t $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-build:
	$(MAKE) OUTPUT=$(FUZZ_OUTPUT) CC=$(FUZZ_CC) CFLAGS="$(FUZZ_CFLAGS)" fuzz-bins

fuzz-bins: $(FUZZ_BINS)

$(OUTPUT)/fuzz:
	$(Q)mkdir -p $@

$(FUZZ_BINS): $(OUTPUT)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) $(FUZZ_OBJS) \
		$(LIBWEIR) $(NRI_GEN_H) | $(OUTPUT)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CC) $(NRI_CFLAGS) -Ishared/node -Inri -Ihooks -Itests/lib -Itests/fuzz -fsanitize=fuzzer $< \
		$(FUZZ_OBJS) $(LIBWEIR) $(LDLIBS) -o $@
