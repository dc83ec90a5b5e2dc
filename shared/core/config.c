// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "shaping.h"
#include "guard.h"
#include "util.h"

void weir_config_defaults(struct weir_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", WEIR_DEFAULT_STATE_DIR);
	snprintf(cfg->bpffs, sizeof(cfg->bpffs), "%s", WEIR_DEFAULT_BPFFS);
	cfg->stopped_retention_s = 3600;
	snprintf(cfg->tcp_cc_list, sizeof(cfg->tcp_cc_list), "%s", WEIR_DEFAULT_CC_LIST);
	cfg->hook_timeout_s = WEIR_DEFAULT_HOOK_TIMEOUT_S;
	cfg->limits.max_value_bytes = WEIR_DEFAULT_MAX_VALUE_BYTES;
	cfg->limits.max_rules = WEIR_DEFAULT_MAX_RULES;
	cfg->ct_entries = WEIR_CT_DEFAULT_ENTRIES;
	cfg->ct_max_entries = WEIR_CT_DEFAULT_MAX_ENTRIES;
	for (size_t i = 0; weir_default_endpoint_cgroups[i]; i++)
		snprintf(cfg->endpoint_cgroups[cfg->n_endpoint_cgroups++],
			 sizeof(cfg->endpoint_cgroups[0]), "%s", weir_default_endpoint_cgroups[i]);
}

static int get_path(const char *file, const char *key, struct json_object *v, char *out,
		    size_t size, struct weir_error *err)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return weir_error_set(err, -EINVAL, "%s: \"%s\": expected a string", file, key);
	s = json_object_get_string(v);
	if (size > WEIR_MAX_CONFIG_PATH)
		size = WEIR_MAX_CONFIG_PATH;
	if (s[0] != '/' || strlen(s) >= size)
		return weir_error_set(err, -EINVAL,
				      "%s: \"%s\": %s: expected an absolute path shorter than "
				      "%zu bytes",
				      file, key, WEIR_Q(s), size);
	snprintf(out, size, "%s", s);
	return 0;
}

static int get_bool(const char *file, const char *key, struct json_object *v, bool *out,
		    struct weir_error *err)
{
	if (!json_object_is_type(v, json_type_boolean))
		return weir_error_set(err, -EINVAL, "%s: \"%s\": expected true or false", file,
				      key);
	*out = json_object_get_boolean(v);
	return 0;
}

static int get_uint(const char *file, const char *key, struct json_object *v, uint64_t min,
		    uint64_t max, uint64_t *out, struct weir_error *err)
{
	uint64_t u;

	if (!json_object_is_type(v, json_type_int))
		return weir_error_set(err, -EINVAL, "%s: \"%s\": expected an integer", file, key);
	/* json-c keeps integers past INT64_MAX as unsigned: the int64 view would clamp them, and
	 * the message would name a value the file does not hold. */
	u = json_object_get_uint64(v);
	if (json_object_get_int64(v) < 0 || u < min || u > max)
		return weir_error_set(err, -ERANGE,
				      "%s: \"%s\": %s: expected an integer from %llu to %llu", file,
				      key, json_object_to_json_string(v), (unsigned long long)min,
				      (unsigned long long)max);
	*out = u;
	return 0;
}

/*
 * json-c's default parser ignores what follows the first value and takes comments and trailing
 * commas: `{"fail_open": true} {"fail_open": false}` would read as fail_open. Strict mode
 * refuses all three. Returns the object, or NULL with *why set (JSON null is not an object
 * either, and gets the same answer as any other non-object).
 */
static struct json_object *parse_strict(const char *text, const char **why)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;
	enum json_tokener_error jerr;

	*why = NULL;
	if (!tok) {
		*why = strerror(ENOMEM);
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text, -1);
	jerr = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (jerr != json_tokener_success) {
		json_object_put(o);
		*why = json_tokener_error_desc(jerr);
		return NULL;
	}
	return o;
}

/* An array of strings; each must pass `check` (NULL: any non-empty string). */
static int get_strings(const char *file, const char *key, struct json_object *v,
		       bool (*check)(const char *), const char *expected, char ***out, size_t *n,
		       struct weir_error *err)
{
	size_t len;

