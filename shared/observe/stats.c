// SPDX-License-Identifier: Apache-2.0
/*
 * The statistics model (stats.h): the counter tables, the views of every endpoint and of the
 * node, and their JSON form, which is also how a stopped record keeps its final counters.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "ctx.h"
#include "events.h"
#include "guard.h"
#include "stats.h"
#include "util.h"

const char *const weir_dir_names[WEIR_DIRS] = {"egress", "ingress"};
const char *const weir_pclass_names[WEIR_PCLASSES] = {"tcp", "udp", "icmp", "other"};

#define DIRC(field) offsetof(struct weir_dir_counters, field)

const struct weir_counter_desc weir_dir_counters_desc[] = {
	{"policy_dropped", "packets", DIRC(policy_dropped.packets),
	 "weir_policy_dropped_packets_total", NULL, NULL,
	 "Packets the container's policy dropped (enforce mode)."},
	{"policy_dropped", "bytes", DIRC(policy_dropped.bytes), "weir_policy_dropped_bytes_total",
	 NULL, NULL, "Bytes of the packets the container's policy dropped (enforce mode)."},
	{"audit_denied", "packets", DIRC(audit_denied.packets), "weir_audit_denied_packets_total",
	 NULL, NULL, "Packets the policy would have dropped, let through in audit mode."},
	{"audit_denied", "bytes", DIRC(audit_denied.bytes), "weir_audit_denied_bytes_total", NULL,
	 NULL, "Bytes of the packets the policy would have dropped, let through in audit mode."},
	{"denied_connects", NULL, DIRC(denied_connects), "weir_denied_connects_total", NULL, NULL,
	 "connect() and sendmsg() calls the policy refused with EPERM."},
	{"audit_denied_connects", NULL, DIRC(audit_denied_connects),
	 "weir_audit_denied_connects_total", NULL, NULL,
	 "connect() and sendmsg() calls the policy would have refused (audit mode)."},
	/* exposed as weir_tcp_resets_total by the TCP table */
	{"tcp_resets", NULL, DIRC(tcp_resets), NULL, NULL, NULL, NULL},
	{"shaped_dropped", "packets", DIRC(shaped_dropped.packets),
	 "weir_shaping_dropped_packets_total", NULL, NULL,
	 "Packets the rate limiter dropped, past the burst."},
	{"shaped_dropped", "bytes", DIRC(shaped_dropped.bytes), "weir_shaping_dropped_bytes_total",
	 NULL, NULL, "Bytes of the packets the rate limiter dropped, past the burst."},
	{"ce_marked", NULL, DIRC(ce_marked), "weir_shaping_ce_marked_total", NULL, NULL,
	 "ECN-capable packets the rate limiter marked Congestion Experienced."},
	{"congestion_notified", NULL, DIRC(cn_notified), "weir_shaping_congestion_notified_total",
	 NULL, NULL, "Egress packets on which the rate limiter told TCP to slow down."},
	/* a gauge: exposed as weir_shaping_rate_limit_bits_per_second by the metrics */
	{"rate_limit_bps", NULL, DIRC(rate_limit), NULL, NULL, NULL, NULL},
};
const size_t weir_dir_counters_ndesc = WEIR_ARRAY_SIZE(weir_dir_counters_desc);

#define EPS(field) offsetof(struct weir_ep_stats, field)

/* Rows of one family follow each other. */
const struct weir_counter_desc weir_tcp_desc[] = {
	{"active_opens", NULL, EPS(tcp.active_opens), "weir_tcp_connections_opened_total", "type",
	 "active",
	 "TCP connections established: active (the container connected) or passive (it "
	 "accepted)."},
	{"passive_opens", NULL, EPS(tcp.passive_opens), "weir_tcp_connections_opened_total", "type",
	 "passive", NULL},
	{"failed_connects", NULL, EPS(tcp.failed_connects), "weir_tcp_connect_failures_total", NULL,
	 NULL, "TCP connects of the container that failed (refused, reset or timed out)."},
	{"resets_sent", NULL, EPS(c.dir[WEIR_EGRESS].tcp_resets), "weir_tcp_resets_total",
	 "direction", "sent", "TCP resets the container sent or received."},
	{"resets_received", NULL, EPS(c.dir[WEIR_INGRESS].tcp_resets), "weir_tcp_resets_total",
	 "direction", "received", NULL},
	{"retransmits", NULL, EPS(tcp.retransmits), "weir_tcp_retransmits_total", NULL, NULL,
	 "TCP segments the container retransmitted."},
};
const size_t weir_tcp_ndesc = WEIR_ARRAY_SIZE(weir_tcp_desc);

