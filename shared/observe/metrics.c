// SPDX-License-Identifier: Apache-2.0
/*
 * Prometheus text exposition format 0.0.4 from the endpoint views of shared/stats.h. The
 * per-endpoint families come from the counter tables there, so a counter added to a table is
 * exported without a change here.
 *
 * Output is family-major: every sample of one metric family follows its # HELP and # TYPE
 * lines, as the format requires. A family without any sample is left out entirely.
 *
 * Every per-endpoint series carries container_id, container_name, pod and namespace. The
 * kernel's log2 histograms come as non-cumulative buckets with an inclusive upper bound in
 * microseconds; they are rendered cumulative, in seconds.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "guard.h"
#include "metrics.h"
#include "stats.h"
#include "util.h"

struct family;

struct render {
	FILE *f;
	bool header_done;
};

typedef void (*emit_fn)(struct render *r, const struct family *fam, const struct weir_ep_view *ep);

struct family {
	const char *name;
	const char *type; /* counter, gauge, histogram */
	const char *help;
	emit_fn emit;
	const struct weir_counter_desc *desc; /* the table rows the family renders */
	size_t ndesc;
	size_t hist_off; /* histograms: offset of the struct weir_hist in weir_ep_stats */
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

/*
 * One sample: NAME[SUFFIX]{endpoint labels[,k1="v1"[,k2="v2"]]} VALUE. ep may be NULL (node
 * metrics), k1/k2 may be NULL. The family's HELP and TYPE come first, once.
 */
