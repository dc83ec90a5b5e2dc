// SPDX-License-Identifier: Apache-2.0
/*
 * weir-hook's inputs (hooks/oci.c): the OCI state and the bundle's config.json, then the
 * annotations they yield through the parser and compiler, as the hook takes them before it
 * attaches. Every refusal says why; what is accepted holds only weir keys, and a state with
 * annotations never lets config.json's weir annotations differ from its own.
 *
 * Input: a 16-bit little-endian length L, L bytes of state, then config.json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot.h"
#include "config.h"
#include "fuzz.h"
#include "log.h"
#include "oci.h"

static struct weir_config cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	weir_config_defaults(&cfg);
	weir_log_init("fuzz_oci", WEIR_LOG_ERROR, WEIR_LOG_TEXT);
	return 0;
}

static void compile(const struct weir_container *c)
{
	struct weir_error err = {};
	struct weir_compiled comp;
	struct weir_spec spec;

	for (size_t i = 0; i < c->n_annotations; i++)
		if (!weir_is_weir_key(c->annotations[i].key))
			abort();
	if (weir_spec_parse(&cfg, c->annotations, c->n_annotations, &spec, &err))
		return;
	if (!weir_policy_compile(&spec.policy, &comp, &err))
		weir_compiled_free(&comp);
	weir_spec_free(&spec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct weir_error err = {};
	struct weir_oci oci;
	size_t slen, clen;
	char *state = fuzz_bytes(&in, fuzz_u16(&in), &slen);
	char *config = fuzz_bytes(&in, in.n, &clen);
	int r;

	r = weir_oci_state(&oci, state, slen, &err);
	if (!r)
		r = weir_oci_attach_fields(&oci, &err);
	if (!r)
		r = weir_oci_config(&oci, config, clen, &err);
	if (r && (!err.msg[0] || !err.code))
		abort(); /* every refusal says why */
	if (!r) {
		if (oci.pid <= 0 || oci.config_path[0] != '/')
			abort();
		compile(&oci.c);
	}
	weir_oci_free(&oci);
	free(state);
	free(config);
	return 0;
}
