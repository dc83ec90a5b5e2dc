/* SPDX-License-Identifier: Apache-2.0 */
/* One logging module for every weir binary; libbpf's own output is routed through it. */
#ifndef WEIR_LOG_H
#define WEIR_LOG_H

#include <stdbool.h>

enum weir_log_level {
	WEIR_LOG_ERROR = 0,
	WEIR_LOG_WARN,
	WEIR_LOG_INFO,
	WEIR_LOG_DEBUG,
};

enum weir_log_format {
	WEIR_LOG_TEXT = 0,
	WEIR_LOG_JSON,
};

void weir_log_init(const char *prog, enum weir_log_level level, enum weir_log_format format);
/*
 * The node config's log_level: it applies unless the command line chose a level
 * (weir_log_level_option), which always wins.
 */
void weir_log_set_level(enum weir_log_level level);
enum weir_log_level weir_log_get_level(void);
int weir_log_parse_level(const char *s, enum weir_log_level *out);
int weir_log_parse_format(const char *s, enum weir_log_format *out);
/* A --log-level argument: set the level, or say what was expected and return -EINVAL. */
int weir_log_level_option(const char *arg);
/* A --log-format argument (text or json), the same way. */
int weir_log_format_option(const char *arg);

void weir_log(enum weir_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pr_err(...)   weir_log(WEIR_LOG_ERROR, __VA_ARGS__)
#define pr_warn(...)  weir_log(WEIR_LOG_WARN, __VA_ARGS__)
#define pr_info(...)  weir_log(WEIR_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) weir_log(WEIR_LOG_DEBUG, __VA_ARGS__)

/* While on, libbpf's warnings are logged at debug level: a probe that fails is expected. */
void weir_log_libbpf_probing(bool on);

#endif
