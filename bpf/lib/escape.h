/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Escape calls: which syscalls (by number, for the native and the 32-bit ABI) belong to which
 * group, and the argument checks that decide whether a call is one (unshare without a new
 * namespace is not). Used at syscall entry by the tracing programs (weir_escape_entry(), on
 * either path: fentry per syscall or raw_tp/sys_enter) and, for the syscall the task is in, by
 * the BPF-LSM capable hook.
 */
#ifndef WEIR_LIB_ESCAPE_H
#define WEIR_LIB_ESCAPE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "../weir.h"
#include "kernel.h"
#include "guard.h"
#include "entry.h"

/* Filled by libweir from the node's own syscall numbers. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WEIR_SYSCALL_SLOTS);
	__type(key, __u32);
	__type(value, struct weir_syscall_nr);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_syscalls SEC(".maps");

#define WEIR_TS_COMPAT	    0x0002 /* x86 thread_info.status: a 32-bit syscall runs */
#define WEIR_PTRACE_ATTACH  16
#define WEIR_PTRACE_SEIZE   0x4206
#define WEIR_AF_UNIX	    1
#define WEIR_AF_INET	    2
#define WEIR_AF_INET6	    10
/* CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET (clone(2)'s low byte is a signal) */
#define WEIR_CLONE_NEW_MASK 0x7e020000ULL
#define WEIR_CLONE_NEWTIME  0x00000080ULL /* unshare(2) and clone3(2) only */

struct weir_syscall_args {
	__u64 a[6];
};

/* Does the current task run a 32-bit syscall? Only x86 kernels have the field. */
static __always_inline int weir_syscall_compat(void)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();

	if (!bpf_core_field_exists(t->thread_info.status))
		return 0;
	return (BPF_CORE_READ(t, thread_info.status) & WEIR_TS_COMPAT) != 0;
}

/* What syscall nr is in each ABI; NULL when it is nothing in either. */
static __always_inline const struct weir_syscall_nr *weir_syscall_nr_of(long nr)
{
	const struct weir_syscall_nr *e;
	__u32 idx = (__u32)nr;

	if (nr < 0 || nr >= WEIR_SYSCALL_SLOTS)
		return NULL;
	e = bpf_map_lookup_elem(&weir_syscalls, &idx);
	return e && (e->abi[0].call | e->abi[1].call) ? e : NULL;
}

/* The entry of the ABI the current task's syscall uses, or NULL when it is nothing there. */
static __always_inline const struct weir_syscall *weir_syscall_of(const struct weir_syscall_nr *e,
								  int *compat)
{
	*compat = weir_syscall_compat();
	return e->abi[*compat & 1].call ? &e->abi[*compat & 1] : NULL;
}

/* Arguments [from, to) of the syscall the task is in. */
static __always_inline void weir_syscall_args_of(const struct pt_regs___weir *regs, int compat,
						 struct weir_syscall_args *out, int from, int to)
{
	if (compat) {
		if (from <= 0 && to > 0)
			out->a[0] = (__u32)BPF_CORE_READ(regs, bx);
		if (from <= 1 && to > 1)
			out->a[1] = (__u32)BPF_CORE_READ(regs, cx);
		if (from <= 2 && to > 2)
			out->a[2] = (__u32)BPF_CORE_READ(regs, dx);
		if (from <= 3 && to > 3)
			out->a[3] = (__u32)BPF_CORE_READ(regs, si);
		if (from <= 4 && to > 4)
			out->a[4] = (__u32)BPF_CORE_READ(regs, di);
		if (from <= 5 && to > 5)
			out->a[5] = (__u32)BPF_CORE_READ(regs, bp);
		return;
	}
	if (from <= 0 && to > 0)
		out->a[0] = BPF_CORE_READ(regs, di);
	if (from <= 1 && to > 1)
		out->a[1] = BPF_CORE_READ(regs, si);
	if (from <= 2 && to > 2)
		out->a[2] = BPF_CORE_READ(regs, dx);
	if (from <= 3 && to > 3)
		out->a[3] = BPF_CORE_READ(regs, r10);
	if (from <= 4 && to > 4)
		out->a[4] = BPF_CORE_READ(regs, r8);
	if (from <= 5 && to > 5)
		out->a[5] = BPF_CORE_READ(regs, r9);
}

