// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "annot.h"
#include "cli.h"
#include "ctx.h"
#include "log.h"
#include "util.h"

/* Parse command-local "--json" so it works on either side of the command name. */
static int local_opts(struct cli *cli, int argc, char **argv, const char *usage_line)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	int opt;

	optind = 0; /* 0: glibc re-initialises for a new argv */
	while ((opt = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		if (opt == 'j') {
			cli->json = true;
		} else {
			fprintf(opt == 'h' ? stdout : stderr, "usage: %s\n", usage_line);
			return opt == 'h' ? 1 : -EINVAL;
		}
	}
	return 0;
}

/* ---- list ---------------------------------------------------------------------------- */

int cmd_list(struct cli *cli, int argc, char **argv)
{
	_cleanup_json_ struct json_object *all = json_object_new_array();
	_cleanup_json_ struct json_object *out = json_object_new_array();
	int r = local_opts(cli, argc, argv, "weir list [--json]");

	if (r)
		return r > 0 ? 0 : 2;
	r = weir_records_all(cli->ctx, all);
	if (r) {
		pr_err("cannot read %s: %s", cli->ctx->containers_dir, strerror(-r));
		return 1;
	}
	for (size_t i = 0; i < json_object_array_length(all); i++)
		json_object_array_add(out, weir_record_summary(json_object_array_get_idx(all, i)));
	if (cli->json) {
		cli_print_json(out);
		return 0;
	}
	printf("%-16s %-20s %8s %-8s %-8s %s\n", "ID", "NAME", "ENDPOINT", "STATE", "MODE",
	       "CGROUP");
	for (size_t i = 0; i < json_object_array_length(out); i++) {
		struct json_object *o = json_object_array_get_idx(out, i);

		printf("%-16.16s %-20.20s %8" PRIu64 " %-8s %-8s %s\n",
		       weir_json_str(o, "id") ?: "-", weir_json_str(o, "name") ?: "-",
		       weir_json_u64(o, "endpoint"), weir_json_str(o, "state") ?: "-",
		       weir_json_str(o, "mode") ?: "-", weir_json_str(o, "cgroup") ?: "-");
	}
	return 0;
}

/* ---- stats --------------------------------------------------------------------------- */

static void print_hist_text(const char *what, struct json_object *h)
{
	uint64_t n = weir_json_u64(h, "count");

	if (!n) {
		printf("  %-17s no samples\n", what);
		return;
	}
	printf("  %-17s p50 <= %" PRIu64 " us, p99 <= %" PRIu64 " us, mean %" PRIu64 " us, %" PRIu64
	       " samples\n",
	       what, weir_json_u64(h, "p50_us"), weir_json_u64(h, "p99_us"),
	       weir_json_u64(h, "sum_us") / n, n);
}

static void print_tcp_text(struct json_object *s)
{
	struct json_object *t, *h, *drops;

	if (json_object_object_get_ex(s, "tcp", &t)) {
		printf("  tcp: %" PRIu64 " opened (%" PRIu64 " active, %" PRIu64
		       " passive), %" PRIu64 " failed connects, resets %" PRIu64 " sent %" PRIu64
		       " received, %" PRIu64 " retransmits\n",
		       weir_json_u64(t, "active_opens") + weir_json_u64(t, "passive_opens"),
		       weir_json_u64(t, "active_opens"), weir_json_u64(t, "passive_opens"),
		       weir_json_u64(t, "failed_connects"), weir_json_u64(t, "resets_sent"),
		       weir_json_u64(t, "resets_received"), weir_json_u64(t, "retransmits"));
		if (json_object_object_get_ex(t, "connect_latency_us", &h))
			print_hist_text("connect latency", h);
		if (json_object_object_get_ex(t, "srtt_us", &h))
			print_hist_text("smoothed RTT", h);
	}
	if (json_object_object_get_ex(s, "kernel_drops", &drops) &&
	    json_object_object_length(drops)) {
		printf("  kernel drops:");
		json_object_object_foreach (drops, reason, v) {
			printf(" %s=%" PRIu64, reason, (uint64_t)json_object_get_uint64(v));
		}
		printf("\n");
	}
}

