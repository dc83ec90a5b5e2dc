/* SPDX-License-Identifier: Apache-2.0 */
#ifndef WEIR_CLI_H
#define WEIR_CLI_H

#include <stdbool.h>

#include "libweir.h"

struct cli {
	const char *config;
	bool json;
	struct weir_ctx *ctx;
};

int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_list(struct cli *cli, int argc, char **argv);
int cmd_stats(struct cli *cli, int argc, char **argv);
int cmd_policy(struct cli *cli, int argc, char **argv);
int cmd_gc(struct cli *cli, int argc, char **argv);
int cmd_metrics(struct cli *cli, int argc, char **argv);
int cmd_top(struct cli *cli, int argc, char **argv);
int cmd_flows(struct cli *cli, int argc, char **argv);
int cmd_events(struct cli *cli, int argc, char **argv);
int cmd_unload(struct cli *cli, int argc, char **argv);

/* weir status's guard section (cli/guards.c): into o, and printed unless --json. */
struct json_object;
void status_guards(struct cli *cli, bool loaded, struct json_object *o);

struct json_object;
int cli_find_record(struct cli *cli, const char *cmd, const char *want, bool running_only,
		    struct json_object **out);

/* Print one JSON value on stdout (pretty for humans, plain for pipes). */
void cli_print_json(struct json_object *o);

#endif
