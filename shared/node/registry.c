// SPDX-License-Identifier: Apache-2.0
/*
 * The endpoint registry: the one owner of everything weir keeps for a container. An endpoint
 * is made of
 *   - its id, held by <state_dir>/ids/<ep> (the file holds the container id);
 *   - its record, <state_dir>/containers/<container id>.json (shared/record.c);
 *   - the policy keys it wrote, <state_dir>/keys/<ep> (raw struct weir_policy_key);
 *   - its map entries: weir_cgroups[cgroup id], weir_endpoints[ep], weir_netns[netns inode],
 *     its policy keys, and its rows of the counter maps;
 *   - its conntrack map: weir_ct[ep] and its pin <bpffs>/weir/maps/weir_ct_<ep> (ct.c);
 *   - one pinned link per program in <bpffs>/weir/endpoints/<ep>/;
 *   - its place in weir_ifaces[ifindex] of its host-side veth, when it has one; the interface's
 *     attachment (a tcx link pinned at <bpffs>/weir/ifaces/<ifindex>, or weir's clsact
 *     filter) is shared by the endpoints of that list and goes with the last of them.
 * Attach, detach and gc change these only through this file, and only while holding the
 * registry lock (<state_dir>/endpoints.lock).
 *
 * Invariants, true whenever nobody holds the lock:
 *  1. Before the kernel is touched for an endpoint, its record is written in state
 *     "attaching" and names everything the endpoint may come to own (id, cgroup id, netns,
 *     policy keys in keys/<ep>). A process that dies at any instant therefore leaves a record
 *     that says what to undo.
 *  2. "running" means every part is in place: weir_cgroups[cgroup_id] = ep, weir_endpoints[ep]
 *     active with the record's gen, the policy keys written, every link pinned, weir_ct[ep]
 *     the map pinned as weir_ct_<ep>. A conntrack map whose slot or pin something else
 *     removed is put back, with its flows where the map survives, by the next attach of the
 *     container (weir-nri's Synchronize) or by gc.
 *  3. A record in "attaching" or "detaching" seen under the lock was left by a process that
 *     died (flock dies with it). The next operation that meets it (an attach or detach of the
 *     same container, or gc) undoes it completely, and says so.
 *  4. Teardown is idempotent and removes only what is the endpoint's: a map entry keyed by
 *     something other than the endpoint id is deleted only while it still points at it.
 *  5. An id held by no readable record that claims it is an orphan (its attach died before
 *     writing the record, so the kernel was never touched); gc frees it. A record that cannot
 *     be read is unknown: gc and every other operation leave it, and all it may own, alone.
 * Readers (list, stats, metrics, events) take no lock: a record is replaced by rename, so a
 * reader sees the old or the new one, whole.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "annot.h"
#include "cgroup.h"
#include "ctx.h"
#include "iface.h"
#include "log.h"
#include "netns.h"
#include "registry.h"
#include "util.h"

int weir_registry_lock(struct weir_ctx *ctx, struct weir_error *err)
{
	return weir_ctx_lock(ctx, "endpoints.lock", true, err);
}

/* ---- endpoint ids ------------------------------------------------------------------- */

static int ep_file(const char *dir, uint32_t ep, char *out, size_t size)
{
	return snprintf(out, size, "%s/%u", dir, ep) >= (int)size ? -ENAMETOOLONG : 0;
}

/*
 * An id is taken by creating ids/<n> with O_EXCL; the search starts at a random id, so it is
 * O(1) expected at any number of endpoints.
 */
static int id_alloc(struct weir_ctx *ctx, const char *owner, uint32_t *out)
{
	uint32_t start;
	int r;

	r = weir_mkdir_p(ctx->ids_dir, 0700);
	if (r)
		return r;
	if (getrandom(&start, sizeof(start), 0) != sizeof(start))
		start = (uint32_t)getpid();
	for (uint32_t i = 0; i < WEIR_MAX_ENDPOINTS - 1; i++) {
		uint32_t ep = 1 + (start + i) % (WEIR_MAX_ENDPOINTS - 1); /* 0 is never used */
		char path[PATH_MAX];
		ssize_t n;
		int fd;

		r = ep_file(ctx->ids_dir, ep, path, sizeof(path));
		if (r)
			return r;
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			if (errno == EEXIST)
				continue;
			return -errno;
		}
		n = write(fd, owner, strlen(owner));
		r = n < 0 ? -errno : (size_t)n != strlen(owner) ? -EIO : 0;
		close(fd);
		if (r) {
			unlink(path);
			return r;
		}
		*out = ep;
		return 0;
	}
	return -ENOSPC;
}

static int weir_registry_id_owner(struct weir_ctx *ctx, uint32_t ep, char *out, size_t size)
{
	_cleanup_free_ char *text = NULL;
	char path[PATH_MAX];
	size_t len;
	int r;

	r = ep_file(ctx->ids_dir, ep, path, sizeof(path));
	if (!r)
		r = weir_read_file(path, 256, &text, &len);
	if (r)
		return r;
	if (len >= size || strlen(text) != len)
		return -EBADMSG;
	memcpy(out, text, len + 1);
	return 0;
}

/* Free an id, but only while it is still the given container's. */
static void id_free(struct weir_ctx *ctx, uint32_t ep, const char *owner)
{
	char path[PATH_MAX], held[256];

	if (ep_file(ctx->ids_dir, ep, path, sizeof(path)) ||
	    weir_registry_id_owner(ctx, ep, held, sizeof(held)) || strcmp(held, owner))
		return;
	unlink(path);
}

/* ---- policy keys -------------------------------------------------------------------- */

static int keys_write(struct weir_ctx *ctx, uint32_t ep, const struct weir_compiled *c,
		      struct weir_error *err)
{
	_cleanup_free_ struct weir_policy_key *keys = calloc(c->n ? c->n : 1, sizeof(*keys));
	char path[PATH_MAX];
	int r;

	if (!keys)
		return weir_error_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < c->n; i++) {
		keys[i] = c->entries[i].key;
		keys[i].ep_id = ep;
	}
	r = weir_mkdir_p(ctx->keys_dir, 0700);
	if (!r)
		r = ep_file(ctx->keys_dir, ep, path, sizeof(path));
	if (!r)
		r = weir_write_file_atomic(path, (const char *)keys, c->n * sizeof(*keys), 0600);
	if (r)
		return weir_error_set(err, r,
				      "cannot write the policy keys of endpoint %u in %s: %s", ep,
				      ctx->keys_dir, strerror(-r));
	return 0;
}

/* The keys an endpoint wrote, checked to be its own: a damaged file never names another's. */
static int keys_read(struct weir_ctx *ctx, uint32_t ep, uint32_t expect,
		     struct weir_policy_key **out, size_t *n)
{
	char path[PATH_MAX], *text = NULL;
	size_t len;
	int r;

	*out = NULL;
	*n = 0;
	r = ep_file(ctx->keys_dir, ep, path, sizeof(path));
	if (!r)
		r = weir_read_file(path, (size_t)WEIR_MAX_POLICY_KEYS * sizeof(**out), &text, &len);
	if (r)
		return r;
	if (len % sizeof(**out) || len / sizeof(**out) != expect) {
		free(text);
		return -EBADMSG;
	}
	*out = (struct weir_policy_key *)text;
	*n = len / sizeof(**out);
	for (size_t i = 0; i < *n; i++) {
		if ((*out)[i].ep_id != ep) {
			free(text);
			*out = NULL;
			return -EBADMSG;
		}
	}
	return 0;
}

