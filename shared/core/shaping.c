// SPDX-License-Identifier: Apache-2.0
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "shaping.h"
#include "util.h"

/*
 * The mapping of priority.weir.io: skb priority in the kernel's TC_PRIO_* scale (what the
 * node's qdiscs classify on) and the DSCP of RFC 4594's matching service classes.
 */
const struct weir_prio_desc weir_prio_classes[WEIR_PRIO_CLASSES] = {
	[WEIR_PRIO_NONE] = {"", 0, 0},
	[WEIR_PRIO_CRITICAL] = {"critical", 6, 46}, /* TC_PRIO_INTERACTIVE, EF */
	[WEIR_PRIO_HIGH] = {"high", 4, 34},	    /* TC_PRIO_INTERACTIVE_BULK, AF41 */
	[WEIR_PRIO_NORMAL] = {"normal", 0, 0},	    /* TC_PRIO_BESTEFFORT, CS0 */
	[WEIR_PRIO_BULK] = {"bulk", 2, 8},	    /* TC_PRIO_BULK, CS1 */
};

static const struct {
	const char *suffix;
	long double factor;
} suffixes[] = {
	{"Ki", 1024.0L},
	{"Mi", 1048576.0L},
	{"Gi", 1073741824.0L},
	{"Ti", 1099511627776.0L},
	{"Pi", 1125899906842624.0L},
	{"Ei", 1152921504606846976.0L},
	{"n", 1e-9L},
	{"u", 1e-6L},
	{"m", 1e-3L},
	{"k", 1e3L},
	{"M", 1e6L},
	{"G", 1e9L},
	{"T", 1e12L},
	{"P", 1e15L},
	{"E", 1e18L},
	{"", 1.0L},
};

int weir_quantity_parse(const char *text, uint64_t *out)
{
	const char *s = text;
	long double v = 0, scale = 1;
	bool neg = false, digits = false;

	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	for (; isdigit((unsigned char)*s); s++, digits = true)
		v = v * 10 + (*s - '0');
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++, digits = true) {
			scale /= 10;
			v += (*s - '0') * scale;
		}
	}
	if (!digits)
		return -EINVAL;
	if ((*s == 'e' || *s == 'E') && s[1]) {
		/* a decimal exponent: "1e6", "5E-3" */
		const char *e = s + 1;
		long x = 0;
		bool eneg = false;

		if (*e == '+' || *e == '-')
			eneg = *e++ == '-';
		if (!isdigit((unsigned char)*e))
			return -EINVAL;
		for (; isdigit((unsigned char)*e); e++)
			if (x < 100)
				x = x * 10 + (*e - '0');
		if (*e)
			return -EINVAL;
		for (; x > 0; x--)
			v = eneg ? v / 10 : v * 10;
	} else {
		size_t i;

		for (i = 0; i < WEIR_ARRAY_SIZE(suffixes); i++)
			if (!strcmp(s, suffixes[i].suffix))
				break;
		if (i == WEIR_ARRAY_SIZE(suffixes))
			return -EINVAL;
		v *= suffixes[i].factor;
	}
	if (neg && v > 0)
		return -ERANGE;
	if (v > 1.8e19L)
		return -ERANGE;
	/* rounded up, as Kubernetes' Value() does */
	*out = (uint64_t)v + ((long double)(uint64_t)v < v);
	return 0;
}

bool weir_shaping_key(const char *key)
{
	return !strcmp(key, WEIR_KEY_EGRESS_BW) || !strcmp(key, WEIR_KEY_INGRESS_BW) ||
	       !strcmp(key, WEIR_KEY_BURST) || !strcmp(key, WEIR_KEY_PRIORITY) ||
	       !strcmp(key, WEIR_KEY_TCP_CC);
}

bool weir_shaping_any(const struct weir_shaping *sh)
{
	return sh->rate_bps[WEIR_EGRESS] || sh->rate_bps[WEIR_INGRESS] || sh->prio || sh->cc[0];
}

/* Is name one of the space-separated words of the node's list? If not, *list is the list. */
static int cc_available(const char *list_path, const char *name, char **list)
{
	_cleanup_free_ char *text = NULL, *copy = NULL;
	char *save = NULL, *w, *e;
	int r;

	r = weir_read_file(list_path, 4096, &text, NULL);
	if (r)
		return r;
	copy = strdup(text);
	if (!copy)
		return -ENOMEM;
	for (w = strtok_r(copy, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save))
		if (!strcmp(w, name))
			return 1;
	for (e = text; *e; e++)
		if (*e == '\n' || *e == '\t')
			*e = ' ';
	while (e > text && e[-1] == ' ')
		*--e = '\0';
	*list = text;
	text = NULL;
	return 0;
}

