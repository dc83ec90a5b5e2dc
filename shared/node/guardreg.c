// SPDX-License-Identifier: Apache-2.0
/*
 * The guard parts of an endpoint, for the registry (shared/registry.c): its entries in
 * weir_guards, weir_guard_state, weir_sysctl, weir_protected and weir_scan_probes, and the
 * node-wide links of the guard programs it relies on. Everything an endpoint writes here is
 * keyed by its endpoint id, so teardown and gc find it without a record field.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "annot.h"
#include "ctx.h"
#include "log.h"
#include "util.h"

/* Is program i loaded here? A context opened without loading holds no program fds: pins. */
static bool loaded(struct weir_ctx *ctx, int i)
{
	char path[PATH_MAX];

	if (ctx->dp.prog[i] >= 0)
		return true;
	snprintf(path, sizeof(path), "%s/%s", ctx->paths.progs, weir_progs[i].name);
	return access(path, F_OK) == 0;
}

/* Call groups that a BPF-LSM hook refuses on every path, given the hooks this node loaded. */
static uint32_t lsm_calls(struct weir_ctx *ctx)
{
	uint32_t calls = 0;

	if (loaded(ctx, WEIR_PROG_LSM_CAPABLE)) {
		calls |= (1U << WEIR_CALL_MOUNT) | (1U << WEIR_CALL_PIVOT_ROOT) |
			 (1U << WEIR_CALL_MODULES) | (1U << WEIR_CALL_KEXEC) |
			 (1U << WEIR_CALL_OPEN_BY_HANDLE) | (1U << WEIR_CALL_REBOOT) |
			 (1U << WEIR_CALL_SWAP) | (1U << WEIR_CALL_IOPL);
		/* a user namespace needs no capability: without its hook namespaces are not */
		if (loaded(ctx, WEIR_PROG_LSM_USERNS))
			calls |= 1U << WEIR_CALL_NAMESPACES;
	}
	if (loaded(ctx, WEIR_PROG_LSM_PTRACE))
		calls |= 1U << WEIR_CALL_PTRACE;
	if (loaded(ctx, WEIR_PROG_LSM_PERF))
		calls |= 1U << WEIR_CALL_PERF;
	if (loaded(ctx, WEIR_PROG_LSM_BPF))
		calls |= 1U << WEIR_CALL_BPF;
	return calls;
}

const char *weir_lsm_unavailable(struct weir_ctx *ctx, char *buf, size_t size)
{
	_cleanup_free_ char *lsms = NULL;
	int r;

	if (ctx->dp_open && (ctx->dp.meta_flags & (WEIR_META_LSM_CGROUP | WEIR_META_LSM_GLOBAL)))
		return NULL;
	if (ctx->cfg.lsm == WEIR_LSM_OFF) {
		snprintf(buf, size, "the node config says lsm \"off\"");
		return buf;
	}
	r = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_LSM, NULL);
	if (r != 1) {
		snprintf(buf, size, "the kernel refuses BPF-LSM programs%s%s%s", r < 0 ? " (" : "",
			 r < 0 ? strerror(-r) : "", r < 0 ? ")" : "");
		return buf;
	}
	if (!weir_read_file("/sys/kernel/security/lsm", 4096, &lsms, NULL)) {
		char *nl = strchr(lsms, '\n');

		if (nl)
			*nl = '\0';
		snprintf(buf, size, "\"bpf\" is not among the kernel's active LSMs (%s)", lsms);
		return buf;
	}
	snprintf(buf, size, "BPF-LSM programs load but never run: \"bpf\" is not in lsm=");
	return buf;
}

void weir_guard_caps_of(struct weir_ctx *ctx, struct weir_guard_caps *caps, char *why, size_t size)
{
	const struct weir_datapath *dp = &ctx->dp;

	memset(caps, 0, sizeof(*caps));
	caps->cgroup = loaded(ctx, WEIR_PROG_SOCK_CREATE) && loaded(ctx, WEIR_PROG_BIND4) &&
		       loaded(ctx, WEIR_PROG_BIND6) && loaded(ctx, WEIR_PROG_SYSCTL);
	caps->tracing = loaded(ctx, WEIR_PROG_SYS_ENTER);
	caps->exec = loaded(ctx, WEIR_PROG_EXEC);
	caps->entry = loaded(ctx, WEIR_PROG_ENTRY_ATTACH) && loaded(ctx, WEIR_PROG_ENTRY_FORK);
	caps->lsm = (dp->meta_flags & (WEIR_META_LSM_CGROUP | WEIR_META_LSM_GLOBAL)) != 0;
	caps->lsm_per_cgroup = (dp->meta_flags & WEIR_META_LSM_CGROUP) != 0;
	if (caps->lsm) {
		caps->lsm_calls = lsm_calls(ctx);
		caps->lsm_socket = loaded(ctx, WEIR_PROG_LSM_SOCKET);
		caps->lsm_file_open = loaded(ctx, WEIR_PROG_LSM_FILE_OPEN);
	}
	caps->why_no_lsm = weir_lsm_unavailable(ctx, why, size);
	caps->fallback_kill = ctx->cfg.lsm_fallback_kill;
	caps->escape_fentry = (dp->meta_flags & WEIR_META_ESCAPE_FENTRY) != 0;
	caps->escape_entries = weir_escape_fentry_pinned(&ctx->paths);
	if (!caps->escape_fentry && caps->tracing && ctx->cfg.escape_raw_tp)
		snprintf(caps->why_no_fentry, sizeof(caps->why_no_fentry),
			 "the node config says escape_hook \"raw_tp\"");
	else if (!caps->escape_fentry && caps->tracing &&
		 !weir_escape_fentry_probe(caps->why_no_fentry, sizeof(caps->why_no_fentry)))
		snprintf(caps->why_no_fentry, sizeof(caps->why_no_fentry),
			 "the per-syscall programs (fentry) did not load with the rest (the "
			 "datapath's load log says why)");
}