static void keys_remove(struct weir_ctx *ctx, uint32_t ep)
{
	char path[PATH_MAX];

	if (!ep_file(ctx->keys_dir, ep, path, sizeof(path)))
		unlink(path);
}

/* ---- the parts of an endpoint ------------------------------------------------------- */

static void links_remove(struct weir_ctx *ctx, uint32_t ep)
{
	char dir[PATH_MAX];

	if (ep_file(ctx->paths.endpoints, ep, dir, sizeof(dir)))
		return;
	weir_unpin_dir(dir, true);
	rmdir(dir);
}

/* Is program i linked to this endpoint's cgroup? */
static bool links_prog(struct weir_ctx *ctx, int i, bool monitor,
		       const struct weir_guard_plan *guards)
{
	if (ctx->dp.prog[i] < 0 || weir_prog_cgroup_attach(&ctx->dp, i) < 0)
		return false;
	switch (weir_progs[i].scope) {
	case WEIR_SCOPE_MONITOR:
		return monitor;
	case WEIR_SCOPE_GUARD:
		return (guards->cgroup_progs & weir_progs[i].guards) != 0;
	case WEIR_SCOPE_LSM:
		return guards->lsm_per_cgroup;
	default:
		return true;
	}
}

static int links_create(struct weir_ctx *ctx, uint32_t ep, int cg_fd, bool monitor,
			const struct weir_guard_plan *guards, struct weir_error *err)
{
	char dir[PATH_MAX], path[PATH_MAX];
	int r;

	r = ep_file(ctx->paths.endpoints, ep, dir, sizeof(dir));
	if (r)
		return weir_error_set(err, r, "endpoint path too long");
	if (mkdir(dir, 0700) && errno != EEXIST)
		return weir_error_set(err, -errno, "cannot create %s: %s", dir, strerror(errno));
	for (int i = 0; i < WEIR_PROG_COUNT; i++) {
		int link;

		if (!links_prog(ctx, i, monitor, guards))
			continue;
		link = bpf_link_create(ctx->dp.prog[i], cg_fd,
				       (enum bpf_attach_type)weir_prog_cgroup_attach(&ctx->dp, i),
				       NULL);
		if (link < 0)
			return weir_error_set(err, -errno, "cannot attach %s (%s): %s",
					      weir_progs[i].name, weir_progs[i].hook,
					      strerror(errno));
		snprintf(path, sizeof(path), "%s/%s", dir, weir_progs[i].name);
		if (bpf_obj_pin(link, path)) {
			r = -errno;
			bpf_link_detach(link);
			close(link);
			return weir_error_set(err, r, "cannot pin %s: %s", path, strerror(-r));
		}
		close(link);
	}
	return 0;
}

/* ---- the container's interface ---------------------------------------------------- */

/*
 * weir_ifaces[ifindex] lists the endpoints behind one host-side veth (several when containers
 * share a network namespace, a pod). The interface's attachment lives while the list is not
 * empty: when the last endpoint leaves, the attachment goes first, then the entry (the
 * program drops what an interface without an entry gets: fail closed).
 */
static int iface_read(struct weir_ctx *ctx, uint32_t ifindex, struct weir_iface *v)
{
	memset(v, 0, sizeof(*v));
	if (bpf_map_lookup_elem(ctx->dp.map[WEIR_MAP_IFACES], &ifindex, v))
		return -errno;
	if (v->n > WEIR_IFACE_MAX_EPS)
		v->n = WEIR_IFACE_MAX_EPS;
	return 0;
}

/* Keep the endpoints of v that keep() says stay; 1 when the list changed. */
static bool iface_filter(struct weir_iface *v, bool (*keep)(uint32_t ep, const void *arg),
			 const void *arg)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < v->n; i++)
		if (keep(v->ep[i], arg))
			v->ep[n++] = v->ep[i];
	if (n == v->n)
		return false;
	for (uint32_t i = n; i < v->n; i++)
		v->ep[i] = 0;
	v->n = n;
	return true;
}

/* The list changed: write it back, or, empty, remove the attachment and the entry. */
static void iface_store(struct weir_ctx *ctx, uint32_t ifindex, uint32_t netns,
			const struct weir_iface *v)
{
	if (v->n) {
		bpf_map_update_elem(ctx->dp.map[WEIR_MAP_IFACES], &ifindex, v, BPF_EXIST);
		return;
	}
	bool here = !netns || netns == weir_iface_self_netns();

	/* a tcx link can be detached from anywhere; a clsact filter only from its namespace */
	if (!here)
		pr_info("interface %u is in another network namespace (%u): its tcx link goes, a "
			"clsact filter stays until the interface does",
			ifindex, netns);
	weir_iface_detach(&ctx->paths, ifindex, here ? v->clsact_prog : 0);
	bpf_map_delete_elem(ctx->dp.map[WEIR_MAP_IFACES], &ifindex);
}

static bool ep_other(uint32_t ep, const void *arg)
{
	return ep != *(const uint32_t *)arg;
}

/*
 * Ingress shaping at the interface (WEIR_EP_SHAPE_IFACE): one limiter per interface, so the
 * interface shapes only when that means what each endpoint asked for: its program is attached
 * and every endpoint behind it has the same ingress rate and burst (a pod's: the Kubernetes
 * annotation is the pod's, and the interface then limits the pod's total, as the CNI
 * bandwidth plugin does). Otherwise none of them is marked and each endpoint's cgroup ingress
 * program shapes its own traffic, as it does for a container without a veth. Called whenever
 * the list changes; the bit is set after the attach and cleared before the detach, so no
 * packet goes unshaped in between. Returns whether the interface shapes.
 */
static bool iface_shape_sync(struct weir_ctx *ctx, uint32_t ifindex, const struct weir_iface *v,
			     bool attached)
{
	int map = ctx->dp.map[WEIR_MAP_ENDPOINTS];
	struct weir_endpoint cfg[WEIR_IFACE_MAX_EPS];
	const struct weir_shape *first = NULL;
	bool ok[WEIR_IFACE_MAX_EPS] = {};
	bool uniform = attached && v->n;

	for (uint32_t i = 0; i < v->n; i++) {
		const struct weir_shape *sh = &cfg[i].shape[WEIR_INGRESS];

		if (bpf_map_lookup_elem(map, &v->ep[i], &cfg[i]) ||
		    !(cfg[i].flags & WEIR_EP_ACTIVE))
			continue; /* going away: the program skips it too */
		ok[i] = true;
		if (!sh->rate)
			uniform = false;
		else if (!first)
			first = sh;
		else if (sh->rate != first->rate || sh->burst_ns != first->burst_ns)
			uniform = false;
	}
	uniform &= first != NULL;
	for (uint32_t i = 0; i < v->n; i++) {
		bool has = cfg[i].flags & WEIR_EP_SHAPE_IFACE;

		if (!ok[i] || has == uniform)
			continue;
		cfg[i].flags ^= WEIR_EP_SHAPE_IFACE;
		if (bpf_map_update_elem(map, &v->ep[i], &cfg[i], BPF_EXIST))
			pr_warn("interface %u: cannot write endpoint %u: %s", ifindex, v->ep[i],
				strerror(errno));
		else
			pr_debug("interface %u: endpoint %u's ingress is shaped %s", ifindex,
				 v->ep[i], uniform ? "at the interface" : "by its cgroup program");
	}
	return uniform;
}

