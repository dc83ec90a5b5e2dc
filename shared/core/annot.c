// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot.h"
#include "util.h"

static const char domain[] = ".weir.io";

static const char known_keys[] = WEIR_KEY_EGRESS
	", " WEIR_KEY_INGRESS ", " WEIR_KEY_POLICY_MODE ", " WEIR_KEY_MONITOR ", " WEIR_KEY_SECURITY
	", " WEIR_KEY_BURST ", " WEIR_KEY_PRIORITY ", " WEIR_KEY_TCP_CC " or " WEIR_KEY_CONNTRACK;

/* Keys outside weir.io that weir honours (the CNI bandwidth plugin's, from Kubernetes). */
static const char *const foreign_keys[] = {WEIR_KEY_EGRESS_BW, WEIR_KEY_INGRESS_BW};

const char *const weir_monitor_names[] = {
	[WEIR_MON_COUNTERS] = "counters",
	[WEIR_MON_FLOWS] = "flows",
	[WEIR_MON_OFF] = "off",
};

/*
 * Length of the "<name>.weir.io" part of a key (or of a foreign key weir honours), or 0 when
 * it is not a weir key.
 */
static size_t weir_base_len(const char *key)
{
	const char *slash = strchr(key, '/');
	size_t n = slash ? (size_t)(slash - key) : strlen(key);
	size_t d = strlen(domain);

	for (size_t i = 0; i < WEIR_ARRAY_SIZE(foreign_keys); i++) {
		size_t f = strlen(foreign_keys[i]);

		if (!strncmp(key, foreign_keys[i], f) && (key[f] == '\0' || key[f] == '/'))
			return f;
	}

	if (n == d - 1 && !strncmp(key, domain + 1, n))
		return n; /* bare "weir.io" */
	if (n > d && !strncmp(key + n - d, domain, d))
		return n;
	return 0;
}

bool weir_is_weir_key(const char *key)
{
	return key && weir_base_len(key) > 0;
}

int weir_annotation_check_raw(const char *key, size_t klen, const char *value, size_t vlen,
			      struct weir_error *err)
{
	const char *nul = memchr(key, '\0', klen);

	/* "egress.weir.io\0x" would be read as egress.weir.io, beside or instead of the real
	 * one, while whoever vetted the annotations saw another key */
	if (nul) {
		if (!memmem(key, klen, domain + 1, strlen(domain) - 1))
			return 0;
		return weir_error_set(err, -EINVAL,
				      "annotation key %s: control character 0x00 at byte %zu: "
				      "expected printable text",
				      weir_quote((char[WEIR_QUOTE_SIZE]){0}, WEIR_QUOTE_SIZE, key,
						 klen, 0, WEIR_QUOTE_ALWAYS),
				      (size_t)(nul - key));
	}
	if (!weir_is_weir_key(key) || !memchr(value, '\0', vlen))
		return 0;
	/* the value's limit is the node config's, checked when it is parsed */
	return weir_check_text(key, value, vlen, SIZE_MAX, err);
}

int weir_json_check_keys(const char *text, size_t len, const char *what, struct weir_error *err)
{
	for (size_t i = 0; i < len; i++) {
		size_t start, nul = 0, j;

		if (text[i] != '"')
			continue;
		/* a string: find its end and its first escaped NUL */
		for (start = ++i; i < len && text[i] != '"'; i++) {
			if (text[i] != '\\')
				continue;
			if (!nul && len - i > 5 && !memcmp(text + i + 1, "u0000", 5))
				nul = i;
			i++;
		}
		if (!nul)
			continue;
		for (j = i + 1; j < len && strchr(" \t\r\n", text[j]); j++)
			;
		if (j < len && text[j] == ':')
			return weir_error_set(
				err, -EINVAL,
				"%s: key %s is followed by \\u0000 (a NUL character): "
				"expected printable text",
				what,
				weir_quote((char[WEIR_QUOTE_SIZE]){0}, WEIR_QUOTE_SIZE,
					   text + start, nul - start, 0, WEIR_QUOTE_ALWAYS));
	}
	return 0;
}

int weir_annotations_present(const struct weir_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (weir_is_weir_key(kv[i].key))
			return 1;
	return 0;
}

