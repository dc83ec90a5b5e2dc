// SPDX-License-Identifier: Apache-2.0
/* Endpoint statistics as JSON: what `weir stats --json` prints and the metrics are built from. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "util.h"

struct json_object *weir_record_summary(struct json_object *rec)
{
	static const char *const keys[] = {"id",       "name",	 "pod_name",   "pod_namespace",
					   "endpoint", "state",	 "mode",       "monitor",
					   "source",   "cgroup", "started_ms", "stopped_ms"};
	struct json_object *o = json_object_new_object(), *v;

	for (size_t i = 0; i < WEIR_ARRAY_SIZE(keys); i++)
		if (json_object_object_get_ex(rec, keys[i], &v))
			json_object_object_add(o, keys[i], json_object_get(v));
	/* always present, null when the runtime did not say (plain runc, podman hooks) */
	if (!json_object_object_get_ex(o, "name", NULL))
		json_object_object_add(o, "name", NULL);
	return o;
}

static int collect_rec(struct weir_ctx *ctx, const char *id, struct json_object *rec, void *arg)
{
	json_object_array_add(arg, json_object_get(rec));
	return 0;
}

int weir_records_all(struct weir_ctx *ctx, struct json_object *array)
{
	return weir_records_foreach(ctx, collect_rec, array);
}

struct json_object *weir_stats_of(struct weir_ctx *ctx, struct json_object *rec,
				  const struct weir_drops *drops)
{
	struct json_object *o = weir_record_summary(rec), *src = NULL;
	bool running = !strcmp(weir_json_str(rec, "state") ?: "", "running");
	struct weir_error e = {};

	if (running && !weir_ctx_datapath(ctx, false, &e)) {
		struct weir_ep_stats *s = calloc(1, sizeof(*s));

		if (s &&
		    !weir_ep_stats_read(ctx, (uint32_t)weir_json_u64(rec, "endpoint"), drops, s))
			src = weir_ep_stats_to_json(s);
		free(s);
	} else if (!running && json_object_object_get_ex(rec, "final", &src)) {
		json_object_get(src);
	}
	if (!src) {
		struct weir_counters zero = {};

		json_object_object_add(o, "counters_available", json_object_new_boolean(false));
		src = weir_counters_to_json(&zero);
	}
	json_object_object_foreach (src, k, v) {
		json_object_object_add(o, k, json_object_get(v));
	}
	json_object_put(src);
	return o;
}

void weir_stats_drops(struct weir_ctx *ctx, struct weir_drops *drops)
{
	struct weir_error e = {};

	if (weir_ctx_datapath(ctx, false, &e) || weir_drops_read(ctx, drops))
		memset(drops, 0, sizeof(*drops));
}

int weir_stats_collect(struct weir_ctx *ctx, struct json_object **out)
{
	struct json_object *all = json_object_new_array(), *res;
	struct weir_drops drops;
	int r;

	r = weir_records_all(ctx, all);
	if (r) {
		json_object_put(all);
		return r;
	}
	weir_stats_drops(ctx, &drops);
	res = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(all); i++)
		json_object_array_add(
			res, weir_stats_of(ctx, json_object_array_get_idx(all, i), &drops));
	weir_drops_free(&drops);
	json_object_put(all);
	*out = res;
	return 0;
}