const struct weir_counter_desc weir_ct_desc[] = {
	{"budget", NULL, EPS(ct.budget), "weir_conntrack_budget_entries", NULL, "gauge",
	 "Conntrack entries the container's own conntrack map holds at most "
	 "(conntrack.weir.io, node conntrack_entries)."},
	{"entries", NULL, EPS(ct.entries), "weir_conntrack_entries", NULL, "gauge",
	 "Conntrack entries in the container's map now."},
	{"inserted", NULL, EPS(ct.inserted), "weir_conntrack_inserted_total", NULL, NULL,
	 "Conntrack entries the container's packets added (flows, and UDP peers for replies)."},
	{"evicted", NULL, EPS(ct.evicted), "weir_conntrack_evictions_total", NULL, NULL,
	 "Conntrack entries of the container evicted to make room for its newer ones (never "
	 "another container's)."},
	{"memory_bytes", NULL, EPS(ct.memory), "weir_conntrack_memory_bytes", NULL, "gauge",
	 "Kernel memory of the container's conntrack map, preallocated."},
};
const size_t weir_ct_ndesc = WEIR_ARRAY_SIZE(weir_ct_desc);

static __u64 *counter_ptr(void *base, const struct weir_counter_desc *d)
{
	return (__u64 *)((char *)base + d->off);
}

/* ---- histograms --------------------------------------------------------------------- */

uint64_t weir_hist_bucket_le(int i)
{
	return i == 0 ? 0 : (1ULL << i) - 1;
}

uint64_t weir_hist_count(const struct weir_hist *h)
{
	uint64_t n = 0;

	for (int i = 0; i < WEIR_HIST_BUCKETS; i++)
		n += h->buckets[i];
	return n;
}

double weir_hist_quantile(const struct weir_hist *h, double q)
{
	uint64_t total = weir_hist_count(h), cum = 0;
	double rank = q * (double)total;

	if (!total)
		return 0;
	for (int i = 0; i < WEIR_HIST_BUCKETS; i++) {
		uint64_t c = h->buckets[i];

		if (c && (double)(cum + c) >= rank) {
			/* bucket i holds [2^(i-1), 2^i - 1]; bucket 0 holds 0 */
			double lo = i ? (double)(1ULL << (i - 1)) : 0;
			double hi = (double)weir_hist_bucket_le(i);

			return lo + (hi - lo) * (rank - (double)cum) / (double)c;
		}
		cum += c;
	}
	return (double)weir_hist_bucket_le(WEIR_HIST_BUCKETS - 1);
}

/* ---- JSON --------------------------------------------------------------------------- */

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static struct json_object *hist_json(const struct weir_hist *h)
{
	struct json_object *o = json_object_new_object(), *b = json_object_new_array();

	for (int i = 0; i < WEIR_HIST_BUCKETS; i++) {
		struct json_object *e = json_object_new_object();

		add_u64(e, "le_us", weir_hist_bucket_le(i));
		add_u64(e, "count", h->buckets[i]);
		json_object_array_add(b, e);
	}
	json_object_object_add(o, "buckets", b);
	add_u64(o, "sum_us", h->sum);
	add_u64(o, "count", weir_hist_count(h));
	add_u64(o, "p50_us", (uint64_t)(weir_hist_quantile(h, 0.5) + 0.5));
	add_u64(o, "p99_us", (uint64_t)(weir_hist_quantile(h, 0.99) + 0.5));
	return o;
}

