// SPDX-License-Identifier: Apache-2.0
/*
 * NRI lifecycle events to libweir:
 *   Configure        load the node datapath if startup could not (see weir_nri_load)
 *   RunPodSandbox    remember the pod, check its annotations (a bad one refuses the pod)
 *   CreateContainer  resolve pod + container annotations and check them (refuses the container)
 *   StartContainer   attach the endpoint to the container's cgroup (pid and cgroup are known,
 *                    the workload has not started yet)
 *   StopContainer    detach (final counters are kept by libweir)
 *   RemoveContainer  detach again if StopContainer was missed
 *   RemovePodSandbox forget the pod
 *   Synchronize      remember every pod and the running containers of every chunk; after the
 *                    last one, (re)attach running containers with weir annotations (containers
 *                    started while weir-nri was away), detach endpoints weir-nri made for
 *                    containers the runtime no longer runs, forget pods it no longer lists
 *
 * While weir-nri is not connected the runtime does not wait for it: a container started then
 * runs unenforced until the next Synchronize attaches it. Containers attached before keep
 * their enforcement throughout (links and maps are pinned).
 *
 * Pods and the containers a Synchronize lists are looked up by id in hash tables: a node's
 * whole state arrives in one Synchronize, within the runtime's request timeout.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "handlers.h"
#include "idmap.h"
#include "nri_log.h"
#include "shaping.h"
#include "util.h"

/* ---- annotations --------------------------------------------------------------------- */

/*
 * Copies of the annotations that may concern weir, whole: a protobuf string may hold NUL
 * bytes, and each copy keeps its length. Keys that do not mention weir.io are never read, so
 * they are not copied (a remembered pod stays small).
 */
struct ann {
	char *key, *value; /* NUL-terminated at klen and vlen */
	size_t klen, vlen;
};

struct anns {
	size_t n;
	struct ann e[]; /* then the strings: one allocation, one free() */
};

/*
 * Whether a key may concern weir: it mentions weir.io, or it is a Kubernetes bandwidth key
 * weir honours (kubernetes.io/egress-bandwidth, with an NRI suffix or none; a NUL in it makes
 * it no key of weir's).
 */
static bool mentions_weir(const ProtobufCBinaryData *k)
{
	static const char *const bw[] = {WEIR_KEY_EGRESS_BW, WEIR_KEY_INGRESS_BW};

	if (k->len >= 7 && memmem(k->data, k->len, "weir.io", 7))
		return true;
	for (size_t i = 0; i < sizeof(bw) / sizeof(bw[0]); i++) {
		size_t n = strlen(bw[i]);

		if (k->len >= n && !memcmp(k->data, bw[i], n) &&
		    (k->len == n || k->data[n] == '/') && !memchr(k->data, '\0', k->len))
			return true;
	}
	return false;
}

static char *copy_bytes(char **p, const ProtobufCBinaryData *d)
{
	char *s = *p;

	if (d->len)
		memcpy(s, d->data, d->len);
	s[d->len] = '\0';
	*p += d->len + 1;
	return s;
}

static int anns_copy(Nri__TextEntry *const *in, size_t n, struct anns **out)
{
	size_t keep = 0, bytes = 0;
	struct anns *a;
	char *p;

	*out = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!mentions_weir(&in[i]->key))
			continue;
		keep++;
		bytes += in[i]->key.len + in[i]->value.len + 2;
	}
	if (!keep)
		return 0;
	a = malloc(sizeof(*a) + keep * sizeof(a->e[0]) + bytes);
	if (!a)
		return -ENOMEM;
	p = (char *)&a->e[keep];
	a->n = 0;
	for (size_t i = 0; i < n; i++) {
		struct ann *e = &a->e[a->n];

		if (!mentions_weir(&in[i]->key))
			continue;
		e->klen = in[i]->key.len;
		e->key = copy_bytes(&p, &in[i]->key);
		e->vlen = in[i]->value.len;
		e->value = copy_bytes(&p, &in[i]->value);
		a->n++;
	}
	*out = a;
	return 0;
}

