// SPDX-License-Identifier: Apache-2.0
/*
 * The node baseline (weir.conf "security", "egress", "ingress"): what every weir container
 * gets, whatever its annotations say. Annotations may only tighten it: a guard named weaker
 * than the baseline's refuses the container, and the baseline's rules are intersected with
 * the container's (a packet passes only if both allow it). Pods of the namespaces the node
 * config trusts (loosen_namespaces) may replace the baseline instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot.h"
#include "util.h"
#include "bpf/lib/verdict.h"

static bool may_loosen(const struct weir_config *cfg, const char *ns)
{
	for (size_t i = 0; ns && i < cfg->n_loosen; i++)
		if (!strcmp(cfg->loosen_namespaces[i], ns))
			return true;
	return false;
}

static int add_node_paths(const struct weir_config *cfg, struct weir_guards *g,
			  struct weir_error *err)
{
	for (size_t i = 0; i < cfg->n_protected; i++) {
		char **p = realloc(g->paths, (g->npaths + 1) * sizeof(*p));

		if (!p)
			return weir_error_set(err, -ENOMEM, "out of memory");
		g->paths = p;
		g->paths[g->npaths] = strdup(cfg->protected_paths[i]);
		if (!g->paths[g->npaths])
			return weir_error_set(err, -ENOMEM, "out of memory");
		g->npaths++;
	}
	return 0;
}

int weir_baseline_apply(const struct weir_config *cfg, const char *pod_namespace,
			struct weir_spec *spec, struct weir_error *err)
{
	bool loosen = may_loosen(cfg, pod_namespace), rules = false;
	char where[WEIR_MAX_CONFIG_PATH + 32];
	int r;

	if (cfg->baseline_security) {
		struct weir_guards base;

		snprintf(where, sizeof(where), "%s: \"security\"", cfg->path);
		r = weir_guards_parse(where, cfg->baseline_security, &base, err);
		if (!r)
			r = weir_guards_merge(&spec->guards, &base, cfg->path, loosen, err);
		weir_guards_free(&base);
		if (r)
			return r;
		spec->any = true;
	}
	if (spec->guards.mode[WEIR_GUARD_PATHS] != WEIR_GM_OFF) {
		r = add_node_paths(cfg, &spec->guards, err);
		if (r)
			return r;
	}
	for (int d = 0; d < WEIR_DIRS; d++) {
		/* a trusted pod's own rules replace the baseline's for that direction */
		if (!cfg->baseline_rules[d] || (loosen && spec->policy.dir[d].present))
			continue;
		snprintf(where, sizeof(where), "%s: \"%s\"", cfg->path,
			 d == WEIR_EGRESS ? "egress" : "ingress");
		r = weir_policy_parse_dir(&spec->base, (enum weir_dir)d, where,
					  cfg->baseline_rules[d], &cfg->limits, err);
		if (r)
			return r;
		rules = true;
		spec->any = true;
	}
	/* the datapath has one mode per endpoint: audit would let the baseline's denials pass */
	if (rules && spec->audit && !cfg->default_audit && !loosen)
		return weir_error_key(err, -EPERM, WEIR_KEY_POLICY_MODE,
				      "\"audit\" loosens the node baseline (its rules in %s are "
				      "enforced): expected \"enforce\"",
				      cfg->path);
	return 0;
}

bool weir_spec_dir_present(const struct weir_spec *spec, enum weir_dir dir)
{
	return spec->policy.dir[dir].present || spec->base.dir[dir].present;
}

/* ---- intersection of two compiled policies ------------------------------------------- */

/*
 * A compiled policy answers for an address with the value of its longest matching prefix. For
 * two of them, the entries at the union of their prefixes, each valued with the intersection
 * of both answers for that prefix, answer every address with the intersection of both: the
 * longest combined prefix covering an address is the longer of the two longest ones, and the
 * shorter policy's answer for it is its answer for the address.
 */
static int cmp_entry(const void *a, const void *b)
{
	const struct weir_policy_key *x = &((const struct weir_policy_entry *)a)->key;
	const struct weir_policy_key *y = &((const struct weir_policy_entry *)b)->key;

	if (x->dir != y->dir)
		return x->dir < y->dir ? -1 : 1;
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->prefixlen != y->prefixlen)
		return x->prefixlen < y->prefixlen ? -1 : 1;
	return memcmp(x->addr, y->addr, sizeof(x->addr));
}

static void mask_addr(uint8_t *addr, unsigned int plen)
{
	for (unsigned int bit = plen; bit < 128; bit++)
		addr[bit / 8] &= (uint8_t) ~(0x80 >> (bit % 8));
}

/* The value of the longest prefix of c (sorted) that covers key's prefix, or NULL. */
static const struct weir_policy_val *longest(const struct weir_compiled *c,
					     const struct weir_policy_key *key)
{
	struct weir_policy_entry probe = {.key = *key};
	unsigned int plen = key->prefixlen - WEIR_POLICY_KEY_FIXED_BITS;

	for (int l = (int)plen; l >= 0; l--) {
		const struct weir_policy_entry *e;

		probe.key.prefixlen = WEIR_POLICY_KEY_FIXED_BITS + (uint32_t)l;
		mask_addr(probe.key.addr, (unsigned int)l);
		e = bsearch(&probe, c->entries, c->n, sizeof(*e), cmp_entry);
		if (e)
			return &e->val;
	}
	return NULL;
}

