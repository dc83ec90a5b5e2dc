/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prometheus metrics: every endpoint's view (shared/stats.h) rendered in the text exposition
 * format 0.0.4.
 */
#ifndef WEIR_METRICS_H
#define WEIR_METRICS_H

#include <stddef.h>

#include "stats.h"

struct weir_ctx;

#define WEIR_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * Read every endpoint (running, and stopped ones still within their retention) and render
 * them. On success *text is a NUL-terminated malloc'd buffer of *len bytes; free() it.
 * Not thread-safe on one ctx: callers sharing a ctx between threads serialise the calls.
 */
int weir_metrics_render(struct weir_ctx *ctx, char **text, size_t *len);

#endif
