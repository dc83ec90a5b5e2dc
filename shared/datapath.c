// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup.h"
#include "datapath.h"
#include "log.h"
#include "util.h"
#include "bpf_build_id.h"
#include "monitor.skel.h"
#include "weir.skel.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

const struct weir_prog_desc weir_progs[WEIR_PROG_COUNT] = {
	[WEIR_PROG_EGRESS] = {"weir_egress", BPF_CGROUP_INET_EGRESS, "cgroup_skb/egress",
			      WEIR_SCOPE_ENDPOINT, false},
	[WEIR_PROG_INGRESS] = {"weir_ingress", BPF_CGROUP_INET_INGRESS, "cgroup_skb/ingress",
			       WEIR_SCOPE_ENDPOINT, false},
	[WEIR_PROG_CONNECT4] = {"weir_connect4", BPF_CGROUP_INET4_CONNECT, "cgroup/connect4",
				WEIR_SCOPE_ENDPOINT, false},
	[WEIR_PROG_CONNECT6] = {"weir_connect6", BPF_CGROUP_INET6_CONNECT, "cgroup/connect6",
				WEIR_SCOPE_ENDPOINT, false},
	[WEIR_PROG_SENDMSG4] = {"weir_sendmsg4", BPF_CGROUP_UDP4_SENDMSG, "cgroup/sendmsg4",
				WEIR_SCOPE_ENDPOINT, false},
	[WEIR_PROG_SENDMSG6] = {"weir_sendmsg6", BPF_CGROUP_UDP6_SENDMSG, "cgroup/sendmsg6",
				WEIR_SCOPE_ENDPOINT, false},
	[WEIR_PROG_SOCKOPS] = {"weir_sockops", BPF_CGROUP_SOCK_OPS, "sockops", WEIR_SCOPE_MONITOR,
			       true},
	[WEIR_PROG_KFREE_SKB] = {"weir_kfree_skb", BPF_TRACE_RAW_TP, "tp_btf/kfree_skb",
				 WEIR_SCOPE_NODE, true},
};

const char *const weir_map_names[WEIR_MAP_COUNT] = {
	[WEIR_MAP_CGROUPS] = "weir_cgroups",   [WEIR_MAP_ENDPOINTS] = "weir_endpoints",
	[WEIR_MAP_POLICY] = "weir_policy",     [WEIR_MAP_CT] = "weir_ct",
	[WEIR_MAP_COUNTERS] = "weir_counters", [WEIR_MAP_META] = "weir_meta",
	[WEIR_MAP_EVENTS] = "weir_events",     [WEIR_MAP_EVENT_STATS] = "weir_event_stats",
	[WEIR_MAP_FLOWS] = "weir_flows",       [WEIR_MAP_DENIED] = "weir_denied",
	[WEIR_MAP_TCP] = "weir_tcp",	       [WEIR_MAP_DROPS] = "weir_drops",
	[WEIR_MAP_NETNS] = "weir_netns",
};

int weir_paths_init(struct weir_paths *p, const struct weir_config *cfg)
{
	if (snprintf(p->root, sizeof(p->root), "%s/weir", cfg->bpffs) >= (int)sizeof(p->root) ||
	    snprintf(p->maps, sizeof(p->maps), "%s/maps", p->root) >= (int)sizeof(p->maps) ||
	    snprintf(p->progs, sizeof(p->progs), "%s/progs", p->root) >= (int)sizeof(p->progs) ||
	    snprintf(p->links, sizeof(p->links), "%s/links", p->root) >= (int)sizeof(p->links) ||
	    snprintf(p->endpoints, sizeof(p->endpoints), "%s/endpoints", p->root) >=
		    (int)sizeof(p->endpoints) ||
	    snprintf(p->lock, sizeof(p->lock), "%s/datapath.lock", cfg->state_dir) >=
		    (int)sizeof(p->lock))
		return -ENAMETOOLONG;
	return 0;
}

static void dp_reset(struct weir_datapath *dp)
{
	for (int i = 0; i < WEIR_MAP_COUNT; i++)
		dp->map[i] = -1;
	for (int i = 0; i < WEIR_PROG_COUNT; i++)
		dp->prog[i] = -1;
	dp->meta_flags = 0;
}

