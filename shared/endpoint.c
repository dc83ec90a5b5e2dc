// SPDX-License-Identifier: Apache-2.0
/*
 * Endpoints: registration, policy maps, cgroup links and records. An attach either completes
 * or undoes every step it took, in reverse order, so a refused container leaves nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "annot.h"
#include "cgroup.h"
#include "ctx.h"
#include "log.h"
#include "util.h"

#define WEIR_MAX_RECORD_BYTES (1 << 20)

int weir_ctx_open(struct weir_ctx **out, const char *config_path, struct weir_error *err)
{
	struct weir_ctx *ctx = calloc(1, sizeof(*ctx));
	int r;

	if (!ctx)
		return weir_error_set(err, -ENOMEM, "out of memory");
	r = weir_config_load(&ctx->cfg, config_path ? config_path : WEIR_DEFAULT_CONFIG,
			     config_path != NULL, err);
	if (r)
		goto fail;
	if (ctx->cfg.log_level_set)
		weir_log_set_level(ctx->cfg.log_level);
	r = weir_paths_init(&ctx->paths, &ctx->cfg);
	if (!r && (snprintf(ctx->containers_dir, sizeof(ctx->containers_dir), "%s/containers",
			    ctx->cfg.state_dir) >= (int)sizeof(ctx->containers_dir) ||
		   snprintf(ctx->ids_dir, sizeof(ctx->ids_dir), "%s/ids", ctx->cfg.state_dir) >=
			   (int)sizeof(ctx->ids_dir)))
		r = -ENAMETOOLONG;
	if (r) {
		weir_error_set(err, r, "configured paths are too long");
		goto fail;
	}
	*out = ctx;
	return 0;
fail:
	free(ctx);
	return r;
}

void weir_ctx_close(struct weir_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->dp_open)
		weir_datapath_close(&ctx->dp);
	free(ctx);
}

int weir_ctx_datapath(struct weir_ctx *ctx, bool load, struct weir_error *err)
{
	int r;

	if (ctx->dp_open)
		return 0;
	r = weir_datapath_open(&ctx->dp, &ctx->cfg, load, err);
	if (!r)
		ctx->dp_open = true;
	return r;
}

int weir_annotations_check(struct weir_ctx *ctx, const struct weir_kv *kv, size_t n,
			   struct weir_error *err)
{
	struct weir_compiled comp;
	struct weir_spec spec;
	int r;

	r = weir_spec_parse(&ctx->cfg, kv, n, &spec, err);
	if (r)
		return r;
	r = weir_policy_compile(&spec.policy, &comp, err);
	if (!r)
		weir_compiled_free(&comp);
	weir_spec_free(&spec);
	return r;
}

int weir_ctx_lock(struct weir_ctx *ctx, const char *name, bool wait, struct weir_error *err)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", ctx->cfg.state_dir, name) >= (int)sizeof(path))
		return weir_error_set(err, -ENAMETOOLONG, "lock path too long");
	return weir_lock_file(path, wait, err);
}

/*
 * The registry lock makes "is this container attached? if not, attach it" one step, so two
 * integrations (a hook and weir-nri, or two weir-nri) never attach one container twice. It is
 * held for one container's map writes and links.
 */
static int registry_lock(struct weir_ctx *ctx, struct weir_error *err)
{
	return weir_ctx_lock(ctx, "endpoints.lock", true, err);
}

/* ---- records ------------------------------------------------------------------------ */

