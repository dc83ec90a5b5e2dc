// SPDX-License-Identifier: Apache-2.0
/* Endpoint records: their typed form, the checks on reading them back, and their files. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "record.h"
#include "util.h"

const char *const weir_state_names[WEIR_STATE_COUNT] = {
	[WEIR_STATE_ATTACHING] = "attaching",
	[WEIR_STATE_RUNNING] = "running",
	[WEIR_STATE_DETACHING] = "detaching",
	[WEIR_STATE_STOPPED] = "stopped",
};

static int bad_field(struct weir_error *err, const char *key, const char *expected)
{
	return weir_error_set(err, -EBADMSG, "field \"%s\": expected %s", key, expected);
}

static int get_str(struct json_object *o, const char *key, bool required, const char **out,
		   struct weir_error *err)
{
	struct json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return required ? bad_field(err, key, "a string") : 0;
	if (!json_object_is_type(v, json_type_string))
		return bad_field(err, key, "a string");
	*out = json_object_get_string(v);
	/* an embedded NUL would make the C string say less than the record does */
	if (strlen(*out) != (size_t)json_object_get_string_len(v))
		return bad_field(err, key, "a string without NUL characters");
	return 0;
}

static int get_u64(struct json_object *o, const char *key, bool required, uint64_t max,
		   uint64_t *out, struct weir_error *err)
{
	char what[64];
	struct json_object *v;

	*out = 0;
	snprintf(what, sizeof(what), "an integer from 0 to %llu", (unsigned long long)max);
	if (!json_object_object_get_ex(o, key, &v))
		return required ? bad_field(err, key, what) : 0;
	/* json-c keeps integers above INT64_MAX as uint64, so a negative int64 is negative */
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return bad_field(err, key, what);
	*out = json_object_get_uint64(v);
	if (*out > max)
		return bad_field(err, key, what);
	return 0;
}

static int get_u32(struct json_object *o, const char *key, bool required, uint32_t max,
		   uint32_t *out, struct weir_error *err)
{
	uint64_t v;
	int r = get_u64(o, key, required, max, &v, err);

	*out = (uint32_t)v;
	return r;
}

static int get_enum(struct json_object *o, const char *key, const char *const *names, size_t n,
		    int *out, struct weir_error *err)
{
	const char *s;
	int r = get_str(o, key, true, &s, err);

	if (r)
		return r;
	for (size_t i = 0; i < n; i++) {
		if (names[i] && !strcmp(s, names[i])) {
			*out = (int)i;
			return 0;
		}
	}
	return bad_field(err, key, "one of weir's names for it");
}

static int check_annotations(struct json_object *o, struct json_object **out,
			     struct weir_error *err)
{
	struct json_object *ann;

	*out = NULL;
	if (!json_object_object_get_ex(o, "annotations", &ann))
		return 0;
	if (!json_object_is_type(ann, json_type_object))
		return bad_field(err, "annotations", "an object of strings");
	json_object_object_foreach (ann, k, v) {
		(void)k;
		if (!json_object_is_type(v, json_type_string))
			return bad_field(err, "annotations", "an object of strings");
	}
	*out = ann;
	return 0;
}

