/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Traffic shaping annotations: the Kubernetes bandwidth annotations (quantities of bits per
 * second, with the bounds of Kubernetes and the CNI bandwidth plugin), weir's burst, priority
 * classes and TCP congestion control.
 */
#ifndef WEIR_SHAPING_H
#define WEIR_SHAPING_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "bpf/weir.h"

#define WEIR_KEY_EGRESS_BW   "kubernetes.io/egress-bandwidth"
#define WEIR_KEY_INGRESS_BW  "kubernetes.io/ingress-bandwidth"
#define WEIR_KEY_BURST	     "bandwidth-burst.weir.io"
#define WEIR_KEY_PRIORITY    "priority.weir.io"
#define WEIR_KEY_TCP_CC	     "tcp-congestion.weir.io"
#define WEIR_DEFAULT_CC_LIST "/proc/sys/net/ipv4/tcp_available_congestion_control"

/* Kubernetes' bounds of a bandwidth (pkg/util/bandwidth): 1 kbit/s to 1 Pbit/s. */
#define WEIR_BW_MIN_BPS		      1000ULL
#define WEIR_BW_MAX_BPS		      1000000000000000ULL
/* bandwidth-burst.weir.io, bytes */
#define WEIR_BURST_MIN		      1024ULL
#define WEIR_BURST_MAX		      (1ULL << 30)
/*
 * The default burst, never less than one 64 KiB GSO packet and its headers. Egress: 10 ms at
 * the rate; the container's TCP is paced below the limit and needs no more. Ingress: 250 ms at
 * the rate. There the limiter polices a sender weir cannot pace: over a veth's RTT it overruns
 * any burst and loses its tail, and when TCP has to wait for its retransmission timeout (200
 * ms at least) the burst is what keeps the limit busy meanwhile.
 */
#define WEIR_BURST_DEFAULT_NS	      10000000ULL
#define WEIR_BURST_INGRESS_DEFAULT_NS 250000000ULL
#define WEIR_BURST_DEFAULT_MIN	      (64ULL * 1024 + 1024)

enum weir_prio_class {
	WEIR_PRIO_NONE = 0,
	WEIR_PRIO_CRITICAL,
	WEIR_PRIO_HIGH,
	WEIR_PRIO_NORMAL,
	WEIR_PRIO_BULK,
	WEIR_PRIO_CLASSES,
};

struct weir_prio_desc {
	const char *name;
	uint32_t priority; /* skb priority (TC_PRIO_*) */
	uint8_t dscp;
};

extern const struct weir_prio_desc weir_prio_classes[WEIR_PRIO_CLASSES];

struct weir_shaping {
	uint64_t rate_bps[WEIR_DIRS]; /* bits per second, 0: not shaped */
	uint64_t burst;		      /* bytes, 0: the default */
	enum weir_prio_class prio;
	char cc[WEIR_CC_NAME]; /* "": the node default */
};

/*
 * A Kubernetes quantity ("10M", "1.5G", "500k", "1Gi", "1e6"), rounded up to an integer as
 * Kubernetes does; -EINVAL for anything else, -ERANGE for a negative or too large one.
 */
int weir_quantity_parse(const char *text, uint64_t *out);

/* Parse one shaping key's value into sh; cc_list: the node's congestion controls file. */
int weir_shaping_parse(struct weir_shaping *sh, const char *key, const char *value,
		       const char *cc_list, struct weir_error *err);
bool weir_shaping_key(const char *key);
bool weir_shaping_any(const struct weir_shaping *sh);

/* The datapath's view of a direction: rate in bytes/s, burst and mark thresholds. */
void weir_shaping_fill(const struct weir_shaping *sh, struct weir_endpoint *ep);

#endif