/* Is weir's program on the interface, attached either way? */
static bool iface_live(struct weir_ctx *ctx, uint32_t ifindex, const struct weir_iface *v)
{
	int prog = ctx->dp.prog[WEIR_PROG_IFACE];

	return weir_iface_attached(&ctx->paths, ifindex, WEIR_TC_TCX, prog, 0) ||
	       (v->clsact_prog &&
		weir_iface_attached(&ctx->paths, ifindex, WEIR_TC_CLSACT, prog, v->clsact_prog));
}

static void iface_unregister(struct weir_ctx *ctx, uint32_t ifindex, uint32_t netns, uint32_t ep)
{
	struct weir_iface v;

	if (!ifindex || iface_read(ctx, ifindex, &v))
		return;
	if (!iface_filter(&v, ep_other, &ep))
		return;
	/* the ones left may agree on a rate now; the program is still attached (v.n > 0) */
	if (v.n)
		iface_shape_sync(ctx, ifindex, &v, iface_live(ctx, ifindex, &v));
	iface_store(ctx, ifindex, netns, &v);
}

/*
 * List ep on the interface and attach the program when mode says so. must: the endpoint's
 * ingress policy needs the program, and failing to attach fails the endpoint. Without it (the
 * program is wanted for shaping only) a failed attach leaves the ingress to the cgroup program,
 * with a warning, and *mode says WEIR_TC_NONE: shaping is no security guarantee, and a
 * container refused for it would surprise more than one shaped a little later in its path.
 */
static int iface_register(struct weir_ctx *ctx, const struct weir_iface_ref *ref,
			  enum weir_tc_mode *mode, bool must, uint32_t ep, struct weir_error *err)
{
	struct weir_error e = {};
	struct weir_iface v;
	bool have = false;
	uint32_t id;

	int r = iface_read(ctx, ref->ifindex, &v);

	if (r && r != -ENOENT)
		return weir_error_set(err, r, "cannot read weir_ifaces[%u]: %s", ref->ifindex,
				      strerror(-r));
	for (uint32_t i = 0; i < v.n; i++)
		have |= v.ep[i] == ep;
	if (!have) {
		if (v.n == WEIR_IFACE_MAX_EPS)
			return weir_error_set(err, -ENOSPC,
					      "interface %s serves %u weir endpoints already, the "
					      "most one network namespace may have",
					      ref->name, v.n);
		v.ep[v.n++] = ep;
		if (bpf_map_update_elem(ctx->dp.map[WEIR_MAP_IFACES], &ref->ifindex, &v, BPF_ANY))
			return weir_error_set(err, -errno, "cannot write weir_ifaces[%u]: %s",
					      ref->ifindex, strerror(errno));
	}
	if (*mode == WEIR_TC_NONE) {
		iface_shape_sync(ctx, ref->ifindex, &v, false);
		return 0;
	}
	/* the entry first: the program drops everything on an interface without one */
	id = v.clsact_prog;
	r = weir_iface_attach(&ctx->paths, ctx->dp.prog[WEIR_PROG_IFACE], ref, *mode, &id, &e);
	if (r && must)
		return weir_error_set(err, r, "%s", e.msg);
	if (r) {
		pr_warn("%s: its ingress is shaped by the cgroup program instead", e.msg);
		*mode = WEIR_TC_NONE;
		iface_shape_sync(ctx, ref->ifindex, &v, false);
		return 0;
	}
	if (id != v.clsact_prog) {
		v.clsact_prog = id;
		if (bpf_map_update_elem(ctx->dp.map[WEIR_MAP_IFACES], &ref->ifindex, &v, BPF_EXIST))
			return weir_error_set(err, -errno, "cannot write weir_ifaces[%u]: %s",
					      ref->ifindex, strerror(errno));
	}
	iface_shape_sync(ctx, ref->ifindex, &v, true);
	return 0;
}

/* Delete map[key] while it still names ep (another endpoint may own the key since). */
static void delete_if_ours(int map, const void *key, uint32_t ep)
{
	uint32_t owner;

	if (!bpf_map_lookup_elem(map, key, &owner) && owner == ep)
		bpf_map_delete_elem(map, key);
}

/*
 * Undo everything the record says the endpoint may own, tolerating parts that were never
 * made (invariant 4). The record itself is the caller's to update.
 */
static void teardown(struct weir_ctx *ctx, const struct weir_record *rec,
		     struct weir_ep_stats *final, bool *have_final)
{
	struct weir_endpoint zero = {};
	struct weir_policy_key *keys;
	struct weir_error e = {};
	uint32_t ep = rec->endpoint;
	size_t n;
	int r;

	if (have_final)
		*have_final = false;
	/* links first: from here on no program runs for the cgroup, so order no longer matters */
	links_remove(ctx, ep);
	if (weir_ctx_datapath(ctx, false, &e)) {
		/* no datapath pinned: no map can hold anything of the endpoint */
		pr_debug("endpoint %u: %s", ep, e.msg);
		goto files;
	}
	iface_unregister(ctx, rec->iface_ifindex, rec->iface_netns, ep);
	delete_if_ours(ctx->dp.map[WEIR_MAP_CGROUPS], &rec->cgroup_id, ep);
	bpf_map_update_elem(ctx->dp.map[WEIR_MAP_ENDPOINTS], &ep, &zero, BPF_ANY);
	if (rec->netns_ino)
		delete_if_ours(ctx->dp.map[WEIR_MAP_NETNS], &rec->netns_ino, ep);
	if (final && !weir_ep_stats_read(ctx, ep, NULL, final) && have_final)
		*have_final = true;
	r = keys_read(ctx, ep, rec->policy_keys, &keys, &n);
	if (!r) {
		for (size_t i = 0; i < n; i++)
			bpf_map_delete_elem(ctx->dp.map[WEIR_MAP_POLICY], &keys[i]);
		free(keys);
	} else if (rec->policy_keys) {
		/* the gc sweep deletes what is left once the id is free */
		pr_warn("%s: endpoint %u: policy keys unreadable (%s): left to weir gc", rec->id,
			ep, strerror(-r));
	}
	weir_ct_remove(ctx->dp.map[WEIR_MAP_CT], ctx->paths.maps, ep);
	weir_ep_stats_zero(ctx, ep);
	weir_ep_drops_clear(ctx, ep);
	weir_guards_teardown(ctx, ep);
files:
	keys_remove(ctx, ep);
	id_free(ctx, ep, rec->id);
}

/* ---- records ------------------------------------------------------------------------ */

static struct json_object *annotations_json(const struct weir_kv *kv, size_t n)
{
	struct json_object *o = json_object_new_object();

	for (size_t i = 0; i < n; i++)
		if (weir_is_weir_key(kv[i].key) && kv[i].value)
			json_object_object_add(o, kv[i].key, json_object_new_string(kv[i].value));
	return o;
}

/* Write rec in a new state; a stopped record keeps `final` when given. */
static int record_set_state(struct weir_ctx *ctx, struct weir_record *rec, enum weir_ep_state state,
			    const char *note, const struct weir_ep_stats *final,
			    struct weir_error *err)
{
	_cleanup_json_ struct json_object *fj = final ? weir_ep_stats_to_json(final) : NULL;
	struct weir_record next = *rec;

