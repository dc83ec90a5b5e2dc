/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node datapath: programs and maps verified once per node and pinned under
 * <bpffs>/weir/{maps,progs,links}; every later container start only opens the pins and
 * attaches.
 */
#ifndef WEIR_DATAPATH_H
#define WEIR_DATAPATH_H

#include <stdbool.h>
#include <linux/bpf.h>

#include "config.h"
#include "error.h"

enum weir_prog_id {
	WEIR_PROG_EGRESS = 0,
	WEIR_PROG_INGRESS,
	WEIR_PROG_CONNECT4,
	WEIR_PROG_CONNECT6,
	WEIR_PROG_SENDMSG4,
	WEIR_PROG_SENDMSG6,
	WEIR_PROG_IFACE, /* tc/tcx on a container's host-side veth (shared/node/iface.c) */
	WEIR_PROG_SOCKOPS,
	WEIR_PROG_KFREE_SKB,
	/* security guards (bpf/guard.bpf.c) */
	WEIR_PROG_SOCK_CREATE,
	WEIR_PROG_BIND4,
	WEIR_PROG_BIND6,
	WEIR_PROG_SYSCTL,
	WEIR_PROG_SYS_ENTER,
	WEIR_PROG_EXEC,
	WEIR_PROG_ENTRY_ATTACH,
	WEIR_PROG_ENTRY_FORK,
	WEIR_PROG_LSM_SOCKET,
	WEIR_PROG_LSM_FILE_OPEN,
	WEIR_PROG_LSM_CAPABLE,
	WEIR_PROG_LSM_USERNS,
	WEIR_PROG_LSM_PTRACE,
	WEIR_PROG_LSM_PERF,
	WEIR_PROG_LSM_BPF,
	WEIR_PROG_COUNT,
};

#define WEIR_PROG_FIRST_GUARD WEIR_PROG_SOCK_CREATE
#define WEIR_PROG_FIRST_LSM   WEIR_PROG_LSM_SOCKET

enum weir_prog_scope {
	WEIR_SCOPE_ENDPOINT,   /* linked to every endpoint's cgroup */
	WEIR_SCOPE_MONITOR,    /* linked to endpoints whose monitor.weir.io is not off */
	WEIR_SCOPE_NODE,       /* attached once per node */
	WEIR_SCOPE_GUARD,      /* linked to endpoints that have one of its guards */
	WEIR_SCOPE_GUARD_NODE, /* attached once per node while an endpoint needs it */
	WEIR_SCOPE_LSM,	       /* per endpoint (lsm_cgroup) or per node, as loaded */
	WEIR_SCOPE_IFACE,      /* on the host-side veth of endpoints that have one */
};

struct weir_prog_desc {
	const char *name; /* program name in the object, also its pin name */
	enum bpf_attach_type attach;
	const char *hook; /* for humans: where it runs */
	enum weir_prog_scope scope;
	bool optional;	     /* the datapath works without it (the kernel may refuse it) */
	unsigned int guards; /* WEIR_SCOPE_GUARD: bit per enum weir_guard it serves */
	const char *target;  /* raw tracepoint or BPF-LSM hook */
};

extern const struct weir_prog_desc weir_progs[WEIR_PROG_COUNT];

enum weir_map_id {
	WEIR_MAP_CGROUPS = 0,
	WEIR_MAP_ENDPOINTS,
	WEIR_MAP_POLICY,
	WEIR_MAP_CT,
	WEIR_MAP_COUNTERS,
	WEIR_MAP_META,
	WEIR_MAP_EVENTS,
	WEIR_MAP_EVENT_STATS,
	WEIR_MAP_FLOWS,
	WEIR_MAP_DENIED,
	WEIR_MAP_TCP,
	WEIR_MAP_DROPS,
	WEIR_MAP_NETNS,
	WEIR_MAP_GUARDS,
	WEIR_MAP_GUARD_STATE,
	WEIR_MAP_GUARD_COUNTERS,
	WEIR_MAP_GUARD_EVENTS,
	WEIR_MAP_GUARD_EVSTATS,
	WEIR_MAP_GUARD_RECENT,
	WEIR_MAP_SYSCTL,
	WEIR_MAP_PROTECTED,
	WEIR_MAP_SYSCALLS,
	WEIR_MAP_SCAN_PROBES,
	WEIR_MAP_IFACES,
	WEIR_MAP_COUNT,
};

extern const char *const weir_map_names[WEIR_MAP_COUNT];

struct weir_datapath {
	int map[WEIR_MAP_COUNT];
	int prog[WEIR_PROG_COUNT]; /* -1 for an optional program this kernel refused */
	unsigned int meta_flags;   /* WEIR_META_* */
};

struct weir_paths {
	char root[PATH_MAX]; /* <bpffs>/weir */
	char maps[PATH_MAX];
	char progs[PATH_MAX];
	char links[PATH_MAX]; /* node-wide links */
	char endpoints[PATH_MAX];
	char ifaces[PATH_MAX]; /* tcx links of container interfaces, by ifindex */
	char lock[PATH_MAX];   /* <state_dir>/datapath.lock */
};

int weir_paths_init(struct weir_paths *p, const struct weir_config *cfg);
/* Mount bpffs at path unless one is there (creating the folder). */
int weir_bpffs_ensure(const char *path, struct weir_error *err);

/* Open the pinned datapath; with `load`, verify and pin it first when it is not there. */
int weir_datapath_open(struct weir_datapath *dp, const struct weir_config *cfg, bool load,
		       struct weir_error *err);
void weir_datapath_close(struct weir_datapath *dp);

/*
 * Unpin everything in a bpffs folder; with `links`, detach each link first, so a cgroup that
 * outlives its endpoint (NRI stops a container before its cgroup goes) keeps nothing.
 */
void weir_unpin_dir(const char *path, bool links);

/*
 * Remove the node datapath: programs, maps, node links and the anchor cgroup. Refused with
 * -EBUSY while any endpoint is attached.
 */
int weir_datapath_unload(const struct weir_config *cfg, struct weir_error *err);

/*
 * Node-wide links of guard programs (raw tracepoints, global BPF-LSM hooks), made when the
 * first endpoint needs them and pinned under <bpffs>/weir/links. Callers hold the registry
 * lock. ensure is a no-op when the link is pinned already.
 */
int weir_node_link_ensure(const struct weir_paths *p, const struct weir_datapath *dp,
			  enum weir_prog_id id, struct weir_error *err);
bool weir_node_link_pinned(const struct weir_paths *p, enum weir_prog_id id);
void weir_node_link_remove(const struct weir_paths *p, enum weir_prog_id id);

/*
 * Escape detection per syscall (fentry on each watched syscall's entry function): its pinned
 * programs stand for WEIR_PROG_SYS_ENTER's node link where the datapath loaded them
 * (WEIR_META_ESCAPE_FENTRY). The probe says whether this kernel loads and attaches fentry
 * programs there: 0, or -errno with the reason in why.
 */
int weir_escape_fentry_probe(char *why, size_t size);
unsigned int weir_escape_fentry_pinned(const struct weir_paths *p);

/* The attach type that links program i to a cgroup here, or -1 when it is no cgroup program. */
int weir_prog_cgroup_attach(const struct weir_datapath *dp, int i);

#endif
