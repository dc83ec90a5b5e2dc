// SPDX-License-Identifier: Apache-2.0
/*
 * Prometheus text exposition format 0.0.4 from the JSON that `weir stats --json` prints.
 *
 * Output is family-major: every sample of one metric family follows its # HELP and # TYPE
 * lines, as the format requires. A family without any sample is left out entirely, so a key
 * the kernel side does not provide (yet) produces nothing rather than zeros.
 *
 * Every per-endpoint series carries container_id, container_name, pod and namespace. The
 * kernel's log2 histograms come as non-cumulative buckets with an inclusive upper bound in
 * microseconds; they are rendered cumulative, in seconds, on the union of the bounds every
 * endpoint reported in this scrape (an omitted bucket holds nothing), so that
 * sum by (le) over containers sees one ladder.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "events.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define MAX_BOUNDS 128

struct family;

struct render {
	FILE *f;
	bool header_done;
	/* histogram families: every bucket bound seen, ascending, deduplicated */
	uint64_t bounds[MAX_BOUNDS];
	size_t n_bounds;
};

typedef void (*emit_fn)(struct render *r, const struct family *fam, struct json_object *ep);

struct family {
	const char *name;
	const char *type; /* counter, gauge, histogram */
	const char *help;
	emit_fn emit;
	const char *arg[5];
};

/* ---- format helpers ------------------------------------------------------------------- */

/* Label values: backslash, double quote and line feed are escaped, nothing else. */
static void put_label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '"')
			fputs("\\\"", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

/* HELP text: backslash and line feed. */
static void put_help(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

/* Microseconds as seconds, exactly: 1 -> "0.000001", 1500000 -> "1.5", 0 -> "0". */
static void fmt_seconds(char *buf, size_t size, uint64_t us)
{
	uint64_t s = us / 1000000, frac = us % 1000000;
	size_t n;

	if (!frac) {
		snprintf(buf, size, "%" PRIu64, s);
		return;
	}
	snprintf(buf, size, "%" PRIu64 ".%06" PRIu64, s, frac);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
}

static void fmt_u64(char *buf, size_t size, uint64_t v)
{
	snprintf(buf, size, "%" PRIu64, v);
}

/* A JSON number as an unsigned count; false when not a non-negative number. */
static bool num_u64(struct json_object *v, uint64_t *out)
{
	int64_t i;
	double d;

	switch (json_object_get_type(v)) {
	case json_type_int:
		i = json_object_get_int64(v);
		if (i < 0)
			return false;
		/* json-c clamps values above INT64_MAX in the signed getter */
		*out = i == INT64_MAX ? json_object_get_uint64(v) : (uint64_t)i;
		return true;
	case json_type_double:
		d = json_object_get_double(v);
		if (!(d >= 0))
			return false;
		*out = (uint64_t)d;
		return true;
	default:
		return false;
	}
}

static bool get_u64(struct json_object *o, const char *key, uint64_t *out)
{
	struct json_object *v;

	return o && json_object_object_get_ex(o, key, &v) && num_u64(v, out);
}

static struct json_object *get_obj(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_object))
		return NULL;
	return v;
}

static const char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return "";
	return json_object_get_string(v);
}

/*
 * One sample: NAME[SUFFIX]{endpoint labels[,k1="v1"[,k2="v2"]]} VALUE. ep may be NULL (node
 * metrics), k1/k2 may be NULL. The family's HELP and TYPE come first, once.
 */
static void sample(struct render *r, const struct family *fam, const char *suffix,
		   struct json_object *ep, const char *k1, const char *v1, const char *k2,
		   const char *v2, const char *value)
{
	FILE *f = r->f;
	bool first = true;

	if (!r->header_done) {
		fprintf(f, "# HELP %s ", fam->name);
		put_help(f, fam->help);
		fprintf(f, "\n# TYPE %s %s\n", fam->name, fam->type);
		r->header_done = true;
	}
	fprintf(f, "%s%s", fam->name, suffix ?: "");
	if (ep) {
		static const char *const keys[][2] = {
			{"container_id", "id"},
			{"container_name", "name"},
			{"pod", "pod_name"},
			{"namespace", "pod_namespace"},
		};

		for (size_t i = 0; i < WEIR_ARRAY_SIZE(keys); i++) {
			fprintf(f, "%s%s=\"", first ? "{" : ",", keys[i][0]);
			put_label_value(f, get_str(ep, keys[i][1]));
			fputc('"', f);
			first = false;
		}
	}
	if (k1) {
		fprintf(f, "%s%s=\"", first ? "{" : ",", k1);
		put_label_value(f, v1);
		fputc('"', f);
		first = false;
	}
	if (k2) {
		fprintf(f, "%s%s=\"", first ? "{" : ",", k2);
		put_label_value(f, v2);
		fputc('"', f);
		first = false;
	}
	fprintf(f, "%s %s\n", first ? "" : "}", value);
}