	next.state = state;
	if (note)
		next.note = note;
	if (state == WEIR_STATE_STOPPED)
		next.stopped_ms = weir_now_ms();
	if (fj)
		next.final = fj;
	return weir_record_write(ctx, &next, err);
}

/* Detach a running endpoint (rec is read under the lock) and keep its final counters. */
static int detach_locked(struct weir_ctx *ctx, struct weir_record *rec, const char *note,
			 struct weir_error *err)
{
	_cleanup_free_ struct weir_ep_stats *final = calloc(1, sizeof(*final));
	bool have_final = false;
	int r;

	if (!final)
		return weir_error_set(err, -ENOMEM, "out of memory");
	/* invariant 1 for the way down: a crash from here on is finished by whoever comes next */
	r = record_set_state(ctx, rec, WEIR_STATE_DETACHING, NULL, NULL, err);
	if (r)
		return r;
	teardown(ctx, rec, final, &have_final);
	r = record_set_state(ctx, rec, WEIR_STATE_STOPPED, note, have_final ? final : NULL, err);
	/*
	 * A node-wide guard program (raw_tp/sys_enter above all) costs every process on the node:
	 * it goes with the last endpoint that needs it, not at the next gc.
	 */
	if (!r && rec->guard_links)
		weir_guard_links_gc(ctx);
	return r;
}

/* Finish what a process that died left (invariant 3). */
static int repair_locked(struct weir_ctx *ctx, struct weir_record *rec, struct weir_error *err)
{
	bool attaching = rec->state == WEIR_STATE_ATTACHING;

	pr_warn("%s: endpoint %u was left %s by an interrupted weir: undoing it", rec->id,
		rec->endpoint, weir_state_names[rec->state]);
	teardown(ctx, rec, NULL, NULL);
	return record_set_state(ctx, rec, WEIR_STATE_STOPPED,
				attaching ? "attach interrupted" : "detach interrupted", NULL, err);
}

/* Is a running endpoint really in place? Cheap checks of invariant 2 (cgroup map, links). */
static bool endpoint_intact(struct weir_ctx *ctx, const struct weir_record *rec)
{
	char dir[PATH_MAX];
	uint32_t owner;
	struct stat st;

	if (ep_file(ctx->paths.endpoints, rec->endpoint, dir, sizeof(dir)) || stat(dir, &st))
		return false;
	return !bpf_map_lookup_elem(ctx->dp.map[WEIR_MAP_CGROUPS], &rec->cgroup_id, &owner) &&
	       owner == rec->endpoint;
}

bool weir_endpoint_ct_intact(struct weir_ctx *ctx, const struct weir_record *rec)
{
	struct weir_error e = {};

	/* no datapath pinned: nothing of the endpoint's is left to check or to put back */
	if (weir_ctx_datapath(ctx, false, &e))
		return true;
	return !weir_ct_check(ctx->dp.map[WEIR_MAP_CT], ctx->paths.maps, rec->endpoint);
}

/*
 * Its conntrack map (invariant 2) made whole again when something removed its pin or changed
 * its weir_ct slot: 0 when nothing was missing, 1 when it was put back, or -errno. Without
 * it, replies of the endpoint's flows in a default-deny direction would be dropped.
 */
static int ct_settle(struct weir_ctx *ctx, const struct weir_record *rec, uint32_t entries,
		     struct weir_error *err)
{
	int r = weir_ct_check(ctx->dp.map[WEIR_MAP_CT], ctx->paths.maps, rec->endpoint);

	if (!r)
		return 0;
	pr_warn("%s: endpoint %u: its conntrack map %s: putting it back", rec->id, rec->endpoint,
		r == -ESTALE ? "is not in its weir_ct slot" : "slot or pin is missing");
	r = weir_ct_restore(ctx->dp.map[WEIR_MAP_CT], ctx->paths.maps, rec->endpoint,
			    entries ? entries : ctx->cfg.ct_entries, err);
	return r ? r : 1;
}

/*
 * What an earlier attach of the same container left: 1 when it is attached to this very
 * cgroup and intact (nothing to do), 0 when the way is clear, or a negative errno.
 */
static int settle_existing(struct weir_ctx *ctx, const char *id, uint64_t cgid, uint32_t ct_entries,
			   struct weir_error *err)
{
	struct weir_error why = {};
	struct weir_record rec;
	int r;

	r = weir_record_read(ctx, id, &rec, &why);
	if (r == -ENOENT)
		return 0;
	if (r)
		return weir_error_set(err, r,
				      "%s: weir leaves an unreadable record and what it may own "
				      "alone; check the container, remove the record, run weir gc",
				      why.msg);
	switch (rec.state) {
	case WEIR_STATE_RUNNING:
		if (rec.cgroup_id == cgid && endpoint_intact(ctx, &rec)) {
			r = ct_settle(ctx, &rec, ct_entries, &why);
			/* a map only CAP_SYS_ADMIN can pin again still tracks: weir gc pins it */
			if (r == -EPERM)
				pr_warn("%s: %s; weir gc can", id, why.msg);
			if (r >= 0 || r == -EPERM) {
				pr_debug("%s: already attached as endpoint %u", id, rec.endpoint);
				r = 1;
				break;
			}
			pr_warn("%s: %s", id, why.msg);
		}
		if (rec.cgroup_id == cgid)
			pr_warn("%s: endpoint %u is not intact: attaching it again", id,
				rec.endpoint);
		else
			pr_info("%s: started again in a new cgroup: detaching endpoint %u of the "
				"old one",
				id, rec.endpoint);
		r = detach_locked(ctx, &rec, "replaced", err);
		break;
	case WEIR_STATE_ATTACHING:
	case WEIR_STATE_DETACHING:
		r = repair_locked(ctx, &rec, err);
		break;
	default:
		r = 0;
	}
	weir_record_release(&rec);
	return r;
}

/* ---- attach / detach ---------------------------------------------------------------- */

struct attach_plan {
	const struct weir_container *c;
	const struct weir_iface_ref *iface; /* ifindex 0: none */
	enum weir_tc_mode tc;		    /* WEIR_TC_NONE: registered, no attachment needed */
	const struct weir_spec *spec;
	const struct weir_compiled *comp;
	const struct weir_guard_plan *guards;
	const char *cgroup;
	uint64_t cgid;
	int cg_fd;
};

static int policy_write(struct weir_ctx *ctx, uint32_t ep, const struct weir_compiled *c,
			struct weir_error *err)
{
	for (size_t i = 0; i < c->n; i++) {
		struct weir_policy_key key = c->entries[i].key;

		key.ep_id = ep;
		if (bpf_map_update_elem(ctx->dp.map[WEIR_MAP_POLICY], &key, &c->entries[i].val,
					BPF_ANY))
			return weir_error_set(err, -errno,
					      "cannot write policy entry %zu of %zu: %s", i + 1,
					      c->n, strerror(errno));
	}
	return 0;
}

static int cgroup_register(struct weir_ctx *ctx, const struct attach_plan *p, uint32_t ep,
			   struct weir_error *err)
{
	uint32_t other;