/* Set o[key][sub] (or o[key] when sub is NULL). */
static void put_counter(struct json_object *o, const struct weir_counter_desc *d, uint64_t v)
{
	struct json_object *inner;

	if (!d->sub) {
		add_u64(o, d->key, v);
		return;
	}
	if (!json_object_object_get_ex(o, d->key, &inner)) {
		inner = json_object_new_object();
		json_object_object_add(o, d->key, inner);
	}
	add_u64(inner, d->sub, v);
}

struct json_object *weir_ep_stats_to_json(const struct weir_ep_stats *s)
{
	struct json_object *o = json_object_new_object(), *drops = json_object_new_object();

	for (int d = 0; d < WEIR_DIRS; d++) {
		const struct weir_dir_counters *dc = &s->c.dir[d];
		struct json_object *dj = json_object_new_object();

		for (int p = 0; p < WEIR_PCLASSES; p++) {
			struct json_object *pb = json_object_new_object();

			add_u64(pb, "packets", dc->proto[p].packets);
			add_u64(pb, "bytes", dc->proto[p].bytes);
			json_object_object_add(dj, weir_pclass_names[p], pb);
		}
		for (size_t i = 0; i < weir_dir_counters_ndesc; i++)
			put_counter(dj, &weir_dir_counters_desc[i],
				    weir_counter_at(dc, &weir_dir_counters_desc[i]));
		json_object_object_add(o, weir_dir_names[d], dj);
	}
	if (s->has_tcp) {
		struct json_object *t = json_object_new_object();

		for (size_t i = 0; i < weir_tcp_ndesc; i++)
			put_counter(t, &weir_tcp_desc[i], weir_counter_at(s, &weir_tcp_desc[i]));
		json_object_object_add(t, "connect_latency_us", hist_json(&s->tcp.connect_latency));
		json_object_object_add(t, "srtt_us", hist_json(&s->tcp.srtt));
		json_object_object_add(o, "tcp", t);
	}
	if (s->has_ct) {
		struct json_object *t = json_object_new_object();

		for (size_t i = 0; i < weir_ct_ndesc; i++)
			put_counter(t, &weir_ct_desc[i], weir_counter_at(s, &weir_ct_desc[i]));
		json_object_object_add(o, "conntrack", t);
	}
	for (size_t i = 0; i < s->ndrops; i++) {
		char buf[32];

		add_u64(drops, weir_drop_reason_name(s->drops[i].reason, buf, sizeof(buf)),
			s->drops[i].count);
	}
	json_object_object_add(o, "kernel_drops", drops);
	if (s->has_guards) {
		struct json_object *g = json_object_new_object();

		for (int i = 0; i < WEIR_GUARDS; i++) {
			struct json_object *gj = json_object_new_object();

			for (int a = 0; a < WEIR_GACTIONS; a++)
				add_u64(gj, weir_gaction_names[a], s->guards.n[i][a]);
			json_object_object_add(g, weir_guard_names[i], gj);
		}
		add_u64(g, "quarantine_drops", s->guards.quarantine_drops);
		json_object_object_add(o, "guards", g);
	}
	return o;
}

/* ---- JSON, read back (record files: untrusted) ---------------------------------------- */

struct reader {
	struct weir_error *err;
	char path[96]; /* where in the object, for the message */
};

static int bad(struct reader *rd, const char *key, const char *expected)
{
	return weir_error_set(rd->err, -EBADMSG, "field \"%s%s\": expected %s", rd->path, key,
			      expected);
}

/* A missing key is 0 (an older weir did not count it); anything but a non-negative integer
 * is an error. */