static void sample_u64(struct render *r, const struct family *fam, struct json_object *ep,
		       const char *k1, const char *v1, const char *k2, const char *v2, uint64_t v)
{
	char buf[32];

	fmt_u64(buf, sizeof(buf), v);
	sample(r, fam, NULL, ep, k1, v1, k2, v2, buf);
}

/* ---- per-endpoint families ------------------------------------------------------------ */

static const char *const dirs[] = {"egress", "ingress"};

/* arg[0]: "packets" or "bytes"; one series per direction and protocol. */
static void emit_proto(struct render *r, const struct family *fam, struct json_object *ep)
{
	static const char *const protos[] = {"tcp", "udp", "icmp", "other"};
	uint64_t v;

	for (size_t d = 0; d < WEIR_ARRAY_SIZE(dirs); d++)
		for (size_t p = 0; p < WEIR_ARRAY_SIZE(protos); p++)
			if (get_u64(get_obj(get_obj(ep, dirs[d]), protos[p]), fam->arg[0], &v))
				sample_u64(r, fam, ep, "direction", dirs[d], "protocol", protos[p],
					   v);
}

/* arg[0]: object under the direction ("policy_dropped"), arg[1]: its field, or NULL when
 * arg[0] is itself the number. */
static void emit_dir(struct render *r, const struct family *fam, struct json_object *ep)
{
	uint64_t v;

	for (size_t d = 0; d < WEIR_ARRAY_SIZE(dirs); d++) {
		struct json_object *dj = get_obj(ep, dirs[d]);
		bool ok = fam->arg[1] ? get_u64(get_obj(dj, fam->arg[0]), fam->arg[1], &v)
				      : get_u64(dj, fam->arg[0], &v);

		if (ok)
			sample_u64(r, fam, ep, "direction", dirs[d], NULL, NULL, v);
	}
}

/* arg[0]: a field of "tcp" (no extra label); or with arg[1..4]: two fields, label name,
 * two label values. */
static void emit_tcp(struct render *r, const struct family *fam, struct json_object *ep)
{
	struct json_object *tcp = get_obj(ep, "tcp");
	uint64_t v;

	if (!fam->arg[1]) {
		if (get_u64(tcp, fam->arg[0], &v))
			sample_u64(r, fam, ep, NULL, NULL, NULL, NULL, v);
		return;
	}
	for (int i = 0; i < 2; i++)
		if (get_u64(tcp, fam->arg[i], &v))
			sample_u64(r, fam, ep, fam->arg[2], fam->arg[3 + i], NULL, NULL, v);
}

static void emit_kernel_drops(struct render *r, const struct family *fam, struct json_object *ep)
{
	struct json_object *kd = get_obj(ep, "kernel_drops");
	uint64_t v;

	if (!kd)
		return;
	json_object_object_foreach (kd, reason, val) {
		if (num_u64(val, &v))
			sample_u64(r, fam, ep, "reason", reason, NULL, NULL, v);
	}
}

static struct json_object *hist_of(struct json_object *ep, const char *key)
{
	return get_obj(get_obj(ep, "tcp"), key);
}

static void add_bound(struct render *r, uint64_t le)
{
	size_t i = 0;

	while (i < r->n_bounds && r->bounds[i] < le)
		i++;
	if (i < r->n_bounds && r->bounds[i] == le)
		return;
	if (r->n_bounds == MAX_BOUNDS) {
		pr_warn("metrics: more than %d histogram buckets, bucket le=%" PRIu64
			"us folded into +Inf",
			MAX_BOUNDS, le);
		return;
	}
	memmove(&r->bounds[i + 1], &r->bounds[i], (r->n_bounds - i) * sizeof(r->bounds[0]));
	r->bounds[i] = le;
	r->n_bounds++;
}

static void collect_bounds(struct render *r, const struct family *fam, struct json_object *stats)
{
	r->n_bounds = 0;
	for (size_t i = 0; i < json_object_array_length(stats); i++) {
		struct json_object *h = hist_of(json_object_array_get_idx(stats, i), fam->arg[0]);
		struct json_object *b;
		uint64_t le;

		if (!h || !json_object_object_get_ex(h, "buckets", &b) ||
		    !json_object_is_type(b, json_type_array))
			continue;
		for (size_t j = 0; j < json_object_array_length(b); j++)
			if (get_u64(json_object_array_get_idx(b, j), "le_us", &le))
				add_bound(r, le);
	}
}

