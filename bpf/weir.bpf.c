// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weir's cgroup datapath: L3/L4 policy, connection tracking and exact per-endpoint counters
 * at cgroup_skb, and the same policy at connect()/sendmsg() so a denied destination fails
 * with EPERM at once instead of timing out. One object serves every container: everything
 * per-container lives in maps keyed by endpoint id.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "weir.h"
#include "lib/verdict.h"
#include "lib/packet.h"
#include "lib/endpoint.h"
#include "lib/policy.h"
#include "lib/conntrack.h"
#include "lib/events.h"
#include "lib/scan.h"
#include "lib/shape.h"
#include "lib/sockopt.h"
#include "lib/sockverdict.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SKB_PASS    1
#define SKB_DROP    0
/* cgroup egress only: the congestion-notification bit (TCP enters CWR, UDP sees ENOBUFS) */
#define SKB_PASS_CN 3
#define SKB_DROP_CN 2
#define SOCK_ALLOW  1
#define SOCK_DENY   0 /* the syscall fails with EPERM */

/* Loopback ifindex is 1 in every network namespace. */
#define LOOPBACK_IFINDEX 1

static __always_inline void weir_add(struct weir_pb *pb, __u64 packets, __u64 bytes)
{
	pb->packets += packets;
	pb->bytes += bytes;
}

/* A peer opened a UDP flow to the endpoint: its replies may be sent with sendto(). */
static __always_inline void weir_ct_peer_open(void *map, const struct weir_endpoint *cfg,
					      const struct weir_ct_key *ct,
					      struct weir_dir_counters *cnt)
{
	struct weir_ct_key k;

	weir_ct_peer_of(&k, ct);
	if (weir_ct_track(map, &k, cfg->gen, WEIR_INGRESS) > 0)
		cnt->ct_inserted++;
}

/* weir_skb_allowed: the packet passes as a flow tracked for the endpoint's registration */
#define WEIR_FLOW_TRACKED 2

/*
 * A verdict for one packet of an endpoint with a policy: flows already tracked pass (that is
 * how replies get through a default-deny direction), new flows are checked against this
 * direction's policy, if it has one, and tracked when allowed. Returns 0 (denied),
 * WEIR_FLOW_TRACKED, or 1 for a packet allowed without a conntrack entry for its flow (ICMPv6
 * control, an attach in progress, a full map): only a tracked flow's verdict may be kept with
 * the socket.
 */
static __always_inline int weir_skb_allowed(__u32 ep_id, const struct weir_endpoint *cfg, __u32 dir,
					    const struct weir_pkt *p, __u32 pclass,
					    struct weir_dir_counters *cnt)
{
	__u32 has_policy = dir == WEIR_EGRESS ? cfg->flags & WEIR_EP_POLICY_EGRESS
					      : cfg->flags & WEIR_EP_POLICY_INGRESS;
	struct weir_ct_key key = {};
	struct weir_ct_val *ct;
	void *map;
	int r;

	if (weir_is_icmp6_control(p))
		return 1;
	weir_ct_key_of(&key, ep_id, dir, p);
	map = weir_ct_map(ep_id);
	ct = weir_ct_lookup(map, &key);
	if (ct && ct->gen == cfg->gen)
		return WEIR_FLOW_TRACKED;
	if (has_policy) {
		const __u8 *remote = dir == WEIR_EGRESS ? p->daddr : p->saddr;

		if (!weir_policy_allows(ep_id, dir, p->family, remote, pclass, p->dport,
					p->have_ports))
			return 0;
	}
	/* no map (an attach in progress): the packet is judged, its replies will be too */
	if (!map)
		return 1;
	r = weir_ct_track(map, &key, cfg->gen, dir);
	if (r > 0)
		cnt->ct_inserted++;
	if (dir == WEIR_INGRESS && p->proto == IPPROTO_UDP && p->have_ports)
		weir_ct_peer_open(map, cfg, &key, cnt);
	return r < 0 ? 1 : WEIR_FLOW_TRACKED;
}

/*
 * What every passing packet pays after its verdict: the rate limiter, the counters, the
 * priority and the congestion mark.
 */
