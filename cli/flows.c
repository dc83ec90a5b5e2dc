// SPDX-License-Identifier: Apache-2.0
/*
 * weir flows: TCP connections that ended and flows denied by policy, like `hubble observe`.
 * weir events: what the security guards refused, killed, quarantined or reported.
 */
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

/* The recent events of one kind, or the live ones of it with --follow. */
static int list_or_follow(struct cli *cli, int argc, char **argv, const char *usage_line,
			  unsigned int kind)
{
	static const struct option opts[] = {
		{"follow", no_argument, NULL, 'f'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
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
		r = kind == WEIR_EVENTS_FLOWS
			    ? weir_events_recent(cli->ctx, id, print_event, &cli->json, &err)
			    : weir_guard_events_recent(cli->ctx, id, print_event, &cli->json, &err);
	} else {
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		r = weir_events_follow_kinds(cli->ctx, kind, id, print_event, &cli->json, &stop,
					     &err);
	}
	if (r) {
		pr_err("%s: %s", argv[0], err.msg);
		return 1;
	}
	return 0;
}

int cmd_flows(struct cli *cli, int argc, char **argv)
{
	return list_or_follow(cli, argc, argv, "weir flows [--follow] [--json] [ID|NAME]",
			      WEIR_EVENTS_FLOWS);
}

int cmd_events(struct cli *cli, int argc, char **argv)
{
	return list_or_follow(cli, argc, argv, "weir events [--follow] [--json] [ID|NAME]",
			      WEIR_EVENTS_GUARDS);
}
