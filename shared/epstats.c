// SPDX-License-Identifier: Apache-2.0
/*
 * Per-endpoint statistics: packet counters, TCP health and kernel drop reasons, read from the
 * per-CPU maps and summed, and their JSON form (records keep it as the final counters).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "ctx.h"
#include "util.h"

static const char *const pclass_names[WEIR_PCLASSES] = {"tcp", "udp", "icmp", "other"};
static const char *const dir_names[WEIR_DIRS] = {"egress", "ingress"};

static int percpu_sum(int map, uint32_t key, void *out, size_t size)
{
	int ncpu = libbpf_num_possible_cpus();
	_cleanup_free_ uint64_t *per = NULL;
	size_t words = size / sizeof(uint64_t);

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	per = calloc((size_t)ncpu, size);
	if (!per)
		return -ENOMEM;
	if (bpf_map_lookup_elem(map, &key, per))
		return -errno;
	memset(out, 0, size);
	for (int c = 0; c < ncpu; c++)
		for (size_t w = 0; w < words; w++)
			((uint64_t *)out)[w] += per[(size_t)c * words + w];
	return 0;
}

static int percpu_zero(int map, uint32_t key, size_t size)
{
	int ncpu = libbpf_num_possible_cpus();
	_cleanup_free_ void *zero = NULL;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	zero = calloc((size_t)ncpu, size);
	if (!zero)
		return -ENOMEM;
	return bpf_map_update_elem(map, &key, zero, BPF_ANY) ? -errno : 0;
}

int weir_counters_read(struct weir_ctx *ctx, uint32_t ep, struct weir_counters *out)
{
	return percpu_sum(ctx->dp.map[WEIR_MAP_COUNTERS], ep, out, sizeof(*out));
}

int weir_ep_stats_zero(struct weir_ctx *ctx, uint32_t ep)
{
	int r = percpu_zero(ctx->dp.map[WEIR_MAP_COUNTERS], ep, sizeof(struct weir_counters));

	if (!r)
		r = percpu_zero(ctx->dp.map[WEIR_MAP_TCP], ep, sizeof(struct weir_tcp_stats));
	return r;
}

int weir_drops_read(struct weir_ctx *ctx, struct weir_drops *out)
{
	int map = ctx->dp.map[WEIR_MAP_DROPS], ncpu = libbpf_num_possible_cpus();
	struct weir_drop_key key, next, *prev = NULL;
	_cleanup_free_ uint64_t *per = NULL;
	size_t cap = 0;

	memset(out, 0, sizeof(*out));
	if (ncpu <= 0 || !(per = calloc((size_t)ncpu, sizeof(uint64_t))))
		return -ENOMEM;
	while (!bpf_map_get_next_key(map, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(map, &key, per))
			continue;
		if (out->n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			void *e = realloc(out->e, ncap * sizeof(*out->e));

			if (!e) {
				weir_drops_free(out);
				return -ENOMEM;
			}
			out->e = e;
			cap = ncap;
		}
		out->e[out->n].key = key;
		out->e[out->n].count = 0;
		for (int c = 0; c < ncpu; c++)
			out->e[out->n].count += per[c];
		out->n++;
	}
	return 0;
}

void weir_drops_free(struct weir_drops *d)
{
	free(d->e);
	memset(d, 0, sizeof(*d));
}

void weir_ep_drops_clear(struct weir_ctx *ctx, uint32_t ep)
{
	struct weir_drops all;

	/* read first: deleting while walking restarts the walk in a hash map */
	if (weir_drops_read(ctx, &all))
		return;
	for (size_t i = 0; i < all.n; i++)
		if (all.e[i].key.ep_id == ep)
			bpf_map_delete_elem(ctx->dp.map[WEIR_MAP_DROPS], &all.e[i].key);
	weir_drops_free(&all);
}

int weir_ep_stats_read(struct weir_ctx *ctx, uint32_t ep, const struct weir_drops *drops,
		       struct weir_ep_stats *out)
{
	struct weir_drops own = {};
	int r;

