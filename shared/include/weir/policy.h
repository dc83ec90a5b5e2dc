/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Network policy: the rule grammar of egress.weir.io / ingress.weir.io, the compiler from rules
 * to weir_policy map entries, and a straightforward reference evaluator the compiler is tested
 * against.
 *
 *   value  := rule { ";" rule } [";"]
 *   rule   := ("allow" | "deny") peer [ports]
 *   peer   := "any" | IPv4 | IPv6 | IPv4-CIDR | IPv6-CIDR
 *   ports  := item { "," item }
 *   item   := "tcp" | "udp" | "icmp" | ("tcp" | "udp") "/" port [ "-" port ]
 *
 * A direction with at least one rule is default-deny; deny overrides allow; a rule without
 * ports covers every protocol; "icmp" covers ICMPv6 for IPv6 peers.
 */
#ifndef WEIR_POLICY_H
#define WEIR_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "bpf/weir.h" /* map layouts */

enum weir_action {
	WEIR_ALLOW = 0,
	WEIR_DENY = 1,
};

struct weir_port_item {
	uint8_t pclass; /* enum weir_pclass: TCP, UDP or ICMP */
	uint16_t lo;	/* TCP/UDP only; a bare "tcp" is 0-65535 */
	uint16_t hi;
};

struct weir_rule {
	uint8_t action;
	uint8_t family; /* WEIR_V4 or WEIR_V6 */
	uint8_t prefixlen;
	uint8_t addr[16]; /* host bits are zero */
	bool all_protocols;
	size_t nports;
	struct weir_port_item *ports;
	unsigned int index; /* 1-based position in the annotation, for messages */
};

struct weir_dir_policy {
	bool present; /* the direction has rules: default-deny */
	size_t nrules;
	struct weir_rule *rules;
};

struct weir_policy {
	struct weir_dir_policy dir[WEIR_DIRS];
};

struct weir_policy_limits {
	size_t max_value_bytes; /* one annotation value */
	size_t max_rules;	/* per direction */
};

#define WEIR_DEFAULT_MAX_VALUE_BYTES 65536
#define WEIR_DEFAULT_MAX_RULES	     16384

/* Parse one direction's annotation value; `key` names it in messages. */
int weir_policy_parse_dir(struct weir_policy *pol, enum weir_dir dir, const char *key,
			  const char *value, const struct weir_policy_limits *lim,
			  struct weir_error *err);
void weir_policy_free(struct weir_policy *pol);

/*
 * Is value (len bytes, which may hold NUL bytes) at most max_bytes of UTF-8 text without control
 * characters other than tab, CR and LF? The message names key.
 */
int weir_check_text(const char *key, const char *value, size_t len, size_t max_bytes,
		    struct weir_error *err);

struct weir_policy_entry {
	struct weir_policy_key key; /* ep_id left 0: filled in when written */
	struct weir_policy_val val;
};

struct weir_compiled {
	size_t n;
	struct weir_policy_entry *entries;
};

int weir_policy_compile(const struct weir_policy *pol, struct weir_compiled *out,
			struct weir_error *err);
void weir_compiled_free(struct weir_compiled *c);

/*
 * Whether one rule covers a packet: its family, its prefix holds addr, and its protocol part
 * matches (a port-less packet is matched by deny items of its class, by allow items only
 * when they cover every port).
 */
bool weir_rule_matches(const struct weir_rule *r, uint8_t family, const uint8_t *addr,
		       uint32_t pclass, uint16_t port, bool have_port);
bool weir_prefix_contains(uint8_t plen, const uint8_t *net, const uint8_t *addr);

/* Verdicts for one packet: 1 allow, 0 deny. */
int weir_policy_eval_reference(const struct weir_policy *pol, enum weir_dir dir, uint8_t family,
			       const uint8_t *addr, uint32_t pclass, uint16_t port, bool have_port);
int weir_compiled_eval(const struct weir_compiled *c, const struct weir_policy *pol,
		       enum weir_dir dir, uint8_t family, const uint8_t *addr, uint32_t pclass,
		       uint16_t port, bool have_port);

#endif
