// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weir's security guards (security.weir.io):
 *  - on the container's cgroup: raw sockets of IPv4/IPv6 (cgroup/sock_create), the ports a
 *    socket may bind (cgroup/bind4/6), sysctl writes and reads (cgroup/sysctl);
 *  - once per node, for weir's endpoints only: escape calls and raw-socket families the cgroup
 *    hook cannot see, at syscall entry (fentry on each of those syscalls, else
 *    raw_tp/sys_enter: reported, and killed with SIGKILL on request), and the workload's exec
 *    that arms an endpoint's guards (raw_tp/sched_process_exec);
 *  - once per node, with those: the processes a runtime brings into a running container, which
 *    are trusted until their exec (tp_btf/cgroup_attach_task, tp_btf/sched_process_fork;
 *    lib/entry.h);
 *  - where the kernel runs BPF-LSM: the same calls, other socket families and protected host
 *    paths refused with EPERM before they take effect (BPF-LSM hooks, attached per cgroup where the
 *    kernel can, else once per node and filtered by endpoint here).
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "weir.h"
#include "lib/kernel.h"
#include "lib/verdict.h"
#include "lib/endpoint.h"
#include "lib/guard.h"
#include "lib/escape.h"
#include "lib/entry.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SOCK_ALLOW    1
#define SOCK_DENY     0 /* the syscall fails with EPERM */
#define WEIR_SOCK_RAW 3
#define WEIR_EPERM    1

/* libweir sets it before loading: BPF-LSM programs attached per cgroup answer 1/0, global
 * ones 0/-EPERM. */
const volatile __u32 weir_lsm_per_cgroup = 0;

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, WEIR_MAX_SYSCTL_KEYS);
	__type(key, struct weir_sysctl_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_sysctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WEIR_MAX_PROTECTED);
	__type(key, struct weir_inode_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_protected SEC(".maps");

/* ---- cgroup hooks ----------------------------------------------------------------------- */

SEC("cgroup/sock_create")
int weir_sock_create(struct bpf_sock *sk)
{
	struct weir_guard_event ev = {};
	struct weir_guard_cfg *g;
	__u8 mode;
	__u32 ep;

	if (sk->type != WEIR_SOCK_RAW ||
	    (sk->family != WEIR_AF_INET && sk->family != WEIR_AF_INET6))
		return SOCK_ALLOW;
	g = weir_guard_current(&ep);
	if (!g || !g->raw_inet)
		return SOCK_ALLOW;
	mode = g->mode[WEIR_GUARD_RAW];
	ev.nr = -1;
	ev.args[0] = sk->family;
	ev.args[1] = sk->type;
	ev.args[2] = sk->protocol;
	weir_guard_report(ep, WEIR_GUARD_RAW, weir_guard_action(mode), &ev);
	return mode == WEIR_GM_ENFORCE ? SOCK_DENY : SOCK_ALLOW;
}

/* A bind to port 0 lets the kernel choose: clients do it to pick a source address. */
static __always_inline int weir_bind(struct bpf_sock_addr *ctx)
{
	struct weir_guard_event ev = {};
	struct weir_guard_cfg *g;
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	__u32 pclass, ep;
	__u8 mode;

	if (!port)
		return SOCK_ALLOW;
	if (ctx->protocol == IPPROTO_TCP)
		pclass = WEIR_PC_TCP;
	else if (ctx->protocol == IPPROTO_UDP)
		pclass = WEIR_PC_UDP;
	else
		return SOCK_ALLOW;
	g = weir_guard_current(&ep);
	if (!g || g->mode[WEIR_GUARD_BIND] < WEIR_GM_AUDIT ||
	    weir_val_allows(&g->bind, pclass, port, 1))
		return SOCK_ALLOW;
	mode = g->mode[WEIR_GUARD_BIND];
	ev.nr = -1;
	ev.args[0] = ctx->family;
	ev.args[1] = ctx->protocol;
	ev.args[2] = port;
	weir_guard_report(ep, WEIR_GUARD_BIND, weir_guard_action(mode), &ev);
	return mode == WEIR_GM_ENFORCE ? SOCK_DENY : SOCK_ALLOW;
}

SEC("cgroup/bind4")
int weir_bind4(struct bpf_sock_addr *ctx)
{
	return weir_bind(ctx);
}

SEC("cgroup/bind6")
int weir_bind6(struct bpf_sock_addr *ctx)
{
	return weir_bind(ctx);
}

/*
 * The allow-list is an LPM trie over the name: an exact entry ends with the name's NUL, a
 * pattern "a/b/..." is the prefix "a/b/". A name too long for the key is on no list.
 */
SEC("cgroup/sysctl")
int weir_sysctl_guard(struct bpf_sysctl *ctx)
{
	struct weir_sysctl_key key = {};
	struct weir_guard_event ev = {};
	struct weir_guard_cfg *g;
	__u8 mode;
	__u32 ep;
	long n;

	g = weir_guard_current(&ep);
	if (!g || g->mode[WEIR_GUARD_SYSCTL] < WEIR_GM_AUDIT || (!ctx->write && !g->sysctl_reads))
		return SOCK_ALLOW;
	n = bpf_sysctl_get_name(ctx, key.name, sizeof(key.name), 0);
	if (n >= 0) {
		key.prefixlen = WEIR_SYSCTL_KEY_FIXED_BITS + 8 * WEIR_SYSCTL_NAME;
		key.ep_id = ep;
		if (bpf_map_lookup_elem(&weir_sysctl, &key))
			return SOCK_ALLOW;
	}
	mode = g->mode[WEIR_GUARD_SYSCTL];
	ev.nr = -1;
	ev.args[0] = ctx->write;
	__builtin_memcpy(ev.text, key.name, sizeof(ev.text) - 1);
	weir_guard_report(ep, WEIR_GUARD_SYSCTL, weir_guard_action(mode), &ev);
	return mode == WEIR_GM_ENFORCE ? SOCK_DENY : SOCK_ALLOW;
}

/* ---- tracing: syscall entry and exec ---------------------------------------------------- */

/*
 * Escape detection has two paths (libweir picks one at load, README "Escape detection"); both
 * end in weir_escape_entry() (lib/escape.h), so they filter, report and kill alike:
 *  - fentry on each watched syscall's entry function, native and 32-bit: the rest of the node
 *    pays nothing;
 *  - raw_tp/sys_enter, where the kernel refuses fentry: every syscall of the node passes here
 *    while an endpoint needs it.
 */
SEC("raw_tp/sys_enter")
int weir_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	return weir_escape_entry((const struct pt_regs___weir *)ctx->args[0], (long)ctx->args[1]);
}

