/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Flow and denial events: a ring buffer for live readers, an LRU of recent events for
 * `weir flows`, and a count of every event the ring had no room for, so nothing is lost
 * silently.
 */
#ifndef WEIR_LIB_EVENTS_H
#define WEIR_LIB_EVENTS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "../weir.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, WEIR_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct weir_event_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_event_stats SEC(".maps");

/* Recent events by key (socket cookie for flows, boot time for denials). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WEIR_MAX_FLOWS);
	__type(key, __u64);
	__type(value, struct weir_event);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_flows SEC(".maps");

/* When a denied flow last produced an event: retries of the same flow stay quiet. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct weir_ct_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_denied SEC(".maps");

static __always_inline void weir_event_publish(const struct weir_event *ev, __u64 key)
{
	struct weir_event_stats *st;
	__u32 zero = 0;
	struct weir_event *e;

	bpf_map_update_elem(&weir_flows, &key, ev, BPF_ANY);
	st = bpf_map_lookup_elem(&weir_event_stats, &zero);
	e = bpf_ringbuf_reserve(&weir_events, sizeof(*e), 0);
	if (!e) {
		if (st)
			st->lost++;
		return;
	}
	__builtin_memcpy(e, ev, sizeof(*e));
	bpf_ringbuf_submit(e, 0);
	if (st)
		st->sent++;
}

/* A denial, once per flow per WEIR_DENY_EVENT_NS; k identifies the flow. */
static __always_inline void weir_event_denied(const struct weir_ct_key *k, __u8 dir, __u8 where,
					      __u8 verdict)
{
	struct weir_event ev = {};
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 *last = bpf_map_lookup_elem(&weir_denied, k);

	if (last && now - *last < WEIR_DENY_EVENT_NS)
		return;
	bpf_map_update_elem(&weir_denied, k, &now, BPF_ANY);
	ev.type = WEIR_EV_DENIED;
	ev.family = k->family;
	ev.proto = k->proto;
	ev.dir = dir;
	ev.verdict = verdict;
	ev.where = where;
	ev.ep_id = k->ep_id;
	ev.lport = k->lport;
	ev.rport = k->rport;
	__builtin_memcpy(ev.laddr, k->laddr, 16);
	__builtin_memcpy(ev.raddr, k->raddr, 16);
	ev.start_ns = now;
	ev.end_ns = now;
	weir_event_publish(&ev, now);
}

#endif
