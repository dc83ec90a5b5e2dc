/* SPDX-License-Identifier: Apache-2.0 */
/* Least privilege: the capabilities weir-hook and weir-nri keep (shared/caps.c says why). */
#ifndef WEIR_CAPS_H
#define WEIR_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/capability.h>

#include "error.h"
#include "util.h"
#include "libweir.h"

/* The set endpoints need on the running kernel; returns how many, or -ENOSPC. */
int weir_caps_needed(cap_value_t *out, size_t size);

/*
 * Keep only weir_caps_needed() plus extra (effective and permitted), empty the bounding and
 * ambient sets, set no_new_privs. Call before any thread starts: capabilities are per thread.
 * With bpffs, first mount bpffs where the node config says, when it is missing. What the process
 * does not hold is not asked for.
 */
int weir_caps_restrict(struct weir_ctx *ctx, bool bpffs, const cap_value_t *extra, size_t nextra,
		       struct weir_error *err);

#endif