	if (!bpf_map_update_elem(ctx->dp.map[WEIR_MAP_CGROUPS], &p->cgid, &ep, BPF_NOEXIST))
		return 0;
	if (errno != EEXIST)
		return weir_error_set(err, -errno, "cannot register cgroup %s: %s", p->cgroup,
				      strerror(errno));
	if (bpf_map_lookup_elem(ctx->dp.map[WEIR_MAP_CGROUPS], &p->cgid, &other))
		other = 0;
	return weir_error_set(err, -EEXIST, "cgroup %s is already weir endpoint %u", p->cgroup,
			      other);
}

/*
 * The network namespace lets kernel drops of packets that have no socket yet be counted. In a
 * pod every container shares it: the first endpoint registered keeps it.
 */
static uint32_t netns_of(pid_t pid)
{
	char path[64];
	struct stat st;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	return stat(path, &st) ? 0 : (uint32_t)st.st_ino;
}

/* Does the endpoint need its interface judged: an ingress policy that drops? */
static bool iface_needed(const struct weir_spec *spec)
{
	return weir_spec_dir_present(spec, WEIR_INGRESS) && !spec->audit;
}

/*
 * Which path shapes the endpoint's ingress, said once, at attach: the interface's (weir list
 * and stats show it live, since a pod's later container can move it back to the cgroup).
 */
static void shaping_log(struct weir_ctx *ctx, const struct attach_plan *p, enum weir_tc_mode tc,
			uint32_t ep)
{
	struct weir_endpoint cfg;
	const char *why;

	if (!p->spec->shaping.rate_bps[WEIR_INGRESS])
		return;
	if (bpf_map_lookup_elem(ctx->dp.map[WEIR_MAP_ENDPOINTS], &ep, &cfg))
		return;
	if (cfg.flags & WEIR_EP_SHAPE_IFACE) {
		pr_info("%s: ingress shaped at the interface %s", p->c->id, p->iface->name);
		return;
	}
	why = !p->iface->ifindex   ? "no veth into the node's network namespace"
	      : tc == WEIR_TC_NONE ? "the interface program is not attached"
				   : "the interface's endpoints differ in ingress rate";
	pr_info("%s: ingress shaped by the cgroup program (%s)", p->c->id, why);
}

static int apply(struct weir_ctx *ctx, const struct attach_plan *p, const struct weir_record *rec,
		 enum weir_tc_mode *tc, struct weir_error *err)
{
	const struct weir_spec *spec = p->spec;
	struct weir_endpoint epv = {.gen = rec->gen};
	uint32_t ep = rec->endpoint;
	int r;

	r = weir_ep_stats_zero(ctx, ep);
	if (r)
		return weir_error_set(err, r, "cannot reset the counters of endpoint %u: %s", ep,
				      strerror(-r));
	r = policy_write(ctx, ep, p->comp, err);
	if (!r)
		r = weir_guards_apply(ctx, ep, rec->gen, p->guards, &spec->guards, p->c->started,
				      err);
	if (r)
		return r;
	epv.flags = WEIR_EP_ACTIVE | (spec->audit ? WEIR_EP_AUDIT : 0) |
		    (p->guards->cfg.mode[WEIR_GUARD_SCAN] ? WEIR_EP_SCAN : 0) |
		    (weir_spec_dir_present(spec, WEIR_EGRESS) ? WEIR_EP_POLICY_EGRESS : 0) |
		    (weir_spec_dir_present(spec, WEIR_INGRESS) ? WEIR_EP_POLICY_INGRESS : 0) |
		    (spec->monitor != WEIR_MON_OFF ? WEIR_EP_MON_TCP : 0) |
		    (spec->monitor == WEIR_MON_FLOWS ? WEIR_EP_MON_FLOWS : 0);
	weir_shaping_fill(&spec->shaping, &epv);
	/* its own conntrack map: no other endpoint's flows can evict its entries */
	r = weir_ct_create(ctx->dp.map[WEIR_MAP_CT], ctx->paths.maps, ep, spec->ct_entries, err);
	if (r)
		return r;
	if (bpf_map_update_elem(ctx->dp.map[WEIR_MAP_ENDPOINTS], &ep, &epv, BPF_ANY))
		return weir_error_set(err, -errno, "cannot write endpoint %u: %s", ep,
				      strerror(errno));
	r = cgroup_register(ctx, p, ep, err);
	if (r)
		return r;
	/* a pod's later containers find the netns taken: only drop attribution depends on it */
	if (rec->netns_ino)
		bpf_map_update_elem(ctx->dp.map[WEIR_MAP_NETNS], &rec->netns_ino, &ep, BPF_NOEXIST);
	/* sockops also carries out the shaping annotations' socket options */
	r = links_create(ctx, ep, p->cg_fd,
			 spec->monitor != WEIR_MON_OFF || weir_shaping_any(&spec->shaping),
			 p->guards, err);
	if (!r && p->iface->ifindex)
		r = iface_register(ctx, p->iface, tc, iface_needed(spec), ep, err);
	if (!r)
		shaping_log(ctx, p, *tc, ep);
	return r;
}

static int attach_locked(struct weir_ctx *ctx, const struct attach_plan *p, struct weir_error *err)
{
	const struct weir_container *c = p->c;
	_cleanup_json_ struct json_object *ann = annotations_json(c->annotations, c->n_annotations);
	struct weir_record rec = {
		.id = c->id,
		.name = c->name,
		.pod_uid = c->pod_uid,
		.pod_name = c->pod_name,
		.pod_namespace = c->pod_namespace,
		.source = c->source ? c->source : "unknown",
		.cgroup = p->cgroup,
		.state = WEIR_STATE_ATTACHING,
		.netns_ino = netns_of(c->pid),
		.policy_keys = (uint32_t)p->comp->n,
		.cgroup_id = p->cgid,
		.started_ms = weir_now_ms(),
		.audit = p->spec->audit,
		.monitor = p->spec->monitor,
		.annotations = ann,
		.security = p->guards->summary[0] ? p->guards->summary : NULL,
		.guard_links = p->guards->node_links,
		.ct_entries = p->spec->ct_entries,
		.iface_ifindex = p->iface->ifindex,
		.iface_netns = p->iface->netns_ino,
		.iface_name = p->iface->ifindex ? p->iface->name : NULL,
		.iface_tc = p->iface->ifindex ? weir_tc_mode_names[p->tc] : NULL,
	};
	enum weir_tc_mode tc = p->tc;
	int r;

	r = id_alloc(ctx, c->id, &rec.endpoint);
	if (r)
		return weir_error_set(err, r, "cannot allocate an endpoint id in %s: %s",
				      ctx->ids_dir, r == -ENOSPC ? "all ids in use" : strerror(-r));
	/* conntrack entries of an earlier user of this endpoint id never match this one */
	if (getrandom(&rec.gen, sizeof(rec.gen), 0) != sizeof(rec.gen))
		rec.gen = (uint32_t)weir_now_ms();
	/* into 1..2^32-2: the per-socket verdict slots keep the two others for themselves */
	rec.gen = rec.gen % (WEIR_GEN_WRITING - 1) + 1;
	r = keys_write(ctx, rec.endpoint, p->comp, err);
	if (r)
		goto free_id;
	r = weir_record_write(ctx, &rec, err); /* invariant 1: from here teardown knows all */
	if (r)
		goto free_keys;
	r = apply(ctx, p, &rec, &tc, err);
	if (!r) {
		/* a program wanted for shaping only that did not attach: the record says none */
		if (p->iface->ifindex)
			rec.iface_tc = weir_tc_mode_names[tc];
		rec.state = WEIR_STATE_RUNNING;
		r = weir_record_write(ctx, &rec, err);
	}
	if (r) {
		teardown(ctx, &rec, NULL, NULL);
		weir_record_remove(ctx, c->id);
		return r;
	}
	pr_info("%s: endpoint %u attached to %s (%zu policy entries, %s%s%s)", c->id, rec.endpoint,
		p->cgroup, p->comp->n, p->spec->audit ? "audit" : "enforce",
		rec.security ? ", guards " : "", rec.security ? rec.security : "");
	if (p->guards->fallback)
		pr_warn("%s: no BPF-LSM on this node: guards run as %s (lsm_fallback \"kill\")",
			c->id, rec.security);
	return 0;
free_keys:
	keys_remove(ctx, rec.endpoint);
free_id:
	id_free(ctx, rec.endpoint, c->id);
	return r;
}

