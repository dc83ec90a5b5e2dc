/* SPDX-License-Identifier: Apache-2.0 */
#ifndef WEIR_CLI_H
#define WEIR_CLI_H

#include <stdbool.h>

#include "weir.h"

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
int cmd_unload(struct cli *cli, int argc, char **argv);

/* Print one JSON value on stdout (pretty for humans, plain for pipes). */
struct json_object;
void cli_print_json(struct json_object *o);

#endif
