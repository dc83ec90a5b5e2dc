/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-endpoint rate limiting at cgroup_skb, without a queue: a virtual clock per endpoint and
 * direction says when the traffic let through so far would have left at the configured rate.
 * A packet moves it on by its own transmission time. While the clock runs ahead of real time
 * by less than the mark threshold the packet passes untouched; beyond it the packet still
 * passes, but an ECN-capable one is marked CE and, at egress, TCP is told to slow down (the
 * congestion-notification bit of the cgroup egress verdict makes it enter CWR); a packet that
 * would push the clock past the burst is dropped. Nothing ever waits, so no standing queue
 * builds up behind the limit.
 */
#ifndef WEIR_LIB_SHAPE_H
#define WEIR_LIB_SHAPE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "../weir.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WEIR_MAX_ENDPOINTS *WEIR_DIRS);
	__type(key, __u32);
	__type(value, struct weir_shape_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_shape_state SEC(".maps");

enum weir_shape_verdict {
	WEIR_SHAPE_PASS = 0,
	WEIR_SHAPE_MARK = 1, /* passes, above the mark threshold */
	WEIR_SHAPE_DROP = 2, /* past the burst */
};

/* The limiter of endpoint ep_id's direction dir, wherever it runs (cgroup_skb or tc). */
static __always_inline int weir_shape_clock(__u32 ep_id, const struct weir_endpoint *cfg, __u32 dir,
					    __u64 bytes)
{
	const struct weir_shape *sh = &cfg->shape[dir & 1];
	__u32 slot = ep_id * WEIR_DIRS + (dir & 1);
	struct weir_shape_state *st;
	__u64 now, clock, ahead, cost;
	int verdict = WEIR_SHAPE_PASS;

	if (!sh->rate)
		return WEIR_SHAPE_PASS;
	st = bpf_map_lookup_elem(&weir_shape_state, &slot);
	if (!st)
		return WEIR_SHAPE_PASS;
	/* bytes is at most a GSO packet's (below 2^24), so this never overflows */
	cost = bytes * 1000000000ULL / sh->rate;
	now = bpf_ktime_get_ns();
	bpf_spin_lock(&st->lock);
	clock = st->vclock;
	if (st->gen != cfg->gen || clock < now) {
		/* idle time earns one burst at most: nothing floods after a pause */
		st->gen = cfg->gen;
		clock = now;
	}
	ahead = clock - now;
	/* a packet larger than the whole burst (a big GSO one) still passes an idle limiter */
	if (ahead && ahead + cost > sh->burst_ns) {
		verdict = WEIR_SHAPE_DROP;
	} else {
		st->vclock = clock + cost;
		if (ahead + cost > sh->mark_ns)
			verdict = WEIR_SHAPE_MARK;
	}
	bpf_spin_unlock(&st->lock);
	return verdict;
}

/*
 * The cgroup programs' limiter: an ingress the host-side interface shapes already
 * (WEIR_EP_SHAPE_IFACE) passes, so a packet is shaped and counted once.
 */
static __always_inline int weir_shape(__u32 ep_id, const struct weir_endpoint *cfg, __u32 dir,
				      __u64 bytes)
{
	if (dir == WEIR_INGRESS && (cfg->flags & WEIR_EP_SHAPE_IFACE))
		return WEIR_SHAPE_PASS;
	return weir_shape_clock(ep_id, cfg, dir, bytes);
}

/*
 * CE-mark an ECN-capable packet at tc, its IP header at offset l3: what bpf_skb_ecn_set_ce
 * does for cgroup_skb, by hand: the kernel offers that helper to cgroup_skb programs only.
 * 1 when the packet carries CE now (already did, or marked), as the helper
 * answers; 0 for a packet that is not ECN-capable, which the limiter then lets pass unmarked.
 */
static __always_inline int weir_tc_set_ce(struct __sk_buff *skb, __u8 family, __u32 l3)
{
	__u16 old, new;
	__u8 *b = (__u8 *)&new;

	if (bpf_skb_load_bytes(skb, l3, &old, sizeof(old)))
		return 0;
	new = old;
	if (family == 4) {
		/* byte 1 is the TOS, its low two bits the ECN field */
		if (!(b[1] & 3))
			return 0;
		if ((b[1] & 3) == 3)
			return 1;
		b[1] |= 3;
		/* the header checksum covers the 16-bit word the TOS is half of */
		if (bpf_l3_csum_replace(skb, l3 + 10, old, new, sizeof(new)))
			return 0;
	} else {
		/* the traffic class spans bytes 0 and 1: ECN is bits 4 and 5 of byte 1 */
		if (!(b[1] & 0x30))
			return 0;
		if ((b[1] & 0x30) == 0x30)
			return 1;
		b[1] |= 0x30;
	}
	return !bpf_skb_store_bytes(skb, l3, &new, sizeof(new), 0);
}

#endif
