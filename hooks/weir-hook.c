// SPDX-License-Identifier: Apache-2.0
/*
 * weir-hook: the OCI runtime hook. createRuntime (or prestart) attaches the container's
 * policy before its first instruction; poststop detaches and keeps the final counters.
 * Runtimes give hooks no PATH and read only the exit status and stderr: a non-zero exit with
 * one line refuses the container.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "config.h"
#include "config.h"
#include "log.h"
#include "oci.h"
#include "util.h"
#include "libweir.h"

enum stage {
	STAGE_AUTO, /* from the state's status, so one hooks.d file can serve every stage */
	STAGE_ATTACH,
	STAGE_DETACH,
};

static void usage(FILE *f)
{
	fprintf(f, "usage: weir-hook [--config FILE] [--log-level LEVEL] [STAGE]\n"
		   "       weir-hook --version\n"
		   "  STAGE: createRuntime or prestart (attach), poststop (detach); without it,\n"
		   "  the state's status decides: creating/created attach, stopped detaches\n"
		   "  the OCI state is read from standard input\n");
}

/*
 * The bound on the hook's run time (hook_timeout_seconds). A runtime that never closes the
 * state's pipe, or a config.json that never ends, must not hold the container start forever:
 * when the time is up while the hook reads its inputs, it exits with one line saying what it
 * was waiting for. Once the endpoint's kernel state is being written, the hook finishes
 * instead (an attach stopped halfway would leave half an endpoint), and only says it was late.
 */
static struct {
	const char *volatile doing; /* what the hook waits for, for the message */
	volatile sig_atomic_t committed;
	volatile sig_atomic_t late;
	char seconds[24];
	struct timespec start;
} deadline = {.doing = "starting"};

static void put(const char *s)
{
	ssize_t n = write(STDERR_FILENO, s, strlen(s));

	(void)n;
}

static void on_deadline(int sig)
{
	if (deadline.committed) {
		deadline.late = 1;
		return;
	}
	put("weir-hook: timed out after ");
	put(deadline.seconds);
	put(" s ");
	put(deadline.doing);
	put(" (node config hook_timeout_seconds)\n");
	_exit(1);
}

/* Arm (or re-arm) the bound: `seconds` from the hook's start. */
static void deadline_arm(uint64_t seconds)
{
	struct itimerval it = {};
	struct timespec now;
	int64_t elapsed_us, total_us = (int64_t)seconds * 1000000;

	snprintf(deadline.seconds, sizeof(deadline.seconds), "%llu", (unsigned long long)seconds);
	clock_gettime(CLOCK_MONOTONIC, &now);
	elapsed_us = (int64_t)(now.tv_sec - deadline.start.tv_sec) * 1000000 +
		     (now.tv_nsec - deadline.start.tv_nsec) / 1000;
	/* already past it: fire at once rather than never */
	total_us = total_us > elapsed_us ? total_us - elapsed_us : 1;
	it.it_value.tv_sec = (time_t)(total_us / 1000000);
	it.it_value.tv_usec = (suseconds_t)(total_us % 1000000);
	setitimer(ITIMER_REAL, &it, NULL);
}

static void deadline_start(void)
{
	struct sigaction sa = {.sa_handler = on_deadline};

	clock_gettime(CLOCK_MONOTONIC, &deadline.start);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	deadline_arm(WEIR_DEFAULT_HOOK_TIMEOUT_S);
}

static int run(struct weir_ctx *ctx, enum stage stage, struct weir_error *err)
{
	_cleanup_free_ char *state_text = NULL, *config_text = NULL;
	struct weir_oci oci;
	size_t len;
	int r;

	deadline.doing = "reading the OCI state on standard input";
	r = weir_read_fd(STDIN_FILENO, WEIR_OCI_MAX_STATE_BYTES, &state_text, &len);
	if (r)
		return weir_error_set(err, r, "cannot read the OCI state: %s",
				      weir_read_strerror(r));
	r = weir_oci_state(&oci, state_text, len, err);
	if (r)
		goto out;
	if (stage == STAGE_AUTO) {
		const char *status = oci.status;

		if (status && (!strcmp(status, "creating") || !strcmp(status, "created")))
			stage = STAGE_ATTACH;
		else if (status && !strcmp(status, "stopped"))
			stage = STAGE_DETACH;
		else {
			r = weir_error_set(err, -EINVAL,
					   "OCI state of %s: \"status\" \"%s\": expected "
					   "creating, created or stopped, or a STAGE argument",
					   oci.id,
					   !status		    ? "(missing)"
					   : weir_printable(status) ? status
								    : "(with control characters)");
			goto out;
		}
	}
	if (stage == STAGE_DETACH) {
		deadline.committed = 1;
		r = weir_endpoint_detach(ctx, oci.id, err);
		goto out;
	}

	r = weir_oci_attach_fields(&oci, err);
	if (r)
		goto out;
	deadline.doing = "reading the bundle's config.json";
	r = weir_read_file(oci.config_path, WEIR_OCI_MAX_CONFIG_BYTES, &config_text, &len);
	if (r) {
		weir_error_set(err, r, "cannot read %s: %s", oci.config_path,
			       weir_read_strerror(r));
		goto out;
	}
	r = weir_oci_config(&oci, config_text, len, err);
	/* a container without weir annotations is weir's only when the node has a baseline */
	if (r || (!oci.c.n_annotations && !weir_baseline_present(ctx)))
		goto out;

	/* bad annotations always refuse; the node config's fail_open covers only the node side */
	deadline.committed = 1;
	r = weir_endpoint_attach(ctx, &oci.c, err);
out:
	if (deadline.late)
		pr_warn("%s: took longer than hook_timeout_seconds (%s s); the runtime may have "
			"given up on it",
			oci.id ? oci.id : "the container", deadline.seconds);
	weir_oci_free(&oci);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{},
	};
	enum weir_log_level level = WEIR_LOG_WARN;
	const char *config = NULL, *stage_name;
	struct weir_error err = {};
	struct weir_ctx *ctx = NULL;
	enum stage stage;
	int opt, r;

	deadline_start();
	weir_log_init("weir-hook", level, WEIR_LOG_TEXT);
	while ((opt = getopt_long(argc, argv, "c:l:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'l':
			if (weir_log_level_option(optarg))
				return 2;
			break;
		case 'V':
			weir_version_print("weir-hook");
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 < argc) {
		usage(stderr);
		return 2;
	}
	stage_name = optind < argc ? argv[optind] : NULL;
	if (!stage_name) {
		stage = STAGE_AUTO;
	} else if (!strcmp(stage_name, "createRuntime") || !strcmp(stage_name, "prestart")) {
		stage = STAGE_ATTACH;
	} else if (!strcmp(stage_name, "poststop")) {
		stage = STAGE_DETACH;
	} else {
		pr_err("unknown stage \"%s\": expected createRuntime, prestart or poststop",
		       stage_name);
		return 2;
	}

	deadline.doing = "reading the node config";
	r = weir_ctx_open(&ctx, config, &err);
	if (!r) {
		deadline_arm(weir_ctx_config(ctx)->hook_timeout_s);
		/* before any input is read: shared/caps.c says what stays and why */
		r = weir_caps_restrict(ctx, stage != STAGE_DETACH, NULL, 0, &err);
	}
	if (!r)
		r = run(ctx, stage, &err);
	weir_ctx_close(ctx);
	if (r) {
		pr_err("%s", err.msg[0] ? err.msg : strerror(-r));
		return 1;
	}
	return 0;
}