/* arg[0]: the histogram's key under "tcp". */
static void emit_hist(struct render *r, const struct family *fam, struct json_object *ep)
{
	struct json_object *h = hist_of(ep, fam->arg[0]), *b = NULL;
	uint64_t cum = 0, total = 0, count, sum_us = 0, le, c;
	char val[32], lebuf[32];
	size_t nb = 0;

	if (!h)
		return;
	if (json_object_object_get_ex(h, "buckets", &b) && json_object_is_type(b, json_type_array))
		nb = json_object_array_length(b);
	for (size_t j = 0; j < nb; j++)
		if (get_u64(json_object_array_get_idx(b, j), "count", &c))
			total += c;
	for (size_t k = 0; k < r->n_bounds; k++) {
		cum = 0;
		for (size_t j = 0; j < nb; j++) {
			struct json_object *bj = json_object_array_get_idx(b, j);

			if (get_u64(bj, "le_us", &le) && le <= r->bounds[k] &&
			    get_u64(bj, "count", &c))
				cum += c;
		}
		fmt_seconds(lebuf, sizeof(lebuf), r->bounds[k]);
		fmt_u64(val, sizeof(val), cum);
		sample(r, fam, "_bucket", ep, "le", lebuf, NULL, NULL, val);
	}
	/* per-CPU reads are not atomic: keep +Inf and _count consistent with the buckets */
	if (!get_u64(h, "count", &count) || count < total)
		count = total;
	fmt_u64(val, sizeof(val), count);
	sample(r, fam, "_bucket", ep, "le", "+Inf", NULL, NULL, val);
	get_u64(h, "sum_us", &sum_us);
	fmt_seconds(val, sizeof(val), sum_us);
	sample(r, fam, "_sum", ep, NULL, NULL, NULL, NULL, val);
	fmt_u64(val, sizeof(val), count);
	sample(r, fam, "_count", ep, NULL, NULL, NULL, NULL, val);
}

static const struct family ep_families[] = {
	{"weir_packets_total",
	 "counter",
	 "Packets a container sent (egress) or received (ingress) that passed, by protocol.",
	 emit_proto,
	 {"packets"}},
	{"weir_bytes_total",
	 "counter",
	 "Bytes (IP length: headers and payload) a container sent or received that passed, by "
	 "protocol.",
	 emit_proto,
	 {"bytes"}},
	{"weir_policy_dropped_packets_total",
	 "counter",
	 "Packets the container's policy dropped (enforce mode).",
	 emit_dir,
	 {"policy_dropped", "packets"}},
	{"weir_policy_dropped_bytes_total",
	 "counter",
	 "Bytes of the packets the container's policy dropped (enforce mode).",
	 emit_dir,
	 {"policy_dropped", "bytes"}},
	{"weir_audit_denied_packets_total",
	 "counter",
	 "Packets the policy would have dropped, let through in audit mode.",
	 emit_dir,
	 {"audit_denied", "packets"}},
	{"weir_audit_denied_bytes_total",
	 "counter",
	 "Bytes of the packets the policy would have dropped, let through in audit mode.",
	 emit_dir,
	 {"audit_denied", "bytes"}},
	{"weir_denied_connects_total",
	 "counter",
	 "connect() and sendmsg() calls the policy refused with EPERM.",
	 emit_dir,
	 {"denied_connects"}},
	{"weir_audit_denied_connects_total",
	 "counter",
	 "connect() and sendmsg() calls the policy would have refused (audit mode).",
	 emit_dir,
	 {"audit_denied_connects"}},
	{"weir_tcp_connections_opened_total",
	 "counter",
	 "TCP connections established: active (the container connected) or passive (it accepted).",
	 emit_tcp,
	 {"active_opens", "passive_opens", "type", "active", "passive"}},
	{"weir_tcp_connect_failures_total",
	 "counter",
	 "TCP connects of the container that failed (refused, reset or timed out).",
	 emit_tcp,
	 {"failed_connects"}},
	{"weir_tcp_resets_total",
	 "counter",
	 "TCP resets the container sent or received.",
	 emit_tcp,
	 {"resets_sent", "resets_received", "direction", "sent", "received"}},
	{"weir_tcp_retransmits_total",
	 "counter",
	 "TCP segments the container retransmitted.",
	 emit_tcp,
	 {"retransmits"}},
	{"weir_kernel_drops_total",
	 "counter",
	 "Packets of the container the kernel dropped, by the kernel's drop reason.",
	 emit_kernel_drops,
	 {}},
	{"weir_tcp_connect_latency_seconds",
	 "histogram",
	 "Time from SYN to established of the container's outgoing TCP connections.",
	 emit_hist,
	 {"connect_latency_us"}},
	{"weir_tcp_srtt_seconds",
	 "histogram",
	 "Smoothed round-trip time of the container's TCP connections, as the kernel samples it.",
	 emit_hist,
	 {"srtt_us"}},
};