/* a's annotations as C strings (kv has room for a->n), each checked first to read whole. */
static int anns_view(const struct anns *a, struct weir_kv *kv, struct weir_error *err)
{
	int r;

	for (size_t i = 0; a && i < a->n; i++) {
		r = weir_annotation_check_raw(a->e[i].key, a->e[i].klen, a->e[i].value,
					      a->e[i].vlen, err);
		if (r)
			return r;
		kv[i].key = a->e[i].key;
		kv[i].value = a->e[i].value;
	}
	return 0;
}

/* ---- pods and containers as the handlers see them ---------------------------------------- */

struct pod_rec {
	char *id, *uid, *name, *ns;
	struct anns *ann;
	unsigned gen; /* the last Synchronize that listed it */
};

struct pod_view {
	const char *id, *uid, *name, *ns; /* never NULL, "" when unknown */
	const struct anns *ann;
};

struct ctr_view {
	const char *id, *name, *pod_id; /* never NULL */
	const char *cgroups_path;	/* may be NULL */
	uint32_t pid;
	const struct anns *ann;
};

/* A running container from a Synchronize chunk, kept until the last chunk. */
struct sync_ctr {
	char *id, *name, *pod_id, *cgroups_path;
	uint32_t pid;
	struct anns *ann;
};

struct weir_nri {
	const struct weir_nri_ops *ops;
	void *b;
	char cgroot[PATH_MAX]; /* cgroup v2 mount point, "" when there is none */
	bool loaded;
	struct idmap pods; /* pod id -> struct pod_rec */
	unsigned gen;
	/* the Synchronize in progress (chunks until one with more=false) */
	bool in_sync;
	struct idmap live; /* containers the runtime listed that have not stopped */
	struct sync_ctr *pending;
	size_t npending, pending_cap;
};

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

static const char *first_set(const char *a, const char *b)
{
	return a && *a ? a : or_empty(b);
}

static const char *or_null(const char *s)
{
	return s && *s ? s : NULL;
}

static void pod_rec_free(void *p)
{
	struct pod_rec *r = p;

	if (!r)
		return;
	free(r->id);
	free(r->uid);
	free(r->name);
	free(r->ns);
	free(r->ann);
	free(r);
}

static void pod_forget(struct weir_nri *w, const char *id)
{
	if (id && *id)
		pod_rec_free(idmap_take(&w->pods, id));
}

/* Remember (or refresh) a pod. A pod without annotations does not overwrite known ones: the
 * runtime strips pods in some events. */
static int pod_remember(struct weir_nri *w, const Nri__PodSandbox *pod)
{
	struct pod_rec *r, *nr;
	void *old;

	if (!pod->id || !*pod->id)
		return 0;
	r = idmap_get(&w->pods, pod->id);
	if (r && !pod->n_annotations) {
		r->gen = w->gen;
		return 0;
	}
	nr = calloc(1, sizeof(*nr));
	if (!nr)
		return -ENOMEM;
	nr->id = strdup(pod->id);
	nr->uid = strdup(or_empty(pod->uid));
	nr->name = strdup(or_empty(pod->name));
	nr->ns = strdup(or_empty(pod->namespace_));
	nr->gen = w->gen;
	if (!nr->id || !nr->uid || !nr->name || !nr->ns ||
	    anns_copy(pod->annotations, pod->n_annotations, &nr->ann) ||
	    idmap_put(&w->pods, pod->id, nr, &old)) {
		pod_rec_free(nr);
		return -ENOMEM;
	}
	pod_rec_free(old);
	return 0;
}

static void pod_view_of_rec(const struct pod_rec *r, const char *id, struct pod_view *pv)
{
	pv->id = r ? r->id : or_empty(id);
	pv->uid = r ? r->uid : "";
	pv->name = r ? r->name : "";
	pv->ns = r ? r->ns : "";
	pv->ann = r ? r->ann : NULL;
}

