// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include "cgroup.h"
#include "ctx.h"
#include "util.h"

int weir_cgroup2_mount(char *out, size_t size)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* id parent maj:min root mountpoint options [optional...] - fstype source super */
		char *sep = strstr(line, " - "), *save = NULL, *tok;
		char *mnt = NULL;
		int field = 0;

		if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
			continue;
		*sep = '\0';
		for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			if (++field == 5) {
				mnt = tok;
				break;
			}
		}
		if (!mnt || strlen(mnt) >= size)
			continue;
		/* mountinfo escapes spaces as \040; a cgroup mount with one is not supported */
		if (strchr(mnt, '\\'))
			continue;
		snprintf(out, size, "%s", mnt);
		r = 0;
		break;
	}
	fclose(f);
	return r;
}

int weir_cgroup_of_pid(pid_t pid, char *out, size_t size)
{
	char path[64], mnt[4096], line[4096];
	FILE *f;
	int r = -ENOENT;

	r = weir_cgroup2_mount(mnt, sizeof(mnt));
	if (r)
		return r;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	r = -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);

		if (strncmp(line, "0::", 3))
			continue;
		if (n && line[n - 1] == '\n')
			line[--n] = '\0';
		if (strstr(line + 3, "/.."))
			break;
		if (snprintf(out, size, "%s%s", mnt, strcmp(line + 3, "/") ? line + 3 : "") >=
		    (int)size)
			r = -ENAMETOOLONG;
		else
			r = 0;
		break;
	}
	fclose(f);
	return r;
}

int weir_cgroup_id(const char *path, uint64_t *id)
{
	struct {
		struct file_handle fh;
		uint64_t cgid;
	} h;
	int mount_id;

	h.fh.handle_bytes = sizeof(h.cgid);
	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0))
		return -errno;
	if (h.fh.handle_bytes != sizeof(uint64_t))
		return -EOPNOTSUPP;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}

/* ---- may a cgroup be an endpoint ----------------------------------------------------- */

/* a is b, or an ancestor of b (both canonical absolute paths) */
static bool is_at_or_above(const char *a, const char *b)
{
	size_t n = strlen(a);

	return !strncmp(a, b, n) && (b[n] == '/' || b[n] == '\0');
}

/* Without child cgroups, a cgroup is nobody's ancestor: the common case costs one readdir. */
static bool has_children(const char *cgroup)
{
	DIR *d = opendir(cgroup);
	struct dirent *e;
	bool found = false;

	if (!d)
		return true; /* cannot tell: look at the endpoints */
	while (!found && (e = readdir(d)))
		found = e->d_type == DT_DIR && strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return found;
}

struct below {
	const char *cgroup;
	char id[256];
	char endpoint_cgroup[PATH_MAX];
};

static int find_below(const char *id, const char *cgroup, void *arg)
{
	struct below *b = arg;
	char canon[PATH_MAX];

	/* records made by older versions may hold a path that is not canonical */
	if (!realpath(cgroup, canon))
		snprintf(canon, sizeof(canon), "%s", cgroup);
	if (strcmp(b->cgroup, canon) && is_at_or_above(b->cgroup, canon)) {
		snprintf(b->id, sizeof(b->id), "%s", id);
		snprintf(b->endpoint_cgroup, sizeof(b->endpoint_cgroup), "%s", canon);
		return 1;
	}
	return 0;
}

struct record_walk {
	int (*fn)(const char *id, const char *cgroup, void *arg);
	void *arg;
};

static int record_cgroup(struct weir_ctx *ctx, const char *id, const struct weir_record *rec,
			 const struct weir_error *why, void *arg)
{
	struct record_walk *w = arg;

	/* an attach or detach left half done holds its cgroup too, until it is undone */
	if (!rec || rec->state == WEIR_STATE_STOPPED)
		return 0;
	return w->fn(id, rec->cgroup, w->arg);
}

/*
 * The cgroups of the node's existing endpoints, for fn(id, cgroup, arg) until it returns
 * non-zero. The one place that knows where they are kept: the "cgroup" field of each running
 * container record that is not stopped.
 */
static int endpoint_cgroups_foreach(struct weir_ctx *ctx,
				    int (*fn)(const char *id, const char *cgroup, void *arg),
				    void *arg)
{
	struct record_walk w = {.fn = fn, .arg = arg};

	return weir_records_foreach(ctx, record_cgroup, &w);
}

int weir_cgroup_endpoint_check(struct weir_ctx *ctx, char *cgroup, size_t size,
			       struct weir_error *err)
{
	char canon[PATH_MAX], mnt[PATH_MAX], self[PATH_MAX];
	const char *rel;
	struct statfs st;
	size_t mlen;
	int r;

	if (!realpath(cgroup, canon))
		return weir_error_set(err, -errno, "cannot resolve cgroup %s: %s", cgroup,
				      strerror(errno));
	r = weir_cgroup2_mount(mnt, sizeof(mnt));
	if (r)
		return weir_error_set(err, r, "refusing cgroup %s: no cgroup v2 mount found",
				      canon);
	mlen = strlen(mnt);
	if (statfs(canon, &st) || st.f_type != CGROUP2_SUPER_MAGIC || !is_at_or_above(mnt, canon))
		return weir_error_set(err, -EINVAL,
				      "refusing cgroup %s: not a cgroup v2 directory under %s",
				      canon, mnt);
	if (snprintf(cgroup, size, "%s", canon) >= (int)size)
		return weir_error_set(err, -ENAMETOOLONG, "cgroup path %s too long", canon);
	rel = canon + mlen;
	if (!*rel)
		return weir_error_set(err, -EPERM,
				      "refusing cgroup %s: it is the root cgroup: the container's "
				      "programs would run for every process on the node",
				      canon);
	/* weir's own cgroup: what the policy would cut off includes weir */
	if (!weir_cgroup_of_pid(getpid(), self, sizeof(self)) && is_at_or_above(canon, self)) {
		if (!strcmp(canon, self))
			return weir_error_set(err, -EPERM,
					      "refusing cgroup %s: %s itself runs in it (pid %d)",
					      canon, program_invocation_short_name, (int)getpid());
		return weir_error_set(
			err, -EPERM,
			"refusing cgroup %s: it is an ancestor of %s, where %s itself "
			"runs (pid %d)",
			canon, self, program_invocation_short_name, (int)getpid());
	}
	if (has_children(canon)) {
		struct below b = {.cgroup = canon};

		r = endpoint_cgroups_foreach(ctx, find_below, &b);
		if (r < 0)
			return weir_error_set(err, r, "cannot list the node's endpoints: %s",
					      strerror(-r));
		if (r)
			return weir_error_set(
				err, -EPERM,
				"refusing cgroup %s: it is an ancestor of %s (endpoint "
				"%s): the programs attached there would drop the traffic "
				"of every other cgroup below it",
				canon, b.endpoint_cgroup, b.id);
	}
	for (size_t i = 0; i < ctx->cfg.n_endpoint_cgroups; i++)
		if (weir_cgroup_pattern_match(ctx->cfg.endpoint_cgroups[i], rel))
			return 0;
	return weir_error_set(err, -EPERM,
			      "refusing cgroup %s: \"%s\" matches no pattern of the node config's "
			      "endpoint_cgroups",
			      canon, rel);
}