int weir_record_path(const struct weir_ctx *ctx, const char *id, char *out, size_t size)
{
	if (!weir_valid_id(id))
		return -EINVAL;
	if (snprintf(out, size, "%s/%s.json", ctx->containers_dir, id) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

int weir_record_load(const struct weir_ctx *ctx, const char *id, struct json_object **out,
		     struct weir_error *err)
{
	_cleanup_free_ char *text = NULL;
	char path[PATH_MAX];
	struct json_object *o;
	int r;

	r = weir_record_path(ctx, id, path, sizeof(path));
	if (r)
		return weir_error_set(err, r, "bad container id \"%s\"", id);
	r = weir_read_file(path, WEIR_MAX_RECORD_BYTES, &text, NULL);
	if (r == -ENOENT)
		return r;
	if (r)
		return weir_error_set(err, r, "cannot read %s: %s", path, strerror(-r));
	o = json_tokener_parse(text);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return weir_error_set(err, -EBADMSG, "%s is not a weir record", path);
	}
	*out = o;
	return 0;
}

int weir_record_store(const struct weir_ctx *ctx, const char *id, struct json_object *rec,
		      struct weir_error *err)
{
	char path[PATH_MAX];
	const char *text;
	int r;

	r = weir_record_path(ctx, id, path, sizeof(path));
	if (!r)
		r = weir_mkdir_p(ctx->containers_dir, 0700);
	if (r)
		return weir_error_set(err, r, "cannot store the record of %s: %s", id,
				      strerror(-r));
	text = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PRETTY |
							   JSON_C_TO_STRING_NOSLASHESCAPE);
	r = weir_write_file_atomic(path, text, strlen(text), 0600);
	if (r)
		return weir_error_set(err, r, "cannot write %s: %s", path, strerror(-r));
	return 0;
}

uint64_t weir_json_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	return (uint64_t)json_object_get_uint64(v);
}

const char *weir_json_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int weir_records_foreach(struct weir_ctx *ctx,
			 int (*fn)(struct weir_ctx *ctx, const char *id, struct json_object *rec,
				   void *arg),
			 void *arg)
{
	struct dirent **names = NULL;
	int n, r = 0;

	n = scandir(ctx->containers_dir, &names, NULL, alphasort);
	if (n < 0)
		return errno == ENOENT ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		char id[256];
		size_t len = strlen(names[i]->d_name);
		struct json_object *rec = NULL;
		struct weir_error e = {};

		if (!r && len > 5 && !strcmp(names[i]->d_name + len - 5, ".json") &&
		    len - 5 < 256) {
			memcpy(id, names[i]->d_name, len - 5);
			id[len - 5] = '\0';
			if (weir_valid_id(id) && !weir_record_load(ctx, id, &rec, &e)) {
				r = fn(ctx, id, rec, arg);
				json_object_put(rec);
			}
		}
		free(names[i]);
	}
	free(names);
	return r;
}

/* ---- endpoint ids ------------------------------------------------------------------- */

/*
 * An id is taken by creating <state>/ids/<n> with O_EXCL: lock-free, and O(1) expected at any
 * number of endpoints because the search starts at a random id.
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
		int fd;

		snprintf(path, sizeof(path), "%s/%u", ctx->ids_dir, ep);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			if (errno == EEXIST)
				continue;
			return -errno;
		}
		if (write(fd, owner, strlen(owner)) < 0)
			r = -errno;
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

static void id_free(struct weir_ctx *ctx, uint32_t ep)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%u", ctx->ids_dir, ep);
	unlink(path);
}

/* ---- maps --------------------------------------------------------------------------- */

static int policy_write(struct weir_ctx *ctx, uint32_t ep, const struct weir_compiled *c,
			size_t *written)
{
	for (*written = 0; *written < c->n; (*written)++) {
		struct weir_policy_key key = c->entries[*written].key;

		key.ep_id = ep;
		if (bpf_map_update_elem(ctx->dp.map[WEIR_MAP_POLICY], &key,
					&c->entries[*written].val, BPF_ANY))
			return -errno;
	}
	return 0;
}

static void policy_delete(struct weir_ctx *ctx, uint32_t ep, const struct weir_compiled *c,
			  size_t n)
{
	for (size_t i = 0; i < n && i < c->n; i++) {
		struct weir_policy_key key = c->entries[i].key;

		key.ep_id = ep;
		bpf_map_delete_elem(ctx->dp.map[WEIR_MAP_POLICY], &key);
	}
}