int weir_record_parse(struct json_object *o, struct weir_record *rec, struct weir_error *err)
{
	static const char *const modes[] = {"enforce", "audit"};
	uint64_t ep;
	int state = 0, mode = 0, mon = 0, r;

	memset(rec, 0, sizeof(*rec));
	if (!o || !json_object_is_type(o, json_type_object))
		return weir_error_set(err, -EBADMSG, "not a JSON object");
	rec->json = json_object_get(o);
	r = get_str(o, "id", true, &rec->id, err);
	if (!r && !weir_valid_id(rec->id))
		r = bad_field(err, "id", "a container id of [A-Za-z0-9_.-]");
	if (!r)
		r = get_str(o, "name", false, &rec->name, err);
	if (!r)
		r = get_str(o, "pod_uid", false, &rec->pod_uid, err);
	if (!r)
		r = get_str(o, "pod_name", false, &rec->pod_name, err);
	if (!r)
		r = get_str(o, "pod_namespace", false, &rec->pod_namespace, err);
	if (!r)
		r = get_str(o, "source", true, &rec->source, err);
	if (!r)
		r = get_str(o, "cgroup", true, &rec->cgroup, err);
	if (!r && rec->cgroup[0] != '/')
		r = bad_field(err, "cgroup", "an absolute path");
	if (!r)
		r = get_str(o, "note", false, &rec->note, err);
	if (!r)
		r = get_str(o, "security", false, &rec->security, err);
	if (!r)
		r = get_u32(o, "guard_links", false, WEIR_GL_ALL, &rec->guard_links, err);
	if (!r)
		r = get_u32(o, "ct_entries", false, WEIR_CT_MAX_ENTRIES, &rec->ct_entries, err);
	if (!r)
		r = get_u32(o, "iface_ifindex", false, INT32_MAX, &rec->iface_ifindex, err);
	if (!r)
		r = get_u32(o, "iface_netns", false, UINT32_MAX, &rec->iface_netns, err);
	if (!r)
		r = get_str(o, "iface_name", false, &rec->iface_name, err);
	if (!r)
		r = get_str(o, "iface_tc", false, &rec->iface_tc, err);
	if (!r && (rec->iface_ifindex || rec->iface_tc) &&
	    (!rec->iface_tc || (strcmp(rec->iface_tc, "tcx") && strcmp(rec->iface_tc, "clsact") &&
				strcmp(rec->iface_tc, "none"))))
		r = bad_field(err, "iface_tc", "\"tcx\", \"clsact\" or \"none\"");
	if (!r)
		r = get_enum(o, "state", weir_state_names, WEIR_STATE_COUNT, &state, err);
	if (!r)
		r = get_enum(o, "mode", modes, WEIR_ARRAY_SIZE(modes), &mode, err);
	if (!r)
		r = get_enum(o, "monitor", weir_monitor_names, WEIR_MON_OFF + 1, &mon, err);
	if (!r)
		r = get_u64(o, "endpoint", true, WEIR_MAX_ENDPOINTS - 1, &ep, err);
	if (!r && !ep)
		r = bad_field(err, "endpoint", "an endpoint id from 1");
	if (!r)
		r = get_u32(o, "gen", true, UINT32_MAX, &rec->gen, err);
	if (!r)
		r = get_u32(o, "netns_ino", false, UINT32_MAX, &rec->netns_ino, err);
	if (!r)
		r = get_u32(o, "policy_keys", false, WEIR_MAX_POLICY_KEYS, &rec->policy_keys, err);
	if (!r)
		r = get_u64(o, "cgroup_id", true, UINT64_MAX, &rec->cgroup_id, err);
	if (!r)
		r = get_u64(o, "started_ms", true, UINT64_MAX, &rec->started_ms, err);
	if (!r)
		r = get_u64(o, "stopped_ms", false, UINT64_MAX, &rec->stopped_ms, err);
	if (!r)
		r = check_annotations(o, &rec->annotations, err);
	if (!r && json_object_object_get_ex(o, "final", &rec->final) &&
	    !json_object_is_type(rec->final, json_type_object))
		r = bad_field(err, "final", "an object");
	if (r) {
		weir_record_release(rec);
		return r;
	}
	rec->endpoint = (uint32_t)ep;
	rec->state = (enum weir_ep_state)state;
	rec->audit = mode == 1;
	rec->monitor = (enum weir_monitor)mon;
	return 0;
}

void weir_record_release(struct weir_record *rec)
{
	json_object_put(rec->json);
	memset(rec, 0, sizeof(*rec));
}

static void add_str(struct json_object *o, const char *key, const char *v)
{
	if (v)
		json_object_object_add(o, key, json_object_new_string(v));
}

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static struct json_object *weir_record_to_json(const struct weir_record *rec)
{
	struct json_object *o = json_object_new_object();

	add_str(o, "id", rec->id);
	add_str(o, "name", rec->name);
	add_str(o, "pod_uid", rec->pod_uid);
	add_str(o, "pod_name", rec->pod_name);
	add_str(o, "pod_namespace", rec->pod_namespace);
	add_str(o, "source", rec->source ? rec->source : "unknown");
	add_u64(o, "endpoint", rec->endpoint);
	add_u64(o, "gen", rec->gen);
	add_str(o, "cgroup", rec->cgroup);
	add_u64(o, "cgroup_id", rec->cgroup_id);
	add_str(o, "state", weir_state_names[rec->state]);
	add_str(o, "mode", rec->audit ? "audit" : "enforce");
	add_str(o, "monitor", weir_monitor_names[rec->monitor]);
	if (rec->netns_ino)
		add_u64(o, "netns_ino", rec->netns_ino);
	if (rec->policy_keys)
		add_u64(o, "policy_keys", rec->policy_keys);
	add_u64(o, "started_ms", rec->started_ms);
	if (rec->stopped_ms)
		add_u64(o, "stopped_ms", rec->stopped_ms);
	add_str(o, "note", rec->note);
	add_str(o, "security", rec->security);
	if (rec->guard_links)
		add_u64(o, "guard_links", rec->guard_links);
	if (rec->ct_entries)
		add_u64(o, "ct_entries", rec->ct_entries);
	if (rec->iface_ifindex) {
		add_u64(o, "iface_ifindex", rec->iface_ifindex);
		add_u64(o, "iface_netns", rec->iface_netns);
		add_str(o, "iface_name", rec->iface_name);
		add_str(o, "iface_tc", rec->iface_tc);
	}
	json_object_object_add(o, "annotations",
			       rec->annotations ? json_object_get(rec->annotations)
						: json_object_new_object());
	if (rec->final)
		json_object_object_add(o, "final", json_object_get(rec->final));
	return o;
}

