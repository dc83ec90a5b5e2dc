// SPDX-License-Identifier: Apache-2.0
/*
 * The metrics endpoint on libmicrohttpd.
 *
 * MHD runs its own polling thread (MHD_USE_AUTO_INTERNAL_THREAD), so starting the server is one
 * call and the caller's loop is never involved. Bounds: 64 connections, 16 KiB of request line
 * and headers per connection (MHD answers 414 or 431 past it), 10 s idle timeout, strict
 * HTTP parsing (400 for malformed requests). Only GET and HEAD are served.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "httpd.h"
#include "log.h"
#include "metrics.h"

#define HTTPD_MAX_CONNECTIONS 64
#define HTTPD_MEMORY_LIMIT    (16 * 1024)
#define HTTPD_TIMEOUT_S	      10
#define HTTPD_MAX_ADDR	      64

struct weir_httpd {
	struct MHD_Daemon *daemon;
	struct weir_ctx *ctx;
	pthread_mutex_t lock;
	unsigned int port;
};

/* ---- listen address ------------------------------------------------------------------- */

static int parse_port(const char *addr, const char *s, unsigned int *port, struct weir_error *err)
{
	unsigned long v = 0;
	size_t n = strlen(s);

	if (!n)
		return weir_error_set(err, -EINVAL,
				      "listen address \"%s\": missing port after ':' (e.g. %s)",
				      addr, WEIR_HTTPD_DEFAULT_LISTEN);
	if (n > 5 || strspn(s, "0123456789") != n)
		return weir_error_set(err, -EINVAL,
				      "listen address \"%s\": bad port \"%s\": expected a number "
				      "from 0 to 65535",
				      addr, s);
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	if (v > 65535)
		return weir_error_set(err, -EINVAL,
				      "listen address \"%s\": bad port \"%s\": expected a number "
				      "from 0 to 65535",
				      addr, s);
	*port = (unsigned int)v;
	return 0;
}

int weir_httpd_parse_addr(const char *listen_addr, struct sockaddr *addr, unsigned int *addrlen,
			  struct weir_error *err)
{
	const char *a = listen_addr, *colon, *close;
	struct sockaddr_in *s4 = (struct sockaddr_in *)addr;
	char host[HTTPD_MAX_ADDR];
	unsigned int port;
	size_t hl;
	int r;

	if (!a || !*a)
		return weir_error_set(err, -EINVAL,
				      "listen address is empty: expected IPV4:PORT or [IPV6]:PORT, "
				      "e.g. %s or [::1]:9464",
				      WEIR_HTTPD_DEFAULT_LISTEN);
	if (strlen(a) >= HTTPD_MAX_ADDR)
		return weir_error_set(err, -EINVAL, "listen address \"%.64s...\": too long", a);
	if (a[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)addr;

		close = strchr(a, ']');
		if (!close)
			return weir_error_set(err, -EINVAL,
					      "listen address \"%s\": missing ']' after the IPv6 "
					      "address (e.g. [::1]:9464)",
					      a);
		hl = (size_t)(close - a - 1);
		memcpy(host, a + 1, hl);
		host[hl] = '\0';
		if (close[1] != ':')
			return weir_error_set(
				err, -EINVAL,
				"listen address \"%s\": expected ':' and a port after "
				"']' (e.g. [::1]:9464)",
				a);
		if (*addrlen < sizeof(*s6))
			return -ENOSPC;
		memset(s6, 0, sizeof(*s6));
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return weir_error_set(err, -EINVAL,
					      "listen address \"%s\": bad IPv6 address \"%s\"", a,
					      host);
		r = parse_port(a, close + 2, &port, err);
		if (r)
			return r;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*addrlen = sizeof(*s6);
		return 0;
	}

