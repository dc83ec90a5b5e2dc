/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The few kernel-internal types the tracing programs read, declared by hand with only the
 * fields used. preserve_access_index makes every access a CO-RE relocation, resolved against
 * the running kernel's BTF at load time, so weir needs no vmlinux.h to build and the offsets
 * are never guessed. The enum values are placeholders: bpf_core_enum_value() asks the kernel.
 */
#ifndef WEIR_LIB_KERNEL_H
#define WEIR_LIB_KERNEL_H

#include <linux/types.h>

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct kernfs_node {
	__u64 id;
};

struct cgroup;

struct cgroup_subsys_state {
	struct cgroup *cgroup;
	struct cgroup_subsys_state *parent;
};

struct cgroup {
	struct cgroup_subsys_state self;
	struct kernfs_node *kn;
};

struct sock_cgroup_data {
	struct cgroup *cgroup;
};

struct ns_common {
	unsigned int inum;
};

struct net {
	struct ns_common ns;
};

typedef struct {
	struct net *net;
} possible_net_t;

struct net_device {
	possible_net_t nd_net;
};

struct sock {
	struct sock_cgroup_data sk_cgrp_data;
	int sk_err;
};

struct inet_sock {
	struct sock sk;
};

struct inet_connection_sock {
	struct inet_sock icsk_inet;
};

struct tcp_sock {
	struct inet_connection_sock inet_conn;
	__u64 bytes_sent;     /* payload bytes transmitted, retransmissions included */
	__u64 bytes_retrans;  /* payload bytes retransmitted */
	__u64 bytes_received; /* sequence space received: payload, plus 1 for a FIN */
};

struct sk_buff {
	struct sock *sk;
	struct net_device *dev;
};

/* security guards: the syscall ABI of a task, and the file a BPF-LSM program judges */
struct thread_info {
	__u32 status; /* x86: TS_COMPAT while the task runs a 32-bit syscall */
};

struct css_set {
	struct cgroup *dfl_cgrp; /* the task's cgroup v2 */
};

struct task_struct {
	struct thread_info thread_info;
	int pid;
	int tgid;
	struct task_struct *group_leader;
	struct css_set *cgroups;
	__u64 self_exec_id; /* one more at every exec (64 bits since 5.7) */
};

/* The kernel's names of the x86-64 registers a syscall's number and arguments live in. */
struct pt_regs___weir {
	unsigned long bp;
	unsigned long bx;
	unsigned long r10;
	unsigned long r9;
	unsigned long r8;
	unsigned long cx;
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long orig_ax;
};

struct super_block {
	unsigned int s_dev; /* dev_t: major << 20 | minor */
};

struct inode {
	unsigned long i_ino;
	struct super_block *i_sb;
};

struct qstr {
	const unsigned char *name;
};

struct dentry {
	struct qstr d_name;
};

struct path {
	struct dentry *dentry;
};

struct file {
	struct path f_path;
	struct inode *f_inode;
};

#pragma clang attribute pop

enum skb_drop_reason {
	SKB_NOT_DROPPED_YET = 0,
	SKB_CONSUMED = 1,
	SKB_DROP_REASON_NOT_SPECIFIED = 2,
	SKB_DROP_REASON_BPF_CGROUP_EGRESS = 3,
	SKB_DROP_REASON_SOCKET_FILTER = 4,
	SKB_DROP_REASON_MAX = 5,
};

#endif
