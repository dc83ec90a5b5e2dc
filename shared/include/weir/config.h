/* SPDX-License-Identifier: Apache-2.0 */
/* Node configuration: /etc/weir/weir.conf, JSON, every key optional, unknown keys refused. */
#ifndef WEIR_CONFIG_H
#define WEIR_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "cgroup.h"
#include "error.h"
#include "log.h"
#include "policy.h"

#define WEIR_DEFAULT_CONFIG	    "/etc/weir/weir.conf"
#define WEIR_DEFAULT_STATE_DIR	    "/run/weir"
#define WEIR_DEFAULT_BPFFS	    "/sys/fs/bpf"
#define WEIR_MAX_CONFIG_BYTES	    (1 << 20)
#define WEIR_MAX_CONFIG_PATH	    200
/* weir-hook's bound on reading its inputs (hook_timeout_seconds) */
#define WEIR_DEFAULT_HOOK_TIMEOUT_S 10
/* the most conntrack entries conntrack.weir.io may ask for (conntrack_max_entries) */
#define WEIR_CT_DEFAULT_MAX_ENTRIES 65536

/* How weir uses BPF-LSM (node config "lsm"). */
enum weir_lsm_use {
	WEIR_LSM_AUTO = 0, /* per cgroup where the kernel can, else once per node */
	WEIR_LSM_GLOBAL,   /* once per node, filtered by endpoint */
	WEIR_LSM_OFF,	   /* never: guards that need it refuse, or fall back */
};

struct weir_config {
	char state_dir[PATH_MAX];
	char bpffs[PATH_MAX];
	/* When the kernel side cannot be set up (not for bad annotations, which always refuse),
	 * let the container run unenforced instead of refusing it. */
	bool fail_open;
	bool default_audit;
	uint64_t stopped_retention_s;
	uint64_t hook_timeout_s;
	struct weir_policy_limits limits;
	/* conntrack entries per endpoint: the default, and the most conntrack.weir.io may ask */
	uint32_t ct_entries;
	uint32_t ct_max_entries;
	bool log_level_set;
	enum weir_log_level log_level;
	/* the node's TCP congestion controls, which tcp-congestion.weir.io may name */
	char tcp_cc_list[PATH_MAX];
	/*
	 * The node baseline: guards and rules every weir container gets. Annotations may only
	 * tighten it, except for pods of the namespaces in loosen_namespaces (NRI). The text is
	 * kept (checked at load) and parsed again for each container.
	 */
	char path[WEIR_MAX_CONFIG_PATH + 1]; /* the file, for messages */
	char *baseline_security;
	char *baseline_rules[WEIR_DIRS];
	char **loosen_namespaces;
	size_t n_loosen;
	char **protected_paths; /* host paths the paths guard protects in every container */
	size_t n_protected;
	enum weir_lsm_use lsm;
	bool lsm_fallback_kill; /* without BPF-LSM, an enforce that needs it becomes kill */
	bool escape_raw_tp;	/* escape detection on raw_tp/sys_enter even where fentry works */
	/* tc_attach "clsact": the interface program as a cls_bpf filter even where tcx exists */
	bool tc_clsact;
	/* patterns of the cgroups endpoints may be attached to (shared/cgroup.h) */
	size_t n_endpoint_cgroups;
	char endpoint_cgroups[WEIR_MAX_ENDPOINT_CGROUPS][WEIR_MAX_CONFIG_PATH];
};

void weir_config_defaults(struct weir_config *cfg);
/* A missing file at the default path means defaults; a missing explicit path is an error. */
int weir_config_load(struct weir_config *cfg, const char *path, bool explicit_path,
		     struct weir_error *err);
/* Free what a loaded config holds (defaults hold nothing). */
void weir_config_release(struct weir_config *cfg);
/* Does the node baseline give every container guards or rules? */
bool weir_config_has_baseline(const struct weir_config *cfg);

#endif