void weir_datapath_close(struct weir_datapath *dp)
{
	for (int i = 0; i < WEIR_MAP_COUNT; i++)
		if (dp->map[i] >= 0)
			close(dp->map[i]);
	for (int i = 0; i < WEIR_PROG_COUNT; i++)
		if (dp->prog[i] >= 0)
			close(dp->prog[i]);
	dp_reset(dp);
}

int weir_datapath_lock(const struct weir_paths *p, struct weir_error *err)
{
	return weir_lock_file(p->lock, true, err);
}

/* A fresh node has no bpffs mounted; the pins need one. */
static int ensure_bpffs(const char *path, struct weir_error *err)
{
	struct statfs st;
	int r;

	if (!statfs(path, &st) && st.f_type == BPF_FS_MAGIC)
		return 0;
	r = weir_mkdir_p(path, 0700);
	if (r)
		return weir_error_set(err, r, "cannot create %s: %s", path, strerror(-r));
	if (mount("bpf", path, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700"))
		return weir_error_set(err, -errno, "cannot mount bpffs at %s: %s", path,
				      strerror(errno));
	pr_info("mounted bpffs at %s", path);
	return 0;
}

static int open_pins(struct weir_datapath *dp, const struct weir_paths *p, bool progs)
{
	char path[PATH_MAX];

	for (int i = 0; i < WEIR_MAP_COUNT; i++) {
		snprintf(path, sizeof(path), "%s/%s", p->maps, weir_map_names[i]);
		dp->map[i] = bpf_obj_get(path);
		if (dp->map[i] < 0)
			return -errno;
	}
	if (!progs)
		return 0;
	for (int i = 0; i < WEIR_PROG_COUNT; i++) {
		snprintf(path, sizeof(path), "%s/%s", p->progs, weir_progs[i].name);
		dp->prog[i] = bpf_obj_get(path);
		if (dp->prog[i] < 0 && !(weir_progs[i].optional && errno == ENOENT))
			return -errno;
	}
	return 0;
}

/*
 * Detach a pinned link before unpinning it: the pin may not be its last reference (a cgroup
 * that outlives its endpoint keeps the link attached otherwise).
 */
static void unpin_link(const char *path)
{
	int fd = bpf_obj_get(path);

	if (fd >= 0) {
		bpf_link_detach(fd);
		close(fd);
	}
	unlink(path);
}

static int check_abi(struct weir_datapath *dp, const struct weir_paths *p, bool *stale,
		     struct weir_error *err)
{
	struct weir_meta meta = {};
	__u32 zero = 0;

	if (bpf_map_lookup_elem(dp->map[WEIR_MAP_META], &zero, &meta))
		return weir_error_set(err, -errno, "cannot read %s/weir_meta: %s", p->maps,
				      strerror(errno));
	if (meta.abi_version != WEIR_ABI_VERSION)
		return weir_error_set(err, -EPROTO,
				      "the datapath pinned at %s has ABI %u, this weir needs %u: "
				      "stop its containers and remove %s",
				      p->root, meta.abi_version, WEIR_ABI_VERSION, p->root);
	dp->meta_flags = meta.flags;
	if (stale) {
		/* optional programs that loaded must still be pinned: else re-pin them */
		*stale = meta.object_hash != WEIR_BPF_BUILD_ID ||
			 ((meta.flags & WEIR_META_SOCKOPS) && dp->prog[WEIR_PROG_SOCKOPS] < 0) ||
			 ((meta.flags & WEIR_META_DROP_REASONS) &&
			  dp->prog[WEIR_PROG_KFREE_SKB] < 0);
	}
	return 0;
}

/*
 * The kernel enables each cgroup hook with a static key when the first program of that type
 * is attached anywhere and disables it when the last one goes: text patching with IPIs to
 * every CPU, several milliseconds on a virtual machine, paid at every container start and
 * stop whenever no other endpoint holds the key. An empty cgroup with one link per program
 * holds them all, and costs nothing: no socket lives in it, so the programs never run there.
 */
static void attach_anchor(const struct weir_paths *p)
{
	char mnt[PATH_MAX], cg[PATH_MAX], path[PATH_MAX];
	int cgfd;

	if (weir_cgroup2_mount(mnt, sizeof(mnt)))
		return;
	snprintf(cg, sizeof(cg), "%s/weir.anchor", mnt);
	if (mkdir(cg, 0700) && errno != EEXIST) {
		pr_info("no anchor cgroup (%s): container starts toggle the kernel's hooks",
			strerror(errno));
		return;
	}
	cgfd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0)
		return;
	for (int i = 0; i < WEIR_PROG_COUNT; i++) {
		int prog, link;

		if (weir_progs[i].scope == WEIR_SCOPE_NODE)
			continue;
		snprintf(path, sizeof(path), "%s/anchor-%s", p->links, weir_progs[i].name);
		unpin_link(path);
		snprintf(cg, sizeof(cg), "%s/%s", p->progs, weir_progs[i].name);
		prog = bpf_obj_get(cg);
		if (prog < 0)
			continue;
		link = bpf_link_create(prog, cgfd, weir_progs[i].attach, NULL);
		if (link >= 0) {
			if (bpf_obj_pin(link, path))
				bpf_link_detach(link);
			close(link);
		}
		close(prog);
	}
	close(cgfd);
}

static int pin_prog(const struct weir_paths *p, struct bpf_object *obj, enum weir_prog_id id,
		    struct weir_error *err)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, weir_progs[id].name);
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", p->progs, weir_progs[id].name);
	unlink(path);
	if (!prog)
		return weir_error_set(err, -ENOENT, "program %s missing from the object",
				      weir_progs[id].name);
	if (bpf_program__fd(prog) < 0)
		return 0; /* an optional program this kernel refused: no pin */
	if (bpf_obj_pin(bpf_program__fd(prog), path))
		return weir_error_set(err, -errno, "cannot pin %s: %s", path, strerror(errno));
	return 0;
}

