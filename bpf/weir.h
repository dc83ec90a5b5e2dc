/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Types shared by the weir datapath (bpf/weir.bpf.c) and libweir. Fixed-width fields and
 * explicit padding only: these structs are the ABI of the pinned maps, and every change to
 * them must bump WEIR_ABI_VERSION so an old pinned datapath is never read with new layouts.
 */
#ifndef WEIR_BPF_SHARED_H
#define WEIR_BPF_SHARED_H

#include <linux/types.h>
#include <linux/bpf.h> /* struct bpf_spin_lock */

#define WEIR_ABI_VERSION 5

#define WEIR_MAX_ENDPOINTS	16384
#define WEIR_MAX_CGROUPS	65536
#define WEIR_MAX_POLICY_KEYS	1048576
/*
 * Conntrack entries per endpoint (its own LRU, bpf/lib/conntrack.h): the default of the node
 * config's ct_entries and the bounds of it and of conntrack.weir.io/entries.
 */
#define WEIR_CT_DEFAULT_ENTRIES 4096
#define WEIR_CT_MIN_ENTRIES	64
#define WEIR_CT_MAX_ENTRIES	262144
#define WEIR_POLICY_MAX_RANGES	32
/* How far up the cgroup tree a socket's cgroup is searched for its endpoint. */
#define WEIR_MAX_CGROUP_DEPTH	16

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
#define WEIR_EP_SCAN	       (1U << 6) /* port-scan guard: cgroup_skb counts probes */
#define WEIR_EP_PRIORITY       (1U << 7) /* priority.weir.io: priority and tos are set */
#define WEIR_EP_CC	       (1U << 8) /* tcp-congestion.weir.io: cc names the algorithm */
/*
 * The ingress rate is enforced by weir_iface_egress on the host-side veth, before the packet
 * enters the container's namespace; the cgroup ingress program then leaves it alone (shaping
 * it again would count and drop twice). libweir sets it only once the interface program is
 * attached, and on every endpoint of an interface or on none (see weir_iface).
 */
#define WEIR_EP_SHAPE_IFACE    (1U << 9)

#define WEIR_CC_NAME 16 /* TCP_CA_NAME_MAX */

/*
 * Shaping of one direction (kubernetes.io/{egress,ingress}-bandwidth). The limiter is a
 * virtual clock (weir_shape_state): each packet moves it on by its transmission time at the
 * rate; the clock may run ahead of real time by at most burst_ns (the burst), and packets that
 * find it ahead by more than mark_ns are ECN CE-marked and, at egress, tell TCP to slow down.
 */
struct weir_shape {
	__u64 rate; /* bytes per second, 0: not shaped */
	__u64 burst_ns;
	__u64 mark_ns;
	__u64 pace; /* egress: the pacing rate of the endpoint's TCP sockets, bytes per second */
};

/*
 * Two values weir_endpoint.gen never takes: a per-socket verdict slot holds WEIR_GEN_NONE when it
 * is new and WEIR_GEN_WRITING while one CPU rewrites it, so that neither ever looks valid.
 */
#define WEIR_GEN_NONE	 0U
#define WEIR_GEN_WRITING 0xffffffffU

struct weir_endpoint {
	__u32 flags;
	__u32 gen; /* changes with every registration: conntrack entries of an earlier user
		    * of the same endpoint id never match; never WEIR_GEN_NONE or _WRITING */
	struct weir_shape shape[WEIR_DIRS];
	__u32 priority; /* skb priority of what the endpoint sends (WEIR_EP_PRIORITY) */
	__u8 tos;	/* DSCP << 2 */
	__u8 pad[3];
	char cc[WEIR_CC_NAME]; /* TCP congestion control (WEIR_EP_CC), NUL-terminated */
};

