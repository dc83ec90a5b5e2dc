// SPDX-License-Identifier: Apache-2.0
/*
 * Per-endpoint conntrack maps (bpf/lib/conntrack.h). Each endpoint's LRU is created here at
 * attach, installed in its weir_ct slot and pinned as <bpffs>/weir/maps/weir_ct_<ep>: the pin
 * lets processes without CAP_SYS_ADMIN (weir-hook and weir-nri keep only what they need) read
 * it at detach, where a map id would not. The map is freed when both are gone: teardown
 * (detach, a failed attach) clears the slot and removes the pin, the gc sweep removes those of
 * ids nobody holds, and unload removes every pin of the maps folder. A weir-nri restart finds
 * slots and pins as they were. When something else removed a pin or changed a slot, check
 * tells, and restore makes them one map again (the registry calls it from attach and gc).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "ctx.h"
#include "log.h"
#include "util.h"

static int pin_path(const char *pin_dir, uint32_t ep, char *out, size_t size)
{
	return snprintf(out, size, "%s/weir_ct_%u", pin_dir, ep) >= (int)size ? -ENAMETOOLONG : 0;
}

int weir_ct_create(int outer, const char *pin_dir, uint32_t ep, uint32_t entries,
		   struct weir_error *err)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts);
	char name[16], pin[PATH_MAX] = "";
	int fd, r = 0;

	if (entries < WEIR_CT_MIN_ENTRIES || entries > WEIR_CT_MAX_ENTRIES)
		return weir_error_set(err, -EINVAL,
				      "endpoint %u: %u conntrack entries: expected %u to %u", ep,
				      entries, WEIR_CT_MIN_ENTRIES, WEIR_CT_MAX_ENTRIES);
	if (pin_dir && pin_path(pin_dir, ep, pin, sizeof(pin)))
		return weir_error_set(err, -ENAMETOOLONG, "%s: path too long", pin_dir);
	snprintf(name, sizeof(name), "weir_ct_%u", ep);
	fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, name, sizeof(struct weir_ct_key),
			    sizeof(struct weir_ct_val), entries, &opts);
	if (fd < 0)
		return weir_error_set(
			err, -errno,
			"cannot create the conntrack map of endpoint %u (%u entries): "
			"%s",
			ep, entries, strerror(errno));
	/* a pin left by an endpoint of this id that died unswept goes: this one is current */
	if (pin[0]) {
		unlink(pin);
		if (bpf_obj_pin(fd, pin))
			r = weir_error_set(err, -errno, "cannot pin %s: %s", pin, strerror(errno));
	}
	if (!r && bpf_map_update_elem(outer, &ep, &fd, BPF_ANY))
		r = weir_error_set(err, -errno,
				   "cannot install the conntrack map of endpoint %u: %s", ep,
				   strerror(errno));
	if (r && pin[0])
		unlink(pin);
	close(fd);
	return r;
}

void weir_ct_remove(int outer, const char *pin_dir, uint32_t ep)
{
	char pin[PATH_MAX];

	if (bpf_map_delete_elem(outer, &ep) && errno != ENOENT)
		pr_debug("endpoint %u: cannot clear its conntrack slot: %s", ep, strerror(errno));
	if (pin_dir && !pin_path(pin_dir, ep, pin, sizeof(pin)))
		unlink(pin);
}

int weir_ct_open(int outer, const char *pin_dir, uint32_t ep)
{
	char pin[PATH_MAX];
	uint32_t id;
	int fd;

	if (pin_dir && !pin_path(pin_dir, ep, pin, sizeof(pin))) {
		fd = bpf_obj_get(pin);
		return fd < 0 ? -errno : fd;
	}
	/* no pins (a private datapath, tests): by id, which needs CAP_SYS_ADMIN */
	if (bpf_map_lookup_elem(outer, &ep, &id))
		return -errno;
	fd = bpf_map_get_fd_by_id(id);
	return fd < 0 ? -errno : fd;
}

