/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Types shared by the weir datapath (bpf/weir.bpf.c) and libweir. Fixed-width fields and
 * explicit padding only: these structs are the ABI of the pinned maps, and every change to
 * them must bump WEIR_ABI_VERSION so an old pinned datapath is never read with new layouts.
 */
#ifndef WEIR_BPF_SHARED_H
#define WEIR_BPF_SHARED_H

#include <linux/types.h>

#define WEIR_ABI_VERSION 1

#define WEIR_MAX_ENDPOINTS     16384
#define WEIR_MAX_CGROUPS       65536
#define WEIR_MAX_POLICY_KEYS   1048576
#define WEIR_MAX_CT_ENTRIES    262144
#define WEIR_POLICY_MAX_RANGES 32
/* How far up the cgroup tree a socket's cgroup is searched for its endpoint. */
#define WEIR_MAX_CGROUP_DEPTH  16

enum weir_dir {
	WEIR_EGRESS = 0,
	WEIR_INGRESS = 1,
	WEIR_DIRS,
};

/* Protocol classes: the granularity of counters and of "all ports" verdicts. */
enum weir_pclass {
	WEIR_PC_TCP = 0,
	WEIR_PC_UDP = 1,
	WEIR_PC_ICMP = 2, /* ICMP for IPv4 peers, ICMPv6 for IPv6 peers */
	WEIR_PC_OTHER = 3,
	WEIR_PCLASSES,
};

enum weir_family {
	WEIR_V4 = 4,
	WEIR_V6 = 6,
};

/* weir_endpoints[ep_id].flags */
#define WEIR_EP_ACTIVE	       (1U << 0)
#define WEIR_EP_AUDIT	       (1U << 1) /* verdicts counted, nothing dropped */
#define WEIR_EP_POLICY_EGRESS  (1U << 2) /* egress has rules, so it is default-deny */
#define WEIR_EP_POLICY_INGRESS (1U << 3)

struct weir_endpoint {
	__u32 flags;
	__u32 gen; /* changes with every registration: conntrack entries of an earlier user
		    * of the same endpoint id never match */
};

/*
 * LPM key of weir_policy. The trie matches bit by bit from the first byte after prefixlen, so
 * ep_id, dir and family come first and are always matched whole (WEIR_POLICY_KEY_FIXED_BITS):
 * one trie serves every endpoint, direction and family without a lookup ever crossing into
 * another endpoint's rules. The address then contributes its own prefix length.
 */
struct weir_policy_key {
	__u32 prefixlen;
	__u32 ep_id;
	__u8 dir;
	__u8 family; /* enum weir_family */
	__u8 pad[2];
	__u8 addr[16]; /* network order; IPv4 uses the first 4 bytes */
};

#define WEIR_POLICY_KEY_FIXED_BITS 64

struct weir_port_range {
	__u16 lo; /* host order, inclusive */
	__u16 hi;
};

/*
 * What is allowed towards one prefix, already resolved by the compiler: the rules of every
 * enclosing prefix are merged in and denies are subtracted from allows, so the datapath only
 * answers "is (class, port) in the allowed set" for the longest matching prefix.
 */
struct weir_policy_val {
	__u8 all;  /* bit per enum weir_pclass: the whole class is allowed */
	__u8 ntcp; /* ranges[0, ntcp) are TCP ports, sorted, disjoint */
	__u8 nudp; /* ranges[ntcp, ntcp + nudp) are UDP ports */
	__u8 pad;
	struct weir_port_range ranges[WEIR_POLICY_MAX_RANGES];
};

/*
 * Connection tracking, keyed by the local/remote view rather than src/dst so a packet and
 * its reply find the same entry from either direction. ICMP echo uses the identifier as both
 * ports.
 */
struct weir_ct_key {
	__u32 ep_id;
	__u8 proto; /* IPPROTO_* */
	__u8 family;
	__u16 pad;
	__u16 lport; /* host order */
	__u16 rport;
	__u8 laddr[16];
	__u8 raddr[16];
};

struct weir_ct_val {
	__u32 gen;   /* weir_endpoint.gen when the flow was opened */
	__u8 origin; /* enum weir_dir of the packet that opened the flow */
	__u8 pad[3];
};

struct weir_pb {
	__u64 packets;
	__u64 bytes;
};

struct weir_dir_counters {
	struct weir_pb proto[WEIR_PCLASSES]; /* packets that passed */
	struct weir_pb policy_dropped;	     /* enforce mode drops */
	struct weir_pb audit_denied;	     /* audit mode: would have been dropped, passed */
	__u64 denied_connects;		     /* connect()/sendmsg() refused with EPERM */
	__u64 audit_denied_connects;	     /* audit mode: would have been refused */
};

struct weir_counters {
	struct weir_dir_counters dir[WEIR_DIRS];
};

struct weir_meta {
	__u32 abi_version;
	__u32 pad;
	__u64 object_hash; /* of the BPF object whose programs are pinned: a newer weir with the
			    * same map ABI re-pins its programs and keeps the maps */
};

#endif
