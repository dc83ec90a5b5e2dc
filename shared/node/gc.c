// SPDX-License-Identifier: Apache-2.0
/*
 * Garbage collection: what a crashed hook, a lost poststop or a vanished container left. Every
 * decision is taken again under the registry lock by shared/registry.c, so gc may run at any
 * time, even while containers start; the records are first read without the lock only to find
 * the few that need it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "ctx.h"
#include "log.h"
#include "registry.h"
#include "util.h"

struct gc_pass {
	struct weir_gc_report *rep;
	uint64_t expire_before_ms;
	char **ids;
	size_t n, cap;
};

static bool needs_settling(struct weir_ctx *ctx, const struct weir_record *rec,
			   uint64_t expire_before_ms)
{
	uint64_t cgid;

	switch (rec->state) {
	case WEIR_STATE_RUNNING:
		/* its cgroup gone (detach), or its conntrack map's slot or pin (repair) */
		return weir_cgroup_id(rec->cgroup, &cgid) || cgid != rec->cgroup_id ||
		       !weir_endpoint_ct_intact(ctx, rec);
	case WEIR_STATE_STOPPED:
		return rec->stopped_ms < expire_before_ms;
	default:
		return true; /* attaching or detaching: maybe under way, maybe interrupted */
	}
}

static int gc_look(struct weir_ctx *ctx, const char *id, const struct weir_record *rec,
		   const struct weir_error *why, void *arg)
{
	struct gc_pass *g = arg;
	char **ids;

	if (!rec) {
		g->rep->unknown++;
		pr_warn("gc: %s: left alone, with whatever it may own", why->msg);
		return 0;
	}
	if (!needs_settling(ctx, rec, g->expire_before_ms))
		return 0;
	if (g->n == g->cap) {
		ids = realloc(g->ids, (g->cap ? g->cap * 2 : 16) * sizeof(*ids));
		if (!ids)
			return -ENOMEM;
		g->ids = ids;
		g->cap = g->cap ? g->cap * 2 : 16;
	}
	g->ids[g->n] = strdup(id);
	return g->ids[g->n++] ? 0 : -ENOMEM;
}

static void gc_settle(struct weir_ctx *ctx, struct gc_pass *g)
{
	for (size_t i = 0; i < g->n; i++) {
		struct weir_error e = {};
		int lock = weir_registry_lock(ctx, &e), r;

		if (lock < 0) {
			pr_warn("gc: %s", e.msg);
			return;
		}
		r = weir_registry_settle(ctx, g->ids[i], g->expire_before_ms, &e);
		close(lock);
		if (r < 0)
			pr_warn("gc: %s: %s", g->ids[i], e.msg);
		else if (r == WEIR_SETTLED_REPAIRED)
			g->rep->repaired++;
		else if (r == WEIR_SETTLED_DETACHED)
			g->rep->detached++;
		else if (r == WEIR_SETTLED_EXPIRED)
			g->rep->expired++;
	}
}

int weir_gc(struct weir_ctx *ctx, struct weir_gc_report *rep, struct weir_error *err)
{
	uint64_t retention = ctx->cfg.stopped_retention_s * 1000, now = weir_now_ms();
	struct gc_pass g = {.rep = rep, .expire_before_ms = now > retention ? now - retention : 0};
	int lock, r;

	memset(rep, 0, sizeof(*rep));
	r = weir_records_foreach(ctx, gc_look, &g);
	if (r)
		weir_error_set(err, r, "cannot read %s: %s", ctx->containers_dir, strerror(-r));
	else
		gc_settle(ctx, &g);
	for (size_t i = 0; i < g.n; i++)
		free(g.ids[i]);
	free(g.ids);
	if (r)
		return r;
	lock = weir_registry_lock(ctx, err);
	if (lock < 0)
		return lock;
	rep->orphans = weir_registry_orphans(ctx);
	rep->orphans += weir_registry_ifaces_gc(ctx);
	rep->orphans += weir_guard_links_gc(ctx); /* node guard programs no endpoint needs */
	close(lock);
	return weir_registry_sweep(ctx, &rep->stale_entries, err);
}
