// SPDX-License-Identifier: Apache-2.0
/* weir policy check | trace */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "annot.h"
#include "cli.h"
#include "config.h"
#include "stats.h"
#include "log.h"
#include "trace.h"
#include "util.h"

static const char check_usage[] =
	"usage: weir policy check [--json] [--container NAME] -a KEY=VALUE [-a KEY=VALUE ...]\n"
	"       weir policy check [--json] ID|NAME\n";
static const char trace_usage[] =
	"usage: weir policy trace [--json] ID|NAME --to PEER [tcp|udp|icmp][/PORT]\n"
	"       weir policy trace [--json] ID|NAME --from PEER [tcp|udp|icmp][/PORT]\n";

/* Append "; " and a formatted piece to buf. */
static void append(char *buf, size_t size, const char *piece)
{
	size_t n = strlen(buf);

	snprintf(buf + n, size - n, "%s%s", n ? "; " : "", piece);
}

/* "tcp 443, 8000-8010; udp all; icmp", or "nothing", from an "allows" object */
static const char *allows_text(struct json_object *allows, char *buf, size_t size)
{
	static const char *const classes[] = {"tcp", "udp", "icmp", "other"};

	buf[0] = '\0';
	for (size_t c = 0; c < WEIR_ARRAY_SIZE(classes); c++) {
		struct json_object *p;
		char piece[512];
		size_t n;

		if (!json_object_object_get_ex(allows, classes[c], &p))
			continue;
		if (json_object_is_type(p, json_type_boolean)) {
			if (json_object_get_boolean(p))
				append(buf, size, classes[c]);
			continue;
		}
		if (json_object_is_type(p, json_type_string)) {
			snprintf(piece, sizeof(piece), "%s all", classes[c]);
			append(buf, size, piece);
			continue;
		}
		if (!json_object_array_length(p))
			continue;
		n = (size_t)snprintf(piece, sizeof(piece), "%s", classes[c]);
		for (size_t i = 0; i < json_object_array_length(p) && n < sizeof(piece); i++)
			n += (size_t)snprintf(
				piece + n, sizeof(piece) - n, "%s%s", i ? ", " : " ",
				json_object_get_string(json_object_array_get_idx(p, i)));
		append(buf, size, piece);
	}
	if (!buf[0])
		snprintf(buf, size, "nothing");
	return buf;
}

/* ---- check --------------------------------------------------------------------------- */

static int max_len(int width, const char *s)
{
	return s && (int)strlen(s) > width ? (int)strlen(s) : width;
}

static void print_policy_text(struct json_object *pol)
{
	static const char *const dirs[] = {"egress", "ingress"};
	char buf[1024];

	for (size_t d = 0; d < WEIR_ARRAY_SIZE(dirs); d++) {
		struct json_object *dj, *rules, *eff;
		int width = 0;

		if (!json_object_object_get_ex(pol, dirs[d], &dj) ||
		    !json_object_object_get_ex(dj, "rules", &rules) ||
		    !json_object_object_get_ex(dj, "effective", &eff))
			continue;
		if (!json_object_array_length(rules)) {
			printf("%s: open (no rules)\n", dirs[d]);
			continue;
		}
		printf("%s: default deny\n  rules:\n", dirs[d]);
		for (size_t i = 0; i < json_object_array_length(rules); i++) {
			struct json_object *r = json_object_array_get_idx(rules, i), *p;
			size_t n = 0;

			buf[0] = '\0';
			if (json_object_object_get_ex(r, "protocols", &p) &&
			    json_object_is_type(p, json_type_array))
				for (size_t k = 0; k < json_object_array_length(p); k++)
					n += (size_t)snprintf(
						buf + n, n < sizeof(buf) ? sizeof(buf) - n : 0,
						"%s%s", k ? "," : " ",
						json_object_get_string(
							json_object_array_get_idx(p, k)));
			printf("    %3" PRIu64 "  %s %s%s\n", weir_json_u64(r, "rule"),
			       weir_json_str(r, "action") ?: "?", weir_json_str(r, "peer") ?: "?",
			       buf);
		}
		printf("  effective (the longest prefix holding the peer decides; none: "
		       "denied):\n");
		for (size_t i = 0; i < json_object_array_length(eff); i++)
			width = max_len(width,
					weir_json_str(json_object_array_get_idx(eff, i), "peer"));
		for (size_t i = 0; i < json_object_array_length(eff); i++) {
			struct json_object *e = json_object_array_get_idx(eff, i), *a = NULL;

			json_object_object_get_ex(e, "allows", &a);
			printf("    %-*s  %s\n", width, weir_json_str(e, "peer") ?: "?",
			       allows_text(a, buf, sizeof(buf)));
		}
	}
}