	if (!json_object_is_type(v, json_type_array))
		return weir_error_set(err, -EINVAL, "%s: \"%s\": expected an array of %s", file,
				      key, expected);
	len = json_object_array_length(v);
	*out = calloc(len ? len : 1, sizeof(**out));
	if (!*out)
		return weir_error_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < len; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		const char *s = json_object_get_string(e);

		if (!json_object_is_type(e, json_type_string) || !*s || (check && !check(s)))
			return weir_error_set(err, -EINVAL, "%s: \"%s\": item %zu: expected %s",
					      file, key, i + 1, expected);
		(*out)[i] = strdup(s);
		if (!(*out)[i])
			return weir_error_set(err, -ENOMEM, "out of memory");
		(*n)++;
	}
	return 0;
}

static bool is_abs_path(const char *s)
{
	return s[0] == '/' && strlen(s) < PATH_MAX;
}

/* Baseline text: kept as written, and checked now so a bad file fails at once, key named. */
static int get_baseline(const struct weir_config *cfg, const char *key, struct json_object *v,
			char **out, struct weir_error *err)
{
	struct weir_policy pol = {};
	struct weir_guards g;
	char where[WEIR_MAX_CONFIG_PATH + 32];
	const char *s;
	int r;

	if (!json_object_is_type(v, json_type_string))
		return weir_error_set(err, -EINVAL, "%s: \"%s\": expected a string", cfg->path,
				      key);
	s = json_object_get_string(v);
	snprintf(where, sizeof(where), "%s: \"%s\"", cfg->path, key);
	if (!strcmp(key, "security")) {
		r = weir_guards_parse(where, s, &g, err);
		weir_guards_free(&g);
	} else {
		r = weir_policy_parse_dir(&pol, key[0] == 'e' ? WEIR_EGRESS : WEIR_INGRESS, where,
					  s, &cfg->limits, err);
		weir_policy_free(&pol);
	}
	if (r)
		return r;
	free(*out);
	*out = strdup(s);
	return *out ? 0 : weir_error_set(err, -ENOMEM, "out of memory");
}

static int get_lsm(const char *file, const char *key, struct json_object *v, int *out,
		   const char *const *names, size_t n, const char *expected, struct weir_error *err)
{
	const char *s = json_object_get_string(v);

	for (size_t i = 0; json_object_is_type(v, json_type_string) && i < n; i++) {
		if (!strcmp(s, names[i])) {
			*out = (int)i;
			return 0;
		}
	}
	return weir_error_set(err, -EINVAL, "%s: \"%s\": expected %s", file, key, expected);
}

void weir_config_release(struct weir_config *cfg)
{
	free(cfg->baseline_security);
	for (int d = 0; d < WEIR_DIRS; d++)
		free(cfg->baseline_rules[d]);
	for (size_t i = 0; i < cfg->n_loosen; i++)
		free(cfg->loosen_namespaces[i]);
	free(cfg->loosen_namespaces);
	for (size_t i = 0; i < cfg->n_protected; i++)
		free(cfg->protected_paths[i]);
	free(cfg->protected_paths);
	cfg->baseline_security = NULL;
	cfg->baseline_rules[0] = cfg->baseline_rules[1] = NULL;
	cfg->loosen_namespaces = cfg->protected_paths = NULL;
	cfg->n_loosen = cfg->n_protected = 0;
}

bool weir_config_has_baseline(const struct weir_config *cfg)
{
	return cfg->baseline_security || cfg->baseline_rules[WEIR_EGRESS] ||
	       cfg->baseline_rules[WEIR_INGRESS];
}

static int config_key(struct weir_config *cfg, const char *path, const char *key,
		      struct json_object *v, struct weir_error *err);

static int get_endpoint_cgroups(const char *file, const char *key, struct json_object *v,
				struct weir_config *cfg, struct weir_error *err)
{
	size_t n;