static __always_inline int weir_skb_pass(struct __sk_buff *skb, __u32 ep_id,
					 const struct weir_endpoint *cfg, __u32 dir, __u8 proto,
					 __u8 tcp_flags, struct weir_dir_counters *cnt,
					 __u64 packets, __u64 bytes)
{
	int shaped = weir_shape(ep_id, cfg, dir, bytes);

	if (shaped == WEIR_SHAPE_DROP) {
		weir_add(&cnt->shaped_dropped, packets, bytes);
		if (dir == WEIR_EGRESS) {
			cnt->cn_notified++;
			return SKB_DROP_CN;
		}
		return SKB_DROP;
	}
	weir_add(&cnt->proto[weir_pclass_of(proto)], packets, bytes);
	if (tcp_flags & WEIR_TCP_RST)
		cnt->tcp_resets++;
	if (dir == WEIR_EGRESS && (cfg->flags & WEIR_EP_PRIORITY))
		skb->priority = cfg->priority;
	if (shaped == WEIR_SHAPE_MARK) {
		if (bpf_skb_ecn_set_ce(skb))
			cnt->ce_marked++;
		if (dir == WEIR_EGRESS && proto == IPPROTO_TCP) {
			cnt->cn_notified++;
			return SKB_PASS_CN;
		}
	}
	return SKB_PASS;
}

/*
 * A GSO packet leaves as gso_segs packets, each with its own copy of the headers (hdrs bytes
 * of IP and transport header).
 */
static __always_inline void weir_skb_size(struct __sk_buff *skb, __u32 hdrs, __u64 *packets,
					  __u64 *bytes)
{
	*packets = 1;
	*bytes = skb->len;
	if (skb->gso_segs > 1) {
		*packets = skb->gso_segs;
		*bytes += (*packets - 1) * hdrs;
	}
}

/*
 * The full path: the endpoint from the socket's cgroup, conntrack, the policy. slotted: the
 * socket has a verdict slot valid under the endpoint's registration, for another flow, which
 * this packet must not overwrite.
 */
static __always_inline int weir_skb_full(struct __sk_buff *skb, __u32 dir, int slotted)
{
	struct weir_endpoint *cfg;
	struct weir_dir_counters *cnt;
	struct weir_pkt p = {};
	__u64 packets, bytes;
	__u32 ep_id, pclass;
	int allowed = WEIR_FLOW_TRACKED;
	__u32 *ep = weir_ep_of_skb(skb);

	if (!ep)
		return SKB_DROP; /* attached but not registered: fail closed */
	ep_id = *ep;
	cfg = weir_ep_cfg(ep_id);
	if (!cfg || !(cfg->flags & WEIR_EP_ACTIVE))
		return SKB_DROP;
	cnt = weir_counters_of(ep_id, dir);
	if (!cnt)
		return SKB_DROP;
	if ((cfg->flags & WEIR_EP_SCAN) && dir == WEIR_EGRESS && weir_scan_quarantined(ep_id))
		return SKB_DROP;

	if (weir_parse(skb, &p) < 0) {
		/* Not a parseable IP packet: only an endpoint without policy lets it through. */
		if (cfg->flags & (WEIR_EP_POLICY_EGRESS | WEIR_EP_POLICY_INGRESS)) {
			weir_add(&cnt->policy_dropped, 1, skb->len);
			return SKB_DROP;
		}
		weir_add(&cnt->proto[WEIR_PC_OTHER], 1, skb->len);
		return SKB_PASS;
	}
	pclass = weir_pclass_of(p.proto);
	if (cfg->flags & WEIR_EP_SCAN) {
		if (dir == WEIR_EGRESS)
			weir_scan_egress(ep_id, &p);
		else
			weir_scan_ingress(ep_id, &p);
	}
	weir_skb_size(skb, p.l3_hdr + p.l4_hdr, &packets, &bytes);

	if (cfg->flags & (WEIR_EP_POLICY_EGRESS | WEIR_EP_POLICY_INGRESS))
		allowed = weir_skb_allowed(ep_id, cfg, dir, &p, pclass, cnt);
	/*
	 * Audit-passed packets (allowed 0) never leave a verdict: they stay counted. A slot valid
	 * for another flow of the socket is kept (and weir_sk_verdict_put rewrites only slots
	 * that do not answer): the socket's first flow keeps the fast path.
	 */
	if (allowed == WEIR_FLOW_TRACKED && !slotted && !(cfg->flags & WEIR_EP_SCAN))
		weir_sk_verdict_put(skb, ep_id, cfg, dir, &p);
	if (!allowed) {
		int audit = cfg->flags & WEIR_EP_AUDIT;

		if (cfg->flags & WEIR_EP_MON_FLOWS) {
			struct weir_ct_key k = {};

			weir_ct_key_of(&k, ep_id, dir, &p);
			weir_event_denied(&k, dir, WEIR_AT_PACKET,
					  audit ? WEIR_VERDICT_AUDIT : WEIR_VERDICT_DENIED);
		}
		if (!audit) {
			weir_add(&cnt->policy_dropped, packets, bytes);
			return SKB_DROP;
		}
		weir_add(&cnt->audit_denied, packets, bytes);
	}
	return weir_skb_pass(skb, ep_id, cfg, dir, p.proto, p.tcp_flags, cnt, packets, bytes);
}