/*
 * The pod of an event: its own fields, and the remembered pod's where the event leaves them
 * out; its annotations when it carries any (copied to *own, which the caller frees), else the
 * remembered ones. id: the pod id to use when the event's pod has none.
 */
static int pod_view_of(struct weir_nri *w, const Nri__PodSandbox *pod, const char *id,
		       struct pod_view *pv, struct anns **own)
{
	const struct pod_rec *r;

	id = first_set(pod->id, id);
	r = *id ? idmap_get(&w->pods, id) : NULL;
	pod_view_of_rec(r, id, pv);
	pv->uid = first_set(pod->uid, pv->uid);
	pv->name = first_set(pod->name, pv->name);
	pv->ns = first_set(pod->namespace_, pv->ns);
	*own = NULL;
	if (!pod->n_annotations)
		return 0;
	pv->ann = NULL;
	if (anns_copy(pod->annotations, pod->n_annotations, own))
		return -ENOMEM;
	pv->ann = *own;
	return 0;
}

static int ctr_view_of(const Nri__Container *c, struct ctr_view *cv, struct anns **own)
{
	cv->id = or_empty(c->id);
	cv->name = or_empty(c->name);
	cv->pod_id = or_empty(c->pod_sandbox_id);
	cv->cgroups_path = c->linux ? c->linux->cgroups_path : NULL;
	cv->pid = c->pid;
	cv->ann = NULL;
	if (anns_copy(c->annotations, c->n_annotations, own))
		return -ENOMEM;
	cv->ann = *own;
	return 0;
}

/* ---- effective annotations ------------------------------------------------------------ */

struct effective {
	struct weir_kv *in; /* the pod's annotations, then the container's */
	size_t npod, nctr;
	struct weir_kv *kv; /* resolved: plain weir keys, pointing at the values of `in` */
	size_t n;
};

static void effective_free(struct effective *e)
{
	free(e->in);
	free(e->kv);
	memset(e, 0, sizeof(*e));
}

/* The weir annotations in force for a pod (cv NULL) or for one of its containers. */
static int effective_get(const struct pod_view *pv, const struct ctr_view *cv, struct effective *e,
			 struct weir_error *err)
{
	const struct anns *ca = cv ? cv->ann : NULL;
	int r;

	memset(e, 0, sizeof(*e));
	e->npod = pv->ann ? pv->ann->n : 0;
	e->nctr = ca ? ca->n : 0;
	e->in = calloc(e->npod + e->nctr + 1, sizeof(*e->in));
	if (!e->in)
		return weir_error_set(err, -ENOMEM, "out of memory");
	r = anns_view(pv->ann, e->in, err);
	if (!r)
		r = anns_view(ca, e->in + e->npod, err);
	if (!r)
		r = weir_annotations_resolve(e->in, e->npod, e->in + e->npod, e->nctr,
					     cv ? cv->name : NULL, &e->kv, &e->n, err);
	if (r == -ENOMEM)
		weir_error_set(err, r, "out of memory");
	return r;
}

/*
 * libweir names the plain key a value was resolved to ("egress.weir.io"); the user wrote
 * another one ("egress.weir.io/container.app"). Resolution keeps the inputs' value strings,
 * so the value finds the key it came from.
 */
static void name_key_as_written(const struct effective *e, struct weir_error *err)
{
	for (size_t i = 0; err->key[0] && i < e->n; i++) {
		if (strcmp(e->kv[i].key, err->key))
			continue;
		for (size_t j = 0; j < e->npod + e->nctr; j++) {
			if (e->in[j].value == e->kv[i].value) {
				weir_error_rename_key(err, e->in[j].key);
				return;
			}
		}
	}
}