int weir_guards_prepare(struct weir_ctx *ctx, const struct weir_spec *spec,
			struct weir_guard_plan *plan, struct weir_error *err)
{
	struct weir_guard_caps caps;
	char why[256];

	memset(plan, 0, sizeof(*plan));
	if (!weir_guards_any(&spec->guards))
		return 0;
	weir_guard_caps_of(ctx, &caps, why, sizeof(why));
	return weir_guards_plan(&spec->guards, &caps, plan, err);
}

static int node_links(struct weir_ctx *ctx, uint32_t links, struct weir_error *err)
{
	int r = 0;

	if (links & WEIR_GL_EXEC)
		r = weir_node_link_ensure(&ctx->paths, &ctx->dp, WEIR_PROG_EXEC, err);
	/* the entry marks first: no runtime's exec may find the guards without them */
	if (!r && (links & WEIR_GL_ENTRY))
		r = weir_node_link_ensure(&ctx->paths, &ctx->dp, WEIR_PROG_ENTRY_ATTACH, err);
	if (!r && (links & WEIR_GL_ENTRY))
		r = weir_node_link_ensure(&ctx->paths, &ctx->dp, WEIR_PROG_ENTRY_FORK, err);
	if (!r && (links & WEIR_GL_SYS_ENTER))
		r = weir_node_link_ensure(&ctx->paths, &ctx->dp, WEIR_PROG_SYS_ENTER, err);
	for (int i = WEIR_PROG_FIRST_LSM; !r && (links & WEIR_GL_LSM) && i < WEIR_PROG_COUNT; i++)
		if (ctx->dp.prog[i] >= 0)
			r = weir_node_link_ensure(&ctx->paths, &ctx->dp, (enum weir_prog_id)i, err);
	return r;
}

/* The kernel's dev_t of a file: st_dev is the user-space encoding. */
static uint32_t kernel_dev(dev_t dev)
{
	return (major(dev) << 20) | minor(dev);
}

int weir_guards_apply(struct weir_ctx *ctx, uint32_t ep, uint32_t gen,
		      const struct weir_guard_plan *plan, const struct weir_guards *g, bool started,
		      struct weir_error *err)
{
	struct weir_guard_state st = {.armed_gen = started ? gen : 0};
	struct weir_guard_cfg cfg = plan->cfg;
	uint8_t one = 1;
	int r;

	cfg.gen = gen;
	if (bpf_map_update_elem(ctx->dp.map[WEIR_MAP_GUARDS], &ep, &cfg, BPF_ANY) ||
	    bpf_map_update_elem(ctx->dp.map[WEIR_MAP_GUARD_STATE], &ep, &st, BPF_ANY))
		return weir_error_set(err, -errno, "cannot write the guards of endpoint %u: %s", ep,
				      strerror(errno));
	for (size_t i = 0; g->mode[WEIR_GUARD_SYSCTL] && i < g->nsysctl; i++) {
		struct weir_sysctl_key key;

		weir_sysctl_key_of(&g->sysctl[i], ep, &key);
		if (bpf_map_update_elem(ctx->dp.map[WEIR_MAP_SYSCTL], &key, &one, BPF_ANY))
			return weir_error_set(err, -errno,
					      "cannot write sysctl allow-list entry %s: %s",
					      g->sysctl[i].name, strerror(errno));
	}
	for (size_t i = 0; g->mode[WEIR_GUARD_PATHS] && i < g->npaths; i++) {
		struct weir_inode_key key = {.ep_id = ep};
		struct stat sb;

		if (stat(g->paths[i], &sb)) {
			/* nothing there to protect on this host (documented) */
			pr_warn("paths: %s: %s: not protected", g->paths[i], strerror(errno));
			continue;
		}
		key.dev = kernel_dev(sb.st_dev);
		key.ino = sb.st_ino;
		if (bpf_map_update_elem(ctx->dp.map[WEIR_MAP_PROTECTED], &key, &one, BPF_ANY))
			return weir_error_set(err, -errno, "cannot protect %s: %s", g->paths[i],
					      strerror(errno));
	}
	r = node_links(ctx, plan->node_links, err);
	return r;
}

