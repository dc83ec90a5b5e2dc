// SPDX-License-Identifier: Apache-2.0
/* weir flows: TCP connections that ended and flows denied by policy, like `hubble observe`. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "events.h"
#include "log.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int print_event(struct json_object *ev, void *arg)
{
	bool json = *(bool *)arg;
	char line[512];

	if (json) {
		printf("%s\n",
		       json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE));
	} else {
		weir_event_format(ev, line, sizeof(line));
		printf("%s\n", line);
	}
	fflush(stdout);
	return 0;
}

int cmd_flows(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"follow", no_argument, NULL, 'f'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	static const char usage_line[] = "weir flows [--follow] [--json] [ID|NAME]";
	struct sigaction sa = {.sa_handler = on_signal};
	struct weir_error err = {};
	const char *id = NULL;
	bool follow = false;
	int opt, r;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "fjh", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			follow = true;
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
	if (optind < argc)
		id = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "usage: %s\n", usage_line);
		return 2;
	}
	if (!follow) {
		r = weir_events_recent(cli->ctx, id, print_event, &cli->json, &err);
	} else {
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		r = weir_events_follow(cli->ctx, id, print_event, &cli->json, &stop, &err);
	}
	if (r) {
		pr_err("flows: %s", err.msg);
		return 1;
	}
	return 0;
}
