// SPDX-License-Identifier: Apache-2.0
/*
 * NRI lifecycle events to libweir:
 *   RunPodSandbox    remember the pod, check its annotations (a bad one refuses the pod)
 *   CreateContainer  resolve pod + container annotations and check them (refuses the container)
 *   StartContainer   attach the endpoint to the container's cgroup (pid and cgroup are known,
 *                    the workload has not started yet)
 *   StopContainer    detach (final counters are kept by libweir)
 *   RemoveContainer  detach again if StopContainer was missed
 *   RemovePodSandbox forget the pod
 *   Synchronize      remember every pod, (re)attach running containers with weir annotations
 *                    (containers started while weir-nri was away), detach endpoints weir-nri
 *                    made for containers the runtime no longer runs
 *
 * While weir-nri is not connected the runtime does not wait for it: a container started then
 * runs unenforced until the next Synchronize attaches it. Containers attached before keep
 * their enforcement throughout (links and maps are pinned).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "ctx.h"
#include "handlers.h"
#include "nri_log.h"

struct pod_rec {
	char *id;
	char *uid;
	char *name;
	char *ns;
	struct weir_kv *ann; /* keys and values owned */
	size_t nann;
	unsigned gen; /* last Synchronize that listed it */
};

struct weir_nri {
	struct weir_ctx *ctx;
	char cgroot[PATH_MAX]; /* cgroup v2 mount point, "" when there is none */
	struct pod_rec *pods;
	size_t npods, cap;
	unsigned gen;
	int in_sync;
	char **live; /* containers the runtime listed in the current Synchronize */
	size_t nlive, live_cap;
};

static void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ __attribute__((cleanup(freep)))

static void pod_rec_clear(struct pod_rec *r)
{
	for (size_t i = 0; i < r->nann; i++) {
		free((char *)r->ann[i].key);
		free((char *)r->ann[i].value);
	}
	free(r->ann);
	free(r->id);
	free(r->uid);
	free(r->name);
	free(r->ns);
	memset(r, 0, sizeof(*r));
}

static void live_clear(struct weir_nri *w)
{
	for (size_t i = 0; i < w->nlive; i++)
		free(w->live[i]);
	free(w->live);
	w->live = NULL;
	w->nlive = w->live_cap = 0;
}

static int live_add(struct weir_nri *w, const char *id)
{
	if (w->nlive == w->live_cap) {
		size_t ncap = w->live_cap ? w->live_cap * 2 : 64;
		char **nl = realloc(w->live, ncap * sizeof(*nl));

		if (!nl)
			return -ENOMEM;
		w->live = nl;
		w->live_cap = ncap;
	}
	w->live[w->nlive] = strdup(id);
	if (!w->live[w->nlive])
		return -ENOMEM;
	w->nlive++;
	return 0;
}

static int live_has(const struct weir_nri *w, const char *id)
{
	for (size_t i = 0; i < w->nlive; i++)
		if (!strcmp(w->live[i], id))
			return 1;
	return 0;
}

int weir_nri_new(struct weir_nri **out, struct weir_ctx *ctx)
{
	struct weir_nri *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->ctx = ctx;
	if (weir_cgroup2_mount(w->cgroot, sizeof(w->cgroot))) {
		w->cgroot[0] = '\0';
		nri_warn("no cgroup v2 mount found: containers are attached by their pid's cgroup "
			 "only");
	}
	*out = w;
	return 0;
}

void weir_nri_free(struct weir_nri *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->npods; i++)
		pod_rec_clear(&w->pods[i]);
	free(w->pods);
	live_clear(w);
	free(w);
}

static struct pod_rec *pod_find(struct weir_nri *w, const char *id)
{
	if (!id || !*id)
		return NULL;
	for (size_t i = 0; i < w->npods; i++)
		if (!strcmp(w->pods[i].id, id))
			return &w->pods[i];
	return NULL;
}

static void pod_forget(struct weir_nri *w, const char *id)
{
	struct pod_rec *r = pod_find(w, id);

	if (!r)
		return;
	pod_rec_clear(r);
	*r = w->pods[--w->npods];
}

