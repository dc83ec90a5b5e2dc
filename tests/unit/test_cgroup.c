// SPDX-License-Identifier: Apache-2.0
/*
 * Where endpoints may be: endpoint_cgroups patterns, their node config key, and the refusals
 * that need no root and no BPF (the root cgroup, this process's own cgroup, a folder that is
 * no cgroup). Ancestors of endpoints are refused in tests/e2e/hook.t, with real endpoints.
 */
#include <dirent.h>
#include <errno.h>
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

#include "cgroup.h"
#include "config.h"
#include "ctx.h"
#include "util.h"

static void test_match(void **state)
{
	static const struct {
		const char *pattern, *rel;
		bool want;
	} cases[] = {
		{"/kubepods/**", "/kubepods/besteffort/pod1/c1", true},
		{"/kubepods/**", "/kubepods/pod1", true},
		{"/kubepods/**", "/kubepods", false}, /* the subtree's root is not in it */
		{"/kubepods/**", "/kubepodsx/pod1", false},
		{"/kubepods/**", "/", false},
		{"/machine.slice/libpod-*.scope", "/machine.slice/libpod-abc.scope", true},
		{"/machine.slice/libpod-*.scope", "/machine.slice/libpod-abc.scope/x", false},
		{"/machine.slice/libpod-*.scope", "/machine.slice/libpod-a/b.scope", false},
		{"/machine.slice/libpod-*.scope", "/machine.slice/conmon.scope", false},
		{"/a/*/c", "/a/b/c", true},
		{"/a/*/c", "/a/c", false},
		{"/a/*/c", "/a/b/b/c", false},
		{"/a/b", "/a/b", true},
		{"/a/b", "/a/b/c", false},
		{"/a/b", "/a", false},
		{"/a/[0-9]?/**", "/a/1x/y", true},
		{"/a/[0-9]?/**", "/a/xx/y", false},
		{"/**", "/anything/at/all", true},
		{"/**", "", false},
	};

	for (size_t i = 0; i < WEIR_ARRAY_SIZE(cases); i++) {
		bool got = weir_cgroup_pattern_match(cases[i].pattern, cases[i].rel);

		if (got != cases[i].want)
			fail_msg("\"%s\" against \"%s\": got %d", cases[i].pattern, cases[i].rel,
				 got);
	}
}

static void test_invalid(void **state)
{
	static const struct {
		const char *pattern, *why;
	} cases[] = {
		{"kubepods/**", "expected an absolute cgroup path"},
		{"/", "is the root cgroup"},
		{"/a//b", "empty path component"},
		{"/a/", "empty path component"},
		{"/a/../b", "\".\" and \"..\" are not allowed"},
		{"/a/./b", "\".\" and \"..\" are not allowed"},
		{"/**/b", "\"**\" must be a whole last component"},
		{"/a/x**", "\"**\" must be a whole last component"},
		{"/a\n/b", "control character"},
	};

	for (const char *const *d = weir_default_endpoint_cgroups; *d; d++)
		assert_null(weir_cgroup_pattern_invalid(*d));
	for (size_t i = 0; i < WEIR_ARRAY_SIZE(cases); i++) {
		const char *why = weir_cgroup_pattern_invalid(cases[i].pattern);

		if (!why || !strstr(why, cases[i].why))
			fail_msg("\"%s\": got \"%s\", expected \"%s\"", cases[i].pattern,
				 why ? why : "(accepted)", cases[i].why);
	}
}

static char conf_path[64];

