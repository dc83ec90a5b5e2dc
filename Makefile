# weir: per-container eBPF policy, accounting and guards.
#
# Out-of-tree build: everything lands in $(OUTPUT). `make V=1` shows commands.

OUTPUT ?= .output
# One place for the version: the newest entry of debian/changelog (`dch -v` bumps it).
VERSION ?= $(shell sed -n '1s/^weir (\(.*\)) .*/\1/p' debian/changelog)
# Install layout (`make install`, the Debian package: PREFIX=/usr). The OCI hook goes where
# OCI hooks live by convention; its hooks.d file goes where podman and CRI-O look for one,
# whatever the prefix.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec
HOOKDIR ?= $(LIBEXECDIR)/oci/hooks.d
HOOKSDDIR ?= /usr/share/containers/oci/hooks.d
SYSCONFDIR ?= /etc
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system

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
ALL_CFLAGS := -std=gnu11 $(WARN) $(CPPFLAGS) $(CFLAGS) -D_GNU_SOURCE -I. -I$(OUTPUT) -I$(OUTPUT)/nri -Ishared/include/weir \
	$(shell $(PKG_CONFIG) --cflags libbpf json-c libprotobuf-c 2>/dev/null)
# libbpf, libelf and json-c are linked statically: a hook is a short-lived process, and every shared library is
# paid for again at each container start. zlib is not: every system has it loaded and cached, and Debian forbids
# embedded copies of it (no difference measured in a hook's start). --as-needed keeps each binary to what it uses.
LIBBPF_A := $(shell $(PKG_CONFIG) --variable=libdir libbpf 2>/dev/null)/libbpf.a
# CPPFLAGS and LDFLAGS are the builder's (dpkg-buildflags: fortify, relro, bindnow).
LDLIBS := $(LDFLAGS) -Wl,--as-needed $(LIBBPF_A) -Wl,-Bstatic -lelf -ljson-c -Wl,-Bdynamic -lz \
	$(shell $(PKG_CONFIG) --libs libprotobuf-c 2>/dev/null) -lcap \
	$(shell $(PKG_CONFIG) --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
BPF_CFLAGS := -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) -mcpu=v3 \
	-I/usr/include/$(MULTIARCH) -Ibpf

BIN := $(OUTPUT)/bin
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS)) $(OUTPUT)/bpf_build_id.h

