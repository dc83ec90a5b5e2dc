// SPDX-License-Identifier: Apache-2.0
/*
 * weir-hook: the OCI runtime hook. createRuntime (or prestart) attaches the container's
 * policy before its first instruction; poststop detaches and keeps the final counters.
 * Runtimes give hooks no PATH and read only the exit status and stderr: a non-zero exit with
 * one line refuses the container.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "log.h"
#include "util.h"
#include "weir.h"

#define MAX_STATE_BYTES	 (1 << 20)
#define MAX_CONFIG_BYTES (16 << 20)

enum stage {
	STAGE_AUTO, /* from the state's status, so one hooks.d file can serve every stage */
	STAGE_ATTACH,
	STAGE_DETACH,
};

static void usage(FILE *f)
{
	fprintf(f, "usage: weir-hook [--config FILE] [--log-level LEVEL] [STAGE]\n"
		   "  STAGE: createRuntime or prestart (attach), poststop (detach); without it,\n"
		   "  the state's status decides: creating/created attach, stopped detaches\n"
		   "  the OCI state is read from standard input\n");
}

/* Collect string annotations of a JSON object into kv (appending). */
static int collect(struct json_object *ann, const char *what, struct weir_kv **kv, size_t *n,
		   struct weir_error *err)
{
	if (!ann)
		return 0;
	if (!json_object_is_type(ann, json_type_object))
		return weir_error_set(err, -EINVAL, "%s: \"annotations\" is not an object", what);
	json_object_object_foreach (ann, key, v) {
		struct weir_kv *nkv;

		if (!json_object_is_type(v, json_type_string))
			return weir_error_set(err, -EINVAL, "%s: annotation \"%s\" is not a string",
					      what, key);
		nkv = realloc(*kv, (*n + 1) * sizeof(**kv));
		if (!nkv)
			return -ENOMEM;
		*kv = nkv;
		(*kv)[*n].key = key;
		(*kv)[*n].value = json_object_get_string(v);
		(*n)++;
	}
	return 0;
}

static int read_json(int fd, const char *path, size_t max, struct json_object **out,
		     struct weir_error *err)
{
	_cleanup_free_ char *text = NULL;
	enum json_tokener_error jerr;
	struct json_object *o;
	int r;

