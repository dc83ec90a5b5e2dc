// SPDX-License-Identifier: Apache-2.0
/*
 * OCI cgroupsPath to a cgroup v2 directory. Kept apart from handlers.c (which needs libweir
 * and a kernel) so that unit tests can link it with the protocol core alone.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "handlers.h"

int weir_nri_cgroup_dir(const char *cgroups_path, const char *root, char *out, size_t outsz)
{
	const char *c1, *c2;
	size_t off;
	int n;

	if (!cgroups_path || !*cgroups_path)
		return -EINVAL;
	if (cgroups_path[0] == '/') {
		n = snprintf(out, outsz, "%s%s", root, cgroups_path);
		return n < 0 || (size_t)n >= outsz ? -ENAMETOOLONG : 0;
	}
	/* systemd driver: "slice:prefix:name" -> slice hierarchy + "/prefix-name.scope" */
	c1 = strchr(cgroups_path, ':');
	c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c1 || !c2 || strchr(c2 + 1, ':') || !c2[1])
		return -EINVAL;
	n = snprintf(out, outsz, "%s", root);
	if (n < 0 || (size_t)n >= outsz)
		return -ENAMETOOLONG;
	off = (size_t)n;
	if (c1 != cgroups_path && strncmp(cgroups_path, "-.slice", (size_t)(c1 - cgroups_path))) {
		size_t slen = (size_t)(c1 - cgroups_path);
		const char *dash;

		if (slen <= 6 || strncmp(c1 - 6, ".slice", 6))
			return -EINVAL;
		/* "a-b-c.slice" lives in a.slice/a-b.slice/a-b-c.slice */
		for (dash = cgroups_path;; dash++) {
			dash = memchr(dash, '-', (size_t)(c1 - 6 - dash));
			if (!dash)
				break;
			if (dash == cgroups_path || dash[-1] == '-' || dash + 1 == c1 - 6)
				return -EINVAL;
			n = snprintf(out + off, outsz - off, "/%.*s.slice",
				     (int)(dash - cgroups_path), cgroups_path);
			if (n < 0 || (size_t)n >= outsz - off)
				return -ENAMETOOLONG;
			off += (size_t)n;
		}
		n = snprintf(out + off, outsz - off, "/%.*s", (int)slen, cgroups_path);
		if (n < 0 || (size_t)n >= outsz - off)
			return -ENAMETOOLONG;
		off += (size_t)n;
	}
	if (c2 == c1 + 1)
		n = snprintf(out + off, outsz - off, "/%s.scope", c2 + 1);
	else
		n = snprintf(out + off, outsz - off, "/%.*s-%s.scope", (int)(c2 - c1 - 1), c1 + 1,
			     c2 + 1);
	return n < 0 || (size_t)n >= outsz - off ? -ENAMETOOLONG : 0;
}
