// SPDX-License-Identifier: Apache-2.0
/*
 * The node config (/etc/weir/weir.conf): any text either loads into a config whose every value
 * is in range, or is refused with one line; endpoint_cgroups patterns that load are well formed
 * and match only what their grammar says. The text is served from a memfd, a regular file
 * that never touches the disk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cgroup.h"
#include "config.h"
#include "fuzz.h"
#include "log.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fd = memfd_create("weir.conf", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	weir_log_init("fuzz_config", WEIR_LOG_ERROR, WEIR_LOG_TEXT);
	return 0;
}

static const char *const paths[] = {
	"/kubepods/besteffort/pod1/c1", "/kubepods", "/machine.slice/libpod-1.scope", "/a", "/a/b",
	"/system.slice/runc-x.scope",	"/",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct weir_config cfg;
	struct weir_error err = {};

	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	if (weir_config_load(&cfg, path, true, &err)) {
		if (!err.msg[0] || !err.code)
			abort(); /* every refusal says why */
		return 0;
	}
	if (cfg.state_dir[0] != '/' || cfg.bpffs[0] != '/' ||
	    strlen(cfg.state_dir) >= WEIR_MAX_CONFIG_PATH ||
	    strlen(cfg.bpffs) >= WEIR_MAX_CONFIG_PATH)
		abort();
	if (cfg.hook_timeout_s < 1 || cfg.hook_timeout_s > 3600 || cfg.limits.max_rules < 1 ||
	    cfg.limits.max_value_bytes < 64 || cfg.log_level > WEIR_LOG_DEBUG)
		abort();
	if (!cfg.n_endpoint_cgroups || cfg.n_endpoint_cgroups > WEIR_MAX_ENDPOINT_CGROUPS)
		abort();
	for (size_t i = 0; i < cfg.n_endpoint_cgroups; i++) {
		const char *pat = cfg.endpoint_cgroups[i];

		if (weir_cgroup_pattern_invalid(pat))
			abort();
		for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++)
			if (weir_cgroup_pattern_match(pat, paths[k]) && !strcmp(paths[k], "/"))
				abort(); /* the root is never matched */
		/* a pattern without globs matches itself, unless it is a subtree */
		if (!strpbrk(pat, "*?[\\") && !weir_cgroup_pattern_match(pat, pat))
			abort();
	}
	weir_config_release(&cfg);
	return 0;
}