static const char *load(const char *text, struct weir_config *cfg)
{
	static struct weir_error err;
	FILE *f = fopen(conf_path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	memset(&err, 0, sizeof(err));
	return weir_config_load(cfg, conf_path, true, &err) ? err.msg : NULL;
}

static void expect_config_error(const char *text, const char *want)
{
	struct weir_config cfg;
	const char *msg = load(text, &cfg);

	if (!msg || !strstr(msg, want))
		fail_msg("%s: got \"%s\", expected \"%s\"", text, msg ? msg : "(accepted)", want);
	if (strchr(msg, '\n'))
		fail_msg("%s: a message of more than one line: %s", text, msg);
}

static void test_config(void **state)
{
	struct weir_config cfg;
	size_t n = 0;

	weir_config_defaults(&cfg);
	while (weir_default_endpoint_cgroups[n])
		n++;
	assert_int_equal(cfg.n_endpoint_cgroups, n);
	assert_string_equal(cfg.endpoint_cgroups[0], "/kubepods/**");

	assert_null(load("{\"endpoint_cgroups\": [\"/weir-test/**\", \"/c1\"]}", &cfg));
	assert_int_equal(cfg.n_endpoint_cgroups, 2);
	assert_string_equal(cfg.endpoint_cgroups[1], "/c1");

	/* the example node config lists the defaults (tests run from the repository's root) */
	memset(&cfg, 0, sizeof(cfg));
	if (weir_config_load(&cfg, "examples/weir.conf", true, &(struct weir_error){}))
		fail_msg("examples/weir.conf does not load (run from the repository's root)");
	assert_int_equal(cfg.n_endpoint_cgroups, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(cfg.endpoint_cgroups[i], weir_default_endpoint_cgroups[i]);

	expect_config_error("{\"endpoint_cgroups\": []}",
			    "\"endpoint_cgroups\": expected a non-empty array");
	expect_config_error("{\"endpoint_cgroups\": \"/kubepods/**\"}",
			    "\"endpoint_cgroups\": expected a non-empty array");
	expect_config_error("{\"endpoint_cgroups\": [\"/a\", 5]}",
			    "\"endpoint_cgroups\"[1]: expected a string");
	expect_config_error(
		"{\"endpoint_cgroups\": [\"kubepods\"]}",
		"\"endpoint_cgroups\"[0]: \"kubepods\": expected an absolute cgroup path");
	expect_config_error("{\"endpoint_cgroups\": [\"/a\\nb\"]}",
			    "\"endpoint_cgroups\"[0]: control character in the pattern");
	expect_config_error("{\"endpoint_cgroups\": [\"/a\\u0000b\"]}",
			    "\"endpoint_cgroups\"[0]: NUL character");
}

/* A context whose state folder is empty: no endpoints, so only the cgroup itself matters. */
static struct weir_ctx *open_ctx(const char *patterns)
{
	char text[512];
	struct weir_ctx *ctx = NULL;
	struct weir_error err = {};

	snprintf(text, sizeof(text), "{\"state_dir\": \"/tmp/weir-unit-%d\", %s}", (int)getpid(),
		 patterns);
	assert_null(load(text, &(struct weir_config){}));
	if (weir_ctx_open(&ctx, conf_path, &err))
		fail_msg("weir_ctx_open: %s", err.msg);
	return ctx;
}

static void expect_refused(struct weir_ctx *ctx, const char *cgroup, const char *want)
{
	char cg[PATH_MAX];
	struct weir_error err = {};

	snprintf(cg, sizeof(cg), "%s", cgroup);
	if (!weir_cgroup_endpoint_check(ctx, cg, sizeof(cg), &err))
		fail_msg("cgroup %s was accepted", cgroup);
	if (!strstr(err.msg, want))
		fail_msg("cgroup %s: got \"%s\", expected \"%s\"", cgroup, err.msg, want);
}

static void test_refusals(void **state)
{
	struct weir_ctx *ctx = open_ctx("\"endpoint_cgroups\": [\"/**\"]");
	char mnt[PATH_MAX], self[PATH_MAX], path[PATH_MAX + 300], want[PATH_MAX + 400];
	bool checked = false;
	struct dirent *e;
	DIR *d;

	if (weir_cgroup2_mount(mnt, sizeof(mnt)) ||
	    weir_cgroup_of_pid(getpid(), self, sizeof(self))) {
		weir_ctx_close(ctx);
		skip(); /* no cgroup v2 on this machine: nothing to refuse */
	}
	expect_refused(ctx, mnt, "it is the root cgroup");
	/* the same root spelled otherwise is still the root */
	snprintf(path, sizeof(path), "%s/./", mnt);
	expect_refused(ctx, path, "it is the root cgroup");
	if (strcmp(self, mnt))
		expect_refused(ctx, self, "test_cgroup itself runs in it");
	expect_refused(ctx, "/tmp", "not a cgroup v2 directory");
	expect_refused(ctx, "/nonexistent/weir", "cannot resolve cgroup /nonexistent/weir");
	weir_ctx_close(ctx);

	/* outside every pattern: any child of the root that does not hold this process */
	ctx = open_ctx("\"endpoint_cgroups\": [\"/kubepods/**\"]");
	d = opendir(mnt);
	assert_non_null(d);
	while ((e = readdir(d))) {
		snprintf(path, sizeof(path), "%s/%s", mnt, e->d_name);
		if (e->d_type != DT_DIR || e->d_name[0] == '.' || !strcmp(e->d_name, "kubepods") ||
		    (!strncmp(self, path, strlen(path)) && self[strlen(path)] == '/'))
			continue;
		snprintf(want, sizeof(want),
			 "\"/%s\" matches no pattern of the node config's "
			 "endpoint_cgroups",
			 e->d_name);
		expect_refused(ctx, path, want);
		checked = true;
		break;
	}
	closedir(d);
	weir_ctx_close(ctx);
	if (!checked)
		print_message("no cgroup besides this process's: the pattern refusal was not "
			      "checked here (tests/e2e/hook.t checks it)\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_refusals),
	};
	int r;

	snprintf(conf_path, sizeof(conf_path), "/tmp/weir-unit-%d.conf", (int)getpid());
	weir_log_init("test_cgroup", WEIR_LOG_ERROR, WEIR_LOG_TEXT);
	r = cmocka_run_group_tests_name("cgroup", tests, NULL, NULL);
	unlink(conf_path);
	return r;
}