/* Remember (or refresh) a pod. A pod without annotations does not overwrite known ones: the
 * runtime strips pods in some events. */
static int pod_remember(struct weir_nri *w, const Nri__PodSandbox *pod)
{
	struct pod_rec nr = {0}, *r;

	if (!pod->id || !*pod->id)
		return 0;
	r = pod_find(w, pod->id);
	if (r && !pod->n_annotations) {
		r->gen = w->gen;
		return 0;
	}
	nr.id = strdup(pod->id);
	nr.uid = strdup(pod->uid ? pod->uid : "");
	nr.name = strdup(pod->name ? pod->name : "");
	nr.ns = strdup(pod->namespace_ ? pod->namespace_ : "");
	nr.ann = calloc(pod->n_annotations + 1, sizeof(*nr.ann));
	nr.gen = w->gen;
	if (!nr.id || !nr.uid || !nr.name || !nr.ns || !nr.ann)
		goto oom;
	for (size_t i = 0; i < pod->n_annotations; i++) {
		const char *k = pod->annotations[i]->key, *v = pod->annotations[i]->value;

		nr.ann[nr.nann].key = strdup(k ? k : "");
		nr.ann[nr.nann].value = strdup(v ? v : "");
		nr.nann++;
		if (!nr.ann[nr.nann - 1].key || !nr.ann[nr.nann - 1].value)
			goto oom;
	}
	if (r) {
		pod_rec_clear(r);
		*r = nr;
		return 0;
	}
	if (w->npods == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 16;
		struct pod_rec *np = realloc(w->pods, ncap * sizeof(*np));

		if (!np)
			goto oom;
		w->pods = np;
		w->cap = ncap;
	}
	w->pods[w->npods++] = nr;
	return 0;
oom:
	pod_rec_clear(&nr);
	return -ENOMEM;
}

/* Pod annotations as weir_kv: the event's if it carries any, else the remembered ones. */
static int pod_kv(struct weir_nri *w, const Nri__PodSandbox *pod, struct weir_kv **kv, size_t *n,
		  const struct weir_kv **view)
{
	struct pod_rec *r;
	struct weir_kv *a;

	*kv = NULL;
	*n = 0;
	*view = NULL;
	if (pod->n_annotations) {
		a = calloc(pod->n_annotations, sizeof(*a));
		if (!a)
			return -ENOMEM;
		for (size_t i = 0; i < pod->n_annotations; i++) {
			a[i].key = pod->annotations[i]->key;
			a[i].value = pod->annotations[i]->value;
		}
		*kv = a;
		*view = a;
		*n = pod->n_annotations;
		return 0;
	}
	r = pod_find(w, pod->id);
	if (r) {
		*view = r->ann;
		*n = r->nann;
	}
	return 0;
}

static int ctr_kv(const Nri__Container *ctr, struct weir_kv **kv)
{
	struct weir_kv *a;

	*kv = NULL;
	if (!ctr->n_annotations)
		return 0;
	a = calloc(ctr->n_annotations, sizeof(*a));
	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < ctr->n_annotations; i++) {
		a[i].key = ctr->annotations[i]->key;
		a[i].value = ctr->annotations[i]->value;
	}
	*kv = a;
	return 0;
}

/* Effective weir annotations of a container (free *out). */
static int resolve(struct weir_nri *w, const Nri__PodSandbox *pod, const Nri__Container *ctr,
		   struct weir_kv **out, size_t *nout, struct weir_error *err)
{
	_cleanup_free_ struct weir_kv *pkv = NULL, *ckv = NULL;
	const struct weir_kv *pview;
	size_t npod;
	int r;

	r = pod_kv(w, pod, &pkv, &npod, &pview);
	if (!r && ctr)
		r = ctr_kv(ctr, &ckv);
	if (r)
		return weir_error_set(err, r, "weir: out of memory");
	return weir_annotations_resolve(pview, npod, ckv, ctr ? ctr->n_annotations : 0,
					ctr ? ctr->name : NULL, out, nout, err);
}

