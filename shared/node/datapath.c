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
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "cgroup.h"
#include "datapath.h"
#include "log.h"
#include "util.h"
#include "bpf_build_id.h"
#include "guard.h"
#include "iface.h"
#include "guard.skel.h"
#include "monitor.skel.h"
#include "weir.skel.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

const struct weir_prog_desc weir_progs[WEIR_PROG_COUNT] = {
	[WEIR_PROG_EGRESS] = {"weir_egress", BPF_CGROUP_INET_EGRESS, "cgroup_skb/egress",
			      WEIR_SCOPE_ENDPOINT, false, 0, NULL},
	[WEIR_PROG_INGRESS] = {"weir_ingress", BPF_CGROUP_INET_INGRESS, "cgroup_skb/ingress",
			       WEIR_SCOPE_ENDPOINT, false, 0, NULL},
	[WEIR_PROG_CONNECT4] = {"weir_connect4", BPF_CGROUP_INET4_CONNECT, "cgroup/connect4",
				WEIR_SCOPE_ENDPOINT, false, 0, NULL},
	[WEIR_PROG_CONNECT6] = {"weir_connect6", BPF_CGROUP_INET6_CONNECT, "cgroup/connect6",
				WEIR_SCOPE_ENDPOINT, false, 0, NULL},
	[WEIR_PROG_SENDMSG4] = {"weir_sendmsg4", BPF_CGROUP_UDP4_SENDMSG, "cgroup/sendmsg4",
				WEIR_SCOPE_ENDPOINT, false, 0, NULL},
	[WEIR_PROG_SENDMSG6] = {"weir_sendmsg6", BPF_CGROUP_UDP6_SENDMSG, "cgroup/sendmsg6",
				WEIR_SCOPE_ENDPOINT, false, 0, NULL},
	[WEIR_PROG_IFACE] = {"weir_iface_egress", BPF_TCX_EGRESS, "tcx/egress", WEIR_SCOPE_IFACE,
			     false, 0, NULL},
	[WEIR_PROG_SOCKOPS] = {"weir_sockops", BPF_CGROUP_SOCK_OPS, "sockops", WEIR_SCOPE_MONITOR,
			       true, 0, NULL},
	[WEIR_PROG_KFREE_SKB] = {"weir_kfree_skb", BPF_TRACE_RAW_TP, "tp_btf/kfree_skb",
				 WEIR_SCOPE_NODE, true, 0, NULL},
	[WEIR_PROG_SOCK_CREATE] = {"weir_sock_create", BPF_CGROUP_INET_SOCK_CREATE,
				   "cgroup/sock_create", WEIR_SCOPE_GUARD, true,
				   1U << WEIR_GUARD_RAW, NULL},
	[WEIR_PROG_BIND4] = {"weir_bind4", BPF_CGROUP_INET4_BIND, "cgroup/bind4", WEIR_SCOPE_GUARD,
			     true, 1U << WEIR_GUARD_BIND, NULL},
	[WEIR_PROG_BIND6] = {"weir_bind6", BPF_CGROUP_INET6_BIND, "cgroup/bind6", WEIR_SCOPE_GUARD,
			     true, 1U << WEIR_GUARD_BIND, NULL},
	[WEIR_PROG_SYSCTL] = {"weir_sysctl_guard", BPF_CGROUP_SYSCTL, "cgroup/sysctl",
			      WEIR_SCOPE_GUARD, true, 1U << WEIR_GUARD_SYSCTL, NULL},
	[WEIR_PROG_SYS_ENTER] = {"weir_sys_enter", BPF_TRACE_RAW_TP, "raw_tp/sys_enter",
				 WEIR_SCOPE_GUARD_NODE, true, 0, "sys_enter"},
	[WEIR_PROG_EXEC] = {"weir_exec", BPF_TRACE_RAW_TP, "raw_tp/sched_process_exec",
			    WEIR_SCOPE_GUARD_NODE, true, 0, "sched_process_exec"},
	[WEIR_PROG_ENTRY_ATTACH] = {"weir_entry_attach", BPF_TRACE_RAW_TP,
				    "tp_btf/cgroup_attach_task", WEIR_SCOPE_GUARD_NODE, true, 0,
				    "cgroup_attach_task"},
	[WEIR_PROG_ENTRY_FORK] = {"weir_entry_fork", BPF_TRACE_RAW_TP, "tp_btf/sched_process_fork",
				  WEIR_SCOPE_GUARD_NODE, true, 0, "sched_process_fork"},
	[WEIR_PROG_LSM_SOCKET] = {"weir_lsm_socket", BPF_LSM_MAC, "lsm/socket_create",
				  WEIR_SCOPE_LSM, true, 0, "socket_create"},
	[WEIR_PROG_LSM_FILE_OPEN] = {"weir_lsm_file_open", BPF_LSM_MAC, "lsm/file_open",
				     WEIR_SCOPE_LSM, true, 0, "file_open"},
	[WEIR_PROG_LSM_CAPABLE] = {"weir_lsm_capable", BPF_LSM_MAC, "lsm/capable", WEIR_SCOPE_LSM,
				   true, 0, "capable"},
	[WEIR_PROG_LSM_USERNS] = {"weir_lsm_userns", BPF_LSM_MAC, "lsm/userns_create",
				  WEIR_SCOPE_LSM, true, 0, "userns_create"},
	[WEIR_PROG_LSM_PTRACE] = {"weir_lsm_ptrace", BPF_LSM_MAC, "lsm/ptrace_access_check",
				  WEIR_SCOPE_LSM, true, 0, "ptrace_access_check"},
	[WEIR_PROG_LSM_PERF] = {"weir_lsm_perf", BPF_LSM_MAC, "lsm/perf_event_open", WEIR_SCOPE_LSM,
				true, 0, "perf_event_open"},
	[WEIR_PROG_LSM_BPF] = {"weir_lsm_bpf", BPF_LSM_MAC, "lsm/bpf", WEIR_SCOPE_LSM, true, 0,
			       "bpf"},
};