	r = path ? weir_read_file(path, max, &text, NULL) : weir_read_fd(fd, max, &text, NULL);
	if (r)
		return weir_error_set(err, r, "cannot read %s: %s", path ? path : "the OCI state",
				      r == -EFBIG ? "too large" : strerror(-r));
	o = json_tokener_parse_verbose(text, &jerr);
	if (!o)
		return weir_error_set(err, -EINVAL, "%s is not valid JSON: %s",
				      path ? path : "the OCI state on stdin",
				      json_tokener_error_desc(jerr));
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return weir_error_set(err, -EINVAL, "%s is not a JSON object",
				      path ? path : "the OCI state on stdin");
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

static int run(struct weir_ctx *ctx, enum stage stage, struct weir_error *err)
{
	_cleanup_json_ struct json_object *state = NULL;
	_cleanup_json_ struct json_object *config = NULL;
	_cleanup_free_ struct weir_kv *raw = NULL;
	_cleanup_free_ struct weir_kv *resolved = NULL;
	struct json_object *v, *ann = NULL;
	struct weir_container c = {.source = "hook"};
	size_t nraw = 0, nres = 0;
	const char *bundle;
	char path[PATH_MAX];
	int r;

	r = read_json(STDIN_FILENO, NULL, MAX_STATE_BYTES, &state, err);
	if (r)
		return r;
	c.id = get_str(state, "id");
	if (!c.id)
		return weir_error_set(err, -EINVAL, "OCI state: missing \"id\" string");
	if (stage == STAGE_AUTO) {
		const char *status = get_str(state, "status");

		if (status && (!strcmp(status, "creating") || !strcmp(status, "created")))
			stage = STAGE_ATTACH;
		else if (status && !strcmp(status, "stopped"))
			stage = STAGE_DETACH;
		else
			return weir_error_set(err, -EINVAL,
					      "OCI state of %s: \"status\" \"%s\": expected "
					      "creating, created or stopped, or a STAGE argument",
					      c.id, status ? status : "(missing)");
	}
	if (stage == STAGE_DETACH)
		return weir_endpoint_detach(ctx, c.id, err);

	if (!json_object_object_get_ex(state, "pid", &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0 ||
	    json_object_get_int64(v) > 0x3fffffff)
		return weir_error_set(err, -EINVAL,
				      "OCI state of %s: \"pid\": expected a positive process id",
				      c.id);
	c.pid = (pid_t)json_object_get_int64(v);
	bundle = get_str(state, "bundle");
	if (!bundle || bundle[0] != '/')
		return weir_error_set(err, -EINVAL,
				      "OCI state of %s: \"bundle\": expected an absolute path",
				      c.id);
	if (snprintf(path, sizeof(path), "%s/config.json", bundle) >= (int)sizeof(path))
		return weir_error_set(err, -ENAMETOOLONG, "bundle path too long");
	r = read_json(-1, path, MAX_CONFIG_BYTES, &config, err);
	if (r)
		return r;

	/* The state's annotations come from config.json; the file is the authority. */
	json_object_object_get_ex(state, "annotations", &ann);
	r = collect(ann, "OCI state", &raw, &nraw, err);
	if (!r && json_object_object_get_ex(config, "annotations", &ann))
		r = collect(ann, path, &raw, &nraw, err);
	if (r)
		return r;
	if (!weir_annotations_present(raw, nraw))
		return 0;

	/* CRI-O copies pod annotations into the spec: resolve /pod and /container.NAME keys. */
	for (size_t i = 0; i < nraw; i++) {
		if (!strcmp(raw[i].key, "io.kubernetes.container.name"))
			c.name = raw[i].value;
		else if (!strcmp(raw[i].key, "io.kubernetes.pod.name"))
			c.pod_name = raw[i].value;
		else if (!strcmp(raw[i].key, "io.kubernetes.pod.namespace"))
			c.pod_namespace = raw[i].value;
		else if (!strcmp(raw[i].key, "io.kubernetes.pod.uid"))
			c.pod_uid = raw[i].value;
	}
	r = weir_annotations_resolve(NULL, 0, raw, nraw, c.name, &resolved, &nres, err);
	if (r)
		return r;
	c.annotations = resolved;
	c.n_annotations = nres;

	/* bad annotations always refuse; the node config's fail_open covers only the node side */
	return weir_endpoint_attach(ctx, &c, err);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	enum weir_log_level level = WEIR_LOG_WARN;
	const char *config = NULL, *stage_name;
	struct weir_error err = {};
	struct weir_ctx *ctx = NULL;
	enum stage stage;
	int opt, r;

	weir_log_init("weir-hook", level, WEIR_LOG_TEXT);
	while ((opt = getopt_long(argc, argv, "c:l:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'l':
			if (weir_log_level_option(optarg))
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 < argc) {
		usage(stderr);
		return 2;
	}
	stage_name = optind < argc ? argv[optind] : NULL;
	if (!stage_name) {
		stage = STAGE_AUTO;
	} else if (!strcmp(stage_name, "createRuntime") || !strcmp(stage_name, "prestart")) {
		stage = STAGE_ATTACH;
	} else if (!strcmp(stage_name, "poststop")) {
		stage = STAGE_DETACH;
	} else {
		pr_err("unknown stage \"%s\": expected createRuntime, prestart or poststop",
		       stage_name);
		return 2;
	}

	r = weir_ctx_open(&ctx, config, &err);
	if (!r)
		r = run(ctx, stage, &err);
	weir_ctx_close(ctx);
	if (r) {
		pr_err("%s", err.msg[0] ? err.msg : strerror(-r));
		return 1;
	}
	return 0;
}