static int cmd_policy_check(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"annotation", required_argument, NULL, 'a'},
		{"container", required_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	_cleanup_json_ struct json_object *rec = NULL;
	_cleanup_free_ struct weir_kv *kv = NULL;
	_cleanup_free_ struct weir_kv *res = NULL;
	struct weir_trace_ep te;
	const char *ctr_name = NULL;
	struct weir_error err = {};
	struct weir_compiled comp;
	struct weir_spec spec;
	size_t n = 0, nres = 0;
	int opt, r;

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
			fputs(check_usage, stdout);
			return 0;
		default:
			fputs(check_usage, stderr);
			return 2;
		}
	}
	if (optind + 1 == argc && !n) {
		/* a recorded container: its annotations as stored when it was attached */
		if (cli_find_record(cli, "policy check", argv[optind], false, &rec))
			return 1;
		if (weir_trace_ep_of(rec, &te)) {
			pr_err("policy check: the record of %s is damaged", te.id);
			return 1;
		}
		r = weir_annotations_resolve(NULL, 0, te.kv, te.nkv, NULL, &res, &nres, &err);
	} else if (optind < argc || !n) {
		fputs(check_usage, stderr);
		return 2;
	} else {
		r = weir_annotations_resolve(NULL, 0, kv, n, ctr_name, &res, &nres, &err);
	}
	if (!r)
		r = weir_spec_parse(weir_ctx_config(cli->ctx), res, nres, &spec, &err);
	if (r) {
		pr_err("%s", err.msg);
		return 1;
	}
	r = weir_spec_compile(&spec, &comp, &err);
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
		json_object_object_add(o, "policy", weir_policy_json(&spec, &comp));
		cli_print_json(o);
	} else if (!spec.any) {
		printf("ok: no weir annotations (weir leaves this container alone)\n");
	} else {
		_cleanup_json_ struct json_object *pol = weir_policy_json(&spec, &comp);

		printf("ok: %s, egress %s (%zu rules), ingress %s (%zu rules), %zu map entries\n",
		       spec.audit ? "audit" : "enforce",
		       spec.policy.dir[WEIR_EGRESS].present ? "default-deny" : "open",
		       spec.policy.dir[WEIR_EGRESS].nrules,
		       spec.policy.dir[WEIR_INGRESS].present ? "default-deny" : "open",
		       spec.policy.dir[WEIR_INGRESS].nrules, comp.n);
		print_policy_text(pol);
	}
	weir_compiled_free(&comp);
	weir_spec_free(&spec);
	return 0;
}

/* ---- trace --------------------------------------------------------------------------- */