static int ep_dir(struct weir_ctx *ctx, uint32_t ep, char *out, size_t size)
{
	return snprintf(out, size, "%s/%u", ctx->paths.endpoints, ep) >= (int)size ? -ENAMETOOLONG
										   : 0;
}

/* Detach and unpin every link of an endpoint; safe on a half-made or missing folder. */
static void links_remove(struct weir_ctx *ctx, uint32_t ep)
{
	char dir[PATH_MAX];

	if (ep_dir(ctx, ep, dir, sizeof(dir)))
		return;
	weir_unpin_dir(dir, true);
	rmdir(dir);
}

static int links_create(struct weir_ctx *ctx, uint32_t ep, int cg_fd, bool monitor,
			struct weir_error *err)
{
	char dir[PATH_MAX], path[PATH_MAX];
	int r;

	r = ep_dir(ctx, ep, dir, sizeof(dir));
	if (r)
		return weir_error_set(err, r, "endpoint path too long");
	if (mkdir(dir, 0700) && errno != EEXIST)
		return weir_error_set(err, -errno, "cannot create %s: %s", dir, strerror(errno));
	for (int i = 0; i < WEIR_PROG_COUNT; i++) {
		int link;

		if (weir_progs[i].scope == WEIR_SCOPE_NODE ||
		    (weir_progs[i].scope == WEIR_SCOPE_MONITOR && !monitor) || ctx->dp.prog[i] < 0)
			continue;
		link = bpf_link_create(ctx->dp.prog[i], cg_fd, weir_progs[i].attach, NULL);
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

/*
 * The network namespace lets kernel drops of packets that have no socket yet be counted. In a
 * pod every container shares it: the first endpoint registered keeps it.
 */
static uint32_t netns_register(struct weir_ctx *ctx, pid_t pid, uint32_t ep)
{
	char path[64];
	struct stat st;
	uint32_t ino;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	if (stat(path, &st))
		return 0;
	ino = (uint32_t)st.st_ino;
	if (bpf_map_update_elem(ctx->dp.map[WEIR_MAP_NETNS], &ino, &ep, BPF_NOEXIST))
		return 0;
	return ino;
}

static void netns_unregister(struct weir_ctx *ctx, uint32_t ino, uint32_t ep)
{
	uint32_t owner;

	if (ino && !bpf_map_lookup_elem(ctx->dp.map[WEIR_MAP_NETNS], &ino, &owner) && owner == ep)
		bpf_map_delete_elem(ctx->dp.map[WEIR_MAP_NETNS], &ino);
}

/* ---- attach / detach ---------------------------------------------------------------- */

static struct json_object *annotations_json(const struct weir_kv *kv, size_t n)
{
	struct json_object *o = json_object_new_object();

	for (size_t i = 0; i < n; i++)
		if (weir_is_weir_key(kv[i].key) && kv[i].value)
			json_object_object_add(o, kv[i].key, json_object_new_string(kv[i].value));
	return o;
}

static void add_str(struct json_object *o, const char *key, const char *v)
{
	if (v)
		json_object_object_add(o, key, json_object_new_string(v));
}

static int record_running(struct weir_ctx *ctx, const struct weir_container *c,
			  const struct weir_spec *spec, uint32_t ep, uint32_t gen,
			  const char *cgroup, uint64_t cgid, uint32_t netns, struct weir_error *err)
{
	_cleanup_json_ struct json_object *rec = json_object_new_object();

	add_str(rec, "id", c->id);
	add_str(rec, "name", c->name);
	add_str(rec, "pod_uid", c->pod_uid);
	add_str(rec, "pod_name", c->pod_name);
	add_str(rec, "pod_namespace", c->pod_namespace);
	add_str(rec, "source", c->source ? c->source : "unknown");
	json_object_object_add(rec, "endpoint", json_object_new_uint64(ep));
	json_object_object_add(rec, "gen", json_object_new_uint64(gen));
	add_str(rec, "cgroup", cgroup);
	json_object_object_add(rec, "cgroup_id", json_object_new_uint64(cgid));
	add_str(rec, "state", "running");
	add_str(rec, "mode", spec->audit ? "audit" : "enforce");
	add_str(rec, "monitor", weir_monitor_names[spec->monitor]);
	if (netns)
		json_object_object_add(rec, "netns_ino", json_object_new_uint64(netns));
	json_object_object_add(rec, "started_ms", json_object_new_uint64(weir_now_ms()));
	json_object_object_add(rec, "annotations",
			       annotations_json(c->annotations, c->n_annotations));
	return weir_record_store(ctx, c->id, rec, err);
}

int weir_endpoint_attach(struct weir_ctx *ctx, const struct weir_container *c,
			 struct weir_error *err)
{
	_cleanup_json_ struct json_object *old = NULL;
	_cleanup_close_ int cg_fd = -1;
	_cleanup_close_ int lock = -1;
	struct weir_endpoint epv = {};
	struct weir_compiled comp = {};
	struct weir_spec spec;
	char cgroup[PATH_MAX];
	uint64_t cgid;
	uint32_t ep = 0, gen = 0, netns = 0;
	size_t written = 0;
	int r;

	if (!weir_valid_id(c->id))
		return weir_error_set(err, -EINVAL,
				      "container id \"%.64s\": expected 1-128 characters of "
				      "[A-Za-z0-9_.-]",
				      c->id ? c->id : "");
	r = weir_spec_parse(&ctx->cfg, c->annotations, c->n_annotations, &spec, err);
	if (r)
		return r;
	if (!spec.any)
		goto out_spec; /* nothing asked of weir */
	r = weir_policy_compile(&spec.policy, &comp, err);
	if (r)
		goto out_spec;

	/* check-then-attach: two integrations racing for one container attach it once */
	lock = registry_lock(ctx, err);
	if (lock < 0) {
		r = lock;
		goto out_comp;
	}
	r = weir_record_load(ctx, c->id, &old, err);
	if (!r && !strcmp(weir_json_str(old, "state") ?: "", "running")) {
		pr_debug("%s: already attached as endpoint %llu", c->id,
			 (unsigned long long)weir_json_u64(old, "endpoint"));
		goto out_comp;
	}
	if (r && r != -ENOENT)
		goto out_comp;

	if (c->cgroup_path) {
		if (snprintf(cgroup, sizeof(cgroup), "%s", c->cgroup_path) >= (int)sizeof(cgroup)) {
			r = weir_error_set(err, -ENAMETOOLONG, "cgroup path too long");
			goto out_comp;
		}
	} else if (c->pid > 0) {
		r = weir_cgroup_of_pid(c->pid, cgroup, sizeof(cgroup));
		if (r) {
			weir_error_set(err, r, "cannot find the cgroup v2 of pid %d: %s",
				       (int)c->pid, strerror(-r));
			goto out_comp;
		}
	} else {
		r = weir_error_set(err, -EINVAL, "%s: neither a pid nor a cgroup path is known",
				   c->id);
		goto out_comp;
	}
	cg_fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0) {
		r = weir_error_set(err, -errno, "cannot open cgroup %s: %s", cgroup,
				   strerror(errno));
		goto out_comp;
	}
	r = weir_cgroup_id(cgroup, &cgid);
	if (r) {
		weir_error_set(err, r, "cannot get the id of cgroup %s: %s", cgroup, strerror(-r));
		goto out_comp;
	}

	r = weir_ctx_datapath(ctx, true, err);
	if (r)
		goto out_comp;

	r = id_alloc(ctx, c->id, &ep);
	if (r) {
		weir_error_set(err, r, "cannot allocate an endpoint id in %s: %s", ctx->ids_dir,
			       r == -ENOSPC ? "all ids in use" : strerror(-r));
		goto out_comp;
	}
	if (getrandom(&gen, sizeof(gen), 0) != sizeof(gen))
		gen = (uint32_t)weir_now_ms();

	r = weir_ep_stats_zero(ctx, ep);
	if (r) {
		weir_error_set(err, r, "cannot reset the counters of endpoint %u: %s", ep,
			       strerror(-r));
		goto free_id;
	}
	r = policy_write(ctx, ep, &comp, &written);
	if (r) {
		weir_error_set(err, r, "cannot write policy entry %zu of %zu: %s", written + 1,
			       comp.n, strerror(-r));
		goto del_policy;
	}
	if (spec.monitor != WEIR_MON_OFF && ctx->dp.prog[WEIR_PROG_SOCKOPS] < 0)
		pr_warn("%s: %s: TCP health and flows are unavailable on this kernel (weir status)",
			c->id, WEIR_KEY_MONITOR);
	epv.flags = WEIR_EP_ACTIVE | (spec.audit ? WEIR_EP_AUDIT : 0) |
		    (spec.policy.dir[WEIR_EGRESS].present ? WEIR_EP_POLICY_EGRESS : 0) |
		    (spec.policy.dir[WEIR_INGRESS].present ? WEIR_EP_POLICY_INGRESS : 0) |
		    (spec.monitor != WEIR_MON_OFF ? WEIR_EP_MON_TCP : 0) |
		    (spec.monitor == WEIR_MON_FLOWS ? WEIR_EP_MON_FLOWS : 0);
	epv.gen = gen;
	if (bpf_map_update_elem(ctx->dp.map[WEIR_MAP_ENDPOINTS], &ep, &epv, BPF_ANY)) {
		r = weir_error_set(err, -errno, "cannot write endpoint %u: %s", ep,
				   strerror(errno));
		goto del_policy;
	}
	if (bpf_map_update_elem(ctx->dp.map[WEIR_MAP_CGROUPS], &cgid, &ep, BPF_NOEXIST)) {
		r = -errno;
		if (r == -EEXIST)
			weir_error_set(err, r, "cgroup %s is already a weir endpoint", cgroup);
		else
			weir_error_set(err, r, "cannot register cgroup %s: %s", cgroup,
				       strerror(-r));
		goto clear_ep;
	}
	netns = netns_register(ctx, c->pid, ep);
	r = links_create(ctx, ep, cg_fd, spec.monitor != WEIR_MON_OFF, err);
	if (r)
		goto unlink;
	r = record_running(ctx, c, &spec, ep, gen, cgroup, cgid, netns, err);
	if (r)
		goto unlink;
	pr_info("%s: endpoint %u attached to %s (%zu policy entries, %s)", c->id, ep, cgroup,
		comp.n, spec.audit ? "audit" : "enforce");
	goto out_comp;

unlink:
	links_remove(ctx, ep);
	netns_unregister(ctx, netns, ep);
	bpf_map_delete_elem(ctx->dp.map[WEIR_MAP_CGROUPS], &cgid);
clear_ep:
	memset(&epv, 0, sizeof(epv));
	bpf_map_update_elem(ctx->dp.map[WEIR_MAP_ENDPOINTS], &ep, &epv, BPF_ANY);
del_policy:
	policy_delete(ctx, ep, &comp, written);
free_id:
	id_free(ctx, ep);
out_comp:
	/*
	 * Every failure that reaches here is the node's, not the annotations' (those refuse
	 * above, always): the node config may prefer an unenforced container to a refused one.
	 */
	if (r && ctx->cfg.fail_open) {
		pr_warn("%s: running UNENFORCED (fail_open): %s", c->id, err ? err->msg : "");
		weir_error_clear(err);
		r = 0;
	}
	weir_compiled_free(&comp);
out_spec:
	weir_spec_free(&spec);
	return r;
}

/* Undo an endpoint's kernel state from its record; the record itself is updated by callers. */
static int endpoint_teardown(struct weir_ctx *ctx, struct json_object *rec,
			     struct weir_ep_stats *final, bool *have_final)
{
	uint32_t ep = (uint32_t)weir_json_u64(rec, "endpoint");
	uint64_t cgid = weir_json_u64(rec, "cgroup_id");
	struct weir_endpoint zero = {};
	struct json_object *ann;
	struct weir_error e = {};
	int r;

