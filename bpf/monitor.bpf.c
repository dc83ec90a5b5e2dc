// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weir's monitoring programs: TCP health from sockops on the container's cgroup (opens,
 * failures, retransmits, connect latency and RTT histograms, flow records at close), and the
 * kernel's own drop reasons for the endpoints' packets from the kfree_skb tracepoint.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "weir.h"
#include "lib/kernel.h"
#include "lib/endpoint.h"
#include "lib/events.h"
#include "lib/hist.h"
#include "lib/sockopt.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* TCP states (include/net/tcp_states.h) */
#define WEIR_TCP_ESTABLISHED 1
#define WEIR_TCP_SYN_SENT    2
#define WEIR_TCP_FIN_WAIT2   5
#define WEIR_TCP_CLOSE	     7
#define WEIR_TCP_CLOSE_WAIT  8
#define WEIR_TCP_CLOSING     11

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WEIR_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, struct weir_tcp_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_tcp SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, WEIR_MAX_DROP_KEYS);
	__type(key, struct weir_drop_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_drops SEC(".maps");

/* Network namespace inode to endpoint: drops of packets that have no socket yet. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WEIR_MAX_NETNS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_netns SEC(".maps");

/*
 * Per-socket state. Sockets learn their endpoint in process context (connect, listen), where
 * the current cgroup is the container's; BPF_F_CLONE hands a listener's state to the
 * connections it accepts, which are established in softirq context.
 */
struct weir_sk {
	__u64 start_ns;
	__u32 ep_id;
	__u8 active;
	__u8 established;
	__u8 peer_fin; /* the peer's FIN arrived: bytes_received counts it as one byte */
	__u8 pad;
	__u32 srtt_us; /* the last estimate while data flowed, before the closing handshake */
	__u32 pad2;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct weir_sk);
} weir_sk_state SEC(".maps");

/*
 * The endpoint of a socket, from the socket's own cgroup and then its ancestors. sockops may
 * not call bpf_get_current_cgroup_id() on older kernels (6.1), and the socket's cgroup is the
 * better answer anyway: it is where the socket was made.
 */
static __always_inline __u32 *sock_ep(struct bpf_sock *sk)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	struct cgroup *cg;
	int level;

	if (!tp)
		return NULL;
	cg = BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.sk_cgrp_data.cgroup);
	for (level = 0; level < WEIR_MAX_CGROUP_DEPTH && cg; level++) {
		__u64 id = BPF_CORE_READ(cg, kn, id);
		__u32 *ep = bpf_map_lookup_elem(&weir_cgroups, &id);

		if (ep)
			return ep;
		cg = BPF_CORE_READ(cg, self.parent, cgroup);
	}
	return NULL;
}

static __always_inline struct weir_tcp_stats *tcp_stats(__u32 ep_id)
{
	return bpf_map_lookup_elem(&weir_tcp, &ep_id);
}

static __always_inline void flow_end(struct bpf_sock_ops *skops, struct bpf_sock *sk,
				     struct weir_sk *st, const struct weir_endpoint *cfg)
{
	struct weir_event ev = {};
	struct tcp_sock *tp;

	if (!(cfg->flags & WEIR_EP_MON_FLOWS) || !st->established)
		return;
	ev.type = WEIR_EV_FLOW;
	ev.verdict = WEIR_VERDICT_ALLOWED;
	ev.dir = st->active ? WEIR_EGRESS : WEIR_INGRESS;
	ev.proto = 6;
	ev.ep_id = st->ep_id;
	ev.lport = (__u16)skops->local_port;
	/* the kernel hands remote_port over as the network-order port shifted left by 16 */
	ev.rport = (__u16)bpf_ntohl(skops->remote_port);
	if (skops->family == 2) {
		ev.family = WEIR_V4;
		__builtin_memcpy(ev.laddr, &skops->local_ip4, 4);
		__builtin_memcpy(ev.raddr, &skops->remote_ip4, 4);
	} else {
		__u32 l[4], r[4];

		/* one 32-bit load each: the verifier refuses the 64-bit loads clang would merge */
		for (int i = 0; i < 4; i++) {
			l[i] = *(volatile __u32 *)&skops->local_ip6[i];
			r[i] = *(volatile __u32 *)&skops->remote_ip6[i];
		}
		__builtin_memcpy(ev.laddr, l, 16);
		__builtin_memcpy(ev.raddr, r, 16);
	}
	ev.start_ns = st->start_ns;
	ev.end_ns = bpf_ktime_get_boot_ns();
	/*
	 * Payload only: the sockops byte counters count sequence space, where SYN and FIN
	 * take a byte each. tcp_sock has the payload sent and retransmitted apart.
	 */
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp) {
		ev.bytes_out = tp->bytes_sent - tp->bytes_retrans;
		ev.bytes_in = tp->bytes_received - (st->peer_fin ? 1 : 0);
	} else {
		ev.bytes_out = skops->bytes_acked;
		ev.bytes_in = skops->bytes_received;
	}
	ev.segs_out = skops->data_segs_out;
	ev.segs_in = skops->data_segs_in;
	ev.srtt_us = st->srtt_us;
	ev.retrans = skops->total_retrans;
	ev.cookie = bpf_get_socket_cookie(skops);
	weir_event_publish(&ev, ev.cookie);
}

