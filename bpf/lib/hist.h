/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef WEIR_LIB_HIST_H
#define WEIR_LIB_HIST_H

#include "../weir.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* The log2 bucket of v: 0 for 0, else the index of the highest set bit plus one. */
static __always_inline __u32 weir_log2_bucket(__u64 v)
{
	__u32 b = 0;

	if (v >> 32) {
		v >>= 32;
		b += 32;
	}
	if (v >> 16) {
		v >>= 16;
		b += 16;
	}
	if (v >> 8) {
		v >>= 8;
		b += 8;
	}
	if (v >> 4) {
		v >>= 4;
		b += 4;
	}
	if (v >> 2) {
		v >>= 2;
		b += 2;
	}
	if (v >> 1) {
		v >>= 1;
		b += 1;
	}
	b += (__u32)v;
	return b < WEIR_HIST_BUCKETS ? b : WEIR_HIST_BUCKETS - 1;
}

static __always_inline void weir_hist_add(struct weir_hist *h, __u64 v)
{
	__u32 b = weir_log2_bucket(v);

	h->buckets[b & (WEIR_HIST_BUCKETS - 1)]++;
	h->sum += v;
}

#endif
