// SPDX-License-Identifier: Apache-2.0
/*
 * The host-side veth of a container and weir's tc program on it (see iface.h).
 *
 * Finding it needs no setns (which weir's capabilities no longer allow): from weir's own
 * network namespace, RTM_GETLINK with IFLA_TARGET_NETNSID lists the container's links (the
 * container's namespace gets an nsid in ours, as a CNI's veth gives it anyway). A veth there
 * names its peer by IFLA_LINK (an ifindex) and IFLA_LINK_NETNSID (the namespace the peer
 * lives in). The peer is ours when the link of that ifindex here is a veth whose own peer is
 * that very container link, in the container's namespace.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "iface.h"
#include "log.h"
#include "util.h"

const char *const weir_tc_mode_names[3] = {
	[WEIR_TC_NONE] = "none",
	[WEIR_TC_TCX] = "tcx",
	[WEIR_TC_CLSACT] = "clsact",
};

#define NL_BUF 32768

struct nl {
	int fd;
	uint32_t seq;
	char buf[NL_BUF] __attribute__((aligned(NLMSG_ALIGNTO)));
};

struct nl_req {
	struct nlmsghdr h;
	union {
		struct ifinfomsg ifi;
		struct rtgenmsg gen;
	};
	char attrs[64] __attribute__((aligned(NLMSG_ALIGNTO)));
};

static void nl_attr_s32(struct nl_req *req, unsigned short type, int32_t v)
{
	struct rtattr *a = (struct rtattr *)((char *)req + NLMSG_ALIGN(req->h.nlmsg_len));

	a->rta_type = type;
	a->rta_len = RTA_LENGTH(sizeof(v));
	memcpy(RTA_DATA(a), &v, sizeof(v));
	req->h.nlmsg_len = NLMSG_ALIGN(req->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

static int nl_open(struct nl *nl)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	int one = 1;

	nl->seq = 1;
	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (nl->fd < 0)
		return -errno;
	/* strict checking, so the kernel honours IFLA_TARGET_NETNSID on a dump (extended acks) */
	setsockopt(nl->fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof(one));
	if (bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int r = -errno;

		close(nl->fd);
		return r;
	}
	return 0;
}

typedef int (*nl_msg_fn)(struct nlmsghdr *h, void *arg);

/* Send req, hand every answer to fn; 0, fn's non-zero return, or -errno from the kernel. */
static int nl_talk(struct nl *nl, struct nl_req *req, nl_msg_fn fn, void *arg)
{
	bool dump = req->h.nlmsg_flags & NLM_F_DUMP;
	int ret = 0;

	req->h.nlmsg_seq = ++nl->seq;
	req->h.nlmsg_flags |= NLM_F_REQUEST | (dump ? 0 : NLM_F_ACK);
	if (send(nl->fd, req, req->h.nlmsg_len, 0) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(nl->fd, nl->buf, sizeof(nl->buf), 0);
		struct nlmsghdr *h;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (h = (struct nlmsghdr *)nl->buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != nl->seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				return ret;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
					return -EBADMSG;
				/* an ack ends a plain request; an error ends anything */
				return e->error ? e->error : ret;
			}
			if (!ret && fn)
				ret = fn(h, arg);
		}
	}
}

/* ---- the nsid of a container's network namespace ------------------------------------ */

static int nsid_parse(struct nlmsghdr *h, void *arg)
{
	struct rtgenmsg *g = NLMSG_DATA(h);
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(NLMSG_ALIGN(sizeof(*g)));
	struct rtattr *a = (struct rtattr *)((char *)g + NLMSG_ALIGN(sizeof(*g)));

	if (h->nlmsg_type != RTM_NEWNSID)
		return 0;
	for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == NETNSA_NSID && RTA_PAYLOAD(a) >= sizeof(int32_t))
			memcpy(arg, RTA_DATA(a), sizeof(int32_t));
	return 0;
}

static int nsid_req(struct nl *nl, int type, int fd, int32_t *nsid)
{
	struct nl_req req = {
		.h = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtgenmsg)), .nlmsg_type = type},
		.gen = {.rtgen_family = AF_UNSPEC},
	};

	nl_attr_s32(&req, NETNSA_FD, fd);
	if (type == RTM_NEWNSID)
		nl_attr_s32(&req, NETNSA_NSID, -1); /* any free id */
	return nl_talk(nl, &req, type == RTM_GETNSID ? nsid_parse : NULL, nsid);
}

