/* SPDX-License-Identifier: Apache-2.0 */
/* The endpoint registry's operations for gc (shared/registry.c holds the invariants). */
#ifndef WEIR_REGISTRY_H
#define WEIR_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct weir_ctx;

enum {
	WEIR_SETTLED_NOTHING = 0,
	WEIR_SETTLED_REPAIRED, /* an interrupted attach or detach was undone */
	WEIR_SETTLED_DETACHED, /* a running endpoint whose cgroup is gone was detached */
	WEIR_SETTLED_EXPIRED,  /* a stopped record older than the retention was removed */
};

/*
 * Bring one container's record to rest; the caller holds the registry lock. A stopped record
 * that stopped before expire_before_ms is removed. Returns a WEIR_SETTLED_* or -errno (err
 * then says why; an unreadable record is left alone).
 */
int weir_registry_settle(struct weir_ctx *ctx, const char *id, uint64_t expire_before_ms,
			 struct weir_error *err);
/*
 * Free what no record claims: ids, keys files and link folders of attaches that died before
 * writing their record, and temporary files of dead writers. The caller holds the lock.
 * Returns how many were removed.
 */
unsigned int weir_registry_orphans(struct weir_ctx *ctx);
/*
 * Interfaces (weir_ifaces, <bpffs>/weir/ifaces) whose endpoints nobody holds: their lists
 * shrink, and an empty one loses its attachment. Returns how many were changed.
 */
unsigned int weir_registry_ifaces_gc(struct weir_ctx *ctx);
/* Delete map entries of endpoint ids nobody holds; takes the lock for the deletes itself. */
int weir_registry_sweep(struct weir_ctx *ctx, unsigned int *deleted, struct weir_error *err);

#endif
