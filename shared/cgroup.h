/* SPDX-License-Identifier: Apache-2.0 */
#ifndef WEIR_CGROUP_H
#define WEIR_CGROUP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The cgroup v2 mount point, from /proc/self/mountinfo (never assumed). */
int weir_cgroup2_mount(char *out, size_t size);
/* Absolute cgroup v2 directory of a process. */
int weir_cgroup_of_pid(pid_t pid, char *out, size_t size);
/* The kernel's cgroup id (what bpf_get_current_cgroup_id() returns) of a cgroup directory. */
int weir_cgroup_id(const char *path, uint64_t *id);

#endif