/*
 * Global functions: the verifier checks each once, apart from the programs that call them, so
 * the full path's states never multiply with the fast path's (6.1's verifier gave up on the two
 * together), and the JIT lays the full path out of the fast path's way.
 */
__noinline int weir_egress_full(struct __sk_buff *skb, int slotted)
{
	return weir_skb_full(skb, WEIR_EGRESS, slotted);
}

__noinline int weir_ingress_full(struct __sk_buff *skb, int slotted)
{
	return weir_skb_full(skb, WEIR_INGRESS, slotted);
}

/* weir_skb_fast: the packet needs the full path; with _SLOTTED, its socket has a valid slot */
#define WEIR_FAST_MISS	  -1
#define WEIR_FAST_SLOTTED -2

/*
 * The fast path: a packet of a socket whose flow was allowed under the endpoint's current
 * registration (its slot). It finds the endpoint through the slot, not the cgroup, and skips
 * conntrack and the policy. What it still waits for is loads that depend on each other: the
 * endpoint's config and counters are fetched by the cgroup's guess beside the slot, not after.
 */
static __always_inline int weir_skb_fast(struct __sk_buff *skb, __u32 dir)
{
	struct weir_sk_verdict *slot;
	struct weir_sk_owner o;
	struct weir_sk_pkt p;
	__u64 packets, bytes;

	if ((dir == WEIR_EGRESS ? skb->ifindex : skb->ingress_ifindex) == LOOPBACK_IFINDEX)
		return SKB_PASS;
	slot = weir_sk_verdict_get(skb, dir, &o);
	if (!slot)
		return WEIR_FAST_MISS;
	if (!weir_sk_verdict_match(skb, slot, dir, &p) || !weir_sk_verdict_fresh(slot, o.cfg))
		return WEIR_FAST_SLOTTED;
	if (!o.cnt)
		return SKB_DROP;
	weir_skb_size(skb, p.hdrs, &packets, &bytes);
	return weir_skb_pass(skb, o.ep_id, o.cfg, dir, p.proto, p.tcp_flags, o.cnt, packets, bytes);
}

/*
 * The verifier knows nothing of what a global function returns; clang does, and would fold
 * the range check away without the barrier.
 */
static __always_inline int weir_verdict(int v, int max)
{
	barrier_var(v);
	return v >= SKB_DROP && v <= max ? v : SKB_DROP;
}

SEC("cgroup_skb/egress")
int weir_egress(struct __sk_buff *skb)
{
	int v = weir_skb_fast(skb, WEIR_EGRESS);

	if (v >= 0)
		return v;
	return weir_verdict(weir_egress_full(skb, v == WEIR_FAST_SLOTTED), SKB_PASS_CN);
}

SEC("cgroup_skb/ingress")
int weir_ingress(struct __sk_buff *skb)
{
	int v = weir_skb_fast(skb, WEIR_INGRESS);

	if (v >= 0)
		return v;
	return weir_verdict(weir_ingress_full(skb, v == WEIR_FAST_SLOTTED), SKB_PASS);
}

/* ---- the container's interface ------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WEIR_MAX_IFACES);
	__type(key, __u32); /* ifindex of the host-side veth, in weir's network namespace */
	__type(value, struct weir_iface);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_ifaces SEC(".maps");

#define WEIR_ETH_HLEN 14

/*
 * Packets the interface never judges: they reach no socket and make the kernel answer
 * nothing a scan could read, or the kernel needs them whatever the policy. ICMP errors are
 * matched by the kernel to the container's own sockets and flows (path MTU discovery needs
 * them; the cgroup program never saw them either); a non-first fragment carries no port and
 * is judged, reassembled, by the cgroup program (its first fragment was judged here).
 */
