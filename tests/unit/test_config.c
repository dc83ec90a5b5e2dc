// SPDX-License-Identifier: Apache-2.0
/*
 * Node configuration (shared/core/config.c): every key with a good value, a value of the wrong
 * type, and the values either side of each bound; unknown keys; files that are not a JSON
 * object; a missing file at the default path (defaults) and at an explicit one (an error).
 * Each refusal must be one line that names the file, the key and what was expected.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char dir[] = "/tmp/weir-test-config.XXXXXX";
static char path[PATH_MAX];
static struct weir_config cfg;
static struct weir_error err;

static int setup(void **state)
{
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/weir.conf", dir);
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	return rmdir(dir);
}

static void write_conf(const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) < 0, 0);
	assert_int_equal(fclose(f), 0);
}

/* Load TEXT from the explicit path; returns the result, with err and cfg as they were left. */
static int load(const char *text)
{
	write_conf(text);
	memset(&err, 0, sizeof(err));
	return weir_config_load(&cfg, path, true, &err);
}

static void load_ok(const char *text)
{
	int r = load(text);

	if (r)
		fail_msg("%s was refused: %s", text, err.msg);
}

/* TEXT is refused with CODE, in one line that starts with the file and holds EXPECTED. */
static void load_refused(const char *text, int code, const char *expected)
{
	int r = load(text);

	if (!r)
		fail_msg("%s was accepted", text);
	if (r != code || err.code != code)
		fail_msg("%s: returned %d (err.code %d), expected %d: %s", text, r, err.code, code,
			 err.msg);
	if (strncmp(err.msg, path, strlen(path)) || err.msg[strlen(path)] != ':')
		fail_msg("%s: message \"%s\" does not start with the file", text, err.msg);
	if (!strstr(err.msg, expected))
		fail_msg("%s: message \"%s\" lacks \"%s\"", text, err.msg, expected);
	if (strchr(err.msg, '\n'))
		fail_msg("%s: message \"%s\" is more than one line", text, err.msg);
}

static void assert_defaults(void)
{
	assert_string_equal(cfg.state_dir, "/run/weir");
	assert_string_equal(cfg.bpffs, "/sys/fs/bpf");
	assert_false(cfg.fail_open);
	assert_false(cfg.default_audit);
	assert_int_equal(cfg.stopped_retention_s, 3600);
	assert_int_equal(cfg.limits.max_value_bytes, 65536);
	assert_int_equal(cfg.limits.max_rules, 16384);
	assert_int_equal(cfg.ct_entries, 4096);
	assert_int_equal(cfg.ct_max_entries, 65536);
	assert_false(cfg.log_level_set);
}

static void test_defaults(void **state)
{
	memset(&cfg, 0xa5, sizeof(cfg));
	weir_config_defaults(&cfg);
	assert_defaults();
	load_ok("{}");
	assert_defaults();
	load_ok(" \n{ }\n");
	assert_defaults();
}

static void test_missing_file(void **state)
{
	char missing[PATH_MAX];

	snprintf(missing, sizeof(missing), "%s/absent.conf", dir);
	/* the default path: a node without a config file runs on the defaults */
	memset(&cfg, 0xa5, sizeof(cfg));
	memset(&err, 0, sizeof(err));
	assert_int_equal(weir_config_load(&cfg, missing, false, &err), 0);
	assert_int_equal(err.code, 0);
	assert_defaults();
	/* a path the operator gave must exist */
	assert_int_equal(weir_config_load(&cfg, missing, true, &err), -ENOENT);
	assert_int_equal(err.code, -ENOENT);
	assert_non_null(strstr(err.msg, missing));
	assert_non_null(strstr(err.msg, "No such file or directory"));
	/* a file that exists but cannot be read is an error even at the default path */
	memset(&err, 0, sizeof(err));
	assert_int_equal(weir_config_load(&cfg, dir, false, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "cannot read: not a regular file"));
}