	memset(out, 0, sizeof(*out));
	r = weir_counters_read(ctx, ep, &out->c);
	if (r)
		return r;
	if (!percpu_sum(ctx->dp.map[WEIR_MAP_TCP], ep, &out->tcp, sizeof(out->tcp)))
		out->has_tcp = true;
	if (!drops) {
		if (weir_drops_read(ctx, &own))
			return 0;
		drops = &own;
	}
	for (size_t i = 0; i < drops->n && out->ndrops < WEIR_ARRAY_SIZE(out->drops); i++) {
		if (drops->e[i].key.ep_id != ep)
			continue;
		out->drops[out->ndrops].reason = drops->e[i].key.reason;
		out->drops[out->ndrops].count = drops->e[i].count;
		out->ndrops++;
	}
	weir_drops_free(&own);
	return 0;
}

/* ---- drop reason names, from the running kernel's BTF -------------------------------- */

static pthread_once_t reasons_once = PTHREAD_ONCE_INIT;
static struct {
	uint32_t value;
	char name[64];
} * reasons;
static size_t nreasons;

static void load_reasons(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const char *prefix = "SKB_DROP_REASON_";

	if (!btf)
		return;
	for (uint32_t id = 1; id < btf__type_cnt(btf); id++) {
		const struct btf_type *t = btf__type_by_id(btf, id);
		const struct btf_enum *e;

		if (!btf_is_enum(t) ||
		    strcmp(btf__name_by_offset(btf, t->name_off), "skb_drop_reason"))
			continue;
		reasons = calloc(btf_vlen(t), sizeof(*reasons));
		if (!reasons)
			break;
		e = btf_enum(t);
		for (uint16_t i = 0; i < btf_vlen(t); i++) {
			const char *n = btf__name_by_offset(btf, e[i].name_off);

			if (!strncmp(n, prefix, strlen(prefix)))
				n += strlen(prefix);
			reasons[nreasons].value = (uint32_t)e[i].val;
			snprintf(reasons[nreasons].name, sizeof(reasons[nreasons].name), "%s", n);
			nreasons++;
		}
		break;
	}
	btf__free(btf);
}

const char *weir_drop_reason_name(uint32_t reason, char *buf, size_t size)
{
	pthread_once(&reasons_once, load_reasons);
	for (size_t i = 0; i < nreasons; i++)
		if (reasons[i].value == reason)
			return reasons[i].name;
	snprintf(buf, size, "REASON_%u", reason);
	return buf;
}

/* ---- JSON ---------------------------------------------------------------------------- */

static struct json_object *pb_json(const struct weir_pb *pb)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "packets", json_object_new_uint64(pb->packets));
	json_object_object_add(o, "bytes", json_object_new_uint64(pb->bytes));
	return o;
}

struct json_object *weir_counters_to_json(const struct weir_counters *c)
{
	struct json_object *o = json_object_new_object();

	for (int d = 0; d < WEIR_DIRS; d++) {
		const struct weir_dir_counters *dc = &c->dir[d];
		struct json_object *dj = json_object_new_object();

		for (int p = 0; p < WEIR_PCLASSES; p++)
			json_object_object_add(dj, pclass_names[p], pb_json(&dc->proto[p]));
		json_object_object_add(dj, "policy_dropped", pb_json(&dc->policy_dropped));
		json_object_object_add(dj, "audit_denied", pb_json(&dc->audit_denied));
		json_object_object_add(dj, "denied_connects",
				       json_object_new_uint64(dc->denied_connects));
		json_object_object_add(dj, "audit_denied_connects",
				       json_object_new_uint64(dc->audit_denied_connects));
		json_object_object_add(dj, "tcp_resets", json_object_new_uint64(dc->tcp_resets));
		json_object_object_add(o, dir_names[d], dj);
	}
	return o;
}

/* Upper bound of bucket i, inclusive, in the histogram's unit. */
static uint64_t bucket_le(int i)
{
	return i == 0 ? 0 : (1ULL << i) - 1;
}

uint64_t weir_hist_quantile(const struct weir_hist *h, double q)
{
	uint64_t total = 0, acc = 0;

	for (int i = 0; i < WEIR_HIST_BUCKETS; i++)
		total += h->buckets[i];
	if (!total)
		return 0;
	for (int i = 0; i < WEIR_HIST_BUCKETS; i++) {
		acc += h->buckets[i];
		if ((double)acc >= q * (double)total)
			return bucket_le(i);
	}
	return bucket_le(WEIR_HIST_BUCKETS - 1);
}