static int check_effective(struct weir_nri *w, const struct pod_view *pv, const struct ctr_view *cv,
			   struct weir_error *err)
{
	struct effective e;
	int r;

	r = effective_get(pv, cv, &e, err);
	if (!r && e.n) {
		r = w->ops->check(w->b, or_null(pv->ns), e.kv, e.n, err);
		if (r)
			name_key_as_written(&e, err);
	}
	effective_free(&e);
	return r;
}

/* ---- attach and detach ---------------------------------------------------------------- */

/*
 * 1 when the container was attached (or already was), 0 when it asks nothing of weir. started:
 * its workload runs already (Synchronize), so its guards apply at once.
 */
static int attach(struct weir_nri *w, const struct pod_view *pv, const struct ctr_view *cv,
		  bool started, struct weir_error *err)
{
	struct weir_container c = {0};
	struct effective e;
	char cg[PATH_MAX];
	int r;

	r = effective_get(pv, cv, &e, err);
	if (r || (!e.n && !w->ops->baseline(w->b))) {
		if (!r)
			nri_debug("container %s (%s): no weir annotations, nothing to attach",
				  WEIR_QN(cv->id), WEIR_QN(cv->name));
		effective_free(&e);
		return r;
	}
	c.id = cv->id;
	c.name = or_null(cv->name);
	c.pod_uid = or_null(pv->uid);
	c.pod_name = or_null(pv->name);
	c.pod_namespace = or_null(pv->ns);
	c.source = "nri";
	c.pid = (pid_t)cv->pid;
	c.started = started;
	c.annotations = e.kv;
	c.n_annotations = e.n;
	/* The pid's own cgroup is the truth whatever the cgroup driver. cgroupsPath is the
	 * fallback: when the event carries no pid, or when weir-nri runs in a cgroup namespace of
	 * its own (a DaemonSet), where /proc/<pid>/cgroup shows "/.." paths. */
	if (c.pid > 0 && !weir_cgroup_of_pid(c.pid, cg, sizeof(cg)))
		c.cgroup_path = cg;
	else if (cv->cgroups_path && w->cgroot[0] &&
		 !weir_nri_cgroup_dir(cv->cgroups_path, w->cgroot, cg, sizeof(cg)) &&
		 access(cg, F_OK) == 0)
		c.cgroup_path = cg;
	if (!c.pid && !c.cgroup_path) {
		r = weir_error_set(err, -ESRCH,
				   "container id %s: neither a pid nor a cgroup to attach to "
				   "(cgroupsPath %s)",
				   WEIR_QN(cv->id), WEIR_Q(cv->cgroups_path));
	} else {
		r = w->ops->attach(w->b, &c, err);
		if (r)
			name_key_as_written(&e, err);
	}
	effective_free(&e);
	if (r)
		return r;
	nri_info("attached container %s (%s) of pod %s/%s, pid %d, cgroup %s", WEIR_QN(cv->id),
		 WEIR_QN(cv->name), WEIR_QN(pv->ns), WEIR_QN(pv->name), (int)c.pid,
		 c.cgroup_path ? c.cgroup_path : "(from pid)");
	return 1;
}

static int detach(struct weir_nri *w, const char *id, const char *when)
{
	struct weir_error err = {0};
	int rc;

	if (!id || !*id)
		return 0;
	/* most containers are no endpoint, and StopContainer already detached at RemoveContainer;
	 * an unreadable record is left to detach, which reports it */
	if (!w->ops->running(w->b, id))
		return 0;
	rc = w->ops->detach(w->b, id, &err);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		nri_warn("%s: detach container %s: %s", when, WEIR_QN(id),
			 err.msg[0] ? err.msg : strerror(-rc));
	else
		nri_info("%s: detached container %s", when, WEIR_QN(id));
	/* a failed detach must not fail the runtime's stop or remove: weir gc finishes it */
	return 0;
}