# libweir in three layers: core/ (annotations, policy compiler, config, errors, logging: no
# kernel), node/ (the node's state: datapath, endpoint registry, records, gc) and observe/
# (statistics, events, metrics, trace). The public headers are in include/weir/; the private
# ones of node/ are visible to node/ and observe/ only, so core/ cannot reach node state and
# the binaries cannot reach past the public API: the include paths enforce the layers.
LIB_LAYERS := core node observe
LIB_SRCS := $(foreach l,$(LIB_LAYERS),$(wildcard shared/$(l)/*.c))
LIB_OBJS := $(patsubst %.c,$(OUTPUT)/%.o,$(LIB_SRCS))
PRIV_HDRS := $(wildcard shared/node/*.h)
LIBWEIR := $(OUTPUT)/libweir.a

PROGS := $(BIN)/weir-hook $(BIN)/weir

# Man pages: scdoc sources in man/, dated from debian/changelog so a rebuild is identical.
SCDOC ?= scdoc
MANS := $(patsubst man/%.scd,$(OUTPUT)/man/%,$(wildcard man/*.scd))
SOURCE_DATE_EPOCH ?= $(shell date -d "$$(sed -n 's/^ -- .*>  //p' debian/changelog | head -n1)" +%s)
export SOURCE_DATE_EPOCH
UNITS := $(patsubst systemd/%.in,%,$(wildcard systemd/*.in)) $(notdir $(wildcard systemd/*.timer))

.SECONDARY:
.PHONY: check-layers FORCE all man clean install uninstall deb test unit demo bench deps format check-format lint shellcheck
all: $(PROGS) $(MANS)
man: $(MANS)

$(OUTPUT) $(OUTPUT)/bpf $(OUTPUT)/shared $(OUTPUT)/hooks $(OUTPUT)/cli $(OUTPUT)/tests $(OUTPUT)/man $(BIN):
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

# Rewritten only when the version changes, so a rebuild with the same version recompiles nothing.
$(OUTPUT)/version.h: FORCE | $(OUTPUT)
	$(Q)printf '#define WEIR_VERSION "%s"\n' '$(VERSION)' > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(OUTPUT)/shared/core/version.o: $(OUTPUT)/version.h
FORCE:

$(OUTPUT)/%.skel.h: $(OUTPUT)/bpf/%.bpf.o Makefile
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

$(filter $(OUTPUT)/shared/node/% $(OUTPUT)/shared/observe/%,$(LIB_OBJS)): PRIV_INC := -Ishared/node
$(OUTPUT)/%.o: %.c $(SKELS) $(PRIV_HDRS) $(wildcard shared/include/weir/*.h hooks/*.h bpf/*.h bpf/lib/*.h) | $(OUTPUT)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) $(PRIV_INC) -c $< -o $@

# Made afresh: `ar r` keeps members of sources that were removed or renamed.
$(LIBWEIR): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BIN)/weir-hook: $(OUTPUT)/hooks/weir-hook.o $(OUTPUT)/hooks/oci.o $(LIBWEIR) | $(BIN)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ $(LDLIBS) -o $@

CLI_OBJS := $(patsubst %.c,$(OUTPUT)/%.o,$(wildcard cli/*.c))
# The generic %.o rule knows only the shared headers: the CLI's objects also depend on its own.
$(CLI_OBJS): $(wildcard cli/*.h)
$(BIN)/weir: LDLIBS += $(shell $(PKG_CONFIG) --libs ncurses 2>/dev/null || echo -lncurses)
$(BIN)/weir: $(CLI_OBJS) $(LIBWEIR) | $(BIN)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ $(LDLIBS) -o $@

$(OUTPUT)/man/%: man/%.scd debian/changelog | $(OUTPUT)/man
	$(call msg,SCDOC,$@)
	$(Q)sed 's/@VERSION@/$(VERSION)/' $< | $(SCDOC) > $@.tmp && mv $@.tmp $@

-include nri/nri.mk
-include tests/tests.mk

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(HOOKDIR) $(DESTDIR)$(HOOKSDDIR) \
		$(DESTDIR)$(SYSCONFDIR)/weir $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 0755 $(BIN)/weir $(BIN)/weir-nri $(DESTDIR)$(BINDIR)/
	install -m 0755 $(BIN)/weir-hook $(DESTDIR)$(HOOKDIR)/weir-hook
	sed 's|@HOOKDIR@|$(HOOKDIR)|g' examples/hooks.d/weir.json > $(DESTDIR)$(HOOKSDDIR)/weir.json
	chmod 0644 $(DESTDIR)$(HOOKSDDIR)/weir.json
	test -e $(DESTDIR)$(SYSCONFDIR)/weir/weir.conf || \
		install -m 0644 examples/weir.conf $(DESTDIR)$(SYSCONFDIR)/weir/weir.conf
	install -m 0644 $(filter %.5,$(MANS)) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(filter %.8,$(MANS)) $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 completion/weir.bash $(DESTDIR)$(BASHCOMPDIR)/weir
	for u in $(UNITS); do \
		if [ -e systemd/$$u.in ]; then \
			sed 's|@BINDIR@|$(BINDIR)|g' systemd/$$u.in > $(DESTDIR)$(SYSTEMDUNITDIR)/$$u; \
			chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u; \
		else install -m 0644 systemd/$$u $(DESTDIR)$(SYSTEMDUNITDIR)/$$u; fi; \
	done

# Everything install wrote but the node configuration, which may hold the admin's changes.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/weir $(DESTDIR)$(BINDIR)/weir-nri $(DESTDIR)$(HOOKDIR)/weir-hook \
		$(DESTDIR)$(HOOKSDDIR)/weir.json $(DESTDIR)$(BASHCOMPDIR)/weir \
		$(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(filter %.5,$(MANS)))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(filter %.8,$(MANS)))) \
		$(addprefix $(DESTDIR)$(SYSTEMDUNITDIR)/,$(UNITS))
	-rmdir $(DESTDIR)$(HOOKDIR) $(DESTDIR)$(LIBEXECDIR)/oci 2>/dev/null
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/weir/weir.conf"
	@echo "the node datapath, if loaded, stays until 'weir unload' (run it before uninstalling)"

# The Debian package, built by dpkg-buildpackage from a copy of the tree so that nothing is
# written outside $(OUTPUT): $(OUTPUT)/deb/weir_$(VERSION)_<arch>.deb and its .changes.
DEB_DIR := $(abspath $(OUTPUT))/deb
deb:
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_DIR)/weir-$(VERSION)
	tar -c --exclude=./.git --exclude=./$(patsubst $(CURDIR)/%,%,$(abspath $(OUTPUT))) . | \
		tar -x -C $(DEB_DIR)/weir-$(VERSION)
	# the copy builds in its own .output: none of this make's variables may reach it
	cd $(DEB_DIR)/weir-$(VERSION) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u OUTPUT \
		dpkg-buildpackage -b -us -uc -jauto
	rm -rf $(DEB_DIR)/weir-$(VERSION)
	@ls $(DEB_DIR)/*.deb

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
	$(MAKE) lint test-build
	tests/run

# DATAPATH_BENCH: datapath-bench.sh's options (`make bench DATAPATH_BENCH=--quick`)
DATAPATH_BENCH ?=
bench:
	tests/install-deps.sh --if-needed
	$(MAKE) all $(BENCH_TOOLS)
	tests/bench/bench.sh
	tests/bench/datapath-bench.sh $(DATAPATH_BENCH)

# Every C source and header of the project, the test programs included.
FORMAT_SRCS = $(wildcard bpf/*.c bpf/*.h bpf/lib/*.h shared/*/*.c shared/*/*.h shared/include/weir/*.h hooks/*.c hooks/*.h tests/lib/*.c tests/lib/*.h tests/fuzz/*.c tests/fuzz/*.h cli/*.c cli/*.h \
	nri/*.c nri/*.h tests/unit/*.c tests/bpf/*.c tests/e2e/tools/*.c tests/bench/*.c)

format:
	clang-format -i $(FORMAT_SRCS)

check-format:
	@clang-format --dry-run --Werror $(FORMAT_SRCS)

# Every shell script: *.sh and *.t, sourced libraries included, and anything else under these
# folders that starts with a shell's #! line (tests/run, .ci/run).
SHELL_SCRIPTS = $(sort $(shell find tests .ci examples -type f \( -name '*.sh' -o -name '*.t' \) 2>/dev/null) \
	$(shell grep -rlE '^\#!(/usr)?/bin/(env )?(ba)?sh' tests .ci examples 2>/dev/null))

# -x -P SCRIPTDIR: follow `source` into the libraries, found next to the script that sources them.
shellcheck:
	@shellcheck -x -P SCRIPTDIR $(SHELL_SCRIPTS)

# The include paths keep core/ from including node/ headers; this keeps it from linking
# against node/ or observe/ through a public header: every weir_ symbol a core object needs
# must be defined in core/.
CORE_OBJS := $(filter $(OUTPUT)/shared/core/%,$(LIB_OBJS))
check-layers: $(CORE_OBJS)
	@nm -u $(CORE_OBJS) | awk '$$2 ~ /^weir_/ { print $$2 }' | sort -u >$(OUTPUT)/core-needs
	@nm --defined-only $(CORE_OBJS) | awk '$$3 ~ /^weir_/ { print $$3 }' | sort -u >$(OUTPUT)/core-has
	@leak=$$(comm -23 $(OUTPUT)/core-needs $(OUTPUT)/core-has); \
	if [ -n "$$leak" ]; then echo "core/ uses symbols of node/ or observe/:" $$leak >&2; exit 1; fi

# What CI checks besides the tests (`make test` runs it first).
lint: check-format shellcheck check-layers

clean:
	rm -rf $(OUTPUT)
