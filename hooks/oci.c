// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot.h"
#include "libweir.h"
#include "oci.h"
#include "util.h"

/* One JSON object and nothing after it but white space; no NUL inside the text. */
static int parse_object(const char *text, size_t len, const char *what, struct json_object **out,
			struct weir_error *err)
{
	struct json_tokener *tok;
	struct json_object *o;
	enum json_tokener_error jerr;
	size_t end;
	int r;

	if (strlen(text) != len)
		return weir_error_set(err, -EINVAL, "%s is not valid JSON: NUL byte at offset %zu",
				      what, strlen(text));
	tok = json_tokener_new();
	if (!tok)
		return weir_error_set(err, -ENOMEM, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o && jerr == json_tokener_continue)
		jerr = json_tokener_error_parse_eof;
	if (!o || jerr != json_tokener_success) {
		json_object_put(o);
		return weir_error_set(err, -EINVAL, "%s is not valid JSON: %s at offset %zu", what,
				      json_tokener_error_desc(jerr), end);
	}
	end += strspn(text + end, " \t\r\n");
	if (end != len) {
		json_object_put(o);
		return weir_error_set(err, -EINVAL,
				      "%s is not valid JSON: unexpected text after the object at "
				      "offset %zu",
				      what, end);
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return weir_error_set(err, -EINVAL, "%s is not a JSON object", what);
	}
	/* an escaped NUL in a key ("egress.weir.io\u0000") would read as another key */
	r = weir_json_check_keys(text, len, what, err);
	if (r) {
		json_object_put(o);
		return r;
	}
	*out = o;
	return 0;
}

static const char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int weir_oci_state(struct weir_oci *o, const char *text, size_t len, struct weir_error *err)
{
	int r;

	memset(o, 0, sizeof(*o));
	o->c.source = "hook";
	r = parse_object(text, len, "the OCI state on stdin", &o->state, err);
	if (r)
		return r;
	/* libweir checks the id itself before it becomes a file name */
	o->id = get_str(o->state, "id");
	if (!o->id)
		return weir_error_set(err, -EINVAL, "OCI state: missing \"id\" string");
	o->status = get_str(o->state, "status");
	o->c.id = o->id;
	return 0;
}

int weir_oci_attach_fields(struct weir_oci *o, struct weir_error *err)
{
	struct json_object *v;
	const char *bundle;
	int64_t pid;

	if (!json_object_object_get_ex(o->state, "pid", &v) ||
	    !json_object_is_type(v, json_type_int) || (pid = json_object_get_int64(v)) <= 0 ||
	    pid > 0x3fffffff)
		return weir_error_set(err, -EINVAL,
				      "OCI state of %s: \"pid\": expected a positive process id",
				      o->id);
	o->pid = (pid_t)pid;
	o->c.pid = o->pid;
	bundle = get_str(o->state, "bundle");
	/* a NUL inside would cut the path short: another folder's config.json */
	if (!bundle || bundle[0] != '/' ||
	    strlen(bundle) != (size_t)json_object_get_string_len(
				      v = json_object_object_get(o->state, "bundle")))
		return weir_error_set(err, -EINVAL,
				      "OCI state of %s: \"bundle\": expected an absolute path",
				      o->id);
	if (snprintf(o->config_path, sizeof(o->config_path), "%s/config.json", bundle) >=
	    (int)sizeof(o->config_path))
		return weir_error_set(err, -ENAMETOOLONG,
				      "OCI state of %s: \"bundle\": path too long", o->id);
	return 0;
}

/* The string annotations of a JSON object (NULL: none), keys and values pointing into it. */
static int collect(struct json_object *ann, const char *what, struct weir_kv **kv, size_t *n,
		   struct weir_error *err)
{
	size_t i = 0;

