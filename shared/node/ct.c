// SPDX-License-Identifier: Apache-2.0
/*
 * Per-endpoint conntrack maps (bpf/lib/conntrack.h). Each endpoint's LRU is created here at
 * attach and lives only in its weir_ct slot: it is never pinned, so nothing of it appears in
 * bpffs, and clearing the slot (detach, gc sweep) or removing the pinned weir_ct (unload)
 * frees it. A weir-nri restart finds the slots as the pinned map keeps them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "ctx.h"
#include "log.h"
#include "util.h"

int weir_ct_create(int outer, uint32_t ep, uint32_t entries, struct weir_error *err)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts);
	char name[16];
	int fd, r = 0;

	if (entries < WEIR_CT_MIN_ENTRIES || entries > WEIR_CT_MAX_ENTRIES)
		return weir_error_set(err, -EINVAL,
				      "endpoint %u: %u conntrack entries: expected %u to %u", ep,
				      entries, WEIR_CT_MIN_ENTRIES, WEIR_CT_MAX_ENTRIES);
	snprintf(name, sizeof(name), "weir_ct_%u", ep);
	fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, name, sizeof(struct weir_ct_key),
			    sizeof(struct weir_ct_val), entries, &opts);
	if (fd < 0)
		return weir_error_set(
			err, -errno,
			"cannot create the conntrack map of endpoint %u (%u entries): "
			"%s",
			ep, entries, strerror(errno));
	/* the slot holds the map from here: closing our fd leaves it to the slot */
	if (bpf_map_update_elem(outer, &ep, &fd, BPF_ANY))
		r = weir_error_set(err, -errno,
				   "cannot install the conntrack map of endpoint %u: %s", ep,
				   strerror(errno));
	close(fd);
	return r;
}

void weir_ct_remove(int outer, uint32_t ep)
{
	if (bpf_map_delete_elem(outer, &ep) && errno != ENOENT)
		pr_debug("endpoint %u: cannot clear its conntrack slot: %s", ep, strerror(errno));
}

int weir_ct_open(int outer, uint32_t ep)
{
	uint32_t id;
	int fd;

	if (bpf_map_lookup_elem(outer, &ep, &id))
		return -errno;
	fd = bpf_map_get_fd_by_id(id);
	return fd < 0 ? -errno : fd;
}

/* The kernel's own figure for the map's memory (fdinfo memlock), 0 when it gives none. */
static uint64_t map_memory(int fd)
{
	char path[64], line[128];
	uint64_t v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %lu", &v) == 1)
			break;
	fclose(f);
	return v;
}

int weir_ct_usage(int outer, uint32_t ep, struct weir_ct_usage *out)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	struct weir_ct_key key, next;
	void *prev = NULL;
	int fd = weir_ct_open(outer, ep), r = 0;

	memset(out, 0, sizeof(*out));
	if (fd < 0)
		return fd;
	if (bpf_map_get_info_by_fd(fd, &info, &len)) {
		r = -errno;
		goto out;
	}
	out->budget = info.max_entries;
	out->memory = map_memory(fd);
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		out->entries++;
	}
	if (errno != ENOENT)
		r = -errno;
out:
	close(fd);
	return r;
}