const char *const weir_map_names[WEIR_MAP_COUNT] = {
	[WEIR_MAP_CGROUPS] = "weir_cgroups",
	[WEIR_MAP_ENDPOINTS] = "weir_endpoints",
	[WEIR_MAP_POLICY] = "weir_policy",
	[WEIR_MAP_CT] = "weir_ct",
	[WEIR_MAP_COUNTERS] = "weir_counters",
	[WEIR_MAP_META] = "weir_meta",
	[WEIR_MAP_EVENTS] = "weir_events",
	[WEIR_MAP_EVENT_STATS] = "weir_event_stats",
	[WEIR_MAP_FLOWS] = "weir_flows",
	[WEIR_MAP_DENIED] = "weir_denied",
	[WEIR_MAP_TCP] = "weir_tcp",
	[WEIR_MAP_DROPS] = "weir_drops",
	[WEIR_MAP_NETNS] = "weir_netns",
	[WEIR_MAP_GUARDS] = "weir_guards",
	[WEIR_MAP_GUARD_STATE] = "weir_guard_state",
	[WEIR_MAP_GUARD_COUNTERS] = "weir_guard_counters",
	[WEIR_MAP_GUARD_EVENTS] = "weir_guard_events",
	[WEIR_MAP_GUARD_EVSTATS] = "weir_guard_evstats",
	[WEIR_MAP_GUARD_RECENT] = "weir_guard_recent",
	[WEIR_MAP_SYSCTL] = "weir_sysctl",
	[WEIR_MAP_PROTECTED] = "weir_protected",
	[WEIR_MAP_SYSCALLS] = "weir_syscalls",
	[WEIR_MAP_SCAN_PROBES] = "weir_scan_probes",
	[WEIR_MAP_IFACES] = "weir_ifaces",
};