/*
 * The container's own addresses: traffic to them never leaves its network namespace (it goes
 * over loopback, which the packet path always lets through), so the socket hooks must not
 * refuse a connect() or sendmsg() to them either. They become egress entries that allow
 * everything, written and removed with the policy.
 */
static int add_own(int family, const uint8_t *addr, void *arg)
{
	struct weir_compiled *c = arg;
	size_t alen = family == AF_INET ? 4 : 16;
	struct weir_policy_entry e = {
		.key = {.prefixlen = WEIR_POLICY_KEY_FIXED_BITS + (uint32_t)alen * 8,
			.dir = WEIR_EGRESS,
			.family = family == AF_INET ? WEIR_V4 : WEIR_V6},
		.val = {.all = (1u << WEIR_PCLASSES) - 1},
	};
	struct weir_policy_entry *n;

	if ((family == AF_INET && addr[0] == 127) ||
	    (family == AF_INET6 && !memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16)))
		return 0; /* the programs allow loopback addresses themselves */
	memcpy(e.key.addr, addr, alen);
	for (size_t i = 0; i < c->n; i++) {
		if (!memcmp(&c->entries[i].key, &e.key, sizeof(e.key))) {
			c->entries[i].val = e.val;
			return 0;
		}
	}
	n = realloc(c->entries, (c->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	c->entries = n;
	c->entries[c->n++] = e;
	return 0;
}

static void own_addresses(const struct weir_container *c, const struct weir_spec *spec,
			  struct weir_compiled *comp)
{
	int r;

	if (!spec->policy.dir[WEIR_EGRESS].present || c->pid <= 0)
		return;
	r = weir_netns_addrs(c->pid, add_own, comp);
	if (r)
		pr_warn("%s: cannot read the container's addresses (%s): a connect() to its own "
			"address is judged by its egress policy",
			c->id, strerror(-r));
}

/*
 * The container's host-side veth. Without one (host network, macvlan, rootless: a peer in
 * another namespace) the cgroup programs alone enforce, as they always did. Failing to look
 * fails the container only when it needs its interface judged.
 */
static int find_iface(const struct weir_container *c, const struct weir_spec *spec,
		      struct weir_iface_ref *iface, struct weir_error *err)
{
	struct weir_error e = {};
	int r;

	if (c->pid <= 0)
		return 0;
	r = weir_iface_find(c->pid, iface, &e);
	if (!r || r == -ENOENT) {
		if (r)
			pr_debug("%s: no veth into this network namespace: cgroup programs only",
				 c->id);
		return 0;
	}
	memset(iface, 0, sizeof(*iface));
	if (iface_needed(spec))
		return weir_error_set(err, r, "%s: cannot find the container's interface: %s",
				      c->id, e.msg);
	pr_warn("%s: cannot find the container's interface (%s): cgroup programs only", c->id,
		e.msg);
	return 0;
}

/*
 * How the interface program is attached: tcx where the kernel has it, else clsact; none when
 * this endpoint needs it neither for its ingress policy nor for its ingress rate and no other
 * endpoint of the interface has attached it (the endpoint is still listed: an open ingress
 * opens the interface for the whole pod).
 */
static enum weir_tc_mode iface_mode(struct weir_ctx *ctx, const struct weir_spec *spec,
				    const struct weir_iface_ref *iface)
{
	enum weir_tc_mode tc =
		ctx->cfg.tc_clsact ? WEIR_TC_CLSACT : weir_iface_probe(iface->ifindex);
	struct weir_iface v;

	/* an ingress rate wants it too: shaping before the namespace, not behind it */
	if (iface_needed(spec) || spec->shaping.rate_bps[WEIR_INGRESS])
		return tc;
	if (iface_read(ctx, iface->ifindex, &v))
		v.clsact_prog = 0;
	if (weir_iface_attached(&ctx->paths, iface->ifindex, tc, ctx->dp.prog[WEIR_PROG_IFACE],
				v.clsact_prog))
		return tc;
	return WEIR_TC_NONE;
}

static int resolve_cgroup(const struct weir_container *c, char *cgroup, size_t size,
			  struct weir_error *err)
{
	int r;

	if (c->cgroup_path) {
		if (snprintf(cgroup, size, "%s", c->cgroup_path) >= (int)size)
			return weir_error_set(err, -ENAMETOOLONG, "cgroup path too long");
		return 0;
	}
	if (c->pid <= 0)
		return weir_error_set(err, -EINVAL, "%s: neither a pid nor a cgroup path is known",
				      c->id);
	r = weir_cgroup_of_pid(c->pid, cgroup, size);
	if (r)
		return weir_error_set(err, r, "cannot find the cgroup v2 of pid %d: %s",
				      (int)c->pid, strerror(-r));
	return 0;
}

int weir_endpoint_attach(struct weir_ctx *ctx, const struct weir_container *c,
			 struct weir_error *err)
{
	_cleanup_close_ int cg_fd = -1;
	_cleanup_close_ int lock = -1;
	struct weir_guard_plan guards;
	struct weir_compiled comp = {};
	struct weir_iface_ref iface = {};
	enum weir_tc_mode tc;
	bool refused = false;
	struct weir_spec spec;
	char cgroup[PATH_MAX];
	uint64_t cgid;
	int r;

	if (!weir_valid_id(c->id))
		return weir_error_set(
			err, -EINVAL,
			"container id %s: expected 1-128 characters of [A-Za-z0-9_.-]",
			WEIR_Q(c->id));
	r = weir_spec_parse_for(&ctx->cfg, c->annotations, c->n_annotations, c->pod_namespace,
				&spec, err);
	if (r)
		return r;
	if (!spec.any)
		goto out_spec; /* nothing asked of weir */
	r = weir_spec_compile(&spec, &comp, err);
	if (r)
		goto out_spec;

	r = resolve_cgroup(c, cgroup, sizeof(cgroup), err);
	if (r)
		goto out;
	/* never the root, weir's own, an endpoint's ancestor, or outside endpoint_cgroups */
	r = weir_cgroup_endpoint_check(ctx, cgroup, sizeof(cgroup), err);
	if (r)
		goto out;
	cg_fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0) {
		r = weir_error_set(err, -errno, "cannot open cgroup %s: %s", cgroup,
				   strerror(errno));
		goto out;
	}
	r = weir_cgroup_id(cgroup, &cgid);
	if (r) {
		weir_error_set(err, r, "cannot get the id of cgroup %s: %s", cgroup, strerror(-r));
		goto out;
	}
	own_addresses(c, &spec, &comp);
	r = find_iface(c, &spec, &iface, err);
	if (r)
		goto out;

	/* check-then-attach: two integrations racing for one container attach it once */
	lock = weir_registry_lock(ctx, err);
	if (lock < 0) {
		r = lock;
		goto out;
	}
	r = weir_ctx_datapath(ctx, true, err);
	if (r)
		goto out;
	/* a guard this node cannot carry out is the annotation's to drop: never fail_open */
	r = weir_guards_prepare(ctx, &spec, &guards, err);
	refused = r != 0;
	if (r)
		goto out;
	r = settle_existing(ctx, c->id, cgid, spec.ct_entries, err);
	if (r > 0) {
		r = 0;
		goto out;
	}
	if (r)
		goto out;
	if (spec.monitor != WEIR_MON_OFF && ctx->dp.prog[WEIR_PROG_SOCKOPS] < 0)
		pr_warn("%s: %s: TCP health and flows are unavailable on this kernel (weir status)",
			c->id, WEIR_KEY_MONITOR);
	tc = iface.ifindex ? iface_mode(ctx, &spec, &iface) : WEIR_TC_NONE;
	r = attach_locked(ctx,
			  &(struct attach_plan){.c = c,
						.iface = &iface,
						.tc = tc,
						.spec = &spec,
						.comp = &comp,
						.cgroup = cgroup,
						.cgid = cgid,
						.cg_fd = cg_fd,
						.guards = &guards},
			  err);
out:
	/*
	 * Every failure that reaches here is the node's, not the annotations' (those refuse
	 * above, always): the node config may prefer an unenforced container to a refused one.
	 */
	if (r && ctx->cfg.fail_open && !refused) {
		pr_warn("%s: running UNENFORCED (fail_open): %s", c->id, err ? err->msg : "");
		weir_error_clear(err);
		r = 0;
	}
	weir_compiled_free(&comp);
out_spec:
	weir_spec_free(&spec);
	return r;
}

