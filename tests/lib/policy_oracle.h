/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy compiler against the brute-force reference evaluator (shared/policy.c), for the
 * unit tests and the fuzzers alike: one packet at a time, or every packet at the edges of a
 * policy's own rules (each prefix's first and last address and their neighbours outside it,
 * each port range's ends and their neighbours), where a compiler is most likely to be wrong.
 */
#ifndef WEIR_TEST_POLICY_ORACLE_H
#define WEIR_TEST_POLICY_ORACLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

/* 0 when the compiled form and the reference agree on the packet; else -1, why says how. */
int weir_oracle_packet(const struct weir_policy *pol, const struct weir_compiled *comp,
		       enum weir_dir dir, uint8_t family, const uint8_t *addr, uint32_t pclass,
		       uint16_t port, bool have_port, char *why, size_t size);

/*
 * Every direction of pol, on the edge packets of its rules (at most max_addrs addresses and
 * max_ports ports per direction and family, taken evenly when there are more), in every
 * protocol class, with and without a known port. Returns how many packets were compared, or -1
 * at the first disagreement (why says which).
 */
long weir_oracle_edges(const struct weir_policy *pol, const struct weir_compiled *comp,
		       size_t max_addrs, size_t max_ports, char *why, size_t size);

#endif
