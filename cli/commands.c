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
#include "config.h"
#include "record.h"
#include "stats.h"
#include "log.h"
#include "util.h"

/*
 * Parse command-local "--json" so it works on either side of the command name, and "--ids"
 * where the command takes it (ids non-NULL).
 */
static int local_opts(struct cli *cli, int argc, char **argv, const char *usage_line, bool *ids)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"ids", no_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	int opt;

	optind = 0; /* 0: glibc re-initialises for a new argv */
	while ((opt = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		if (opt == 'j') {
			cli->json = true;
		} else if (opt == 'i' && ids) {
			*ids = true;
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
	struct weir_ep_views views __attribute__((cleanup(weir_views_free))) = {};
	bool ids = false;
	int r = local_opts(cli, argc, argv, "weir list [--json] [--ids]", &ids);

	if (r)
		return r > 0 ? 0 : 2;
	r = weir_views_collect(cli->ctx, false, &views);
	if (r) {
		pr_err("cannot read %s: %s", weir_ctx_config(cli->ctx)->state_dir, strerror(-r));
		return 1;
	}
	if (ids) {
		/* every id and name, one a line: what shell completion offers for ID|NAME */
		for (size_t i = 0; i < views.n; i++) {
			printf("%s\n", views.v[i].id);
			if (views.v[i].name)
				printf("%s\n", views.v[i].name);
		}
		return 0;
	}
	if (cli->json) {
		_cleanup_json_ struct json_object *out = json_object_new_array();

		for (size_t i = 0; i < views.n; i++)
			json_object_array_add(out, weir_view_summary_json(&views.v[i]));
		cli_print_json(out);
		return 0;
	}
	printf("%-16s %-20s %8s %-9s %-8s %s\n", "ID", "NAME", "ENDPOINT", "STATE", "MODE",
	       "CGROUP");
	for (size_t i = 0; i < views.n; i++) {
		const struct weir_ep_view *v = &views.v[i];

		printf("%-16.16s %-20.20s %8" PRIu32 " %-9s %-8s %s\n", v->id, v->name ?: "-",
		       v->endpoint, weir_view_state_name(v->state),
		       v->state == WEIR_VIEW_UNKNOWN ? "-" : v->audit ? "audit" : "enforce",
		       v->cgroup ?: v->error ?: "-");
	}
	return 0;
}

/* ---- stats --------------------------------------------------------------------------- */

static void print_hist_text(const char *what, const struct weir_hist *h)
{
	uint64_t n = weir_hist_count(h);

	if (!n) {
		printf("  %-17s no samples\n", what);
		return;
	}
	printf("  %-17s p50 %.0f us, p99 %.0f us, mean %" PRIu64 " us, %" PRIu64 " samples\n", what,
	       weir_hist_quantile(h, 0.5), weir_hist_quantile(h, 0.99), (uint64_t)h->sum / n, n);
}

static void print_tcp_text(const struct weir_ep_stats *s)
{
	if (s->has_tcp) {
		printf("  tcp:");
		for (size_t i = 0; i < weir_tcp_ndesc; i++)
			printf(" %s=%" PRIu64, weir_tcp_desc[i].key,
			       (uint64_t)weir_counter_at(s, &weir_tcp_desc[i]));
		printf("\n");
		print_hist_text("connect latency", &s->tcp.connect_latency);
		print_hist_text("smoothed RTT", &s->tcp.srtt);
	}
	if (s->has_ct)
		printf("  conntrack: %" PRIu64 " of %" PRIu64 " entries (%" PRIu64
		       " KiB), inserted=%" PRIu64 " evicted=%" PRIu64 "\n",
		       (uint64_t)s->ct.entries, (uint64_t)s->ct.budget,
		       (uint64_t)s->ct.memory / 1024, (uint64_t)s->ct.inserted,
		       (uint64_t)s->ct.evicted);
	if (s->ndrops) {
		printf("  kernel drops:");
		for (size_t i = 0; i < s->ndrops; i++) {
			char buf[32];

			printf(" %s=%" PRIu64,
			       weir_drop_reason_name(s->drops[i].reason, buf, sizeof(buf)),
			       (uint64_t)s->drops[i].count);
		}
		printf("\n");
	}
}

/* The guards as carried out, and the counts that are not zero: "escape killed=1 ...". */
static void print_guards_text(const struct weir_ep_view *v)
{
	bool any = false;

	if (v->security)
		printf("  security: %s\n", v->security);
	if (v->iface_name)
		printf("  interface: %s (%s)\n", v->iface_name,
		       v->iface_tc && strcmp(v->iface_tc, "none")
			       ? v->iface_tc
			       : "listed, no program: the endpoint's ingress needs none");
	for (int d = 0; d < WEIR_DIRS; d++)
		if (v->shaping[d])
			printf("  %s shaping: %s\n", weir_dir_names[d],
			       !strcmp(v->shaping[d], "interface")
				       ? "at the interface, before the container's namespace"
				       : "by the cgroup program");
	for (int i = 0; v->s.has_guards && i < WEIR_GUARDS; i++)
		for (int a = 0; a < WEIR_GACTIONS; a++) {
			if (!v->s.guards.n[i][a])
				continue;
			printf("%s %s %s=%" PRIu64,
			       any ? "" : "  guard events:", weir_guard_names[i],
			       weir_gaction_names[a], (uint64_t)v->s.guards.n[i][a]);
			any = true;
		}
	if (v->s.guards.quarantine_drops)
		printf("%s quarantine_drops=%" PRIu64,
		       any ? "" : "  guard events:", (uint64_t)v->s.guards.quarantine_drops);
	if (any || v->s.guards.quarantine_drops)
		printf("\n");
}

static void print_stats_text(const struct weir_ep_view *v)
{
	printf("%s", v->id);
	if (v->name)
		printf(" (%s)", v->name);
	printf("  endpoint %" PRIu32 "  %s  %s\n", v->endpoint, weir_view_state_name(v->state),
	       v->audit ? "audit" : "enforce");
	if (v->error)
		printf("  %s\n", v->error);
	if (!v->counters_available) {
		printf("  no counters\n");
		return;
	}
	printf("  %-8s %-22s %14s %16s\n", "DIR", "WHAT", "PACKETS", "BYTES");
	for (int d = 0; d < WEIR_DIRS; d++) {
		const struct weir_dir_counters *dc = &v->s.c.dir[d];

		for (int p = 0; p < WEIR_PCLASSES; p++)
			printf("  %-8s %-22s %14" PRIu64 " %16" PRIu64 "\n", weir_dir_names[d],
			       weir_pclass_names[p], (uint64_t)dc->proto[p].packets,
			       (uint64_t)dc->proto[p].bytes);
		/* a row with packets is followed by its bytes row: print them as one line */
		for (size_t i = 0; i < weir_dir_counters_ndesc; i++) {
			const struct weir_counter_desc *row = &weir_dir_counters_desc[i];

			if (row->sub && !strcmp(row->sub, "packets") &&
			    i + 1 < weir_dir_counters_ndesc) {
				printf("  %-8s %-22s %14" PRIu64 " %16" PRIu64 "\n",
				       weir_dir_names[d], row->key,
				       (uint64_t)weir_counter_at(dc, row),
				       (uint64_t)weir_counter_at(dc, row + 1));
				i++;
			} else if (!row->sub) {
				printf("  %-8s %-22s %14" PRIu64 "\n", weir_dir_names[d], row->key,
				       (uint64_t)weir_counter_at(dc, row));
			}
		}
	}
	print_tcp_text(&v->s);
	print_guards_text(v);
}

/* Does a view match what the user typed: an id prefix or a name? */
static bool view_matches(const struct weir_ep_view *v, const char *want)
{
	return !strncmp(v->id, want, strlen(want)) || (v->name && !strcmp(v->name, want));
}

struct find {
	const char *want;
	bool running_only;
	struct json_object *found;
	size_t matches;
	bool exact;
};

static int find_one(struct weir_ctx *ctx, const char *id, const struct weir_record *rec,
		    const struct weir_error *why, void *arg)
{
	struct find *f = arg;

	if (!rec || f->exact || (f->running_only && rec->state != WEIR_STATE_RUNNING))
		return 0;
	if (strncmp(id, f->want, strlen(f->want)) && (!rec->name || strcmp(rec->name, f->want)))
		return 0;
	f->exact = !strcmp(id, f->want); /* an exact id wins over prefixes and names */
	f->matches = f->exact ? 1 : f->matches + 1;
	json_object_put(f->found);
	f->found = json_object_get(rec->json);
	return 0;
}

/*
 * The one record ID|NAME names: an exact id, else a unique id prefix or a name (with
 * running_only, among running endpoints alone: a name outlives its stopped containers).
 * Returns 0, or prints why not and returns -ENOENT or -EINVAL.
 */
int cli_find_record(struct cli *cli, const char *cmd, const char *want, bool running_only,
		    struct json_object **out)
{
	struct find f = {.want = want, .running_only = running_only};
	int r = weir_records_foreach(cli->ctx, find_one, &f);

	if (r) {
		pr_err("cannot read %s: %s", weir_ctx_config(cli->ctx)->state_dir, strerror(-r));
		json_object_put(f.found);
		return r;
	}
	if (!f.matches) {
		pr_err("%s: no %sendpoint matches \"%s\"", cmd, running_only ? "running " : "",
		       want);
		return -ENOENT;
	}
	if (f.matches > 1) {
		json_object_put(f.found);
		pr_err("%s: \"%s\" matches %zu endpoints: give more of the id", cmd, want,
		       f.matches);
		return -EINVAL;
	}
	*out = f.found;
	return 0;
}

int cmd_stats(struct cli *cli, int argc, char **argv)
{
	struct weir_ep_views views __attribute__((cleanup(weir_views_free))) = {};
	const struct weir_ep_view *one = NULL;
	const char *want = NULL;
	size_t matches = 0;
	int r = local_opts(cli, argc, argv, "weir stats [--json] [ID]", NULL);

	if (r)
		return r > 0 ? 0 : 2;
	if (optind < argc)
		want = argv[optind++];
	if (optind < argc) {
		pr_err("stats: unexpected argument \"%s\"", argv[optind]);
		return 2;
	}
	r = weir_views_collect(cli->ctx, true, &views);
	if (r) {
		pr_err("cannot read %s: %s", weir_ctx_config(cli->ctx)->state_dir, strerror(-r));
		return 1;
	}
	for (size_t i = 0; want && i < views.n; i++) {
		if (!strcmp(views.v[i].id, want)) { /* an exact id match wins over prefixes */
			one = &views.v[i];
			matches = 1;
			break;
		}
		if (view_matches(&views.v[i], want)) {
			one = &views.v[i];
			matches++;
		}
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
		_cleanup_json_ struct json_object *out = NULL;

		if (one) {
			out = weir_view_to_json(one);
		} else {
			out = json_object_new_array();
			for (size_t i = 0; i < views.n; i++)
				json_object_array_add(out, weir_view_to_json(&views.v[i]));
		}
		cli_print_json(out);
		return 0;
	}
	for (size_t i = 0; i < views.n; i++)
		if (!one || one == &views.v[i])
			print_stats_text(&views.v[i]);
	return 0;
}

/* ---- gc ------------------------------------------------------------------------------ */

int cmd_gc(struct cli *cli, int argc, char **argv)
{
	struct weir_gc_report rep;
	struct weir_error err = {};
	int r = local_opts(cli, argc, argv, "weir gc [--json]", NULL);

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
		json_object_object_add(o, "repaired", json_object_new_uint64(rep.repaired));
		json_object_object_add(o, "expired", json_object_new_uint64(rep.expired));
		json_object_object_add(o, "orphans", json_object_new_uint64(rep.orphans));
		json_object_object_add(o, "stale_entries",
				       json_object_new_uint64(rep.stale_entries));
		json_object_object_add(o, "unknown", json_object_new_uint64(rep.unknown));
		cli_print_json(o);
	} else {
		printf("gc: %u endpoints of vanished containers detached, %u repaired (interrupted "
		       "attaches or detaches undone, conntrack maps put back), %u expired records "
		       "removed, %u orphans cleaned, %u "
		       "stale map entries deleted, %u unreadable records left alone\n",
		       rep.detached, rep.repaired, rep.expired, rep.orphans, rep.stale_entries,
		       rep.unknown);
	}
	/* an unreadable record is an operator's problem to look at: say so in the exit status */
	if (rep.unknown)
		return 1;
	return 0;
}

/* ---- unload -------------------------------------------------------------------------- */

int cmd_unload(struct cli *cli, int argc, char **argv)
{
	struct weir_error err = {};
	int r = local_opts(cli, argc, argv, "weir unload", NULL);

	if (r)
		return r > 0 ? 0 : 2;
	if (optind < argc) {
		pr_err("unload: unexpected argument \"%s\"", argv[optind]);
		return 2;
	}
	r = weir_node_unload(cli->ctx, &err);
	if (r) {
		pr_err("unload: %s", err.msg);
		return 1;
	}
	printf("weir datapath unloaded from %s/weir\n", weir_ctx_config(cli->ctx)->bpffs);
	return 0;
}
