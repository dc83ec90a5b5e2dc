// SPDX-License-Identifier: Apache-2.0
/* weir status: what each security guard can do on this node, and why not where it cannot. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "config.h"
#include "guard.h"
#include "util.h"

struct avail {
	const char *guard;
	bool ok;
	char how[320];
};

static void call_list(uint32_t calls, char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned int k = 1; k < WEIR_CALLS; k++)
		if (calls & (1U << k))
			off += (size_t)snprintf(buf + off, off < size ? size - off : 0, "%s%s",
						off ? "," : "", weir_call_name(k));
}

/* Each guard's availability, from what the pinned datapath holds (caps). */
static size_t describe(const struct weir_guard_caps *c, struct avail *a)
{
	const char *lsm = c->lsm_per_cgroup ? "BPF-LSM, per cgroup" : "BPF-LSM, once per node";
	char covered[160], missing[160];
	size_t n = 0;

	call_list(c->lsm_calls, covered, sizeof(covered));
	call_list(((1U << WEIR_CALLS) - 2) & ~c->lsm_calls, missing, sizeof(missing));

	a[n].guard = "raw-sockets";
	a[n].ok = c->cgroup;
	snprintf(a[n++].how, sizeof(a->how), "raw IPv4/IPv6: %s; other families: %s",
		 c->cgroup ? "refused with EPERM (cgroup/sock_create)" : "unavailable",
		 c->lsm && c->lsm_socket ? "refused with EPERM (BPF-LSM socket_create)"
		 : c->tracing && c->fallback_kill
			 ? "killed at socket() entry (no BPF-LSM; lsm_fallback kill)"
		 : c->tracing ? "audit only (enforce needs BPF-LSM)"
			      : "unavailable");
	a[n].guard = "bind";
	a[n].ok = c->cgroup;
	snprintf(a[n++].how, sizeof(a->how), "%s",
		 c->cgroup ? "refused with EPERM (cgroup/bind4, cgroup/bind6)"
			   : "unavailable: the kernel refused cgroup/bind4 or bind6");
	a[n].guard = "sysctl";
	a[n].ok = c->cgroup;
	snprintf(a[n++].how, sizeof(a->how), "%s",
		 c->cgroup ? "refused with EPERM (cgroup/sysctl)"
			   : "unavailable: the kernel refused cgroup/sysctl");
	a[n].guard = "escape";
	a[n].ok = c->tracing;
	if (!c->tracing)
		snprintf(a[n].how, sizeof(a->how),
			 "unavailable: the kernel refused raw_tp/sys_enter (no BTF?)");
	else if (c->lsm)
		snprintf(a[n].how, sizeof(a->how),
			 "audit, kill (%s, SIGKILL); enforce: refused with EPERM (%s) for %s%s%s",
			 c->escape_fentry ? "fentry per syscall" : "raw_tp/sys_enter", lsm, covered,
			 *missing ? "; killed at syscall entry for " : "", missing);
	else
		snprintf(a[n].how, sizeof(a->how), "audit, kill (%s, SIGKILL); enforce: %s",
			 c->escape_fentry ? "fentry per syscall" : "raw_tp/sys_enter",
			 c->fallback_kill ? "runs as kill (no BPF-LSM; lsm_fallback kill)"
					  : "refused (needs BPF-LSM; lsm_fallback refuse)");
	n++;
	a[n].guard = "paths";
	a[n].ok = c->lsm && c->lsm_file_open;
	snprintf(a[n].how, sizeof(a->how), "%s",
		 a[n].ok ? "refused with EPERM (BPF-LSM file_open)"
			 : "unavailable: needs BPF-LSM (no fallback)");
	n++;
	a[n].guard = "port-scan";
	a[n].ok = true;
	snprintf(a[n++].how, sizeof(a->how), "counted in cgroup_skb; quarantine drops egress");
	return n;
}

void status_guards(struct cli *cli, bool loaded, struct json_object *o)
{
	struct json_object *gj = json_object_new_object(), *lj = json_object_new_object();
	struct weir_guard_caps caps;
	struct avail a[WEIR_GUARDS];
	char why[256];
	size_t n = 0;

	if (loaded) {
		weir_guard_caps_of(cli->ctx, &caps, why, sizeof(why));
		n = describe(&caps, a);
		json_object_object_add(lj, "available", json_object_new_boolean(caps.lsm));
		if (caps.lsm)
			json_object_object_add(
				lj, "attach",
				json_object_new_string(caps.lsm_per_cgroup ? "cgroup" : "node"));
		else
			json_object_object_add(lj, "reason",
					       json_object_new_string(caps.why_no_lsm ?: "?"));
	}
	json_object_object_add(lj, "fallback",
			       json_object_new_string(weir_ctx_config(cli->ctx)->lsm_fallback_kill
							      ? "kill"
							      : "refuse"));
	for (size_t i = 0; i < n; i++) {
		struct json_object *g = json_object_new_object();

		json_object_object_add(g, "available", json_object_new_boolean(a[i].ok));
		json_object_object_add(g, "how", json_object_new_string(a[i].how));
		json_object_object_add(gj, a[i].guard, g);
	}
	json_object_object_add(o, "guards", gj);
	json_object_object_add(o, "lsm", lj);
	if (loaded && caps.tracing) {
		struct json_object *ej = json_object_new_object();

		json_object_object_add(
			ej, "path",
			json_object_new_string(caps.escape_fentry ? "fentry" : "raw_tp/sys_enter"));
		if (caps.escape_fentry)
			json_object_object_add(ej, "entry_functions",
					       json_object_new_uint64(caps.escape_entries));
		else
			json_object_object_add(ej, "reason",
					       json_object_new_string(caps.why_no_fentry));
		json_object_object_add(o, "escape_detection", ej);
	}
	if (cli->json)
		return;
	if (!loaded) {
		printf("guards:    decided when the datapath loads (see kernel program types)\n");
		return;
	}
	printf("guards:\n");
	for (size_t i = 0; i < n; i++)
		printf("  %-12s %s\n", a[i].guard, a[i].how);
	if (caps.tracing && caps.escape_fentry)
		printf("escape detection: fentry per syscall (%u entry functions; other syscalls "
		       "pay nothing)\n",
		       caps.escape_entries);
	else if (caps.tracing)
		printf("escape detection: raw_tp/sys_enter (every syscall of the node pays while "
		       "attached): %s\n",
		       caps.why_no_fentry);
	if (caps.lsm)
		printf("BPF-LSM:   in use (%s)\n",
		       caps.lsm_per_cgroup ? "attached per cgroup" : "attached once per node");
	else
		printf("BPF-LSM:   unavailable: %s; lsm_fallback %s\n", caps.why_no_lsm ?: "?",
		       weir_ctx_config(cli->ctx)->lsm_fallback_kill ? "kill" : "refuse");
	printf("guard events: %llu delivered, %llu lost (ring buffer full or no reader)\n",
	       (unsigned long long)weir_json_u64(o, "guard_events_sent"),
	       (unsigned long long)weir_json_u64(o, "guard_events_lost"));
}
