// SPDX-License-Identifier: Apache-2.0
/* weir metrics: the Prometheus rendering once on stdout, or served over HTTP (--listen). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

static const char metrics_usage[] =
	"weir metrics [--listen [ADDR]]   (ADDR: IPV4:PORT or [IPV6]:PORT, "
	"default " WEIR_HTTPD_DEFAULT_LISTEN "; without --listen: print once)";

static int serve(struct cli *cli, const char *addr)
{
	struct weir_error err = {};
	struct weir_httpd *h = NULL;
	sigset_t set;
	int sig = 0, r;

	/* blocked before the server's thread starts, so only sigwait() below sees them */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = weir_httpd_start(&h, addr, cli->ctx, &err);
	if (r) {
		pr_err("%s", err.msg);
		return 1;
	}
	/* one line on stderr so that scripts learn the port when they asked for port 0 */
	fprintf(stderr, "weir metrics: listening on %s (port %u)\n", addr, weir_httpd_port(h));
	fflush(stderr);
	do {
		r = sigwait(&set, &sig);
	} while (r == 0 && sig == SIGHUP);
	weir_httpd_stop(h);
	return 0;
}

int cmd_metrics(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", optional_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	const char *listen_addr = NULL;
	char *text = NULL;
	size_t len = 0;
	int opt, r;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "l::h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			/* "--listen ADDR", "--listen=ADDR", or "--listen" alone: the default */
			if (optarg)
				listen_addr = optarg;
			else if (optind < argc && argv[optind][0] != '-')
				listen_addr = argv[optind++];
			else
				listen_addr = WEIR_HTTPD_DEFAULT_LISTEN;
			break;
		case 'h':
			printf("usage: %s\n", metrics_usage);
			return 0;
		default:
			fprintf(stderr, "usage: %s\n", metrics_usage);
			return 2;
		}
	}
	if (optind < argc) {
		pr_err("metrics: unexpected argument \"%s\"", argv[optind]);
		fprintf(stderr, "usage: %s\n", metrics_usage);
		return 2;
	}
	if (listen_addr)
		return serve(cli, listen_addr);

	r = weir_metrics_render(cli->ctx, &text, &len);
	if (r) {
		pr_err("metrics: %s", strerror(-r));
		return 1;
	}
	r = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
	free(text);
	return r;
}
