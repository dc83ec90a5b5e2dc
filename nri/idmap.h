/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A hash table from string ids (pods, containers) to pointers. weir-nri looks ids up once per
 * container of a Synchronize, and a node's whole state arrives in one: lookups must not scan.
 */
#ifndef WEIR_NRI_IDMAP_H
#define WEIR_NRI_IDMAP_H

#include <stdbool.h>
#include <stddef.h>

struct idmap_node;

struct idmap {
	struct idmap_node **b;
	size_t nb, n; /* buckets (a power of two, or 0) and entries */
};

/* The value of key, or NULL. */
void *idmap_get(const struct idmap *m, const char *key);
/* Set key (copied) to val; the value it replaces, or NULL, goes to *old. 0 or -ENOMEM. */
int idmap_put(struct idmap *m, const char *key, void *val, void **old);
/* Remove key; returns its value, or NULL. */
void *idmap_take(struct idmap *m, const char *key);
/* fn for every entry, in no particular order; the table must not change meanwhile. */
void idmap_foreach(const struct idmap *m, void (*fn)(const char *key, void *val, void *arg),
		   void *arg);
/* Remove every entry keep() refuses, handing its value to drop (when not NULL). */
void idmap_filter(struct idmap *m, bool (*keep)(const void *val, const void *arg), const void *arg,
		  void (*drop)(void *val));
/* Remove everything (drop as above) and free the table. */
void idmap_free(struct idmap *m, void (*drop)(void *val));

#endif