struct pick {
	const char *base; /* not NUL-terminated at base_len */
	size_t base_len;
	const char *value;
	int prio;
};

static int consider(struct pick *picks, size_t *npicks, const struct weir_kv *kv,
		    const char *ctr_name, bool from_ctr, struct weir_error *err)
{
	size_t blen = weir_base_len(kv->key);
	const char *suffix;
	int prio;

	if (!blen)
		return 0;
	suffix = kv->key[blen] == '/' ? kv->key + blen + 1 : NULL;
	if (!suffix) {
		prio = 0;
	} else if (!strcmp(suffix, "pod")) {
		prio = 2;
	} else if (!strncmp(suffix, "container.", 10) && suffix[10]) {
		if (!ctr_name || strcmp(suffix + 10, ctr_name))
			return 0; /* meant for another container of the pod */
		prio = 4;
	} else {
		return weir_error_key(err, -EINVAL, kv->key,
				      "unknown suffix %s: expected \"/pod\" or \"/container.NAME\"",
				      WEIR_Q(suffix - 1));
	}
	/* at equal specificity the container's own annotation beats the pod's */
	prio += from_ctr;
	for (size_t i = 0; i < *npicks; i++) {
		if (picks[i].base_len == blen && !strncmp(picks[i].base, kv->key, blen)) {
			if (prio > picks[i].prio) {
				picks[i].value = kv->value;
				picks[i].prio = prio;
			}
			return 0;
		}
	}
	picks[*npicks].base = kv->key;
	picks[*npicks].base_len = blen;
	picks[*npicks].value = kv->value;
	picks[*npicks].prio = prio;
	(*npicks)++;
	return 0;
}

int weir_annotations_resolve(const struct weir_kv *pod, size_t npod, const struct weir_kv *ctr,
			     size_t nctr, const char *ctr_name, struct weir_kv **out, size_t *nout,
			     struct weir_error *err)
{
	_cleanup_free_ struct pick *picks = calloc(npod + nctr + 1, sizeof(*picks));
	struct weir_kv *res;
	size_t npicks = 0, strbytes = 0;
	char *str;
	int r;

	if (!picks)
		return -ENOMEM;
	for (size_t i = 0; i < npod; i++)
		if (pod[i].key && pod[i].value &&
		    (r = consider(picks, &npicks, &pod[i], ctr_name, false, err)))
			return r;
	for (size_t i = 0; i < nctr; i++)
		if (ctr[i].key && ctr[i].value &&
		    (r = consider(picks, &npicks, &ctr[i], ctr_name, true, err)))
			return r;

	for (size_t i = 0; i < npicks; i++)
		strbytes += picks[i].base_len + 1;
	/* one allocation: the array, then the plain key strings, so free() releases it all */
	res = malloc(sizeof(*res) * (npicks + 1) + strbytes);
	if (!res)
		return -ENOMEM;
	str = (char *)(res + npicks + 1);
	for (size_t i = 0; i < npicks; i++) {
		memcpy(str, picks[i].base, picks[i].base_len);
		str[picks[i].base_len] = '\0';
		res[i].key = str;
		res[i].value = picks[i].value;
		str += picks[i].base_len + 1;
	}
	res[npicks].key = NULL;
	res[npicks].value = NULL;
	*out = res;
	*nout = npicks;
	return 0;
}

/* conntrack.weir.io: the endpoint's conntrack entries, a decimal number within the node's bounds.
 */
static int parse_ct_entries(const struct weir_config *cfg, const char *key, const char *value,
			    uint32_t *out, struct weir_error *err)
{
	unsigned long long v = 0;
	size_t i;
	int r;

	r = weir_check_text(key, value, strlen(value), 64, err);
	if (r)
		return r;
	for (i = 0; value[i] >= '0' && value[i] <= '9' && v <= WEIR_CT_MAX_ENTRIES; i++)
		v = v * 10 + (unsigned long long)(value[i] - '0');
	if (!i || value[i] || v < WEIR_CT_MIN_ENTRIES || v > cfg->ct_max_entries)
		return weir_error_key(err, -EINVAL, key,
				      "%s: expected a number of entries from %u to %u",
				      WEIR_Q(value), WEIR_CT_MIN_ENTRIES, cfg->ct_max_entries);
	*out = (uint32_t)v;
	return 0;
}

