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
	/*
	 * The workload already runs (an NRI Synchronize after a restart): its guards apply at
	 * once instead of at its exec.
	 */
	bool started;
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

/*
 * Runtimes hand annotations over as JSON or protobuf strings, which may hold NUL bytes that a C
 * string silently cuts ("allow any\0; deny 10.0.0.0/8" would read as "allow any"). Call this
 * with each annotation's whole length (key[klen] and value[vlen] are NUL) before reading it as
 * a C string: 0 when the annotation is not weir's or reads whole; otherwise -EINVAL with the
 * message.
 */
int weir_annotation_check_raw(const char *key, size_t klen, const char *value, size_t vlen,
			      struct weir_error *err);

/*
 * JSON readers cut object keys at an escaped NUL without a trace: {"egress.weir.io\u0000": ...}
 * reads as egress.weir.io. Check a JSON document's text (valid JSON, len bytes) for such keys
 * before trusting its parsed keys: 0, or -EINVAL with a message that names `what`.
 */
int weir_json_check_keys(const char *text, size_t len, const char *what, struct weir_error *err);

/* True when any key belongs to weir (so an integration can skip unrelated containers fast). */
int weir_annotations_present(const struct weir_kv *kv, size_t n);

/* Parse and validate without touching the kernel. */
int weir_annotations_check(struct weir_ctx *ctx, const struct weir_kv *kv, size_t n,
			   struct weir_error *err);
/* The same for a pod of a Kubernetes namespace (NULL: none): the node config may trust it. */
int weir_annotations_check_ns(struct weir_ctx *ctx, const char *pod_namespace,
			      const struct weir_kv *kv, size_t n, struct weir_error *err);
/*
 * Does the node config give every container a baseline (guards or rules)? Then a container
 * without weir annotations is an endpoint too.
 */
bool weir_baseline_present(struct weir_ctx *ctx);

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

/*
 * Are the weir_ct slot and the pin of a running endpoint's conntrack map in place (true too
 * when no datapath is pinned)? A cheap look without the lock, for choosing whom to attach
 * again or gc: both put the map back (with its flows when it survives).
 */
struct weir_record;
bool weir_endpoint_ct_intact(struct weir_ctx *ctx, const struct weir_record *rec);

/*
 * The node config the context was opened with (read-only).
 */
const struct weir_config *weir_ctx_config(const struct weir_ctx *ctx);

/*
 * Load, verify and pin the node datapath unless it is pinned already (an attach does this
 * itself; weir-nri does it at startup so that no container start waits for the verifier).
 */
int weir_datapath_ensure(struct weir_ctx *ctx, struct weir_error *err);

/*
 * Remove the node datapath (programs, maps, node links, the anchor cgroup). Refused with -EBUSY
 * while any endpoint is attached; no attach can start meanwhile.
 */
int weir_node_unload(struct weir_ctx *ctx, struct weir_error *err);

/* What `weir status` shows of the datapath. */
struct weir_prog_status {
	const char *name; /* the program, also its pin name */
	const char *hook; /* where it runs, for humans */
	bool pinned;	  /* loaded and pinned (false: this kernel refused an optional one) */
};

struct weir_datapath_status {
	bool loaded;
	char reason[WEIR_ERROR_MAX]; /* why not, when not loaded */
	const char *pin_root;	     /* <bpffs>/weir */
	size_t nprogs;
	struct weir_prog_status progs[16];
};

void weir_datapath_status(struct weir_ctx *ctx, struct weir_datapath_status *out);

/* Garbage collection: endpoints whose cgroup is gone, expired records, orphans. */
struct weir_gc_report {
	unsigned int detached;	    /* running endpoints whose cgroup is gone */
	unsigned int repaired;	    /* attaches or detaches a dead process left half done, and
				       conntrack maps whose weir_ct slot or pin was put back */
	unsigned int expired;	    /* stopped records past the retention */
	unsigned int orphans;	    /* ids, keys, link folders and temporary files nobody claims */
	unsigned int stale_entries; /* map entries of ids nobody holds */
	unsigned int unknown;	    /* unreadable records, left alone */
};
int weir_gc(struct weir_ctx *ctx, struct weir_gc_report *rep, struct weir_error *err);

/* This build's version; --version prints it with the BPF build id and the datapath ABI. */
const char *weir_version(void);
void weir_version_print(const char *prog);

#endif