static void print_trace_text(struct json_object *t)
{
	struct json_object *entry = NULL, *results = NULL, *allows = NULL;
	const char *name = weir_json_str(t, "name");
	bool egress = !strcmp(weir_json_str(t, "direction") ?: "", "egress");
	char buf[1024];

	printf("%s%s%s%s, endpoint %" PRIu64 ": %s %s, mode %s\n", weir_json_str(t, "id") ?: "?",
	       name ? " (" : "", name ?: "", name ? ")" : "", weir_json_u64(t, "endpoint"),
	       egress ? "egress to" : "ingress from", weir_json_str(t, "peer") ?: "?",
	       weir_json_str(t, "mode") ?: "?");
	if (!strcmp(weir_json_str(t, "default") ?: "", "allow")) {
		printf("  %s has no rules: open\n", egress ? "egress" : "ingress");
	} else if (json_object_object_get_ex(t, "kernel_entry", &entry) && entry) {
		json_object_object_get_ex(entry, "allows", &allows);
		printf("  kernel: the weir_policy entry for %s allows %s\n",
		       weir_json_str(entry, "prefix") ?: "(a prefix the record does not explain)",
		       allows_text(allows, buf, sizeof(buf)));
	} else {
		printf("  kernel: no weir_policy entry holds this peer: nothing is allowed\n");
	}
	json_object_object_get_ex(t, "results", &results);
	for (size_t i = 0; results && i < json_object_array_length(results); i++) {
		struct json_object *r = json_object_array_get_idx(results, i), *ct = NULL, *ports;
		const char *verdict = weir_json_str(r, "verdict") ?: "?";
		char what[32], upper[32];
		size_t k;

		for (k = 0; verdict[k] && k < sizeof(upper) - 1; k++)
			upper[k] = (char)(verdict[k] >= 'a' && verdict[k] <= 'z' ? verdict[k] - 32
										 : verdict[k]);
		upper[k] = '\0';
		if (weir_json_u64(r, "port"))
			snprintf(what, sizeof(what), "%s/%" PRIu64, weir_json_str(r, "protocol"),
				 weir_json_u64(r, "port"));
		else
			snprintf(what, sizeof(what), "%s", weir_json_str(r, "protocol") ?: "?");
		printf("  %s: %s: %s\n", what, upper, weir_json_str(r, "effect") ?: "");
		if (json_object_object_get_ex(r, "ports", &ports) &&
		    json_object_is_type(ports, json_type_array) &&
		    json_object_array_length(ports)) {
			struct json_object *one = json_object_new_object();

			json_object_object_add(one, weir_json_str(r, "protocol") ?: "tcp",
					       json_object_get(ports));
			printf("    ports that pass: %s\n", allows_text(one, buf, sizeof(buf)));
			json_object_put(one);
		}
		printf("    %s\n", weir_json_str(r, "reason") ?: "");
		if (json_object_object_get_ex(r, "conntrack", &ct)) {
			uint64_t live = weir_json_u64(ct, "live_flows");

			printf("    conntrack: %s", weir_json_str(ct, "text") ?: "");
			if (live)
				printf("; %" PRIu64 " tracked flow%s with this peer (%" PRIu64
				       " opened by the peer) pass%s without a policy lookup",
				       live, live == 1 ? "" : "s",
				       weir_json_u64(ct, "live_flows_opened_by_peer"),
				       live == 1 ? "es" : "");
			printf("\n");
		}
	}
	if (weir_json_str(t, "note"))
		printf("  note: %s\n", weir_json_str(t, "note"));
	if (json_object_object_get_ex(t, "record_agrees", &entry) &&
	    !json_object_get_boolean(entry))
		printf("  warning: the kernel's policy for this peer is not what the record's "
		       "annotations compile to; the verdict shown is the kernel's\n");
}

static int cmd_policy_trace(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"to", required_argument, NULL, 't'},
		{"from", required_argument, NULL, 'f'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	_cleanup_json_ struct json_object *rec = NULL;
	_cleanup_json_ struct json_object *out = NULL;
	const char *peer = NULL, *want, *proto;
	enum weir_dir dir = WEIR_EGRESS;
	struct weir_trace_query q;
	struct weir_error err = {};
	int opt;

	optind = 0; /* 0: glibc re-initialises for a new argv */
	while ((opt = getopt_long(argc, argv, "t:f:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
		case 'f':
			if (peer) {
				pr_err("policy trace: give one of --to and --from, once");
				return 2;
			}
			peer = optarg;
			dir = opt == 't' ? WEIR_EGRESS : WEIR_INGRESS;
			break;
		case 'j':
			cli->json = true;
			break;
		case 'h':
			fputs(trace_usage, stdout);
			return 0;
		default:
			fputs(trace_usage, stderr);
			return 2;
		}
	}
	if (!peer || optind >= argc || argc - optind > 2) {
		fputs(trace_usage, stderr);
		return 2;
	}
	want = argv[optind];
	proto = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (weir_trace_parse(&q, dir, peer, proto, &err)) {
		pr_err("policy trace: %s", err.msg);
		return 2;
	}
	if (cli_find_record(cli, "policy trace", want, true, &rec))
		return 1;
	if (weir_policy_trace(cli->ctx, rec, &q, &out, &err)) {
		pr_err("policy trace: %s", err.msg);
		return 1;
	}
	if (cli->json)
		cli_print_json(out);
	else
		print_trace_text(out);
	return 0;
}

int cmd_policy(struct cli *cli, int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "check"))
		return cmd_policy_check(cli, argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "trace"))
		return cmd_policy_trace(cli, argc - 1, argv + 1);
	fputs(check_usage, stderr);
	fputs(trace_usage, stderr);
	return 2;
}
