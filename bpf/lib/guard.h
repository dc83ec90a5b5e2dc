/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Security guards: each endpoint's guard configuration, its run-time state, counters by guard
 * and action, and guard events (a ring buffer of their own, so a flood of flow events never
 * crowds them out, and a count of every event it had no room for).
 */
#ifndef WEIR_LIB_GUARD_H
#define WEIR_LIB_GUARD_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "../weir.h"
#include "endpoint.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WEIR_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, struct weir_guard_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_guards SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WEIR_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, struct weir_guard_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_guard_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WEIR_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, struct weir_guard_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_guard_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, WEIR_GUARD_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_guard_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct weir_guard_event_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_guard_evstats SEC(".maps");

/* Recent guard events by boot time, for `weir events` without --follow. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WEIR_MAX_GUARD_RECENT);
	__type(key, __u64);
	__type(value, struct weir_guard_event);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_guard_recent SEC(".maps");

/* The guard config of a registered, active endpoint, or NULL. */
static __always_inline struct weir_guard_cfg *weir_guard_cfg_of(__u32 ep)
{
	struct weir_endpoint *e = weir_ep_cfg(ep);
	struct weir_guard_cfg *g;

	if (!e || !(e->flags & WEIR_EP_ACTIVE))
		return NULL;
	g = bpf_map_lookup_elem(&weir_guards, &ep);
	if (!g || g->gen != e->gen)
		return NULL;
	return g;
}

/*
 * Guards apply from the workload's exec on. Between weir's attach and that exec the runtime's
 * own init runs in the container's cgroup and does what guards refuse (pivot_root, mounts,
 * the OCI config's sysctls): the exec tracepoint arms the endpoint (guard.bpf.c).
 */
static __always_inline int weir_guard_armed(__u32 ep, const struct weir_guard_cfg *g)
{
	struct weir_guard_state *st = bpf_map_lookup_elem(&weir_guard_state, &ep);

	return st && st->armed_gen == g->gen;
}

/* The armed guard config of the current task's endpoint, or NULL. */
static __always_inline struct weir_guard_cfg *weir_guard_current(__u32 *ep_out)
{
	struct weir_guard_cfg *g;
	__u32 *ep = weir_ep_of_current();

	if (!ep)
		return NULL;
	g = weir_guard_cfg_of(*ep);
	if (!g || !weir_guard_armed(*ep, g))
		return NULL;
	*ep_out = *ep;
	return g;
}

static __always_inline void weir_guard_count(__u32 ep, __u32 guard, __u32 action)
{
	struct weir_guard_counters *c = bpf_map_lookup_elem(&weir_guard_counters, &ep);

	if (c && guard < WEIR_GUARDS && action < WEIR_GACTIONS)
		c->n[guard][action]++;
}

/* Count a guarded action and publish its event (ev holds the guard's own fields). */
static __always_inline void weir_guard_publish(__u32 ep, __u8 guard, __u8 action,
					       struct weir_guard_event *ev)
{
	struct weir_guard_event_stats *st;
	__u32 zero = 0;

	weir_guard_count(ep, guard, action);
	ev->type = WEIR_EV_GUARD;
	ev->guard = guard;
	ev->action = action;
	ev->ep_id = ep;
	ev->time_ns = bpf_ktime_get_boot_ns();
	bpf_map_update_elem(&weir_guard_recent, &ev->time_ns, ev, BPF_ANY);
	st = bpf_map_lookup_elem(&weir_guard_evstats, &zero);
	if (bpf_ringbuf_output(&weir_guard_events, ev, sizeof(*ev), 0)) {
		if (st)
			st->lost++;
		return;
	}
	if (st)
		st->sent++;
}

/* The same for an action of the current task: the process is part of the event. */
static __always_inline void weir_guard_report(__u32 ep, __u8 guard, __u8 action,
					      struct weir_guard_event *ev)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	ev->pid = pid_tgid >> 32;
	ev->tid = (__u32)pid_tgid;
	ev->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	weir_guard_publish(ep, guard, action, ev);
}

/* The action a guard in mode m takes for something it refuses. */
static __always_inline __u8 weir_guard_action(__u8 mode)
{
	return mode == WEIR_GM_ENFORCE ? WEIR_GA_DENIED : WEIR_GA_AUDIT;
}

#endif
