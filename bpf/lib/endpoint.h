/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Endpoint resolution: which registered container a socket or task belongs to. */
#ifndef WEIR_LIB_ENDPOINT_H
#define WEIR_LIB_ENDPOINT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "../weir.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WEIR_MAX_CGROUPS);
	__type(key, __u64);   /* cgroup v2 id */
	__type(value, __u32); /* endpoint id */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WEIR_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, struct weir_endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_endpoints SEC(".maps");

/*
 * The programs are attached to the container's cgroup and so also run for cgroups the
 * container creates below it. The socket's own cgroup is the common case; on a miss, walk
 * the ancestors from the deepest so the nearest registered cgroup wins.
 */
static __always_inline __u32 *weir_ep_of_skb(struct __sk_buff *skb)
{
	__u64 cgid = bpf_skb_cgroup_id(skb);
	__u32 *ep = bpf_map_lookup_elem(&weir_cgroups, &cgid);
	int level;

	if (ep)
		return ep;
	for (level = WEIR_MAX_CGROUP_DEPTH - 1; level > 0; level--) {
		cgid = bpf_skb_ancestor_cgroup_id(skb, level);
		if (!cgid)
			continue;
		ep = bpf_map_lookup_elem(&weir_cgroups, &cgid);
		if (ep)
			return ep;
	}
	return NULL;
}

static __always_inline __u32 *weir_ep_of_current(void)
{
	__u64 cgid = bpf_get_current_cgroup_id();
	__u32 *ep = bpf_map_lookup_elem(&weir_cgroups, &cgid);
	int level;

	if (ep)
		return ep;
	for (level = WEIR_MAX_CGROUP_DEPTH - 1; level > 0; level--) {
		cgid = bpf_get_current_ancestor_cgroup_id(level);
		if (!cgid)
			continue;
		ep = bpf_map_lookup_elem(&weir_cgroups, &cgid);
		if (ep)
			return ep;
	}
	return NULL;
}

static __always_inline struct weir_endpoint *weir_ep_cfg(__u32 ep_id)
{
	return bpf_map_lookup_elem(&weir_endpoints, &ep_id);
}

#endif
