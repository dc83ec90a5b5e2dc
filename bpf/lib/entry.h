/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Processes a runtime brings into a running container (runc exec, podman exec, kubectl exec),
 * from the moment they enter its cgroup to their exec of the user's command.
 *
 * The container's own init runs the runtime's setup before the workload's exec, and an
 * endpoint's guards are armed only at that exec (guard.h). A runtime's exec into the container
 * later runs a setup of its own inside the armed cgroup: runc's exec init joins the cgroup and
 * then calls keyctl(KEYCTL_JOIN_SESSION_KEYRING); a runtime that forks the process straight
 * into the cgroup (clone3 with CLONE_INTO_CGROUP) calls setns there too. That setup is trusted
 * as the init's is, and only until its exec:
 *
 *  - a process that a process in no endpoint moves into an endpoint's cgroup (cgroup.procs,
 *    tp_btf/cgroup_attach_task), or forks into one from outside (tp_btf/sched_process_fork,
 *    the child's cgroup is not its parent's), is marked with its exec count;
 *  - a process such a marked process forks before its exec is marked too (a runtime's
 *    helpers); its threads share the process's mark (it lives on the thread group leader);
 *  - the mark holds only while the exec count is unchanged: the exec of the user's command
 *    ends it with no program of its own, and everything the command forks is unmarked.
 *
 * A process in an endpoint can never mark one: the workload cannot make itself trusted.
 * Marks live in task storage and die with the task.
 */
#ifndef WEIR_LIB_ENTRY_H
#define WEIR_LIB_ENTRY_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "../weir.h"
#include "kernel.h"
#include "endpoint.h"
#include "guard.h"

/* libweir clears it (and creates no map) on kernels without task storage for tracing. */
const volatile __u32 weir_entry_marks = 1;

struct weir_entry {
	__u64 exec_id; /* the process's self_exec_id when it was marked */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct weir_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_entries SEC(".maps");

/* The endpoint of a cgroup or of its nearest registered ancestor, or NULL. */
static __always_inline __u32 *weir_ep_of_cgroup(struct cgroup *cg)
{
	__u32 *ep;
	__u64 id;
	int i;

	for (i = 0; i < WEIR_MAX_CGROUP_DEPTH && cg; i++) {
		id = BPF_CORE_READ(cg, kn, id);
		ep = bpf_map_lookup_elem(&weir_cgroups, &id);
		if (ep)
			return ep;
		cg = BPF_CORE_READ(cg, self.parent, cgroup);
	}
	return NULL;
}

/* Mark process p (a thread group leader) as entering, until its next exec. */
static __always_inline void weir_entry_mark(struct task_struct *p)
{
	struct weir_entry *e;

	e = bpf_task_storage_get(&weir_entries, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (e)
		e->exec_id = BPF_CORE_READ(p, self_exec_id);
}

/* Is the process of task t entering (marked, and not exec'd since)? */
static __always_inline int weir_entry_of(struct task_struct *t)
{
	struct task_struct *leader = t->group_leader;
	struct weir_entry *e;

	if (!leader)
		return 0;
	e = bpf_task_storage_get(&weir_entries, leader, 0, 0);
	return e && e->exec_id == BPF_CORE_READ(leader, self_exec_id);
}

/* Is the current task a runtime's, entering its container (not yet guarded)? */
static __always_inline int weir_entering(void)
{
	if (!weir_entry_marks)
		return 0;
	return weir_entry_of(bpf_get_current_task_btf());
}

/*
 * The armed guard config of the current task's endpoint for the programs that run in the task's
 * own context (syscall entry, BPF-LSM), or NULL: a process a runtime brings into the container
 * is not judged before its exec.
 */
static __always_inline struct weir_guard_cfg *weir_guard_task(__u32 *ep)
{
	struct weir_guard_cfg *g = weir_guard_current(ep);

	if (!g || weir_entering())
		return NULL;
	return g;
}

#endif