/* ---- node families -------------------------------------------------------------------- */

static const struct family fam_endpoints = {
	"weir_endpoints",
	"gauge",
	"Endpoints weir knows, by state (stopped ones stay for stopped_retention_seconds).",
	NULL,
	{}};
static const struct family fam_loaded = {"weir_datapath_loaded",
					 "gauge",
					 "1 when weir's datapath is loaded on this node.",
					 NULL,
					 {}};
static const struct family fam_lost = {
	"weir_events_lost_total",
	"counter",
	"Flow and drop events the kernel could not deliver (ring buffer full).",
	NULL,
	{}};

static const struct family fam_sent = {
	"weir_events_sent_total",
	"counter",
	"Flow and drop events the kernel delivered to the ring buffer.",
	NULL,
	{}};

static void render_node(struct render *r, struct json_object *node)
{
	struct json_object *v;
	uint64_t n;

	r->header_done = false;
	if (get_u64(node, "endpoints_running", &n))
		sample_u64(r, &fam_endpoints, NULL, "state", "running", NULL, NULL, n);
	if (get_u64(node, "endpoints_stopped", &n))
		sample_u64(r, &fam_endpoints, NULL, "state", "stopped", NULL, NULL, n);
	r->header_done = false;
	if (node && json_object_object_get_ex(node, "datapath_loaded", &v) &&
	    json_object_is_type(v, json_type_boolean))
		sample(r, &fam_loaded, NULL, NULL, NULL, NULL, NULL, NULL,
		       json_object_get_boolean(v) ? "1" : "0");
	r->header_done = false;
	if (get_u64(node, "events_sent", &n))
		sample_u64(r, &fam_sent, NULL, NULL, NULL, NULL, NULL, n);
	r->header_done = false;
	if (get_u64(node, "events_lost", &n))
		sample_u64(r, &fam_lost, NULL, NULL, NULL, NULL, NULL, n);
}

/* What the endpoint list alone tells about the node. */
static struct json_object *node_from_stats(struct json_object *stats)
{
	struct json_object *node = json_object_new_object();
	uint64_t running = 0, stopped = 0;

	for (size_t i = 0; i < json_object_array_length(stats); i++) {
		const char *st = get_str(json_object_array_get_idx(stats, i), "state");

		if (!strcmp(st, "running"))
			running++;
		else if (!strcmp(st, "stopped"))
			stopped++;
	}
	json_object_object_add(node, "endpoints_running", json_object_new_uint64(running));
	json_object_object_add(node, "endpoints_stopped", json_object_new_uint64(stopped));
	return node;
}

/* ---- entry points --------------------------------------------------------------------- */

int weir_metrics_render_json(struct json_object *stats, struct json_object *node, char **text,
			     size_t *len)
{
	struct render r = {};
	char *buf = NULL;
	size_t size = 0;
	int err;

	r.f = open_memstream(&buf, &size);
	if (!r.f)
		return -errno;
	for (size_t i = 0; i < WEIR_ARRAY_SIZE(ep_families); i++) {
		const struct family *fam = &ep_families[i];

		r.header_done = false;
		if (!strcmp(fam->type, "histogram"))
			collect_bounds(&r, fam, stats);
		for (size_t j = 0; j < json_object_array_length(stats); j++) {
			struct json_object *ep = json_object_array_get_idx(stats, j), *v;

			/* a record whose counters could not be read has zeros, not counters */
			if (json_object_object_get_ex(ep, "counters_available", &v) &&
			    !json_object_get_boolean(v))
				continue;
			fam->emit(&r, fam, ep);
		}
	}
	render_node(&r, node);
	err = ferror(r.f) ? -ENOMEM : 0;
	if (fclose(r.f) && !err)
		err = -ENOMEM;
	if (err) {
		free(buf);
		return err;
	}
	*text = buf;
	*len = size;
	return 0;
}

int weir_metrics_render(struct weir_ctx *ctx, char **text, size_t *len)
{
	_cleanup_json_ struct json_object *stats = NULL;
	_cleanup_json_ struct json_object *node = NULL;
	int r;

	r = weir_stats_collect(ctx, &stats);
	if (r)
		return r;
	/* node-level values; the endpoint list alone still gives the counts if that fails */
	if (weir_node_stats(ctx, &node) || !node)
		node = node_from_stats(stats);
	return weir_metrics_render_json(stats, node, text, len);
}