int weir_paths_init(struct weir_paths *p, const struct weir_config *cfg)
{
	if (snprintf(p->root, sizeof(p->root), "%s/weir", cfg->bpffs) >= (int)sizeof(p->root) ||
	    snprintf(p->maps, sizeof(p->maps), "%s/maps", p->root) >= (int)sizeof(p->maps) ||
	    snprintf(p->progs, sizeof(p->progs), "%s/progs", p->root) >= (int)sizeof(p->progs) ||
	    snprintf(p->links, sizeof(p->links), "%s/links", p->root) >= (int)sizeof(p->links) ||
	    snprintf(p->endpoints, sizeof(p->endpoints), "%s/endpoints", p->root) >=
		    (int)sizeof(p->endpoints) ||
	    snprintf(p->ifaces, sizeof(p->ifaces), "%s/ifaces", p->root) >=
		    (int)sizeof(p->ifaces) ||
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

static int weir_datapath_lock(const struct weir_paths *p, struct weir_error *err)
{
	return weir_lock_file(p->lock, true, err);
}

/* A fresh node has no bpffs mounted; the pins need one. */
int weir_bpffs_ensure(const char *path, struct weir_error *err)
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
		*stale =
			meta.object_hash != WEIR_BPF_BUILD_ID ||
			((meta.flags & WEIR_META_SOCKOPS) && dp->prog[WEIR_PROG_SOCKOPS] < 0) ||
			((meta.flags & WEIR_META_DROP_REASONS) &&
			 dp->prog[WEIR_PROG_KFREE_SKB] < 0) ||
			((meta.flags & WEIR_META_TRACING) && dp->prog[WEIR_PROG_SYS_ENTER] < 0) ||
			((meta.flags & WEIR_META_ESCAPE_FENTRY) && !weir_escape_fentry_pinned(p)) ||
			((meta.flags & (WEIR_META_LSM_CGROUP | WEIR_META_LSM_GLOBAL)) &&
			 dp->prog[WEIR_PROG_LSM_CAPABLE] < 0);
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
static int cgroup_attach_type(int i, unsigned int meta_flags)
{
	switch (weir_progs[i].scope) {
	case WEIR_SCOPE_ENDPOINT:
	case WEIR_SCOPE_MONITOR:
	case WEIR_SCOPE_GUARD:
		return weir_progs[i].attach;
	case WEIR_SCOPE_LSM:
		return meta_flags & WEIR_META_LSM_CGROUP ? BPF_LSM_CGROUP : -1;
	default:
		return -1;
	}
}

int weir_prog_cgroup_attach(const struct weir_datapath *dp, int i)
{
	return cgroup_attach_type(i, dp->meta_flags);
}

static void attach_anchor(const struct weir_paths *p, unsigned int meta_flags)
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
		int prog, link, type = cgroup_attach_type(i, meta_flags);

		/* every old anchor goes: a program this load leaves out keeps none */
		snprintf(path, sizeof(path), "%s/anchor-%s", p->links, weir_progs[i].name);
		unpin_link(path);
		if (type < 0)
			continue;
		snprintf(cg, sizeof(cg), "%s/%s", p->progs, weir_progs[i].name);
		prog = bpf_obj_get(cg);
		if (prog < 0)
			continue;
		link = bpf_link_create(prog, cgfd, (enum bpf_attach_type)type, NULL);
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

/* ---- guard programs ----------------------------------------------------------------------- */

static void node_link_path(const struct weir_paths *p, enum weir_prog_id id, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", p->links, weir_progs[id].name);
}

static int node_link_create(int prog, enum weir_prog_id id)
{
	if (weir_progs[id].scope == WEIR_SCOPE_LSM)
		return bpf_link_create(prog, 0, BPF_LSM_MAC, NULL);
	/* a BTF-typed tracepoint names its target at load time */
	if (!strncmp(weir_progs[id].hook, "tp_btf/", 7))
		return bpf_raw_tracepoint_open(NULL, prog);
	return bpf_raw_tracepoint_open(weir_progs[id].target, prog);
}

/*
 * Escape detection per syscall: the guard object's weir_esc_* programs, fentry on the entry
 * function of each watched syscall (bpf/guard.bpf.c), pinned as progs/weir_esc_* and linked as
 * links/weir_esc_*. Together they stand for raw_tp/sys_enter's one node link
 * (WEIR_PROG_SYS_ENTER) where the datapath loaded them (WEIR_META_ESCAPE_FENTRY).
 */
#define ESC_PREFIX "weir_esc_"

static bool is_escape_name(const char *name)
{
	return !strncmp(name, ESC_PREFIX, sizeof(ESC_PREFIX) - 1);
}

/* The entry function an escape program hooks ("__x64_sys_mount"), or NULL. */
static const char *escape_target(const struct bpf_program *prog)
{
	const char *sec = bpf_program__section_name(prog);

	return sec && !strncmp(sec, "fentry/", 7) ? sec + 7 : NULL;
}

/* Call fn(dir, name, arg) for each entry of dir that is an escape program's pin or link. */
static unsigned int escape_pins_foreach(const char *dir,
					bool (*fn)(const char *dir, const char *name, void *arg),
					void *arg)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (is_escape_name(de->d_name) && !strchr(de->d_name, '.')) {
			n++;
			if (fn && !fn(dir, de->d_name, arg))
				break;
		}
	closedir(d);
	return n;
}

static bool unpin_escape(const char *dir, const char *name, void *links)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (*(bool *)links)
		unpin_link(path);
	else
		unlink(path);
	return true;
}

static void escape_unpin_all(const char *dir, bool links)
{
	escape_pins_foreach(dir, unpin_escape, &links);
}

unsigned int weir_escape_fentry_pinned(const struct weir_paths *p)
{
	return escape_pins_foreach(p->progs, NULL, NULL);
}

struct escape_attach {
	const struct weir_paths *p;
	unsigned int made, had;
	int err;
	char made_names[128][64];
};

