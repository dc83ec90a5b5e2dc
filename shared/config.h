/* SPDX-License-Identifier: Apache-2.0 */
/* Node configuration: /etc/weir/weir.conf, JSON, every key optional, unknown keys refused. */
#ifndef WEIR_CONFIG_H
#define WEIR_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "log.h"
#include "policy.h"

#define WEIR_DEFAULT_CONFIG    "/etc/weir/weir.conf"
#define WEIR_DEFAULT_STATE_DIR "/run/weir"
#define WEIR_DEFAULT_BPFFS     "/sys/fs/bpf"
#define WEIR_MAX_CONFIG_BYTES  (1 << 20)
#define WEIR_MAX_CONFIG_PATH   200

struct weir_config {
	char state_dir[PATH_MAX];
	char bpffs[PATH_MAX];
	/* When the kernel side cannot be set up (not for bad annotations, which always refuse),
	 * let the container run unenforced instead of refusing it. */
	bool fail_open;
	bool default_audit;
	uint64_t stopped_retention_s;
	struct weir_policy_limits limits;
	bool log_level_set;
	enum weir_log_level log_level;
};

void weir_config_defaults(struct weir_config *cfg);
/* A missing file at the default path means defaults; a missing explicit path is an error. */
int weir_config_load(struct weir_config *cfg, const char *path, bool explicit_path,
		     struct weir_error *err);

#endif
