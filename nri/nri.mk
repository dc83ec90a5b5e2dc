# weir-nri: the containerd NRI plugin. Included by the top-level Makefile.
#
# protoc-c generates $(OUTPUT)/nri/{nri,ttrpc}.pb-c.[ch]; every nri object waits for them.

NRI_PROTOS := nri/proto/nri.proto nri/proto/ttrpc.proto
NRI_GEN_C := $(patsubst nri/proto/%.proto,$(OUTPUT)/nri/%.pb-c.c,$(NRI_PROTOS))
NRI_GEN_H := $(NRI_GEN_C:.c=.h)
NRI_GEN_OBJS := $(NRI_GEN_C:.c=.o)

NRI_SRCS := $(wildcard nri/*.c)
NRI_OBJS := $(patsubst nri/%.c,$(OUTPUT)/nri/%.o,$(NRI_SRCS))
# The protocol core: everything but the libweir glue and main(). Unit tests link this.
NRI_CORE_OBJS := $(filter-out $(OUTPUT)/nri/main.o $(OUTPUT)/nri/handlers.o,$(NRI_OBJS)) \
	$(NRI_GEN_OBJS)
NRI_HDRS := $(wildcard nri/*.h) shared/error.h shared/weir.h shared/log.h

# gnu11 predefines `linux` as 1, and NRI messages have fields named linux.
NRI_CFLAGS := $(ALL_CFLAGS) -Ulinux

NRI_UNIT_TESTS := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(wildcard tests/unit/test_nri_*.c))
NRI_TEST_LDLIBS := -lcmocka $(shell $(PKG_CONFIG) --libs libprotobuf-c 2>/dev/null || echo -lprotobuf-c)

.PHONY: nri nri-tests nri-check
all: $(BIN)/weir-nri
nri: $(BIN)/weir-nri
nri-tests: $(NRI_UNIT_TESTS)

$(OUTPUT)/nri $(OUTPUT)/tests/nri:
	$(Q)mkdir -p $@

# One protoc-c run per file; the .h comes with the .c.
$(OUTPUT)/nri/%.pb-c.c: nri/proto/%.proto | $(OUTPUT)/nri
	$(call msg,PROTOC,$@)
	$(Q)$(PROTOC_C) --proto_path=nri/proto --c_out=$(OUTPUT)/nri $<
$(OUTPUT)/nri/%.pb-c.h: $(OUTPUT)/nri/%.pb-c.c
	@test -f $@

$(NRI_GEN_OBJS): %.o: %.c $(NRI_GEN_H)
	$(call msg,CC,$@)
	$(Q)$(CC) $(NRI_CFLAGS) -c $< -o $@

$(NRI_OBJS): $(OUTPUT)/nri/%.o: nri/%.c $(NRI_HDRS) $(NRI_GEN_H) | $(OUTPUT)/nri
	$(call msg,CC,$@)
	$(Q)$(CC) $(NRI_CFLAGS) -c $< -o $@

$(BIN)/weir-nri: $(NRI_OBJS) $(NRI_GEN_OBJS) $(LIBWEIR) | $(BIN)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ $(LDLIBS) -o $@

# Unit tests: cmocka, linked against the protocol core only (no libweir, no kernel).
$(OUTPUT)/tests/test_nri_%.o: tests/unit/test_nri_%.c $(NRI_HDRS) $(NRI_GEN_H) | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(NRI_CFLAGS) -Inri -c $< -o $@

# shared/log.o is libweir's logger, which the protocol core logs through. A static pattern
# rule, so that tests/tests.mk's generic test_% rule (libweir, no -Inri) never takes these on a
# fresh tree, where the .o does not exist yet.
$(NRI_UNIT_TESTS): $(OUTPUT)/tests/test_nri_%: $(OUTPUT)/tests/test_nri_%.o $(NRI_CORE_OBJS) $(OUTPUT)/shared/log.o
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ $(NRI_TEST_LDLIBS) $(LDLIBS) -o $@

# Build and run the NRI unit tests.
nri-check: $(NRI_UNIT_TESTS)
	$(Q)set -e; for t in $(NRI_UNIT_TESTS); do echo "== $$t"; $$t; done
