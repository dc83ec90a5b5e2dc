/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The statistics model: one C struct per endpoint view, rendered by `weir stats` (text and
 * JSON), the Prometheus metrics and `weir top`. No renderer parses another's output.
 *
 * Adding a counter: a __u64 field in the BPF struct (bpf/weir.h), then one row in the table
 * below that names it (weir_dir_counters_desc or weir_tcp_desc): JSON, metrics, record
 * files and the text view all follow from that row.
 */
#ifndef WEIR_STATS_H
#define WEIR_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "annot.h"
#include "bpf/weir.h"
#include "error.h"
#include "record.h"

struct weir_ctx;

#define WEIR_MAX_EP_DROPS 128

/* An endpoint's conntrack map (bpf/lib/conntrack.h). */
struct weir_ct_usage {
	uint64_t budget;   /* entries the map holds at most */
	uint64_t entries;  /* entries in it now */
	uint64_t inserted; /* entries ever added: the sum of the directions' ct_inserted */
	uint64_t evicted;  /* entries the LRU evicted to make room: inserted - entries */
	uint64_t memory;   /* bytes, the kernel's figure */
};

/* Statistics of one endpoint, summed over CPUs. */
struct weir_ep_stats {
	struct weir_counters c;
	struct weir_tcp_stats tcp;
	bool has_tcp;
	struct weir_guard_counters guards; /* security guards, by guard and action */
	bool has_guards;
	struct weir_ct_usage ct;
	bool has_ct;
	size_t ndrops;
	struct {
		uint32_t reason; /* the running kernel's enum skb_drop_reason */
		uint64_t count;
	} drops[WEIR_MAX_EP_DROPS];
};

/* One row of a counter table: a __u64 somewhere in struct weir_ep_stats. */
struct weir_counter_desc {
	const char *key;	 /* JSON key (under the direction for per-direction rows) */
	const char *sub;	 /* "packets" / "bytes" under key, or NULL: key is the number */
	size_t off;		 /* of the __u64: in struct weir_dir_counters or weir_ep_stats */
	const char *metric;	 /* Prometheus family, NULL when another row exposes it */
	const char *label;	 /* an extra label of the family, or NULL */
	const char *label_value; /* its value for this row */
	const char *help;	 /* HELP of the family (on the family's first row) */
};

/* Per direction, beyond the per-protocol packets and bytes that passed. */
extern const struct weir_counter_desc weir_dir_counters_desc[];
extern const size_t weir_dir_counters_ndesc;
/* TCP health: offsets into struct weir_ep_stats (the JSON object "tcp"). */
extern const struct weir_counter_desc weir_tcp_desc[];
extern const size_t weir_tcp_ndesc;

/* The endpoint's conntrack map: offsets into struct weir_ep_stats (the JSON object
 * "conntrack"); rows with a label_value "gauge" are gauges, the others counters. */
extern const struct weir_counter_desc weir_ct_desc[];
extern const size_t weir_ct_ndesc;

extern const char *const weir_dir_names[WEIR_DIRS];
extern const char *const weir_pclass_names[WEIR_PCLASSES];

static inline uint64_t weir_counter_at(const void *base, const struct weir_counter_desc *d)
{
	return *(const __u64 *)((const char *)base + d->off);
}

/* State of a view: a record's state, or unknown when its record cannot be read. */
#define WEIR_VIEW_UNKNOWN WEIR_STATE_COUNT

struct weir_ep_view {
	char *id;
	char *name; /* NULL when the runtime did not say */
	char *pod_name;
	char *pod_namespace;
	char *source;
	char *cgroup;
	char *note;	  /* why a record stopped other than by a detach */
	char *security;	  /* the guards as carried out here ("bind=enforce ..."), or NULL */
	char *iface_name; /* the host-side veth, or NULL: cgroup programs only */
	char *iface_tc;	  /* how weir's program is on it: "tcx", "clsact" or "none" */
	uint32_t iface_ifindex;
	/* which program shapes each direction: "cgroup", "interface", or NULL: not shaped */
	const char *shaping[WEIR_DIRS];
	char *error; /* why the record is unreadable (state unknown) */
	int state;   /* enum weir_ep_state or WEIR_VIEW_UNKNOWN */
	uint32_t endpoint;
	bool audit;
	enum weir_monitor monitor;
	uint64_t started_ms;
	uint64_t stopped_ms;
	bool counters_available; /* live from the maps (running) or final (stopped) */
	struct weir_ep_stats s;
};

struct weir_ep_views {
	size_t n;
	struct weir_ep_view *v;
};

/*
 * Every endpoint weir has a record of, in id order; with_counters reads the live counters of
 * running ones (one walk of the kernel drop map for all) and the final ones of stopped ones.
 */
int weir_views_collect(struct weir_ctx *ctx, bool with_counters, struct weir_ep_views *out);
void weir_views_free(struct weir_ep_views *views);
const char *weir_view_state_name(int state);

/* The node: what metrics and `weir status` show beside the endpoints. */
struct weir_node_view {
	bool datapath_loaded;
	bool events_known; /* the event counters could be read */
	uint64_t endpoints_running;
	uint64_t endpoints_stopped;
	uint64_t events_sent;
	uint64_t events_lost;
	bool guard_events_known;
	uint64_t guard_events_sent; /* security guard events, a ring of their own */
	uint64_t guard_events_lost;
	bool drop_reasons; /* the kernel drop program is attached */
	/* the pinned datapath's per-socket verdict slots: WEIR_SK_VERDICTS_* */
	int sk_verdicts;
};

enum {
	WEIR_SK_VERDICTS_UNKNOWN = -1, /* pinned by a weir that did not record it */
	WEIR_SK_VERDICTS_OFF = 0,      /* the verifier refused them: loaded without */
	WEIR_SK_VERDICTS_ON = 1,
};

int weir_node_view_read(struct weir_ctx *ctx, struct weir_node_view *out);
/* What weir_meta's flags (WEIR_META_*) say of the per-socket verdict slots. */
int weir_sk_verdicts_of(unsigned int meta_flags);

/* JSON: what `weir stats --json` prints (and `weir list --json` without counters). */
struct json_object *weir_view_summary_json(const struct weir_ep_view *v);
struct json_object *weir_view_to_json(const struct weir_ep_view *v);
/* The counters part, also how a stopped record keeps its final counters. */
struct json_object *weir_ep_stats_to_json(const struct weir_ep_stats *s);
/*
 * The reverse, checked: a counter that is missing reads as 0 (an older weir wrote it); one of
 * the wrong type or out of range is -EBADMSG naming it.
 */
int weir_ep_stats_from_json(struct json_object *o, struct weir_ep_stats *s, struct weir_error *err);

/* The kernel's name of a drop reason (SKB_DROP_REASON_ prefix removed). */
const char *weir_drop_reason_name(uint32_t reason, char *buf, size_t size);
/* The reverse: -ENOENT for a name this kernel does not have. */
int weir_drop_reason_value(const char *name, uint32_t *value);

/* Histogram quantile in microseconds, interpolated inside the log2 bucket that holds it. */
double weir_hist_quantile(const struct weir_hist *h, double q);
uint64_t weir_hist_count(const struct weir_hist *h);
/* Inclusive upper bound of bucket i, in microseconds. */
uint64_t weir_hist_bucket_le(int i);

#endif
