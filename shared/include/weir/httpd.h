/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metrics endpoint: a small HTTP server (libmicrohttpd) answering GET /metrics and
 * GET /healthz from its own thread, so embedding it never blocks the caller's loop.
 */
#ifndef WEIR_HTTPD_H
#define WEIR_HTTPD_H

#include "error.h"

struct weir_ctx;
struct weir_httpd;

#define WEIR_HTTPD_DEFAULT_LISTEN "127.0.0.1:9464"

/*
 * Parse "IPv4:PORT" or "[IPv6]:PORT" (numeric only, port 1-65535) into addr, a
 * struct sockaddr_in or sockaddr_in6 of at most *addrlen bytes (sockaddr_storage fits);
 * *addrlen is set to its length. -EINVAL with one line in err otherwise.
 */
struct sockaddr;
int weir_httpd_parse_addr(const char *listen_addr, struct sockaddr *addr, unsigned int *addrlen,
			  struct weir_error *err);

/*
 * Listen on listen_addr (NULL: WEIR_HTTPD_DEFAULT_LISTEN) and serve until weir_httpd_stop().
 * Every /metrics request re-renders from ctx's maps and records, under the server's lock; a
 * caller that also uses ctx from other threads takes the same lock (weir_httpd_lock()) around
 * its own uses, or gives the server a ctx of its own (weir_ctx_open() again).
 */
int weir_httpd_start(struct weir_httpd **h, const char *listen_addr, struct weir_ctx *ctx,
		     struct weir_error *err);
/* Stop listening, finish the requests in flight, free. NULL is a no-op. */
void weir_httpd_stop(struct weir_httpd *h);

void weir_httpd_lock(struct weir_httpd *h);
void weir_httpd_unlock(struct weir_httpd *h);

/* The port actually bound (useful with tests). */
unsigned int weir_httpd_port(const struct weir_httpd *h);

#endif
