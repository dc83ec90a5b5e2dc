// SPDX-License-Identifier: Apache-2.0
/* A kernel-less backend for weir-nri's handlers: see nri_fake.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "annot.h"
#include "nri_fake.h"

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void ep_free(void *p)
{
	struct fake_ep *e = p;

	if (!e)
		return;
	for (size_t i = 0; i < e->n; i++) {
		free((char *)e->kv[i].key);
		free((char *)e->kv[i].value);
	}
	free(e->kv);
	free(e->id);
	free(e->name);
	free(e->pod_uid);
	free(e->pod_name);
	free(e->pod_ns);
	free(e->cgroup_path);
	free(e);
}

void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	weir_config_defaults(&f->cfg);
}

void fake_free(struct fake *f)
{
	idmap_free(&f->eps, ep_free);
}

struct fake_ep *fake_get(struct fake *f, const char *id)
{
	return idmap_get(&f->eps, id);
}

struct fake_ep *fake_add(struct fake *f, const char *id, bool running, bool nri)
{
	struct fake_ep *e = calloc(1, sizeof(*e));
	void *old = NULL;

	if (!e || !(e->id = strdup(id)) || idmap_put(&f->eps, id, e, &old))
		abort();
	ep_free(old);
	e->running = running;
	e->nri = nri;
	return e;
}

const char *fake_value(const struct fake_ep *e, const char *key)
{
	for (size_t i = 0; e && i < e->n; i++)
		if (!strcmp(e->kv[i].key, key))
			return e->kv[i].value;
	return NULL;
}

static int f_check(void *b, const char *pod_namespace, const struct weir_kv *kv, size_t n,
		   struct weir_error *err)
{
	struct fake *f = b;

	f->check_calls++;
	return weir_spec_check_for(&f->cfg, kv, n, pod_namespace, err);
}

static bool f_baseline(void *b)
{
	return weir_config_has_baseline(&((struct fake *)b)->cfg);
}

static int f_load(void *b, struct weir_error *err)
{
	struct fake *f = b;

	f->load_calls++;
	if (f->load_fail)
		return weir_error_set(err, f->load_fail, "the kernel refused the datapath");
	return 0;
}

/* As libweir: bad annotations always refuse, an id that runs is left alone. */
static int f_attach(void *b, const struct weir_container *c, struct weir_error *err)
{
	struct fake *f = b;
	struct fake_ep *e;
	int r;

	f->attach_calls++;
	r = weir_spec_check(&f->cfg, c->annotations, c->n_annotations, err);
	if (r)
		return r;
	if (f->attach_fail && f->attach_fail_key)
		return weir_error_key(err, f->attach_fail, f->attach_fail_key,
				      "the kernel refused it");
	if (f->attach_fail)
		return weir_error_set(err, f->attach_fail, "cannot open cgroup %s",
				      c->cgroup_path ? c->cgroup_path : "(none)");
	e = fake_get(f, c->id);
	if (e && e->running)
		return 0;
	e = fake_add(f, c->id, true, !strcmp(c->source, "nri"));
	e->name = dup_or_null(c->name);
	e->pod_uid = dup_or_null(c->pod_uid);
	e->pod_name = dup_or_null(c->pod_name);
	e->pod_ns = dup_or_null(c->pod_namespace);
	e->cgroup_path = dup_or_null(c->cgroup_path);
	e->pid = c->pid;
	e->kv = calloc(c->n_annotations + 1, sizeof(*e->kv));
	if (!e->kv)
		abort();
	for (size_t i = 0; i < c->n_annotations; i++) {
		e->kv[i].key = strdup(c->annotations[i].key);
		e->kv[i].value = strdup(c->annotations[i].value);
	}
	e->n = c->n_annotations;
	return 0;
}

static int f_detach(void *b, const char *id, struct weir_error *err)
{
	struct fake *f = b;
	struct fake_ep *e = fake_get(f, id);

	f->detach_calls++;
	if (f->detach_fail)
		return weir_error_set(err, f->detach_fail, "%s: the record is damaged", id);
	if (e)
		e->running = e->half = false;
	return 0;
}

static int f_running(void *b, const char *id)
{
	struct fake *f = b;
	struct fake_ep *e = fake_get(f, id);

	f->running_calls++;
	return e && e->running;
}

struct each {
	void (*fn)(void *arg, const char *id, bool complete);
	void *arg;
};

static void each_running(const char *id, void *val, void *arg)
{
	const struct fake_ep *e = val;
	const struct each *x = arg;

	if ((e->running || e->half) && e->nri)
		x->fn(x->arg, id, e->running);
}

static int f_foreach_running(void *b, void (*fn)(void *arg, const char *id, bool complete),
			     void *arg)
{
	struct fake *f = b;
	struct each x = {fn, arg};

	idmap_foreach(&f->eps, each_running, &x);
	return 0;
}

const struct weir_nri_ops fake_ops = {
	.check = f_check,
	.baseline = f_baseline,
	.load = f_load,
	.attach = f_attach,
	.detach = f_detach,
	.running = f_running,
	.foreach_running = f_foreach_running,
};