static void print_stats_text(struct json_object *s)
{
	static const char *const dirs[] = {"egress", "ingress"};
	static const char *const rows[] = {"tcp",	  "udp", "icmp", "other", "policy_dropped",
					   "audit_denied"};

	printf("%s", weir_json_str(s, "id") ?: "?");
	if (weir_json_str(s, "name"))
		printf(" (%s)", weir_json_str(s, "name"));
	printf("  endpoint %" PRIu64 "  %s  %s\n", weir_json_u64(s, "endpoint"),
	       weir_json_str(s, "state") ?: "?", weir_json_str(s, "mode") ?: "?");
	printf("  %-8s %-15s %14s %16s\n", "DIR", "WHAT", "PACKETS", "BYTES");
	for (size_t d = 0; d < 2; d++) {
		struct json_object *dj, *v;

		if (!json_object_object_get_ex(s, dirs[d], &dj))
			continue;
		for (size_t i = 0; i < WEIR_ARRAY_SIZE(rows); i++) {
			if (!json_object_object_get_ex(dj, rows[i], &v))
				continue;
			printf("  %-8s %-15s %14" PRIu64 " %16" PRIu64 "\n", dirs[d], rows[i],
			       weir_json_u64(v, "packets"), weir_json_u64(v, "bytes"));
		}
		printf("  %-8s %-15s %14" PRIu64 "\n", dirs[d], "denied_connects",
		       weir_json_u64(dj, "denied_connects"));
		if (weir_json_u64(dj, "audit_denied_connects"))
			printf("  %-8s %-15s %14" PRIu64 "\n", dirs[d], "audit_connects",
			       weir_json_u64(dj, "audit_denied_connects"));
	}
	print_tcp_text(s);
}

int cmd_stats(struct cli *cli, int argc, char **argv)
{
	_cleanup_json_ struct json_object *all = json_object_new_array();
	_cleanup_json_ struct json_object *out = json_object_new_array();
	struct weir_drops drops __attribute__((cleanup(weir_drops_free))) = {};
	const char *want = NULL;
	size_t matches = 0;
	int r = local_opts(cli, argc, argv, "weir stats [--json] [ID]");

	if (r)
		return r > 0 ? 0 : 2;
	if (optind < argc)
		want = argv[optind++];
	if (optind < argc) {
		pr_err("stats: unexpected argument \"%s\"", argv[optind]);
		return 2;
	}
	r = weir_records_all(cli->ctx, all);
	if (r) {
		pr_err("cannot read %s: %s", cli->ctx->containers_dir, strerror(-r));
		return 1;
	}
	weir_stats_drops(cli->ctx, &drops);
	for (size_t i = 0; i < json_object_array_length(all); i++) {
		struct json_object *rec = json_object_array_get_idx(all, i);
		const char *id = weir_json_str(rec, "id") ?: "";
		const char *name = weir_json_str(rec, "name");

		if (want && strncmp(id, want, strlen(want)) && (!name || strcmp(name, want)))
			continue;
		/* an exact id match wins over prefixes */
		if (want && !strcmp(id, want)) {
			json_object_put(out);
			out = json_object_new_array();
			json_object_array_add(out, weir_stats_of(cli->ctx, rec, &drops));
			matches = 1;
			break;
		}
		json_object_array_add(out, weir_stats_of(cli->ctx, rec, &drops));
		matches++;
	}
	if (want && matches == 0) {
		pr_err("stats: no endpoint matches \"%s\"", want);
		return 1;
	}
	if (want && matches > 1) {
		pr_err("stats: \"%s\" matches %zu endpoints: give more of the id", want, matches);
		return 1;
	}
	if (cli->json) {
		cli_print_json(want ? json_object_array_get_idx(out, 0) : out);
		return 0;
	}
	for (size_t i = 0; i < json_object_array_length(out); i++)
		print_stats_text(json_object_array_get_idx(out, i));
	return 0;
}

/* ---- policy check -------------------------------------------------------------------- */

