/* SPDX-License-Identifier: Apache-2.0 */
/*
 * weir-hook's inputs, parsed without the kernel (so that they can be fuzzed): the OCI state on
 * standard input and the bundle's config.json.
 *
 * Which annotations count: runc, crun and podman hand a hook both the state's "annotations"
 * (what the runtime read from config.json when it created the container, and runs) and the
 * bundle, whose config.json could have been changed since. The state is the authority. When it
 * carries annotations, config.json's weir annotations must be the same keys with the same
 * values, or the container is refused: a runtime and a bundle that disagree about the policy
 * leave no reading that is safe to enforce. A state without "annotations" (older runtimes)
 * leaves config.json as the only source.
 */
#ifndef WEIR_HOOK_OCI_H
#define WEIR_HOOK_OCI_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "libweir.h"

/* The state repeats config.json's annotations (runc hands the hook both): one bound for both */
#define WEIR_OCI_MAX_STATE_BYTES  (16 << 20)
#define WEIR_OCI_MAX_CONFIG_BYTES (16 << 20)

struct weir_oci {
	struct json_object *state;  /* owned */
	struct json_object *config; /* owned; NULL until weir_oci_config() */
	const char *id;
	const char *status; /* NULL when absent */
	pid_t pid;	    /* weir_oci_attach_fields() */
	char config_path[PATH_MAX];
	struct weir_kv *annotations; /* the authority's, every key */
	size_t n_annotations;
	struct weir_kv *resolved; /* weir keys only, see weir_annotations_resolve() */
	size_t n_resolved;
	struct weir_container c; /* ready for weir_endpoint_attach() after weir_oci_config() */
};

/* The state's text (len bytes, NUL-terminated): a JSON object with an "id" string. */
int weir_oci_state(struct weir_oci *o, const char *text, size_t len, struct weir_error *err);
/* For attach: "pid" and "bundle"; sets config_path. */
int weir_oci_attach_fields(struct weir_oci *o, struct weir_error *err);
/*
 * config.json's text: annotations from the authority, the cross-check, and c. Leaves
 * c.n_annotations 0 when no weir annotation is present.
 */
int weir_oci_config(struct weir_oci *o, const char *text, size_t len, struct weir_error *err);
void weir_oci_free(struct weir_oci *o);

#endif