/* ---- the handlers --------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int weir_nri_load(struct weir_nri *w)
{
	struct weir_error err = {0};
	uint64_t t0 = now_ms();
	int r;

	r = w->ops->load(w->b, &err);
	if (r) {
		nri_error("cannot load the node datapath: %s (each container start tries again)",
			  err.msg[0] ? err.msg : strerror(-r));
		return r;
	}
	w->loaded = true;
	nri_info("node datapath ready (%" PRIu64 " ms)", now_ms() - t0);
	return 0;
}

static void h_configured(void *u, const char *runtime_name, const char *runtime_version)
{
	struct weir_nri *w = u;

	if (!w->loaded)
		weir_nri_load(w);
}

static int h_run_pod(void *u, const Nri__PodSandbox *pod, struct weir_error *err)
{
	struct weir_nri *w = u;
	_cleanup_free_ struct anns *own = NULL;
	struct pod_view pv;
	int rc;

	rc = pod_remember(w, pod);
	if (!rc)
		rc = pod_view_of(w, pod, NULL, &pv, &own);
	if (rc)
		return weir_error_set(err, rc, "weir: out of memory");
	rc = check_effective(w, &pv, NULL, err);
	if (rc) {
		weir_error_prefix(err, "weir: pod %s/%s", WEIR_QN(pv.ns), WEIR_QN(pv.name));
		pod_forget(w, pod->id);
	}
	return rc;
}

static int h_stop_pod(void *u, const Nri__PodSandbox *pod, struct weir_error *err)
{
	/* the pod's containers got StopContainer first; nothing is attached to the sandbox */
	nri_debug("pod %s (%s/%s) stopped", WEIR_QN(pod->id), WEIR_QN(pod->namespace_),
		  WEIR_QN(pod->name));
	return 0;
}

static int h_remove_pod(void *u, const Nri__PodSandbox *pod, struct weir_error *err)
{
	pod_forget(u, pod->id);
	return 0;
}

/* The views of a container event; on failure err is set. */
static int ctr_event(struct weir_nri *w, const Nri__PodSandbox *pod, const Nri__Container *ctr,
		     struct pod_view *pv, struct anns **pod_own, struct ctr_view *cv,
		     struct anns **ctr_own, struct weir_error *err)
{
	if (pod_view_of(w, pod, ctr->pod_sandbox_id, pv, pod_own) || ctr_view_of(ctr, cv, ctr_own))
		return weir_error_set(err, -ENOMEM, "weir: out of memory");
	return 0;
}

static int refuse_ctr(struct weir_error *err, int rc, const struct pod_view *pv,
		      const struct ctr_view *cv)
{
	weir_error_prefix(err, "weir: container %s in pod %s/%s", WEIR_QN(cv->name),
			  WEIR_QN(pv->ns), WEIR_QN(pv->name));
	return rc;
}

static int h_create_container(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
			      struct weir_error *err)
{
	struct weir_nri *w = u;
	_cleanup_free_ struct anns *pod_own = NULL, *ctr_own = NULL;
	struct pod_view pv;
	struct ctr_view cv;
	int rc;

	if (pod->n_annotations && pod_remember(w, pod))
		return weir_error_set(err, -ENOMEM, "weir: out of memory");
	rc = ctr_event(w, pod, ctr, &pv, &pod_own, &cv, &ctr_own, err);
	if (rc)
		return rc;
	rc = check_effective(w, &pv, &cv, err);
	return rc ? refuse_ctr(err, rc, &pv, &cv) : 0;
}

static int h_start_container(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
			     struct weir_error *err)
{
	struct weir_nri *w = u;
	_cleanup_free_ struct anns *pod_own = NULL, *ctr_own = NULL;
	struct pod_view pv;
	struct ctr_view cv;
	int rc;

	rc = ctr_event(w, pod, ctr, &pv, &pod_own, &cv, &ctr_own, err);
	if (rc)
		return rc;
	rc = attach(w, &pv, &cv, false, err);
	return rc < 0 ? refuse_ctr(err, rc, &pv, &cv) : 0;
}