	colon = strchr(a, ':');
	if (!colon)
		return weir_error_set(err, -EINVAL,
				      "listen address \"%s\": missing port: expected IPV4:PORT or "
				      "[IPV6]:PORT, e.g. %s",
				      a, WEIR_HTTPD_DEFAULT_LISTEN);
	if (strchr(colon + 1, ':'))
		return weir_error_set(err, -EINVAL,
				      "listen address \"%s\": an IPv6 address goes in brackets, "
				      "e.g. [::1]:9464",
				      a);
	hl = (size_t)(colon - a);
	memcpy(host, a, hl);
	host[hl] = '\0';
	if (*addrlen < sizeof(*s4))
		return -ENOSPC;
	memset(s4, 0, sizeof(*s4));
	if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
		return weir_error_set(err, -EINVAL,
				      "listen address \"%s\": bad IPv4 address \"%s\": expected "
				      "four decimal numbers such as 127.0.0.1 (host names are not "
				      "resolved)",
				      a, host);
	r = parse_port(a, colon + 1, &port, err);
	if (r)
		return r;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	*addrlen = sizeof(*s4);
	return 0;
}

/* ---- requests ------------------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *text,
			     const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result serve_metrics(struct weir_httpd *h, struct MHD_Connection *c)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *text = NULL;
	size_t len = 0;
	int r;

	pthread_mutex_lock(&h->lock);
	r = weir_metrics_render(h->ctx, &text, &len);
	pthread_mutex_unlock(&h->lock);
	if (r) {
		pr_warn("metrics: cannot render: %s", strerror(-r));
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read weir's state\n", NULL);
	}
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, WEIR_METRICS_CONTENT_TYPE);
	ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	struct weir_httpd *h = cls;

	/*
	 * Answer on the first call: nothing here reads a body, and MHD closes the connection
	 * after the reply when a request came with one.
	 */
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: use GET\n",
			     "GET, HEAD");
	if (!strcmp(url, "/metrics"))
		return serve_metrics(h, c);
	if (!strcmp(url, "/healthz"))
		return reply(c, MHD_HTTP_OK, "ok\n", NULL);
	if (!strcmp(url, "/"))
		return reply(c, MHD_HTTP_OK, "weir metrics: GET /metrics, GET /healthz\n", NULL);
	return reply(c, MHD_HTTP_NOT_FOUND, "not found: GET /metrics or /healthz\n", NULL);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	/* client mistakes (bad requests, resets) are routine for a server: debug only */
	pr_debug("httpd: %s", line);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

int weir_httpd_start(struct weir_httpd **out, const char *listen_addr, struct weir_ctx *ctx,
		     struct weir_error *err)
{
	struct sockaddr_storage ss;
	unsigned int sslen = sizeof(ss);
	const union MHD_DaemonInfo *info;
	struct weir_httpd *h;
	unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	int r;

	if (!listen_addr)
		listen_addr = WEIR_HTTPD_DEFAULT_LISTEN;
	r = weir_httpd_parse_addr(listen_addr, (struct sockaddr *)&ss, &sslen, err);
	if (r)
		return r;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h = calloc(1, sizeof(*h));
	if (!h)
		return weir_error_set(err, -ENOMEM, "metrics server: out of memory");
	h->ctx = ctx;
	pthread_mutex_init(&h->lock, NULL);
	errno = 0;
	h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
				     (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
				     (unsigned int)HTTPD_MAX_CONNECTIONS,
				     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTPD_MEMORY_LIMIT,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTPD_TIMEOUT_S,
				     MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
				     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
	if (!h->daemon) {
		r = errno ? -errno : -EADDRINUSE;
		pthread_mutex_destroy(&h->lock);
		free(h);
		return weir_error_set(err, r, "metrics server: cannot listen on %s: %s",
				      listen_addr, strerror(-r));
	}
	info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : 0;
	*out = h;
	return 0;
}

void weir_httpd_stop(struct weir_httpd *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->daemon);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void weir_httpd_lock(struct weir_httpd *h)
{
	pthread_mutex_lock(&h->lock);
}

void weir_httpd_unlock(struct weir_httpd *h)
{
	pthread_mutex_unlock(&h->lock);
}

unsigned int weir_httpd_port(const struct weir_httpd *h)
{
	return h->port;
}