/* The annotation a resolved entry came from: "egress.weir.io/container.app" for the
 * "egress.weir.io" it resolved to (resolution keeps the inputs' value strings). */
static const char *origin_key(const struct weir_kv *e, const struct weir_kv *pod, size_t npod,
			      const struct weir_kv *ctr, size_t nctr)
{
	for (size_t i = 0; i < nctr; i++)
		if (ctr[i].value == e->value)
			return ctr[i].key;
	for (size_t i = 0; i < npod; i++)
		if (pod[i].value == e->value)
			return pod[i].key;
	return e->key;
}

/* Resolve and validate a pod's (ctr NULL) or a container's effective weir annotations. A bad
 * one is reported under the key the user wrote. */
static int check_effective(struct weir_nri *w, const Nri__PodSandbox *pod,
			   const Nri__Container *ctr, struct weir_error *err)
{
	_cleanup_free_ struct weir_kv *pkv = NULL, *ckv = NULL, *kv = NULL;
	const struct weir_kv *pview;
	size_t npod, nctr = ctr ? ctr->n_annotations : 0, n = 0;
	int r;

	r = pod_kv(w, pod, &pkv, &npod, &pview);
	if (!r && ctr)
		r = ctr_kv(ctr, &ckv);
	if (r)
		return weir_error_set(err, r, "weir: out of memory");
	r = weir_annotations_resolve(pview, npod, ckv, nctr, ctr ? ctr->name : NULL, &kv, &n, err);
	if (r || !n)
		return r;
	r = weir_annotations_check(w->ctx, kv, n, err);
	for (size_t i = 0; r && i < n; i++) {
		size_t klen = strlen(kv[i].key);
		const char *orig;
		char msg[WEIR_ERROR_MAX];

		if (strncmp(err->msg, kv[i].key, klen) || err->msg[klen] != ':')
			continue;
		orig = origin_key(&kv[i], pview, npod, ckv, nctr);
		if (strcmp(orig, kv[i].key)) {
			snprintf(msg, sizeof(msg), "%s%s", orig, err->msg + klen);
			memcpy(err->msg, msg, sizeof(msg));
		}
		break;
	}
	return r;
}

static int attach(struct weir_nri *w, const Nri__PodSandbox *pod, const Nri__Container *ctr,
		  struct weir_error *err)
{
	_cleanup_free_ struct weir_kv *kv = NULL;
	struct pod_rec *r = pod_find(w, pod->id && *pod->id ? pod->id : ctr->pod_sandbox_id);
	char cg[4096];
	struct weir_container c = {0};
	size_t n = 0;
	int rc;

	rc = resolve(w, pod, ctr, &kv, &n, err);
	if (rc)
		return weir_error_prefix(err, "container %s", ctr->name);
	if (!n) {
		nri_debug("container %s (%s): no weir annotations, nothing to attach", ctr->id,
			  ctr->name);
		return 0;
	}
	c.id = ctr->id;
	c.name = ctr->name;
	c.pod_uid = pod->uid && *pod->uid ? pod->uid : r ? r->uid : NULL;
	c.pod_name = pod->name && *pod->name ? pod->name : r ? r->name : NULL;
	c.pod_namespace = pod->namespace_ && *pod->namespace_ ? pod->namespace_ : r ? r->ns : NULL;
	c.source = "nri";
	c.pid = (pid_t)ctr->pid;
	c.annotations = kv;
	c.n_annotations = n;
	/* The pid's own cgroup is the truth whatever the cgroup driver. cgroupsPath is the
	 * fallback: when the event carries no pid, or when weir-nri runs in a cgroup namespace of
	 * its own (a DaemonSet), where /proc/<pid>/cgroup shows "/.." paths. */
	if (c.pid > 0 && !weir_cgroup_of_pid(c.pid, cg, sizeof(cg)))
		c.cgroup_path = cg;
	else if (ctr->linux && w->cgroot[0] &&
		 !weir_nri_cgroup_dir(ctr->linux->cgroups_path, w->cgroot, cg, sizeof(cg)) &&
		 access(cg, F_OK) == 0)
		c.cgroup_path = cg;
	if (!c.pid && !c.cgroup_path)
		return weir_error_set(
			err, -ESRCH,
			"weir: container %s (%s): neither a pid nor a cgroup to attach "
			"to (cgroupsPath \"%s\")",
			ctr->name, ctr->id, ctr->linux ? ctr->linux->cgroups_path : "");
	rc = weir_endpoint_attach(w->ctx, &c, err);
	if (rc)
		return rc;
	nri_info("attached container %s (%s) of pod %s/%s, pid %d, cgroup %s", ctr->id, ctr->name,
		 c.pod_namespace ? c.pod_namespace : "", c.pod_name ? c.pod_name : "", (int)c.pid,
		 c.cgroup_path ? c.cgroup_path : "(from pid)");
	return 0;
}