unsigned int weir_ct_sweep(int outer, const char *pin_dir, const bool *held)
{
	unsigned int n = 0;
	struct dirent *de;
	DIR *d;

	for (uint32_t ep = 1; ep < WEIR_MAX_ENDPOINTS; ep++) {
		uint32_t id;

		if (!held[ep] && !bpf_map_lookup_elem(outer, &ep, &id) &&
		    !bpf_map_delete_elem(outer, &ep))
			n++;
	}
	d = pin_dir ? opendir(pin_dir) : NULL;
	while (d && (de = readdir(d))) {
		char path[PATH_MAX];
		unsigned int ep;
		int end = 0;

		if (sscanf(de->d_name, "weir_ct_%u%n", &ep, &end) != 1 || de->d_name[end] ||
		    ep >= WEIR_MAX_ENDPOINTS || held[ep])
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", pin_dir, de->d_name) <
			    (int)sizeof(path) &&
		    !unlink(path))
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

static uint32_t map_id(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_map_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

int weir_ct_check(int outer, const char *pin_dir, uint32_t ep)
{
	char pin[PATH_MAX];
	uint32_t slot, pinned;
	int fd;

	if (bpf_map_lookup_elem(outer, &ep, &slot))
		return -errno;
	if (!pin_dir)
		return 0;
	if (pin_path(pin_dir, ep, pin, sizeof(pin)))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(pin);
	if (fd < 0)
		return -errno;
	pinned = map_id(fd);
	close(fd);
	return pinned == slot ? 0 : -ESTALE;
}

int weir_ct_restore(int outer, const char *pin_dir, uint32_t ep, uint32_t entries,
		    struct weir_error *err)
{
	char pin[PATH_MAX];
	uint32_t id;
	int fd, r;

	if (!pin_dir)
		return weir_ct_check(outer, NULL, ep)
			       ? weir_ct_create(outer, NULL, ep, entries, err)
			       : 0;
	if (pin_path(pin_dir, ep, pin, sizeof(pin)))
		return weir_error_set(err, -ENAMETOOLONG, "%s: path too long", pin_dir);
	/* the pinned map is the one weir made: the datapath gets it back, entries and all */
	fd = bpf_obj_get(pin);
	if (fd >= 0) {
		r = bpf_map_update_elem(outer, &ep, &fd, BPF_ANY) ? -errno : 0;
		close(fd);
		if (!r) {
			pr_warn("endpoint %u: weir_ct slot set again to the map pinned as %s", ep,
				pin);
			return 0;
		}
		pr_warn("endpoint %u: %s is no conntrack map weir_ct takes: %s", ep, pin,
			strerror(-r));
	}
	/* no usable pin: the slot's map, which the datapath tracks flows in, is pinned again */
	if (!bpf_map_lookup_elem(outer, &ep, &id)) {
		fd = bpf_map_get_fd_by_id(id);
		if (fd < 0)
			return weir_error_set(
				err, -errno,
				"endpoint %u: cannot open its conntrack map (id %u) to "
				"pin it again as %s: %s",
				ep, id, pin, strerror(errno));
		unlink(pin);
		r = bpf_obj_pin(fd, pin) ? -errno : 0;
		close(fd);
		if (r)
			return weir_error_set(err, r, "cannot pin %s: %s", pin, strerror(-r));
		pr_warn("endpoint %u: its conntrack map pinned again as %s", ep, pin);
		return 0;
	}
	pr_warn("endpoint %u: its conntrack map is gone (no slot, no pin): a new one, without the "
		"flows it tracked",
		ep);
	return weir_ct_create(outer, pin_dir, ep, entries, err);
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

int weir_ct_usage(int outer, const char *pin_dir, uint32_t ep, struct weir_ct_usage *out)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	struct weir_ct_key key, next;
	void *prev = NULL;
	int fd = weir_ct_open(outer, pin_dir, ep), r = 0;

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