	if (!json_object_is_type(v, json_type_array) || !(n = json_object_array_length(v)))
		return weir_error_set(
			err, -EINVAL,
			"%s: \"%s\": expected a non-empty array of cgroup path patterns "
			"such as [\"/kubepods/**\"]",
			file, key);
	if (n > WEIR_MAX_ENDPOINT_CGROUPS)
		return weir_error_set(err, -E2BIG, "%s: \"%s\": %zu patterns: expected at most %d",
				      file, key, n, WEIR_MAX_ENDPOINT_CGROUPS);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		const char *s = json_object_get_string(e), *why;

		if (!json_object_is_type(e, json_type_string))
			return weir_error_set(err, -EINVAL, "%s: \"%s\"[%zu]: expected a string",
					      file, key, i);
		if (strlen(s) != (size_t)json_object_get_string_len(e))
			return weir_error_set(err, -EINVAL, "%s: \"%s\"[%zu]: NUL character", file,
					      key, i);
		if (strlen(s) >= WEIR_MAX_CONFIG_PATH)
			why = "expected a cgroup path pattern shorter than 200 bytes";
		else
			why = weir_cgroup_pattern_invalid(s);
		/* a value with control characters is not quoted: messages are one line */
		if (why && !weir_printable(s))
			return weir_error_set(err, -EINVAL, "%s: \"%s\"[%zu]: %s", file, key, i,
					      why);
		if (why)
			return weir_error_set(err, -EINVAL, "%s: \"%s\"[%zu]: \"%.200s\": %s", file,
					      key, i, s, why);
		snprintf(cfg->endpoint_cgroups[i], sizeof(cfg->endpoint_cgroups[i]), "%s", s);
	}
	cfg->n_endpoint_cgroups = n;
	return 0;
}

int weir_config_load(struct weir_config *cfg, const char *path, bool explicit_path,
		     struct weir_error *err)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ struct json_object *root = NULL;
	const char *why;
	int r;

	weir_config_defaults(cfg);
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	r = weir_read_file(path, WEIR_MAX_CONFIG_BYTES, &text, NULL);
	if (r == -ENOENT && !explicit_path)
		return 0;
	if (r)
		return weir_error_set(err, r, "%s: cannot read: %s", path, weir_read_strerror(r));

	root = parse_strict(text, &why);
	if (why)
		return weir_error_set(err, -EINVAL, "%s: not valid JSON: %s", path, why);
	if (!json_object_is_type(root, json_type_object))
		return weir_error_set(err, -EINVAL, "%s: expected a JSON object at the top", path);

	/* max_annotation_bytes and max_rules bound the baseline's rules too: read them first */
	json_object_object_foreach (root, key, v) {
		if (strcmp(key, "egress") && strcmp(key, "ingress") &&
		    (r = config_key(cfg, path, key, v, err)))
			goto fail;
	}
	json_object_object_foreach (root, dkey, dv) {
		if ((!strcmp(dkey, "egress") || !strcmp(dkey, "ingress")) &&
		    (r = config_key(cfg, path, dkey, dv, err)))
			goto fail;
	}
	return 0;
fail:
	weir_config_release(cfg);
	return r;
}

static int config_key(struct weir_config *cfg, const char *path, const char *key,
		      struct json_object *v, struct weir_error *err)
{
	static const char *const lsm_names[] = {"auto", "global", "off"};
	static const char *const fallbacks[] = {"refuse", "kill"};
	static const char *const escape_hooks[] = {"auto", "raw_tp"};
	static const char *const tc_names[] = {"auto", "clsact"};
	uint64_t u;
	int r, e = 0;