/*
 * Is this call, with these arguments, one of its group's escape calls? A socketcall's args
 * are replaced by the socket() arguments it carries.
 */
static __always_inline int weir_syscall_matches(const struct weir_syscall *sc,
						struct weir_syscall_args *args)
{
	__u32 sock[3] = {};
	__u64 flags = 0;

	switch (sc->filter) {
	case WEIR_CF_UNSHARE:
		return (args->a[0] & (WEIR_CLONE_NEW_MASK | WEIR_CLONE_NEWTIME)) != 0;
	case WEIR_CF_CLONE:
		return (args->a[0] & WEIR_CLONE_NEW_MASK) != 0;
	case WEIR_CF_CLONE3:
		if (bpf_probe_read_user(&flags, sizeof(flags), (const void *)args->a[0]))
			return 1; /* unreadable: the kernel fails the call, report it anyway */
		return (flags & (WEIR_CLONE_NEW_MASK | WEIR_CLONE_NEWTIME)) != 0;
	case WEIR_CF_PTRACE:
		return args->a[0] == WEIR_PTRACE_ATTACH || args->a[0] == WEIR_PTRACE_SEIZE;
	case WEIR_CF_SOCKETCALL:
		if (args->a[0] != 1 /* SYS_SOCKET */ ||
		    bpf_probe_read_user(sock, sizeof(sock), (const void *)args->a[1]))
			return 0;
		args->a[0] = sock[0];
		args->a[1] = sock[1];
		args->a[2] = sock[2];
		/* fallthrough */
	case WEIR_CF_FAMILY:
		return args->a[0] != WEIR_AF_UNIX && args->a[0] != WEIR_AF_INET &&
		       args->a[0] != WEIR_AF_INET6;
	default:
		return 1;
	}
}

#define WEIR_ESCAPE_SIGKILL 9

/*
 * A syscall's entry, on either path: syscall nr of the current task, with its registers regs.
 * The order matters on the raw_tp path, which every syscall of the node passes: the syscall
 * number first (two array lookups, no map of endpoints), then the arguments, and only for a
 * candidate call the task's cgroup. Reports the call (and kills the process when the
 * endpoint's guard says so) and returns 0.
 */
static __always_inline int weir_escape_entry(const struct pt_regs___weir *regs, long nr)
{
	const struct weir_syscall_nr *e = weir_syscall_nr_of(nr);
	const struct weir_syscall *sc;
	struct weir_guard_event ev = {};
	struct weir_syscall_args args = {};
	struct weir_guard_cfg *g;
	__u8 guard, action;
	int compat, kill;
	__u32 ep, bit;

	if (!e)
		return 0;
	sc = weir_syscall_of(e, &compat);
	if (!sc)
		return 0;
	/* the filters need the first two arguments: the rest only for a call that is one */
	weir_syscall_args_of(regs, compat, &args, 0, 2);
	if (!weir_syscall_matches(sc, &args))
		return 0;
	g = weir_guard_task(&ep);
	if (!g)
		return 0;
	if (sc->call == WEIR_CALL_SOCKET) {
		if (args.a[0] >= 64 || !(g->raw_trace_families & (1ULL << args.a[0])))
			return 0;
		guard = WEIR_GUARD_RAW;
		kill = g->raw_trace_kill != 0;
	} else {
		bit = 1U << (sc->call & 31);
		if (!((g->escape_audit | g->escape_kill) & bit))
			return 0;
		guard = WEIR_GUARD_ESCAPE;
		kill = (g->escape_kill & bit) != 0;
	}
	action = kill ? WEIR_GA_KILLED : WEIR_GA_AUDIT;
	if (sc->filter != WEIR_CF_SOCKETCALL) /* its args are socket()'s already */
		weir_syscall_args_of(regs, compat, &args, 2, 6);
	ev.nr = (__s32)nr;
	ev.compat = compat;
	ev.call = sc->call;
	__builtin_memcpy(ev.args, args.a, sizeof(ev.args));
	weir_guard_report(ep, guard, action, &ev);
	/* SIGKILL ends the process on its way back to user space: this syscall still runs */
	if (kill)
		bpf_send_signal(WEIR_ESCAPE_SIGKILL);
	return 0;
}

#endif