/* The container's namespace's id here, assigned when it has none. */
static int nsid_of(struct nl *nl, int nsfd, int32_t *nsid)
{
	int r;

	*nsid = -1;
	r = nsid_req(nl, RTM_GETNSID, nsfd, nsid);
	if (r || *nsid >= 0)
		return r;
	r = nsid_req(nl, RTM_NEWNSID, nsfd, NULL);
	if (r && r != -EEXIST)
		return r;
	return nsid_req(nl, RTM_GETNSID, nsfd, nsid);
}

/* ---- links -------------------------------------------------------------------------- */

struct link {
	uint32_t ifindex;
	uint32_t peer; /* IFLA_LINK */
	int32_t peer_nsid;
	bool have_peer_nsid;
	bool veth;
	char name[IF_NAMESIZE];
};

#define WEIR_NL_MAX_LINKS 64

struct links {
	struct link l[WEIR_NL_MAX_LINKS];
	size_t n;
};

static void link_parse_info(struct rtattr *info, struct link *l)
{
	int len = (int)RTA_PAYLOAD(info);
	struct rtattr *a;

	for (a = RTA_DATA(info); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == IFLA_INFO_KIND && RTA_PAYLOAD(a) >= 4 &&
		    !strncmp(RTA_DATA(a), "veth", RTA_PAYLOAD(a)))
			l->veth = true;
}

static int link_parse(struct nlmsghdr *h, void *arg)
{
	struct links *ls = arg;
	struct ifinfomsg *ifi = NLMSG_DATA(h);
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*ifi));
	struct rtattr *a = IFLA_RTA(ifi);
	struct link l = {.ifindex = (uint32_t)ifi->ifi_index};

	if (h->nlmsg_type != RTM_NEWLINK || len < 0)
		return 0;
	for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		switch (a->rta_type) {
		case IFLA_IFNAME:
			snprintf(l.name, sizeof(l.name), "%.*s", (int)RTA_PAYLOAD(a),
				 (char *)RTA_DATA(a));
			break;
		case IFLA_LINK:
			if (RTA_PAYLOAD(a) >= 4)
				memcpy(&l.peer, RTA_DATA(a), 4);
			break;
		case IFLA_LINK_NETNSID:
			if (RTA_PAYLOAD(a) >= 4) {
				memcpy(&l.peer_nsid, RTA_DATA(a), 4);
				l.have_peer_nsid = true;
			}
			break;
		case IFLA_LINKINFO:
			link_parse_info(a, &l);
			break;
		}
	}
	if (ls->n < WEIR_NL_MAX_LINKS)
		ls->l[ls->n++] = l;
	return 0;
}

/* target_nsid < 0: links of our own namespace; ifindex 0: all of them. */
static int links_get(struct nl *nl, int32_t target_nsid, uint32_t ifindex, struct links *out)
{
	struct nl_req req = {
		.h = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)),
		      .nlmsg_type = RTM_GETLINK,
		      .nlmsg_flags = ifindex ? 0 : NLM_F_DUMP},
		.ifi = {.ifi_family = AF_UNSPEC, .ifi_index = (int)ifindex},
	};

	out->n = 0;
	if (target_nsid >= 0)
		nl_attr_s32(&req, IFLA_TARGET_NETNSID, target_nsid);
	return nl_talk(nl, &req, link_parse, out);
}

uint32_t weir_iface_self_netns(void)
{
	struct stat st;

	return stat("/proc/thread-self/ns/net", &st) ? 0 : (uint32_t)st.st_ino;
}

