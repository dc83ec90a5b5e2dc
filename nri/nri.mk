# weir-nri: the containerd NRI plugin. Included by the top-level Makefile.
#
# protoc-c generates $(OUTPUT)/nri/{nri,ttrpc}.pb-c.[ch]; every nri object waits for them.

NRI_PROTOS := nri/proto/nri.proto nri/proto/ttrpc.proto
NRI_GEN_C := $(patsubst nri/proto/%.proto,$(OUTPUT)/nri/%.pb-c.c,$(NRI_PROTOS))
NRI_GEN_H := $(NRI_GEN_C:.c=.h)
NRI_GEN_OBJS := $(NRI_GEN_C:.c=.o)

NRI_SRCS := $(wildcard nri/*.c)
NRI_OBJS := $(patsubst nri/%.c,$(OUTPUT)/nri/%.o,$(NRI_SRCS))
# The protocol core: everything but the handlers, their libweir backend and main(). Unit tests
# link this.
NRI_GLUE_OBJS := $(addprefix $(OUTPUT)/nri/,main.o handlers.o backend.o)
NRI_CORE_OBJS := $(filter-out $(NRI_GLUE_OBJS),$(NRI_OBJS)) $(NRI_GEN_OBJS)
NRI_HDRS := $(wildcard nri/*.h) $(wildcard shared/include/weir/*.h)

# gnu11 predefines `linux` as 1, and NRI messages have fields named linux.
NRI_CFLAGS := $(ALL_CFLAGS) -Ulinux

NRI_UNIT_TESTS := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(wildcard tests/unit/test_nri_*.c))
NRI_TEST_LDLIBS := -lcmocka $(shell $(PKG_CONFIG) --libs libprotobuf-c 2>/dev/null || echo -lprotobuf-c)

.PHONY: nri nri-tests nri-check nri-sync-bench
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

# The protocol core logs and reports errors through libweir's logger and error setter
# (shared/core/log.o, shared/core/error.o), and nothing else of it. A static pattern rule, so that
# tests/tests.mk's generic test_% rule (libweir, no -Inri) never takes these on a fresh tree,
# where the .o does not exist yet.
NRI_CORE_LIB_OBJS := $(OUTPUT)/shared/core/log.o $(OUTPUT)/shared/core/error.o
$(NRI_UNIT_TESTS): $(OUTPUT)/tests/test_nri_%: $(OUTPUT)/tests/test_nri_%.o $(NRI_CORE_OBJS) $(NRI_CORE_LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ $(NRI_TEST_LDLIBS) $(LDLIBS) -o $@

# The handlers' tests add the handlers over a fake backend (tests/unit/nri_fake.c), and from
# libweir the archive members those need (annotations, policy, cgroup paths), not the datapath
# or the registry.
$(OUTPUT)/tests/nri_fake.o: tests/unit/nri_fake.c tests/unit/nri_fake.h $(NRI_HDRS) $(NRI_GEN_H) | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(NRI_CFLAGS) -Inri -c $< -o $@
$(OUTPUT)/tests/test_nri_handlers: $(OUTPUT)/nri/handlers.o $(OUTPUT)/tests/nri_fake.o $(LIBWEIR)

# Build and run the NRI unit tests.
nri-check: $(NRI_UNIT_TESTS)
	$(Q)set -e; for t in $(NRI_UNIT_TESTS); do echo "== $$t"; $$t; done

# Synchronize at scale over the fake backend: tests/bench/nri-sync-bench.c (a benchmark).
nri-sync-bench: $(OUTPUT)/tests/nri-sync-bench
$(OUTPUT)/tests/nri-sync-bench: tests/bench/nri-sync-bench.c $(OUTPUT)/nri/handlers.o \
		$(OUTPUT)/tests/nri_fake.o $(NRI_CORE_OBJS) $(NRI_CORE_LIB_OBJS) $(LIBWEIR) \
		$(NRI_HDRS) $(NRI_GEN_H) | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(NRI_CFLAGS) -Inri -Itests/unit $(filter %.c %.o %.a,$^) \
		$(NRI_TEST_LDLIBS) $(LDLIBS) -o $@
