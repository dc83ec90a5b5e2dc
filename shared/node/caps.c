// SPDX-License-Identifier: Apache-2.0
/*
 * Least privilege for weir-hook and weir-nri: once started, they keep only what attaching and
 * detaching endpoints needs, before they read a container's state or a runtime's messages.
 *
 *   CAP_BPF      maps, BTF, loading programs, pinning (kernels that split it off CAP_SYS_ADMIN)
 *   CAP_PERFMON  the tracing programs (tp_btf/kfree_skb) and their pointer reads (same)
 *   CAP_NET_ADMIN  loading and attaching the cgroup networking programs (cgroup_skb, sock_addr,
 *                sockops)
 *   CAP_SYS_PTRACE  stat() of /proc/<pid>/ns/net: a runtime's init process is not dumpable and
 *                holds more capabilities than weir, so only CAP_SYS_PTRACE lets weir see which
 *                network namespace it has (for the kernel drop counters)
 *   CAP_SYS_ADMIN  instead of CAP_BPF and CAP_PERFMON, on kernels that do not know them
 *
 * Everything else goes, from the bounding set too, and no exec can bring it back
 * (no_new_privs). Files need no capability: the state folder, the bpffs folder, cgroup folders
 * and /proc/<pid>/cgroup belong to root, which weir still is. Two node-wide steps that need
 * more are done first: mounting bpffs when it is missing (CAP_SYS_ADMIN), and raising the
 * memlock limit on kernels that charge BPF memory to it (CAP_SYS_RESOURCE).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/vfs.h>

#include <linux/magic.h>

#include "caps.h"
#include "ctx.h"
#include "datapath.h"
#include "log.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static bool held(cap_t c, cap_value_t v)
{
	cap_flag_value_t f = CAP_CLEAR;

	return !cap_get_flag(c, v, CAP_PERMITTED, &f) && f == CAP_SET;
}

static bool effective(cap_t c, cap_value_t v)
{
	cap_flag_value_t f = CAP_CLEAR;

	return !cap_get_flag(c, v, CAP_EFFECTIVE, &f) && f == CAP_SET;
}

int weir_caps_needed(cap_value_t *out, size_t size)
{
	/* probed: the running kernel's highest capability, not its version */
	bool split = cap_max_bits() > CAP_BPF;
	const cap_value_t split_set[] = {CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_PTRACE};
	const cap_value_t old_set[] = {CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_PTRACE};
	const cap_value_t *set = split ? split_set : old_set;
	size_t n = split ? 4 : 3;

	if (n > size)
		return -ENOSPC;
	memcpy(out, set, n * sizeof(*set));
	return (int)n;
}

int weir_caps_restrict(struct weir_ctx *ctx, bool bpffs, const cap_value_t *extra, size_t nextra,
		       struct weir_error *err)
{
	const struct weir_config *cfg = &ctx->cfg;
	cap_value_t want[8];
	cap_t have, keep = NULL;
	struct statfs st;
	char *text;
	int n, r = 0;

	n = weir_caps_needed(want, WEIR_ARRAY_SIZE(want) - nextra);
	if (n < 0)
		return weir_error_set(err, n, "too many capabilities");
	for (size_t i = 0; i < nextra; i++)
		want[n++] = extra[i];

	have = cap_get_proc();
	if (!have)
		return weir_error_set(err, -errno, "cannot read this process's capabilities: %s",
				      strerror(errno));
	if (bpffs && (statfs(cfg->bpffs, &st) || st.f_type != BPF_FS_MAGIC) &&
	    effective(have, CAP_SYS_ADMIN)) {
		r = weir_bpffs_ensure(cfg->bpffs, err);
		if (r)
			goto out;
	}
	if (effective(have, CAP_SYS_RESOURCE)) {
		struct rlimit inf = {RLIM_INFINITY, RLIM_INFINITY};

		/* what libbpf would raise on such kernels, raised while it still can be */
		setrlimit(RLIMIT_MEMLOCK, &inf);
	}

	keep = cap_init();
	if (!keep) {
		r = weir_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		if (want[i] >= cap_max_bits() || !held(have, want[i]))
			continue; /* what is not held cannot be kept; the kernel will say */
		if (cap_set_flag(keep, CAP_PERMITTED, 1, &want[i], CAP_SET) ||
		    cap_set_flag(keep, CAP_EFFECTIVE, 1, &want[i], CAP_SET)) {
			r = weir_error_set(err, -errno, "cannot build the capability set: %s",
					   strerror(errno));
			goto out;
		}
	}
	if (effective(have, CAP_SETPCAP)) {
		for (cap_value_t v = 0; v < cap_max_bits(); v++) {
			bool wanted = false;

			for (int i = 0; i < n; i++)
				wanted |= want[i] == v;
			if (!wanted && cap_drop_bound(v) && errno != EINVAL) {
				r = weir_error_set(
					err, -errno,
					"cannot drop capability %d from the bounding set: %s",
					(int)v, strerror(errno));
				goto out;
			}
		}
	}
	if (cap_reset_ambient() && errno != EINVAL) {
		r = weir_error_set(err, -errno, "cannot clear the ambient capabilities: %s",
				   strerror(errno));
		goto out;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || cap_set_proc(keep)) {
		r = weir_error_set(err, -errno, "cannot drop capabilities: %s", strerror(errno));
		goto out;
	}
	text = cap_to_text(keep, NULL);
	pr_debug("capabilities kept: %s", text ? text : "?");
	cap_free(text);
out:
	cap_free(keep);
	cap_free(have);
	return r;
}