/* Link one pinned escape program; a link pinned already (by another endpoint) is kept. */
static bool escape_attach_one(const char *dir, const char *name, void *arg)
{
	struct escape_attach *a = arg;
	char path[PATH_MAX];
	int prog, link;

	snprintf(path, sizeof(path), "%s/%s", a->p->links, name);
	if (!access(path, F_OK)) {
		a->had++;
		return true;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	prog = bpf_obj_get(path);
	if (prog < 0) {
		a->err = -errno;
		return false;
	}
	link = bpf_raw_tracepoint_open(NULL, prog);
	a->err = link < 0 ? -errno : 0;
	close(prog);
	if (link < 0)
		return false;
	snprintf(path, sizeof(path), "%s/%s", a->p->links, name);
	if (bpf_obj_pin(link, path))
		a->err = -errno;
	close(link);
	if (a->err)
		return false;
	if (a->made < WEIR_ARRAY_SIZE(a->made_names))
		snprintf(a->made_names[a->made], sizeof(a->made_names[0]), "%s", name);
	a->made++;
	return true;
}

static int escape_links_ensure(const struct weir_paths *p, struct weir_error *err)
{
	struct escape_attach *a = calloc(1, sizeof(*a));
	char path[PATH_MAX];
	unsigned int n;
	int r;

	if (!a)
		return weir_error_set(err, -ENOMEM, "out of memory");
	a->p = p;
	n = escape_pins_foreach(p->progs, escape_attach_one, a);
	r = a->err;
	if (!r && !n)
		r = -ENOENT;
	if (r) {
		/* nothing of this attach stays: the links others pinned before do */
		for (unsigned int i = 0; i < a->made && i < WEIR_ARRAY_SIZE(a->made_names); i++) {
			snprintf(path, sizeof(path), "%s/%s", p->links, a->made_names[i]);
			unpin_link(path);
		}
		free(a);
		return weir_error_set(
			err, r, "cannot attach escape detection (fentry per syscall, %s): %s",
			p->progs, n ? strerror(-r) : "no weir_esc_* program is pinned");
	}
	if (a->made)
		pr_info("escape detection attached: fentry on %u syscall entry functions", n);
	free(a);
	return 0;
}

bool weir_node_link_pinned(const struct weir_paths *p, enum weir_prog_id id)
{
	char path[PATH_MAX];

	if (id == WEIR_PROG_SYS_ENTER && escape_pins_foreach(p->links, NULL, NULL))
		return true;
	node_link_path(p, id, path, sizeof(path));
	return access(path, F_OK) == 0;
}

int weir_node_link_ensure(const struct weir_paths *p, const struct weir_datapath *dp,
			  enum weir_prog_id id, struct weir_error *err)
{
	char path[PATH_MAX];
	int link, r;

	if (id == WEIR_PROG_SYS_ENTER && (dp->meta_flags & WEIR_META_ESCAPE_FENTRY))
		return escape_links_ensure(p, err);
	if (weir_node_link_pinned(p, id))
		return 0;
	if (dp->prog[id] < 0)
		return weir_error_set(err, -EOPNOTSUPP, "%s (%s) is not loaded on this node",
				      weir_progs[id].name, weir_progs[id].hook);
	node_link_path(p, id, path, sizeof(path));
	link = node_link_create(dp->prog[id], id);
	if (link < 0)
		return weir_error_set(err, -errno, "cannot attach %s (%s): %s", weir_progs[id].name,
				      weir_progs[id].hook, strerror(errno));
	if (bpf_obj_pin(link, path)) {
		r = -errno;
		close(link);
		return weir_error_set(err, r, "cannot pin %s: %s", path, strerror(-r));
	}
	close(link);
	pr_info("%s attached (%s) for the node's guarded endpoints", weir_progs[id].name,
		weir_progs[id].hook);
	return 0;
}

void weir_node_link_remove(const struct weir_paths *p, enum weir_prog_id id)
{
	char path[PATH_MAX];

	if (id == WEIR_PROG_SYS_ENTER)
		escape_unpin_all(p->links, true);
	node_link_path(p, id, path, sizeof(path));
	unpin_link(path);
}

/* Replace the link pinned at path (if any) with a new one of prog; false when it cannot. */
static bool relink(const char *path, int link)
{
	char tmp[PATH_MAX + 8];
	int old;

	if (link < 0)
		return false;
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	old = bpf_obj_get(path);
	if (bpf_obj_pin(link, tmp) || rename(tmp, path)) {
		unlink(tmp);
		if (old >= 0)
			close(old);
		close(link);
		return false;
	}
	if (old >= 0) {
		bpf_link_detach(old);
		close(old);
	}
	close(link);
	return true;
}

static bool unlink_stale_escape(const char *dir, const char *name, void *arg)
{
	struct bpf_program *prog =
		bpf_object__find_program_by_name(((struct guard_bpf *)arg)->obj, name);
	char path[PATH_MAX];

	if (!prog || bpf_program__fd(prog) < 0) {
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		unpin_link(path);
	}
	return true;
}

/*
 * Escape detection on a re-pin: the new build's path replaces the old links, new ones pinned
 * before the old go. False when the new path cannot attach: the caller removes it all.
 */
static bool refresh_escape_links(const struct weir_paths *p, struct guard_bpf *g, bool fentry)
{
	char path[PATH_MAX];
	struct bpf_program *prog;
	bool ok = true;

	if (!fentry) {
		prog = g->progs.weir_sys_enter;
		node_link_path(p, WEIR_PROG_SYS_ENTER, path, sizeof(path));
		ok = bpf_program__fd(prog) >= 0 &&
		     relink(path, node_link_create(bpf_program__fd(prog), WEIR_PROG_SYS_ENTER));
		escape_unpin_all(p->links, true);
		return ok;
	}
	bpf_object__for_each_program(prog, g->obj)
	{
		if (!is_escape_name(bpf_program__name(prog)) || bpf_program__fd(prog) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", p->links, bpf_program__name(prog));
		ok = ok && relink(path, bpf_raw_tracepoint_open(NULL, bpf_program__fd(prog)));
	}
	/* the old build's links of targets this one leaves out go with the old programs */
	escape_pins_foreach(p->links, unlink_stale_escape, g);
	node_link_path(p, WEIR_PROG_SYS_ENTER, path, sizeof(path));
	unpin_link(path);
	return ok;
}

/*
 * A re-pin (a newer build) moves the guard node links that exist to the new programs: the new
 * link is pinned before the old one goes, so no syscall passes unwatched in between.
 */
static void refresh_node_links(const struct weir_paths *p, struct guard_bpf *g, bool esc_fentry)
{
	char path[PATH_MAX];

	for (int i = WEIR_PROG_FIRST_GUARD; i < WEIR_PROG_COUNT; i++) {
		struct bpf_program *prog;

		if (!weir_node_link_pinned(p, (enum weir_prog_id)i))
			continue;
		node_link_path(p, (enum weir_prog_id)i, path, sizeof(path));
		if (i == WEIR_PROG_SYS_ENTER) {
			if (!refresh_escape_links(p, g, esc_fentry))
				weir_node_link_remove(p, WEIR_PROG_SYS_ENTER);
			continue;
		}
		prog = bpf_object__find_program_by_name(g->obj, weir_progs[i].name);
		/* this build lacks it or cannot attach it: the endpoint's next attach says so */
		if (!prog || bpf_program__fd(prog) < 0 ||
		    !relink(path, node_link_create(bpf_program__fd(prog), (enum weir_prog_id)i)))
			unpin_link(path);
	}
}

/*
 * Can a fentry program be loaded and attached on a syscall's entry function here? 0, or -errno
 * with the reason in why. An empty program on unshare's entry, attached and detached at once.
 */
int weir_escape_fentry_probe(char *why, size_t size)
{
	static const char target[] = "__x64_sys_unshare";
	const struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
		{.code = BPF_JMP | BPF_EXIT},
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY);
	struct btf *vmlinux = btf__load_vmlinux_btf();
	int id, fd, link, r;

	if (!vmlinux) {
		snprintf(why, size, "no kernel BTF");
		return -ENOENT;
	}
	id = btf__find_by_name_kind(vmlinux, target, BTF_KIND_FUNC);
	btf__free(vmlinux);
	if (id <= 0) {
		snprintf(why, size, "the kernel's BTF has no %s (not x86-64?)", target);
		return -ENOENT;
	}
	opts.attach_btf_id = (__u32)id;
	fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "weir_probe", "GPL", insns,
			   WEIR_ARRAY_SIZE(insns), &opts);
	if (fd < 0) {
		r = -errno;
		snprintf(why, size, "the kernel refuses fentry programs (%s)", strerror(-r));
		return r;
	}
	link = bpf_raw_tracepoint_open(NULL, fd);
	r = link < 0 ? -errno : 0;
	close(fd);
	if (link < 0) {
		snprintf(why, size, "the kernel loads fentry programs but cannot attach them (%s)",
			 strerror(-r));
		return r;
	}
	close(link);
	return 0;
}

