// SPDX-License-Identifier: Apache-2.0
/*
 * weir-nri: containerd NRI plugin. Connects to the NRI socket (or uses fd 3 when launched by
 * the runtime), checks weir annotations when pods and containers are created and attaches
 * weir's datapath to each container before it starts.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caps.h"
#include "handlers.h"
#include "nri_log.h"
#include "plugin.h"
#include "libweir.h"
#include "events.h"
#include "httpd.h"

static struct nri_plugin *the_plugin;
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	stopping = 1;
	if (the_plugin)
		nri_plugin_stop(the_plugin);
}

/*
 * The flow log: flow, denial and guard events as JSON lines on standard output, read from the
 * ring buffers by a thread of its own (with its own context), so the NRI event loop never waits
 * for it and it never waits for the NRI event loop.
 */
struct flow_log {
	pthread_t thread;
	const char *config;
	bool started;
};

static int print_flow(struct json_object *ev, void *arg)
{
	fprintf(stdout, "%s\n",
		json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	return 0;
}

static void *flow_log_main(void *arg)
{
	struct flow_log *fl = arg;
	struct weir_error err = {0};
	struct weir_ctx *ctx = NULL;

	while (!stopping) {
		/* until the first container loads the datapath there is no ring to read */
		if (!ctx && weir_ctx_open(&ctx, fl->config, &err)) {
			nri_error("flow log: %s", err.msg);
			return NULL;
		}
		if (weir_events_follow_kinds(ctx, WEIR_EVENTS_FLOWS | WEIR_EVENTS_GUARDS, NULL,
					     print_flow, NULL, &stopping, &err)) {
			nri_debug("flow log: %s; retrying", err.msg);
			weir_ctx_close(ctx);
			ctx = NULL;
			for (int i = 0; i < 10 && !stopping; i++)
				usleep(100000);
		}
	}
	weir_ctx_close(ctx);
	return NULL;
}

/* One weir-nri per node: a second one would register too and attach every container twice. */
/* A metrics port below 1024 needs CAP_NET_BIND_SERVICE after the drop of capabilities. */
static const cap_value_t *metrics_bind_cap(const char *addr)
{
	static const cap_value_t bind = CAP_NET_BIND_SERVICE;
	const char *colon = addr ? strrchr(addr, ':') : NULL;

	return colon && atoi(colon + 1) > 0 && atoi(colon + 1) < 1024 ? &bind : NULL;
}

static int instance_lock(struct weir_ctx *ctx, struct weir_error *err)
{
	int fd = weir_ctx_lock(ctx, "weir-nri.lock", false, err);

	if (fd == -EWOULDBLOCK)
		weir_error_set(err, fd,
			       "another weir-nri is running (it holds weir-nri.lock in "
			       "the state folder)");
	return fd; /* held until exit */
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: weir-nri [OPTION]...\n"
		"containerd NRI plugin: weir's per-container network policy, accounting and "
		"guards.\n"
		"\n"
		"  -s, --socket PATH       NRI socket (default %s)\n"
		"  -n, --name NAME         plugin name (default \"weir\"; [A-Za-z0-9_.+-])\n"
		"  -i, --idx IDX           plugin index, two digits (default \"10\")\n"
		"  -c, --config FILE       weir node configuration (default: libweir's default)\n"
		"  -l, --log-level LEVEL   debug, info, warn or error (default: the "
		"configuration's\n"
		"                          log_level, else info)\n"
		"  -f, --log-format FMT    text or json (default text)\n"
		"  -m, --metrics-listen ADDR  serve Prometheus /metrics on ADDR (e.g. "
		"127.0.0.1:9464)\n"
		"      --flow-log          flow, denial and security guard events as JSON lines "
		"on standard output\n"
		"  -h, --help              show this help\n"
		"  -V, --version           show the version\n"
		"\n"
		"When started by the runtime (NRI_PLUGIN_SOCKET set), the socket is that fd and "
		"the\n"
		"name and index come from NRI_PLUGIN_NAME and NRI_PLUGIN_IDX.\n",
		NRI_DEFAULT_SOCKET);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},
		{"name", required_argument, NULL, 'n'},
		{"idx", required_argument, NULL, 'i'},
		{"config", required_argument, NULL, 'c'},
		{"log-level", required_argument, NULL, 'l'},
		{"log-format", required_argument, NULL, 'f'},
		{"metrics-listen", required_argument, NULL, 'm'},
		{"flow-log", no_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	struct nri_plugin_config cfg = {.fd = -1, .name = "weir", .idx = "10"};
	const char *config = NULL, *env;
	struct weir_error err = {0};
	const cap_value_t *bind_cap;
	struct weir_ctx *ctx = NULL;
	struct weir_nri *w = NULL;
	struct sigaction sa = {0};
	const char *metrics_addr = NULL;
	struct weir_httpd *httpd = NULL;
	struct weir_ctx *metrics_ctx = NULL;
	struct flow_log flow_log = {0};
	bool flows = false;
	int c, rc, lock;

	/* the node config's log_level applies unless --log-level is given */
	weir_log_init("weir-nri", WEIR_LOG_INFO, WEIR_LOG_TEXT);
	while ((c = getopt_long(argc, argv, "s:n:i:c:l:f:m:hV", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			cfg.socket_path = optarg;
			break;
		case 'n':
			cfg.name = optarg;
			break;
		case 'i':
			cfg.idx = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'l':
			if (weir_log_level_option(optarg))
				return 2;
			break;
		case 'f':
			if (weir_log_format_option(optarg))
				return 2;
			break;
		case 'm':
			metrics_addr = optarg;
			break;
		case 'F':
			flows = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			weir_version_print("weir-nri");
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		nri_error("unexpected argument %s", WEIR_Q(argv[optind]));
		usage(stderr);
		return 2;
	}

	/* launched by the runtime (docs/nri-protocol.md §7) */
	env = getenv("NRI_PLUGIN_SOCKET");
	if (env && *env) {
		char *end;
		long fd = strtol(env, &end, 10);

		if (*end || fd < 0 || fd > 1024) {
			nri_error("invalid NRI_PLUGIN_SOCKET %s: expected a file descriptor",
				  WEIR_Q(env));
			return 2;
		}
		cfg.fd = (int)fd;
		if ((env = getenv("NRI_PLUGIN_NAME")) && *env)
			cfg.name = env;
		if ((env = getenv("NRI_PLUGIN_IDX")) && *env)
			cfg.idx = env;
	}
	if (nri_check_name(cfg.name, &err) || nri_check_index(cfg.idx, &err)) {
		nri_error("%s", err.msg);
		return 2;
	}

	rc = weir_ctx_open(&ctx, config, &err);
	if (rc) {
		nri_error("%s", err.msg[0] ? err.msg : strerror(-rc));
		return 1;
	}
	lock = instance_lock(ctx, &err);
	if (lock < 0) {
		nri_error("%s", err.msg);
		weir_ctx_close(ctx);
		return 1;
	}
	/* before any thread starts (capabilities are per thread) and any message is read */
	bind_cap = metrics_bind_cap(metrics_addr);
	rc = weir_caps_restrict(ctx, true, bind_cap, bind_cap ? 1 : 0, &err);
	if (rc) {
		nri_error("%s", err.msg);
		weir_ctx_close(ctx);
		return 1;
	}
	/* the metrics server reads the maps from its own thread: it gets its own context */
	if (metrics_addr) {
		rc = weir_ctx_open(&metrics_ctx, config, &err);
		if (!rc)
			rc = weir_httpd_start(&httpd, metrics_addr, metrics_ctx, &err);
		if (rc) {
			nri_error("--metrics-listen: %s", err.msg);
			weir_ctx_close(metrics_ctx);
			weir_ctx_close(ctx);
			return 1;
		}
		nri_info("serving metrics on %s", metrics_addr);
	}
	rc = weir_nri_new(&w, &weir_nri_libweir_ops, ctx);
	if (!rc)
		rc = nri_plugin_new(&the_plugin, &cfg, &weir_nri_handlers, w, &err);
	if (rc) {
		nri_error("%s", err.msg[0] ? err.msg : strerror(-rc));
		weir_nri_free(w);
		weir_ctx_close(ctx);
		return 1;
	}

	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (flows) {
		flow_log.config = config;
		if (pthread_create(&flow_log.thread, NULL, flow_log_main, &flow_log) == 0)
			flow_log.started = true;
		else
			nri_error("cannot start the flow log thread");
	}

	nri_info("weir-nri %s starting: events 0x%x", weir_version(),
		 nri_plugin_events(the_plugin));
	/* Before the first connection: a StartContainer must never wait for the verifier (on
	 * failure, each Configure and each attach try again). */
	weir_nri_load(w);
	rc = nri_plugin_run(the_plugin);
	stopping = 1;
	if (flow_log.started)
		pthread_join(flow_log.thread, NULL);
	weir_httpd_stop(httpd);
	weir_ctx_close(metrics_ctx);
	if (rc)
		nri_error("event loop failed: %s", strerror(-rc));
	else
		nri_info("stopped");

	nri_plugin_free(the_plugin);
	the_plugin = NULL;
	weir_nri_free(w);
	weir_ctx_close(ctx);
	return rc ? 1 : 0;
}
