/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking: one LRU map per endpoint, reached through weir_ct[ep].
 *
 * A single node-wide LRU let one container that opens many flows evict its neighbours'
 * entries, and their replies in a default-deny direction were then dropped. Here each
 * endpoint's entries live in a map of its own, created by libweir at attach with the
 * endpoint's budget (node config ct_entries, conntrack.weir.io/entries) and released with the
 * weir_ct slot at detach: an endpoint can only evict its own flows, whatever the others do,
 * and the memory of every map is bounded and preallocated. Evictions are not visible to BPF;
 * what is counted exactly is every insert (weir_dir_counters.ct_inserted). Since the datapath
 * never deletes entries, the entries that left the map are inserted - present, which libweir
 * reports as evictions.
 *
 * Every access goes through these helpers so that other programs (a TC program on the host
 * side, say) read conntrack the same way; lookups are safe from any program type.
 */
#ifndef WEIR_LIB_CONNTRACK_H
#define WEIR_LIB_CONNTRACK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "../weir.h"
#include "packet.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, WEIR_MAX_ENDPOINTS);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	/* the template: libweir creates each endpoint's map like it, with its own size */
	__array(
		values, struct {
			__uint(type, BPF_MAP_TYPE_LRU_HASH);
			__uint(max_entries, WEIR_CT_DEFAULT_ENTRIES);
			/* sizes, not types: clang emits the structs only as forward declarations
			 * here */
			__uint(key_size, sizeof(struct weir_ct_key));
			__uint(value_size, sizeof(struct weir_ct_val));
		});
} weir_ct SEC(".maps");

/* The endpoint's conntrack map, NULL when it has none. */
static __always_inline void *weir_ct_map(__u32 ep_id)
{
	return bpf_map_lookup_elem(&weir_ct, &ep_id);
}

/* The flow's key as seen from the endpoint: dir is the packet's direction. */
static __always_inline void weir_ct_key_of(struct weir_ct_key *k, __u32 ep_id, __u32 dir,
					   const struct weir_pkt *p)
{
	k->ep_id = ep_id;
	k->proto = p->proto;
	k->family = p->family;
	k->kind = WEIR_CT_FLOW;
	if (dir == WEIR_EGRESS) {
		k->lport = p->sport;
		k->rport = p->dport;
		__builtin_memcpy(k->laddr, p->saddr, 16);
		__builtin_memcpy(k->raddr, p->daddr, 16);
	} else {
		k->lport = p->dport;
		k->rport = p->sport;
		__builtin_memcpy(k->laddr, p->daddr, 16);
		__builtin_memcpy(k->raddr, p->saddr, 16);
	}
}

/* The entry of key in map (weir_ct_map), whatever its generation; NULL when not tracked. */
static __always_inline struct weir_ct_val *weir_ct_lookup(void *map, const struct weir_ct_key *k)
{
	if (!map)
		return NULL;
	return bpf_map_lookup_elem(map, k);
}

/* Is the flow tracked for this registration (gen) of the endpoint? Lookup only. */
static __always_inline int weir_ct_tracked(__u32 ep_id, __u32 gen, const struct weir_ct_key *k)
{
	struct weir_ct_val *v = weir_ct_lookup(weir_ct_map(ep_id), k);

	return v && v->gen == gen;
}

/*
 * Track key for generation gen. Returns 1 when an entry was added (the map evicts the
 * endpoint's least recently used one when it is full), 0 when the key was there (refreshed),
 * or a negative errno. Two CPUs adding the same key add it once: BPF_NOEXIST.
 */
static __always_inline int weir_ct_track(void *map, const struct weir_ct_key *k, __u32 gen,
					 __u8 origin)
{
	struct weir_ct_val v = {};
	struct weir_ct_val *old = bpf_map_lookup_elem(map, k);
	long r;

	if (old) {
		old->gen = gen;
		old->origin = origin;
		return 0;
	}
	v.gen = gen;
	v.origin = origin;
	r = bpf_map_update_elem(map, k, &v, BPF_NOEXIST);
	if (r == -17) /* EEXIST: another CPU added it */
		return 0;
	return r ? (int)r : 1;
}

/* The peer entry of a UDP flow key (WEIR_CT_PEER): the flow without the local address. */
static __always_inline void weir_ct_peer_of(struct weir_ct_key *peer, const struct weir_ct_key *k)
{
	__builtin_memcpy(peer, k, sizeof(*peer));
	__builtin_memset(peer->laddr, 0, sizeof(peer->laddr));
	peer->kind = WEIR_CT_PEER;
}

#endif
