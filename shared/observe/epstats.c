// SPDX-License-Identifier: Apache-2.0
/*
 * Per-endpoint statistics: packet counters, TCP health and kernel drop reasons, read from the
 * per-CPU maps and summed (shared/stats.c renders them).
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

static int weir_counters_read(struct weir_ctx *ctx, uint32_t ep, struct weir_counters *out)
{
	return percpu_sum(ctx->dp.map[WEIR_MAP_COUNTERS], ep, out, sizeof(*out));
}

int weir_ep_stats_zero(struct weir_ctx *ctx, uint32_t ep)
{
	int r = percpu_zero(ctx->dp.map[WEIR_MAP_COUNTERS], ep, sizeof(struct weir_counters));

	if (!r)
		r = percpu_zero(ctx->dp.map[WEIR_MAP_TCP], ep, sizeof(struct weir_tcp_stats));
	if (!r)
		r = percpu_zero(ctx->dp.map[WEIR_MAP_GUARD_COUNTERS], ep,
				sizeof(struct weir_guard_counters));
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
	struct weir_endpoint epv;
	int r;

	memset(out, 0, sizeof(*out));
	r = weir_counters_read(ctx, ep, &out->c);
	if (r)
		return r;
	/* the configured rates are the endpoint's, not counted: a gauge beside the counters */
	if (!bpf_map_lookup_elem(ctx->dp.map[WEIR_MAP_ENDPOINTS], &ep, &epv))
		for (int d = 0; d < WEIR_DIRS; d++)
			out->c.dir[d].rate_limit = epv.shape[d].rate * 8;
	if (!percpu_sum(ctx->dp.map[WEIR_MAP_TCP], ep, &out->tcp, sizeof(out->tcp)))
		out->has_tcp = true;
	if (!percpu_sum(ctx->dp.map[WEIR_MAP_GUARD_COUNTERS], ep, &out->guards,
			sizeof(out->guards)))
		out->has_guards = true;
	/*
	 * The datapath never deletes an entry: what left the map was evicted. The map is read
	 * after the counters, so a flow added in between makes evicted low, never high.
	 */
	if (!weir_ct_usage(ctx->dp.map[WEIR_MAP_CT], ctx->paths.maps, ep, &out->ct)) {
		out->ct.inserted =
			out->c.dir[WEIR_EGRESS].ct_inserted + out->c.dir[WEIR_INGRESS].ct_inserted;
		out->ct.evicted =
			out->ct.inserted > out->ct.entries ? out->ct.inserted - out->ct.entries : 0;
		out->has_ct = true;
	}
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

int weir_drop_reason_value(const char *name, uint32_t *value)
{
	char *end;
	unsigned long v;

	pthread_once(&reasons_once, load_reasons);
	for (size_t i = 0; i < nreasons; i++) {
		if (!strcmp(reasons[i].name, name)) {
			*value = reasons[i].value;
			return 0;
		}
	}
	/* what weir_drop_reason_name() prints for a value the kernel's BTF does not name */
	if (strncmp(name, "REASON_", 7) || name[7] < '0' || name[7] > '9')
		return -ENOENT;
	v = strtoul(name + 7, &end, 10);
	if (*end || v > UINT32_MAX)
		return -ENOENT;
	*value = (uint32_t)v;
	return 0;
}