static int parse_cc(struct weir_shaping *sh, const char *key, const char *value,
		    const char *cc_list, struct weir_error *err)
{
	_cleanup_free_ char *list = NULL;
	size_t n = strlen(value);
	int r;

	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)value[i]) && value[i] != '_' && value[i] != '-')
			n = 0;
	if (!n || n >= WEIR_CC_NAME)
		return weir_error_key(err, -EINVAL, key,
				      "bad congestion control %s: expected the name of one the "
				      "node has, such as cubic, reno or bbr (1-15 letters, digits, "
				      "'_' or '-')",
				      WEIR_Q(value));
	r = cc_available(cc_list, value, &list);
	if (r < 0)
		return weir_error_key(err, r, key,
				      "cannot read the node's congestion controls from %s: %s",
				      cc_list, strerror(-r));
	if (!r)
		return weir_error_key(err, -EINVAL, key,
				      "unknown congestion control %s: expected one this node "
				      "has: %s",
				      WEIR_Q(value), *list ? list : "(none listed)");
	memcpy(sh->cc, value, n + 1);
	return 0;
}

int weir_shaping_parse(struct weir_shaping *sh, const char *key, const char *value,
		       const char *cc_list, struct weir_error *err)
{
	uint64_t v;
	int r;

	r = weir_check_text(key, value, strlen(value), 64, err);
	if (r)
		return r;
	if (!strcmp(key, WEIR_KEY_EGRESS_BW) || !strcmp(key, WEIR_KEY_INGRESS_BW)) {
		r = weir_quantity_parse(value, &v);
		if (r || v < WEIR_BW_MIN_BPS || v > WEIR_BW_MAX_BPS)
			return weir_error_key(
				err, -EINVAL, key,
				"bad bandwidth %s: expected a Kubernetes quantity of bits per "
				"second from 1k to 1P, such as 500k, 10M, 1G or 1Gi",
				WEIR_Q(value));
		sh->rate_bps[!strcmp(key, WEIR_KEY_EGRESS_BW) ? WEIR_EGRESS : WEIR_INGRESS] = v;
		return 0;
	}
	if (!strcmp(key, WEIR_KEY_BURST)) {
		r = weir_quantity_parse(value, &v);
		if (r || v < WEIR_BURST_MIN || v > WEIR_BURST_MAX)
			return weir_error_key(err, -EINVAL, key,
					      "bad burst %s: expected a quantity of bytes from 1Ki "
					      "to 1Gi, such as 64Ki, 256k or 1Mi",
					      WEIR_Q(value));
		sh->burst = v;
		return 0;
	}
	if (!strcmp(key, WEIR_KEY_PRIORITY)) {
		for (int c = WEIR_PRIO_CRITICAL; c < WEIR_PRIO_CLASSES; c++) {
			if (!strcmp(value, weir_prio_classes[c].name)) {
				sh->prio = (enum weir_prio_class)c;
				return 0;
			}
		}
		return weir_error_key(err, -EINVAL, key,
				      "unknown priority class %s: expected \"critical\", "
				      "\"high\", \"normal\" or \"bulk\"",
				      WEIR_Q(value));
	}
	return parse_cc(sh, key, value, cc_list, err);
}

void weir_shaping_fill(const struct weir_shaping *sh, struct weir_endpoint *ep)
{
	for (int d = 0; d < WEIR_DIRS; d++) {
		struct weir_shape *s = &ep->shape[d];
		uint64_t bytes_ps = (sh->rate_bps[d] + 7) / 8, burst;

		memset(s, 0, sizeof(*s));
		if (!bytes_ps)
			continue;
		burst = sh->burst;
		if (!burst) {
			uint64_t ns = d == WEIR_INGRESS ? WEIR_BURST_INGRESS_DEFAULT_NS
							: WEIR_BURST_DEFAULT_NS;

			/* in whole ms: bytes_ps < 2^47, so bytes_ps * ms stays below 2^64 */
			burst = bytes_ps * (ns / 1000000ULL) / 1000ULL;
			if (burst < WEIR_BURST_DEFAULT_MIN)
				burst = WEIR_BURST_DEFAULT_MIN;
			if (burst > WEIR_BURST_MAX)
				burst = WEIR_BURST_MAX;
		}
		s->rate = bytes_ps;
		/* burst / rate in ns, without overflow: burst < 2^31, so split the second */
		s->burst_ns = burst * 1000000ULL / bytes_ps * 1000ULL +
			      burst * 1000000ULL % bytes_ps * 1000ULL / bytes_ps;
		s->mark_ns = s->burst_ns / 2;
		/*
		 * TCP's own pacing counts payload; the limiter counts IP packets. Paced at the
		 * payload share of a full-sized Ethernet frame (1448 of 1514 bytes), one flow fits
		 * under the limit as a qdisc's would.
		 */
		if (d == WEIR_EGRESS)
			s->pace = bytes_ps * 1448 / 1514;
	}
	if (sh->prio) {
		ep->flags |= WEIR_EP_PRIORITY;
		ep->priority = weir_prio_classes[sh->prio].priority;
		ep->tos = (uint8_t)(weir_prio_classes[sh->prio].dscp << 2);
	}
	if (sh->cc[0]) {
		ep->flags |= WEIR_EP_CC;
		memcpy(ep->cc, sh->cc, sizeof(ep->cc));
	}
}
