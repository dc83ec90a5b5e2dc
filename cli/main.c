// SPDX-License-Identifier: Apache-2.0
/* weir: the operator's command line. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "log.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: weir [--config FILE] [--json] [--log-level LEVEL] COMMAND [ARGS]\n"
		"       weir --version\n"
		"\n"
		"commands:\n"
		"  status                 datapath state and what this kernel supports\n"
		"  list [--ids]           endpoints (containers weir enforces or enforced);\n"
		"                         --ids: only their ids and names, one a line\n"
		"  stats [ID]             packets, bytes and drops of one or every endpoint\n"
		"  policy check -a K=V... validate annotations as the hook would, offline, and\n"
		"                         print the effective policy (or: policy check ID)\n"
		"  policy trace ID --to|--from PEER [tcp|udp|icmp][/PORT]\n"
		"                         why the kernel allows or denies that traffic\n"
		"  gc                     remove what vanished containers left behind\n"
		"  metrics                Prometheus metrics (--listen ADDR: serve over HTTP)\n"
		"  top                    live per-container rates, drops, retransmits, RTT\n"
		"  flows [--follow] [ID]  ended TCP connections and denied flows "
		"(monitor.weir.io=flows)\n"
		"  events [--follow] [ID] security guard events (security.weir.io)\n"
		"  unload                 remove the node datapath (no endpoint may be attached)\n"
		"\n"
		"--json prints machine-readable output. ID may be a unique prefix.\n");
}

void cli_print_json(struct json_object *o)
{
	int flags = isatty(STDOUT_FILENO) ? JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN;

	printf("%s\n", json_object_to_json_string_ext(o, flags | JSON_C_TO_STRING_NOSLASHESCAPE));
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'}, /* version, BPF build id, datapath ABI */
		{},
	};
	static const struct {
		const char *name;
		int (*fn)(struct cli *, int, char **);
		bool needs_ctx;
	} cmds[] = {
		{"status", cmd_status, true}, {"list", cmd_list, true},
		{"stats", cmd_stats, true},   {"policy", cmd_policy, true},
		{"gc", cmd_gc, true},	      {"metrics", cmd_metrics, true},
		{"top", cmd_top, true},	      {"flows", cmd_flows, true},
		{"events", cmd_events, true}, {"unload", cmd_unload, true},
	};
	enum weir_log_level level = WEIR_LOG_WARN;
	struct cli cli = {};
	struct weir_error err = {};
	int opt, r;

	weir_log_init("weir", level, WEIR_LOG_TEXT);
	/* "+": options after the command belong to the command */
	while ((opt = getopt_long(argc, argv, "+c:jl:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			cli.config = optarg;
			break;
		case 'j':
			cli.json = true;
			break;
		case 'l':
			if (weir_log_level_option(optarg))
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			weir_version_print("weir");
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[optind], cmds[i].name))
			continue;
		r = weir_ctx_open(&cli.ctx, cli.config, &err);
		if (r) {
			pr_err("%s", err.msg);
			return 1;
		}
		pr_debug("%s: node configuration %s", cmds[i].name,
			 cli.config ? cli.config : "from the default path");
		optind++;
		r = cmds[i].fn(&cli, argc - optind + 1, argv + optind - 1);
		weir_ctx_close(cli.ctx);
		return r;
	}
	pr_err("unknown command \"%s\"", argv[optind]);
	usage(stderr);
	return 2;
}