/*
 * One program per entry function (a fentry program is verified for its one target). x86-64
 * only: elsewhere no target is found and the node takes raw_tp/sys_enter. Where a 32-bit call
 * has a compat entry the kernel's table calls that one; libweir then leaves the plain
 * __ia32_sys_ one out. Every entry function takes the task's pt_regs, whose orig_ax is the
 * syscall number.
 */
#define WEIR_ESCAPE_FENTRY(prefix, fn)                                                             \
	SEC("fentry/__" #prefix "_sys_" #fn)                                                       \
	int weir_esc_##prefix##_##fn(__u64 *ctx)                                                   \
	{                                                                                          \
		const struct pt_regs___weir *regs = (const struct pt_regs___weir *)ctx[0];         \
                                                                                                   \
		return weir_escape_entry(regs, BPF_CORE_READ(regs, orig_ax));                      \
	}
#define WEIR_ESCAPE_NATIVE(fn) WEIR_ESCAPE_FENTRY(x64, fn) WEIR_ESCAPE_FENTRY(ia32, fn)

WEIR_ESCAPE_NATIVE(mount)
WEIR_ESCAPE_NATIVE(umount)
WEIR_ESCAPE_FENTRY(ia32, oldumount)
WEIR_ESCAPE_NATIVE(fsopen)
WEIR_ESCAPE_NATIVE(fsmount)
WEIR_ESCAPE_NATIVE(fspick)
WEIR_ESCAPE_NATIVE(move_mount)
WEIR_ESCAPE_NATIVE(open_tree)
WEIR_ESCAPE_NATIVE(mount_setattr)
WEIR_ESCAPE_NATIVE(pivot_root)
WEIR_ESCAPE_NATIVE(unshare)
WEIR_ESCAPE_NATIVE(setns)
WEIR_ESCAPE_NATIVE(clone)
WEIR_ESCAPE_NATIVE(clone3)
WEIR_ESCAPE_NATIVE(init_module)
WEIR_ESCAPE_NATIVE(finit_module)
WEIR_ESCAPE_NATIVE(delete_module)
WEIR_ESCAPE_NATIVE(kexec_load)
WEIR_ESCAPE_FENTRY(ia32_compat, kexec_load)
WEIR_ESCAPE_FENTRY(x64, kexec_file_load)
WEIR_ESCAPE_NATIVE(bpf)
WEIR_ESCAPE_NATIVE(perf_event_open)
WEIR_ESCAPE_NATIVE(ptrace)
WEIR_ESCAPE_FENTRY(ia32_compat, ptrace)
WEIR_ESCAPE_NATIVE(process_vm_readv)
WEIR_ESCAPE_NATIVE(process_vm_writev)
WEIR_ESCAPE_FENTRY(ia32_compat, process_vm_readv)
WEIR_ESCAPE_FENTRY(ia32_compat, process_vm_writev)
WEIR_ESCAPE_NATIVE(open_by_handle_at)
WEIR_ESCAPE_FENTRY(ia32_compat, open_by_handle_at)
WEIR_ESCAPE_NATIVE(keyctl)
WEIR_ESCAPE_FENTRY(ia32_compat, keyctl)
WEIR_ESCAPE_NATIVE(add_key)
WEIR_ESCAPE_NATIVE(request_key)
WEIR_ESCAPE_NATIVE(userfaultfd)
WEIR_ESCAPE_NATIVE(reboot)
WEIR_ESCAPE_NATIVE(swapon)
WEIR_ESCAPE_NATIVE(swapoff)
WEIR_ESCAPE_NATIVE(iopl)
WEIR_ESCAPE_NATIVE(ioperm)
WEIR_ESCAPE_NATIVE(socket)
WEIR_ESCAPE_FENTRY(ia32, socketcall)
WEIR_ESCAPE_FENTRY(ia32_compat, socketcall)

SEC("raw_tp/sched_process_exec")
int weir_exec(void *ctx)
{
	struct weir_guard_state *st;
	struct weir_guard_cfg *g;
	__u32 *ep = weir_ep_of_current();

	if (!ep)
		return 0;
	g = weir_guard_cfg_of(*ep);
	if (!g)
		return 0;
	st = bpf_map_lookup_elem(&weir_guard_state, ep);
	if (st && st->armed_gen != g->gen)
		st->armed_gen = g->gen;
	return 0;
}

/*
 * A process that something outside every endpoint (the runtime) moves into an endpoint's
 * cgroup: runc exec writes its init's pid to cgroup.procs. It runs after the move: a move in a
 * cgroup v1 hierarchy leaves the task's v2 cgroup elsewhere. A move by a process inside an
 * endpoint marks nothing (a process that moves itself in is in it by now), and neither does a
 * thread moved alone (cgroup.threads).
 */
SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(weir_entry_attach, struct cgroup *dst, const char *path, struct task_struct *task,
	     _Bool threadgroup)
{
	if (!threadgroup || BPF_CORE_READ(task, cgroups, dfl_cgrp) != dst ||
	    !weir_ep_of_cgroup(dst) || weir_ep_of_current())
		return 0;
	weir_entry_mark(task);
	return 0;
}

/*
 * Every fork of the node passes here while the guards need it: a thread first (nothing to do),
 * then the parent's own mark, and only for a child born in another cgroup than its parent's
 * (clone3 with CLONE_INTO_CGROUP) the endpoints.
 */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(weir_entry_fork, struct task_struct *parent, struct task_struct *child)
{
	struct cgroup *cg;

	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	if (weir_entry_of(parent)) {
		weir_entry_mark(child);
		return 0;
	}
	cg = BPF_CORE_READ(child, cgroups, dfl_cgrp);
	if (cg == BPF_CORE_READ(parent, cgroups, dfl_cgrp) || !weir_ep_of_cgroup(cg) ||
	    weir_ep_of_current())
		return 0;
	weir_entry_mark(child);
	return 0;
}

/* ---- BPF-LSM ------------------------------------------------------------------------------ */

static __always_inline int weir_lsm_allow(void)
{
	return weir_lsm_per_cgroup ? 1 : 0;
}

static __always_inline int weir_lsm_deny(void)
{
	return weir_lsm_per_cgroup ? 0 : -WEIR_EPERM;
}

/* Refuse (and report) an escape call of group `call` when the endpoint's guard says so. */
static __always_inline int weir_lsm_escape(__u32 call, int nr, const struct weir_syscall_args *a)
{
	struct weir_guard_event ev = {};
	struct weir_guard_cfg *g;
	__u32 ep;

	g = weir_guard_task(&ep);
	if (!g || !(g->escape_deny & (1U << (call & 31))))
		return weir_lsm_allow();
	ev.nr = nr;
	ev.call = call;
	if (a)
		__builtin_memcpy(ev.args, a->a, sizeof(ev.args));
	weir_guard_report(ep, WEIR_GUARD_ESCAPE, WEIR_GA_DENIED, &ev);
	return weir_lsm_deny();
}

SEC("lsm/socket_create")
int BPF_PROG(weir_lsm_socket, int family, int type, int protocol, int kern)
{
	struct weir_guard_event ev = {};
	struct weir_guard_cfg *g;
	__u32 ep;

	if (kern || family < 0 || family >= 64)
		return weir_lsm_allow();
	g = weir_guard_task(&ep);
	if (!g || !(g->raw_deny_families & (1ULL << family)))
		return weir_lsm_allow();
	ev.nr = -1;
	ev.args[0] = family;
	ev.args[1] = type;
	ev.args[2] = protocol;
	weir_guard_report(ep, WEIR_GUARD_RAW, WEIR_GA_DENIED, &ev);
	return weir_lsm_deny();
}

SEC("lsm/file_open")
int BPF_PROG(weir_lsm_file_open, struct file *file)
{
	struct weir_guard_event ev = {};
	struct weir_inode_key key = {};
	struct weir_guard_cfg *g;
	const unsigned char *name;
	struct inode *inode;
	__u8 mode;
	__u32 ep;

	g = weir_guard_task(&ep);
	if (!g || g->mode[WEIR_GUARD_PATHS] < WEIR_GM_AUDIT)
		return weir_lsm_allow();
	inode = BPF_CORE_READ(file, f_inode);
	key.ep_id = ep;
	key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	key.ino = BPF_CORE_READ(inode, i_ino);
	if (!bpf_map_lookup_elem(&weir_protected, &key))
		return weir_lsm_allow();
	mode = g->mode[WEIR_GUARD_PATHS];
	ev.nr = -1;
	ev.args[0] = key.dev;
	ev.args[1] = key.ino;
	name = BPF_CORE_READ(file, f_path.dentry, d_name.name);
	bpf_probe_read_kernel_str(ev.text, sizeof(ev.text), name);
	weir_guard_report(ep, WEIR_GUARD_PATHS, weir_guard_action(mode), &ev);
	return mode == WEIR_GM_ENFORCE ? weir_lsm_deny() : weir_lsm_allow();
}

/*
 * Nearly every escape call needs a capability (mount, pivot_root, setns and unshare of
 * namespaces other than the user one, modules, kexec, open_by_handle_at, reboot, swap, iopl):
 * refusing the capability while the task is in such a call refuses the call, whatever
 * namespace the capability is asked for in.
 */
SEC("lsm/capable")
int BPF_PROG(weir_lsm_capable, const void *cred, const void *ns, int cap, unsigned int opts)
{
	const struct weir_syscall_nr *e;
	struct pt_regs___weir *regs;
	struct weir_syscall_args args = {};
	const struct weir_syscall *sc;
	int compat;
	long nr;

	regs = (struct pt_regs___weir *)bpf_task_pt_regs(bpf_get_current_task_btf());
	if (!regs)
		return weir_lsm_allow();
	nr = BPF_CORE_READ(regs, orig_ax);
	e = weir_syscall_nr_of(nr);
	sc = e ? weir_syscall_of(e, &compat) : NULL;
	if (!sc || sc->call == WEIR_CALL_SOCKET)
		return weir_lsm_allow();
	weir_syscall_args_of(regs, compat, &args, 0, 6);
	if (!weir_syscall_matches(sc, &args))
		return weir_lsm_allow();
	return weir_lsm_escape(sc->call, (int)nr, &args);
}

/* A user namespace needs no capability: unshare(CLONE_NEWUSER), clone(CLONE_NEWUSER). */
SEC("lsm/userns_create")
int BPF_PROG(weir_lsm_userns, const void *cred)
{
	return weir_lsm_escape(WEIR_CALL_NAMESPACES, -1, NULL);
}

/* Attaching to, or reading the memory of, another process (never the task's own). */
SEC("lsm/ptrace_access_check")
int BPF_PROG(weir_lsm_ptrace, struct task_struct *child, unsigned int mode)
{
	if (!(mode & 0x02)) /* PTRACE_MODE_ATTACH: a read-only /proc look is no escape */
		return weir_lsm_allow();
	return weir_lsm_escape(WEIR_CALL_PTRACE, -1, NULL);
}

SEC("lsm/perf_event_open")
int BPF_PROG(weir_lsm_perf, const void *attr, int type)
{
	return weir_lsm_escape(WEIR_CALL_PERF, -1, NULL);
}

SEC("lsm/bpf")
int BPF_PROG(weir_lsm_bpf, int cmd, const void *attr, unsigned int size)
{
	return weir_lsm_escape(WEIR_CALL_BPF, -1, NULL);
}

/*
 * The loader's proof that BPF-LSM runs: a kernel without "bpf" in its active LSMs loads and
 * attaches BPF-LSM programs but never calls them. Attached on its own, once, while libweir
 * opens a file.
 */
__u32 weir_probe_tgid;
__u64 weir_probe_hits;

SEC("lsm/file_open")
int BPF_PROG(weir_lsm_probe, struct file *file)
{
	if ((__u32)(bpf_get_current_pid_tgid() >> 32) == weir_probe_tgid)
		__sync_fetch_and_add(&weir_probe_hits, 1);
	return 0;
}