int weir_iface_find(pid_t pid, struct weir_iface_ref *ref, struct weir_error *err)
{
	_cleanup_free_ struct links *ctr = calloc(2, sizeof(*ctr));
	_cleanup_free_ struct nl *nl = malloc(sizeof(*nl));
	_cleanup_close_ int nsfd = -1;
	struct links *host = ctr + 1;
	int32_t nsid;
	char path[64];
	struct stat st;
	int r, found = 0;

	memset(ref, 0, sizeof(*ref));
	if (!ctr || !nl)
		return weir_error_set(err, -ENOMEM, "out of memory");
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || fstat(nsfd, &st))
		return weir_error_set(err, -errno, "cannot open %s: %s", path, strerror(errno));
	if ((uint32_t)st.st_ino == weir_iface_self_netns())
		return -ENOENT; /* host network: no interface of its own */
	r = nl_open(nl);
	if (r)
		return weir_error_set(err, r, "cannot open a netlink socket: %s", strerror(-r));
	r = nsid_of(nl, nsfd, &nsid);
	if (!r && nsid < 0)
		r = -ENOENT;
	if (r) {
		weir_error_set(err, r, "cannot get an nsid for the network namespace of pid %d: %s",
			       (int)pid, strerror(-r));
		goto out;
	}
	r = links_get(nl, nsid, 0, ctr);
	if (r) {
		weir_error_set(err, r,
			       "cannot list the links of the network namespace of pid %d: %s",
			       (int)pid, strerror(-r));
		goto out;
	}
	for (size_t i = 0; i < ctr->n; i++) {
		const struct link *c = &ctr->l[i];

		if (!c->veth || !c->peer || !c->have_peer_nsid)
			continue;
		/* the peer's ifindex here: a veth pointing back at c, in c's namespace */
		r = links_get(nl, -1, c->peer, host);
		if (r == -ENODEV || r == -ENOENT) {
			r = 0;
			continue;
		}
		if (r) {
			weir_error_set(err, r, "cannot read link %u: %s", c->peer, strerror(-r));
			goto out;
		}
		if (host->n != 1 || !host->l[0].veth || host->l[0].peer != c->ifindex ||
		    !host->l[0].have_peer_nsid || host->l[0].peer_nsid != nsid)
			continue;
		if (found++) {
			r = weir_error_set(err, -ENOTUNIQ,
					   "the network namespace of pid %d has several veths into "
					   "the node's (%s, %s)",
					   (int)pid, ref->name, host->l[0].name);
			goto out;
		}
		ref->ifindex = host->l[0].ifindex;
		ref->peer_ifindex = c->ifindex;
		ref->netns_ino = weir_iface_self_netns();
		snprintf(ref->name, sizeof(ref->name), "%s", host->l[0].name);
	}
	r = found ? 0 : -ENOENT;
out:
	close(nl->fd);
	return r;
}

/* ---- attaching ---------------------------------------------------------------------- */

static void pin_path(const struct weir_paths *p, uint32_t ifindex, char *out, size_t size)
{
	snprintf(out, size, "%s/%u", p->ifaces, ifindex);
}

enum weir_tc_mode weir_iface_probe(uint32_t ifindex)
{
	LIBBPF_OPTS(bpf_prog_query_opts, q);

	/* a kernel without tcx does not know the attach type: EINVAL */
	if (!bpf_prog_query_opts((int)ifindex, BPF_TCX_EGRESS, &q))
		return WEIR_TC_TCX;
	return WEIR_TC_CLSACT;
}

/* Is the link pinned at path alive on ifindex? (A deleted device leaves it defunct.) */
static bool tcx_alive(const char *path, uint32_t ifindex)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path);
	bool ok;

	if (fd < 0)
		return false;
	ok = !bpf_link_get_info_by_fd(fd, &info, &len) && info.type == BPF_LINK_TYPE_TCX &&
	     info.tcx.ifindex == ifindex && info.tcx.attach_type == BPF_TCX_EGRESS;
	close(fd);
	return ok;
}

/* The id of the program in weir's clsact filter slot (whoever's it is), else 0. */
static uint32_t clsact_slot(uint32_t ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = WEIR_TC_HANDLE, .priority = WEIR_TC_PRIO);

	if (bpf_tc_query(&hook, &o))
		return 0;
	return o.prog_id;
}

