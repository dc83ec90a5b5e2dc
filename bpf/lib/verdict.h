/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The per-prefix verdict, shared verbatim by the datapath and by libweir's compiler tests, so
 * the unit tests check the very logic the kernel runs.
 */
#ifndef WEIR_LIB_VERDICT_H
#define WEIR_LIB_VERDICT_H

#include "../weir.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* have_port is false for non-first fragments: only whole-class rules can match them. */
static __always_inline int weir_val_allows(const struct weir_policy_val *v, __u32 pclass,
					   __u16 port, int have_port)
{
	__u32 start, n, i;

	if (v->all & (1U << pclass))
		return 1;
	if (!have_port)
		return 0;
	if (pclass == WEIR_PC_TCP) {
		start = 0;
		n = v->ntcp;
	} else if (pclass == WEIR_PC_UDP) {
		start = v->ntcp;
		n = v->nudp;
	} else {
		return 0;
	}
	for (i = 0; i < WEIR_POLICY_MAX_RANGES; i++) {
		__u32 idx = start + i;
		const struct weir_port_range *rg;

		if (i >= n || idx >= WEIR_POLICY_MAX_RANGES)
			break;
		/*
		 * Without the barrier clang folds the index into a running pointer and the
		 * verifier loses the bound; the mask is then what it checks.
		 */
		asm volatile("" : "+r"(idx));
		rg = &v->ranges[idx & (WEIR_POLICY_MAX_RANGES - 1)];
		if (port < rg->lo)
			break; /* sorted: nothing further can match */
		if (port <= rg->hi)
			return 1;
	}
	return 0;
}

static __always_inline __u32 weir_pclass_of(__u8 proto)
{
	switch (proto) {
	case 6:
		return WEIR_PC_TCP;
	case 17:
		return WEIR_PC_UDP;
	case 1:
	case 58:
		return WEIR_PC_ICMP;
	default:
		return WEIR_PC_OTHER;
	}
}

#endif