int weir_endpoint_detach(struct weir_ctx *ctx, const char *id, struct weir_error *err)
{
	_cleanup_close_ int lock = -1;
	struct weir_error why = {};
	struct weir_record rec;
	char path[PATH_MAX];
	int r;

	/* most containers a runtime stops are no endpoint: no lock for them */
	r = weir_record_path(ctx, id, path, sizeof(path));
	if (r)
		return weir_error_set(err, r, "bad container id \"%.64s\"", id);
	if (access(path, F_OK) && errno == ENOENT) {
		pr_debug("%s: not a weir endpoint", id);
		return 0;
	}
	lock = weir_registry_lock(ctx, err);
	if (lock < 0)
		return lock;
	r = weir_record_read(ctx, id, &rec, &why);
	if (r == -ENOENT) {
		pr_debug("%s: not a weir endpoint", id);
		return 0;
	}
	if (r)
		return weir_error_set(err, r, "%s: left alone", why.msg);
	switch (rec.state) {
	case WEIR_STATE_RUNNING:
		r = detach_locked(ctx, &rec, NULL, err);
		if (!r)
			pr_info("%s: endpoint %u detached", id, rec.endpoint);
		break;
	case WEIR_STATE_ATTACHING:
	case WEIR_STATE_DETACHING:
		r = repair_locked(ctx, &rec, err);
		break;
	default:
		r = 0;
	}
	weir_record_release(&rec);
	return r;
}

/* ---- for gc (the caller holds the registry lock unless said otherwise) -------------- */

int weir_registry_settle(struct weir_ctx *ctx, const char *id, uint64_t expire_before_ms,
			 struct weir_error *err)
{
	struct weir_error why = {};
	struct weir_record rec;
	uint64_t cgid;
	int r;

	r = weir_record_read(ctx, id, &rec, &why);
	if (r == -ENOENT)
		return WEIR_SETTLED_NOTHING;
	if (r)
		return weir_error_set(err, r, "%s", why.msg);
	switch (rec.state) {
	case WEIR_STATE_ATTACHING:
	case WEIR_STATE_DETACHING:
		r = repair_locked(ctx, &rec, err);
		r = r ? r : WEIR_SETTLED_REPAIRED;
		break;
	case WEIR_STATE_RUNNING:
		/* the cgroup id, not the path: a path can be made again for another container */
		if (!weir_cgroup_id(rec.cgroup, &cgid) && cgid == rec.cgroup_id) {
			r = weir_ctx_datapath(ctx, false, err);
			if (!r)
				r = ct_settle(ctx, &rec, rec.ct_entries, err);
			r = r < 0 ? r : r ? WEIR_SETTLED_REPAIRED : WEIR_SETTLED_NOTHING;
			break;
		}
		r = detach_locked(ctx, &rec, "cgroup gone", err);
		r = r ? r : WEIR_SETTLED_DETACHED;
		break;
	default:
		r = WEIR_SETTLED_NOTHING;
		if (rec.stopped_ms < expire_before_ms) {
			r = weir_record_remove(ctx, id);
			r = r ? weir_error_set(err, r, "cannot remove the record of %s: %s", id,
					       strerror(-r))
			      : WEIR_SETTLED_EXPIRED;
		}
	}
	weir_record_release(&rec);
	return r;
}

/* Does a readable record claim ep (invariant 5)? An unreadable one might: that counts too. */
static bool id_claimed(struct weir_ctx *ctx, uint32_t ep)
{
	struct weir_error why = {};
	struct weir_record rec;
	char owner[256];
	bool claimed;
	int r;

	if (weir_registry_id_owner(ctx, ep, owner, sizeof(owner)) || !weir_valid_id(owner))
		return false; /* an attach died between taking the id and naming its owner */
	r = weir_record_read(ctx, owner, &rec, &why);
	if (r == -ENOENT)
		return false;
	if (r)
		return true;
	claimed = rec.endpoint == ep && rec.state != WEIR_STATE_STOPPED;
	weir_record_release(&rec);
	return claimed;
}

static bool is_temp(const char *name)
{
	return strstr(name, ".tmp.") != NULL;
}

/* Numeric entries of a folder: endpoint ids. */
static int ep_name(const char *name, uint32_t *ep)
{
	char *end;
	unsigned long v;

	if (name[0] < '1' || name[0] > '9')
		return -EINVAL;
	v = strtoul(name, &end, 10);
	if (*end || v >= WEIR_MAX_ENDPOINTS)
		return -EINVAL;
	*ep = (uint32_t)v;
	return 0;
}

static int weir_registry_held(struct weir_ctx *ctx, bool *held)
{
	struct dirent *de;
	DIR *d = opendir(ctx->ids_dir);
	uint32_t ep;

	memset(held, 0, WEIR_MAX_ENDPOINTS * sizeof(*held));
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)))
		if (!ep_name(de->d_name, &ep))
			held[ep] = true;
	closedir(d);
	return 0;
}

