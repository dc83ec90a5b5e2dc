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
#include "weir.h"

struct weir_ctx {
	struct weir_config cfg;
	struct weir_paths paths;
	char containers_dir[PATH_MAX]; /* <state>/containers/<id>.json: one record each */
	char ids_dir[PATH_MAX];	       /* <state>/ids/<ep>: endpoint ids in use */
	struct weir_datapath dp;
	bool dp_open;
};

/* Open the pinned datapath once per context. */
int weir_ctx_datapath(struct weir_ctx *ctx, bool load, struct weir_error *err);

/* Records */
int weir_record_path(const struct weir_ctx *ctx, const char *id, char *out, size_t size);
/* Read a record; -ENOENT when there is none. */
int weir_record_load(const struct weir_ctx *ctx, const char *id, struct json_object **out,
		     struct weir_error *err);
int weir_record_store(const struct weir_ctx *ctx, const char *id, struct json_object *rec,
		      struct weir_error *err);
uint64_t weir_json_u64(struct json_object *o, const char *key);
const char *weir_json_str(struct json_object *o, const char *key);

/* Statistics of a live endpoint, summed over CPUs (shared/epstats.c). */
struct weir_ep_stats {
	struct weir_counters c;
	struct weir_tcp_stats tcp;
	bool has_tcp;
	size_t ndrops;
	struct {
		uint32_t reason;
		uint64_t count;
	} drops[128];
};

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
int weir_counters_read(struct weir_ctx *ctx, uint32_t ep, struct weir_counters *out);
/* drops: what weir_drops_read() found, or NULL to read it for this endpoint alone */
int weir_ep_stats_read(struct weir_ctx *ctx, uint32_t ep, const struct weir_drops *drops,
		       struct weir_ep_stats *out);
int weir_ep_stats_zero(struct weir_ctx *ctx, uint32_t ep);
void weir_ep_drops_clear(struct weir_ctx *ctx, uint32_t ep);
struct json_object *weir_counters_to_json(const struct weir_counters *c);
/* counters, "tcp" (when known) and "kernel_drops" */
struct json_object *weir_ep_stats_to_json(const struct weir_ep_stats *s);
int weir_counters_from_json(struct json_object *o, struct weir_counters *out);
/* A histogram quantile: the inclusive upper bound of the bucket holding it. */
uint64_t weir_hist_quantile(const struct weir_hist *h, double q);
/* The kernel's name of a drop reason (SKB_DROP_REASON_ prefix removed). */
const char *weir_drop_reason_name(uint32_t reason, char *buf, size_t size);

/* Every record, for list/stats/gc: calls fn for each; stops on a non-zero return. */
int weir_records_foreach(struct weir_ctx *ctx,
			 int (*fn)(struct weir_ctx *ctx, const char *id, struct json_object *rec,
				   void *arg),
			 void *arg);

/* Statistics (shared/stats.c), in the JSON form `weir stats --json` prints. */
struct json_object *weir_record_summary(struct json_object *rec);
int weir_records_all(struct weir_ctx *ctx, struct json_object *array);
/*
 * One endpoint: its summary plus counters (live from the maps, or final for stopped ones);
 * drops as for weir_ep_stats_read().
 */
struct json_object *weir_stats_of(struct weir_ctx *ctx, struct json_object *rec,
				  const struct weir_drops *drops);
/* The node's kernel drop counts for weir_stats_of(); empty when the datapath is not loaded. */
void weir_stats_drops(struct weir_ctx *ctx, struct weir_drops *drops);
/* Every endpoint: a new JSON array of weir_stats_of() objects. */
int weir_stats_collect(struct weir_ctx *ctx, struct json_object **out);

/* Garbage collection: endpoints whose cgroup is gone, expired records, orphans. */
struct weir_gc_report {
	unsigned int detached, expired, orphans, stale_entries;
};
int weir_gc(struct weir_ctx *ctx, struct weir_gc_report *rep, struct weir_error *err);

#endif