static __always_inline int sk_error(struct bpf_sock *sk)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

	return tp ? tp->inet_conn.icsk_inet.sk.sk_err : 0;
}

/*
 * What an endpoint's annotations ask of its TCP sockets: the congestion control
 * (tcp-congestion.weir.io), the priority and DSCP (priority.weir.io), and a pacing rate a
 * little below the egress limit, so that one flow stays under it without a single drop (the
 * kernel paces by itself without fq). Set when the socket connects, listens or is accepted.
 */
static __always_inline void sock_apply(struct bpf_sock_ops *skops, __u32 ep_id)
{
	struct weir_endpoint *cfg = weir_ep_cfg(ep_id);

	if (!cfg || !(cfg->flags & WEIR_EP_ACTIVE))
		return;
	if (cfg->flags & WEIR_EP_CC) {
		char cc[WEIR_CC_NAME];

		__builtin_memcpy(cc, cfg->cc, sizeof(cc));
		cc[WEIR_CC_NAME - 1] = 0;
		bpf_setsockopt(skops, WEIR_SOL_TCP, WEIR_TCP_CONGESTION, cc, sizeof(cc));
	}
	if (cfg->flags & WEIR_EP_PRIORITY) {
		int prio = (int)cfg->priority, tos = cfg->tos;

		/* the priority last: IP_TOS sets one of its own, derived from the TOS */
		if (skops->family == WEIR_AF_INET6)
			bpf_setsockopt(skops, WEIR_SOL_IPV6, WEIR_IPV6_TCLASS, &tos, sizeof(tos));
		else
			bpf_setsockopt(skops, WEIR_SOL_IP, WEIR_IP_TOS, &tos, sizeof(tos));
		bpf_setsockopt(skops, WEIR_SOL_SOCKET, WEIR_SO_PRIORITY, &prio, sizeof(prio));
	}
	if (cfg->shape[WEIR_EGRESS].pace) {
		int pace = cfg->shape[WEIR_EGRESS].pace > 0x7fffffff
				   ? 0x7fffffff
				   : (int)cfg->shape[WEIR_EGRESS].pace;

		bpf_setsockopt(skops, WEIR_SOL_SOCKET, WEIR_SO_MAX_PACING_RATE, &pace,
			       sizeof(pace));
	}
}