static __always_inline int weir_iface_exempt(const struct weir_pkt *p)
{
	if (weir_is_icmp6_control(p))
		return 1;
	if (!p->have_ports)
		return p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP;
	if (p->proto == IPPROTO_ICMP)
		return p->icmp_type == 3 || p->icmp_type == 11 || p->icmp_type == 12;
	if (p->proto == IPPROTO_ICMPV6)
		return p->icmp_type >= 1 && p->icmp_type <= 4;
	return 0;
}

/*
 * Would endpoint ep let this packet in? The cgroup ingress program's verdict without its side
 * effects: a tracked flow, an open ingress or the ingress policy. Audit mode lets everything
 * in here: the cgroup program audits what reaches a socket, and the interface never drops.
 * Nothing is tracked or counted for a packet that passes: the cgroup program of the container
 * that receives it does that, once, as it always did.
 */
static __always_inline int weir_iface_allows(__u32 ep, const struct weir_endpoint *cfg,
					     const struct weir_pkt *p, __u32 pclass)
{
	struct weir_ct_key key = {};

	if ((cfg->flags & WEIR_EP_AUDIT) || !(cfg->flags & WEIR_EP_POLICY_INGRESS))
		return 1;
	weir_ct_key_of(&key, ep, WEIR_INGRESS, p);
	if (weir_ct_tracked(ep, cfg->gen, &key))
		return 1;
	return weir_policy_allows(ep, WEIR_INGRESS, p->family, p->saddr, pclass, p->dport,
				  p->have_ports);
}

/* The packets and bytes of a packet at the interface, as the cgroup programs count them. */
static __always_inline void weir_iface_size(struct __sk_buff *skb, const struct weir_pkt *p,
					    __u64 *packets, __u64 *bytes)
{
	/* IP lengths, each GSO segment with its own headers */
	*packets = 1;
	*bytes = skb->len > WEIR_ETH_HLEN ? skb->len - WEIR_ETH_HLEN : 0;
	if (skb->gso_segs > 1) {
		*packets = skb->gso_segs;
		*bytes += (*packets - 1) * (p->l3_hdr + p->l4_hdr);
	}
}

/*
 * Ingress shaping at the interface, for a packet the policy let in: the limiter of the cgroup
 * path (bpf/lib/shape.h), run before the packet enters the container's namespace. One limiter
 * per interface: the first endpoint of the list whose ingress the interface shapes lends it
 * its rate, its clock and its counters. libweir marks every endpoint of the interface or none
 * (all of them have the same ingress rate: a pod's), so the first is as good as any, and what
 * the limiter drops or marks is counted once, in that endpoint's ingress counters.
 */
static __always_inline int weir_iface_shape(struct __sk_buff *skb, const struct weir_iface *ifc,
					    const struct weir_pkt *p)
{
	const __u32 want = WEIR_EP_ACTIVE | WEIR_EP_SHAPE_IFACE;
	struct weir_endpoint *cfg = NULL;
	struct weir_dir_counters *cnt;
	__u32 ep = 0, i, n = ifc->n;
	__u64 packets, bytes;
	int shaped;

	for (i = 0; i < WEIR_IFACE_MAX_EPS; i++) {
		if (i >= n)
			break;
		ep = ifc->ep[i];
		cfg = weir_ep_cfg(ep);
		if (cfg && (cfg->flags & want) == want)
			break;
		cfg = NULL;
	}
	if (!cfg)
		return WEIR_TC_NEXT;
	weir_iface_size(skb, p, &packets, &bytes);
	shaped = weir_shape_clock(ep, cfg, WEIR_INGRESS, bytes);
	if (shaped == WEIR_SHAPE_PASS)
		return WEIR_TC_NEXT;
	cnt = weir_counters_of(ep, WEIR_INGRESS);
	if (shaped == WEIR_SHAPE_DROP) {
		if (cnt)
			weir_add(&cnt->shaped_dropped, packets, bytes);
		return WEIR_TC_DROP;
	}
	if (weir_tc_set_ce(skb, p->family, WEIR_ETH_HLEN) && cnt)
		cnt->ce_marked++;
	return WEIR_TC_NEXT;
}