static void test_every_key(void **state)
{
	load_ok("{\"state_dir\": \"/var/lib/w\", \"bpffs\": \"/mnt/bpf\", \"fail_open\": true, "
		"\"default_policy_mode\": \"audit\", \"stopped_retention_seconds\": 60, "
		"\"max_annotation_bytes\": 4096, \"max_rules\": 100, \"log_level\": \"debug\"}");
	assert_string_equal(cfg.state_dir, "/var/lib/w");
	assert_string_equal(cfg.bpffs, "/mnt/bpf");
	assert_true(cfg.fail_open);
	assert_true(cfg.default_audit);
	assert_int_equal(cfg.stopped_retention_s, 60);
	assert_int_equal(cfg.limits.max_value_bytes, 4096);
	assert_int_equal(cfg.limits.max_rules, 100);
	assert_true(cfg.log_level_set);
	assert_int_equal(cfg.log_level, WEIR_LOG_DEBUG);

	/* the other value of each two-valued key */
	load_ok("{\"fail_open\": false, \"default_policy_mode\": \"enforce\"}");
	assert_false(cfg.fail_open);
	assert_false(cfg.default_audit);

	static const struct {
		const char *name;
		enum weir_log_level level;
	} levels[] = {{"error", WEIR_LOG_ERROR},
		      {"warn", WEIR_LOG_WARN},
		      {"info", WEIR_LOG_INFO},
		      {"debug", WEIR_LOG_DEBUG}};
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		char text[64];

		snprintf(text, sizeof(text), "{\"log_level\": \"%s\"}", levels[i].name);
		load_ok(text);
		assert_true(cfg.log_level_set);
		assert_int_equal(cfg.log_level, levels[i].level);
	}

	/* escape detection's hook: auto (the default) or raw_tp, nothing else */
	load_ok("{}");
	assert_false(cfg.escape_raw_tp);
	load_ok("{\"escape_hook\": \"raw_tp\"}");
	assert_true(cfg.escape_raw_tp);
	load_ok("{\"escape_hook\": \"auto\"}");
	assert_false(cfg.escape_raw_tp);
	load_refused("{\"escape_hook\": \"fentry\"}", -EINVAL,
		     "\"escape_hook\": expected \"auto\" or \"raw_tp\"");
	load_refused("{\"escape_hook\": 1}", -EINVAL,
		     "\"escape_hook\": expected \"auto\" or \"raw_tp\"");

	/* one key does not disturb the others: each load starts from the defaults */
	load_ok("{\"max_rules\": 7}");
	assert_int_equal(cfg.limits.max_rules, 7);
	assert_string_equal(cfg.state_dir, "/run/weir");
	assert_false(cfg.fail_open);
	assert_false(cfg.log_level_set);
}

static void test_wrong_types(void **state)
{
	static const char *const paths[] = {"\"state_dir\"", "\"bpffs\""};
	static const char *const not_strings[] = {"1", "true", "null", "[\"/a\"]", "{}"};
	char text[128], want[64];

	for (size_t k = 0; k < 2; k++) {
		for (size_t i = 0; i < sizeof(not_strings) / sizeof(not_strings[0]); i++) {
			snprintf(text, sizeof(text), "{%s: %s}", paths[k], not_strings[i]);
			snprintf(want, sizeof(want), "%s: expected a string", paths[k]);
			load_refused(text, -EINVAL, want);
		}
	}
	load_refused("{\"fail_open\": \"true\"}", -EINVAL, "\"fail_open\": expected true or false");
	load_refused("{\"fail_open\": 1}", -EINVAL, "\"fail_open\": expected true or false");
	load_refused("{\"fail_open\": null}", -EINVAL, "\"fail_open\": expected true or false");
	load_refused("{\"default_policy_mode\": true}", -EINVAL,
		     "\"default_policy_mode\": expected \"enforce\" or \"audit\"");
	load_refused("{\"default_policy_mode\": null}", -EINVAL,
		     "\"default_policy_mode\": expected \"enforce\" or \"audit\"");
	load_refused("{\"log_level\": 3}", -EINVAL,
		     "\"log_level\": expected \"error\", \"warn\", \"info\" or \"debug\"");
	load_refused("{\"log_level\": null}", -EINVAL, "\"log_level\": expected \"error\"");

	static const char *const ints[] = {"\"stopped_retention_seconds\"",
					   "\"max_annotation_bytes\"", "\"max_rules\""};
	static const char *const not_ints[] = {"\"100\"", "100.0", "1e3", "true", "null", "[100]"};
	for (size_t k = 0; k < 3; k++) {
		for (size_t i = 0; i < sizeof(not_ints) / sizeof(not_ints[0]); i++) {
			snprintf(text, sizeof(text), "{%s: %s}", ints[k], not_ints[i]);
			snprintf(want, sizeof(want), "%s: expected an integer", ints[k]);
			load_refused(text, -EINVAL, want);
		}
	}
}

static void test_bad_values(void **state)
{
	char text[512], want[512];
	char longp[WEIR_MAX_CONFIG_PATH + 2];

	load_refused(
		"{\"state_dir\": \"run/weir\"}", -EINVAL,
		"\"state_dir\": \"run/weir\": expected an absolute path shorter than 200 bytes");
	load_refused("{\"bpffs\": \"\"}", -EINVAL, "\"bpffs\": \"\": expected an absolute path");
	/* 199 bytes fit, 200 do not */
	memset(longp, 'a', sizeof(longp));
	longp[0] = '/';
	longp[WEIR_MAX_CONFIG_PATH - 1] = '\0';
	snprintf(text, sizeof(text), "{\"state_dir\": \"%s\"}", longp);
	load_ok(text);
	assert_string_equal(cfg.state_dir, longp);
	longp[WEIR_MAX_CONFIG_PATH - 1] = 'a';
	longp[WEIR_MAX_CONFIG_PATH] = '\0';
	snprintf(text, sizeof(text), "{\"bpffs\": \"%s\"}", longp);
	snprintf(want, sizeof(want), "\"bpffs\": \"%s\": expected an absolute path shorter", longp);
	load_refused(text, -EINVAL, want);

	load_refused("{\"default_policy_mode\": \"Audit\"}", -EINVAL,
		     "\"default_policy_mode\": expected \"enforce\" or \"audit\"");
	load_refused("{\"default_policy_mode\": \"\"}", -EINVAL, "\"default_policy_mode\"");
	load_refused("{\"log_level\": \"verbose\"}", -EINVAL, "\"log_level\": expected \"error\"");
	load_refused("{\"log_level\": \"WARN\"}", -EINVAL, "\"log_level\": expected \"error\"");
}

