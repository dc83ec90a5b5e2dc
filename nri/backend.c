// SPDX-License-Identifier: Apache-2.0
/* weir-nri's handlers over libweir: the node context is the backend pointer. */
#include <errno.h>
#include <string.h>

#include "libweir.h"
#include "record.h"
#include "handlers.h"

static int lw_check(void *b, const char *pod_namespace, const struct weir_kv *kv, size_t n,
		    struct weir_error *err)
{
	return weir_annotations_check_ns(b, pod_namespace, kv, n, err);
}

static bool lw_baseline(void *b)
{
	return weir_baseline_present(b);
}

static int lw_load(void *b, struct weir_error *err)
{
	return weir_datapath_ensure(b, err);
}

static int lw_attach(void *b, const struct weir_container *c, struct weir_error *err)
{
	return weir_endpoint_attach(b, c, err);
}

static int lw_detach(void *b, const char *id, struct weir_error *err)
{
	return weir_endpoint_detach(b, id, err);
}

static int lw_running(void *b, const char *id)
{
	struct weir_error err = {0};
	struct weir_record rec;
	int r;

	r = weir_record_read(b, id, &rec, &err);
	if (r == -ENOENT)
		return 0;
	if (r)
		return r;
	r = rec.state == WEIR_STATE_RUNNING;
	weir_record_release(&rec);
	return r;
}

struct each {
	void (*fn)(void *arg, const char *id, bool complete);
	void *arg;
};

/* Endpoints weir-nri made that are not stopped: running, or left half done by a crash (the
 * attach or detach Synchronize does for them finishes those). An unreadable record is left
 * alone: weir gc reports it. */
static int each_running(struct weir_ctx *ctx, const char *id, const struct weir_record *rec,
			const struct weir_error *why, void *arg)
{
	const struct each *e = arg;

	/* a conntrack map whose slot or pin went counts as half done: attaching puts it back */
	if (rec && !strcmp(rec->source, "nri") && rec->state != WEIR_STATE_STOPPED)
		e->fn(e->arg, id,
		      rec->state == WEIR_STATE_RUNNING && weir_endpoint_ct_intact(ctx, rec));
	return 0;
}

static int lw_foreach_running(void *b, void (*fn)(void *arg, const char *id, bool complete),
			      void *arg)
{
	struct each e = {fn, arg};

	return weir_records_foreach(b, each_running, &e);
}

const struct weir_nri_ops weir_nri_libweir_ops = {
	.check = lw_check,
	.baseline = lw_baseline,
	.load = lw_load,
	.attach = lw_attach,
	.detach = lw_detach,
	.running = lw_running,
	.foreach_running = lw_foreach_running,
};
