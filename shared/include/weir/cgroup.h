/* SPDX-License-Identifier: Apache-2.0 */
#ifndef WEIR_CGROUP_H
#define WEIR_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The cgroup v2 mount point, from /proc/self/mountinfo (never assumed). */
int weir_cgroup2_mount(char *out, size_t size);
/* Absolute cgroup v2 directory of a process. */
int weir_cgroup_of_pid(pid_t pid, char *out, size_t size);
/* The kernel's cgroup id (what bpf_get_current_cgroup_id() returns) of a cgroup directory. */
int weir_cgroup_id(const char *path, uint64_t *id);

/*
 * Where endpoints may be (node config "endpoint_cgroups"): patterns of cgroup v2 paths, relative
 * to the cgroup2 mount. Each component is an fnmatch(3) glob of one path component; a last
 * component "**" stands for one or more further components ("**" below "/kubepods" matches any
 * cgroup under /kubepods, but not /kubepods itself).
 */
#define WEIR_MAX_ENDPOINT_CGROUPS 32
extern const char *const weir_default_endpoint_cgroups[];
/* NULL when pattern is well formed, else what is wrong with it. */
const char *weir_cgroup_pattern_invalid(const char *pattern);
/* Does rel (a cgroup path relative to the cgroup2 mount, "/a/b") match pattern? */
bool weir_cgroup_pattern_match(const char *pattern, const char *rel);

struct weir_ctx;
struct weir_error;
/*
 * May this cgroup become a weir endpoint? Refuses the root cgroup, the cgroup weir itself runs
 * in and its ancestors, any ancestor of an existing endpoint, and cgroups no endpoint_cgroups
 * pattern matches, with one line saying which. cgroup (an absolute directory, size bytes) is
 * replaced by its canonical path. Call it with the registry lock held, so that no endpoint
 * appears below the cgroup between the check and the attach.
 */
int weir_cgroup_endpoint_check(struct weir_ctx *ctx, char *cgroup, size_t size,
			       struct weir_error *err);

#endif
