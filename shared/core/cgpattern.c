// SPDX-License-Identifier: Apache-2.0
/*
 * Endpoint cgroup patterns (the node config's "endpoint_cgroups"): pure string matching, no
 * kernel, so that the config parser in core/ can validate patterns without reaching node/.
 */
#include <fnmatch.h>
#include <stdbool.h>
#include <string.h>

#include "cgroup.h"
#include "util.h"

/*
 * Where container runtimes put containers, so that a node without an endpoint_cgroups key
 * still refuses any other cgroup. Plain runc with the cgroupfs driver puts a container wherever
 * its cgroupsPath says (or below runc's own cgroup when it says nothing): such nodes list their
 * paths in the node config.
 */
const char *const weir_default_endpoint_cgroups[] = {
	"/kubepods/**",					/* kubelet, cgroupfs driver */
	"/kubepods.slice/**",				/* kubelet, systemd driver */
	"/libpod_parent/**",				/* podman, cgroupfs manager */
	"/machine.slice/libpod-*.scope",		/* podman, systemd manager */
	"/machine.slice/machine-libpod_pod_*.slice/**", /* podman pods, systemd manager */
	"/system.slice/runc-*.scope",			/* runc, systemd driver, no cgroupsPath */
	NULL,
};

const char *weir_cgroup_pattern_invalid(const char *pattern)
{
	const char *p = pattern;

	if (!weir_printable(p))
		return "control character in the pattern";
	if (p[0] != '/')
		return "expected an absolute cgroup path such as \"/kubepods/**\"";
	if (!p[1])
		return "\"/\" is the root cgroup, which is never an endpoint: \"/**\" means any "
		       "other cgroup";
	while (*p == '/') {
		const char *c = p + 1, *end = strchrnul(c, '/');
		size_t n = (size_t)(end - c);

		if (!n)
			return "empty path component (\"//\" or a trailing \"/\")";
		if ((n == 1 && c[0] == '.') || (n == 2 && !strncmp(c, "..", 2)))
			return "\".\" and \"..\" are not allowed";
		if (memmem(c, n, "**", 2) && (n != 2 || *end))
			return "\"**\" must be a whole last component (\"/a/**\")";
		p = end;
	}
	return NULL;
}

bool weir_cgroup_pattern_match(const char *pattern, const char *rel)
{
	const char *p = pattern, *r = rel;

	while (*p == '/') {
		const char *pc = p + 1, *pend = strchrnul(pc, '/');
		const char *rc, *rend;
		char pbuf[256], rbuf[256];

		if (!strcmp(pc, "**"))
			return *r == '/' && r[1]; /* one or more components left */
		if (*r != '/' || !r[1])
			return false;
		rc = r + 1;
		rend = strchrnul(rc, '/');
		if ((size_t)(pend - pc) >= sizeof(pbuf) || (size_t)(rend - rc) >= sizeof(rbuf))
			return false;
		memcpy(pbuf, pc, (size_t)(pend - pc));
		pbuf[pend - pc] = '\0';
		memcpy(rbuf, rc, (size_t)(rend - rc));
		rbuf[rend - rc] = '\0';
		if (fnmatch(pbuf, rbuf, 0))
			return false;
		p = pend;
		r = rend;
	}
	return !*p && !*r;
}