static int detach(struct weir_nri *w, const Nri__Container *ctr, const char *when)
{
	struct weir_error err = {0};
	int rc;

	struct json_object *rec = NULL;

	if (!ctr->id || !*ctr->id)
		return 0;
	/* most containers are no endpoint, and StopContainer already detached at RemoveContainer */
	rc = weir_record_load(w->ctx, ctr->id, &rec, &err);
	if (!rc) {
		rc = strcmp(weir_json_str(rec, "state") ?: "", "running") ? -ENOENT : 0;
		json_object_put(rec);
	}
	if (rc == -ENOENT)
		return 0;
	rc = weir_endpoint_detach(w->ctx, ctr->id, &err);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		nri_warn("%s: detach container %s (%s): %s", when, ctr->id, ctr->name,
			 err.msg[0] ? err.msg : strerror(-rc));
	else
		nri_info("detached container %s (%s)", ctr->id, ctr->name);
	/* a failed detach must not fail the runtime's stop or remove: weir gc finishes it */
	return 0;
}

static int h_run_pod(void *u, const Nri__PodSandbox *pod, struct weir_error *err)
{
	struct weir_nri *w = u;
	int rc;

	rc = pod_remember(w, pod);
	if (rc)
		return weir_error_set(err, rc, "weir: out of memory");
	rc = check_effective(w, pod, NULL, err);
	if (rc) {
		weir_error_prefix(err, "weir: pod %s/%s", pod->namespace_, pod->name);
		pod_forget(w, pod->id);
	}
	return rc;
}

static int h_stop_pod(void *u, const Nri__PodSandbox *pod, struct weir_error *err)
{
	/* the pod's containers got StopContainer first; nothing is attached to the sandbox */
	nri_debug("pod %s (%s/%s) stopped", pod->id, pod->namespace_, pod->name);
	return 0;
}

static int h_remove_pod(void *u, const Nri__PodSandbox *pod, struct weir_error *err)
{
	pod_forget(u, pod->id);
	return 0;
}

static int h_create_container(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
			      struct weir_error *err)
{
	struct weir_nri *w = u;
	int rc;

	if (pod->n_annotations)
		pod_remember(w, pod);
	rc = check_effective(w, pod, ctr, err);
	if (rc)
		weir_error_prefix(err, "weir: container %s in pod %s/%s", ctr->name,
				  pod->namespace_, pod->name);
	return rc;
}

static int h_start_container(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
			     struct weir_error *err)
{
	struct weir_nri *w = u;
	int rc;

	rc = attach(w, pod, ctr, err);
	if (rc && strncmp(err->msg, "weir:", 5))
		weir_error_prefix(err, "weir: container %s in pod %s/%s", ctr->name,
				  pod->namespace_, pod->name);
	return rc;
}

static int h_stop_container(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
			    struct weir_error *err)
{
	return detach(u, ctr, "StopContainer");
}

static int h_remove_container(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
			      struct weir_error *err)
{
	return detach(u, ctr, "RemoveContainer");
}

