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
