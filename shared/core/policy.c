// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "util.h"
#include "bpf/lib/verdict.h"

#define RULE_QUOTE_MAX 60

static const char ports_expected[] =
	"expected tcp, udp, icmp, tcp/PORT, udp/PORT or tcp/PORT-PORT, udp/PORT-PORT "
	"with ports 1-65535";

/* ---- text validation ---------------------------------------------------------------- */

int weir_check_text(const char *key, const char *value, size_t len, size_t max_bytes,
		    struct weir_error *err)
{
	const unsigned char *s = (const unsigned char *)value;
	size_t i = 0, n;
	uint32_t cp;

	if (len > max_bytes)
		return weir_error_key(err, -E2BIG, key, "value is %zu bytes, at most %zu allowed",
				      len, max_bytes);
	while (i < len) {
		n = weir_utf8_char(s + i, len - i, &cp);
		if (!n)
			return weir_error_key(err, -EILSEQ, key,
					      "invalid UTF-8 at byte %zu: expected UTF-8 text", i);
		/* tab, CR and LF separate rules like spaces; other controls are never text */
		if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7f)
			return weir_error_key(err, -EINVAL, key,
					      "control character 0x%02x at byte %zu: expected "
					      "printable text",
					      (unsigned)cp, i);
		if (cp >= 0x80 && cp <= 0x9f)
			return weir_error_key(err, -EINVAL, key,
					      "control character U+%04X at byte %zu: expected "
					      "printable text",
					      (unsigned)cp, i);
		i += n;
	}
	return 0;
}

/* ---- parsing ------------------------------------------------------------------------ */

struct rule_ctx {
	const char *key;
	unsigned int index;
	char quote[WEIR_QUOTE_SIZE]; /* the rule, quoted for messages */
};