/* Does BPF-LSM really run? Attach the probe, open a file, see whether it was called. */
static bool lsm_probe(struct guard_bpf *g)
{
	struct bpf_link *link;
	bool ran;
	int fd;

	g->bss->weir_probe_tgid = (__u32)getpid();
	g->bss->weir_probe_hits = 0;
	link = bpf_program__attach_lsm(g->progs.weir_lsm_probe);
	if (!link)
		return false;
	fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
	ran = __atomic_load_n(&g->bss->weir_probe_hits, __ATOMIC_RELAXED) > 0;
	bpf_link__destroy(link);
	return ran;
}

enum guard_try {
	TRY_LSM_CGROUP, /* BPF-LSM per cgroup, tracing, cgroup hooks */
	TRY_LSM_GLOBAL, /* BPF-LSM once per node, tracing, cgroup hooks */
	TRY_TRACING,	/* tracing, cgroup hooks */
	TRY_EXEC,	/* the exec program (no BTF needed), cgroup hooks */
	TRY_CGROUP,	/* cgroup hooks */
	TRY_MAPS,	/* maps only: the rest of weir keeps working */
};

/*
 * entry: with the marks of processes a runtime brings into a running container (task storage,
 * bpf/lib/entry.h); a kernel that refuses them keeps the rest of try t.
 */