/* Each integer key at both bounds (accepted) and one past them (refused, naming the value). */
static void test_bounds(void **state)
{
	static const struct {
		const char *key;
		long long min, max;
	} keys[] = {
		{"stopped_retention_seconds", 0, 365LL * 86400},
		{"max_annotation_bytes", 64, 1 << 20},
		{"max_rules", 1, 1 << 18},
		{"conntrack_entries", 64, 262144},
		{"conntrack_max_entries", 64, 262144},
	};
	char text[128], want[256];

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const long long ok[] = {keys[i].min, keys[i].max};
		const long long bad[] = {keys[i].min - 1, keys[i].max + 1, -1000, INT64_MIN};

		for (size_t j = 0; j < 2; j++) {
			uint64_t got;

			snprintf(text, sizeof(text), "{\"%s\": %lld}", keys[i].key, ok[j]);
			load_ok(text);
			if (i == 0)
				got = cfg.stopped_retention_s;
			else if (i == 1)
				got = cfg.limits.max_value_bytes;
			else if (i == 2)
				got = cfg.limits.max_rules;
			else if (i == 3)
				got = cfg.ct_entries;
			else
				got = cfg.ct_max_entries;
			assert_int_equal(got, ok[j]);
		}
		for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
			snprintf(text, sizeof(text), "{\"%s\": %lld}", keys[i].key, bad[j]);
			snprintf(want, sizeof(want),
				 "\"%s\": %lld: expected an integer from %lld to %lld", keys[i].key,
				 bad[j], keys[i].min, keys[i].max);
			load_refused(text, -ERANGE, want);
		}
	}
	/* past what a signed 64-bit integer holds: the message names the value as written */
	load_refused("{\"max_rules\": 18446744073709551615}", -ERANGE,
		     "\"max_rules\": 18446744073709551615: expected an integer from 1 to 262144");
	load_refused("{\"max_rules\": 9223372036854775808}", -ERANGE,
		     "\"max_rules\": 9223372036854775808: expected");
}

static void test_unknown_keys(void **state)
{
	static const char *const unknown[] = {"fail_closed", "State_dir", "log-level", "",
					      "bpffs "};
	char text[128], want[128];

	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		snprintf(text, sizeof(text), "{\"%s\": 1}", unknown[i]);
		snprintf(want, sizeof(want), "unknown key \"%s\": expected state_dir, bpffs, ",
			 unknown[i]);
		load_refused(text, -EINVAL, want);
	}
	/* after good keys too: an unknown key is never skipped */
	load_refused("{\"max_rules\": 5, \"nope\": true}", -EINVAL, "unknown key \"nope\"");
	/* the list of keys the message offers is the list the parser knows */
	load_refused(
		"{\"x\": 1}", -EINVAL,
		"expected state_dir, bpffs, fail_open, default_policy_mode, "
		"stopped_retention_seconds, hook_timeout_seconds, max_annotation_bytes, max_rules, "
		"conntrack_entries, conntrack_max_entries, "
		"log_level, endpoint_cgroups, security, egress, ingress, loosen_namespaces, "
		"protected_paths, lsm, lsm_fallback, escape_hook or tc_attach");
}

static void test_not_an_object(void **state)
{
	load_refused("", -EINVAL, "not valid JSON");
	load_refused("{\"state_dir\": ", -EINVAL, "not valid JSON");
	load_refused("{\"state_dir\": \"/a\",}", -EINVAL, "not valid JSON");
	load_refused("{\"max_rules\": 010}", -EINVAL, "not valid JSON");
	load_refused("{\"max_rules\": 5 /* five */}", -EINVAL, "not valid JSON");
	load_refused("[]", -EINVAL, "expected a JSON object at the top");
	load_refused("\"/run/weir\"", -EINVAL, "expected a JSON object at the top");
	load_refused("null", -EINVAL, "expected a JSON object at the top");
	load_refused("{} {\"fail_open\": true}", -EINVAL, "not valid JSON");
	load_refused("{\"max_rules\": 5} x", -EINVAL, "not valid JSON");
}

static void test_too_large(void **state)
{
	size_t n = WEIR_MAX_CONFIG_BYTES + 1;
	char *text = malloc(n + 1);

	assert_non_null(text);
	/* valid JSON, one byte over the limit: refused for its size, not parsed */
	memset(text, ' ', n);
	text[0] = '{';
	text[n - 1] = '}';
	text[n] = '\0';
	load_refused(text, -EFBIG, "cannot read: too large");
	/* at the limit it is read */
	text[n - 1] = ' ';
	text[n - 2] = '}';
	text[n - 1] = '\0';
	load_ok(text);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),     cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_every_key),    cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_bad_values),   cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_unknown_keys), cmocka_unit_test(test_not_an_object),
		cmocka_unit_test(test_too_large),
	};

	return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