	*kv = NULL;
	*n = 0;
	if (!ann)
		return 0;
	if (!json_object_is_type(ann, json_type_object))
		return weir_error_set(err, -EINVAL, "%s: \"annotations\" is not an object", what);
	*kv = calloc((size_t)json_object_object_length(ann) + 1, sizeof(**kv));
	if (!*kv)
		return weir_error_set(err, -ENOMEM, "out of memory");
	json_object_object_foreach (ann, key, v) {
		int r;

		if (!json_object_is_type(v, json_type_string))
			return weir_error_set(err, -EINVAL, "%s: annotation %s is not a string",
					      what, WEIR_Q(key));
		/* "\u0000" in a value: C strings would cut it there */
		r = weir_annotation_check_raw(key, strlen(key), json_object_get_string(v),
					      (size_t)json_object_get_string_len(v), err);
		if (r)
			return r;
		(*kv)[i].key = key;
		(*kv)[i].value = json_object_get_string(v);
		i++;
	}
	*n = i;
	return 0;
}

static const struct weir_kv *find(const struct weir_kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kv[i].key, key))
			return &kv[i];
	return NULL;
}

/* Every weir key of a is in b with the same value; names the first that is not. */
static int same_weir_keys(const struct weir_kv *a, size_t na, const char *a_name,
			  const struct weir_kv *b, size_t nb, const char *b_name, const char *id,
			  struct weir_error *err)
{
	for (size_t i = 0; i < na; i++) {
		const struct weir_kv *o;
		const char *key = weir_printable(a[i].key) ? a[i].key : "(with control characters)";

		if (!weir_is_weir_key(a[i].key))
			continue;
		o = find(b, nb, a[i].key);
		if (!o)
			return weir_error_set(
				err, -EPERM,
				"OCI state of %s: annotation \"%s\" is in %s but not "
				"in %s: refusing a container whose runtime and bundle "
				"disagree",
				id, key, a_name, b_name);
		if (strcmp(o->value, a[i].value))
			return weir_error_set(
				err, -EPERM,
				"OCI state of %s: annotation \"%s\" differs between %s "
				"and %s: refusing a container whose runtime and bundle "
				"disagree",
				id, key, a_name, b_name);
	}
	return 0;
}

int weir_oci_config(struct weir_oci *o, const char *text, size_t len, struct weir_error *err)
{
	_cleanup_free_ struct weir_kv *from_config = NULL;
	struct json_object *sann = NULL, *cann = NULL;
	size_t nconfig = 0;
	int r;

	r = parse_object(text, len, o->config_path, &o->config, err);
	if (r)
		return r;
	json_object_object_get_ex(o->config, "annotations", &cann);
	r = collect(cann, o->config_path, &from_config, &nconfig, err);
	if (r)
		return r;
	if (json_object_object_get_ex(o->state, "annotations", &sann)) {
		r = collect(sann, "OCI state", &o->annotations, &o->n_annotations, err);
		if (!r)
			r = same_weir_keys(o->annotations, o->n_annotations, "the OCI state",
					   from_config, nconfig, o->config_path, o->id, err);
		if (!r)
			r = same_weir_keys(from_config, nconfig, o->config_path, o->annotations,
					   o->n_annotations, "the OCI state", o->id, err);
		if (r)
			return r;
	} else {
		o->annotations = from_config;
		o->n_annotations = nconfig;
		from_config = NULL;
	}
	/* CRI-O copies pod annotations into the spec: resolve /pod and /container.NAME keys. */
	for (size_t i = 0; i < o->n_annotations; i++) {
		const char *k = o->annotations[i].key, *v = o->annotations[i].value;

		if (!strcmp(k, "io.kubernetes.container.name"))
			o->c.name = v;
		else if (!strcmp(k, "io.kubernetes.pod.name"))
			o->c.pod_name = v;
		else if (!strcmp(k, "io.kubernetes.pod.namespace"))
			o->c.pod_namespace = v;
		else if (!strcmp(k, "io.kubernetes.pod.uid"))
			o->c.pod_uid = v;
	}
	r = weir_annotations_resolve(NULL, 0, o->annotations, o->n_annotations, o->c.name,
				     &o->resolved, &o->n_resolved, err);
	if (r)
		return r;
	o->c.annotations = o->resolved;
	o->c.n_annotations = o->n_resolved;
	return 0;
}

void weir_oci_free(struct weir_oci *o)
{
	free(o->resolved);
	free(o->annotations);
	json_object_put(o->config);
	json_object_put(o->state);
	memset(o, 0, sizeof(*o));
}
