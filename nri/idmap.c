// SPDX-License-Identifier: Apache-2.0
/* Chained hash table for weir-nri's ids: see idmap.h. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "idmap.h"

struct idmap_node {
	struct idmap_node *next;
	void *val;
	char key[];
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

static struct idmap_node **find(const struct idmap *m, const char *key)
{
	struct idmap_node **pp;

	if (!m->nb)
		return NULL;
	for (pp = &m->b[hash_str(key) & (m->nb - 1)]; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->key, key))
			return pp;
	return NULL;
}

void *idmap_get(const struct idmap *m, const char *key)
{
	struct idmap_node **pp = find(m, key);

	return pp ? (*pp)->val : NULL;
}

/* Double the buckets once there are as many entries: chains stay about one long. */
static int grow(struct idmap *m)
{
	size_t nb = m->nb ? m->nb * 2 : 64;
	struct idmap_node **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < m->nb; i++) {
		while (m->b[i]) {
			struct idmap_node *e = m->b[i];
			size_t h = hash_str(e->key) & (nb - 1);

			m->b[i] = e->next;
			e->next = b[h];
			b[h] = e;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return 0;
}

int idmap_put(struct idmap *m, const char *key, void *val, void **old)
{
	struct idmap_node **pp = find(m, key), *e;
	size_t klen = strlen(key);

	if (old)
		*old = pp ? (*pp)->val : NULL;
	if (pp) {
		(*pp)->val = val;
		return 0;
	}
	if (m->n >= m->nb && grow(m))
		return -ENOMEM;
	e = malloc(sizeof(*e) + klen + 1);
	if (!e)
		return -ENOMEM;
	memcpy(e->key, key, klen + 1);
	e->val = val;
	pp = &m->b[hash_str(key) & (m->nb - 1)];
	e->next = *pp;
	*pp = e;
	m->n++;
	return 0;
}

void *idmap_take(struct idmap *m, const char *key)
{
	struct idmap_node **pp = find(m, key), *e;
	void *val;

	if (!pp)
		return NULL;
	e = *pp;
	*pp = e->next;
	val = e->val;
	free(e);
	m->n--;
	return val;
}

void idmap_foreach(const struct idmap *m, void (*fn)(const char *key, void *val, void *arg),
		   void *arg)
{
	for (size_t i = 0; i < m->nb; i++)
		for (struct idmap_node *e = m->b[i]; e; e = e->next)
			fn(e->key, e->val, arg);
}

void idmap_filter(struct idmap *m, bool (*keep)(const void *val, const void *arg), const void *arg,
		  void (*drop)(void *val))
{
	for (size_t i = 0; i < m->nb; i++) {
		struct idmap_node **pp = &m->b[i];

		while (*pp) {
			struct idmap_node *e = *pp;

			if (keep && keep(e->val, arg)) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			if (drop)
				drop(e->val);
			free(e);
			m->n--;
		}
	}
}

void idmap_free(struct idmap *m, void (*drop)(void *val))
{
	idmap_filter(m, NULL, NULL, drop);
	free(m->b);
	memset(m, 0, sizeof(*m));
}
