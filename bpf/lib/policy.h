/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Policy and counters: the maps and their helpers (conntrack: conntrack.h). */
#ifndef WEIR_LIB_POLICY_H
#define WEIR_LIB_POLICY_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "../weir.h"
#include "verdict.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, WEIR_MAX_POLICY_KEYS);
	__type(key, struct weir_policy_key);
	__type(value, struct weir_policy_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_policy SEC(".maps");

/* Per-CPU so counting never needs an atomic; user space sums the CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WEIR_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, struct weir_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct weir_meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_meta SEC(".maps");

static __always_inline struct weir_dir_counters *weir_counters_of(__u32 ep_id, __u32 dir)
{
	struct weir_counters *c = bpf_map_lookup_elem(&weir_counters, &ep_id);

	if (!c || dir >= WEIR_DIRS)
		return NULL;
	return &c->dir[dir];
}

static __always_inline int weir_policy_allows(__u32 ep_id, __u32 dir, __u8 family,
					      const __u8 *remote, __u32 pclass, __u16 port,
					      int have_port)
{
	struct weir_policy_key key = {};
	struct weir_policy_val *val;

	key.prefixlen = WEIR_POLICY_KEY_FIXED_BITS + (family == WEIR_V4 ? 32 : 128);
	key.ep_id = ep_id;
	key.dir = dir;
	key.family = family;
	if (family == WEIR_V4)
		__builtin_memcpy(key.addr, remote, 4);
	else
		__builtin_memcpy(key.addr, remote, 16);
	val = bpf_map_lookup_elem(&weir_policy, &key);
	if (!val)
		return 0;
	return weir_val_allows(val, pclass, port, have_port);
}

#endif