static uint32_t prog_id_of(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (fd < 0 || bpf_prog_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

/*
 * Whose program sits in weir's slot is told by its id: the one weir put there (kept in
 * weir_ifaces) or this build's. Reading another program's name would need CAP_SYS_ADMIN
 * (BPF_PROG_GET_FD_BY_ID), which weir has dropped.
 */
static bool clsact_ours(uint32_t slot, int prog_fd, uint32_t clsact_id)
{
	return slot && (slot == clsact_id || slot == prog_id_of(prog_fd));
}

bool weir_iface_attached(const struct weir_paths *p, uint32_t ifindex, enum weir_tc_mode mode,
			 int prog_fd, uint32_t clsact_id)
{
	char path[PATH_MAX];

	if (mode == WEIR_TC_TCX) {
		pin_path(p, ifindex, path, sizeof(path));
		return tcx_alive(path, ifindex);
	}
	return mode == WEIR_TC_CLSACT && clsact_ours(clsact_slot(ifindex), prog_fd, clsact_id);
}

static int attach_tcx(const struct weir_paths *p, int prog_fd, const struct weir_iface_ref *ref,
		      struct weir_error *err)
{
	/* first among the interface's tcx programs: a CNI's that ends the chain cannot skip it */
	LIBBPF_OPTS(bpf_link_create_opts, o, .flags = BPF_F_BEFORE);
	char path[PATH_MAX];
	int link, r;

	pin_path(p, ref->ifindex, path, sizeof(path));
	unlink(path); /* a defunct link of a device that had this ifindex before */
	link = bpf_link_create(prog_fd, (int)ref->ifindex, BPF_TCX_EGRESS, &o);
	if (link < 0)
		return weir_error_set(err, -errno, "cannot attach %s to %s (tcx egress): %s",
				      weir_progs[WEIR_PROG_IFACE].name, ref->name, strerror(errno));
	if (bpf_obj_pin(link, path)) {
		r = -errno;
		bpf_link_detach(link);
		close(link);
		return weir_error_set(err, r, "cannot pin %s: %s", path, strerror(-r));
	}
	close(link);
	return 0;
}

static int attach_clsact(int prog_fd, const struct weir_iface_ref *ref, uint32_t *clsact_id,
			 struct weir_error *err)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)ref->ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = WEIR_TC_HANDLE, .priority = WEIR_TC_PRIO,
		    .prog_fd = prog_fd);
	int r;

	/* the clsact qdisc may be a CNI's already; weir never removes it */
	r = bpf_tc_hook_create(&hook);
	if (r && r != -EEXIST)
		return weir_error_set(err, r, "cannot add a clsact qdisc to %s: %s", ref->name,
				      strerror(-r));
	/* without BPF_TC_F_REPLACE: a filter of someone else's in weir's slot stays, and we fail */
	r = bpf_tc_attach(&hook, &o);
	if (r)
		return weir_error_set(err, r,
				      "cannot add weir's filter (egress, priority %u, handle 0x%x) "
				      "to %s: %s",
				      WEIR_TC_PRIO, WEIR_TC_HANDLE, ref->name, strerror(-r));
	*clsact_id = o.prog_id;
	return 0;
}

int weir_iface_attach(const struct weir_paths *p, int prog_fd, const struct weir_iface_ref *ref,
		      enum weir_tc_mode mode, uint32_t *clsact_id, struct weir_error *err)
{
	if (mode == WEIR_TC_CLSACT) {
		uint32_t slot = clsact_slot(ref->ifindex);

		if (clsact_ours(slot, prog_fd, *clsact_id)) {
			*clsact_id = slot;
			return 0;
		}
		return attach_clsact(prog_fd, ref, clsact_id, err);
	}
	if (mode != WEIR_TC_TCX)
		return weir_error_set(err, -EINVAL, "no attach mode for %s", ref->name);
	if (weir_iface_attached(p, ref->ifindex, mode, prog_fd, 0))
		return 0;
	return attach_tcx(p, prog_fd, ref, err);
}

void weir_iface_detach(const struct weir_paths *p, uint32_t ifindex, uint32_t clsact_id)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = WEIR_TC_HANDLE, .priority = WEIR_TC_PRIO);
	char path[PATH_MAX];
	int fd;

	pin_path(p, ifindex, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		bpf_link_detach(fd);
		close(fd);
	}
	unlink(path);
	if (clsact_id && clsact_slot(ifindex) == clsact_id)
		bpf_tc_detach(&hook, &o);
}