	*have_final = false;
	if (!ep || ep >= WEIR_MAX_ENDPOINTS)
		return -EBADMSG;
	links_remove(ctx, ep);
	r = weir_ctx_datapath(ctx, false, &e);
	if (r) {
		/* no datapath pinned: nothing in the kernel can refer to the endpoint */
		pr_warn("%s", e.msg);
		id_free(ctx, ep);
		return 0;
	}
	bpf_map_delete_elem(ctx->dp.map[WEIR_MAP_CGROUPS], &cgid);
	bpf_map_update_elem(ctx->dp.map[WEIR_MAP_ENDPOINTS], &ep, &zero, BPF_ANY);
	netns_unregister(ctx, (uint32_t)weir_json_u64(rec, "netns_ino"), ep);
	if (!weir_ep_stats_read(ctx, ep, NULL, final))
		*have_final = true;

	/* the policy keys are recomputed from the annotations the endpoint was made from */
	if (json_object_object_get_ex(rec, "annotations", &ann)) {
		struct weir_kv kv[16];
		struct weir_compiled comp;
		struct weir_spec spec;
		size_t n = 0;

		json_object_object_foreach (ann, k, v) {
			if (n < WEIR_ARRAY_SIZE(kv) && json_object_is_type(v, json_type_string)) {
				kv[n].key = k;
				kv[n].value = json_object_get_string(v);
				n++;
			}
		}
		/* the limits of today's config do not matter for finding yesterday's keys */
		struct weir_config unlimited = ctx->cfg;

		unlimited.limits.max_value_bytes = 16 << 20;
		unlimited.limits.max_rules = 1 << 20;
		if (!weir_spec_parse(&unlimited, kv, n, &spec, &e)) {
			if (!weir_policy_compile(&spec.policy, &comp, &e)) {
				policy_delete(ctx, ep, &comp, comp.n);
				weir_compiled_free(&comp);
			}
			weir_spec_free(&spec);
		}
		if (e.code)
			pr_warn("endpoint %u: stale policy entries remain until gc: %s", ep, e.msg);
	}
	weir_ep_stats_zero(ctx, ep);
	weir_ep_drops_clear(ctx, ep);
	id_free(ctx, ep);
	return 0;
}

int weir_endpoint_detach(struct weir_ctx *ctx, const char *id, struct weir_error *err)
{
	_cleanup_close_ int lock = registry_lock(ctx, err);
	_cleanup_json_ struct json_object *rec = NULL;
	_cleanup_free_ struct weir_ep_stats *final = calloc(1, sizeof(*final));
	bool have_final;
	int r;

	if (lock < 0)
		return lock;
	r = weir_record_load(ctx, id, &rec, err);
	if (r == -ENOENT) {
		pr_debug("%s: not a weir endpoint", id);
		return 0;
	}
	if (r)
		return r;
	if (strcmp(weir_json_str(rec, "state") ?: "", "running"))
		return 0;
	if (!final)
		return weir_error_set(err, -ENOMEM, "out of memory");
	r = endpoint_teardown(ctx, rec, final, &have_final);
	if (r)
		return weir_error_set(err, r, "%s: the record is damaged", id);
	json_object_object_add(rec, "state", json_object_new_string("stopped"));
	json_object_object_add(rec, "stopped_ms", json_object_new_uint64(weir_now_ms()));
	if (have_final)
		json_object_object_add(rec, "final", weir_ep_stats_to_json(final));
	r = weir_record_store(ctx, id, rec, err);
	if (!r)
		pr_info("%s: endpoint %llu detached", id,
			(unsigned long long)weir_json_u64(rec, "endpoint"));
	return r;
}