int cmd_policy(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"annotation", required_argument, NULL, 'a'},
		{"container", required_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	static const char usage_line[] =
		"weir policy check [--container NAME] -a KEY=VALUE [-a KEY=VALUE ...]";
	_cleanup_free_ struct weir_kv *kv = NULL;
	_cleanup_free_ struct weir_kv *res = NULL;
	const char *ctr_name = NULL;
	struct weir_error err = {};
	struct weir_compiled comp;
	struct weir_spec spec;
	size_t n = 0, nres = 0;
	int opt, r;

	if (argc < 2 || strcmp(argv[1], "check")) {
		fprintf(stderr, "usage: %s\n", usage_line);
		return 2;
	}
	argc--;
	argv++;
	optind = 0; /* 0: glibc re-initialises for a new argv */
	while ((opt = getopt_long(argc, argv, "a:n:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'a': {
			char *eq = strchr(optarg, '=');
			struct weir_kv *nkv;

			if (!eq || eq == optarg) {
				pr_err("-a \"%s\": expected KEY=VALUE", optarg);
				return 2;
			}
			*eq = '\0';
			nkv = realloc(kv, (n + 1) * sizeof(*kv));
			if (!nkv)
				return 1;
			kv = nkv;
			kv[n].key = optarg;
			kv[n].value = eq + 1;
			n++;
			break;
		}
		case 'n':
			ctr_name = optarg;
			break;
		case 'j':
			cli->json = true;
			break;
		case 'h':
			printf("usage: %s\n", usage_line);
			return 0;
		default:
			fprintf(stderr, "usage: %s\n", usage_line);
			return 2;
		}
	}
	if (optind < argc || !n) {
		fprintf(stderr, "usage: %s\n", usage_line);
		return 2;
	}
	r = weir_annotations_resolve(NULL, 0, kv, n, ctr_name, &res, &nres, &err);
	if (!r)
		r = weir_spec_parse(&cli->ctx->cfg, res, nres, &spec, &err);
	if (r) {
		pr_err("%s", err.msg);
		return 1;
	}
	r = weir_policy_compile(&spec.policy, &comp, &err);
	if (r) {
		weir_spec_free(&spec);
		pr_err("%s", err.msg);
		return 1;
	}
	if (cli->json) {
		_cleanup_json_ struct json_object *o = json_object_new_object();

		json_object_object_add(o, "valid", json_object_new_boolean(true));
		json_object_object_add(o, "weir_annotations", json_object_new_boolean(spec.any));
		json_object_object_add(o, "mode",
				       json_object_new_string(spec.audit ? "audit" : "enforce"));
		json_object_object_add(o, "egress_rules",
				       json_object_new_uint64(spec.policy.dir[WEIR_EGRESS].nrules));
		json_object_object_add(
			o, "ingress_rules",
			json_object_new_uint64(spec.policy.dir[WEIR_INGRESS].nrules));
		json_object_object_add(o, "map_entries", json_object_new_uint64(comp.n));
		cli_print_json(o);
	} else if (!spec.any) {
		printf("ok: no weir annotations (weir leaves this container alone)\n");
	} else {
		printf("ok: %s, egress %s (%zu rules), ingress %s (%zu rules), %zu map entries\n",
		       spec.audit ? "audit" : "enforce",
		       spec.policy.dir[WEIR_EGRESS].present ? "default-deny" : "open",
		       spec.policy.dir[WEIR_EGRESS].nrules,
		       spec.policy.dir[WEIR_INGRESS].present ? "default-deny" : "open",
		       spec.policy.dir[WEIR_INGRESS].nrules, comp.n);
	}
	weir_compiled_free(&comp);
	weir_spec_free(&spec);
	return 0;
}

/* ---- gc ------------------------------------------------------------------------------ */

int cmd_gc(struct cli *cli, int argc, char **argv)
{
	struct weir_gc_report rep;
	struct weir_error err = {};
	int r = local_opts(cli, argc, argv, "weir gc [--json]");

	if (r)
		return r > 0 ? 0 : 2;
	r = weir_gc(cli->ctx, &rep, &err);
	if (r) {
		pr_err("gc: %s", err.msg);
		return 1;
	}
	if (cli->json) {
		_cleanup_json_ struct json_object *o = json_object_new_object();

		json_object_object_add(o, "detached", json_object_new_uint64(rep.detached));
		json_object_object_add(o, "expired", json_object_new_uint64(rep.expired));
		json_object_object_add(o, "orphans", json_object_new_uint64(rep.orphans));
		json_object_object_add(o, "stale_entries",
				       json_object_new_uint64(rep.stale_entries));
		cli_print_json(o);
	} else {
		printf("gc: %u endpoints of vanished containers detached, %u expired records "
		       "removed, %u orphans cleaned, %u stale map entries deleted\n",
		       rep.detached, rep.expired, rep.orphans, rep.stale_entries);
	}
	return 0;
}

/* ---- unload -------------------------------------------------------------------------- */

int cmd_unload(struct cli *cli, int argc, char **argv)
{
	struct weir_error err = {};
	int r = local_opts(cli, argc, argv, "weir unload");

	if (r)
		return r > 0 ? 0 : 2;
	if (optind < argc) {
		pr_err("unload: unexpected argument \"%s\"", argv[optind]);
		return 2;
	}
	/* the context holds pinned fds open: let them go before the pins do */
	if (cli->ctx->dp_open) {
		weir_datapath_close(&cli->ctx->dp);
		cli->ctx->dp_open = false;
	}
	r = weir_datapath_unload(&cli->ctx->cfg, &err);
	if (r) {
		pr_err("unload: %s", err.msg);
		return 1;
	}
	printf("weir datapath unloaded from %s\n", cli->ctx->paths.root);
	return 0;
}
