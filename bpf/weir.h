/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Types shared by the weir datapath (bpf/weir.bpf.c) and libweir. Fixed-width fields and
 * explicit padding only: these structs are the ABI of the pinned maps, and every change to
 * them must bump WEIR_ABI_VERSION so an old pinned datapath is never read with new layouts.
 */
#ifndef WEIR_BPF_SHARED_H
#define WEIR_BPF_SHARED_H

#include <linux/types.h>

#define WEIR_ABI_VERSION 2

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
#define WEIR_EP_MON_TCP	       (1U << 4) /* monitor.weir.io counters or flows: TCP health */
#define WEIR_EP_MON_FLOWS      (1U << 5) /* monitor.weir.io flows: flow and denial events */

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
	__u64 tcp_resets; /* TCP segments with RST: egress sent, ingress received */
	__u64 pad;
};

struct weir_counters {
	struct weir_dir_counters dir[WEIR_DIRS];
};

#define WEIR_META_DROP_REASONS (1U << 0) /* the kfree_skb program is attached */
#define WEIR_META_SOCKOPS      (1U << 1) /* the sockops program loaded */

struct weir_meta {
	__u32 abi_version;
	__u32 flags;
	__u64 object_hash; /* of the BPF object whose programs are pinned: a newer weir with the
			    * same map ABI re-pins its programs and keeps the maps */
};

/* ---- monitoring: TCP health, kernel drops, events ------------------------------------- */

#define WEIR_HIST_BUCKETS  32 /* bucket i: values v with 2^(i-1) <= v < 2^i, bucket 0: v = 0 */
#define WEIR_MAX_DROP_KEYS 65536
#define WEIR_MAX_NETNS	   65536
#define WEIR_MAX_FLOWS	   65536 /* recently ended flows kept for `weir flows` */
#define WEIR_EVENTS_BYTES  (4 << 20)
#define WEIR_DENY_EVENT_NS (10ULL * 1000000000ULL) /* one denial event per flow per 10 s */

struct weir_hist {
	__u64 buckets[WEIR_HIST_BUCKETS];
	__u64 sum; /* microseconds */
};

struct weir_tcp_stats {
	__u64 active_opens;
	__u64 passive_opens;
	__u64 failed_connects; /* SYN_SENT straight to CLOSE: refused, reset or timed out */
	__u64 retransmits;     /* retransmitted segments */
	struct weir_hist connect_latency;
	struct weir_hist srtt;
};

/* Kernel drop reasons (kfree_skb) of an endpoint's packets. */
struct weir_drop_key {
	__u32 ep_id;
	__u32 reason; /* enum skb_drop_reason of the running kernel */
};

enum weir_event_type {
	WEIR_EV_FLOW = 1,   /* a TCP connection ended */
	WEIR_EV_DENIED = 2, /* a flow was denied by policy (first packet or call of it) */
};

enum weir_verdict {
	WEIR_VERDICT_ALLOWED = 0,
	WEIR_VERDICT_DENIED = 1,
	WEIR_VERDICT_AUDIT = 2, /* denied by policy, passed because of audit mode */
};

enum weir_where {
	WEIR_AT_PACKET = 0,
	WEIR_AT_SOCKET = 1, /* connect()/sendmsg() */
};

struct weir_event {
	__u8 type; /* enum weir_event_type */
	__u8 family;
	__u8 proto;
	__u8 dir; /* flow: the side that opened it; denial: the packet's direction */
	__u8 verdict;
	__u8 where;
	__u16 pad;
	__u32 ep_id;
	__u16 lport; /* host order */
	__u16 rport;
	__u8 laddr[16];
	__u8 raddr[16];
	__u64 start_ns; /* CLOCK_BOOTTIME */
	__u64 end_ns;
	__u64 bytes_out; /* flow: payload bytes acknowledged by the peer */
	__u64 bytes_in;	 /* flow: payload bytes received */
	__u64 segs_out;
	__u64 segs_in;
	__u32 srtt_us;
	__u32 retrans;
	__u64 cookie; /* socket cookie, 0 for denials */
};

/* Per-CPU counts of events the ring buffer had no room for. */
struct weir_event_stats {
	__u64 lost;
	__u64 sent;
};

#endif