/*
 * The node-wide kfree_skb link. A re-pin (newer build) replaces the old link, or the old and
 * new programs would both count every drop.
 */
static int attach_node_links(const struct weir_paths *p, struct monitor_bpf *mon, bool *drops,
			     struct weir_error *err)
{
	char path[PATH_MAX];
	int link;

	*drops = false;
	snprintf(path, sizeof(path), "%s/%s", p->links, weir_progs[WEIR_PROG_KFREE_SKB].name);
	unpin_link(path);
	if (bpf_program__fd(mon->progs.weir_kfree_skb) < 0)
		return 0;
	link = bpf_link_create(bpf_program__fd(mon->progs.weir_kfree_skb), 0, BPF_TRACE_RAW_TP,
			       NULL);
	if (link < 0) {
		pr_warn("kernel drop reasons unavailable: cannot attach kfree_skb: %s",
			strerror(errno));
		return 0;
	}
	if (bpf_obj_pin(link, path)) {
		int r = -errno;

		close(link);
		return weir_error_set(err, r, "cannot pin %s: %s", path, strerror(-r));
	}
	close(link);
	*drops = true;
	return 0;
}

/*
 * Load the monitoring object. Its programs read kernel structures through CO-RE, so they need
 * the kernel's BTF: without it (or if the kernel refuses them) they are left out, kfree_skb
 * first, and the maps still load so counters keep their shape.
 */
