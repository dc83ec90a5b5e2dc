// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "util.h"

void weir_config_defaults(struct weir_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", WEIR_DEFAULT_STATE_DIR);
	snprintf(cfg->bpffs, sizeof(cfg->bpffs), "%s", WEIR_DEFAULT_BPFFS);
	cfg->stopped_retention_s = 3600;
	cfg->limits.max_value_bytes = WEIR_DEFAULT_MAX_VALUE_BYTES;
	cfg->limits.max_rules = WEIR_DEFAULT_MAX_RULES;
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
				      "%s: \"%s\": \"%s\": expected an absolute path shorter than "
				      "%zu bytes",
				      file, key, s, size);
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
	int64_t x;

	if (!json_object_is_type(v, json_type_int))
		return weir_error_set(err, -EINVAL, "%s: \"%s\": expected an integer", file, key);
	x = json_object_get_int64(v);
	if (x < 0 || (uint64_t)x < min || (uint64_t)x > max)
		return weir_error_set(
			err, -ERANGE, "%s: \"%s\": %lld: expected an integer from %llu to %llu",
			file, key, (long long)x, (unsigned long long)min, (unsigned long long)max);
	*out = (uint64_t)x;
	return 0;
}

int weir_config_load(struct weir_config *cfg, const char *path, bool explicit_path,
		     struct weir_error *err)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ struct json_object *root = NULL;
	enum json_tokener_error jerr;
	int r;

	weir_config_defaults(cfg);
	r = weir_read_file(path, WEIR_MAX_CONFIG_BYTES, &text, NULL);
	if (r == -ENOENT && !explicit_path)
		return 0;
	if (r)
		return weir_error_set(err, r, "%s: cannot read: %s", path, strerror(-r));

	root = json_tokener_parse_verbose(text, &jerr);
	if (!root)
		return weir_error_set(err, -EINVAL, "%s: not valid JSON: %s", path,
				      json_tokener_error_desc(jerr));
	if (!json_object_is_type(root, json_type_object))
		return weir_error_set(err, -EINVAL, "%s: expected a JSON object at the top", path);

	json_object_object_foreach (root, key, v) {
		uint64_t u;

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
						      "%s: \"%s\": expected \"enforce\" or "
						      "\"audit\"",
						      path, key);
			cfg->default_audit = !strcmp(s, "audit");
			r = 0;
		} else if (!strcmp(key, "stopped_retention_seconds")) {
			r = get_uint(path, key, v, 0, 365ULL * 86400, &cfg->stopped_retention_s,
				     err);
		} else if (!strcmp(key, "max_annotation_bytes")) {
			r = get_uint(path, key, v, 64, 1 << 20, &u, err);
			cfg->limits.max_value_bytes = (size_t)u;
		} else if (!strcmp(key, "max_rules")) {
			r = get_uint(path, key, v, 1, 1 << 18, &u, err);
			cfg->limits.max_rules = (size_t)u;
		} else if (!strcmp(key, "log_level")) {
			if (!json_object_is_type(v, json_type_string) ||
			    weir_log_parse_level(json_object_get_string(v), &cfg->log_level))
				return weir_error_set(err, -EINVAL,
						      "%s: \"%s\": expected \"error\", \"warn\", "
						      "\"info\" or \"debug\"",
						      path, key);
			cfg->log_level_set = true;
			r = 0;
		} else {
			return weir_error_set(err, -EINVAL,
					      "%s: unknown key \"%s\": expected state_dir, bpffs, "
					      "fail_open, default_policy_mode, "
					      "stopped_retention_seconds, max_annotation_bytes, "
					      "max_rules or log_level",
					      path, key);
		}
		if (r)
			return r;
	}
	return 0;
}
