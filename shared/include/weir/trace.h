/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `weir policy trace`: one packet's verdict, explained from the policy the kernel holds for a
 * running endpoint; `weir policy check`: a policy in its normalised, effective form.
 */
#ifndef WEIR_TRACE_H
#define WEIR_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "annot.h"
#include "libweir.h"

struct weir_trace_query {
	enum weir_dir dir; /* egress: --to PEER; ingress: --from PEER */
	uint8_t family;	   /* WEIR_V4 or WEIR_V6 */
	uint8_t addr[16];  /* the peer, network order */
	int pclass;	   /* enum weir_pclass, or -1 for tcp, udp and icmp in turn */
	uint16_t port;	   /* egress: the peer's port; ingress: the container's own */
	bool have_port;
};

/*
 * What trace and check read from an endpoint record (strings point into it). The one place
 * that knows the record's layout; -EBADMSG or -E2BIG when its annotations are damaged.
 */
struct weir_trace_ep {
	const char *id, *name;
	bool running;
	uint32_t ep, gen;
	size_t nkv;
	struct weir_kv kv[16]; /* the weir annotations it was attached with */
};

struct json_object;
int weir_trace_ep_of(struct json_object *rec, struct weir_trace_ep *te);

/* PEER: one IPv4 or IPv6 address; proto: NULL, "tcp", "udp", "icmp", "tcp/PORT", "udp/PORT". */
int weir_trace_parse(struct weir_trace_query *q, enum weir_dir dir, const char *peer,
		     const char *proto, struct weir_error *err);

/*
 * The verdict for the endpoint of a running record, read from the pinned maps (the endpoint's
 * flags, its weir_policy entry by longest-prefix match, conntrack) and explained with the
 * rules of the record's annotations. *out is the object `weir policy trace --json` prints.
 */
int weir_policy_trace(struct weir_ctx *ctx, struct json_object *rec,
		      const struct weir_trace_query *q, struct json_object **out,
		      struct weir_error *err);

/*
 * A validated spec in normalised form: mode, monitor and, per direction, the default, the
 * rules (every peer a CIDR, "any" as its two families) and the effective allowed set of each
 * compiled prefix (enclosing rules merged, denies subtracted). `weir policy check --json`.
 */
struct json_object *weir_policy_json(const struct weir_spec *spec, const struct weir_compiled *c);

#endif
