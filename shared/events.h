/* SPDX-License-Identifier: Apache-2.0 */
/* Flow and denial events: the recent ones from the LRU map, live ones from the ring buffer. */
#ifndef WEIR_EVENTS_H
#define WEIR_EVENTS_H

#include <stdbool.h>
#include <signal.h>

#include <json-c/json.h>

#include "bpf/weir.h"
#include "ctx.h"

/* Called for each event with its JSON form (owned by the caller of fn). */
typedef int (*weir_event_fn)(struct json_object *ev, void *arg);

/* Recent events in time order; `id` (a container id prefix or name) filters, NULL for all. */
int weir_events_recent(struct weir_ctx *ctx, const char *id, weir_event_fn fn, void *arg,
		       struct weir_error *err);
/* Live events until *stop is set or fn returns non-zero. */
int weir_events_follow(struct weir_ctx *ctx, const char *id, weir_event_fn fn, void *arg,
		       volatile sig_atomic_t *stop, struct weir_error *err);
/* One human-readable line for an event's JSON form. */
void weir_event_format(struct json_object *ev, char *buf, size_t size);

/* Node-wide figures: datapath state, endpoint counts, events delivered and lost. */
int weir_node_stats(struct weir_ctx *ctx, struct json_object **out);

#endif
