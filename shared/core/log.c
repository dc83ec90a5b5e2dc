// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "error.h"
#include "log.h"

static const char *log_prog = "weir";
static enum weir_log_level log_level = WEIR_LOG_WARN;
static enum weir_log_format log_format = WEIR_LOG_TEXT;
static bool level_from_option; /* --log-level was given: the node config does not change it */

static const char *const level_names[] = {
	[WEIR_LOG_ERROR] = "error",
	[WEIR_LOG_WARN] = "warn",
	[WEIR_LOG_INFO] = "info",
	[WEIR_LOG_DEBUG] = "debug",
};

static void vlog(enum weir_log_level level, const char *fmt, va_list ap)
{
	char line[4096];
	size_t n;

	if (level > log_level)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';

	if (log_format == WEIR_LOG_JSON) {
		struct json_object *o = json_object_new_object();
		struct timespec ts;
		char tbuf[64];

		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(tbuf, sizeof(tbuf), "%lld.%03ld", (long long)ts.tv_sec,
			 ts.tv_nsec / 1000000);
		json_object_object_add(o, "ts", json_object_new_string(tbuf));
		json_object_object_add(o, "level", json_object_new_string(level_names[level]));
		json_object_object_add(o, "prog", json_object_new_string(log_prog));
		json_object_object_add(o, "msg", json_object_new_string(line));
		fprintf(stderr, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
		return;
	}
	if (level == WEIR_LOG_ERROR)
		fprintf(stderr, "%s: %s\n", log_prog, line);
	else
		fprintf(stderr, "%s: %s: %s\n", log_prog, level_names[level], line);
}

void weir_log(enum weir_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

static bool libbpf_probing;

void weir_log_libbpf_probing(bool on)
{
	libbpf_probing = on;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* while a feature is probed, its refusal is an answer, not a warning */
	enum weir_log_level l =
		level == LIBBPF_WARN && !libbpf_probing ? WEIR_LOG_WARN : WEIR_LOG_DEBUG;

	/* libbpf is chatty at INFO; its warnings are ours to report with context. */
	if (level == LIBBPF_DEBUG && log_level < WEIR_LOG_DEBUG)
		return 0;
	vlog(l, fmt, ap);
	return 0;
}

void weir_log_init(const char *prog, enum weir_log_level level, enum weir_log_format format)
{
	log_prog = prog;
	log_level = level;
	log_format = format;
	libbpf_set_print(libbpf_print);
}

void weir_log_set_level(enum weir_log_level level)
{
	if (!level_from_option)
		log_level = level;
}

enum weir_log_level weir_log_get_level(void)
{
	return log_level;
}

int weir_log_parse_level(const char *s, enum weir_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (!strcmp(s, level_names[i])) {
			*out = (enum weir_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int weir_log_parse_format(const char *s, enum weir_log_format *out)
{
	if (!strcmp(s, "text"))
		*out = WEIR_LOG_TEXT;
	else if (!strcmp(s, "json"))
		*out = WEIR_LOG_JSON;
	else
		return -EINVAL;
	return 0;
}

int weir_log_level_option(const char *arg)
{
	enum weir_log_level level;

	if (weir_log_parse_level(arg, &level)) {
		pr_err("--log-level %s: expected error, warn, info or debug", WEIR_Q(arg));
		return -EINVAL;
	}
	log_level = level;
	level_from_option = true;
	return 0;
}

int weir_log_format_option(const char *arg)
{
	if (weir_log_parse_format(arg, &log_format)) {
		pr_err("--log-format %s: expected text or json", WEIR_Q(arg));
		return -EINVAL;
	}
	return 0;
}