int weir_spec_parse(const struct weir_config *cfg, const struct weir_kv *kv, size_t n,
		    struct weir_spec *spec, struct weir_error *err)
{
	return weir_spec_parse_for(cfg, kv, n, NULL, spec, err);
}

int weir_spec_parse_for(const struct weir_config *cfg, const struct weir_kv *kv, size_t n,
			const char *pod_namespace, struct weir_spec *spec, struct weir_error *err)
{
	int r;

	memset(spec, 0, sizeof(*spec));
	spec->audit = cfg->default_audit;
	spec->ct_entries = cfg->ct_entries;
	for (size_t i = 0; i < n; i++) {
		const char *key = kv[i].key, *value = kv[i].value;

		if (!weir_is_weir_key(key))
			continue;
		spec->any = true;
		if (!value)
			value = "";
		if (!strcmp(key, WEIR_KEY_EGRESS) || !strcmp(key, WEIR_KEY_INGRESS)) {
			enum weir_dir dir = key[0] == 'e' ? WEIR_EGRESS : WEIR_INGRESS;

			r = weir_policy_parse_dir(&spec->policy, dir, key, value, &cfg->limits,
						  err);
		} else if (!strcmp(key, WEIR_KEY_POLICY_MODE)) {
			r = weir_check_text(key, value, strlen(value), 64, err);
			if (!r && !strcmp(value, "enforce"))
				spec->audit = false;
			else if (!r && !strcmp(value, "audit"))
				spec->audit = true;
			else if (!r)
				r = weir_error_key(err, -EINVAL, key,
						   "unknown mode %s: expected \"enforce\" or "
						   "\"audit\"",
						   WEIR_Q(value));
		} else if (!strcmp(key, WEIR_KEY_MONITOR)) {
			r = weir_check_text(key, value, strlen(value), 64, err);
			if (!r) {
				r = -EINVAL;
				for (int m = WEIR_MON_COUNTERS; m <= WEIR_MON_OFF; m++) {
					if (!strcmp(value, weir_monitor_names[m])) {
						spec->monitor = (enum weir_monitor)m;
						r = 0;
					}
				}
				if (r)
					weir_error_key(err, r, key,
						       "unknown value %s: expected \"counters\", "
						       "\"flows\" or \"off\"",
						       WEIR_Q(value));
			}
		} else if (!strcmp(key, WEIR_KEY_SECURITY)) {
			r = weir_guards_parse(key, value, &spec->guards, err);
		} else if (!strcmp(key, WEIR_KEY_CONNTRACK)) {
			r = parse_ct_entries(cfg, key, value, &spec->ct_entries, err);
		} else if (weir_shaping_key(key)) {
			r = weir_shaping_parse(&spec->shaping, key, value, cfg->tcp_cc_list, err);
		} else {
			r = weir_error_key(err, -EINVAL, key, "unknown annotation: expected %s",
					   known_keys);
		}
		if (r) {
			weir_spec_free(spec);
			return r;
		}
	}
	r = weir_baseline_apply(cfg, pod_namespace, spec, err);
	if (r)
		weir_spec_free(spec);
	return r;
}

int weir_spec_check(const struct weir_config *cfg, const struct weir_kv *kv, size_t n,
		    struct weir_error *err)
{
	return weir_spec_check_for(cfg, kv, n, NULL, err);
}

int weir_spec_check_for(const struct weir_config *cfg, const struct weir_kv *kv, size_t n,
			const char *pod_namespace, struct weir_error *err)
{
	struct weir_compiled comp;
	struct weir_spec spec;
	int r;

	r = weir_spec_parse_for(cfg, kv, n, pod_namespace, &spec, err);
	if (r)
		return r;
	r = weir_spec_compile(&spec, &comp, err);
	if (!r)
		weir_compiled_free(&comp);
	weir_spec_free(&spec);
	return r;
}

void weir_spec_free(struct weir_spec *spec)
{
	weir_policy_free(&spec->policy);
	weir_policy_free(&spec->base);
	weir_guards_free(&spec->guards);
	memset(spec, 0, sizeof(*spec));
}