static int h_stop_container(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
			    struct weir_error *err)
{
	return detach(u, ctr->id, "StopContainer");
}

static int h_remove_container(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
			      struct weir_error *err)
{
	return detach(u, ctr->id, "RemoveContainer");
}

/* ---- Synchronize ---------------------------------------------------------------------- */

static void sync_reset(struct weir_nri *w)
{
	for (size_t i = 0; i < w->npending; i++) {
		struct sync_ctr *s = &w->pending[i];

		free(s->id);
		free(s->name);
		free(s->pod_id);
		free(s->cgroups_path);
		free(s->ann);
	}
	free(w->pending);
	w->pending = NULL;
	w->npending = w->pending_cap = 0;
	idmap_free(&w->live, NULL);
	w->in_sync = false;
}

static int sync_keep(struct weir_nri *w, const Nri__Container *c)
{
	struct sync_ctr *s;

	if (w->npending == w->pending_cap) {
		size_t ncap = w->pending_cap ? w->pending_cap * 2 : 64;
		struct sync_ctr *np = realloc(w->pending, ncap * sizeof(*np));

		if (!np)
			return -ENOMEM;
		w->pending = np;
		w->pending_cap = ncap;
	}
	s = &w->pending[w->npending++];
	memset(s, 0, sizeof(*s));
	s->id = strdup(or_empty(c->id));
	s->name = strdup(or_empty(c->name));
	s->pod_id = strdup(or_empty(c->pod_sandbox_id));
	s->cgroups_path =
		c->linux && c->linux->cgroups_path ? strdup(c->linux->cgroups_path) : NULL;
	s->pid = c->pid;
	if (!s->id || !s->name || !s->pod_id ||
	    (c->linux && c->linux->cgroups_path && !s->cgroups_path))
		return -ENOMEM;
	return anns_copy(c->annotations, c->n_annotations, &s->ann);
}

/* The values of sync_finish's map of weir-nri's endpoints that are not stopped. */
#define EP_COMPLETE  ((void *)1)
#define EP_HALF_DONE ((void *)2)

static void note_running(void *arg, const char *id, bool complete)
{
	struct idmap *m = arg;

	/* on failure the container is merely attached again, which libweir makes a no-op */
	if (idmap_put(m, id, complete ? EP_COMPLETE : EP_HALF_DONE, NULL))
		nri_debug("synchronize: out of memory noting endpoint %s", WEIR_QN(id));
}

struct vanished {
	struct weir_nri *w;
	unsigned detached, failed;
};

/* An endpoint weir-nri made for a container the runtime no longer runs (it stopped or was
 * removed while weir-nri was away): detach it. */
static void detach_vanished(const char *id, void *val, void *arg)
{
	struct vanished *v = arg;
	struct weir_error e = {0};

	if (idmap_get(&v->w->live, id))
		return;
	if (v->w->ops->detach(v->w->b, id, &e)) {
		v->failed++;
		nri_warn("synchronize: detach vanished container %s: %s", WEIR_QN(id),
			 e.msg[0] ? e.msg : "failed");
	} else {
		v->detached++;
		nri_info("synchronize: detached container %s: the runtime no longer runs it",
			 WEIR_QN(id));
	}
}

static bool listed_in_sync(const void *val, const void *arg)
{
	return ((const struct pod_rec *)val)->gen == *(const unsigned *)arg;
}