/*
 * The egress hook of the container's host-side veth: what the node sends into the container,
 * that is the container's ingress, judged before the container's kernel sees it. Echo
 * requests and SYNs to closed ports get their answers from the container's kernel without a
 * socket, so the cgroup ingress program never runs for them; here a denied one is dropped and
 * its reply never made.
 *
 * The other direction (the veth's ingress hook: what the container's kernel sends without a
 * socket) needs no check: those packets are echo replies, resets and ICMP errors answering
 * packets that passed this program (replies of flows the ingress policy allowed), and IPv6
 * neighbour discovery and multicast listener messages, which are always allowed. What the
 * container's sockets send is judged by the cgroup egress program.
 *
 * One attachment serves every endpoint behind the interface (weir_ifaces): the packet passes
 * when any of them would let it in, since the cgroup program of the container that gets it
 * still decides for its own sockets. A packet dropped here is counted once, as an ingress
 * policy drop of the first endpoint of the list (the earliest attached): every endpoint
 * denied it. What passes is then shaped here when the endpoints' ingress rate is
 * (weir_iface_shape).
 */
SEC("tcx/egress")
int weir_iface_egress(struct __sk_buff *skb)
{
	struct weir_endpoint *first_cfg = NULL;
	struct weir_dir_counters *cnt;
	__u32 ifindex = skb->ifindex;
	struct weir_iface *ifc;
	struct weir_pkt p = {};
	__u32 pclass, first = 0, i, n;
	__u64 packets, bytes;

	if (weir_parse_at(skb, &p, WEIR_ETH_HLEN) < 0)
		return WEIR_TC_NEXT; /* not IP (ARP): nothing a policy judges */
	ifc = bpf_map_lookup_elem(&weir_ifaces, &ifindex);
	if (!ifc)
		return WEIR_TC_DROP; /* attached but not registered: fail closed */
	if (weir_iface_exempt(&p))
		return weir_iface_shape(skb, ifc, &p);
	pclass = weir_pclass_of(p.proto);
	n = ifc->n;
	for (i = 0; i < WEIR_IFACE_MAX_EPS; i++) {
		struct weir_endpoint *cfg;
		__u32 ep;

		if (i >= n)
			break;
		ep = ifc->ep[i];
		cfg = weir_ep_cfg(ep);
		if (!cfg || !(cfg->flags & WEIR_EP_ACTIVE))
			continue; /* an endpoint going away allows nothing */
		if (weir_iface_allows(ep, cfg, &p, pclass))
			return weir_iface_shape(skb, ifc, &p);
		if (!first_cfg) {
			first = ep;
			first_cfg = cfg;
		}
	}
	if (!first_cfg)
		return WEIR_TC_DROP;
	cnt = weir_counters_of(first, WEIR_INGRESS);
	if (!cnt)
		return WEIR_TC_DROP;
	weir_iface_size(skb, &p, &packets, &bytes);
	weir_add(&cnt->policy_dropped, packets, bytes);
	if (first_cfg->flags & WEIR_EP_MON_FLOWS) {
		struct weir_ct_key k = {};

		weir_ct_key_of(&k, first, WEIR_INGRESS, &p);
		weir_event_denied(&k, WEIR_INGRESS, WEIR_AT_PACKET, WEIR_VERDICT_DENIED);
	}
	return WEIR_TC_DROP;
}

static __always_inline void weir_sock_event(__u32 ep_id, __u8 family, const __u8 *remote,
					    __u32 protocol, __u16 port, __u8 verdict)
{
	struct weir_ct_key k = {};

	k.ep_id = ep_id;
	k.proto = protocol;
	k.family = family;
	k.rport = port;
	if (family == WEIR_V4)
		__builtin_memcpy(k.raddr, remote, 4);
	else
		__builtin_memcpy(k.raddr, remote, 16);
	weir_event_denied(&k, WEIR_EGRESS, WEIR_AT_SOCKET, verdict);
}

/*
 * The local side of a sendmsg(): the socket's port (bound by then) and the source address, when
 * the kernel knows it before routing (a socket bound to one address, IP_PKTINFO).
 */
struct weir_sock_local {
	__u16 port; /* host order */
	__u8 have_addr;
	__u8 addr[16];
};

