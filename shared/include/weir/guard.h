/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Security guards: the grammar of security.weir.io (and of the node baseline's "security"),
 * the baseline's tighten-only merge, and the resolution of a guard set into what the kernel
 * programs read (struct weir_guard_cfg), given what this node's kernel offers.
 *
 *   value   := guard { ";" guard } [";"]
 *   guard   := NAME [MODE] { OPTION }
 *   MODE    := "off" | "audit" | "enforce" | "kill" (escape only)
 *
 *   raw-sockets [audit|enforce] [families F,F...]       default families raw,packet
 *   bind        [audit|enforce] [allow tcp/N,udp/N-M...] default: no fixed port may be bound
 *   sysctl      [audit|enforce] [allow NAME,PREFIX.*...] [reads]
 *   escape      [audit|kill|enforce] [calls GROUP,...]   default: every group
 *   paths       [audit|enforce] [protect /PATH,...]     with the node's protected_paths
 *   port-scan   [audit|enforce] [threshold N] [window SECONDS] [quarantine SECONDS]
 */
#ifndef WEIR_GUARD_H
#define WEIR_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "bpf/weir.h"

#define WEIR_KEY_SECURITY "security.weir.io"

#define WEIR_RAW_FAMILY_RAW  0 /* pseudo family bit: SOCK_RAW of AF_INET and AF_INET6 */
#define WEIR_SCAN_THRESHOLD  32
#define WEIR_SCAN_WINDOW_S   10
#define WEIR_QUARANTINE_S    60
#define WEIR_GUARD_QUOTE_MAX 80

struct weir_sysctl_pattern {
	char name[WEIR_SYSCTL_NAME]; /* a/b/c, as /proc/sys spells it */
	bool prefix;		     /* "a.b.*": every name under a/b/ */
};

struct weir_guards {
	uint8_t mode[WEIR_GUARDS]; /* enum weir_gmode; OFF when not named */
	bool named[WEIR_GUARDS];   /* the text names the guard (even as "off") */
	char quote[WEIR_GUARDS][WEIR_GUARD_QUOTE_MAX + 4]; /* the guard as written */
	uint64_t raw_families;	     /* AF_* bits; WEIR_RAW_FAMILY_RAW is SOCK_RAW of IPv4/IPv6 */
	struct weir_policy_val bind; /* ports that may be bound */
	size_t nsysctl;
	struct weir_sysctl_pattern *sysctl;
	bool sysctl_reads;
	uint32_t escape_calls; /* bit per enum weir_call */
	size_t npaths;
	char **paths;
	uint32_t scan_threshold, scan_window_s, quarantine_s;
};

/* Parse a guard list; `key` names it in messages ("security.weir.io", a config file's key). */
int weir_guards_parse(const char *key, const char *value, struct weir_guards *out,
		      struct weir_error *err);
void weir_guards_free(struct weir_guards *g);
bool weir_guards_any(const struct weir_guards *g);

/*
 * Merge the node baseline into a container's guards (in place). Without `may_loosen`, every
 * guard the baseline has must be named as strictly or left out (then the baseline's applies);
 * a weaker one refuses the container. `base_where` names the baseline in messages.
 */
int weir_guards_merge(struct weir_guards *g, const struct weir_guards *base, const char *base_where,
		      bool may_loosen, struct weir_error *err);

/* What this node's kernel offers the guards (from the pinned datapath). */
struct weir_guard_caps {
	bool cgroup;  /* sock_create, bind4/6 and sysctl programs loaded */
	bool tracing; /* raw_tp/sys_enter loaded */
	bool exec;    /* raw_tp/sched_process_exec loaded */
	bool entry;   /* the entry programs (a runtime's exec trusted until its exec) loaded */
	bool lsm;     /* BPF-LSM programs loaded and proven to run */
	bool lsm_per_cgroup;
	uint32_t lsm_calls; /* call groups the BPF-LSM programs refuse on every path */
	bool lsm_socket;    /* socket_create */
	bool lsm_file_open;
	const char *why_no_lsm; /* for messages */
	bool fallback_kill;	/* node config: without BPF-LSM, enforce becomes kill */
	/* escape detection per syscall (fentry on each entry function), else raw_tp/sys_enter */
	bool escape_fentry;
	unsigned int escape_entries; /* entry functions hooked */
	char why_no_fentry[160];     /* for messages, when !escape_fentry */
};

/* Node programs an endpoint needs (weir_record.guard_links). */
#define WEIR_GL_SYS_ENTER (1U << 0)
#define WEIR_GL_EXEC	  (1U << 1)
#define WEIR_GL_LSM	  (1U << 2) /* global BPF-LSM links */
#define WEIR_GL_ENTRY	  (1U << 3) /* cgroup_attach_task and sched_process_fork */
#define WEIR_GL_ALL	  (WEIR_GL_SYS_ENTER | WEIR_GL_EXEC | WEIR_GL_LSM | WEIR_GL_ENTRY)

struct weir_guard_plan {
	struct weir_guard_cfg cfg; /* gen filled in by the registry */
	uint32_t cgroup_progs;	   /* bit per enum weir_guard: its cgroup programs are linked */
	uint32_t node_links;	   /* WEIR_GL_* */
	bool lsm_per_cgroup;	   /* BPF-LSM programs are linked to the cgroup */
	bool fallback;		   /* some enforce became kill: no BPF-LSM here */
	char summary[256];	   /* for the record and `weir list` */
};

/* Decide how each guard is carried out here; refuses what the node cannot guarantee. */
int weir_guards_plan(const struct weir_guards *g, const struct weir_guard_caps *caps,
		     struct weir_guard_plan *plan, struct weir_error *err);

/* The allow-list key of a sysctl pattern (LPM: an exact name ends with its NUL). */
void weir_sysctl_key_of(const struct weir_sysctl_pattern *p, uint32_t ep,
			struct weir_sysctl_key *key);

/* Fill weir_syscalls (WEIR_SYSCALL_SLOTS entries) for this node. */
void weir_syscalls_fill(struct weir_syscall_nr *table);
/* The 32-bit ABI's part (shared/guard_ia32.c; nothing where the node has none). */
void weir_syscalls_fill_compat(struct weir_syscall_nr *table);

/* The name of a watched syscall (NULL for others), native or 32-bit ABI. */
const char *weir_syscall_name(long nr, bool compat);
const char *weir_syscall_name_compat(long nr);

/* Names, for messages, JSON and metrics. */
extern const char *const weir_guard_names[WEIR_GUARDS];
extern const char *const weir_gaction_names[WEIR_GACTIONS];
extern const char *const weir_gmode_names[WEIR_GM_ENFORCE + 1];
const char *weir_call_name(unsigned int call);
/* "packet", "netlink", ... or NULL */
const char *weir_family_name(unsigned int family);

struct weir_ctx;
/* What this node's datapath offers the guards; why: room for the reason BPF-LSM is missing. */
void weir_guard_caps_of(struct weir_ctx *ctx, struct weir_guard_caps *caps, char *why, size_t size);

#endif