/* After the last chunk: the runtime's whole state is known. */
static void sync_finish(struct weir_nri *w)
{
	struct idmap running = {0};
	struct vanished gone = {.w = w};
	size_t attached = 0, already = 0, skipped = 0, failed = 0, pods_before = w->pods.n;

	/*
	 * One listing of weir-nri's running endpoints serves twice. A container the runtime
	 * runs whose endpoint runs is left as it is: CRI gives every container start a new id,
	 * so the same id is the same container, and attaching it again would cost a policy
	 * compile and a record read per container, thousands of them inside one request.
	 * Only a complete endpoint is left alone: a weir-nri killed inside StartContainer leaves
	 * the record attaching while containerd starts the container anyway, and its programs
	 * may be missing. Attaching it again undoes the half-done endpoint and attaches it whole;
	 * left as it was, the container would run unenforced, and weir gc would then undo the
	 * attach altogether.
	 */
	w->ops->foreach_running(w->b, note_running, &running);
	for (size_t i = 0; i < w->npending; i++) {
		const struct sync_ctr *s = &w->pending[i];
		struct ctr_view cv = {s->id, s->name, s->pod_id, s->cgroups_path, s->pid, s->ann};
		struct weir_error e = {0};
		struct pod_view pv;
		int r;

		void *known = idmap_get(&running, s->id);

		if (known == EP_COMPLETE) {
			already++;
			continue;
		}
		if (known == EP_HALF_DONE)
			nri_warn("synchronize: container %s (%s): its endpoint is not whole (an "
				 "interrupted attach, or a conntrack map's slot or pin gone): "
				 "attaching it again",
				 WEIR_QN(s->id), WEIR_QN(s->name));
		pod_view_of_rec(idmap_get(&w->pods, s->pod_id), s->pod_id, &pv);
		r = attach(w, &pv, &cv, true, &e);
		if (r < 0) {
			failed++;
			nri_warn("synchronize: container %s (%s): %s", WEIR_QN(s->id),
				 WEIR_QN(s->name), e.msg);
		} else if (r) {
			attached++;
		} else {
			skipped++;
		}
	}
	idmap_foreach(&running, detach_vanished, &gone);
	idmap_free(&running, NULL);
	/* pods removed while we were away */
	idmap_filter(&w->pods, listed_in_sync, &w->gen, pod_rec_free);
	nri_info("synchronize: %zu pods (%zu forgotten), %zu running containers: %zu attached "
		 "before, %zu attached now, %zu without weir annotations, %zu failed; %u "
		 "endpoints of vanished containers detached, %u failed",
		 w->pods.n, pods_before - w->pods.n, w->npending, already, attached, skipped,
		 failed, gone.detached, gone.failed);
	/* a container that cannot be (re)attached is logged; refusing the sync would only get
	 * weir dropped by the runtime and stop enforcement for new containers too */
}

static int h_synchronize(void *u, Nri__PodSandbox *const *pods, size_t npods,
			 Nri__Container *const *ctrs, size_t nctrs, int more,
			 struct weir_error *err)
{
	struct weir_nri *w = u;

	if (!w->in_sync) {
		sync_reset(w);
		w->gen++;
	}
	w->in_sync = more;
	for (size_t i = 0; i < npods; i++)
		if (pod_remember(w, pods[i]))
			goto oom;
	for (size_t i = 0; i < nctrs; i++) {
		const Nri__Container *c = ctrs[i];

		if (c->state != NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_STOPPED &&
		    c->id && *c->id && idmap_put(&w->live, c->id, (void *)1, NULL))
			goto oom;
		if (c->state == NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_RUNNING &&
		    sync_keep(w, c))
			goto oom;
	}
	if (!more) {
		sync_finish(w);
		sync_reset(w);
	}
	return 0;
oom:
	sync_reset(w);
	return weir_error_set(err, -ENOMEM, "weir: out of memory");
}

static void h_disconnected(void *u)
{
	sync_reset(u);
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
	.configured = h_configured,
	.disconnected = h_disconnected,
};

int weir_nri_new(struct weir_nri **out, const struct weir_nri_ops *ops, void *b)
{
	struct weir_nri *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->ops = ops;
	w->b = b;
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
	sync_reset(w);
	idmap_free(&w->pods, pod_rec_free);
	free(w);
}
