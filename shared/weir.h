/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libweir: the public face of weir's library, used by weir-hook, weir-nri and the weir CLI.
 *
 * Error model: every function returns 0 or a negative errno. Functions that can fail for a
 * reason a user must read take a struct weir_error and fill it with one precise line; the
 * caller decides the exit status.
 */
#ifndef WEIR_H
#define WEIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

struct weir_kv {
	const char *key;
	const char *value;
};

/* What a runtime integration knows about a container when it asks for enforcement. */
struct weir_container {
	const char *id;	     /* runtime's container id, required */
	const char *name;    /* container name, may be NULL */
	const char *pod_uid; /* Kubernetes pod (NRI); NULL elsewhere */
	const char *pod_name;
	const char *pod_namespace;
	const char *source;	 /* "hook" or "nri": who attached it */
	pid_t pid;		 /* a process in the container's cgroup, or 0 */
	const char *cgroup_path; /* absolute cgroup v2 directory, or NULL: derived from pid */
	const struct weir_kv *annotations; /* effective annotations, see weir_annotations_resolve */
	size_t n_annotations;
};

struct weir_ctx;

/* Node context: config file (NULL: the default path), state and bpffs folders. */
int weir_ctx_open(struct weir_ctx **ctx, const char *config_path, struct weir_error *err);
void weir_ctx_close(struct weir_ctx *ctx);
/*
 * Take the lock file <state_dir>/<name> (returns its fd, held until closed); without `wait`,
 * -EWOULDBLOCK while someone else holds it.
 */
int weir_ctx_lock(struct weir_ctx *ctx, const char *name, bool wait, struct weir_error *err);

/*
 * NRI-style resolution: "<k>.weir.io/container.<name>" beats "<k>.weir.io/pod" beats
 * "<k>.weir.io". Pod and container annotations may both be given (either may be NULL).
 * The result holds only weir keys, in their plain "<k>.weir.io" form, and points into the
 * inputs' strings; free it with free().
 */
int weir_annotations_resolve(const struct weir_kv *pod, size_t npod, const struct weir_kv *ctr,
			     size_t nctr, const char *ctr_name, struct weir_kv **out, size_t *nout,
			     struct weir_error *err);

/* True when any key belongs to weir (so an integration can skip unrelated containers fast). */
int weir_annotations_present(const struct weir_kv *kv, size_t n);

/* Parse and validate without touching the kernel. */
int weir_annotations_check(struct weir_ctx *ctx, const struct weir_kv *kv, size_t n,
			   struct weir_error *err);

/*
 * Make sure the node datapath is loaded, register the endpoint, write its policy and attach.
 * Idempotent for a container id that is already attached. On failure nothing is left. Bad
 * annotations always fail; other failures return 0 with a warning when the node config says
 * fail_open.
 */
int weir_endpoint_attach(struct weir_ctx *ctx, const struct weir_container *c,
			 struct weir_error *err);

/* Detach, keep final counters in the endpoint's record, free the endpoint id. */
int weir_endpoint_detach(struct weir_ctx *ctx, const char *id, struct weir_error *err);

#endif
