/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A container's interface seen from the node: the host-side end of its veth, found with
 * netlink (never ip or tc), and weir's tc program on its egress hook (the container's
 * ingress), attached with tcx where the kernel has it and as a clsact cls_bpf filter where it
 * does not. One attachment serves every endpoint behind the interface (weir_ifaces).
 */
#ifndef WEIR_IFACE_H
#define WEIR_IFACE_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "datapath.h"
#include "error.h"

enum weir_tc_mode {
	WEIR_TC_NONE = 0, /* no interface: cgroup programs only */
	WEIR_TC_TCX,	  /* a tcx link, pinned at <bpffs>/weir/ifaces/<ifindex> */
	WEIR_TC_CLSACT,	  /* a cls_bpf filter on clsact egress, weir's priority and handle */
};

extern const char *const weir_tc_mode_names[3];

/* weir's cls_bpf filter: priority 1 runs it before filters added with tc's defaults */
#define WEIR_TC_PRIO   1
#define WEIR_TC_HANDLE 0x77e1

struct weir_iface_ref {
	uint32_t ifindex;      /* host side, in weir's network namespace */
	uint32_t peer_ifindex; /* the container's end, in its network namespace */
	uint32_t netns_ino;    /* weir's network namespace */
	char name[IF_NAMESIZE];
};

/*
 * The host-side veth of the network namespace of pid: 0 and *ref when one veth of that
 * namespace has its peer in weir's own network namespace, -ENOENT when none has (host
 * network, macvlan, a peer in another namespace: rootless, a test's), -ENOTUNIQ when several
 * have, another -errno when netlink fails (err says which).
 */
int weir_iface_find(pid_t pid, struct weir_iface_ref *ref, struct weir_error *err);

/* tcx where this kernel has it (probed on the interface), else clsact. */
enum weir_tc_mode weir_iface_probe(uint32_t ifindex);

/*
 * Attach prog_fd to the interface's egress unless weir's attachment is there already (one
 * per interface, whatever number of endpoints). Never replaces another's program. *clsact_id
 * is the id of the program in weir's clsact filter: on the way in, the one weir put there
 * before (0: none known); on the way out, the one there now.
 */
int weir_iface_attach(const struct weir_paths *p, int prog_fd, const struct weir_iface_ref *ref,
		      enum weir_tc_mode mode, uint32_t *clsact_id, struct weir_error *err);
/*
 * Is weir's attachment on the interface: a live tcx link, or a filter in weir's clsact slot
 * running clsact_id or prog_fd's program? (Another's program may sit in that slot.)
 */
bool weir_iface_attached(const struct weir_paths *p, uint32_t ifindex, enum weir_tc_mode mode,
			 int prog_fd, uint32_t clsact_id);
/*
 * Remove weir's attachment from the interface: its tcx link, and the filter in weir's clsact
 * slot when it runs clsact_id (the interface must be in this thread's network namespace;
 * 0: none); nothing of anyone else's.
 */
void weir_iface_detach(const struct weir_paths *p, uint32_t ifindex, uint32_t clsact_id);
/* weir's network namespace (the inode of this thread's). */
uint32_t weir_iface_self_netns(void);

#endif