/*
 * Which per-syscall escape programs load: those whose entry function this kernel has, less a
 * plain 32-bit entry whose compat entry exists (the kernel's 32-bit table calls that one).
 */
static void escape_autoload(struct guard_bpf *g, const struct btf *vmlinux, bool on)
{
	struct bpf_program *prog;
	char compat[128];

	bpf_object__for_each_program(prog, g->obj)
	{
		const char *fn = escape_target(prog);
		bool load;

		if (!is_escape_name(bpf_program__name(prog)))
			continue;
		load = on && vmlinux && fn &&
		       btf__find_by_name_kind(vmlinux, fn, BTF_KIND_FUNC) > 0;
		if (load && !strncmp(fn, "__ia32_sys_", 11)) {
			snprintf(compat, sizeof(compat), "__ia32_compat_sys_%s", fn + 11);
			load = btf__find_by_name_kind(vmlinux, compat, BTF_KIND_FUNC) <= 0;
		}
		bpf_program__set_autoload(prog, load);
	}
}

static unsigned int escape_loaded(struct guard_bpf *g)
{
	struct bpf_program *prog;
	unsigned int n = 0;

	bpf_object__for_each_program(prog, g->obj) n +=
		is_escape_name(bpf_program__name(prog)) && bpf_program__fd(prog) >= 0;
	return n;
}

/* Pin this build's escape programs (progs/weir_esc_*), and only those. */
static int pin_escape_progs(const struct weir_paths *p, struct guard_bpf *g, struct weir_error *err)
{
	struct bpf_program *prog;
	char path[PATH_MAX];

	escape_unpin_all(p->progs, false);
	bpf_object__for_each_program(prog, g->obj)
	{
		if (!is_escape_name(bpf_program__name(prog)) || bpf_program__fd(prog) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", p->progs, bpf_program__name(prog));
		if (bpf_obj_pin(bpf_program__fd(prog), path))
			return weir_error_set(err, -errno, "cannot pin %s: %s", path,
					      strerror(errno));
	}
	return 0;
}

/*
 * esc: with the per-syscall escape programs (fentry), which vmlinux (the kernel's BTF) names;
 * without them escape detection takes raw_tp/sys_enter.
 */
static struct guard_bpf *guard_open(const struct weir_paths *p, enum guard_try t, bool entry,
				    bool esc, const struct btf *vmlinux)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = p->maps);
	struct guard_bpf *g = guard_bpf__open_opts(&opts);

	if (!g)
		return NULL;
	entry = entry && t <= TRY_TRACING;
	escape_autoload(g, vmlinux, esc && t <= TRY_TRACING);
	g->rodata->weir_lsm_per_cgroup = t == TRY_LSM_CGROUP;
	g->rodata->weir_entry_marks = entry;
	bpf_map__set_autocreate(g->maps.weir_entries, entry);
	bpf_program__set_autoload(g->progs.weir_lsm_probe, t <= TRY_LSM_GLOBAL);
	for (int i = WEIR_PROG_FIRST_GUARD; i < WEIR_PROG_COUNT; i++) {
		struct bpf_program *prog =
			bpf_object__find_program_by_name(g->obj, weir_progs[i].name);
		bool load;

		if (!prog)
			continue;
		if (weir_progs[i].scope == WEIR_SCOPE_LSM) {
			/* a hook this kernel lacks (userns_create before 6.1) is left out */
			load = t <= TRY_LSM_GLOBAL &&
			       libbpf_find_vmlinux_btf_id(weir_progs[i].target, BPF_LSM_MAC) > 0;
			if (load && t == TRY_LSM_CGROUP)
				bpf_program__set_expected_attach_type(prog, BPF_LSM_CGROUP);
		} else if (i == WEIR_PROG_SYS_ENTER) {
			load = t <= TRY_TRACING;
		} else if (i == WEIR_PROG_EXEC) {
			load = t <= TRY_EXEC;
		} else if (i == WEIR_PROG_ENTRY_ATTACH || i == WEIR_PROG_ENTRY_FORK) {
			load = entry;
		} else {
			load = t <= TRY_CGROUP;
		}
		bpf_program__set_autoload(prog, load);
	}
	return g;
}