static struct monitor_bpf *load_monitor(const struct weir_paths *p, struct weir_error *err)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = p->maps);
	/* which programs to try, best first; each later one leaves out what may have failed */
	static const struct {
		bool sockops, kfree;
	} tries[] = {{true, true}, {true, false}, {false, true}, {false, false}};
	bool btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
	struct monitor_bpf *mon;
	int r = 0;

	for (size_t i = btf ? 0 : 3; i < WEIR_ARRAY_SIZE(tries); i++) {
		mon = monitor_bpf__open_opts(&opts);
		if (!mon) {
			weir_error_set(err, -errno, "cannot open the monitoring object: %s",
				       strerror(errno));
			return NULL;
		}
		bpf_program__set_autoload(mon->progs.weir_sockops, tries[i].sockops);
		bpf_program__set_autoload(mon->progs.weir_kfree_skb, tries[i].kfree);
		r = monitor_bpf__load(mon);
		if (!r) {
			if (!tries[i].sockops)
				pr_warn("TCP health and flows unavailable: this kernel refuses the "
					"sockops program%s",
					btf ? "" : " (no kernel BTF)");
			if (!tries[i].kfree)
				pr_warn("kernel drop reasons unavailable: this kernel refuses "
					"tp_btf/kfree_skb%s",
					btf ? "" : " (no kernel BTF)");
			return mon;
		}
		monitor_bpf__destroy(mon);
	}
	weir_error_set(err, r, "cannot load the monitoring maps: %s", strerror(-r));
	return NULL;
}

/* Verify the objects and pin what they lack; called with the datapath lock held. */
static int load_and_pin(const struct weir_paths *p, struct weir_error *err)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = p->maps);
	struct weir_meta meta = {.abi_version = WEIR_ABI_VERSION, .object_hash = WEIR_BPF_BUILD_ID};
	struct monitor_bpf *mon = NULL;
	struct weir_bpf *skel;
	bool drops = false;
	__u32 zero = 0;
	int r;

	skel = weir_bpf__open_opts(&opts);
	if (!skel)
		return weir_error_set(err, -errno, "cannot open the datapath object: %s",
				      strerror(errno));
	r = weir_bpf__load(skel);
	if (r) {
		weir_error_set(
			err, r,
			"cannot load the datapath (is the pinned datapath in %s from another "
			"weir version?): %s",
			p->maps, strerror(-r));
		goto out;
	}
	mon = load_monitor(p, err);
	if (!mon) {
		r = err->code ? err->code : -EINVAL;
		goto out;
	}
	for (int i = 0; i < WEIR_PROG_COUNT; i++) {
		struct bpf_object *obj = i >= WEIR_PROG_SOCKOPS ? mon->obj : skel->obj;

		if ((r = pin_prog(p, obj, (enum weir_prog_id)i, err)))
			goto out;
	}
	if ((r = attach_node_links(p, mon, &drops, err)))
		goto out;
	attach_anchor(p);
	meta.flags = (drops ? WEIR_META_DROP_REASONS : 0) |
		     (bpf_program__fd(mon->progs.weir_sockops) >= 0 ? WEIR_META_SOCKOPS : 0);
	/* written last: a datapath with this hash is complete */
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.weir_meta), &zero, &meta, BPF_ANY)) {
		r = weir_error_set(err, -errno, "cannot write weir_meta: %s", strerror(errno));
		goto out;
	}
	pr_info("datapath loaded and pinned under %s%s", p->root,
		drops ? "" : " (without kernel drop reasons)");
out:
	monitor_bpf__destroy(mon);
	weir_bpf__destroy(skel);
	return r;
}

static bool dir_has_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	bool any = false;

	if (!d)
		return false;
	while (!any && (de = readdir(d)))
		any = de->d_name[0] != '.';
	closedir(d);
	return any;
}

void weir_unpin_dir(const char *path, bool links)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char p[PATH_MAX];

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (links)
			unpin_link(p);
		else
			unlink(p);
	}
	closedir(d);
}

/*
 * A datapath of another ABI can be replaced only while no endpoint uses it: its maps hold the
 * running containers' policy. Called with the lock held.
 */
static int replace_incompatible(const struct weir_paths *p, const struct weir_config *cfg,
				struct weir_error *err)
{
	char ids[PATH_MAX];

	snprintf(ids, sizeof(ids), "%s/ids", cfg->state_dir);
	if (dir_has_entries(ids) || dir_has_entries(p->endpoints))
		return err->code;
	pr_info("replacing the unused pinned datapath under %s (another ABI, or incomplete)",
		p->root);
	weir_unpin_dir(p->links, true);
	weir_unpin_dir(p->progs, false);
	weir_unpin_dir(p->maps, false);
	weir_error_clear(err);
	return 0;
}

