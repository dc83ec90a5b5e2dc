# wtool: static traffic tool copied into the e2e tests' container rootfses.
# Included from tests/tests.mk; builds $(OUTPUT)/bin/wtool.

WTOOL_CFLAGS := -std=gnu11 -O2 -Wall -Wextra -Werror -Wshadow -static

$(OUTPUT)/bin/wtool: tests/e2e/tools/wtool.c | $(OUTPUT)/bin
	$(call msg,CC,$@)
	$(Q)$(CC) $(WTOOL_CFLAGS) $< -o $@

TEST_TOOLS += $(OUTPUT)/bin/wtool

.PHONY: wtool
wtool: $(OUTPUT)/bin/wtool

# machine-probe: asks the kernel what it supports, with libbpf and without libweir (tests
# check the machine independently of what weir says about itself).
$(OUTPUT)/bin/machine-probe: tests/e2e/tools/machine-probe.c | $(OUTPUT)/bin
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $< $(LDLIBS) -o $@

TEST_TOOLS += $(OUTPUT)/bin/machine-probe

# gtool: the actions the security guards judge (tests/e2e/security.t, the qemu guests).
$(OUTPUT)/bin/gtool: tests/e2e/tools/gtool.c | $(OUTPUT)/bin
	$(call msg,CC,$@)
	$(Q)$(CC) $(WTOOL_CFLAGS) $< -o $@

TEST_TOOLS += $(OUTPUT)/bin/gtool
# bpfprobe: what a process in a container can do to weir's BPF objects (tests/e2e/privilege.t).
$(OUTPUT)/bin/bpfprobe: tests/e2e/tools/bpfprobe.c | $(OUTPUT)/bin
	$(call msg,CC,$@)
	$(Q)$(CC) $(WTOOL_CFLAGS) $< -o $@

TEST_TOOLS += $(OUTPUT)/bin/bpfprobe
