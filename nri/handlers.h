/* SPDX-License-Identifier: Apache-2.0 */
/*
 * weir-nri's lifecycle handlers: NRI events to libweir (annotations check, endpoint
 * attach/detach). Pods are remembered by id from RunPodSandbox and Synchronize, because the
 * runtime may send later events with a stripped pod.
 */
#ifndef WEIR_NRI_HANDLERS_H
#define WEIR_NRI_HANDLERS_H

#include "plugin.h"
#include "weir.h"

struct weir_nri;

int weir_nri_new(struct weir_nri **out, struct weir_ctx *ctx);
void weir_nri_free(struct weir_nri *w);

/* The handler table; pass the struct weir_nri as the user pointer. */
extern const struct nri_handlers weir_nri_handlers;

/*
 * OCI cgroupsPath (cgroupfs "/a/b/c" or systemd "slice:prefix:name") to a cgroup v2 directory
 * under root ("/sys/fs/cgroup"). Returns 0 or -EINVAL / -ENAMETOOLONG.
 */
int weir_nri_cgroup_dir(const char *cgroups_path, const char *root, char *out, size_t outsz);

#endif
