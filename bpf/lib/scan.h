/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The port-scan guard, in the cgroup_skb programs of an endpoint that asks for it. A probe is
 * the first packet towards a target (address, protocol, port) in a window: a TCP SYN or a UDP
 * datagram. A probe counts as answered when the target replies (SYN-ACK, a UDP datagram back);
 * a reset, an ICMP error the socket swallows, or silence leave it failed. When the failed
 * probes of one window reach the threshold the guard reports once per window and, in enforce
 * mode, quarantines the endpoint's egress for quarantine_ms.
 */
#ifndef WEIR_LIB_SCAN_H
#define WEIR_LIB_SCAN_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "../weir.h"
#include "guard.h"
#include "packet.h"

#define WEIR_TCP_SYN 0x02
#define WEIR_TCP_ACK 0x10

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WEIR_MAX_SCAN_PROBES);
	__type(key, struct weir_scan_key);
	__type(value, struct weir_scan_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_scan_probes SEC(".maps");

static __always_inline void weir_scan_key_of(struct weir_scan_key *k, __u32 ep, __u8 family,
					     __u8 proto, __u16 port, const __u8 *addr)
{
	k->ep_id = ep;
	k->family = family;
	k->proto = proto;
	k->port = port;
	__builtin_memcpy(k->addr, addr, 16);
}

/* Is the endpoint's egress quarantined now? Counts what it refuses. */
static __always_inline int weir_scan_quarantined(__u32 ep)
{
	struct weir_guard_state *st = bpf_map_lookup_elem(&weir_guard_state, &ep);
	struct weir_guard_counters *c;

	if (!st || !st->quarantine_until || bpf_ktime_get_boot_ns() >= st->quarantine_until)
		return 0;
	c = bpf_map_lookup_elem(&weir_guard_counters, &ep);
	if (c)
		c->quarantine_drops++;
	return 1;
}

static __always_inline void weir_scan_report(__u32 ep, const struct weir_guard_cfg *g,
					     struct weir_guard_state *st,
					     const struct weir_scan_key *k, __u64 now)
{
	struct weir_guard_event ev = {};
	__u8 action = WEIR_GA_AUDIT;

	if (g->mode[WEIR_GUARD_SCAN] == WEIR_GM_ENFORCE && g->quarantine_ms) {
		st->quarantine_until = now + (__u64)g->quarantine_ms * 1000000ULL;
		action = WEIR_GA_QUARANTINED;
	}
	ev.nr = -1;
	ev.args[0] = st->scan_probes;
	ev.args[1] = st->scan_answered;
	ev.args[2] = st->scan_refused;
	ev.args[3] = g->scan_window_ms;
	ev.args[4] = action == WEIR_GA_QUARANTINED ? g->quarantine_ms : 0;
	ev.args[5] = ((__u64)k->family << 24) | ((__u64)k->proto << 16) | k->port;
	__builtin_memcpy(ev.text, k->addr, 16);
	weir_guard_publish(ep, WEIR_GUARD_SCAN, action, &ev);
}

static __always_inline void weir_scan_egress(__u32 ep, const struct weir_pkt *p)
{
	struct weir_scan_val val = {}, *seen;
	struct weir_guard_state *st;
	struct weir_scan_key k = {};
	struct weir_guard_cfg *g;
	__u64 now, window;
	__u32 failed;

	if (p->proto == IPPROTO_TCP) {
		if ((p->tcp_flags & (WEIR_TCP_SYN | WEIR_TCP_ACK)) != WEIR_TCP_SYN)
			return;
	} else if (p->proto != IPPROTO_UDP) {
		return;
	}
	if (!p->have_ports)
		return;
	g = weir_guard_cfg_of(ep);
	st = bpf_map_lookup_elem(&weir_guard_state, &ep);
	if (!g || !st || g->mode[WEIR_GUARD_SCAN] < WEIR_GM_AUDIT || st->armed_gen != g->gen)
		return;
	now = bpf_ktime_get_boot_ns();
	window = (__u64)g->scan_window_ms * 1000000ULL;
	if (now - st->scan_window_start > window) {
		st->scan_window_start = now;
		st->scan_window_id++;
		st->scan_probes = 0;
		st->scan_answered = 0;
		st->scan_refused = 0;
	}
	weir_scan_key_of(&k, ep, p->family, p->proto, p->dport, p->daddr);
	seen = bpf_map_lookup_elem(&weir_scan_probes, &k);
	if (seen && seen->window_id == st->scan_window_id)
		return; /* this target is counted in this window already */
	val.window_id = st->scan_window_id;
	bpf_map_update_elem(&weir_scan_probes, &k, &val, BPF_ANY);
	__sync_fetch_and_add(&st->scan_probes, 1);
	failed = st->scan_probes - st->scan_answered;
	/* scan_reported_gen holds the reported window's id plus one (0: none yet) */
	if (failed >= g->scan_threshold && st->scan_reported_gen != st->scan_window_id + 1) {
		st->scan_reported_gen = st->scan_window_id + 1;
		weir_scan_report(ep, g, st, &k, now);
	}
}

static __always_inline void weir_scan_ingress(__u32 ep, const struct weir_pkt *p)
{
	struct weir_guard_state *st;
	struct weir_scan_key k = {};
	struct weir_scan_val *seen;
	int reset = 0;

	if (p->proto == IPPROTO_TCP) {
		if (p->tcp_flags & WEIR_TCP_RST)
			reset = 1;
		else if ((p->tcp_flags & (WEIR_TCP_SYN | WEIR_TCP_ACK)) !=
			 (WEIR_TCP_SYN | WEIR_TCP_ACK))
			return;
	} else if (p->proto != IPPROTO_UDP) {
		return;
	}
	if (!p->have_ports)
		return;
	st = bpf_map_lookup_elem(&weir_guard_state, &ep);
	if (!st)
		return;
	weir_scan_key_of(&k, ep, p->family, p->proto, p->sport, p->saddr);
	seen = bpf_map_lookup_elem(&weir_scan_probes, &k);
	if (!seen || seen->answered || seen->window_id != st->scan_window_id)
		return;
	seen->answered = 1;
	if (reset)
		__sync_fetch_and_add(&st->scan_refused, 1);
	else
		__sync_fetch_and_add(&st->scan_answered, 1);
}

#endif
