/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Endpoint records: <state_dir>/containers/<id>.json, one per container weir has attached.
 *
 * A record is untrusted input when it is read back (an operator may edit it, a disk may damage
 * it): every field is type-checked by weir_record_parse() and the rest of libweir only ever
 * sees the typed struct weir_record. A record that cannot be read is "unknown", never an
 * orphan: gc leaves it and the endpoint it names alone and reports it.
 */
#ifndef WEIR_RECORD_H
#define WEIR_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "annot.h"
#include "error.h"

/* Readers and writers share the bound, so whatever weir wrote it can read back. */
#define WEIR_MAX_RECORD_BYTES (64u << 20)

enum weir_ep_state {
	WEIR_STATE_ATTACHING = 0, /* intent written; kernel state may be partial */
	WEIR_STATE_RUNNING,	  /* every part of the endpoint is in place */
	WEIR_STATE_DETACHING,	  /* teardown begun; kernel state may be partial */
	WEIR_STATE_STOPPED,	  /* nothing in the kernel; final counters kept */
	WEIR_STATE_COUNT,
};

extern const char *const weir_state_names[WEIR_STATE_COUNT];

struct weir_record {
	struct json_object *json; /* owns every string and object below */
	const char *id;		  /* required */
	const char *name;	  /* NULL when the runtime did not say */
	const char *pod_uid;
	const char *pod_name;
	const char *pod_namespace;
	const char *source;   /* "hook", "nri" or "unknown" */
	const char *cgroup;   /* absolute cgroup v2 directory */
	const char *note;     /* why a record stopped other than by a detach, or NULL */
	const char *security; /* the guards as carried out here ("bind=enforce ..."), or NULL */
	enum weir_ep_state state;
	uint32_t endpoint; /* 1 .. WEIR_MAX_ENDPOINTS-1 */
	uint32_t gen;
	uint32_t netns_ino;   /* 0: none registered */
	uint32_t policy_keys; /* entries in <state_dir>/keys/<endpoint> */
	uint32_t guard_links; /* WEIR_GL_*: node-wide guard programs the endpoint relies on */
	uint32_t ct_entries;  /* its conntrack budget; 0 in records older than the field */
	/*
	 * The host-side veth (shared/node/iface.c), 0 for none: the endpoint is in weir_ifaces of
	 * that ifindex, in the network namespace iface_netns (weir's own).
	 */
	uint32_t iface_ifindex;
	uint32_t iface_netns;
	const char *iface_name;
	const char
		*iface_tc; /* "tcx", "clsact": how the interface program is attached, or "none" */
	uint64_t cgroup_id;
	uint64_t started_ms;
	uint64_t stopped_ms;
	bool audit;
	enum weir_monitor monitor;
	struct json_object *annotations; /* object of strings (the weir keys it was made from) */
	struct json_object *final;	 /* final counters of a stopped endpoint, or NULL */
};

struct weir_ctx;

/* -ENOENT when there is none (err untouched); any other error: the record is unreadable. */
int weir_record_read(const struct weir_ctx *ctx, const char *id, struct weir_record *rec,
		     struct weir_error *err);
/*
 * Every record, in id order. rec is NULL when the record cannot be read; why then says what is
 * wrong with it. Stops on a non-zero return of fn.
 */
typedef int (*weir_record_fn)(struct weir_ctx *ctx, const char *id, const struct weir_record *rec,
			      const struct weir_error *why, void *arg);
int weir_records_foreach(struct weir_ctx *ctx, weir_record_fn fn, void *arg);

/*
 * Check every field of a parsed record; takes a reference on `o` (released by
 * weir_record_release()). -EBADMSG with the field named in err when a field is wrong.
 */
int weir_record_parse(struct json_object *o, struct weir_record *rec, struct weir_error *err);
void weir_record_release(struct weir_record *rec);

#endif
