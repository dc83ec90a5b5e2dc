/* SPDX-License-Identifier: Apache-2.0 */
/*
 * weir-nri's lifecycle handlers: NRI events to libweir (annotations check, endpoint
 * attach/detach). Pods are remembered by id from RunPodSandbox and Synchronize, because the
 * runtime may send later events with a stripped pod.
 */
#ifndef WEIR_NRI_HANDLERS_H
#define WEIR_NRI_HANDLERS_H

#include "plugin.h"
#include "libweir.h"

/*
 * What the handlers ask of libweir; `b` is the backend's own pointer. weir-nri uses
 * weir_nri_libweir_ops (nri/backend.c) over a struct weir_ctx; unit tests use their own.
 */
struct weir_nri_ops {
	/*
	 * Parse and validate resolved annotations, without the kernel, for a pod of the
	 * Kubernetes namespace pod_namespace (the node config may trust it to loosen its baseline).
	 */
	int (*check)(void *b, const char *pod_namespace, const struct weir_kv *kv, size_t n,
		     struct weir_error *err);
	/* Does the node config give containers without weir annotations a baseline? */
	bool (*baseline)(void *b);
	/* Load (verify and pin) the node datapath unless it is loaded already, and open it. */
	int (*load)(void *b, struct weir_error *err);
	int (*attach)(void *b, const struct weir_container *c, struct weir_error *err);
	int (*detach)(void *b, const char *id, struct weir_error *err);
	/* 1 when id is an endpoint whose state is running, 0 when not, or -errno. */
	int (*running)(void *b, const char *id);
	/*
	 * fn(arg, id, complete) for every endpoint weir-nri attached (source "nri") that is not
	 * stopped: complete when its record says running, not when an interrupted weir left it
	 * attaching or detaching (such an endpoint may enforce nothing yet).
	 */
	int (*foreach_running)(void *b, void (*fn)(void *arg, const char *id, bool complete),
			       void *arg);
};

extern const struct weir_nri_ops weir_nri_libweir_ops;

struct weir_nri;

int weir_nri_new(struct weir_nri **out, const struct weir_nri_ops *ops, void *b);
void weir_nri_free(struct weir_nri *w);

/*
 * Load the node datapath now, so that no StartContainer pays for the verifier inside the
 * runtime's request timeout. weir-nri calls it at startup and again at each Configure until
 * it succeeds; a failure is logged and returned (attach still tries on its own).
 */
int weir_nri_load(struct weir_nri *w);

/* The handler table; pass the struct weir_nri as the user pointer. */
extern const struct nri_handlers weir_nri_handlers;

/*
 * OCI cgroupsPath (cgroupfs "/a/b/c" or systemd "slice:prefix:name") to a cgroup v2 directory
 * under root ("/sys/fs/cgroup"). Returns 0 or -EINVAL / -ENAMETOOLONG.
 */
int weir_nri_cgroup_dir(const char *cgroups_path, const char *root, char *out, size_t outsz);

#endif