/*
 * Is this datagram a reply to a UDP flow the peer opened (allowed in by the ingress policy,
 * or while ingress was open)? With the source address known, the flow itself answers, as it
 * will for the packet; from a wildcard-bound socket, the peer and the local port do, and the
 * packet path still requires the flow itself. A denied packet, even one passed by audit mode,
 * opens no flow: its reply is judged by the egress policy, as every reply in audit mode is.
 */
static __always_inline int weir_sock_is_reply(__u32 ep_id, const struct weir_endpoint *cfg,
					      __u8 family, const __u8 *remote, __u16 rport,
					      const struct weir_sock_local *local)
{
	__u32 alen = family == WEIR_V4 ? 4 : 16;
	struct weir_ct_key k = {};

	k.ep_id = ep_id;
	k.proto = IPPROTO_UDP;
	k.family = family;
	k.kind = local->have_addr ? WEIR_CT_FLOW : WEIR_CT_PEER;
	k.lport = local->port;
	k.rport = rport;
	if (alen == 4) {
		if (local->have_addr)
			__builtin_memcpy(k.laddr, local->addr, 4);
		__builtin_memcpy(k.raddr, remote, 4);
	} else {
		if (local->have_addr)
			__builtin_memcpy(k.laddr, local->addr, 16);
		__builtin_memcpy(k.raddr, remote, 16);
	}
	return weir_ct_tracked(ep_id, cfg->gen, &k);
}

/* local: the sending socket's side, NULL at connect() (a new flow by definition). */
static __always_inline int weir_sock_verdict(__u8 family, const __u8 *remote, __u32 protocol,
					     __u32 user_port, const struct weir_sock_local *local)
{
	struct weir_dir_counters *cnt;
	struct weir_endpoint *cfg;
	__u32 *ep, pclass;
	__u16 port;

	ep = weir_ep_of_current();
	if (!ep)
		return SOCK_DENY;
	cfg = weir_ep_cfg(*ep);
	if (!cfg || !(cfg->flags & WEIR_EP_ACTIVE))
		return SOCK_DENY;
	if ((cfg->flags & WEIR_EP_SCAN) && weir_scan_quarantined(*ep))
		return SOCK_DENY;
	if (!(cfg->flags & WEIR_EP_POLICY_EGRESS))
		return SOCK_ALLOW;

	pclass = weir_pclass_of(protocol);
	port = bpf_ntohs((__u16)user_port);
	if (weir_policy_allows(*ep, WEIR_EGRESS, family, remote, pclass, port, 1))
		return SOCK_ALLOW;
	if (local && protocol == IPPROTO_UDP &&
	    weir_sock_is_reply(*ep, cfg, family, remote, port, local))
		return SOCK_ALLOW;
	cnt = weir_counters_of(*ep, WEIR_EGRESS);
	if (cfg->flags & WEIR_EP_MON_FLOWS)
		weir_sock_event(*ep, family, remote, protocol, port,
				cfg->flags & WEIR_EP_AUDIT ? WEIR_VERDICT_AUDIT
							   : WEIR_VERDICT_DENIED);
	if (cfg->flags & WEIR_EP_AUDIT) {
		if (cnt)
			cnt->audit_denied_connects++;
		return SOCK_ALLOW;
	}
	if (cnt)
		cnt->denied_connects++;
	return SOCK_DENY;
}

static __always_inline int weir_sock4(struct bpf_sock_addr *ctx, struct weir_sock_local *local)
{
	__u32 addr = ctx->user_ip4;

	/* 127.0.0.0/8 never leaves the container's network namespace. */
	if ((bpf_ntohl(addr) >> 24) == 127)
		return SOCK_ALLOW;
	return weir_sock_verdict(WEIR_V4, (const __u8 *)&addr, ctx->protocol, ctx->user_port,
				 local);
}