/* weir_shape_state[ep * WEIR_DIRS + dir] */
struct weir_shape_state {
	struct bpf_spin_lock lock;
	__u32 gen;    /* weir_endpoint.gen the clock belongs to */
	__u64 vclock; /* boot ns: when the packets let through so far are sent at the rate */
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
 * ports. Every endpoint has a conntrack map of its own (weir_ct[ep], bpf/lib/conntrack.h).
 *
 * kind WEIR_CT_PEER: the peers that opened a UDP flow to the endpoint, by the endpoint's port
 * but without its address (laddr is zero). A sendmsg() on a socket bound to a wildcard address
 * cannot know the source address the kernel will pick, so it cannot look the flow up; this
 * tells it that the datagram answers one. Written by the ingress path with the flow's entry;
 * the packet itself is then judged by the flow entry as every packet is.
 */
enum weir_ct_kind {
	WEIR_CT_FLOW = 0,
	WEIR_CT_PEER = 1,
};

struct weir_ct_key {
	__u32 ep_id;
	__u8 proto; /* IPPROTO_* */
	__u8 family;
	__u8 kind; /* enum weir_ct_kind */
	__u8 pad;
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

/*
 * The container interfaces (bpf/weir.bpf.c weir_iface_egress): weir_ifaces[ifindex] lists the
 * endpoints behind one host-side veth, the ifindex in the node's (weir's own) network
 * namespace. Containers that share a network namespace (a pod) share its interface: a packet
 * passes when any of them would let it in, so the list is bounded and scanned whole.
 */
#define WEIR_IFACE_MAX_EPS 8
#define WEIR_MAX_IFACES	   WEIR_MAX_ENDPOINTS

/*
 * weir_iface_egress's verdicts, tcx's numbers: the same as TC_ACT_UNSPEC and TC_ACT_SHOT for a
 * cls_bpf filter (6.1's uapi headers have no TCX_*)
 */
#define WEIR_TC_NEXT (-1)
#define WEIR_TC_DROP 2

struct weir_iface {
	__u32 n; /* endpoints in ep[0, n), in the order they were attached */
	__u32 ep[WEIR_IFACE_MAX_EPS];
	__u32 clsact_prog; /* libweir's: the id of the program weir's clsact filter runs, or 0 */
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
	__u64 tcp_resets;	       /* TCP segments with RST: egress sent, ingress received */
	struct weir_pb shaped_dropped; /* dropped by the rate limiter, past the burst */
	__u64 ce_marked;	       /* ECN-capable packets the rate limiter marked CE */
	__u64 cn_notified;	       /* egress: TCP told to slow down (congestion notification) */
	__u64 rate_limit;  /* bits per second, 0: not shaped; libweir fills it, never the kernel */
	__u64 ct_inserted; /* conntrack entries this direction's packets added (flows, peers) */
};

struct weir_counters {
	struct weir_dir_counters dir[WEIR_DIRS];
};

#define WEIR_META_DROP_REASONS	(1U << 0) /* the kfree_skb program is attached */
#define WEIR_META_SOCKOPS	(1U << 1) /* the sockops program loaded */
#define WEIR_META_LSM_CGROUP	(1U << 2) /* BPF-LSM works; programs attach per cgroup */
#define WEIR_META_LSM_GLOBAL	(1U << 3) /* BPF-LSM works; programs attach once per node */
#define WEIR_META_TRACING	(1U << 4) /* raw_tp sys_enter and sched_process_exec loaded */
#define WEIR_META_ESCAPE_FENTRY (1U << 5) /* escape detection per syscall (fentry) loaded */
#define WEIR_META_SK_VERDICTS	(1U << 6) /* the datapath loaded with per-socket verdict slots */
#define WEIR_META_SK_RECORDED	(1U << 7) /* the loader set SK_VERDICTS (older ones did not) */

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

/* ---- security guards ------------------------------------------------------------------- */

enum weir_guard {
	WEIR_GUARD_RAW = 0, /* raw-sockets */
	WEIR_GUARD_BIND,
	WEIR_GUARD_SYSCTL,
	WEIR_GUARD_ESCAPE,
	WEIR_GUARD_PATHS,
	WEIR_GUARD_SCAN, /* port-scan */
	WEIR_GUARDS,
};

/* What happened to a guarded action. */
enum weir_gaction {
	WEIR_GA_AUDIT = 0,   /* reported, allowed (audit mode) */
	WEIR_GA_DENIED,	     /* refused with EPERM */
	WEIR_GA_KILLED,	     /* reported, the process killed with SIGKILL */
	WEIR_GA_QUARANTINED, /* port scan: egress quarantined */
	WEIR_GACTIONS,
};

/*
 * Escape calls, in groups the annotation names (bit i of the masks below is group i). The
 * syscalls of each group are in weir_syscalls (filled by libweir from the node's syscall
 * numbers); WEIR_CALL_SOCKET is not an escape call: it carries the raw-sockets families that
 * only the tracing programs can see.
 */
enum weir_call {
	WEIR_CALL_NONE = 0,
	WEIR_CALL_MOUNT,
	WEIR_CALL_PIVOT_ROOT,
	WEIR_CALL_NAMESPACES,
	WEIR_CALL_MODULES,
	WEIR_CALL_KEXEC,
	WEIR_CALL_BPF,
	WEIR_CALL_PERF,
	WEIR_CALL_PTRACE,
	WEIR_CALL_OPEN_BY_HANDLE,
	WEIR_CALL_KEYRING,
	WEIR_CALL_USERFAULTFD,
	WEIR_CALL_REBOOT,
	WEIR_CALL_SWAP,
	WEIR_CALL_IOPL,
	WEIR_CALLS,
	WEIR_CALL_SOCKET = 31,
};

/* How a syscall's arguments decide whether a call is an escape call. */
enum weir_call_filter {
	WEIR_CF_ANY = 0,
	WEIR_CF_UNSHARE,    /* unshare: arg 0 holds CLONE_NEW* flags */
	WEIR_CF_CLONE,	    /* clone: the same, but its low byte is the exit signal */
	WEIR_CF_CLONE3,	    /* clone3: the flags of the struct clone_args arg 0 points to */
	WEIR_CF_PTRACE,	    /* ptrace: PTRACE_ATTACH or PTRACE_SEIZE */
	WEIR_CF_FAMILY,	    /* socket: the family (arg 0) is one a raw-sockets guard names */
	WEIR_CF_SOCKETCALL, /* 32-bit socketcall(SYS_SOCKET, args): the same, read from args */
};

/*
 * weir_syscalls[nr]: what syscall number nr is in the native ABI (abi[0]) and in the 32-bit
 * compat ABI (abi[1], ia32). One entry for both, so that the common case, a number that is
 * nothing in either, costs one array lookup.
 */
#define WEIR_SYSCALL_SLOTS 512
#define WEIR_SYSCALL_ABIS  2

struct weir_syscall {
	__u8 call;   /* enum weir_call, 0: not watched */
	__u8 filter; /* enum weir_call_filter */
};

struct weir_syscall_nr {
	struct weir_syscall abi[WEIR_SYSCALL_ABIS];
};

/* Guard modes, weakest first: a node baseline can only be tightened to a later one. */
enum weir_gmode {
	WEIR_GM_OFF = 0,
	WEIR_GM_AUDIT,
	WEIR_GM_KILL,	 /* escape only */
	WEIR_GM_ENFORCE, /* refused with EPERM (escape and paths: through BPF-LSM) */
};

#define WEIR_SYSCTL_NAME	   120
#define WEIR_SYSCTL_KEY_FIXED_BITS 32

/*
 * weir_guards[ep]: what the endpoint's guards do, resolved by libweir (the node baseline
 * merged in, BPF-LSM availability and the fallback decided), so each program only tests
 * bits. Valid while gen equals weir_endpoints[ep].gen.
 */
struct weir_guard_cfg {
	__u32 gen;
	__u8 mode[WEIR_GUARDS];	  /* enum weir_gmode */
	__u8 sysctl_reads;	  /* reads are checked against the allow-list too */
	__u8 raw_inet;		  /* SOCK_RAW of AF_INET/AF_INET6 (cgroup/sock_create) */
	__u64 raw_deny_families;  /* AF_* bits refused by BPF-LSM socket_create */
	__u64 raw_trace_families; /* AF_* bits seen at socket() entry: reported (and killed) */
	__u32 escape_audit;	  /* call bits reported at syscall entry */
	__u32 escape_kill;	  /* call bits reported and killed at syscall entry */
	__u32 escape_deny;	  /* call bits refused by BPF-LSM */
	__u32 raw_trace_kill;	  /* raw_trace_families are killed, not only reported */
	__u32 scan_threshold;	  /* failed probes (distinct targets) per window */
	__u32 scan_window_ms;
	__u32 quarantine_ms; /* 0: report only */
	__u32 pad;
	struct weir_policy_val bind; /* ports that may be bound (TCP, UDP) */
};

/* weir_guard_state[ep]: what the programs learn at run time. */
struct weir_guard_state {
	__u32 armed_gen; /* = gen once the workload has exec'd: guards apply from then on */
	__u32 scan_reported_gen;
	__u64 scan_window_start; /* boot ns */
	__u32 scan_probes;	 /* distinct targets probed in this window */
	__u32 scan_answered;	 /* ... that answered (SYN-ACK, UDP reply) */
	__u32 scan_refused;	 /* ... that answered with a reset */
	__u32 scan_window_id;
	__u64 quarantine_until; /* boot ns */
};

/* Per-CPU, per endpoint: guarded actions by guard and what happened. */
struct weir_guard_counters {
	__u64 n[WEIR_GUARDS][WEIR_GACTIONS];
	__u64 quarantine_drops; /* packets and connects refused while quarantined */
	__u64 pad;
};

/* LPM key of weir_sysctl: endpoint, then the sysctl name as /proc/sys shows it (a/b/c). */
struct weir_sysctl_key {
	__u32 prefixlen;
	__u32 ep_id;
	char name[WEIR_SYSCTL_NAME];
};

/* weir_protected: inodes of the host paths an endpoint's paths guard protects. */
struct weir_inode_key {
	__u32 ep_id;
	__u32 dev; /* the kernel's encoding: major << 20 | minor */
	__u64 ino;
};

/* Port-scan probes: one entry per distinct target an endpoint opened a flow to. */
struct weir_scan_key {
	__u32 ep_id;
	__u8 family;
	__u8 proto;
	__u16 port;
	__u8 addr[16];
};

struct weir_scan_val {
	__u32 window_id;
	__u32 answered;
};

#define WEIR_GUARD_EVENTS_BYTES (1 << 20)
#define WEIR_MAX_GUARD_RECENT	8192
#define WEIR_MAX_SYSCTL_KEYS	16384
#define WEIR_MAX_PROTECTED	4096
#define WEIR_MAX_SCAN_PROBES	65536
#define WEIR_EV_GUARD		3

struct weir_guard_event {
	__u8 type;   /* WEIR_EV_GUARD */
	__u8 guard;  /* enum weir_guard */
	__u8 action; /* enum weir_gaction */
	__u8 call;   /* escape and raw-sockets at socket(): enum weir_call */
	__u32 ep_id;
	__u64 time_ns; /* CLOCK_BOOTTIME */
	__u32 pid;     /* thread group id, in the host's pid namespace */
	__u32 tid;
	__u32 uid;
	__s32 nr;    /* syscall number, -1 when the guard saw no syscall */
	__u8 compat; /* the 32-bit syscall ABI */
	__u8 pad[7];
	__u64 args[6]; /* syscall arguments, or the guard's own values (see libweir) */
	char comm[16];
	char text[64]; /* sysctl name, file name */
};

/* Per-CPU counts of guard events the ring had no room for. */
struct weir_guard_event_stats {
	__u64 lost;
	__u64 sent;
};

#endif