int weir_datapath_unload(const struct weir_config *cfg, struct weir_error *err)
{
	char ids[PATH_MAX], mnt[PATH_MAX], anchor[PATH_MAX];
	struct weir_paths p;
	int lock, r;

	r = weir_paths_init(&p, cfg);
	if (r)
		return weir_error_set(err, r, "bpffs path %s is too long", cfg->bpffs);
	lock = weir_datapath_lock(&p, err);
	if (lock < 0)
		return lock;
	snprintf(ids, sizeof(ids), "%s/ids", cfg->state_dir);
	if (dir_has_entries(ids) || dir_has_entries(p.endpoints)) {
		close(lock);
		return weir_error_set(err, -EBUSY,
				      "endpoints are attached (%s, %s): stop their containers, or "
				      "run weir gc for those that are gone, then unload",
				      ids, p.endpoints);
	}
	weir_unpin_dir(p.links, true);
	weir_unpin_dir(p.progs, false);
	weir_unpin_dir(p.maps, false);
	rmdir(p.links);
	rmdir(p.progs);
	rmdir(p.maps);
	rmdir(p.endpoints);
	rmdir(p.root);
	if (!weir_cgroup2_mount(mnt, sizeof(mnt))) {
		snprintf(anchor, sizeof(anchor), "%s/weir.anchor", mnt);
		rmdir(anchor);
	}
	close(lock);
	pr_info("datapath unloaded from %s", p.root);
	return 0;
}

int weir_datapath_open(struct weir_datapath *dp, const struct weir_config *cfg, bool load,
		       struct weir_error *err)
{
	const char *dirs[5];
	struct weir_paths p;
	bool stale = false;
	int lock = -1, r;

	dp_reset(dp);
	r = weir_paths_init(&p, cfg);
	if (r)
		return weir_error_set(err, r, "bpffs path %s is too long", cfg->bpffs);

	/* The common case, every start after the first: everything is pinned already. */
	r = open_pins(dp, &p, load);
	if (!r) {
		r = check_abi(dp, &p, load ? &stale : NULL, err);
		if ((r && (r != -EPROTO || !load)) || (!r && !stale))
			goto out;
	}
	weir_datapath_close(dp);
	if (!load && r == -EPROTO)
		return r;
	if (!load)
		return weir_error_set(err, r,
				      "the weir datapath is not loaded (no pins under %s): no "
				      "container has been enforced on this node yet",
				      p.root);

	lock = weir_datapath_lock(&p, err);
	if (lock < 0)
		return lock;
	/* Someone may have loaded it while we waited for the lock. */
	r = open_pins(dp, &p, true);
	if (!r) {
		r = check_abi(dp, &p, &stale, err);
		if (!r && !stale)
			goto out; /* complete and current */
		if (r == -EPROTO)
			r = replace_incompatible(&p, cfg, err);
		else if (!r)
			pr_info("pinned programs are incomplete or from another build: pinning "
				"this build's");
		if (r)
			goto out;
	} else if (r == -ENOENT) {
		/* some pins are missing (a newer map, a crashed load): an unused datapath is
		 * rebuilt whole, a used one gets only what it lacks */
		struct weir_error e = {.code = r};

		replace_incompatible(&p, cfg, &e);
	}
	weir_datapath_close(dp);
	if ((r = ensure_bpffs(cfg->bpffs, err)))
		goto out;
	dirs[0] = p.root;
	dirs[1] = p.maps;
	dirs[2] = p.progs;
	dirs[3] = p.endpoints;
	dirs[4] = p.links;
	for (size_t i = 0; i < WEIR_ARRAY_SIZE(dirs); i++) {
		r = weir_mkdir_p(dirs[i], 0700);
		if (r) {
			weir_error_set(err, r, "cannot create %s: %s", dirs[i], strerror(-r));
			goto out;
		}
	}
	if ((r = load_and_pin(&p, err)))
		goto out;
	r = open_pins(dp, &p, true);
	if (r)
		weir_error_set(err, r, "cannot open the pins under %s: %s", p.root, strerror(-r));
	else
		r = check_abi(dp, &p, NULL, err);
out:
	if (lock >= 0)
		close(lock);
	if (r)
		weir_datapath_close(dp);
	return r;
}