unsigned int weir_registry_orphans(struct weir_ctx *ctx)
{
	const char *dirs[] = {ctx->ids_dir, ctx->keys_dir, ctx->paths.endpoints,
			      ctx->containers_dir};
	_cleanup_free_ bool *held = calloc(WEIR_MAX_ENDPOINTS, sizeof(*held));
	unsigned int n = 0;

	if (!held)
		return 0;
	for (size_t i = 0; i < WEIR_ARRAY_SIZE(dirs); i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *de;
		char path[PATH_MAX];
		uint32_t ep;

		while (d && (de = readdir(d))) {
			if (de->d_name[0] == '.' ||
			    weir_path_join(path, sizeof(path), dirs[i], de->d_name))
				continue;
			/* every writer holds the lock, so a temporary file now is a dead one's */
			if (is_temp(de->d_name)) {
				n += !unlink(path);
				continue;
			}
			if (ep_name(de->d_name, &ep))
				continue;
			if (i == 0) {
				held[ep] = id_claimed(ctx, ep);
				if (!held[ep])
					n += !unlink(path);
			} else if (!held[ep] && i == 1) {
				n += !unlink(path);
			} else if (!held[ep] && i == 2) {
				weir_unpin_dir(path, true);
				n += !rmdir(path);
			}
		}
		if (d)
			closedir(d);
	}
	return n;
}

/*
 * Map entries of endpoint ids nobody holds: what a teardown could not find (a record removed
 * by hand, keys lost). The walk runs without the lock and only collects; the deletes happen
 * under it, for ids still free then, so an attach in between keeps everything it wrote.
 */
struct sweep {
	struct weir_policy_key *pk;
	size_t npk, pkcap;
	uint64_t *cg;
	size_t ncg, cgcap;
};

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap = *cap ? *cap * 2 : 64;
	void *p;

	if (n < *cap)
		return 0;
	p = realloc(*arr, ncap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static int sweep_collect(struct weir_ctx *ctx, const bool *held, struct sweep *s)
{
	struct weir_policy_key pk, pnext, *pprev = NULL;
	uint64_t ck, cnext, *cprev = NULL;
	int map = ctx->dp.map[WEIR_MAP_POLICY];
	uint32_t ep;

	while (!bpf_map_get_next_key(map, pprev, &pnext)) {
		pk = pnext;
		pprev = &pk;
		if (pk.ep_id < WEIR_MAX_ENDPOINTS && held[pk.ep_id])
			continue;
		if (grow((void **)&s->pk, &s->pkcap, s->npk, sizeof(pk)))
			return -ENOMEM;
		s->pk[s->npk++] = pk;
	}
	map = ctx->dp.map[WEIR_MAP_CGROUPS];
	while (!bpf_map_get_next_key(map, cprev, &cnext)) {
		ck = cnext;
		cprev = &ck;
		if (bpf_map_lookup_elem(map, &ck, &ep) || (ep < WEIR_MAX_ENDPOINTS && held[ep]))
			continue;
		if (grow((void **)&s->cg, &s->cgcap, s->ncg, sizeof(ck)))
			return -ENOMEM;
		s->cg[s->ncg++] = ck;
	}
	return 0;
}

int weir_registry_sweep(struct weir_ctx *ctx, unsigned int *deleted, struct weir_error *err)
{
	_cleanup_free_ bool *held = calloc(WEIR_MAX_ENDPOINTS, sizeof(*held));
	_cleanup_close_ int lock = -1;
	struct sweep s = {};
	int r;

	*deleted = 0;
	if (!held)
		return weir_error_set(err, -ENOMEM, "out of memory");
	if (weir_ctx_datapath(ctx, false, err)) {
		weir_error_clear(err); /* no datapath: no map to sweep */
		return 0;
	}
	r = weir_registry_held(ctx, held);
	if (!r)
		r = sweep_collect(ctx, held, &s);
	/* conntrack maps are swept under the lock in any case: a walk of slots and pins */
	if (!r) {
		lock = weir_registry_lock(ctx, err);
		if (lock < 0)
			r = lock;
		else
			r = weir_registry_held(ctx, held);
	}
	for (size_t i = 0; !r && i < s.npk; i++)
		if (!held[s.pk[i].ep_id] &&
		    !bpf_map_delete_elem(ctx->dp.map[WEIR_MAP_POLICY], &s.pk[i]))
			(*deleted)++;
	for (size_t i = 0; !r && i < s.ncg; i++) {
		uint32_t ep;

		if (!bpf_map_lookup_elem(ctx->dp.map[WEIR_MAP_CGROUPS], &s.cg[i], &ep) &&
		    (ep >= WEIR_MAX_ENDPOINTS || !held[ep]) &&
		    !bpf_map_delete_elem(ctx->dp.map[WEIR_MAP_CGROUPS], &s.cg[i]))
			(*deleted)++;
	}
	if (!r && lock >= 0)
		*deleted += weir_ct_sweep(ctx->dp.map[WEIR_MAP_CT], ctx->paths.maps, held);
	/* guard entries (sysctl allow-lists, protected inodes, scan probes) of free ids */
	if (!r && lock >= 0)
		*deleted += weir_guards_sweep(ctx, held);
	free(s.pk);
	free(s.cg);
	if (r && !err->code)
		weir_error_set(err, r, "cannot sweep the maps: %s", strerror(-r));
	return r;
}

static bool ep_held(uint32_t ep, const void *arg)
{
	const bool *held = arg;

	return ep && ep < WEIR_MAX_ENDPOINTS && held[ep];
}

unsigned int weir_registry_ifaces_gc(struct weir_ctx *ctx)
{
	_cleanup_free_ bool *held = calloc(WEIR_MAX_ENDPOINTS, sizeof(*held));
	_cleanup_free_ uint32_t *keys = NULL;
	size_t nkeys = 0, cap = 0;
	uint32_t key, *prev = NULL;
	struct weir_error e = {};
	struct dirent *de;
	unsigned int n = 0;
	DIR *d;

	if (!held || weir_registry_held(ctx, held) || weir_ctx_datapath(ctx, false, &e))
		return 0;
	while (!bpf_map_get_next_key(ctx->dp.map[WEIR_MAP_IFACES], prev, &key)) {
		if (grow((void **)&keys, &cap, nkeys, sizeof(key)))
			return n;
		keys[nkeys++] = key;
		prev = &keys[nkeys - 1];
	}
	/* interfaces listing endpoints nobody holds (a record removed by hand, a lost teardown) */
	for (size_t i = 0; i < nkeys; i++) {
		struct weir_iface v;

		if (iface_read(ctx, keys[i], &v))
			continue;
		if (iface_filter(&v, ep_held, held) || !v.n) {
			if (v.n)
				iface_shape_sync(ctx, keys[i], &v, iface_live(ctx, keys[i], &v));
			iface_store(ctx, keys[i], 0, &v);
			n++;
		}
	}
	/* tcx links of interfaces no entry lists */
	d = opendir(ctx->paths.ifaces);
	while (d && (de = readdir(d))) {
		struct weir_iface v;
		uint32_t ifindex;
		char *end;
		unsigned long num;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		num = strtoul(de->d_name, &end, 10);
		if (*end || num > INT32_MAX)
			continue;
		ifindex = (uint32_t)num;
		if (!iface_read(ctx, ifindex, &v))
			continue;
		weir_iface_detach(&ctx->paths, ifindex, 0);
		n++;
	}
	if (d)
		closedir(d);
	return n;
}