/* Keys of a map whose endpoint id (at ep_off) `drop` selects; deleted after the walk. */
static unsigned int delete_keys(int map, size_t key_size, size_t ep_off,
				bool (*drop)(uint32_t ep, const void *arg), const void *arg)
{
	_cleanup_free_ uint8_t *keys = NULL;
	uint8_t key[256], next[256];
	size_t n = 0, cap = 0;
	unsigned int deleted = 0;
	void *prev = NULL;

	if (map < 0 || key_size > sizeof(key))
		return 0;
	while (!bpf_map_get_next_key(map, prev, next)) {
		uint32_t ep;

		memcpy(key, next, key_size);
		prev = key;
		memcpy(&ep, key + ep_off, sizeof(ep));
		if (!drop(ep, arg))
			continue;
		if (n == cap) {
			uint8_t *k = realloc(keys, (cap ? cap * 2 : 64) * key_size);

			if (!k)
				break;
			keys = k;
			cap = cap ? cap * 2 : 64;
		}
		memcpy(keys + n++ * key_size, key, key_size);
	}
	for (size_t i = 0; i < n; i++)
		deleted += !bpf_map_delete_elem(map, keys + i * key_size);
	return deleted;
}

static bool is_ep(uint32_t ep, const void *arg)
{
	return ep == *(const uint32_t *)arg;
}

static bool not_held(uint32_t ep, const void *arg)
{
	return ep >= WEIR_MAX_ENDPOINTS || !((const bool *)arg)[ep];
}

static unsigned int delete_all(struct weir_ctx *ctx, bool (*drop)(uint32_t, const void *),
			       const void *arg)
{
	return delete_keys(ctx->dp.map[WEIR_MAP_SYSCTL], sizeof(struct weir_sysctl_key),
			   offsetof(struct weir_sysctl_key, ep_id), drop, arg) +
	       delete_keys(ctx->dp.map[WEIR_MAP_PROTECTED], sizeof(struct weir_inode_key),
			   offsetof(struct weir_inode_key, ep_id), drop, arg) +
	       delete_keys(ctx->dp.map[WEIR_MAP_SCAN_PROBES], sizeof(struct weir_scan_key),
			   offsetof(struct weir_scan_key, ep_id), drop, arg);
}

void weir_guards_teardown(struct weir_ctx *ctx, uint32_t ep)
{
	struct weir_guard_state st = {};
	struct weir_guard_cfg cfg = {};

	bpf_map_update_elem(ctx->dp.map[WEIR_MAP_GUARDS], &ep, &cfg, BPF_ANY);
	bpf_map_update_elem(ctx->dp.map[WEIR_MAP_GUARD_STATE], &ep, &st, BPF_ANY);
	delete_all(ctx, is_ep, &ep);
}

unsigned int weir_guards_sweep(struct weir_ctx *ctx, const bool *held)
{
	return delete_all(ctx, not_held, held);
}

static int links_needed(struct weir_ctx *ctx, const char *id, const struct weir_record *rec,
			const struct weir_error *why, void *arg)
{
	uint32_t *need = arg;

	/* an unreadable record may need anything; a stopped one needs nothing */
	if (!rec)
		*need |= WEIR_GL_ALL;
	else if (rec->state != WEIR_STATE_STOPPED)
		*need |= rec->guard_links;
	return 0;
}

unsigned int weir_guard_links_gc(struct weir_ctx *ctx)
{
	uint32_t need = 0;
	unsigned int removed = 0;

	if (weir_records_foreach(ctx, links_needed, &need))
		return 0;
	for (int i = WEIR_PROG_FIRST_GUARD; i < WEIR_PROG_COUNT; i++) {
		uint32_t bit = i == WEIR_PROG_SYS_ENTER ? WEIR_GL_SYS_ENTER
			       : i == WEIR_PROG_EXEC	? WEIR_GL_EXEC
			       : i == WEIR_PROG_ENTRY_ATTACH || i == WEIR_PROG_ENTRY_FORK
				       ? WEIR_GL_ENTRY
			       : i >= WEIR_PROG_FIRST_LSM ? WEIR_GL_LSM
							  : 0;

		if (!bit || (need & bit) ||
		    !weir_node_link_pinned(&ctx->paths, (enum weir_prog_id)i))
			continue;
		weir_node_link_remove(&ctx->paths, (enum weir_prog_id)i);
		pr_info("gc: %s detached: no endpoint needs it", weir_progs[i].name);
		removed++;
	}
	return removed;
}
