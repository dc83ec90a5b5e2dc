// SPDX-License-Identifier: Apache-2.0
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

#include "datapath.h"
#include "log.h"
#include "util.h"
#include "weir.skel.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

const struct weir_prog_desc weir_progs[WEIR_PROG_COUNT] = {
	[WEIR_PROG_EGRESS] = {"weir_egress", BPF_CGROUP_INET_EGRESS, "cgroup_skb/egress"},
	[WEIR_PROG_INGRESS] = {"weir_ingress", BPF_CGROUP_INET_INGRESS, "cgroup_skb/ingress"},
	[WEIR_PROG_CONNECT4] = {"weir_connect4", BPF_CGROUP_INET4_CONNECT, "cgroup/connect4"},
	[WEIR_PROG_CONNECT6] = {"weir_connect6", BPF_CGROUP_INET6_CONNECT, "cgroup/connect6"},
	[WEIR_PROG_SENDMSG4] = {"weir_sendmsg4", BPF_CGROUP_UDP4_SENDMSG, "cgroup/sendmsg4"},
	[WEIR_PROG_SENDMSG6] = {"weir_sendmsg6", BPF_CGROUP_UDP6_SENDMSG, "cgroup/sendmsg6"},
};

static const char *const map_names[] = {"weir_cgroups", "weir_endpoints", "weir_policy",
					"weir_ct",	"weir_counters",  "weir_meta"};

static int *map_slot(struct weir_datapath *dp, size_t i)
{
	int *slots[] = {&dp->cgroups, &dp->endpoints, &dp->policy,
			&dp->ct,      &dp->counters,  &dp->meta};

	return slots[i];
}

int weir_paths_init(struct weir_paths *p, const struct weir_config *cfg)
{
	if (snprintf(p->root, sizeof(p->root), "%s/weir", cfg->bpffs) >= (int)sizeof(p->root) ||
	    snprintf(p->maps, sizeof(p->maps), "%s/maps", p->root) >= (int)sizeof(p->maps) ||
	    snprintf(p->progs, sizeof(p->progs), "%s/progs", p->root) >= (int)sizeof(p->progs) ||
	    snprintf(p->endpoints, sizeof(p->endpoints), "%s/endpoints", p->root) >=
		    (int)sizeof(p->endpoints) ||
	    snprintf(p->lock, sizeof(p->lock), "%s/datapath.lock", cfg->state_dir) >=
		    (int)sizeof(p->lock))
		return -ENAMETOOLONG;
	return 0;
}

static void dp_reset(struct weir_datapath *dp)
{
	for (size_t i = 0; i < WEIR_ARRAY_SIZE(map_names); i++)
		*map_slot(dp, i) = -1;
	for (int i = 0; i < WEIR_PROG_COUNT; i++)
		dp->prog[i] = -1;
}

void weir_datapath_close(struct weir_datapath *dp)
{
	for (size_t i = 0; i < WEIR_ARRAY_SIZE(map_names); i++)
		if (*map_slot(dp, i) >= 0)
			close(*map_slot(dp, i));
	for (int i = 0; i < WEIR_PROG_COUNT; i++)
		if (dp->prog[i] >= 0)
			close(dp->prog[i]);
	dp_reset(dp);
}

int weir_datapath_lock(const struct weir_paths *p, struct weir_error *err)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, r;

	snprintf(dir, sizeof(dir), "%s", p->lock);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		r = weir_mkdir_p(dir, 0700);
		if (r)
			return weir_error_set(err, r, "cannot create %s: %s", dir, strerror(-r));
	}
	fd = open(p->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return weir_error_set(err, -errno, "cannot open %s: %s", p->lock, strerror(errno));
	while (flock(fd, LOCK_EX)) {
		if (errno == EINTR)
			continue;
		r = -errno;
		close(fd);
		return weir_error_set(err, r, "cannot lock %s: %s", p->lock, strerror(-r));
	}
	return fd;
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

	for (size_t i = 0; i < WEIR_ARRAY_SIZE(map_names); i++) {
		snprintf(path, sizeof(path), "%s/%s", p->maps, map_names[i]);
		*map_slot(dp, i) = bpf_obj_get(path);
		if (*map_slot(dp, i) < 0)
			return -errno;
	}
	if (!progs)
		return 0;
	for (int i = 0; i < WEIR_PROG_COUNT; i++) {
		snprintf(path, sizeof(path), "%s/%s", p->progs, weir_progs[i].name);
		dp->prog[i] = bpf_obj_get(path);
		if (dp->prog[i] < 0)
			return -errno;
	}
	return 0;
}

/* FNV-1a over the embedded object: identifies the programs this binary would pin. */
static __u64 object_hash(void)
{
	size_t sz = 0;
	const unsigned char *b = weir_bpf__elf_bytes(&sz);
	__u64 h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < sz; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int check_abi(struct weir_datapath *dp, const struct weir_paths *p, bool *stale,
		     struct weir_error *err)
{
	struct weir_meta meta = {};
	__u32 zero = 0;

	if (bpf_map_lookup_elem(dp->meta, &zero, &meta))
		return weir_error_set(err, -errno, "cannot read %s/weir_meta: %s", p->maps,
				      strerror(errno));
	if (meta.abi_version != WEIR_ABI_VERSION)
		return weir_error_set(err, -EPROTO,
				      "the datapath pinned at %s has ABI %u, this weir needs %u: "
				      "stop its containers and remove %s",
				      p->root, meta.abi_version, WEIR_ABI_VERSION, p->root);
	if (stale)
		*stale = meta.object_hash != object_hash();
	return 0;
}

/* Verify the object and pin what it lacks; called with the datapath lock held. */
static int load_and_pin(const struct weir_paths *p, struct weir_error *err)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = p->maps);
	struct weir_bpf *skel;
	struct weir_meta meta = {.abi_version = WEIR_ABI_VERSION, .object_hash = object_hash()};
	char path[PATH_MAX];
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
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.weir_meta), &zero, &meta, BPF_ANY)) {
		r = weir_error_set(err, -errno, "cannot write weir_meta: %s", strerror(errno));
		goto out;
	}
	for (int i = 0; i < WEIR_PROG_COUNT; i++) {
		struct bpf_program *prog =
			bpf_object__find_program_by_name(skel->obj, weir_progs[i].name);

		snprintf(path, sizeof(path), "%s/%s", p->progs, weir_progs[i].name);
		if (!prog) {
			r = weir_error_set(err, -ENOENT, "program %s missing from the object",
					   weir_progs[i].name);
			goto out;
		}
		unlink(path);
		if (bpf_obj_pin(bpf_program__fd(prog), path)) {
			r = weir_error_set(err, -errno, "cannot pin %s: %s", path, strerror(errno));
			goto out;
		}
	}
	pr_info("datapath loaded and pinned under %s", p->root);
out:
	weir_bpf__destroy(skel);
	return r;
}

int weir_datapath_open(struct weir_datapath *dp, const struct weir_config *cfg, bool load,
		       struct weir_error *err)
{
	const char *dirs[4];
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
		if (r || !stale)
			goto out;
	}
	weir_datapath_close(dp);
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
		if (r || !stale)
			goto out;
		pr_info("pinned programs are from another build: pinning this build's programs");
	}
	weir_datapath_close(dp);
	if ((r = ensure_bpffs(cfg->bpffs, err)))
		goto out;
	dirs[0] = p.root;
	dirs[1] = p.maps;
	dirs[2] = p.progs;
	dirs[3] = p.endpoints;
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