static __always_inline int weir_sock6(struct bpf_sock_addr *ctx, struct weir_sock_local *local)
{
	__u32 addr[4];

	addr[0] = ctx->user_ip6[0];
	addr[1] = ctx->user_ip6[1];
	addr[2] = ctx->user_ip6[2];
	addr[3] = ctx->user_ip6[3];
	if (!addr[0] && !addr[1] && !addr[2] && addr[3] == bpf_htonl(1))
		return SOCK_ALLOW; /* ::1 */
	if (!addr[0] && !addr[1] && addr[2] == bpf_htonl(0xffff)) {
		/* An IPv4-mapped address on a dual-stack socket is IPv4 traffic. */
		if ((bpf_ntohl(addr[3]) >> 24) == 127)
			return SOCK_ALLOW;
		if (local && local->have_addr) {
			/* the source is IPv4-mapped too, or the send fails anyway */
			__builtin_memmove(local->addr, local->addr + 12, 4);
		}
		return weir_sock_verdict(WEIR_V4, (const __u8 *)&addr[3], ctx->protocol,
					 ctx->user_port, local);
	}
	return weir_sock_verdict(WEIR_V6, (const __u8 *)addr, ctx->protocol, ctx->user_port, local);
}

/*
 * priority.weir.io: the socket's priority and DSCP, so what the kernel builds for it (a TCP
 * SYN, a UDP datagram) leaves with them; cgroup_skb sets the priority of every packet again,
 * but may not write packet data. Set at connect() and at each unconnected send.
 */
static __always_inline void weir_sock_class(struct bpf_sock_addr *ctx)
{
	struct weir_endpoint *cfg;
	__u32 *ep = weir_ep_of_current();
	int prio, tos;

	if (!ep)
		return;
	cfg = weir_ep_cfg(*ep);
	if (!cfg || !(cfg->flags & WEIR_EP_PRIORITY))
		return;
	prio = (int)cfg->priority;
	tos = cfg->tos;
	/* the priority last: IP_TOS sets one of its own, derived from the TOS */
	if (ctx->family == WEIR_AF_INET6)
		bpf_setsockopt(ctx, WEIR_SOL_IPV6, WEIR_IPV6_TCLASS, &tos, sizeof(tos));
	else
		bpf_setsockopt(ctx, WEIR_SOL_IP, WEIR_IP_TOS, &tos, sizeof(tos));
	bpf_setsockopt(ctx, WEIR_SOL_SOCKET, WEIR_SO_PRIORITY, &prio, sizeof(prio));
}

/*
 * connect() is judged for TCP only: a UDP connect() sends nothing, and programs (ping among
 * them) connect a UDP socket merely to learn their source address. What a connected UDP
 * socket then sends is judged at cgroup_skb egress, which fails a denied send() with EPERM too;
 * a server that connect()s to its client to answer it finds the flow the client opened there.
 */
SEC("cgroup/connect4")
int weir_connect4(struct bpf_sock_addr *ctx)
{
	weir_sock_class(ctx);
	if (ctx->protocol != IPPROTO_TCP)
		return SOCK_ALLOW;
	return weir_sock4(ctx, NULL);
}

SEC("cgroup/connect6")
int weir_connect6(struct bpf_sock_addr *ctx)
{
	weir_sock_class(ctx);
	if (ctx->protocol != IPPROTO_TCP)
		return SOCK_ALLOW;
	return weir_sock6(ctx, NULL);
}

/*
 * sendmsg runs for a datagram with a destination address (sendto(), or sendmsg() with
 * msg_name), before routing. The source address it shows is the one the kernel already knows:
 * the socket's bound address, or an IP_PKTINFO/IPV6_PKTINFO one; 0 for a wildcard-bound
 * socket, whose source routing picks later.
 */
SEC("cgroup/sendmsg4")
int weir_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct weir_sock_local local = {};
	struct bpf_sock *sk = ctx->sk;
	__u32 src = ctx->msg_src_ip4;

	weir_sock_class(ctx);
	if (sk)
		local.port = (__u16)sk->src_port;
	if (src) {
		local.have_addr = 1;
		__builtin_memcpy(local.addr, &src, 4);
	}
	return weir_sock4(ctx, &local);
}

SEC("cgroup/sendmsg6")
int weir_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct weir_sock_local local = {};
	struct bpf_sock *sk = ctx->sk;
	__u32 src[4];

	weir_sock_class(ctx);
	if (sk)
		local.port = (__u16)sk->src_port;
	src[0] = ctx->msg_src_ip6[0];
	src[1] = ctx->msg_src_ip6[1];
	src[2] = ctx->msg_src_ip6[2];
	src[3] = ctx->msg_src_ip6[3];
	if (src[0] | src[1] | src[2] | src[3]) {
		local.have_addr = 1;
		__builtin_memcpy(local.addr, src, 16);
	}
	return weir_sock6(ctx, &local);
}
