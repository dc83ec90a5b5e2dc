/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-socket verdicts: the cgroup_skb programs keep, in the socket's own storage, the flow a
 * socket's packets were allowed for, so the later packets of that socket skip the endpoint's
 * cgroup lookup, the conntrack lookup and the policy lookup.
 *
 * A slot is exactly a conntrack entry of one flow held by the socket: it is written only where
 * the full path found the flow tracked for the endpoint's current registration (or allowed it
 * and tracked it), with the same key conntrack uses, and it is used only for a packet whose
 * key is that key, while the endpoint's config still carries the registration (gen) the slot
 * was made under. A re-attach (new gen), a detach (the config is cleared), an endpoint id
 * handed to another container (another gen), a packet of another flow on the same socket (a
 * connected UDP socket's sendto() elsewhere, another source address) all miss the slot and take
 * the full path. So a cached packet gets the verdict the full path would give it, except that
 * the slot outlives the eviction of its conntrack entry: every WEIR_SK_REVALIDATE-th cached
 * packet of an endpoint with a policy looks the entry up, which refreshes it in the LRU (the
 * interface program, weir_iface_egress, finds the flow there) and, when it is gone, sends the
 * packet down the full path, which judges and tracks it again as it always did.
 *
 * Endpoints with the port-scan guard never use slots: the guard reads every packet and may
 * quarantine the endpoint's egress at any moment.
 */
#ifndef WEIR_LIB_SOCKVERDICT_H
#define WEIR_LIB_SOCKVERDICT_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>

#include "../weir.h"
#include "packet.h"
#include "conntrack.h"
#include "endpoint.h"
#include "policy.h"

/* struct bpf_sock.state of a TCP socket (enum tcp_state); a connected UDP socket's too */
#define WEIR_SK_ESTABLISHED 1
#define WEIR_SK_CLOSE	    7
#define WEIR_SK_LISTEN	    10

/* a power of two: the conntrack entry of a cached flow is looked up every this many packets */
#define WEIR_SK_REVALIDATE 64

struct weir_sk_verdict {
	struct weir_ct_key key; /* the flow, as conntrack keys it; key.ep_id is the endpoint */
	__u32 gen;		/* weir_endpoint.gen of the registration that allowed it */
	__u32 hits;		/* cached packets, for the periodic conntrack lookup */
};

/*
 * Set to 0 by the loader when a kernel's verifier refuses the programs with the slots (E2BIG;
 * 6.1's did while the fast and the full path were one function): no slot is ever made then, and
 * every packet takes the full path, as before the slots existed.
 */
const volatile __u32 weir_sk_cache = 1;

/*
 * Not pinned: a slot is only a cache, and a datapath loaded anew starts with an empty one.
 * No BPF_F_CLONE: a socket accepted from a listener starts without a slot (listeners get none).
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct weir_sk_verdict);
} weir_sk_verdicts SEC(".maps");

/*
 * The endpoint whose slot the fast path used last for the sockets of this program's cgroup, as
 * its id + 1 (0: none yet). The slot holds the endpoint id, so without a guess the endpoint's
 * config and counters can be loaded only once the slot's own loads have returned; with it, all
 * three are fetched at once. Only a guess: the slot decides, a wrong one (0, another endpoint
 * of nested cgroups) costs the reload the guess saves, and is corrected then. A cgroup storage
 * is the kernel's per (cgroup, link) value, made at attach and freed at detach, reached
 * without a lookup; keyed by the cgroup alone, egress and ingress share it. Not pinned: it
 * lives with the programs that use it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
	__type(key, __u64);
	__type(value, __u32);
} weir_ep_hint SEC(".maps");

/* What the fast path needs of the endpoint that owns a socket's slot. */
struct weir_sk_owner {
	struct weir_endpoint *cfg;
	struct weir_dir_counters *cnt; /* NULL only when the counters array cannot answer */
	__u32 ep_id;
};

/*
 * The socket's slot, when it has one made under the endpoint's current registration, and that
 * endpoint's config and counters in *o. cgroup_skb runs only for full sockets (the kernel's
 * test run gives a dummy socket, which never gets a slot: its protocol is 0).
 */
static __always_inline struct weir_sk_verdict *weir_sk_verdict_get(struct __sk_buff *skb, __u32 dir,
								   struct weir_sk_owner *o)
{
	__u32 *hint = bpf_get_local_storage(&weir_ep_hint, 0);
	struct bpf_sock *sk = skb->sk;
	struct weir_sk_verdict *v;
	__u32 guess = *hint - 1; /* 0 - 1 is past every array's end: both lookups miss */
	__u32 gen = 0, flags = 0;

	/*
	 * Before the slot's lookup, so that these loads overlap its own; the config's words are
	 * read here, not where they are tested, for the same reason.
	 */
	o->cfg = weir_ep_cfg(guess);
	o->cnt = weir_counters_of(guess, dir);
	if (o->cfg) {
		gen = o->cfg->gen;
		flags = o->cfg->flags;
	}
	/*
	 * A listener or an unconnected socket never has one: spare the lookup. weir_sk_cache is
	 * not read here: without it no slot is ever made, and reading it costs a page of its own.
	 */
	if (!sk || sk->state == WEIR_SK_CLOSE || sk->state == WEIR_SK_LISTEN)
		return NULL;
	v = bpf_sk_storage_get(&weir_sk_verdicts, sk, 0, 0);
	if (!v)
		return NULL;
	o->ep_id = v->key.ep_id;
	if (o->ep_id != guess) {
		*hint = o->ep_id + 1;
		o->cfg = weir_ep_cfg(o->ep_id);
		o->cnt = weir_counters_of(o->ep_id, dir);
		if (!o->cfg)
			return NULL;
		gen = o->cfg->gen;
		flags = o->cfg->flags;
	} else if (!o->cfg) {
		return NULL;
	}
	if (gen != v->gen || (flags & (WEIR_EP_ACTIVE | WEIR_EP_SCAN)) != WEIR_EP_ACTIVE)
		return NULL;
	return v;
}

/* What the fast path needs of a packet its slot answers for. */
struct weir_sk_pkt {
	__u32 hdrs; /* IP and transport header bytes, repeated in each segment of a GSO packet */
	__u8 proto;
	__u8 tcp_flags;
	__u8 pad[2];
};

/*
 * Does the slot answer for this packet? The packet's headers, read in place (IPv4 without
 * options, IPv6 without extension headers, TCP or UDP, in the linear part), carry the slot's
 * key: what weir_ct_key_of would make of them, compared without building it. Anything else
 * takes the full path, which parses every packet. It reads the headers as weir_parse_direct
 * does but copies nothing out: the fast path sits in the program's frame beside the full path's
 * (the two must fit the verifier's 512-byte stack), and a struct weir_pkt there did not.
 */
static __always_inline int weir_sk_verdict_match(struct __sk_buff *skb,
						 const struct weir_sk_verdict *v, __u32 dir,
						 struct weir_sk_pkt *out)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	const __u32 *kl = (const __u32 *)v->key.laddr, *kr = (const __u32 *)v->key.raddr;
	__u32 diff, ports;
	__u8 *l4;

	if (v->key.family == WEIR_V4) {
		struct iphdr *ip = data;
		__u32 l, r;

		if ((void *)(ip + 1) > end || skb->protocol != bpf_htons(0x0800) || ip->ihl != 5 ||
		    (ip->frag_off & bpf_htons(0x1fff)))
			return 0;
		l = dir == WEIR_EGRESS ? ip->saddr : ip->daddr;
		r = dir == WEIR_EGRESS ? ip->daddr : ip->saddr;
		/* an IPv4 key's addresses fill the first 4 bytes, the rest is zero */
		diff = (l ^ kl[0]) | (r ^ kr[0]);
		out->proto = ip->protocol;
		out->hdrs = sizeof(*ip);
		l4 = (__u8 *)(ip + 1);
	} else {
		struct ipv6hdr *ip6 = data;
		const __u32 *l, *r;

		if ((void *)(ip6 + 1) > end || skb->protocol != bpf_htons(0x86DD))
			return 0;
		l = (const __u32 *)(dir == WEIR_EGRESS ? &ip6->saddr : &ip6->daddr);
		r = (const __u32 *)(dir == WEIR_EGRESS ? &ip6->daddr : &ip6->saddr);
		diff = (l[0] ^ kl[0]) | (l[1] ^ kl[1]) | (l[2] ^ kl[2]) | (l[3] ^ kl[3]) |
		       (r[0] ^ kr[0]) | (r[1] ^ kr[1]) | (r[2] ^ kr[2]) | (r[3] ^ kr[3]);
		out->proto = ip6->nexthdr;
		out->hdrs = sizeof(*ip6);
		l4 = (__u8 *)(ip6 + 1);
	}
	/* 14 bytes: the ports, and for TCP its data offset and flags */
	if (diff || out->proto != v->key.proto || (void *)(l4 + 14) > end)
		return 0;
	/* the key's ports are in host order: local first */
	ports = dir == WEIR_EGRESS ? ((__u32)v->key.lport << 16) | v->key.rport
				   : ((__u32)v->key.rport << 16) | v->key.lport;
	if ((((__u32)l4[0] << 24) | ((__u32)l4[1] << 16) | ((__u32)l4[2] << 8) | l4[3]) != ports)
		return 0;
	if (out->proto == IPPROTO_TCP) {
		out->hdrs += (l4[12] >> 4) * 4;
		out->tcp_flags = l4[13];
	} else if (out->proto == IPPROTO_UDP) {
		out->hdrs += 8;
		out->tcp_flags = 0;
	} else {
		return 0;
	}
	return 1;
}