static int read_u64(struct reader *rd, struct json_object *o, const char *key, __u64 *out)
{
	struct json_object *v;

	*out = 0;
	if (!o || !json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return bad(rd, key, "a non-negative integer");
	*out = json_object_get_uint64(v);
	return 0;
}

static int read_obj(struct reader *rd, struct json_object *o, const char *key,
		    struct json_object **out)
{
	*out = NULL;
	if (!o || !json_object_object_get_ex(o, key, out) ||
	    json_object_is_type(*out, json_type_null)) {
		*out = NULL;
		return 0;
	}
	return json_object_is_type(*out, json_type_object) ? 0 : bad(rd, key, "an object");
}

static int read_counter(struct reader *rd, struct json_object *o, const struct weir_counter_desc *d,
			__u64 *out)
{
	struct json_object *inner;
	size_t len = strlen(rd->path);
	int r;

	if (!d->sub)
		return read_u64(rd, o, d->key, out);
	r = read_obj(rd, o, d->key, &inner);
	if (r)
		return r;
	/* the message names the whole path: "egress.tcp.packets" */
	snprintf(rd->path + len, sizeof(rd->path) - len, "%s.", d->key);
	r = read_u64(rd, inner, d->sub, out);
	rd->path[len] = '\0';
	return r;
}

static int read_hist(struct reader *rd, struct json_object *t, const char *key, struct weir_hist *h)
{
	struct json_object *o, *b;
	int r = read_obj(rd, t, key, &o);

	if (r || !o)
		return r;
	r = read_u64(rd, o, "sum_us", &h->sum);
	if (r || !json_object_object_get_ex(o, "buckets", &b))
		return r;
	if (!json_object_is_type(b, json_type_array) ||
	    json_object_array_length(b) != WEIR_HIST_BUCKETS)
		return bad(rd, key, "32 buckets");
	for (int i = 0; i < WEIR_HIST_BUCKETS; i++) {
		struct json_object *e = json_object_array_get_idx(b, (size_t)i);
		__u64 le;

		if (!json_object_is_type(e, json_type_object))
			return bad(rd, key, "buckets of {le_us, count}");
		r = read_u64(rd, e, "le_us", &le);
		if (!r && le != weir_hist_bucket_le(i))
			r = bad(rd, key, "the log2 bucket bounds weir writes");
		if (!r)
			r = read_u64(rd, e, "count", &h->buckets[i]);
		if (r)
			return r;
	}
	return 0;
}

static int read_guards(struct reader *rd, struct json_object *o, struct weir_ep_stats *s)
{
	struct json_object *g, *gj;
	int r = read_obj(rd, o, "guards", &g);

	if (r || !g)
		return r;
	s->has_guards = true;
	for (int i = 0; i < WEIR_GUARDS && !r; i++) {
		snprintf(rd->path, sizeof(rd->path), "guards.");
		r = read_obj(rd, g, weir_guard_names[i], &gj);
		snprintf(rd->path, sizeof(rd->path), "guards.%s.", weir_guard_names[i]);
		for (int a = 0; a < WEIR_GACTIONS && !r && gj; a++)
			r = read_u64(rd, gj, weir_gaction_names[a], &s->guards.n[i][a]);
	}
	snprintf(rd->path, sizeof(rd->path), "guards.");
	if (!r)
		r = read_u64(rd, g, "quarantine_drops", &s->guards.quarantine_drops);
	rd->path[0] = '\0';
	return r;
}

int weir_ep_stats_from_json(struct json_object *o, struct weir_ep_stats *s, struct weir_error *err)
{
	struct reader rd = {.err = err};
	struct json_object *dj, *t, *drops;
	int r = 0;

	memset(s, 0, sizeof(*s));
	if (!json_object_is_type(o, json_type_object))
		return weir_error_set(err, -EBADMSG, "counters: expected an object");
	for (int d = 0; d < WEIR_DIRS && !r; d++) {
		struct weir_dir_counters *dc = &s->c.dir[d];

		r = read_obj(&rd, o, weir_dir_names[d], &dj);
		if (r || !dj)
			continue;
		snprintf(rd.path, sizeof(rd.path), "%s.", weir_dir_names[d]);
		for (int p = 0; p < WEIR_PCLASSES && !r; p++) {
			struct weir_counter_desc pk = {.key = weir_pclass_names[p],
						       .sub = "packets"};
			struct weir_counter_desc by = {.key = weir_pclass_names[p], .sub = "bytes"};

			r = read_counter(&rd, dj, &pk, &dc->proto[p].packets);
			if (!r)
				r = read_counter(&rd, dj, &by, &dc->proto[p].bytes);
		}
		for (size_t i = 0; i < weir_dir_counters_ndesc && !r; i++)
			r = read_counter(&rd, dj, &weir_dir_counters_desc[i],
					 counter_ptr(dc, &weir_dir_counters_desc[i]));
		rd.path[0] = '\0';
	}
	if (!r)
		r = read_obj(&rd, o, "tcp", &t);
	if (!r && t) {
		s->has_tcp = true;
		snprintf(rd.path, sizeof(rd.path), "tcp.");
		for (size_t i = 0; i < weir_tcp_ndesc && !r; i++) {
			__u64 v;

			r = read_counter(&rd, t, &weir_tcp_desc[i], &v);
			/* resets are direction counters, read above: "tcp" only repeats them */
			if (!r && weir_tcp_desc[i].off >= EPS(c) + sizeof(s->c))
				*counter_ptr(s, &weir_tcp_desc[i]) = v;
		}
		if (!r)
			r = read_hist(&rd, t, "connect_latency_us", &s->tcp.connect_latency);
		if (!r)
			r = read_hist(&rd, t, "srtt_us", &s->tcp.srtt);
		rd.path[0] = '\0';
	}
	if (!r)
		r = read_obj(&rd, o, "conntrack", &t);
	if (!r && t) {
		s->has_ct = true;
		snprintf(rd.path, sizeof(rd.path), "conntrack.");
		for (size_t i = 0; i < weir_ct_ndesc && !r; i++)
			r = read_counter(&rd, t, &weir_ct_desc[i],
					 counter_ptr(s, &weir_ct_desc[i]));
		rd.path[0] = '\0';
	}
	if (!r)
		r = read_guards(&rd, o, s);
	if (!r)
		r = read_obj(&rd, o, "kernel_drops", &drops);
	if (!r && drops) {
		snprintf(rd.path, sizeof(rd.path), "kernel_drops.");
		json_object_object_foreach (drops, name, v) {
			uint32_t reason;
			__u64 n;

			(void)v;
			r = read_u64(&rd, drops, name, &n);
			if (r)
				break;
			/* a reason this kernel does not name is dropped, not guessed */
			if (weir_drop_reason_value(name, &reason) || s->ndrops == WEIR_MAX_EP_DROPS)
				continue;
			s->drops[s->ndrops].reason = reason;
			s->drops[s->ndrops].count = n;
			s->ndrops++;
		}
	}
	if (r)
		memset(s, 0, sizeof(*s));
	return r;
}

/* ---- views -------------------------------------------------------------------------- */

const char *weir_view_state_name(int state)
{
	return state >= 0 && state < WEIR_STATE_COUNT ? weir_state_names[state] : "unknown";
}

static void add_str(struct json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

struct json_object *weir_view_summary_json(const struct weir_ep_view *v)
{
	struct json_object *o = json_object_new_object();

	add_str(o, "id", v->id);
	/* always present, null when the runtime did not say (plain runc, podman hooks) */
	add_str(o, "name", v->name);
	add_str(o, "state", weir_view_state_name(v->state));
	if (v->state == WEIR_VIEW_UNKNOWN) {
		add_str(o, "error", v->error);
		return o;
	}
	if (v->pod_name)
		add_str(o, "pod_name", v->pod_name);
	if (v->pod_namespace)
		add_str(o, "pod_namespace", v->pod_namespace);
	add_u64(o, "endpoint", v->endpoint);
	add_str(o, "mode", v->audit ? "audit" : "enforce");
	add_str(o, "monitor", weir_monitor_names[v->monitor]);
	add_str(o, "source", v->source);
	add_str(o, "cgroup", v->cgroup);
	add_u64(o, "started_ms", v->started_ms);
	if (v->stopped_ms)
		add_u64(o, "stopped_ms", v->stopped_ms);
	if (v->note)
		add_str(o, "note", v->note);
	if (v->security)
		add_str(o, "security", v->security);
	if (v->iface_name) {
		struct json_object *i = json_object_new_object();

		add_str(i, "name", v->iface_name);
		add_u64(i, "ifindex", v->iface_ifindex);
		add_str(i, "tc", v->iface_tc ? v->iface_tc : "none");
		json_object_object_add(o, "interface", i);
	}
	if (v->shaping[WEIR_EGRESS] || v->shaping[WEIR_INGRESS]) {
		struct json_object *sh = json_object_new_object();

		for (int d = 0; d < WEIR_DIRS; d++)
			if (v->shaping[d])
				add_str(sh, weir_dir_names[d], v->shaping[d]);
		json_object_object_add(o, "shaping", sh);
	}
	if (v->error)
		add_str(o, "error", v->error);
	return o;
}

struct json_object *weir_view_to_json(const struct weir_ep_view *v)
{
	struct json_object *o = weir_view_summary_json(v);
	struct json_object *c = weir_ep_stats_to_json(&v->s);

	if (!v->counters_available)
		json_object_object_add(o, "counters_available", json_object_new_boolean(false));
	json_object_object_foreach (c, k, val) {
		json_object_object_add(o, k, json_object_get(val));
	}
	json_object_put(c);
	return o;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void view_free(struct weir_ep_view *v)
{
	free(v->id);
	free(v->name);
	free(v->pod_name);
	free(v->pod_namespace);
	free(v->source);
	free(v->cgroup);
	free(v->note);
	free(v->security);
	free(v->iface_name);
	free(v->iface_tc);
	free(v->error);
}

struct collect {
	struct weir_ep_views *out;
	size_t cap;
	const struct weir_drops *drops; /* NULL: no counters */
	bool dp_loaded;
};

/*
 * Which program shapes each direction of a running endpoint, read live: egress is always the
 * cgroup program's; ingress the interface's when its program shapes it (a pod's later
 * container with another rate moves it back to the cgroup, see registry.c).
 */
static void shaping_paths(struct weir_ctx *ctx, uint32_t ep, struct weir_ep_view *v)
{
	struct weir_endpoint cfg;

	if (bpf_map_lookup_elem(ctx->dp.map[WEIR_MAP_ENDPOINTS], &ep, &cfg) ||
	    !(cfg.flags & WEIR_EP_ACTIVE))
		return;
	if (cfg.shape[WEIR_EGRESS].rate)
		v->shaping[WEIR_EGRESS] = "cgroup";
	if (cfg.shape[WEIR_INGRESS].rate)
		v->shaping[WEIR_INGRESS] = cfg.flags & WEIR_EP_SHAPE_IFACE ? "interface" : "cgroup";
}

static int view_fill(struct weir_ctx *ctx, struct collect *c, struct weir_ep_view *v,
		     const char *id, const struct weir_record *rec, const struct weir_error *why)
{
	struct weir_error e = {};

	v->id = strdup(id);
	if (!rec) {
		v->state = WEIR_VIEW_UNKNOWN;
		v->error = strdup(why ? why->msg : "unreadable");
		return v->id && v->error ? 0 : -ENOMEM;
	}
	v->name = dup_or_null(rec->name);
	v->pod_name = dup_or_null(rec->pod_name);
	v->pod_namespace = dup_or_null(rec->pod_namespace);
	v->source = dup_or_null(rec->source);
	v->cgroup = dup_or_null(rec->cgroup);
	v->note = dup_or_null(rec->note);
	v->security = dup_or_null(rec->security);
	if (rec->iface_ifindex) {
		v->iface_name = dup_or_null(rec->iface_name ? rec->iface_name : "?");
		v->iface_tc = dup_or_null(rec->iface_tc);
		v->iface_ifindex = rec->iface_ifindex;
	}
	v->state = rec->state;
	v->endpoint = rec->endpoint;
	v->audit = rec->audit;
	v->monitor = rec->monitor;
	v->started_ms = rec->started_ms;
	v->stopped_ms = rec->stopped_ms;
	if (!v->id || (rec->name && !v->name) || (rec->cgroup && !v->cgroup))
		return -ENOMEM;
	if (rec->state == WEIR_STATE_RUNNING && c->dp_loaded)
		shaping_paths(ctx, rec->endpoint, v);
	if (!c->drops)
		return 0;
	if (rec->state == WEIR_STATE_RUNNING && c->dp_loaded)
		v->counters_available = !weir_ep_stats_read(ctx, rec->endpoint, c->drops, &v->s);
	else if (rec->state == WEIR_STATE_STOPPED && rec->final)
		v->counters_available = !weir_ep_stats_from_json(rec->final, &v->s, &e);
	if (e.code) {
		/* the record is readable, its final counters are not: say so, show none */
		free(v->error);
		if (asprintf(&v->error, "final counters: %s", e.msg) < 0)
			v->error = NULL;
	}
	return 0;
}

static int collect_one(struct weir_ctx *ctx, const char *id, const struct weir_record *rec,
		       const struct weir_error *why, void *arg)
{
	struct collect *c = arg;
	struct weir_ep_views *out = c->out;
	int r;

	if (out->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 16;
		struct weir_ep_view *nv = realloc(out->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		out->v = nv;
		c->cap = ncap;
	}
	memset(&out->v[out->n], 0, sizeof(out->v[0]));
	r = view_fill(ctx, c, &out->v[out->n], id, rec, why);
	out->n++;
	return r;
}

int weir_views_collect(struct weir_ctx *ctx, bool with_counters, struct weir_ep_views *out)
{
	struct weir_drops drops = {};
	struct collect c = {.out = out};
	struct weir_error e = {};
	int r;

	memset(out, 0, sizeof(*out));
	/* without counters too: the shaping paths are read from the datapath */
	c.dp_loaded = !weir_ctx_datapath(ctx, false, &e);
	if (with_counters) {
		if (c.dp_loaded)
			weir_drops_read(ctx, &drops);
		c.drops = &drops;
	}
	r = weir_records_foreach(ctx, collect_one, &c);
	weir_drops_free(&drops);
	if (r)
		weir_views_free(out);
	return r;
}

void weir_views_free(struct weir_ep_views *views)
{
	for (size_t i = 0; i < views->n; i++)
		view_free(&views->v[i]);
	free(views->v);
	memset(views, 0, sizeof(*views));
}

/* ---- the node ----------------------------------------------------------------------- */

static int count_states(struct weir_ctx *ctx, const char *id, const struct weir_record *rec,
			const struct weir_error *why, void *arg)
{
	struct weir_node_view *n = arg;

	if (rec && rec->state == WEIR_STATE_RUNNING)
		n->endpoints_running++;
	else
		n->endpoints_stopped++;
	return 0;
}

int weir_sk_verdicts_of(unsigned int meta_flags)
{
	if (!(meta_flags & WEIR_META_SK_RECORDED))
		return WEIR_SK_VERDICTS_UNKNOWN;
	return meta_flags & WEIR_META_SK_VERDICTS ? WEIR_SK_VERDICTS_ON : WEIR_SK_VERDICTS_OFF;
}

int weir_node_view_read(struct weir_ctx *ctx, struct weir_node_view *out)
{
	struct weir_error e = {};

	memset(out, 0, sizeof(*out));
	out->datapath_loaded = !weir_ctx_datapath(ctx, false, &e);
	if (out->datapath_loaded) {
		out->events_known = !weir_events_counts(ctx, &out->events_sent, &out->events_lost);
		out->guard_events_known = !weir_guard_events_counts(ctx, &out->guard_events_sent,
								    &out->guard_events_lost);
		out->drop_reasons = ctx->dp.meta_flags & WEIR_META_DROP_REASONS;
		out->sk_verdicts = weir_sk_verdicts_of(ctx->dp.meta_flags);
	}
	return weir_records_foreach(ctx, count_states, out);
}
