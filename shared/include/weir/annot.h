/* SPDX-License-Identifier: Apache-2.0 */
/* Annotations to a validated endpoint specification. */
#ifndef WEIR_ANNOT_H
#define WEIR_ANNOT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "guard.h"
#include "policy.h"
#include "shaping.h"
#include "libweir.h"

#define WEIR_KEY_EGRESS	     "egress.weir.io"
#define WEIR_KEY_INGRESS     "ingress.weir.io"
#define WEIR_KEY_POLICY_MODE "policy-mode.weir.io"
#define WEIR_KEY_MONITOR     "monitor.weir.io"
#define WEIR_KEY_CONNTRACK   "conntrack.weir.io"
/* WEIR_KEY_SECURITY: shared/guard.h */

enum weir_monitor {
	WEIR_MON_COUNTERS = 0, /* default: packet counters and TCP health */
	WEIR_MON_FLOWS,	       /* and flow and denial events */
	WEIR_MON_OFF,	       /* packet counters only (they are part of enforcement) */
};

extern const char *const weir_monitor_names[];

struct weir_spec {
	bool any; /* at least one weir annotation, or a node baseline */
	bool audit;
	enum weir_monitor monitor;
	struct weir_policy policy;
	struct weir_guards guards;   /* security.weir.io, the node baseline merged in */
	struct weir_policy base;     /* the node baseline's rules: traffic needs both to allow */
	struct weir_shaping shaping; /* bandwidth, burst, priority class, congestion control */
	uint32_t ct_entries;	     /* conntrack entries (conntrack.weir.io, node default) */
};

/* kv: resolved annotations (plain "<name>.weir.io" keys; other keys are ignored). */
int weir_spec_parse(const struct weir_config *cfg, const struct weir_kv *kv, size_t n,
		    struct weir_spec *spec, struct weir_error *err);
/* The same for a pod of a Kubernetes namespace, which the node config may trust to loosen. */
int weir_spec_parse_for(const struct weir_config *cfg, const struct weir_kv *kv, size_t n,
			const char *pod_namespace, struct weir_spec *spec, struct weir_error *err);
/* Compile the spec's rules, intersected with the baseline's where it has any. */
int weir_spec_compile(const struct weir_spec *spec, struct weir_compiled *out,
		      struct weir_error *err);
/* Does a direction have rules (its own or the baseline's), so it is default-deny? */
bool weir_spec_dir_present(const struct weir_spec *spec, enum weir_dir dir);

/* shared/baseline.c: merge the node baseline into a parsed spec. */
int weir_baseline_apply(const struct weir_config *cfg, const char *pod_namespace,
			struct weir_spec *spec, struct weir_error *err);
void weir_spec_free(struct weir_spec *spec);
/* Parse and compile, then forget: is this set of annotations one weir would enforce? */
int weir_spec_check(const struct weir_config *cfg, const struct weir_kv *kv, size_t n,
		    struct weir_error *err);
/* The same for a pod of a Kubernetes namespace (NULL: none). */
int weir_spec_check_for(const struct weir_config *cfg, const struct weir_kv *kv, size_t n,
			const char *pod_namespace, struct weir_error *err);

/* Is this key in weir's namespace ("<name>.weir.io", optionally followed by "/...")? */
bool weir_is_weir_key(const char *key);

#endif
