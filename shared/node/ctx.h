/* SPDX-License-Identifier: Apache-2.0 */
/* libweir internals shared by its modules: the node context and endpoint records. */
#ifndef WEIR_CTX_H
#define WEIR_CTX_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "bpf/weir.h"
#include "config.h"
#include "datapath.h"
#include "guard.h"
#include "record.h"
#include "stats.h"
#include "libweir.h"

struct weir_ctx {
	struct weir_config cfg;
	struct weir_paths paths;
	char containers_dir[PATH_MAX]; /* <state>/containers/<id>.json: one record each */
	char ids_dir[PATH_MAX];	       /* <state>/ids/<ep>: endpoint ids in use */
	char keys_dir[PATH_MAX];       /* <state>/keys/<ep>: policy keys an endpoint wrote */
	struct weir_datapath dp;
	bool dp_open;
};

/* Open the pinned datapath once per context. */
int weir_ctx_datapath(struct weir_ctx *ctx, bool load, struct weir_error *err);

/* Records (shared/record.c): see record.h for the typed form. */
int weir_record_path(const struct weir_ctx *ctx, const char *id, char *out, size_t size);
/* Callers hold the registry lock: records change only under it. */
int weir_record_write(const struct weir_ctx *ctx, const struct weir_record *rec,
		      struct weir_error *err);
int weir_record_remove(const struct weir_ctx *ctx, const char *id);
/* The endpoint registry (shared/registry.c). */
int weir_registry_lock(struct weir_ctx *ctx, struct weir_error *err);

/* Every kernel drop count of the node: one walk of weir_drops serves every endpoint. */
struct weir_drops {
	size_t n;
	struct {
		struct weir_drop_key key;
		uint64_t count;
	} * e;
};

int weir_drops_read(struct weir_ctx *ctx, struct weir_drops *out);
void weir_drops_free(struct weir_drops *d);
/* drops: what weir_drops_read() found, or NULL to read it for this endpoint alone */
int weir_ep_stats_read(struct weir_ctx *ctx, uint32_t ep, const struct weir_drops *drops,
		       struct weir_ep_stats *out);
int weir_ep_stats_zero(struct weir_ctx *ctx, uint32_t ep);
void weir_ep_drops_clear(struct weir_ctx *ctx, uint32_t ep);

/*
 * Per-endpoint conntrack maps (shared/node/ct.c): weir_ct[ep] holds the endpoint's LRU of
 * `entries` entries, pinned as <pin_dir>/weir_ct_<ep> (pin_dir NULL: not pinned, found by id).
 * remove is idempotent; open returns an fd of the endpoint's map; sweep removes slots and pins
 * of ids nobody holds and returns how many.
 */
int weir_ct_create(int outer, const char *pin_dir, uint32_t ep, uint32_t entries,
		   struct weir_error *err);
void weir_ct_remove(int outer, const char *pin_dir, uint32_t ep);
int weir_ct_open(int outer, const char *pin_dir, uint32_t ep);
int weir_ct_usage(int outer, const char *pin_dir, uint32_t ep, struct weir_ct_usage *out);
unsigned int weir_ct_sweep(int outer, const char *pin_dir, const bool *held);
/*
 * Is weir_ct[ep] the map pinned as weir_ct_<ep>? 0 when it is, -ENOENT when the slot or the
 * pin is missing, -ESTALE when they name different maps, another -errno when it cannot tell.
 */
int weir_ct_check(int outer, const char *pin_dir, uint32_t ep);
/*
 * Make slot and pin name one map again, keeping the tracked flows wherever they survive: the
 * pinned map goes back into the slot, else the slot's map is pinned again (CAP_SYS_ADMIN: a
 * map by id), else a new map of `entries` is made (its flows are lost). 0 or -errno.
 */
int weir_ct_restore(int outer, const char *pin_dir, uint32_t ep, uint32_t entries,
		    struct weir_error *err);

/* Security guards of an endpoint (shared/guardreg.c), for the registry. */
struct weir_spec;
/* Why BPF-LSM is not used here (into buf), or NULL when it is. */
const char *weir_lsm_unavailable(struct weir_ctx *ctx, char *buf, size_t size);
/* The plan of a spec's guards on this node (the datapath is open); refuses what it cannot do. */
int weir_guards_prepare(struct weir_ctx *ctx, const struct weir_spec *spec,
			struct weir_guard_plan *plan, struct weir_error *err);
/* Write an endpoint's guard entries and make the node links it needs (registry lock held). */
int weir_guards_apply(struct weir_ctx *ctx, uint32_t ep, uint32_t gen,
		      const struct weir_guard_plan *plan, const struct weir_guards *g, bool started,
		      struct weir_error *err);
/* Remove every guard entry of an endpoint (idempotent). */
void weir_guards_teardown(struct weir_ctx *ctx, uint32_t ep);
/* Remove guard entries of endpoint ids nobody holds; returns how many. */
unsigned int weir_guards_sweep(struct weir_ctx *ctx, const bool *held);
/* Detach node-wide guard programs no endpoint needs any more (registry lock held). */
unsigned int weir_guard_links_gc(struct weir_ctx *ctx);

#endif