static struct json_object *hist_json(const struct weir_hist *h)
{
	struct json_object *o = json_object_new_object(), *b = json_object_new_array();
	uint64_t count = 0;

	for (int i = 0; i < WEIR_HIST_BUCKETS; i++) {
		struct json_object *e = json_object_new_object();

		json_object_object_add(e, "le_us", json_object_new_uint64(bucket_le(i)));
		json_object_object_add(e, "count", json_object_new_uint64(h->buckets[i]));
		json_object_array_add(b, e);
		count += h->buckets[i];
	}
	json_object_object_add(o, "buckets", b);
	json_object_object_add(o, "sum_us", json_object_new_uint64(h->sum));
	json_object_object_add(o, "count", json_object_new_uint64(count));
	json_object_object_add(o, "p50_us", json_object_new_uint64(weir_hist_quantile(h, 0.5)));
	json_object_object_add(o, "p99_us", json_object_new_uint64(weir_hist_quantile(h, 0.99)));
	return o;
}

struct json_object *weir_ep_stats_to_json(const struct weir_ep_stats *s)
{
	struct json_object *o = weir_counters_to_json(&s->c), *drops = json_object_new_object();

	if (s->has_tcp) {
		struct json_object *t = json_object_new_object();

		json_object_object_add(t, "active_opens",
				       json_object_new_uint64(s->tcp.active_opens));
		json_object_object_add(t, "passive_opens",
				       json_object_new_uint64(s->tcp.passive_opens));
		json_object_object_add(t, "failed_connects",
				       json_object_new_uint64(s->tcp.failed_connects));
		json_object_object_add(t, "resets_sent",
				       json_object_new_uint64(s->c.dir[WEIR_EGRESS].tcp_resets));
		json_object_object_add(t, "resets_received",
				       json_object_new_uint64(s->c.dir[WEIR_INGRESS].tcp_resets));
		json_object_object_add(t, "retransmits",
				       json_object_new_uint64(s->tcp.retransmits));
		json_object_object_add(t, "connect_latency_us", hist_json(&s->tcp.connect_latency));
		json_object_object_add(t, "srtt_us", hist_json(&s->tcp.srtt));
		json_object_object_add(o, "tcp", t);
	}
	for (size_t i = 0; i < s->ndrops; i++) {
		char buf[32];

		json_object_object_add(drops,
				       weir_drop_reason_name(s->drops[i].reason, buf, sizeof(buf)),
				       json_object_new_uint64(s->drops[i].count));
	}
	json_object_object_add(o, "kernel_drops", drops);
	return o;
}

static void pb_from_json(struct json_object *o, struct weir_pb *pb)
{
	pb->packets = weir_json_u64(o, "packets");
	pb->bytes = weir_json_u64(o, "bytes");
}

int weir_counters_from_json(struct json_object *o, struct weir_counters *out)
{
	memset(out, 0, sizeof(*out));
	if (!o)
		return -ENOENT;
	for (int d = 0; d < WEIR_DIRS; d++) {
		struct weir_dir_counters *dc = &out->dir[d];
		struct json_object *dj, *v;

		if (!json_object_object_get_ex(o, dir_names[d], &dj))
			continue;
		for (int p = 0; p < WEIR_PCLASSES; p++)
			if (json_object_object_get_ex(dj, pclass_names[p], &v))
				pb_from_json(v, &dc->proto[p]);
		if (json_object_object_get_ex(dj, "policy_dropped", &v))
			pb_from_json(v, &dc->policy_dropped);
		if (json_object_object_get_ex(dj, "audit_denied", &v))
			pb_from_json(v, &dc->audit_denied);
		dc->denied_connects = weir_json_u64(dj, "denied_connects");
		dc->audit_denied_connects = weir_json_u64(dj, "audit_denied_connects");
		dc->tcp_resets = weir_json_u64(dj, "tcp_resets");
	}
	return 0;
}
