// SPDX-License-Identifier: Apache-2.0
/* weir-nri's handler helpers that need no kernel: OCI cgroupsPath to a cgroup v2 directory. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "handlers.h"
#include "log.h"

#define HYBRID	"/sys/fs/cgroup/unified"
#define UNIFIED "/sys/fs/cgroup"

static void expect_dir(const char *cgroups_path, const char *root, const char *want)
{
	char out[512];
	int r = weir_nri_cgroup_dir(cgroups_path, root, out, sizeof(out));

	if (r)
		print_error("\"%s\": got %d\n", cgroups_path, r);
	assert_int_equal(r, 0);
	assert_string_equal(out, want);
}

static void expect_err(const char *cgroups_path, int want)
{
	char out[512] = "untouched";

	assert_int_equal(weir_nri_cgroup_dir(cgroups_path, UNIFIED, out, sizeof(out)), want);
}

static void test_cgroupfs(void **state)
{
	/* containerd's cgroupfs driver: CRI cgroup parent + "/" + container id */
	expect_dir("/weir-test/pod-1234/abcdef", HYBRID, HYBRID "/weir-test/pod-1234/abcdef");
	expect_dir("/kubepods/besteffort/pod1/c1", UNIFIED, UNIFIED "/kubepods/besteffort/pod1/c1");
	expect_dir("/", UNIFIED, UNIFIED "/");
}

static void test_systemd(void **state)
{
	/* "slice:prefix:name": the slice's parents come from its dashes */
	expect_dir("kubepods-besteffort-pod12_34.slice:cri-containerd:abc", UNIFIED,
		   UNIFIED "/kubepods.slice/kubepods-besteffort.slice/"
			   "kubepods-besteffort-pod12_34.slice/cri-containerd-abc.scope");
	expect_dir("kubepods.slice:cri-containerd:abc", HYBRID,
		   HYBRID "/kubepods.slice/cri-containerd-abc.scope");
	expect_dir("system.slice::abc", UNIFIED, UNIFIED "/system.slice/abc.scope");
	/* the root slice and an empty slice are the cgroup root */
	expect_dir("-.slice:docker:abc", UNIFIED, UNIFIED "/docker-abc.scope");
	expect_dir(":docker:abc", UNIFIED, UNIFIED "/docker-abc.scope");
}

static void test_invalid(void **state)
{
	expect_err(NULL, -EINVAL);
	expect_err("", -EINVAL);
	expect_err("relative/path", -EINVAL);
	expect_err("a.slice:b", -EINVAL);		    /* two fields */
	expect_err("a.slice:b:c:d", -EINVAL);		    /* four fields */
	expect_err("a.slice:b:", -EINVAL);		    /* no name */
	expect_err("kubepods:cri-containerd:abc", -EINVAL); /* not a .slice */
	expect_err(".slice:p:n", -EINVAL);		    /* nothing before .slice */
	expect_err("a--b.slice:p:n", -EINVAL);		    /* empty component */
	expect_err("-a.slice:p:n", -EINVAL);
	expect_err("a-.slice:p:n", -EINVAL);
}

static void test_too_long(void **state)
{
	char out[32];

	assert_int_equal(
		weir_nri_cgroup_dir("/weir-test/pod-1234/abcdef", UNIFIED, out, sizeof(out)),
		-ENAMETOOLONG);
	assert_int_equal(
		weir_nri_cgroup_dir("a-b-c-d-e-f-g-h.slice:p:n", UNIFIED, out, sizeof(out)),
		-ENAMETOOLONG);
	assert_int_equal(
		weir_nri_cgroup_dir("/x", "/0123456789012345678901234567890123", out, sizeof(out)),
		-ENAMETOOLONG);
	/* exactly fitting */
	assert_int_equal(
		weir_nri_cgroup_dir("/abc", "/0123456789012345678901234", out, sizeof(out)), 0);
	assert_string_equal(out, "/0123456789012345678901234/abc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cgroupfs),
		cmocka_unit_test(test_systemd),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_too_long),
	};

	weir_log_init("test_nri_handlers", WEIR_LOG_ERROR, WEIR_LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
