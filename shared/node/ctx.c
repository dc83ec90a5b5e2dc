// SPDX-License-Identifier: Apache-2.0
/* The node context: configuration, paths, and the datapath opened once per context. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot.h"
#include "ctx.h"
#include "log.h"
#include "util.h"

static int state_path(const struct weir_config *cfg, const char *name, char *out, size_t size)
{
	return snprintf(out, size, "%s/%s", cfg->state_dir, name) >= (int)size ? -ENAMETOOLONG : 0;
}

int weir_ctx_open(struct weir_ctx **out, const char *config_path, struct weir_error *err)
{
	struct weir_ctx *ctx = calloc(1, sizeof(*ctx));
	int r;

	if (!ctx)
		return weir_error_set(err, -ENOMEM, "out of memory");
	r = weir_config_load(&ctx->cfg, config_path ? config_path : WEIR_DEFAULT_CONFIG,
			     config_path != NULL, err);
	if (r)
		goto fail;
	if (ctx->cfg.log_level_set)
		weir_log_set_level(ctx->cfg.log_level);
	r = weir_paths_init(&ctx->paths, &ctx->cfg);
	if (!r)
		r = state_path(&ctx->cfg, "containers", ctx->containers_dir,
			       sizeof(ctx->containers_dir));
	if (!r)
		r = state_path(&ctx->cfg, "ids", ctx->ids_dir, sizeof(ctx->ids_dir));
	if (!r)
		r = state_path(&ctx->cfg, "keys", ctx->keys_dir, sizeof(ctx->keys_dir));
	if (r) {
		weir_error_set(err, r, "configured paths are too long");
		goto fail;
	}
	*out = ctx;
	return 0;
fail:
	weir_config_release(&ctx->cfg);
	free(ctx);
	return r;
}

void weir_ctx_close(struct weir_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->dp_open)
		weir_datapath_close(&ctx->dp);
	weir_config_release(&ctx->cfg);
	free(ctx);
}

int weir_ctx_datapath(struct weir_ctx *ctx, bool load, struct weir_error *err)
{
	int r;

	if (ctx->dp_open)
		return 0;
	r = weir_datapath_open(&ctx->dp, &ctx->cfg, load, err);
	if (!r)
		ctx->dp_open = true;
	return r;
}

int weir_ctx_lock(struct weir_ctx *ctx, const char *name, bool wait, struct weir_error *err)
{
	char path[PATH_MAX];

	if (state_path(&ctx->cfg, name, path, sizeof(path)))
		return weir_error_set(err, -ENAMETOOLONG, "lock path too long");
	return weir_lock_file(path, wait, err);
}

int weir_annotations_check(struct weir_ctx *ctx, const struct weir_kv *kv, size_t n,
			   struct weir_error *err)
{
	return weir_spec_check(&ctx->cfg, kv, n, err);
}

const struct weir_config *weir_ctx_config(const struct weir_ctx *ctx)
{
	return &ctx->cfg;
}

int weir_datapath_ensure(struct weir_ctx *ctx, struct weir_error *err)
{
	return weir_ctx_datapath(ctx, true, err);
}

int weir_node_unload(struct weir_ctx *ctx, struct weir_error *err)
{
	/* no attach may start between the check for endpoints and the unpinning */
	_cleanup_close_ int lock = weir_registry_lock(ctx, err);

	if (lock < 0)
		return lock;
	/* the context holds pinned fds open: let them go before the pins do */
	if (ctx->dp_open) {
		weir_datapath_close(&ctx->dp);
		ctx->dp_open = false;
	}
	return weir_datapath_unload(&ctx->cfg, err);
}

void weir_datapath_status(struct weir_ctx *ctx, struct weir_datapath_status *out)
{
	struct weir_error err = {};

	memset(out, 0, sizeof(*out));
	out->loaded = !weir_ctx_datapath(ctx, false, &err);
	if (!out->loaded)
		snprintf(out->reason, sizeof(out->reason), "%s", err.msg);
	out->pin_root = ctx->paths.root;
	for (int i = 0; i < WEIR_PROG_COUNT && out->nprogs < WEIR_ARRAY_SIZE(out->progs); i++) {
		struct weir_prog_status *p = &out->progs[out->nprogs++];

		p->name = weir_progs[i].name;
		p->hook = weir_progs[i].hook;
		p->pinned = out->loaded && ctx->dp.prog[i] >= 0;
	}
}

int weir_annotations_check_ns(struct weir_ctx *ctx, const char *pod_namespace,
			      const struct weir_kv *kv, size_t n, struct weir_error *err)
{
	return weir_spec_check_for(&ctx->cfg, kv, n, pod_namespace, err);
}

bool weir_baseline_present(struct weir_ctx *ctx)
{
	return weir_config_has_baseline(&ctx->cfg);
}