/*
 * Load the guard object, best first: BPF-LSM is used only where it is proven to run, escape
 * detection per syscall (fentry) only where a fentry program attaches. The syscall table is
 * filled once the maps exist.
 */
static struct guard_bpf *load_guard(const struct weir_paths *p, const struct weir_config *cfg,
				    unsigned int *flags, struct weir_error *err)
{
	static struct weir_syscall_nr table[WEIR_SYSCALL_SLOTS];
	enum guard_try t = cfg->lsm == WEIR_LSM_AUTO	 ? TRY_LSM_CGROUP
			   : cfg->lsm == WEIR_LSM_GLOBAL ? TRY_LSM_GLOBAL
							 : TRY_TRACING;
	struct btf *vmlinux = NULL;
	struct guard_bpf *g = NULL;
	bool entry = true, esc, esc_ok;
	char why[160];
	int r = 0;

	*flags = 0;
	if (cfg->escape_raw_tp)
		snprintf(why, sizeof(why), "the node config says escape_hook \"raw_tp\"");
	esc = esc_ok = !cfg->escape_raw_tp && !weir_escape_fentry_probe(why, sizeof(why));
	if (!esc)
		pr_info("escape detection takes raw_tp/sys_enter: %s", why);
	else
		vmlinux = btf__load_vmlinux_btf(); /* which entry functions the kernel has */
	for (;;) {
		g = guard_open(p, t, entry, esc, vmlinux);
		if (!g) {
			weir_error_set(err, -errno, "cannot open the guard object: %s",
				       strerror(errno));
			btf__free(vmlinux);
			return NULL;
		}
		/* every try but the last probes what the kernel allows */
		weir_log_libbpf_probing(t < TRY_MAPS);
		r = guard_bpf__load(g);
		weir_log_libbpf_probing(false);
		if (!r && t <= TRY_LSM_GLOBAL && !lsm_probe(g)) {
			pr_info("BPF-LSM programs load but never run: \"bpf\" is not among the "
				"kernel's active LSMs");
			guard_bpf__destroy(g);
			t = TRY_TRACING; /* the next try leaves BPF-LSM out */
			entry = true;
			esc = esc_ok;
			continue;
		}
		if (!r)
			break;
		guard_bpf__destroy(g);
		g = NULL;
		if (esc && t <= TRY_TRACING) {
			/* the same try once more, escape detection on raw_tp/sys_enter */
			pr_info("the per-syscall escape programs (fentry) do not load with the "
				"rest: %s; trying raw_tp/sys_enter",
				strerror(-r));
			esc = false;
			continue;
		}
		if (entry && t <= TRY_TRACING) {
			entry = false; /* the same try once more, without the entry marks */
			esc = esc_ok;
			continue;
		}
		if (t == TRY_MAPS)
			break;
		t++;
		entry = true;
		esc = esc_ok;
	}
	btf__free(vmlinux);
	if (!g) {
		weir_error_set(err, r, "cannot load the guard maps: %s", strerror(-r));
		return NULL;
	}
	if (t == TRY_LSM_CGROUP)
		*flags |= WEIR_META_LSM_CGROUP;
	else if (t == TRY_LSM_GLOBAL)
		*flags |= WEIR_META_LSM_GLOBAL;
	if (t <= TRY_TRACING)
		*flags |= WEIR_META_TRACING;
	if (t <= TRY_TRACING && escape_loaded(g)) {
		*flags |= WEIR_META_ESCAPE_FENTRY;
		pr_info("escape detection per syscall: fentry on %u syscall entry functions",
			escape_loaded(g));
	}
	if (t <= TRY_TRACING && !entry)
		pr_warn("this kernel refuses the entry marks (task storage, tp_btf): a runtime's "
			"exec into a running container is judged from its cgroup join on");
	if (t > TRY_TRACING)
		pr_warn("escape detection unavailable: this kernel refuses raw_tp/sys_enter%s",
			access("/sys/kernel/btf/vmlinux", R_OK) ? " (no kernel BTF)" : "");
	weir_syscalls_fill(table);
	for (__u32 i = 0; i < WEIR_ARRAY_SIZE(table); i++) {
		if (bpf_map_update_elem(bpf_map__fd(g->maps.weir_syscalls), &i, &table[i],
					BPF_ANY)) {
			weir_error_set(err, -errno, "cannot fill weir_syscalls: %s",
				       strerror(errno));
			guard_bpf__destroy(g);
			return NULL;
		}
	}
	return g;
}

/*
 * Open and load weir.bpf.o into *out, with or without the per-socket verdict slots. On a load
 * error *out is still set (its maps may name the pinned datapath) and the caller destroys it; an
 * open error leaves it NULL.
 */
