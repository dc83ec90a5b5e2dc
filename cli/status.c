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
#include "config.h"
#include "stats.h"
#include "events.h"
#include "log.h"
#include "util.h"

/*
 * The program types weir's datapath is made of (bpf/), and nothing it does not use. Not
 * tracing: libbpf probes that type with an fentry program, which weir does not use (this
 * kernel may refuse fentry and load tp_btf); whether tp_btf/kfree_skb loaded shows in the
 * program list and the "kernel drop reasons" line. An lsm type the kernel loads is not yet
 * BPF-LSM that runs: the guards section says whether it does.
 */
static const struct {
	enum bpf_prog_type type;
	const char *name;
	const char *used_for;
} probes[] = {
	{BPF_PROG_TYPE_CGROUP_SKB, "cgroup_skb", "packet policy and counters"},
	{BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup_sock_addr", "connect/sendmsg policy"},
	{BPF_PROG_TYPE_SOCK_OPS, "sock_ops", "TCP health and flows"},
	{BPF_PROG_TYPE_CGROUP_SOCK, "cgroup_sock", "raw-sockets guard (IPv4/IPv6)"},
	{BPF_PROG_TYPE_CGROUP_SYSCTL, "cgroup_sysctl", "sysctl guard"},
	{BPF_PROG_TYPE_RAW_TRACEPOINT, "raw_tracepoint", "escape detection, guard arming"},
	{BPF_PROG_TYPE_LSM, "lsm", "BPF-LSM prevention (escape enforce, paths)"},
};

int cmd_status(struct cli *cli, int argc, char **argv)
{
	_cleanup_json_ struct json_object *o = json_object_new_object();
	struct json_object *kern = json_object_new_object();
	struct json_object *progs = json_object_new_array();
	struct weir_datapath_status dp;
	struct weir_node_view node;
	bool loaded;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			cli->json = true;
		} else {
			pr_err("status: unexpected argument \"%s\"", argv[i]);
			return 2;
		}
	}
	weir_datapath_status(cli->ctx, &dp);
	loaded = dp.loaded;
	json_object_object_add(o, "datapath_loaded", json_object_new_boolean(loaded));
	json_object_object_add(o, "pin_root", json_object_new_string(dp.pin_root));
	if (!loaded)
		json_object_object_add(o, "datapath_reason", json_object_new_string(dp.reason));
	for (size_t i = 0; i < dp.nprogs; i++) {
		struct json_object *p = json_object_new_object();

		json_object_object_add(p, "name", json_object_new_string(dp.progs[i].name));
		json_object_object_add(p, "hook", json_object_new_string(dp.progs[i].hook));
		json_object_object_add(p, "pinned", json_object_new_boolean(dp.progs[i].pinned));
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
	weir_node_view_read(cli->ctx, &node);
	json_object_object_add(o, "endpoints_running",
			       json_object_new_uint64(node.endpoints_running));
	json_object_object_add(o, "endpoints_stopped",
			       json_object_new_uint64(node.endpoints_stopped));
	if (node.events_known) {
		json_object_object_add(o, "events_sent", json_object_new_uint64(node.events_sent));
		json_object_object_add(o, "events_lost", json_object_new_uint64(node.events_lost));
	}
	if (node.guard_events_known) {
		json_object_object_add(o, "guard_events_sent",
				       json_object_new_uint64(node.guard_events_sent));
		json_object_object_add(o, "guard_events_lost",
				       json_object_new_uint64(node.guard_events_lost));
	}
	if (loaded) {
		json_object_object_add(o, "kernel_drop_reasons",
				       json_object_new_boolean(node.drop_reasons));
		/* null: the datapath was pinned by a weir that did not record it */
		json_object_object_add(o, "socket_verdicts",
				       node.sk_verdicts == WEIR_SK_VERDICTS_UNKNOWN
					       ? NULL
					       : json_object_new_boolean(node.sk_verdicts));
	}

	if (cli->json) {
		status_guards(cli, loaded, o);
		cli_print_json(o);
		return 0;
	}
	printf("datapath:  %s (%s)\n", loaded ? "loaded" : "not loaded", dp.pin_root);
	if (!loaded)
		printf("           %s\n", dp.reason);
	for (size_t i = 0; i < dp.nprogs; i++)
		printf("  %-16s %-20s %s\n", dp.progs[i].name, dp.progs[i].hook,
		       !loaded		    ? "-"
		       : dp.progs[i].pinned ? "pinned"
					    : "not loaded (refused by this kernel)");
	printf("endpoints: %llu running, %llu stopped (records kept %llu s)\n",
	       (unsigned long long)node.endpoints_running,
	       (unsigned long long)node.endpoints_stopped,
	       (unsigned long long)weir_ctx_config(cli->ctx)->stopped_retention_s);
	if (loaded) {
		printf("events:    %llu delivered, %llu lost (ring buffer full or no reader)\n",
		       (unsigned long long)node.events_sent, (unsigned long long)node.events_lost);
		printf("kernel drop reasons: %s\n",
		       node.drop_reasons ? "counted (tp_btf/kfree_skb)"
					 : "unavailable (no kernel BTF or tp_btf refused)");
		printf("per-socket verdicts: %s\n",
		       node.sk_verdicts == WEIR_SK_VERDICTS_ON
			       ? "in use (a socket's next packets of an allowed flow skip the "
				 "lookups)"
		       : node.sk_verdicts == WEIR_SK_VERDICTS_OFF
			       ? "off (this kernel's verifier refuses them: every packet takes the "
				 "conntrack path)"
			       : "unknown (the datapath was pinned by a weir that does not record "
				 "it)");
	}
	status_guards(cli, loaded, o);
	printf("kernel program types:\n");
	json_object_object_foreach (kern, name, p) {
		struct json_object *s;

		json_object_object_get_ex(p, "supported", &s);
		printf("  %-18s %-4s %s\n", name, json_object_get_boolean(s) ? "yes" : "no",
		       weir_json_str(p, "used_for"));
	}
	return 0;
}
