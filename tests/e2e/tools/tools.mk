# wtool: static traffic tool copied into the e2e tests' container rootfses.
# Included from tests/tests.mk; builds $(OUTPUT)/bin/wtool.

WTOOL_CFLAGS := -std=gnu11 -O2 -Wall -Wextra -Werror -Wshadow -static

$(OUTPUT)/bin/wtool: tests/e2e/tools/wtool.c | $(OUTPUT)/bin
	$(call msg,CC,$@)
	$(Q)$(CC) $(WTOOL_CFLAGS) $< -o $@

TEST_TOOLS += $(OUTPUT)/bin/wtool

.PHONY: wtool
wtool: $(OUTPUT)/bin/wtool