static int open_datapath(const struct bpf_object_open_opts *opts, bool sk_cache,
			 struct weir_bpf **out)
{
	struct weir_bpf *skel;

	weir_bpf__destroy(*out);
	*out = skel = weir_bpf__open_opts(opts);
	if (!skel)
		return errno ? -errno : -ENOMEM;
	skel->rodata->weir_sk_cache = sk_cache;
	/*
	 * A kernel without tcx (probed on loopback, never by version) loads the interface program
	 * as a plain tc one, without the attach type it does not know, for its clsact filter.
	 */
	if (weir_iface_probe(1) != WEIR_TC_TCX)
		bpf_program__set_expected_attach_type(skel->progs.weir_iface_egress,
						      (enum bpf_attach_type)0);
	return weir_bpf__load(skel);
}

/* Verify the objects and pin what they lack; called with the datapath lock held. */
static int load_and_pin(const struct weir_paths *p, const struct weir_config *cfg,
			struct weir_error *err)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = p->maps);
	struct weir_meta meta = {.abi_version = WEIR_ABI_VERSION, .object_hash = WEIR_BPF_BUILD_ID};
	struct monitor_bpf *mon = NULL;
	struct guard_bpf *guard = NULL;
	unsigned int guard_flags = 0;
	struct weir_bpf *skel = NULL;
	bool drops = false, sk_cache = true;
	__u32 zero = 0;
	int r;

	/* the first load is a probe of the verifier: its refusal of the slots is an answer */
	weir_log_libbpf_probing(true);
	r = open_datapath(&opts, true, &skel);
	weir_log_libbpf_probing(false);
	if (r == -E2BIG) {
		pr_info("this kernel's verifier refuses the datapath with per-socket verdicts (too "
			"many paths): loaded without them, every packet takes the conntrack path");
		sk_cache = false;
		r = open_datapath(&opts, false, &skel);
	} else if (r && skel) {
		r = open_datapath(&opts, true, &skel); /* again, for libbpf's own report of why */
	}
	if (!skel)
		return weir_error_set(err, r, "cannot open the datapath object: %s", strerror(-r));
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
	guard = load_guard(p, cfg, &guard_flags, err);
	if (!guard) {
		r = err->code ? err->code : -EINVAL;
		goto out;
	}
	for (int i = 0; i < WEIR_PROG_COUNT; i++) {
		struct bpf_object *obj = i >= WEIR_PROG_FIRST_GUARD ? guard->obj
					 : i >= WEIR_PROG_SOCKOPS   ? mon->obj
								    : skel->obj;

		if ((r = pin_prog(p, obj, (enum weir_prog_id)i, err)))
			goto out;
	}
	if ((r = pin_escape_progs(p, guard, err)))
		goto out;
	if ((r = attach_node_links(p, mon, &drops, err)))
		goto out;
	refresh_node_links(p, guard, (guard_flags & WEIR_META_ESCAPE_FENTRY) != 0);
	meta.flags = (drops ? WEIR_META_DROP_REASONS : 0) |
		     (bpf_program__fd(mon->progs.weir_sockops) >= 0 ? WEIR_META_SOCKOPS : 0) |
		     (sk_cache ? WEIR_META_SK_VERDICTS : 0) | WEIR_META_SK_RECORDED | guard_flags;
	attach_anchor(p, meta.flags);
	/* written last: a datapath with this hash is complete */
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.weir_meta), &zero, &meta, BPF_ANY)) {
		r = weir_error_set(err, -errno, "cannot write weir_meta: %s", strerror(errno));
		goto out;
	}
	pr_info("datapath loaded and pinned under %s%s", p->root,
		drops ? "" : " (without kernel drop reasons)");
out:
	guard_bpf__destroy(guard);
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
	if (dir_has_entries(ids) || dir_has_entries(p->endpoints) || dir_has_entries(p->ifaces))
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
	if (dir_has_entries(ids) || dir_has_entries(p.endpoints) || dir_has_entries(p.ifaces)) {
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
	rmdir(p.ifaces);
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
	const char *dirs[6];
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
	if ((r = weir_bpffs_ensure(cfg->bpffs, err)))
		goto out;
	dirs[0] = p.root;
	dirs[1] = p.maps;
	dirs[2] = p.progs;
	dirs[3] = p.endpoints;
	dirs[4] = p.links;
	dirs[5] = p.ifaces;
	for (size_t i = 0; i < WEIR_ARRAY_SIZE(dirs); i++) {
		r = weir_mkdir_p(dirs[i], 0700);
		if (r) {
			weir_error_set(err, r, "cannot create %s: %s", dirs[i], strerror(-r));
			goto out;
		}
	}
	if ((r = load_and_pin(&p, cfg, err)))
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
