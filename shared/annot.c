// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot.h"
#include "util.h"

#define DOMAIN ".weir.io"

static const char known_keys[] =
	WEIR_KEY_EGRESS ", " WEIR_KEY_INGRESS ", " WEIR_KEY_POLICY_MODE " or " WEIR_KEY_MONITOR;

const char *const weir_monitor_names[] = {
	[WEIR_MON_COUNTERS] = "counters",
	[WEIR_MON_FLOWS] = "flows",
	[WEIR_MON_OFF] = "off",
};

/* Length of the "<name>.weir.io" part of a key, or 0 when it is not a weir key. */
static size_t weir_base_len(const char *key)
{
	const char *slash = strchr(key, '/');
	size_t n = slash ? (size_t)(slash - key) : strlen(key);
	size_t d = strlen(DOMAIN);

	if (n == d - 1 && !strncmp(key, DOMAIN + 1, n))
		return n; /* bare "weir.io" */
	if (n > d && !strncmp(key + n - d, DOMAIN, d))
		return n;
	return 0;
}

bool weir_is_weir_key(const char *key)
{
	return key && weir_base_len(key) > 0;
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
		return weir_error_set(err, -EINVAL,
				      "annotation \"%s\": unknown suffix \"/%s\": expected "
				      "\"/pod\" or \"/container.NAME\"",
				      kv->key, suffix ? suffix : "");
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

int weir_spec_parse(const struct weir_config *cfg, const struct weir_kv *kv, size_t n,
		    struct weir_spec *spec, struct weir_error *err)
{
	int r;

	memset(spec, 0, sizeof(*spec));
	spec->audit = cfg->default_audit;
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
			r = weir_check_text(key, value, 64, err);
			if (!r && !strcmp(value, "enforce"))
				spec->audit = false;
			else if (!r && !strcmp(value, "audit"))
				spec->audit = true;
			else if (!r)
				r = weir_error_set(
					err, -EINVAL,
					"%s: unknown mode \"%s\": expected \"enforce\" or "
					"\"audit\"",
					key, value);
		} else if (!strcmp(key, WEIR_KEY_MONITOR)) {
			r = weir_check_text(key, value, 64, err);
			if (!r) {
				r = -EINVAL;
				for (int m = WEIR_MON_COUNTERS; m <= WEIR_MON_OFF; m++) {
					if (!strcmp(value, weir_monitor_names[m])) {
						spec->monitor = (enum weir_monitor)m;
						r = 0;
					}
				}
				if (r)
					weir_error_set(err, r,
						       "%s: unknown value \"%s\": expected "
						       "\"counters\", \"flows\" or \"off\"",
						       key, value);
			}
		} else {
			r = weir_error_set(err, -EINVAL, "unknown annotation \"%s\": expected %s",
					   key, known_keys);
		}
		if (r) {
			weir_spec_free(spec);
			return r;
		}
	}
	return 0;
}

void weir_spec_free(struct weir_spec *spec)
{
	weir_policy_free(&spec->policy);
	memset(spec, 0, sizeof(*spec));
}
