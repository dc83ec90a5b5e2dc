// SPDX-License-Identifier: Apache-2.0
/* Garbage collection: what a crashed hook, a lost poststop or a vanished container left. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "cgroup.h"
#include "ctx.h"
#include "log.h"
#include "util.h"

static bool cgroup_alive(struct json_object *rec)
{
	const char *path = weir_json_str(rec, "cgroup");
	uint64_t id;

	if (!path || weir_cgroup_id(path, &id))
		return false;
	return id == weir_json_u64(rec, "cgroup_id");
}

/* Orphans are only taken once they are older than any attach could take. */
#define WEIR_GC_ORPHAN_AGE_MS 30000

static bool old_enough(const char *path, uint64_t now_ms)
{
	struct stat stt;

	if (stat(path, &stt))
		return false;
	return now_ms - ((uint64_t)stt.st_mtim.tv_sec * 1000 +
			 (uint64_t)stt.st_mtim.tv_nsec / 1000000) >=
	       WEIR_GC_ORPHAN_AGE_MS;
}

struct gc_state {
	struct weir_gc_report *rep;
	uint64_t now;
	bool in_use[WEIR_MAX_ENDPOINTS];
};

static int gc_record(struct weir_ctx *ctx, const char *id, struct json_object *rec, void *arg)
{
	struct gc_state *st = arg;
	const char *state = weir_json_str(rec, "state") ?: "";
	struct weir_error e = {};
	char path[PATH_MAX];

	if (!strcmp(state, "running")) {
		uint64_t ep = weir_json_u64(rec, "endpoint");

		if (cgroup_alive(rec)) {
			if (ep < WEIR_MAX_ENDPOINTS)
				st->in_use[ep] = true;
			return 0;
		}
		if (weir_endpoint_detach(ctx, id, &e))
			pr_warn("gc: %s", e.msg);
		else
			st->rep->detached++;
		return 0;
	}
	if (st->now - weir_json_u64(rec, "stopped_ms") >= ctx->cfg.stopped_retention_s * 1000 &&
	    !weir_record_path(ctx, id, path, sizeof(path)) && !unlink(path))
		st->rep->expired++;
	return 0;
}

/* Endpoint ids and pin folders that no running record owns. */
static void gc_orphans(struct weir_ctx *ctx, struct gc_state *st)
{
	const char *dirs[] = {ctx->ids_dir, ctx->paths.endpoints};

	for (size_t d = 0; d < WEIR_ARRAY_SIZE(dirs); d++) {
		DIR *dir = opendir(dirs[d]);
		struct dirent *de;

		if (!dir)
			continue;
		while ((de = readdir(dir))) {
			char *end, path[PATH_MAX];
			unsigned long ep = strtoul(de->d_name, &end, 10);

			if (*end || !ep || ep >= WEIR_MAX_ENDPOINTS || st->in_use[ep])
				continue;
			snprintf(path, sizeof(path), "%s/%s", dirs[d], de->d_name);
			/* a hook may be between taking the id and writing the record right now */
			if (!old_enough(path, st->now))
				continue;
			if (d == 0) {
				unlink(path);
				st->rep->orphans++;
				continue;
			}
			/* a link folder: detach and unpin what is inside */
			weir_unpin_dir(path, true);
			if (!rmdir(path))
				st->rep->orphans++;
		}
		closedir(dir);
	}
}

/*
 * Map entries of endpoint ids nobody holds: what a teardown could not find again (a record
 * lost, a policy no longer parsed). Ids with a file in <state>/ids are kept, including those
 * of an attach under way, which takes its id before it writes anything.
 */
static void gc_maps(struct weir_ctx *ctx, struct gc_state *st)
{
	struct weir_error e = {};
	struct dirent *de;
	DIR *ids;
	bool *held;

	if (weir_ctx_datapath(ctx, false, &e))
		return;
	held = calloc(WEIR_MAX_ENDPOINTS, sizeof(*held));
	if (!held)
		return;
	ids = opendir(ctx->ids_dir);
	while (ids && (de = readdir(ids))) {
		char *end;
		unsigned long ep = strtoul(de->d_name, &end, 10);

		if (!*end && ep < WEIR_MAX_ENDPOINTS)
			held[ep] = true;
	}
	if (ids)
		closedir(ids);

	struct weir_policy_key pk, pnext, *pprev = NULL, *pdel = NULL;
	size_t npdel = 0, pcap = 0;
	int map = ctx->dp.map[WEIR_MAP_POLICY];

	while (!bpf_map_get_next_key(map, pprev, &pnext)) {
		pk = pnext;
		pprev = &pk;
		if (pk.ep_id < WEIR_MAX_ENDPOINTS && held[pk.ep_id])
			continue;
		if (npdel == pcap) {
			struct weir_policy_key *n =
				realloc(pdel, (pcap ? pcap * 2 : 64) * sizeof(*n));

			if (!n)
				break;
			pdel = n;
			pcap = pcap ? pcap * 2 : 64;
		}
		pdel[npdel++] = pk;
	}
	for (size_t i = 0; i < npdel; i++)
		if (!bpf_map_delete_elem(map, &pdel[i]))
			st->rep->stale_entries++;
	free(pdel);

	__u64 ck, cnext, *cprev = NULL;
	__u32 ep;

	map = ctx->dp.map[WEIR_MAP_CGROUPS];
	while (!bpf_map_get_next_key(map, cprev, &cnext)) {
		ck = cnext;
		cprev = &ck;
		if (!bpf_map_lookup_elem(map, &ck, &ep) &&
		    (ep >= WEIR_MAX_ENDPOINTS || !held[ep]) && !bpf_map_delete_elem(map, &ck)) {
			st->rep->stale_entries++;
			cprev = NULL; /* the walk restarts after a delete */
		}
	}
	free(held);
}

int weir_gc(struct weir_ctx *ctx, struct weir_gc_report *rep, struct weir_error *err)
{
	struct gc_state *st = calloc(1, sizeof(*st));
	int r;

	if (!st)
		return weir_error_set(err, -ENOMEM, "out of memory");
	memset(rep, 0, sizeof(*rep));
	st->rep = rep;
	st->now = weir_now_ms();
	r = weir_records_foreach(ctx, gc_record, st);
	if (r) {
		free(st);
		return weir_error_set(err, r, "cannot read %s: %s", ctx->containers_dir,
				      strerror(-r));
	}
	gc_orphans(ctx, st);
	gc_maps(ctx, st);
	free(st);
	return 0;
}