	if (!strcmp(key, "state_dir")) {
		r = get_path(path, key, v, cfg->state_dir, sizeof(cfg->state_dir), err);
	} else if (!strcmp(key, "bpffs")) {
		r = get_path(path, key, v, cfg->bpffs, sizeof(cfg->bpffs), err);
	} else if (!strcmp(key, "fail_open")) {
		r = get_bool(path, key, v, &cfg->fail_open, err);
	} else if (!strcmp(key, "default_policy_mode")) {
		const char *s = json_object_get_string(v);

		if (!json_object_is_type(v, json_type_string) ||
		    (strcmp(s, "enforce") && strcmp(s, "audit")))
			return weir_error_set(err, -EINVAL,
					      "%s: \"%s\": expected \"enforce\" or \"audit\"", path,
					      key);
		cfg->default_audit = !strcmp(s, "audit");
		r = 0;
	} else if (!strcmp(key, "stopped_retention_seconds")) {
		r = get_uint(path, key, v, 0, 365ULL * 86400, &cfg->stopped_retention_s, err);
	} else if (!strcmp(key, "hook_timeout_seconds")) {
		r = get_uint(path, key, v, 1, 3600, &cfg->hook_timeout_s, err);
	} else if (!strcmp(key, "endpoint_cgroups")) {
		r = get_endpoint_cgroups(path, key, v, cfg, err);
	} else if (!strcmp(key, "max_annotation_bytes")) {
		r = get_uint(path, key, v, 64, 1 << 20, &u, err);
		cfg->limits.max_value_bytes = (size_t)u;
	} else if (!strcmp(key, "max_rules")) {
		r = get_uint(path, key, v, 1, 1 << 18, &u, err);
		cfg->limits.max_rules = (size_t)u;
	} else if (!strcmp(key, "conntrack_entries")) {
		r = get_uint(path, key, v, WEIR_CT_MIN_ENTRIES, WEIR_CT_MAX_ENTRIES, &u, err);
		cfg->ct_entries = (uint32_t)u;
	} else if (!strcmp(key, "conntrack_max_entries")) {
		r = get_uint(path, key, v, WEIR_CT_MIN_ENTRIES, WEIR_CT_MAX_ENTRIES, &u, err);
		cfg->ct_max_entries = (uint32_t)u;
	} else if (!strcmp(key, "log_level")) {
		if (!json_object_is_type(v, json_type_string) ||
		    weir_log_parse_level(json_object_get_string(v), &cfg->log_level))
			return weir_error_set(err, -EINVAL,
					      "%s: \"%s\": expected \"error\", \"warn\", "
					      "\"info\" or \"debug\"",
					      path, key);
		cfg->log_level_set = true;
		r = 0;
	} else if (!strcmp(key, "security")) {
		r = get_baseline(cfg, key, v, &cfg->baseline_security, err);
	} else if (!strcmp(key, "egress") || !strcmp(key, "ingress")) {
		r = get_baseline(cfg, key, v, &cfg->baseline_rules[key[0] == 'e' ? 0 : 1], err);
	} else if (!strcmp(key, "loosen_namespaces")) {
		r = get_strings(path, key, v, NULL, "Kubernetes namespace names",
				&cfg->loosen_namespaces, &cfg->n_loosen, err);
	} else if (!strcmp(key, "protected_paths")) {
		r = get_strings(path, key, v, is_abs_path, "absolute paths", &cfg->protected_paths,
				&cfg->n_protected, err);
	} else if (!strcmp(key, "lsm")) {
		r = get_lsm(path, key, v, &e, lsm_names, 3, "\"auto\", \"global\" or \"off\"", err);
		cfg->lsm = (enum weir_lsm_use)e;
	} else if (!strcmp(key, "lsm_fallback")) {
		r = get_lsm(path, key, v, &e, fallbacks, 2, "\"refuse\" or \"kill\"", err);
		cfg->lsm_fallback_kill = e == 1;
	} else if (!strcmp(key, "escape_hook")) {
		r = get_lsm(path, key, v, &e, escape_hooks, 2, "\"auto\" or \"raw_tp\"", err);
		cfg->escape_raw_tp = e == 1;
	} else if (!strcmp(key, "tc_attach")) {
		r = get_lsm(path, key, v, &e, tc_names, 2, "\"auto\" or \"clsact\"", err);
		cfg->tc_clsact = e == 1;
	} else {
		return weir_error_set(
			err, -EINVAL,
			"%s: unknown key %s: expected state_dir, bpffs, "
			"fail_open, default_policy_mode, stopped_retention_seconds, "
			"hook_timeout_seconds, max_annotation_bytes, max_rules, conntrack_entries, "
			"conntrack_max_entries, log_level, "
			"endpoint_cgroups, security, egress, ingress, loosen_namespaces, "
			"protected_paths, lsm, lsm_fallback, escape_hook or tc_attach",
			path, WEIR_Q(key));
	}
	return r;
}
