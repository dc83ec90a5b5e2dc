/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A backend for weir-nri's handlers without a kernel: endpoints are entries of a table, the
 * annotations are checked by libweir's real parser and compiler. Shared by the handlers'
 * unit tests and the Synchronize benchmark.
 */
#ifndef WEIR_TEST_NRI_FAKE_H
#define WEIR_TEST_NRI_FAKE_H

#include <stdbool.h>

#include "config.h"
#include "handlers.h"
#include "idmap.h"

struct fake_ep {
	char *id, *name, *pod_uid, *pod_name, *pod_ns, *cgroup_path;
	int pid;
	bool running, nri;
	bool half; /* not running: left attaching by an interrupted weir-nri (record not stopped) */
	size_t n;
	struct weir_kv *kv; /* the resolved annotations it was attached with (owned copies) */
};

struct fake {
	struct weir_config cfg;
	struct idmap eps; /* id -> struct fake_ep */
	unsigned check_calls, load_calls, attach_calls, detach_calls, running_calls;
	int load_fail;		     /* -errno: load fails so */
	int attach_fail;	     /* -errno: attach fails so ... */
	const char *attach_fail_key; /* ... with a message about this annotation key */
	int detach_fail;
};

extern const struct weir_nri_ops fake_ops;

void fake_init(struct fake *f);
void fake_free(struct fake *f);
/* An endpoint that exists before the test's events (attached by weir-nri when nri). */
struct fake_ep *fake_add(struct fake *f, const char *id, bool running, bool nri);
struct fake_ep *fake_get(struct fake *f, const char *id);
/* The value an endpoint was attached with for a resolved key, or NULL. */
const char *fake_value(const struct fake_ep *e, const char *key);

#endif