struct sync_gc {
	struct weir_nri *w;
	unsigned detached, failed;
};

/* An endpoint weir-nri made for a container the runtime no longer runs (it stopped or was
 * removed while weir-nri was away): detach it. Endpoints of other sources are not ours. */
static int sync_gc_one(struct weir_ctx *ctx, const char *id, struct json_object *rec, void *arg)
{
	struct sync_gc *g = arg;
	struct weir_error e = {0};

	if (strcmp(weir_json_str(rec, "source") ?: "", "nri") ||
	    strcmp(weir_json_str(rec, "state") ?: "", "running") || live_has(g->w, id))
		return 0;
	if (weir_endpoint_detach(ctx, id, &e)) {
		g->failed++;
		nri_warn("synchronize: detach vanished container %s: %s", id,
			 e.msg[0] ? e.msg : "failed");
	} else {
		g->detached++;
		nri_info("synchronize: detached container %s: the runtime no longer runs it", id);
	}
	return 0;
}

static int h_synchronize(void *u, Nri__PodSandbox *const *pods, size_t npods,
			 Nri__Container *const *ctrs, size_t nctrs, int more,
			 struct weir_error *err)
{
	struct weir_nri *w = u;
	size_t attached = 0, failed = 0;

	if (!w->in_sync) {
		w->gen++;
		live_clear(w);
	}
	w->in_sync = more;
	for (size_t i = 0; i < npods; i++)
		if (pod_remember(w, pods[i]))
			return weir_error_set(err, -ENOMEM, "weir: out of memory");
	for (size_t i = 0; i < nctrs; i++) {
		const Nri__Container *c = ctrs[i];
		struct pod_rec *r = pod_find(w, c->pod_sandbox_id);
		Nri__PodSandbox pod = NRI__PKG__API__V1ALPHA1__POD_SANDBOX__INIT;
		struct weir_error e = {0};

		if (c->state != NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_STOPPED &&
		    c->id && *c->id && live_add(w, c->id))
			return weir_error_set(err, -ENOMEM, "weir: out of memory");
		if (c->state != NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_RUNNING)
			continue;
		for (size_t j = 0; j < npods; j++)
			if (!strcmp(pods[j]->id, c->pod_sandbox_id))
				pod = *pods[j];
		if (!pod.id[0] && r)
			pod.id = r->id; /* annotations come from the record */
		if (attach(w, &pod, c, &e)) {
			failed++;
			nri_warn("synchronize: container %s (%s): %s", c->id, c->name, e.msg);
		} else {
			attached++;
		}
	}
	if (!more) {
		struct sync_gc g = {.w = w};

		weir_records_foreach(w->ctx, sync_gc_one, &g);
		live_clear(w);
		if (g.detached || g.failed)
			nri_info("synchronize: %u endpoints of vanished containers detached, %u "
				 "failed",
				 g.detached, g.failed);
		/* pods removed while we were away */
		for (size_t i = 0; i < w->npods;) {
			if (w->pods[i].gen != w->gen) {
				nri_debug("forgetting pod %s: gone from the runtime",
					  w->pods[i].id);
				pod_forget(w, w->pods[i].id);
			} else {
				i++;
			}
		}
	}
	nri_info("synchronize: %zu pods, %zu containers, %zu attach calls ok, %zu failed%s", npods,
		 nctrs, attached, failed, more ? " (more to come)" : "");
	/* a container that cannot be (re)attached is logged; refusing the sync would only get
	 * weir dropped by the runtime and stop enforcement for new containers too */
	return 0;
}

static void h_disconnected(void *u)
{
	struct weir_nri *w = u;

	w->in_sync = 0;
}

const struct nri_handlers weir_nri_handlers = {
	.synchronize = h_synchronize,
	.run_pod = h_run_pod,
	.stop_pod = h_stop_pod,
	.remove_pod = h_remove_pod,
	.create_container = h_create_container,
	.start_container = h_start_container,
	.stop_container = h_stop_container,
	.remove_container = h_remove_container,
	.disconnected = h_disconnected,
};