struct rg {
	uint16_t lo, hi;
};

/* Ranges of one class of v, or the whole class; returns the count. */
static size_t class_ranges(const struct weir_policy_val *v, uint32_t pc, struct rg *out)
{
	size_t start = pc == WEIR_PC_TCP ? 0 : v->ntcp, n = pc == WEIR_PC_TCP ? v->ntcp : v->nudp;

	if (v->all & (1U << pc)) {
		out[0].lo = 0;
		out[0].hi = 65535;
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		out[i].lo = v->ranges[start + i].lo;
		out[i].hi = v->ranges[start + i].hi;
	}
	return n;
}

static int intersect_val(const struct weir_policy_val *a, const struct weir_policy_val *b,
			 struct weir_policy_val *out)
{
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	out->all = a->all & b->all;
	for (uint32_t pc = WEIR_PC_TCP; pc <= WEIR_PC_UDP; pc++) {
		struct rg ra[WEIR_POLICY_MAX_RANGES], rb[WEIR_POLICY_MAX_RANGES];
		size_t na, nb, i = 0, j = 0, first = n;

		if (out->all & (1U << pc))
			continue;
		na = class_ranges(a, pc, ra);
		nb = class_ranges(b, pc, rb);
		/* both lists are sorted and disjoint: walk them like a merge */
		while (i < na && j < nb) {
			uint16_t lo = ra[i].lo > rb[j].lo ? ra[i].lo : rb[j].lo;
			uint16_t hi = ra[i].hi < rb[j].hi ? ra[i].hi : rb[j].hi;

			if (lo <= hi) {
				if (n == WEIR_POLICY_MAX_RANGES)
					return -E2BIG;
				out->ranges[n].lo = lo ? lo : 1;
				out->ranges[n++].hi = hi;
			}
			if (ra[i].hi < rb[j].hi)
				i++;
			else
				j++;
		}
		if (pc == WEIR_PC_TCP)
			out->ntcp = (uint8_t)(n - first);
		else
			out->nudp = (uint8_t)(n - first);
	}
	return 0;
}

static int push(struct weir_compiled *out, size_t *cap, const struct weir_policy_key *key,
		const struct weir_policy_val *val)
{
	if (out->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct weir_policy_entry *e = realloc(out->entries, ncap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		out->entries = e;
		*cap = ncap;
	}
	out->entries[out->n].key = *key;
	out->entries[out->n++].val = *val;
	return 0;
}

static int intersect(const struct weir_compiled *a, const struct weir_compiled *b,
		     const bool *a_has, const bool *b_has, struct weir_compiled *out)
{
	static const struct weir_policy_val none;
	const struct weir_compiled *both[2] = {a, b};
	size_t cap = 0;

	memset(out, 0, sizeof(*out));
	for (int s = 0; s < 2; s++) {
		for (size_t i = 0; i < both[s]->n; i++) {
			const struct weir_policy_entry *e = &both[s]->entries[i];
			const struct weir_policy_val *va, *vb;
			struct weir_policy_val v;
			int r;

			/* a prefix both have is made once, from the first */
			if (s == 1 && a_has[e->key.dir] &&
			    bsearch(e, a->entries, a->n, sizeof(*e), cmp_entry))
				continue;
			if (!a_has[e->key.dir] || !b_has[e->key.dir]) {
				r = push(out, &cap, &e->key, &e->val);
			} else {
				va = longest(a, &e->key);
				vb = longest(b, &e->key);
				r = intersect_val(va ? va : &none, vb ? vb : &none, &v);
				if (r == -E2BIG)
					return r;
				r = r ? r : push(out, &cap, &e->key, &v);
			}
			if (r)
				return r;
		}
	}
	return 0;
}

int weir_spec_compile(const struct weir_spec *spec, struct weir_compiled *out,
		      struct weir_error *err)
{
	struct weir_compiled a, b;
	bool a_has[WEIR_DIRS], b_has[WEIR_DIRS];
	int r;

	r = weir_policy_compile(&spec->policy, out, err);
	if (r || (!spec->base.dir[WEIR_EGRESS].present && !spec->base.dir[WEIR_INGRESS].present))
		return r;
	a = *out;
	r = weir_policy_compile(&spec->base, &b, err);
	if (r) {
		weir_compiled_free(&a);
		return r;
	}
	for (int d = 0; d < WEIR_DIRS; d++) {
		a_has[d] = spec->policy.dir[d].present;
		b_has[d] = spec->base.dir[d].present;
	}
	/* qsort's base must not be NULL, even for no element (UBSan holds us to it) */
	if (a.n)
		qsort(a.entries, a.n, sizeof(*a.entries), cmp_entry);
	if (b.n)
		qsort(b.entries, b.n, sizeof(*b.entries), cmp_entry);
	r = intersect(&a, &b, a_has, b_has, out);
	weir_compiled_free(&a);
	weir_compiled_free(&b);
	if (r == -E2BIG)
		weir_error_set(err, r,
			       "the rules intersected with the node baseline's need more than %d "
			       "port ranges for one prefix: simplify the rules",
			       WEIR_POLICY_MAX_RANGES);
	else if (r)
		weir_error_set(err, r, "out of memory");
	if (r)
		weir_compiled_free(out);
	return r;
}
