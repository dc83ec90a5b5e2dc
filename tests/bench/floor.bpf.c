// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The floor of tests/bench/datapath-bench.sh: the least a cgroup egress policy can do, one
 * longest-prefix lookup of the destination per packet and nothing else (no endpoint, no
 * counters, no connection tracking, no ports). A prefix in floor_trie passes, anything else is
 * dropped. Loaded and filled by tests/bench/floor.c; not part of weir.
 *
 * floor_ingress is the same for a cgroup's ingress (tests/bench/progtime.c --sockets): one
 * lookup of the source address in the same trie.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct floor_key {
	__u32 prefixlen;
	__u32 addr; /* network order */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1 << 20);
	__type(key, struct floor_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} floor_trie SEC(".maps");

/*
 * One LPM lookup of the destination (src 0) or the source address, from the header in place as
 * weir reads it, else copied out.
 */
static __always_inline int floor_lookup(struct __sk_buff *skb, int src)
{
	struct floor_key key = {.prefixlen = 32};
	struct iphdr *ip = (void *)(long)skb->data;
	struct iphdr copy;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 1;
	if ((void *)(ip + 1) > (void *)(long)skb->data_end) {
		if (bpf_skb_load_bytes(skb, 0, &copy, sizeof(copy)))
			return 0;
		ip = &copy;
	}
	key.addr = src ? ip->saddr : ip->daddr;
	return bpf_map_lookup_elem(&floor_trie, &key) ? 1 : 0;
}

SEC("cgroup_skb/egress")
int floor_egress(struct __sk_buff *skb)
{
	return floor_lookup(skb, 0);
}

SEC("cgroup_skb/ingress")
int floor_ingress(struct __sk_buff *skb)
{
	return floor_lookup(skb, 1);
}

/*
 * The bounds of a per-socket verdict (progtime --sockets): what the least such design must
 * touch, each part alone. bound_noop runs and passes (what running any program costs, with
 * bpf_stats' clock reads); bound_counter adds one packet to per-CPU counters (an endpoint's,
 * as weir's are); bound_sk finds the socket's slot in socket storage (made on the first
 * packet); bound_sk_counter does both, the least a cached verdict with exact counters does.
 * bound_sk_counter_dep does the same, but its counters' key is read from the slot (as a cached
 * verdict that knows its endpoint only through its slot must): the counters' loads then wait
 * for the slot's, where bound_sk_counter's run beside them.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} bound_slots SEC(".maps");

struct bound_pb {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct bound_pb);
} bound_counters SEC(".maps");

#define BOUND_EP 7

/* the socket's slot, made on its first packet, holding BOUND_EP */
static __always_inline __u64 *bound_slot(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	__u64 *v;

	if (!sk)
		return 0;
	v = bpf_sk_storage_get(&bound_slots, sk, 0, 0);
	if (v)
		return v;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 0;
	v = bpf_sk_storage_get(&bound_slots, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (v)
		*v = BOUND_EP;
	return v;
}

static __always_inline int bound_count(struct __sk_buff *skb, __u32 ep)
{
	struct bound_pb *c = bpf_map_lookup_elem(&bound_counters, &ep);

	if (!c)
		return 0;
	c->packets++;
	c->bytes += skb->len;
	return 1;
}

SEC("cgroup_skb/egress")
int bound_noop(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup_skb/egress")
int bound_counter(struct __sk_buff *skb)
{
	return bound_count(skb, BOUND_EP);
}

SEC("cgroup_skb/egress")
int bound_sk(struct __sk_buff *skb)
{
	return bound_slot(skb) ? 1 : 0;
}

SEC("cgroup_skb/egress")
int bound_sk_counter(struct __sk_buff *skb)
{
	return bound_slot(skb) ? bound_count(skb, BOUND_EP) : 0;
}

SEC("cgroup_skb/egress")
int bound_sk_counter_dep(struct __sk_buff *skb)
{
	__u64 *v = bound_slot(skb);

	return v ? bound_count(skb, (__u32)*v) : 0;
}
