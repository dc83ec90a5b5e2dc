# weir: per-container eBPF policy, accounting and guards.
#
# Out-of-tree build: everything lands in $(OUTPUT). `make V=1` shows commands.

OUTPUT ?= .output
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec/weir
SYSCONFDIR ?= /etc

CC ?= gcc
CLANG ?= clang
BPFTOOL ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
PROTOC_C ?= protoc-c
PKG_CONFIG ?= pkg-config

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' -e 's/ppc64le/powerpc/')
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# Paths are bounded where they enter (config: 200 bytes), so snprintf truncation warnings are noise.
WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter -Wno-format-truncation
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(WARN) $(CFLAGS) -D_GNU_SOURCE -I. -I$(OUTPUT) -I$(OUTPUT)/nri -Ishared \
	$(shell $(PKG_CONFIG) --cflags libbpf json-c libprotobuf-c 2>/dev/null)
# libbpf, libelf, zlib and json-c are linked statically: a hook is a short-lived process, and every shared library is
# paid for again at each container start. --as-needed keeps each binary to what it uses.
LIBBPF_A := $(shell $(PKG_CONFIG) --variable=libdir libbpf 2>/dev/null)/libbpf.a
LDLIBS := -Wl,--as-needed $(LIBBPF_A) -Wl,-Bstatic -lelf -lz -ljson-c -Wl,-Bdynamic \
	$(shell $(PKG_CONFIG) --libs libprotobuf-c 2>/dev/null) -lcap \
	$(shell $(PKG_CONFIG) --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
BPF_CFLAGS := -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) -mcpu=v3 \
	-I/usr/include/$(MULTIARCH) -Ibpf

BIN := $(OUTPUT)/bin
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS)) $(OUTPUT)/bpf_build_id.h

LIB_SRCS := $(wildcard shared/*.c)
LIB_OBJS := $(patsubst %.c,$(OUTPUT)/%.o,$(LIB_SRCS))
LIBWEIR := $(OUTPUT)/libweir.a

PROGS := $(BIN)/weir-hook $(BIN)/weir

.SECONDARY:
.PHONY: all clean install uninstall test unit demo bench deps format check-format
all: $(PROGS)

$(OUTPUT) $(OUTPUT)/bpf $(OUTPUT)/shared $(OUTPUT)/hooks $(OUTPUT)/cli $(OUTPUT)/tests $(BIN):
	$(Q)mkdir -p $@

$(OUTPUT)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h bpf/lib/*.h) | $(OUTPUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# Identifies the BPF objects this build embeds: a node whose pinned programs carry another id
# re-pins them. Computed here, not at every container start.
$(OUTPUT)/bpf_build_id.h: $(BPF_OBJS)
	$(call msg,GEN,$@)
	$(Q)printf '#define WEIR_BPF_BUILD_ID 0x%sULL\n' \
		"$$(cat $(BPF_OBJS) | sha256sum | cut -c1-16)" > $@.tmp && mv $@.tmp $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/bpf/%.bpf.o Makefile
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

$(OUTPUT)/%.o: %.c $(SKELS) $(wildcard shared/*.h bpf/*.h bpf/lib/*.h) | $(OUTPUT)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBWEIR): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)$(AR) rcs $@ $^

$(BIN)/weir-hook: $(OUTPUT)/hooks/weir-hook.o $(LIBWEIR) | $(BIN)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ $(LDLIBS) -o $@

CLI_OBJS := $(patsubst %.c,$(OUTPUT)/%.o,$(wildcard cli/*.c))
$(BIN)/weir: LDLIBS += $(shell $(PKG_CONFIG) --libs ncurses 2>/dev/null || echo -lncurses)
$(BIN)/weir: $(CLI_OBJS) $(LIBWEIR) | $(BIN)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ $(LDLIBS) -o $@

-include nri/nri.mk
-include tests/tests.mk

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(SYSCONFDIR)/weir
	install -m 0755 $(BIN)/weir $(DESTDIR)$(BINDIR)/weir
	install -m 0755 $(BIN)/weir-hook $(DESTDIR)$(LIBEXECDIR)/weir-hook
	$(if $(wildcard $(BIN)/weir-nri),install -m 0755 $(BIN)/weir-nri $(DESTDIR)$(BINDIR)/weir-nri)
	test -e $(DESTDIR)$(SYSCONFDIR)/weir/weir.conf || \
		install -m 0644 examples/weir.conf $(DESTDIR)$(SYSCONFDIR)/weir/weir.conf
	install -d $(DESTDIR)/usr/share/containers/oci/hooks.d
	sed 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' examples/hooks.d/weir.json > \
		$(DESTDIR)/usr/share/containers/oci/hooks.d/weir.json

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/weir $(DESTDIR)$(BINDIR)/weir-nri $(DESTDIR)$(LIBEXECDIR)/weir-hook
	rm -f $(DESTDIR)/usr/share/containers/oci/hooks.d/weir.json
	-rmdir $(DESTDIR)$(LIBEXECDIR)
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/weir/weir.conf; 'weir unload' removes the node datapath"

deps:
	tests/install-deps.sh

# The README's two commands: each installs what it needs first, then rebuilds with the
# freshly installed toolchain (a new make, so pkg-config answers are read again).
demo:
	tests/install-deps.sh --if-needed
	$(MAKE) all test-build
	tests/e2e/demo.sh

test:
	tests/install-deps.sh --if-needed
	$(MAKE) test-build
	tests/run

bench:
	tests/install-deps.sh --if-needed
	$(MAKE) all
	tests/bench/bench.sh

format:
	clang-format -i $(wildcard bpf/*.c bpf/*.h bpf/lib/*.h shared/*.c shared/*.h hooks/*.c cli/*.c cli/*.h nri/*.c nri/*.h tests/unit/*.c)

check-format:
	@clang-format --dry-run --Werror $(wildcard bpf/*.c bpf/*.h bpf/lib/*.h shared/*.c shared/*.h hooks/*.c cli/*.c cli/*.h nri/*.c nri/*.h tests/unit/*.c)

clean:
	rm -rf $(OUTPUT)