/* ---- files -------------------------------------------------------------------------- */

int weir_record_path(const struct weir_ctx *ctx, const char *id, char *out, size_t size)
{
	if (!weir_valid_id(id))
		return -EINVAL;
	if (snprintf(out, size, "%s/%s.json", ctx->containers_dir, id) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

int weir_record_read(const struct weir_ctx *ctx, const char *id, struct weir_record *rec,
		     struct weir_error *err)
{
	_cleanup_free_ char *text = NULL;
	struct json_tokener *tok;
	struct json_object *o;
	char path[PATH_MAX];
	size_t len;
	int r;

	memset(rec, 0, sizeof(*rec));
	r = weir_record_path(ctx, id, path, sizeof(path));
	if (r)
		return weir_error_set(err, r, "bad container id \"%.64s\"", id);
	r = weir_read_file(path, WEIR_MAX_RECORD_BYTES, &text, &len);
	if (r == -ENOENT)
		return r;
	if (r == -EFBIG)
		return weir_error_set(err, r, "record %s is larger than %u MiB", path,
				      WEIR_MAX_RECORD_BYTES >> 20);
	if (r)
		return weir_error_set(err, r, "cannot read record %s: %s", path, strerror(-r));
	tok = json_tokener_new();
	if (!tok)
		return weir_error_set(err, -ENOMEM, "out of memory");
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (!o || json_tokener_get_parse_end(tok) != len) {
		json_tokener_free(tok);
		json_object_put(o);
		return weir_error_set(err, -EBADMSG, "record %s is not one JSON object", path);
	}
	json_tokener_free(tok);
	r = weir_record_parse(o, rec, err);
	json_object_put(o);
	if (r)
		return weir_error_prefix(err, "record %s", path);
	if (strcmp(rec->id, id)) {
		weir_record_release(rec);
		return weir_error_set(err, -EBADMSG, "record %s: field \"id\": expected \"%s\"",
				      path, id);
	}
	return 0;
}

int weir_record_write(const struct weir_ctx *ctx, const struct weir_record *rec,
		      struct weir_error *err)
{
	_cleanup_json_ struct json_object *o = weir_record_to_json(rec);
	char path[PATH_MAX];
	const char *text;
	size_t len;
	int r;

	r = weir_record_path(ctx, rec->id, path, sizeof(path));
	if (!r)
		r = weir_mkdir_p(ctx->containers_dir, 0700);
	if (r)
		return weir_error_set(err, r, "cannot store the record of %s: %s", rec->id,
				      strerror(-r));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							 JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(text);
	if (len > WEIR_MAX_RECORD_BYTES)
		return weir_error_set(err, -EFBIG,
				      "the record of %s would be %zu bytes (at most %u)", rec->id,
				      len, WEIR_MAX_RECORD_BYTES);
	r = weir_write_file_atomic(path, text, len, 0600);
	if (r)
		return weir_error_set(err, r, "cannot write %s: %s", path, strerror(-r));
	return 0;
}

int weir_record_remove(const struct weir_ctx *ctx, const char *id)
{
	char path[PATH_MAX];
	int r = weir_record_path(ctx, id, path, sizeof(path));

	if (r)
		return r;
	return unlink(path) && errno != ENOENT ? -errno : 0;
}

/* "<id>.json" → id; false for temporary files and anything else */
static bool record_file_id(const char *name, char *id, size_t size)
{
	size_t len = strlen(name);

	if (len <= 5 || strcmp(name + len - 5, ".json") || len - 5 >= size)
		return false;
	memcpy(id, name, len - 5);
	id[len - 5] = '\0';
	return weir_valid_id(id);
}

int weir_records_foreach(struct weir_ctx *ctx, weir_record_fn fn, void *arg)
{
	struct dirent **names = NULL;
	int n, r = 0;

	n = scandir(ctx->containers_dir, &names, NULL, alphasort);
	if (n < 0)
		return errno == ENOENT ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct weir_record rec;
		struct weir_error e = {};
		char id[256];
		int lr;

		if (!r && record_file_id(names[i]->d_name, id, sizeof(id))) {
			lr = weir_record_read(ctx, id, &rec, &e);
			if (lr != -ENOENT) /* gone since the listing: a detach or gc ran */
				r = fn(ctx, id, lr ? NULL : &rec, lr ? &e : NULL, arg);
			if (!lr)
				weir_record_release(&rec);
		}
		free(names[i]);
	}
	free(names);
	return r;
}
