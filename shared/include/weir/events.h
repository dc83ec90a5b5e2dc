/* SPDX-License-Identifier: Apache-2.0 */
/* Flow and denial events: the recent ones from the LRU map, live ones from the ring buffer. */
#ifndef WEIR_EVENTS_H
#define WEIR_EVENTS_H

#include <stdbool.h>
#include <signal.h>

#include <json-c/json.h>

#include "bpf/weir.h"
#include "error.h"

struct weir_ctx;

/* Called for each event with its JSON form (owned by the caller of fn). */
typedef int (*weir_event_fn)(struct json_object *ev, void *arg);

/* Recent events in time order; `id` (a container id prefix or name) filters, NULL for all. */
int weir_events_recent(struct weir_ctx *ctx, const char *id, weir_event_fn fn, void *arg,
		       struct weir_error *err);
/* Recent security guard events (the last WEIR_MAX_GUARD_RECENT), the same way. */
int weir_guard_events_recent(struct weir_ctx *ctx, const char *id, weir_event_fn fn, void *arg,
			     struct weir_error *err);
/* Live flow and denial events until *stop is set or fn returns non-zero. */
int weir_events_follow(struct weir_ctx *ctx, const char *id, weir_event_fn fn, void *arg,
		       volatile sig_atomic_t *stop, struct weir_error *err);

#define WEIR_EVENTS_FLOWS  (1U << 0) /* flows and denials */
#define WEIR_EVENTS_GUARDS (1U << 1) /* security guard events */
/* Live events of the kinds in `which`. */
int weir_events_follow_kinds(struct weir_ctx *ctx, unsigned int which, const char *id,
			     weir_event_fn fn, void *arg, volatile sig_atomic_t *stop,
			     struct weir_error *err);
/* One human-readable line for an event's JSON form. */
void weir_event_format(struct json_object *ev, char *buf, size_t size);

/* Events the kernel delivered and could not deliver (ring full), summed over CPUs. */
int weir_events_counts(struct weir_ctx *ctx, uint64_t *sent, uint64_t *lost);
/* The same for the security guards' ring. */
int weir_guard_events_counts(struct weir_ctx *ctx, uint64_t *sent, uint64_t *lost);

#endif
