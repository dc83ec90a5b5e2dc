// SPDX-License-Identifier: Apache-2.0
/*
 * Annotations to compiled policy: resolution (/pod, /container.NAME), the parser, the compiler,
 * and the compiled rules against the brute-force reference evaluator on the edge packets of the
 * policy's own rules (tests/lib/policy_oracle.c, shared with tests/unit/test_policy.c).
 *
 * Input: key NUL value NUL key NUL value ...; an input without NUL is one egress.weir.io value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot.h"
#include "config.h"
#include "fuzz.h"
#include "log.h"
#include "policy_oracle.h"
#include "shaping.h"

#define MAX_KV 16

static struct weir_config cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	weir_config_defaults(&cfg);
	weir_log_init("fuzz_policy", WEIR_LOG_ERROR, WEIR_LOG_TEXT);
	return 0;
}

static void check(const struct weir_kv *kv, size_t n)
{
	struct weir_kv *res = NULL;
	struct weir_error err = {};
	struct weir_compiled comp;
	struct weir_spec spec;
	size_t nres = 0;
	char why[256];

	if (weir_annotations_resolve(NULL, 0, kv, n, "app", &res, &nres, &err))
		return;
	/* resolution strips /pod and /container.NAME: what is left is a plain weir key, or one of
	 * the foreign keys weir honours, whose own name holds a slash */
	for (size_t i = 0; i < nres; i++) {
		const char *k = res[i].key;

		if (!weir_is_weir_key(k))
			abort();
		if (strchr(k, '/') && strcmp(k, WEIR_KEY_EGRESS_BW) &&
		    strcmp(k, WEIR_KEY_INGRESS_BW))
			abort();
	}
	if (!weir_spec_parse(&cfg, res, nres, &spec, &err)) {
		if (!weir_policy_compile(&spec.policy, &comp, &err)) {
			if (weir_oracle_edges(&spec.policy, &comp, 24, 24, why, sizeof(why)) < 0) {
				fprintf(stderr,
					"compiled policy disagrees with the reference: %s\n", why);
				abort();
			}
			weir_compiled_free(&comp);
		}
		weir_spec_free(&spec);
	}
	free(res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct weir_kv kv[MAX_KV];
	char *owned[2 * MAX_KV];
	size_t n = 0, no = 0;

	if (!memchr(data, 0, size)) {
		owned[no++] = fuzz_bytes(&in, size, NULL);
		kv[n].key = WEIR_KEY_EGRESS;
		kv[n++].value = owned[0];
	}
	while (in.n && n < MAX_KV) {
		kv[n].key = owned[no++] = fuzz_field(&in);
		kv[n++].value = owned[no++] = fuzz_field(&in);
	}
	check(kv, n);
	for (size_t i = 0; i < no; i++)
		free(owned[i]);
	return 0;
}