static void set_quote(struct rule_ctx *rc, const char *text)
{
	weir_quote(rc->quote, sizeof(rc->quote), text, SIZE_MAX, RULE_QUOTE_MAX, WEIR_QUOTE_ALWAYS);
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int parse_u16_port(const char *s, uint16_t *out)
{
	unsigned long v;
	int r = weir_parse_uint(s, 1, 65535, &v);

	if (!r)
		*out = (uint16_t)v;
	return r;
}

static int parse_port_item(struct rule_ctx *rc, char *item, struct weir_port_item *out,
			   struct weir_error *err)
{
	char *slash = strchr(item, '/'), *dash;
	const char *proto = item;
	int r;

	if (slash)
		*slash = '\0';
	if (!strcmp(proto, "tcp")) {
		out->pclass = WEIR_PC_TCP;
	} else if (!strcmp(proto, "udp")) {
		out->pclass = WEIR_PC_UDP;
	} else if (!strcmp(proto, "icmp")) {
		out->pclass = WEIR_PC_ICMP;
		if (slash) {
			*slash = '/';
			return weir_error_key(
				err, -EINVAL, rc->key,
				"rule %u (%s): bad port item %s: icmp takes no port; %s", rc->index,
				rc->quote, WEIR_Q(item), ports_expected);
		}
	} else {
		if (slash)
			*slash = '/';
		return weir_error_key(err, -EINVAL, rc->key,
				      "rule %u (%s): unknown protocol in %s: %s", rc->index,
				      rc->quote, WEIR_Q(item), ports_expected);
	}
	out->lo = 0;
	out->hi = 65535;
	if (!slash)
		return 0;

	dash = strchr(slash + 1, '-');
	if (dash)
		*dash = '\0';
	r = parse_u16_port(slash + 1, &out->lo);
	if (!r) {
		out->hi = out->lo;
		if (dash)
			r = parse_u16_port(dash + 1, &out->hi);
	}
	*slash = '/';
	if (dash)
		*dash = '-';
	if (r)
		return weir_error_key(err, -EINVAL, rc->key, "rule %u (%s): bad port in %s: %s",
				      rc->index, rc->quote, WEIR_Q(item), ports_expected);
	if (out->lo > out->hi)
		return weir_error_key(err, -EINVAL, rc->key,
				      "rule %u (%s): empty port range %s: expected the first port "
				      "not above the second",
				      rc->index, rc->quote, WEIR_Q(item));
	return 0;
}

static int parse_peer(struct rule_ctx *rc, const char *tok, struct weir_rule *r,
		      struct weir_error *err)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash;
	unsigned long plen;
	int maxlen;

	if (strlen(tok) >= sizeof(buf))
		goto bad;
	strcpy(buf, tok);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	memset(r->addr, 0, sizeof(r->addr));
	if (inet_pton(AF_INET, buf, r->addr) == 1) {
		r->family = WEIR_V4;
		maxlen = 32;
	} else if (inet_pton(AF_INET6, buf, r->addr) == 1) {
		r->family = WEIR_V6;
		maxlen = 128;
	} else {
		goto bad;
	}
	plen = (unsigned long)maxlen;
	if (slash) {
		char *end;

		if (!isdigit((unsigned char)slash[1]))
			goto bad;
		errno = 0;
		plen = strtoul(slash + 1, &end, 10);
		if (*end || errno || plen > (unsigned long)maxlen)
			return weir_error_key(
				err, -EINVAL, rc->key,
				"rule %u (%s): bad prefix length in %s: expected 0-%d", rc->index,
				rc->quote, WEIR_Q(tok), maxlen);
	}
	r->prefixlen = (uint8_t)plen;
	for (int bit = (int)plen; bit < maxlen; bit++) {
		if (r->addr[bit / 8] & (0x80 >> (bit % 8))) {
			char net[INET6_ADDRSTRLEN];
			uint8_t masked[16];

			memcpy(masked, r->addr, sizeof(masked));
			for (int b = (int)plen; b < maxlen; b++)
				masked[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
			inet_ntop(r->family == WEIR_V4 ? AF_INET : AF_INET6, masked, net,
				  sizeof(net));
			return weir_error_key(err, -EINVAL, rc->key,
					      "rule %u (%s): %s has host bits set: expected a "
					      "network address such as %s/%lu",
					      rc->index, rc->quote, WEIR_Q(tok), net, plen);
		}
	}
	return 0;
bad:
	return weir_error_key(err, -EINVAL, rc->key,
			      "rule %u (%s): bad peer %s: expected \"any\", an IPv4 or IPv6 "
			      "address, or a CIDR such as 10.0.0.0/8",
			      rc->index, rc->quote, WEIR_Q(tok));
}

static int push_rule(struct weir_dir_policy *dp, const struct weir_rule *r)
{
	struct weir_rule *n;

	n = realloc(dp->rules, (dp->nrules + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	dp->rules = n;
	dp->rules[dp->nrules++] = *r;
	return 0;
}

static int dup_ports(struct weir_rule *r)
{
	struct weir_port_item *p;

	if (!r->nports) {
		r->ports = NULL; /* never keep the parser's stack buffer */
		return 0;
	}
	p = malloc(r->nports * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memcpy(p, r->ports, r->nports * sizeof(*p));
	r->ports = p;
	return 0;
}

static int parse_rule(struct weir_dir_policy *dp, struct rule_ctx *rc, char *text,
		      const struct weir_policy_limits *lim, struct weir_error *err)
{
	struct weir_rule rule = {.index = rc->index};
	char *save = NULL, *action, *peer, *rest;
	int r;

	set_quote(rc, text);
	action = strtok_r(text, " \t\r\n", &save);
	peer = action ? strtok_r(NULL, " \t\r\n", &save) : NULL;
	rest = peer ? trim(save ? save : (char *)"") : NULL;

	if (!strcmp(action, "allow")) {
		rule.action = WEIR_ALLOW;
	} else if (!strcmp(action, "deny")) {
		rule.action = WEIR_DENY;
	} else {
		return weir_error_key(
			err, -EINVAL, rc->key,
			"rule %u (%s): unknown action %s: expected \"allow\" or \"deny\"",
			rc->index, rc->quote, WEIR_Q(action));
	}
	if (!peer)
		return weir_error_key(err, -EINVAL, rc->key,
				      "rule %u (%s): missing peer: expected \"any\", an address or "
				      "a CIDR after %s",
				      rc->index, rc->quote, WEIR_Q(action));

	/* ports first, so "any" can be expanded into one rule per family sharing them */
	struct weir_port_item items[64];
	size_t nitems = 0;

	if (rest && *rest) {
		char *cursor = rest, *it;

		/* strsep, unlike strtok, reports the empty item of "tcp/80,,udp/53" */
		while ((it = strsep(&cursor, ","))) {
			char *t = trim(it);

			if (!*t)
				return weir_error_key(err, -EINVAL, rc->key,
						      "rule %u (%s): empty port item: %s",
						      rc->index, rc->quote, ports_expected);
			if (strpbrk(t, " \t\r\n"))
				return weir_error_key(
					err, -EINVAL, rc->key,
					"rule %u (%s): unexpected %s: expected one peer followed "
					"by port items separated by ','",
					rc->index, rc->quote, WEIR_Q(t));
			if (nitems == sizeof(items) / sizeof(items[0]))
				return weir_error_key(
					err, -E2BIG, rc->key,
					"rule %u (%s): more than %zu port items: split the rule",
					rc->index, rc->quote, sizeof(items) / sizeof(items[0]));
			r = parse_port_item(rc, t, &items[nitems], err);
			if (r)
				return r;
			nitems++;
		}
	}
	rule.all_protocols = nitems == 0;
	rule.nports = nitems;
	rule.ports = items;

	if (!strcmp(peer, "any")) {
		struct weir_rule r4 = rule, r6 = rule;

		r4.family = WEIR_V4;
		r6.family = WEIR_V6;
		if (dp->nrules + 2 > lim->max_rules)
			goto too_many;
		if ((r = dup_ports(&r4)) || (r = push_rule(dp, &r4)))
			return r;
		if ((r = dup_ports(&r6)) || (r = push_rule(dp, &r6)))
			return r;
		return 0;
	}
	r = parse_peer(rc, peer, &rule, err);
	if (r)
		return r;
	if (dp->nrules + 1 > lim->max_rules)
		goto too_many;
	if ((r = dup_ports(&rule)) || (r = push_rule(dp, &rule)))
		return r;
	return 0;
too_many:
	return weir_error_key(err, -E2BIG, rc->key, "more than %zu rules (\"any\" counts twice)",
			      lim->max_rules);
}

static void dir_free(struct weir_dir_policy *dp)
{
	for (size_t i = 0; i < dp->nrules; i++)
		free(dp->rules[i].ports);
	free(dp->rules);
	memset(dp, 0, sizeof(*dp));
}

int weir_policy_parse_dir(struct weir_policy *pol, enum weir_dir dir, const char *key,
			  const char *value, const struct weir_policy_limits *lim,
			  struct weir_error *err)
{
	struct weir_dir_policy *dp = &pol->dir[dir];
	struct rule_ctx rc = {.key = key};
	char *copy, *cur, *semi;
	int r;

	r = weir_check_text(key, value, strlen(value), lim->max_value_bytes, err);
	if (r)
		return r;
	dir_free(dp);
	copy = strdup(value);
	if (!copy)
		return -ENOMEM;

	cur = copy;
	for (;;) {
		char *text;

		semi = strchr(cur, ';');
		if (semi)
			*semi = '\0';
		text = trim(cur);
		rc.index++;
		if (!*text) {
			/* one trailing ';' is tolerated, as YAML-written lists often end with it */
			if (!semi && rc.index > 1)
				break;
			if (rc.index == 1 && !semi)
				r = weir_error_key(err, -EINVAL, key,
						   "empty value: expected rules such as \"allow "
						   "10.0.0.0/8 tcp/443; deny any\"");
			else
				r = weir_error_key(
					err, -EINVAL, key,
					"rule %u is empty: expected \"allow\" or "
					"\"deny\", a peer and optional ports between ';'",
					rc.index);
			goto fail;
		}
		r = parse_rule(dp, &rc, text, lim, err);
		if (r)
			goto fail;
		if (!semi)
			break;
		cur = semi + 1;
	}
	dp->present = true;
	free(copy);
	return 0;
fail:
	free(copy);
	dir_free(dp);
	return r;
}

void weir_policy_free(struct weir_policy *pol)
{
	for (int d = 0; d < WEIR_DIRS; d++)
		dir_free(&pol->dir[d]);
}

/* ---- reference evaluation ----------------------------------------------------------- */

bool weir_prefix_contains(uint8_t plen, const uint8_t *net, const uint8_t *addr)
{
	unsigned int full = plen / 8, rem = plen % 8;

	if (memcmp(net, addr, full))
		return false;
	if (rem) {
		uint8_t mask = (uint8_t)(0xff << (8 - rem));

		if ((net[full] & mask) != (addr[full] & mask))
			return false;
	}
	return true;
}

/*
 * Whether a rule's protocol part matches. An unknown port (non-first fragment) is matched by
 * whole-protocol items only for allows, and by any item of the class for denies: when in
 * doubt, the packet is denied.
 */
static bool rule_proto_matches(const struct weir_rule *r, uint32_t pclass, uint16_t port,
			       bool have_port)
{
	if (r->all_protocols)
		return true;
	for (size_t i = 0; i < r->nports; i++) {
		const struct weir_port_item *it = &r->ports[i];

		if (it->pclass != pclass)
			continue;
		if (pclass == WEIR_PC_ICMP)
			return true;
		if (!have_port) {
			if (r->action == WEIR_DENY || (it->lo == 0 && it->hi == 65535))
				return true;
			continue;
		}
		if (port >= it->lo && port <= it->hi)
			return true;
	}
	return false;
}

bool weir_rule_matches(const struct weir_rule *r, uint8_t family, const uint8_t *addr,
		       uint32_t pclass, uint16_t port, bool have_port)
{
	return r->family == family && weir_prefix_contains(r->prefixlen, r->addr, addr) &&
	       rule_proto_matches(r, pclass, port, have_port);
}

int weir_policy_eval_reference(const struct weir_policy *pol, enum weir_dir dir, uint8_t family,
			       const uint8_t *addr, uint32_t pclass, uint16_t port, bool have_port)
{
	const struct weir_dir_policy *dp = &pol->dir[dir];
	bool allowed = false;

	if (!dp->present)
		return 1;
	for (size_t i = 0; i < dp->nrules; i++) {
		const struct weir_rule *r = &dp->rules[i];

		if (!weir_rule_matches(r, family, addr, pclass, port, have_port))
			continue;
		if (r->action == WEIR_DENY)
			return 0;
		allowed = true;
	}
	return allowed;
}

/* ---- compilation -------------------------------------------------------------------- */

struct ivals {
	size_t n, cap;
	struct weir_port_range *v;
};

/* Allowed and denied sets of one prefix, with every enclosing prefix's rules merged in. */
struct portsets {
	uint8_t allow_all; /* bit per class: whole class allowed */
	uint8_t deny_all;
	struct ivals allow[2]; /* TCP, UDP */
	struct ivals deny[2];
};

static void ivals_free(struct ivals *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int ivals_add(struct ivals *s, uint16_t lo, uint16_t hi)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4;
		struct weir_port_range *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n].lo = lo;
	s->v[s->n].hi = hi;
	s->n++;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct weir_port_range *x = a, *y = b;

	return x->lo != y->lo ? (x->lo < y->lo ? -1 : 1) : (x->hi < y->hi ? -1 : x->hi > y->hi);
}

/* Sort and coalesce overlapping or adjacent ranges. */
static void ivals_normalize(struct ivals *s)
{
	size_t out = 0;

	if (!s->n)
		return;
	qsort(s->v, s->n, sizeof(*s->v), cmp_range);
	for (size_t i = 1; i < s->n; i++) {
		struct weir_port_range *last = &s->v[out];

		if ((uint32_t)s->v[i].lo <= (uint32_t)last->hi + 1) {
			if (s->v[i].hi > last->hi)
				last->hi = s->v[i].hi;
		} else {
			s->v[++out] = s->v[i];
		}
	}
	s->n = out + 1;
}

static int ivals_copy(struct ivals *dst, const struct ivals *src)
{
	for (size_t i = 0; i < src->n; i++) {
		int r = ivals_add(dst, src->v[i].lo, src->v[i].hi);

		if (r)
			return r;
	}
	return 0;
}

static void portsets_free(struct portsets *p)
{
	for (int c = 0; c < 2; c++) {
		ivals_free(&p->allow[c]);
		ivals_free(&p->deny[c]);
	}
}

static int portsets_add_rule(struct portsets *p, const struct weir_rule *r)
{
	uint8_t *all = r->action == WEIR_ALLOW ? &p->allow_all : &p->deny_all;
	struct ivals *iv = r->action == WEIR_ALLOW ? p->allow : p->deny;
	int err;

	if (r->all_protocols) {
		*all = (1U << WEIR_PCLASSES) - 1;
		return 0;
	}
	for (size_t i = 0; i < r->nports; i++) {
		const struct weir_port_item *it = &r->ports[i];

		if (it->pclass == WEIR_PC_ICMP || (it->lo == 0 && it->hi == 65535)) {
			*all |= 1U << it->pclass;
			continue;
		}
		err = ivals_add(&iv[it->pclass], it->lo, it->hi);
		if (err)
			return err;
	}
	return 0;
}

/* allow - deny, for one class, into out[] (sorted, disjoint). Returns count or -E2BIG. */
static int subtract(const struct ivals *allow, bool allow_all, const struct ivals *deny,
		    struct weir_port_range *out, size_t max)
{
	struct weir_port_range full = {0, 65535};
	const struct weir_port_range *a = allow_all ? &full : allow->v;
	size_t na = allow_all ? 1 : allow->n, n = 0, j = 0;

	for (size_t i = 0; i < na; i++) {
		uint32_t lo = a[i].lo, hi = a[i].hi;

		while (j < deny->n && deny->v[j].hi < lo)
			j++;
		for (size_t k = j; k < deny->n && deny->v[k].lo <= hi && lo <= hi; k++) {
			if (deny->v[k].lo > lo) {
				if (n == max)
					return -E2BIG;
				out[n].lo = (uint16_t)lo;
				out[n].hi = (uint16_t)(deny->v[k].lo - 1);
				n++;
			}
			lo = (uint32_t)deny->v[k].hi + 1;
		}
		if (lo <= hi) {
			if (n == max)
				return -E2BIG;
			out[n].lo = (uint16_t)lo;
			out[n].hi = (uint16_t)hi;
			n++;
		}
	}
	return (int)n;
}

static int portsets_emit(const struct portsets *p, struct weir_policy_val *v)
{
	struct weir_port_range tmp[WEIR_POLICY_MAX_RANGES];
	size_t used = 0;

	memset(v, 0, sizeof(*v));
	for (uint32_t c = WEIR_PC_ICMP; c < WEIR_PCLASSES; c++)
		if ((p->allow_all & (1U << c)) && !(p->deny_all & (1U << c)))
			v->all |= (uint8_t)(1U << c);
	for (uint32_t c = WEIR_PC_TCP; c <= WEIR_PC_UDP; c++) {
		int n;

		if (p->deny_all & (1U << c))
			n = 0;
		else if ((p->allow_all & (1U << c)) && !p->deny[c].n) {
			v->all |= (uint8_t)(1U << c);
			n = 0;
		} else {
			n = subtract(&p->allow[c], p->allow_all & (1U << c), &p->deny[c], tmp,
				     WEIR_POLICY_MAX_RANGES - used);
			if (n < 0)
				return n;
		}
		memcpy(&v->ranges[used], tmp, (size_t)n * sizeof(tmp[0]));
		used += (size_t)n;
		if (c == WEIR_PC_TCP)
			v->ntcp = (uint8_t)n;
		else
			v->nudp = (uint8_t)n;
	}
	return 0;
}

struct pfx {
	uint8_t family;
	uint8_t plen;
	uint8_t addr[16];
	size_t first, count; /* rules of this exact prefix, in the sorted rule index */
};

struct sort_ctx_rule {
	const struct weir_rule *r;
};

static int cmp_rule_prefix(const void *a, const void *b)
{
	const struct weir_rule *x = ((const struct sort_ctx_rule *)a)->r;
	const struct weir_rule *y = ((const struct sort_ctx_rule *)b)->r;
	int c;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	/*
	 * Address first, then length: an enclosing prefix sorts before everything inside it,
	 * and everything inside it sorts before the next prefix it does not contain.
	 */
	c = memcmp(x->addr, y->addr, 16);
	if (c)
		return c;
	return x->prefixlen < y->prefixlen ? -1 : x->prefixlen > y->prefixlen;
}

static int push_entry(struct weir_compiled *out, size_t *cap, enum weir_dir dir,
		      const struct pfx *p, const struct weir_policy_val *v)
{
	struct weir_policy_entry *e;

	if (out->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;

		e = realloc(out->entries, ncap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		out->entries = e;
		*cap = ncap;
	}
	e = &out->entries[out->n++];
	memset(e, 0, sizeof(*e));
	e->key.prefixlen = WEIR_POLICY_KEY_FIXED_BITS + p->plen;
	e->key.dir = (uint8_t)dir;
	e->key.family = p->family;
	memcpy(e->key.addr, p->addr, 16);
	e->val = *v;
	return 0;
}

static int compile_dir(const struct weir_dir_policy *dp, enum weir_dir dir, const char *key,
		       struct weir_compiled *out, size_t *cap, struct weir_error *err)
{
	struct sort_ctx_rule *sorted = NULL;
	struct portsets *stack = NULL;
	struct pfx *stackp = NULL;
	size_t depth = 0, i = 0;
	int r = 0;

	if (!dp->nrules)
		return 0;
	sorted = calloc(dp->nrules, sizeof(*sorted));
	/* nesting depth is bounded by the address length: 0..128 */
	stack = calloc(130, sizeof(*stack));
	stackp = calloc(130, sizeof(*stackp));
	if (!sorted || !stack || !stackp) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t k = 0; k < dp->nrules; k++)
		sorted[k].r = &dp->rules[k];
	qsort(sorted, dp->nrules, sizeof(*sorted), cmp_rule_prefix);

	while (i < dp->nrules) {
		const struct weir_rule *first = sorted[i].r;
		struct pfx p = {.family = first->family, .plen = first->prefixlen, .first = i};
		struct portsets *cur;
		struct weir_policy_val val;

		memcpy(p.addr, first->addr, 16);
		while (i < dp->nrules && sorted[i].r->family == p.family &&
		       sorted[i].r->prefixlen == p.plen && !memcmp(sorted[i].r->addr, p.addr, 16))
			i++;
		p.count = i - p.first;

		/* unwind to the nearest enclosing prefix */
		while (depth && (stackp[depth - 1].family != p.family ||
				 !weir_prefix_contains(stackp[depth - 1].plen,
						       stackp[depth - 1].addr, p.addr)))
			portsets_free(&stack[--depth]);

		cur = &stack[depth];
		memset(cur, 0, sizeof(*cur));
		if (depth) {
			const struct portsets *parent = &stack[depth - 1];

			cur->allow_all = parent->allow_all;
			cur->deny_all = parent->deny_all;
			for (int c = 0; c < 2; c++) {
				if ((r = ivals_copy(&cur->allow[c], &parent->allow[c])) ||
				    (r = ivals_copy(&cur->deny[c], &parent->deny[c])))
					goto fail_cur;
			}
		}
		for (size_t k = p.first; k < p.first + p.count; k++)
			if ((r = portsets_add_rule(cur, sorted[k].r)))
				goto fail_cur;
		for (int c = 0; c < 2; c++) {
			ivals_normalize(&cur->allow[c]);
			ivals_normalize(&cur->deny[c]);
		}
		stackp[depth] = p;
		depth++;

		r = portsets_emit(cur, &val);
		if (r == -E2BIG) {
			char net[INET6_ADDRSTRLEN];

			inet_ntop(p.family == WEIR_V4 ? AF_INET : AF_INET6, p.addr, net,
				  sizeof(net));
			r = weir_error_key(
				err, -E2BIG, key,
				"peer %s/%u needs more than %d distinct port ranges once "
				"enclosing rules are merged: merge port ranges",
				net, p.plen, WEIR_POLICY_MAX_RANGES);
			goto out;
		}
		if (r || (r = push_entry(out, cap, dir, &p, &val)))
			goto out;
		continue;
fail_cur:
		portsets_free(cur);
		goto out;
	}
out:
	while (depth)
		portsets_free(&stack[--depth]);
	free(sorted);
	free(stack);
	free(stackp);
	return r;
}

int weir_policy_compile(const struct weir_policy *pol, struct weir_compiled *out,
			struct weir_error *err)
{
	static const char *const keys[WEIR_DIRS] = {"egress.weir.io", "ingress.weir.io"};
	size_t cap = 0;
	int r;

	memset(out, 0, sizeof(*out));
	for (int d = 0; d < WEIR_DIRS; d++) {
		r = compile_dir(&pol->dir[d], (enum weir_dir)d, keys[d], out, &cap, err);
		if (r) {
			weir_compiled_free(out);
			return r;
		}
	}
	return 0;
}

void weir_compiled_free(struct weir_compiled *c)
{
	free(c->entries);
	memset(c, 0, sizeof(*c));
}

int weir_compiled_eval(const struct weir_compiled *c, const struct weir_policy *pol,
		       enum weir_dir dir, uint8_t family, const uint8_t *addr, uint32_t pclass,
		       uint16_t port, bool have_port)
{
	const struct weir_policy_entry *best = NULL;

	if (!pol->dir[dir].present)
		return 1;
	/* The kernel's LPM trie, done the slow way: the longest prefix that contains addr. */
	for (size_t i = 0; i < c->n; i++) {
		const struct weir_policy_entry *e = &c->entries[i];
		uint8_t plen = (uint8_t)(e->key.prefixlen - WEIR_POLICY_KEY_FIXED_BITS);

		if (e->key.dir != dir || e->key.family != family)
			continue;
		if (!weir_prefix_contains(plen, e->key.addr, addr))
			continue;
		if (!best || e->key.prefixlen > best->key.prefixlen)
			best = e;
	}
	if (!best)
		return 0;
	return weir_val_allows(&best->val, pclass, port, have_port);
}
