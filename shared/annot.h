/* SPDX-License-Identifier: Apache-2.0 */
/* Annotations to a validated endpoint specification. */
#ifndef WEIR_ANNOT_H
#define WEIR_ANNOT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "policy.h"
#include "weir.h"

#define WEIR_KEY_EGRESS	     "egress.weir.io"
#define WEIR_KEY_INGRESS     "ingress.weir.io"
#define WEIR_KEY_POLICY_MODE "policy-mode.weir.io"
#define WEIR_KEY_MONITOR     "monitor.weir.io"

enum weir_monitor {
	WEIR_MON_COUNTERS = 0, /* default: packet counters and TCP health */
	WEIR_MON_FLOWS,	       /* and flow and denial events */
	WEIR_MON_OFF,	       /* packet counters only (they are part of enforcement) */
};

extern const char *const weir_monitor_names[];

struct weir_spec {
	bool any; /* at least one weir annotation */
	bool audit;
	enum weir_monitor monitor;
	struct weir_policy policy;
};

/* kv: resolved annotations (plain "<name>.weir.io" keys; other keys are ignored). */
int weir_spec_parse(const struct weir_config *cfg, const struct weir_kv *kv, size_t n,
		    struct weir_spec *spec, struct weir_error *err);
void weir_spec_free(struct weir_spec *spec);

/* Is this key in weir's namespace ("<name>.weir.io", optionally followed by "/...")? */
bool weir_is_weir_key(const char *key);

#endif
