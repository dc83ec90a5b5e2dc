// SPDX-License-Identifier: Apache-2.0
/* weir status: is the datapath loaded, and what does this kernel let weir use. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "cli.h"
#include "ctx.h"
#include "events.h"
#include "log.h"
#include "util.h"

static const struct {
	enum bpf_prog_type type;
	const char *name;
	const char *used_for;
} probes[] = {
	{BPF_PROG_TYPE_CGROUP_SKB, "cgroup_skb", "packet policy and counters"},
	{BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup_sock_addr", "connect/sendmsg policy"},
	{BPF_PROG_TYPE_CGROUP_SOCK, "cgroup_sock", "socket guards"},
	{BPF_PROG_TYPE_CGROUP_SYSCTL, "cgroup_sysctl", "sysctl guard"},
	{BPF_PROG_TYPE_SOCK_OPS, "sock_ops", "TCP health"},
	{BPF_PROG_TYPE_SCHED_CLS, "sched_cls", "veth programs (tcx)"},
	{BPF_PROG_TYPE_TRACING, "tracing", "fentry/tp_btf"},
	{BPF_PROG_TYPE_LSM, "lsm", "BPF-LSM escape guards"},
};

static int count_running(struct weir_ctx *ctx, const char *id, struct json_object *rec, void *arg)
{
	size_t *n = arg;

	if (!strcmp(weir_json_str(rec, "state") ?: "", "running"))
		n[0]++;
	else
		n[1]++;
	return 0;
}

static bool prog_pinned(struct cli *cli, int i)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", cli->ctx->paths.progs, weir_progs[i].name);
	return access(path, F_OK) == 0;
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
	_cleanup_json_ struct json_object *o = json_object_new_object();
	struct json_object *kern = json_object_new_object();
	struct json_object *progs = json_object_new_array();
	struct weir_error err = {};
	size_t counts[2] = {0, 0};
	bool loaded;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			cli->json = true;
		} else {
			pr_err("status: unexpected argument \"%s\"", argv[i]);
			return 2;
		}
	}
	loaded = !weir_ctx_datapath(cli->ctx, false, &err);
	json_object_object_add(o, "datapath_loaded", json_object_new_boolean(loaded));
	json_object_object_add(o, "pin_root", json_object_new_string(cli->ctx->paths.root));
	if (!loaded)
		json_object_object_add(o, "datapath_reason", json_object_new_string(err.msg));
	for (int i = 0; i < WEIR_PROG_COUNT; i++) {
		struct json_object *p = json_object_new_object();

		json_object_object_add(p, "name", json_object_new_string(weir_progs[i].name));
		json_object_object_add(p, "hook", json_object_new_string(weir_progs[i].hook));
		json_object_object_add(
			p, "pinned", json_object_new_boolean(loaded && cli->ctx->dp.prog[i] >= 0));
		json_object_array_add(progs, p);
	}
	json_object_object_add(o, "programs", progs);

	for (size_t i = 0; i < WEIR_ARRAY_SIZE(probes); i++) {
		int r = libbpf_probe_bpf_prog_type(probes[i].type, NULL);
		struct json_object *p = json_object_new_object();

		json_object_object_add(p, "supported", json_object_new_boolean(r == 1));
		json_object_object_add(p, "used_for", json_object_new_string(probes[i].used_for));
		if (r < 0)
			json_object_object_add(p, "error", json_object_new_string(strerror(-r)));
		json_object_object_add(kern, probes[i].name, p);
	}
	json_object_object_add(o, "program_types", kern);
	weir_records_foreach(cli->ctx, count_running, counts);
	json_object_object_add(o, "endpoints_running", json_object_new_uint64(counts[0]));
	json_object_object_add(o, "endpoints_stopped", json_object_new_uint64(counts[1]));
	{
		struct json_object *node = NULL, *v;

		weir_node_stats(cli->ctx, &node);
		if (node && json_object_object_get_ex(node, "events_sent", &v))
			json_object_object_add(o, "events_sent", json_object_get(v));
		if (node && json_object_object_get_ex(node, "events_lost", &v))
			json_object_object_add(o, "events_lost", json_object_get(v));
		if (node && json_object_object_get_ex(node, "kernel_drop_reasons", &v))
			json_object_object_add(o, "kernel_drop_reasons", json_object_get(v));
		json_object_put(node);
	}

	if (cli->json) {
		cli_print_json(o);
		return 0;
	}
	printf("datapath:  %s (%s)\n", loaded ? "loaded" : "not loaded", cli->ctx->paths.root);
	if (!loaded)
		printf("           %s\n", err.msg);
	for (int i = 0; i < WEIR_PROG_COUNT; i++)
		printf("  %-16s %-20s %s\n", weir_progs[i].name, weir_progs[i].hook,
		       !loaded		     ? "-"
		       : prog_pinned(cli, i) ? "pinned"
					     : "not loaded (refused by this kernel)");
	printf("endpoints: %zu running, %zu stopped (records kept %llu s)\n", counts[0], counts[1],
	       (unsigned long long)cli->ctx->cfg.stopped_retention_s);
	if (loaded) {
		struct json_object *v;

		printf("events:    %llu delivered, %llu lost (ring buffer full or no reader)\n",
		       (unsigned long long)weir_json_u64(o, "events_sent"),
		       (unsigned long long)weir_json_u64(o, "events_lost"));
		json_object_object_get_ex(o, "kernel_drop_reasons", &v);
		printf("kernel drop reasons: %s\n",
		       json_object_get_boolean(v)
			       ? "counted (tp_btf/kfree_skb)"
			       : "unavailable (no kernel BTF or tp_btf refused)");
	}
	printf("kernel program types:\n");
	json_object_object_foreach (kern, name, p) {
		struct json_object *s;

		json_object_object_get_ex(p, "supported", &s);
		printf("  %-18s %-4s %s\n", name, json_object_get_boolean(s) ? "yes" : "no",
		       weir_json_str(p, "used_for"));
	}
	return 0;
}
