/* SPDX-License-Identifier: Apache-2.0 */
/*
 * weir-nri's NRI plugin connection: connect (or use a launched plugin's fd 3), RegisterPlugin,
 * serve the Plugin service (Configure, Synchronize, lifecycle events), reconnect with
 * exponential backoff and resynchronise. Events go to a table of handlers; everything is
 * driven by a poll() loop in one thread.
 */
#ifndef WEIR_NRI_PLUGIN_H
#define WEIR_NRI_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "nri_api.h"

/*
 * Lifecycle handlers. Every one is optional; a NULL handler means "not subscribed" (the event
 * mask sent in Configure is derived from the handlers that are set). `pod` and `ctr` are never
 * NULL: a field the runtime left out is passed as an empty message. Pointers are valid only
 * during the call.
 *
 * A handler returns 0, or non-zero after filling `err`: the runtime then gets status 2
 * (UNKNOWN) with err->msg, and the CRI operation fails with that text (RunPodSandbox and
 * CreateContainer: the pod or container is refused). Handlers run on the event loop and must
 * finish well within the runtime's request timeout (2 s by default).
 */
struct nri_handlers {
	/*
	 * Everything the runtime knows, once per connection (again after each reconnect). A large
	 * state comes in several chunks: `more` is non-zero for all chunks but the last.
	 */
	int (*synchronize)(void *u, Nri__PodSandbox *const *pods, size_t npods,
			   Nri__Container *const *ctrs, size_t nctrs, int more,
			   struct weir_error *err);
	int (*run_pod)(void *u, const Nri__PodSandbox *pod, struct weir_error *err);
	int (*stop_pod)(void *u, const Nri__PodSandbox *pod, struct weir_error *err);
	int (*remove_pod)(void *u, const Nri__PodSandbox *pod, struct weir_error *err);
	int (*create_container)(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
				struct weir_error *err);
	int (*start_container)(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
			       struct weir_error *err);
	int (*update_container)(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
				struct weir_error *err);
	int (*stop_container)(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
			      struct weir_error *err);
	int (*remove_container)(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
				struct weir_error *err);
	/* Optional notifications. */
	void (*configured)(void *u, const char *runtime_name, const char *runtime_version);
	void (*disconnected)(void *u);
};

#define NRI_DEFAULT_SOCKET "/var/run/nri/nri.sock"

struct nri_plugin_config {
	const char *socket_path; /* used when fd < 0; NULL: NRI_DEFAULT_SOCKET */
	int fd;		  /* >= 0: pre-connected socket (launched plugin, fd 3): no reconnect */
	const char *name; /* [A-Za-z0-9_.+-]+ */
	const char *idx;  /* two ASCII digits */
	uint32_t events;  /* 0: derived from the handlers */
	unsigned backoff_min_ms;      /* 0: 100 */
	unsigned backoff_max_ms;      /* 0: 5000 */
	unsigned register_timeout_ms; /* wait for the RegisterPlugin reply; 0: 15000 */
	unsigned
		stall_timeout_ms; /* a message left incomplete this long drops the conn; 0: 10000 */
};

struct nri_plugin;

/* Check a plugin name / index as the runtime would; 0 or -EINVAL with a message in err. */
int nri_check_name(const char *name, struct weir_error *err);
int nri_check_index(const char *idx, struct weir_error *err);

/* Event mask for a handler table (bits 0..10 only). */
uint32_t nri_handlers_events(const struct nri_handlers *h);

int nri_plugin_new(struct nri_plugin **pp, const struct nri_plugin_config *cfg,
		   const struct nri_handlers *h, void *u, struct weir_error *err);
void nri_plugin_free(struct nri_plugin *p);

/*
 * One iteration of the event loop: connect if due, wait up to timeout_ms (-1: until something
 * happens) for I/O, serve what arrived, enforce deadlines. Returns 0 to go on, 1 when finished
 * (nri_plugin_stop() was called, or the launched plugin's fd reached EOF), or -errno.
 */
int nri_plugin_step(struct nri_plugin *p, int timeout_ms);
/* Loop on nri_plugin_step() until finished. Returns 0 or -errno. */
int nri_plugin_run(struct nri_plugin *p);
/* Ask the loop to finish; async-signal-safe. */
void nri_plugin_stop(struct nri_plugin *p);

/* Introspection (logs, tests). */
enum nri_plugin_phase {
	NRI_PHASE_DISCONNECTED = 0,
	NRI_PHASE_REGISTERING, /* RegisterPlugin sent, no reply yet */
	NRI_PHASE_REGISTERED,  /* waiting for Configure / Synchronize */
	NRI_PHASE_SYNCING,     /* Configure served, Synchronize chunks arriving */
	NRI_PHASE_ACTIVE,      /* synchronized, receiving events */
	NRI_PHASE_DONE,
};
enum nri_plugin_phase nri_plugin_phase(const struct nri_plugin *p);
uint32_t nri_plugin_events(const struct nri_plugin *p);
unsigned nri_plugin_connects(const struct nri_plugin *p); /* successful connects so far */

#endif