/*
 * Now and then, for an endpoint with a policy, the slot's flow is looked up in conntrack: it
 * must still be tracked for this registration.
 */
static __always_inline int weir_sk_verdict_fresh(struct weir_sk_verdict *v,
						 const struct weir_endpoint *cfg)
{
	if (!(cfg->flags & (WEIR_EP_POLICY_EGRESS | WEIR_EP_POLICY_INGRESS)))
		return 1;
	if (++v->hits & (WEIR_SK_REVALIDATE - 1))
		return 1;
	return weir_ct_tracked(v->key.ep_id, cfg->gen, &v->key);
}

/*
 * The full path let this packet through as a flow tracked under cfg->gen (or the endpoint has
 * no policy): keep the verdict with the socket, if it is one whose packets all share a flow,
 * a TCP socket past its handshake's start or a connected UDP socket. A listener (whose SYNs
 * come from every peer) and an unconnected UDP socket get no slot.
 */
static __always_inline void weir_sk_verdict_put(struct __sk_buff *skb, __u32 ep_id,
						const struct weir_endpoint *cfg, __u32 dir,
						const struct weir_pkt *p)
{
	struct bpf_sock *sk = skb->sk;
	struct weir_sk_verdict *v;
	__u32 old;

	/* the cheap tests first: most packets without a slot come from sockets that get none */
	if (!sk || !p->have_ports || sk->state == WEIR_SK_LISTEN || sk->state == WEIR_SK_CLOSE)
		return;
	if (p->proto != IPPROTO_TCP &&
	    (p->proto != IPPROTO_UDP || sk->state != WEIR_SK_ESTABLISHED))
		return;
	if (!weir_sk_cache)
		return;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != p->proto)
		return;
	v = bpf_sk_storage_get(&weir_sk_verdicts, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!v)
		return;
	/*
	 * One writer at a time, and only of a slot that does not answer: the writer claims it by
	 * swapping its stale gen for WEIR_GEN_WRITING, which no registration has, so readers miss
	 * it until the exchange that publishes the whole key with the new gen. A connected UDP
	 * socket sending elsewhere from two CPUs can race here; one of them writes.
	 */
	old = v->gen;
	if (old == cfg->gen || old == WEIR_GEN_WRITING ||
	    __sync_val_compare_and_swap(&v->gen, old, WEIR_GEN_WRITING) != old)
		return;
	weir_ct_key_of(&v->key, ep_id, dir, p);
	v->hits = 0;
	__sync_lock_test_and_set(&v->gen, cfg->gen);
}

#endif