static void sample(struct render *r, const struct family *fam, const char *suffix,
		   const struct weir_ep_view *ep, const char *k1, const char *v1, const char *k2,
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
		const char *labels[][2] = {
			{"container_id", ep->id},
			{"container_name", ep->name},
			{"pod", ep->pod_name},
			{"namespace", ep->pod_namespace},
		};

		for (size_t i = 0; i < WEIR_ARRAY_SIZE(labels); i++) {
			fprintf(f, "%s%s=\"", first ? "{" : ",", labels[i][0]);
			put_label_value(f, labels[i][1] ?: "");
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

static void sample_u64(struct render *r, const struct family *fam, const struct weir_ep_view *ep,
		       const char *k1, const char *v1, const char *k2, const char *v2, uint64_t v)
{
	char buf[32];

	fmt_u64(buf, sizeof(buf), v);
	sample(r, fam, NULL, ep, k1, v1, k2, v2, buf);
}

/* ---- per-endpoint families ------------------------------------------------------------ */

/* One series per direction and protocol; desc[0].sub says packets or bytes. */
static void emit_proto(struct render *r, const struct family *fam, const struct weir_ep_view *ep)
{
	bool bytes = !strcmp(fam->desc[0].sub, "bytes");

	for (int d = 0; d < WEIR_DIRS; d++)
		for (int p = 0; p < WEIR_PCLASSES; p++) {
			const struct weir_pb *pb = &ep->s.c.dir[d].proto[p];

			sample_u64(r, fam, ep, "direction", weir_dir_names[d], "protocol",
				   weir_pclass_names[p], bytes ? pb->bytes : pb->packets);
		}
}

/* A row of weir_dir_counters_desc: one series per direction. */
static void emit_dir(struct render *r, const struct family *fam, const struct weir_ep_view *ep)
{
	for (int d = 0; d < WEIR_DIRS; d++)
		sample_u64(r, fam, ep, "direction", weir_dir_names[d], NULL, NULL,
			   weir_counter_at(&ep->s.c.dir[d], fam->desc));
}

/* Rows of weir_tcp_desc: one series each, told apart by the row's label. */
static void emit_tcp(struct render *r, const struct family *fam, const struct weir_ep_view *ep)
{
	if (!ep->s.has_tcp)
		return;
	for (size_t i = 0; i < fam->ndesc; i++)
		sample_u64(r, fam, ep, fam->desc[i].label, fam->desc[i].label_value, NULL, NULL,
			   weir_counter_at(&ep->s, &fam->desc[i]));
}

/* Rows of weir_ct_desc: one family each. */
static void emit_ct(struct render *r, const struct family *fam, const struct weir_ep_view *ep)
{
	if (ep->s.has_ct)
		sample_u64(r, fam, ep, NULL, NULL, NULL, NULL, weir_counter_at(&ep->s, fam->desc));
}

static void emit_kernel_drops(struct render *r, const struct family *fam,
			      const struct weir_ep_view *ep)
{
	for (size_t i = 0; i < ep->s.ndrops; i++) {
		char buf[32];

		sample_u64(r, fam, ep, "reason",
			   weir_drop_reason_name(ep->s.drops[i].reason, buf, sizeof(buf)), NULL,
			   NULL, ep->s.drops[i].count);
	}
}

static const struct weir_hist *hist_of(const struct family *fam, const struct weir_ep_view *ep)
{
	return ep->s.has_tcp ? (const struct weir_hist *)((const char *)&ep->s + fam->hist_off)
			     : NULL;
}

/* The kernel's log2 buckets, cumulative, in seconds: every endpoint on the same ladder, so
 * that sum by (le) over containers works. */
static void emit_hist(struct render *r, const struct family *fam, const struct weir_ep_view *ep)
{
	const struct weir_hist *h = hist_of(fam, ep);
	char val[32], lebuf[32], count[32];
	uint64_t cum = 0;

	if (!h)
		return;
	for (int b = 0; b < WEIR_HIST_BUCKETS; b++) {
		cum += h->buckets[b];
		fmt_seconds(lebuf, sizeof(lebuf), weir_hist_bucket_le(b));
		fmt_u64(val, sizeof(val), cum);
		sample(r, fam, "_bucket", ep, "le", lebuf, NULL, NULL, val);
	}
	fmt_u64(count, sizeof(count), cum);
	sample(r, fam, "_bucket", ep, "le", "+Inf", NULL, NULL, count);
	fmt_seconds(val, sizeof(val), h->sum);
	sample(r, fam, "_sum", ep, NULL, NULL, NULL, NULL, val);
	sample(r, fam, "_count", ep, NULL, NULL, NULL, NULL, count);
}

/* Security guard events by guard and action (weir events lists them). */
static void emit_guards(struct render *r, const struct family *fam, const struct weir_ep_view *ep)
{
	if (!ep->s.has_guards)
		return;
	for (int i = 0; i < WEIR_GUARDS; i++)
		for (int a = 0; a < WEIR_GACTIONS; a++)
			sample_u64(r, fam, ep, "guard", weir_guard_names[i], "action",
				   weir_gaction_names[a], ep->s.guards.n[i][a]);
}

static void emit_quarantine(struct render *r, const struct family *fam,
			    const struct weir_ep_view *ep)
{
	if (ep->s.has_guards)
		sample_u64(r, fam, ep, NULL, NULL, NULL, NULL, ep->s.guards.quarantine_drops);
}

/* The families of the counter tables, built once: one per distinct metric name. */
static struct family families[64];
static size_t nfamilies;

static void add_family(const char *type, emit_fn emit, const struct weir_counter_desc *d, size_t n,
		       size_t hist_off, const char *name, const char *help)
{
	if (nfamilies == WEIR_ARRAY_SIZE(families))
		return;
	families[nfamilies++] =
		(struct family){name ?: d->metric, type, help ?: d->help, emit, d, n, hist_off};
}

/* Consecutive rows with one metric name make one family; rows without a name make none. */
static void add_table(emit_fn emit, const struct weir_counter_desc *d, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;

		while (j < n && d[j].metric && d[i].metric && !strcmp(d[j].metric, d[i].metric))
			j++;
		if (d[i].metric)
			add_family("counter", emit, &d[i], j - i, 0, NULL, NULL);
		i = j;
	}
}

static const struct weir_counter_desc proto_packets = {.key = "proto", .sub = "packets"};
static const struct weir_counter_desc proto_bytes = {.key = "proto", .sub = "bytes"};
static const struct weir_counter_desc rate_limit = {
	.key = "rate_limit_bps", .off = offsetof(struct weir_dir_counters, rate_limit)};

static void build_families(void)
{
	if (nfamilies)
		return;
	add_family("counter", emit_proto, &proto_packets, 1, 0, "weir_packets_total",
		   "Packets a container sent (egress) or received (ingress) that passed, by "
		   "protocol.");
	add_family("counter", emit_proto, &proto_bytes, 1, 0, "weir_bytes_total",
		   "Bytes (IP length: headers and payload) a container sent or received that "
		   "passed, by protocol.");
	for (size_t i = 0; i < weir_dir_counters_ndesc; i++)
		if (weir_dir_counters_desc[i].metric)
			add_family("counter", emit_dir, &weir_dir_counters_desc[i], 1, 0, NULL,
				   NULL);
	add_family("gauge", emit_dir, &rate_limit, 1, 0, "weir_shaping_rate_limit_bits_per_second",
		   "The container's rate limit (kubernetes.io/egress-bandwidth, "
		   "kubernetes.io/ingress-bandwidth), 0 when it has none.");
	add_table(emit_tcp, weir_tcp_desc, weir_tcp_ndesc);
	for (size_t i = 0; i < weir_ct_ndesc; i++)
		add_family(weir_ct_desc[i].label_value ? "gauge" : "counter", emit_ct,
			   &weir_ct_desc[i], 1, 0, NULL, NULL);
	add_family("counter", emit_kernel_drops, NULL, 0, 0, "weir_kernel_drops_total",
		   "Packets of the container the kernel dropped, by the kernel's drop reason.");
	add_family("counter", emit_guards, NULL, 0, 0, "weir_guard_events_total",
		   "Actions the container's security guards judged (security.weir.io), by guard "
		   "and what happened: audit (reported, allowed), denied (EPERM), killed "
		   "(SIGKILL), quarantined.");
	add_family("counter", emit_quarantine, NULL, 0, 0, "weir_guard_quarantine_drops_total",
		   "Packets and connects refused while the port-scan guard quarantined the "
		   "container.");
	add_family("histogram", emit_hist, NULL, 0,
		   offsetof(struct weir_ep_stats, tcp.connect_latency),
		   "weir_tcp_connect_latency_seconds",
		   "Time from SYN to established of the container's outgoing TCP connections.");
	add_family("histogram", emit_hist, NULL, 0, offsetof(struct weir_ep_stats, tcp.srtt),
		   "weir_tcp_srtt_seconds",
		   "Smoothed round-trip time of the container's TCP connections, as the kernel "
		   "samples it.");
}

/* ---- node families -------------------------------------------------------------------- */

static const struct family fam_endpoints = {
	.name = "weir_endpoints",
	.type = "gauge",
	.help = "Endpoints weir knows, by state (stopped ones stay for stopped_retention_seconds).",
};
static const struct family fam_loaded = {
	.name = "weir_datapath_loaded",
	.type = "gauge",
	.help = "1 when weir's datapath is loaded on this node.",
};
static const struct family fam_lost = {
	.name = "weir_events_lost_total",
	.type = "counter",
	.help = "Flow and drop events the kernel could not deliver (ring buffer full).",
};

static const struct family fam_sent = {
	.name = "weir_events_sent_total",
	.type = "counter",
	.help = "Flow and drop events the kernel delivered to the ring buffer.",
};

static const struct family fam_guard_lost = {
	.name = "weir_guard_events_lost_total",
	.type = "counter",
	.help = "Security guard events the kernel could not deliver (their ring buffer full); the "
		"guard counters count them all the same.",
};

static const struct family fam_guard_sent = {
	.name = "weir_guard_events_sent_total",
	.type = "counter",
	.help = "Security guard events the kernel delivered to their ring buffer.",
};

static void render_node(struct render *r, const struct weir_node_view *node)
{
	r->header_done = false;
	sample_u64(r, &fam_endpoints, NULL, "state", "running", NULL, NULL,
		   node->endpoints_running);
	sample_u64(r, &fam_endpoints, NULL, "state", "stopped", NULL, NULL,
		   node->endpoints_stopped);
	r->header_done = false;
	sample(r, &fam_loaded, NULL, NULL, NULL, NULL, NULL, NULL,
	       node->datapath_loaded ? "1" : "0");
	if (node->guard_events_known) {
		r->header_done = false;
		sample_u64(r, &fam_guard_sent, NULL, NULL, NULL, NULL, NULL,
			   node->guard_events_sent);
		r->header_done = false;
		sample_u64(r, &fam_guard_lost, NULL, NULL, NULL, NULL, NULL,
			   node->guard_events_lost);
	}
	if (!node->events_known)
		return;
	r->header_done = false;
	sample_u64(r, &fam_sent, NULL, NULL, NULL, NULL, NULL, node->events_sent);
	r->header_done = false;
	sample_u64(r, &fam_lost, NULL, NULL, NULL, NULL, NULL, node->events_lost);
}

/* ---- entry points --------------------------------------------------------------------- */

static int weir_metrics_render_views(const struct weir_ep_views *views,
				     const struct weir_node_view *node, char **text, size_t *len)
{
	struct render r = {};
	char *buf = NULL;
	size_t size = 0;
	int err;

	build_families();
	r.f = open_memstream(&buf, &size);
	if (!r.f)
		return -errno;
	for (size_t i = 0; i < nfamilies; i++) {
		r.header_done = false;
		for (size_t j = 0; j < views->n; j++)
			/* a record whose counters could not be read has zeros, not counters */
			if (views->v[j].counters_available)
				families[i].emit(&r, &families[i], &views->v[j]);
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
	struct weir_ep_views views;
	struct weir_node_view node;
	int r;

	r = weir_views_collect(ctx, true, &views);
	if (r)
		return r;
	r = weir_node_view_read(ctx, &node);
	if (!r)
		r = weir_metrics_render_views(&views, &node, text, len);
	weir_views_free(&views);
	return r;
}
