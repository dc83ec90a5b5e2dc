// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
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