SEC("sockops")
int weir_sockops(struct bpf_sock_ops *skops)
{
	struct weir_tcp_stats *ts;
	struct weir_endpoint *cfg;
	struct weir_sk *st;
	struct bpf_sock *sk;
	__u32 op = skops->op, *ep;
	__u64 now;

	sk = skops->sk;
	if (!sk)
		return 1;

	if (op == BPF_SOCK_OPS_NEEDS_ECN) {
		struct weir_endpoint *ecfg;

		/* a shaped endpoint asks for ECN: CE marks then slow its peers without a loss */
		ep = sock_ep(sk);
		ecfg = ep ? weir_ep_cfg(*ep) : NULL;
		if (ecfg && (ecfg->flags & WEIR_EP_ACTIVE) &&
		    (ecfg->shape[WEIR_EGRESS].rate || ecfg->shape[WEIR_INGRESS].rate))
			skops->reply = 1;
		return 1;
	}
	if (op == BPF_SOCK_OPS_TCP_CONNECT_CB || op == BPF_SOCK_OPS_TCP_LISTEN_CB) {
		ep = sock_ep(sk);
		if (!ep)
			return 1;
		sock_apply(skops, *ep);
		st = bpf_sk_storage_get(&weir_sk_state, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (!st)
			return 1;
		st->ep_id = *ep;
		st->start_ns = bpf_ktime_get_boot_ns();
		st->active = op == BPF_SOCK_OPS_TCP_CONNECT_CB;
		st->established = 0;
		if (st->active)
			bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG |
								 BPF_SOCK_OPS_RTT_CB_FLAG |
								 BPF_SOCK_OPS_RETRANS_CB_FLAG);
		return 1;
	}

	st = bpf_sk_storage_get(&weir_sk_state, sk, 0, 0);
	if (!st)
		return 1;
	if (op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		sock_apply(skops, st->ep_id); /* inherited from the listener, set again */
	cfg = weir_ep_cfg(st->ep_id);
	if (!cfg || !(cfg->flags & WEIR_EP_ACTIVE) || !(cfg->flags & WEIR_EP_MON_TCP))
		return 1;
	ts = tcp_stats(st->ep_id);
	if (!ts)
		return 1;
	now = bpf_ktime_get_boot_ns();

	switch (op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		ts->active_opens++;
		weir_hist_add(&ts->connect_latency, (now - st->start_ns) / 1000);
		st->established = 1;
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		ts->passive_opens++;
		st->start_ns = now;
		st->active = 0;
		st->established = 1;
		bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG |
							 BPF_SOCK_OPS_RTT_CB_FLAG |
							 BPF_SOCK_OPS_RETRANS_CB_FLAG);
		break;
	case BPF_SOCK_OPS_RTT_CB:
		/*
		 * srtt_us is the kernel's smoothed RTT << 3; 0 means no estimate yet. Samples of
		 * the closing handshake measure how fast the peer closes, not the path.
		 */
		if (skops->srtt_us &&
		    (skops->state == WEIR_TCP_ESTABLISHED || skops->state == WEIR_TCP_CLOSE_WAIT)) {
			st->srtt_us = skops->srtt_us >> 3;
			weir_hist_add(&ts->srtt, st->srtt_us);
		}
		break;
	case BPF_SOCK_OPS_RETRANS_CB:
		/* args: first sequence, segments, tcp_transmit_skb's result */
		if (skops->args[2] == 0)
			ts->retransmits += skops->args[1];
		break;
	case BPF_SOCK_OPS_STATE_CB:
		/* args: old state, new state */
		if (skops->args[1] == WEIR_TCP_CLOSE_WAIT || skops->args[1] == WEIR_TCP_CLOSING)
			st->peer_fin = 1;
		if (skops->args[1] != WEIR_TCP_CLOSE)
			break;
		if (skops->args[0] == WEIR_TCP_SYN_SENT) {
			ts->failed_connects++;
			break;
		}
		/* FIN_WAIT2 ends by the peer's FIN, unless a reset or timeout set an error */
		if (skops->args[0] == WEIR_TCP_FIN_WAIT2 && !sk_error(sk))
			st->peer_fin = 1;
		flow_end(skops, sk, st, cfg);
		break;
	}
	return 1;
}

/* Endpoint of a dropped skb: its socket's cgroup, else its device's network namespace. */
static __always_inline __u32 *drop_ep(struct sk_buff *skb)
{
	struct sock *sk = BPF_CORE_READ(skb, sk);
	__u32 inum;

	if (sk) {
		__u64 cgid = BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
		__u32 *ep = bpf_map_lookup_elem(&weir_cgroups, &cgid);

		if (ep)
			return ep;
	}
	inum = BPF_CORE_READ(skb, dev, nd_net.net, ns.inum);
	if (!inum)
		return NULL;
	return bpf_map_lookup_elem(&weir_netns, &inum);
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(weir_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	struct weir_drop_key key;
	__u64 one = 1, *cnt;
	__u32 *ep;

	/* SKB_CONSUMED (6.3+) never reaches kfree_skb; before it, 0 means "not dropped" */
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED)) {
		if ((__u32)reason <= (__u32)bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
			return 0;
	} else if (reason == 0) {
		return 0;
	}
	/*
	 * weir's own policy drops are counted as such already: at egress the kernel names them
	 * BPF_CGROUP_EGRESS, at ingress SOCKET_FILTER (the cgroup program runs in sk_filter).
	 */
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_BPF_CGROUP_EGRESS) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_BPF_CGROUP_EGRESS))
		return 0;
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_SOCKET_FILTER) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_SOCKET_FILTER))
		return 0;
	ep = drop_ep(skb);
	if (!ep)
		return 0;
	key.ep_id = *ep;
	key.reason = (__u32)reason;
	cnt = bpf_map_lookup_elem(&weir_drops, &key);
	if (cnt)
		(*cnt)++;
	else
		bpf_map_update_elem(&weir_drops, &key, &one, BPF_NOEXIST);
	return 0;
}
