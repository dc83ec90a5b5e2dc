// SPDX-License-Identifier: Apache-2.0
/*
 * weir-nri's plugin connection state machine and event loop: see plugin.h and
 * docs/nri-protocol.md §3-§7.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "nri_log.h"
#include "mux.h"
#include "plugin.h"
#include "ttrpc.h"

#define READ_CHUNK     (64u << 10)
#define READS_PER_STEP 64

struct nri_plugin {
	struct nri_plugin_config cfg;
	char *socket_path;
	char *name;
	char *idx;
	uint32_t events;
	const struct nri_handlers *h;
	void *u;

	int fd;
	int fd_given; /* cfg.fd was used: no reconnect after EOF */
	int wake[2];
	volatile int stop;
	int done;

	struct nri_mux mux;
	struct ttrpc_rx rx[NRI_MUX_NCONN];
	struct ttrpc_server server;
	struct ttrpc_client client;

	/* connection progress */
	int connected, registered, configured, synced;
	unsigned connects;
	char drop[256]; /* set by callbacks: the loop drops the connection with this reason */

	/* runtime facts from Configure */
	char runtime[128];
	uint64_t request_timeout_ms;

	/* timers, CLOCK_MONOTONIC ms */
	uint64_t next_connect_ms;
	unsigned backoff_ms;
	unsigned connect_failures;
	uint64_t partial_since_ms;

	/* Synchronize statistics for the current connection */
	size_t sync_pods, sync_ctrs, sync_chunks;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void set_drop(struct nri_plugin *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_drop(struct nri_plugin *p, const char *fmt, ...)
{
	va_list ap;

	if (p->drop[0])
		return; /* keep the first reason */
	va_start(ap, fmt);
	vsnprintf(p->drop, sizeof(p->drop), fmt, ap);
	va_end(ap);
}

int nri_check_name(const char *name, struct weir_error *err)
{
	size_t n;

	if (!name || !*name)
		return weir_error_set(err, -EINVAL, "invalid plugin name: empty");
	n = strlen(name);
	if (n > 128)
		return weir_error_set(err, -EINVAL,
				      "invalid plugin name: longer than 128 characters");
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '_' || c == '.' || c == '+' || c == '-')
			continue;
		return weir_error_set(err, -EINVAL,
				      "invalid plugin name %s: character %zu is not one of "
				      "[A-Za-z0-9_.+-]",
				      WEIR_Q(name), i + 1);
	}
	return 0;
}

int nri_check_index(const char *idx, struct weir_error *err)
{
	if (!idx || strlen(idx) != 2 || idx[0] < '0' || idx[0] > '9' || idx[1] < '0' ||
	    idx[1] > '9')
		return weir_error_set(
			err, -EINVAL,
			"invalid plugin index %s: must be exactly two digits, 00 to 99",
			WEIR_Q(idx));
	return 0;
}

uint32_t nri_handlers_events(const struct nri_handlers *h)
{
	uint32_t m = 0;

	if (h->run_pod)
		m |= NRI_EV_BIT(NRI_EV_RUN_POD_SANDBOX);
	if (h->stop_pod)
		m |= NRI_EV_BIT(NRI_EV_STOP_POD_SANDBOX);
	if (h->remove_pod)
		m |= NRI_EV_BIT(NRI_EV_REMOVE_POD_SANDBOX);
	if (h->create_container)
		m |= NRI_EV_BIT(NRI_EV_CREATE_CONTAINER);
	if (h->start_container)
		m |= NRI_EV_BIT(NRI_EV_START_CONTAINER);
	if (h->update_container)
		m |= NRI_EV_BIT(NRI_EV_UPDATE_CONTAINER);
	if (h->stop_container)
		m |= NRI_EV_BIT(NRI_EV_STOP_CONTAINER);
	if (h->remove_container)
		m |= NRI_EV_BIT(NRI_EV_REMOVE_CONTAINER);
	return m;
}

enum nri_plugin_phase nri_plugin_phase(const struct nri_plugin *p)
{
	if (p->done)
		return NRI_PHASE_DONE;
	if (!p->connected)
		return NRI_PHASE_DISCONNECTED;
	if (p->synced)
		return NRI_PHASE_ACTIVE;
	if (p->configured)
		return NRI_PHASE_SYNCING;
	if (p->registered)
		return NRI_PHASE_REGISTERED;
	return NRI_PHASE_REGISTERING;
}

uint32_t nri_plugin_events(const struct nri_plugin *p)
{
	return p->events;
}

unsigned nri_plugin_connects(const struct nri_plugin *p)
{
	return p->connects;
}

/* ---- event dispatch ---- */

static const Nri__PodSandbox empty_pod = NRI__PKG__API__V1ALPHA1__POD_SANDBOX__INIT;
static const Nri__Container empty_ctr = NRI__PKG__API__V1ALPHA1__CONTAINER__INIT;

static const char *event_name(int ev)
{
	static const char *const names[] = {
		[NRI_EV_UNKNOWN] = "Unknown",
		[NRI_EV_RUN_POD_SANDBOX] = "RunPodSandbox",
		[NRI_EV_STOP_POD_SANDBOX] = "StopPodSandbox",
		[NRI_EV_REMOVE_POD_SANDBOX] = "RemovePodSandbox",
		[NRI_EV_CREATE_CONTAINER] = "CreateContainer",
		[NRI_EV_POST_CREATE_CONTAINER] = "PostCreateContainer",
		[NRI_EV_START_CONTAINER] = "StartContainer",
		[NRI_EV_POST_START_CONTAINER] = "PostStartContainer",
		[NRI_EV_UPDATE_CONTAINER] = "UpdateContainer",
		[NRI_EV_POST_UPDATE_CONTAINER] = "PostUpdateContainer",
		[NRI_EV_STOP_CONTAINER] = "StopContainer",
		[NRI_EV_REMOVE_CONTAINER] = "RemoveContainer",
		[NRI_EV_UPDATE_POD_SANDBOX] = "UpdatePodSandbox",
		[NRI_EV_POST_UPDATE_POD_SANDBOX] = "PostUpdatePodSandbox",
		[NRI_EV_VALIDATE_CONTAINER_ADJUSTMENT] = "ValidateContainerAdjustment",
	};

	if (ev < 0 || (size_t)ev >= sizeof(names) / sizeof(names[0]) || !names[ev])
		return "?";
	return names[ev];
}

/*
 * A request answered after the runtime's timeout gets the plugin dropped, and the container
 * started without it: say so from half the budget on, while there is time to look.
 */
static void check_budget(const struct nri_plugin *p, const char *what, uint64_t us)
{
	uint64_t ms = us / 1000;

	if (ms >= p->request_timeout_ms)
		nri_warn("%s took %" PRIu64 " ms, past the runtime's request timeout of %" PRIu64
			 " ms: it drops this plugin and goes on without it",
			 what, ms, p->request_timeout_ms);
	else if (ms >= p->request_timeout_ms / 2)
		nri_warn("%s took %" PRIu64
			 " ms, over half the runtime's request timeout of %" PRIu64
			 " ms (past it, the runtime drops this plugin)",
			 what, ms, p->request_timeout_ms);
}

typedef int (*pod_fn)(void *u, const Nri__PodSandbox *pod, struct weir_error *err);
typedef int (*ctr_fn)(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
		      struct weir_error *err);

static void dispatch(struct nri_plugin *p, int ev, const Nri__PodSandbox *pod,
		     const Nri__Container *ctr, struct ttrpc_reply *rep)
{
	struct weir_error err = {0};
	pod_fn pf = NULL;
	ctr_fn cf = NULL;
	uint64_t t0, dt;
	int rc;

	switch (ev) {
	case NRI_EV_RUN_POD_SANDBOX:
		pf = p->h->run_pod;
		break;
	case NRI_EV_STOP_POD_SANDBOX:
		pf = p->h->stop_pod;
		break;
	case NRI_EV_REMOVE_POD_SANDBOX:
		pf = p->h->remove_pod;
		break;
	case NRI_EV_CREATE_CONTAINER:
		cf = p->h->create_container;
		break;
	case NRI_EV_START_CONTAINER:
		cf = p->h->start_container;
		break;
	case NRI_EV_UPDATE_CONTAINER:
		cf = p->h->update_container;
		break;
	case NRI_EV_STOP_CONTAINER:
		cf = p->h->stop_container;
		break;
	case NRI_EV_REMOVE_CONTAINER:
		cf = p->h->remove_container;
		break;
	default:
		break;
	}
	if (!pod)
		pod = &empty_pod;
	if (!ctr)
		ctr = &empty_ctr;
	if (!pf && !cf) {
		nri_debug("%s pod %s ctr %s: not subscribed, ignored", event_name(ev),
			  WEIR_QN(pod->id), WEIR_QN(ctr->id));
		return;
	}
	nri_debug("%s pod %s (%s/%s) ctr %s (%s) pid %" PRIu32, event_name(ev), WEIR_QN(pod->id),
		  WEIR_QN(pod->namespace_), WEIR_QN(pod->name), WEIR_QN(ctr->id),
		  WEIR_QN(ctr->name), cf ? ctr->pid : pod->pid);
	t0 = now_us();
	rc = pf ? pf(p->u, pod, &err) : cf(p->u, pod, ctr, &err);
	dt = now_us() - t0;
	nri_debug("%s pod %s ctr %s handled in %" PRIu64 " us", event_name(ev), WEIR_QN(pod->id),
		  WEIR_QN(ctr->id), dt);
	check_budget(p, event_name(ev), dt);
	if (rc) {
		if (!err.msg[0])
			weir_error_set(&err, rc, "weir: %s failed: %s", event_name(ev),
				       strerror(rc < 0 ? -rc : EIO));
		nri_warn("%s pod %s ctr %s refused: %s", event_name(ev), WEIR_QN(pod->id),
			 WEIR_QN(ctr->id), err.msg);
		ttrpc_reply_error(rep, TTRPC_UNKNOWN, "%s", err.msg);
	}
}

/* ---- Plugin service methods ---- */

static void serve_configure(void *u, const struct ttrpc_call_info *ci, const uint8_t *data,
			    size_t len, struct ttrpc_reply *rep)
{
	struct nri_plugin *p = u;
	Nri__Pkg__Api__V1alpha1__ConfigureRequest *req;
	Nri__Pkg__Api__V1alpha1__ConfigureResponse resp =
		NRI__PKG__API__V1ALPHA1__CONFIGURE_RESPONSE__INIT;

	req = nri__pkg__api__v1alpha1__configure_request__unpack(NULL, len, data);
	if (!req) {
		nri_error("Configure: malformed ConfigureRequest (%zu bytes)", len);
		ttrpc_reply_error(rep, TTRPC_INVALID_ARGUMENT, "malformed ConfigureRequest");
		return;
	}
	snprintf(p->runtime, sizeof(p->runtime), "%s %s", req->runtime_name, req->runtime_version);
	if (req->request_timeout > 0)
		p->request_timeout_ms = (uint64_t)req->request_timeout;
	else if (ci->timeout_nano > 0)
		p->request_timeout_ms = (uint64_t)ci->timeout_nano / 1000000;
	nri_info("configured by %s%s%s: events 0x%" PRIx32 ", request timeout %" PRIu64 " ms",
		 p->runtime, req->nri_version[0] ? ", NRI " : "", req->nri_version, p->events,
		 p->request_timeout_ms);
	if (p->h->configured)
		p->h->configured(p->u, req->runtime_name, req->runtime_version);
	nri__pkg__api__v1alpha1__configure_request__free_unpacked(req, NULL);

	p->configured = 1;
	p->sync_pods = p->sync_ctrs = p->sync_chunks = 0;
	resp.events = (int32_t)p->events;
	ttrpc_reply_message(rep, &resp.base);
}

static void serve_synchronize(void *u, const struct ttrpc_call_info *ci, const uint8_t *data,
			      size_t len, struct ttrpc_reply *rep)
{
	struct nri_plugin *p = u;
	Nri__Pkg__Api__V1alpha1__SynchronizeRequest *req;
	Nri__Pkg__Api__V1alpha1__SynchronizeResponse resp =
		NRI__PKG__API__V1ALPHA1__SYNCHRONIZE_RESPONSE__INIT;
	struct weir_error err = {0};
	uint64_t t0;
	int rc = 0;

	req = nri__pkg__api__v1alpha1__synchronize_request__unpack(NULL, len, data);
	if (!req) {
		nri_error("Synchronize: malformed SynchronizeRequest (%zu bytes)", len);
		ttrpc_reply_error(rep, TTRPC_INVALID_ARGUMENT, "malformed SynchronizeRequest");
		return;
	}
	p->sync_chunks++;
	p->sync_pods += req->n_pods;
	p->sync_ctrs += req->n_containers;
	nri_debug("Synchronize chunk %zu: %zu pods, %zu containers, more=%d", p->sync_chunks,
		  req->n_pods, req->n_containers, req->more);
	t0 = now_us();
	if (p->h->synchronize)
		rc = p->h->synchronize(p->u, req->pods, req->n_pods, req->containers,
				       req->n_containers, req->more, &err);
	t0 = now_us() - t0;
	nri_debug("Synchronize chunk %zu handled in %" PRIu64 " us", p->sync_chunks, t0);
	check_budget(p, "Synchronize", t0);
	/* a chunk with more=true must get no updates and more=true: echo `more` */
	resp.more = req->more;
	if (rc) {
		if (!err.msg[0])
			weir_error_set(&err, rc, "weir: synchronize failed: %s",
				       strerror(rc < 0 ? -rc : EIO));
		nri_error("Synchronize failed: %s", err.msg);
		ttrpc_reply_error(rep, TTRPC_UNKNOWN, "%s", err.msg);
	} else {
		ttrpc_reply_message(rep, &resp.base);
		if (!req->more) {
			p->synced = 1;
			p->backoff_ms = p->cfg.backoff_min_ms;
			p->connect_failures = 0;
			nri_info("synchronized with %s: %zu pods, %zu containers in %zu chunk%s",
				 p->runtime, p->sync_pods, p->sync_ctrs, p->sync_chunks,
				 p->sync_chunks == 1 ? "" : "s");
		}
	}
	nri__pkg__api__v1alpha1__synchronize_request__free_unpacked(req, NULL);
}

static void serve_state_change(void *u, const struct ttrpc_call_info *ci, const uint8_t *data,
			       size_t len, struct ttrpc_reply *rep)
{
	struct nri_plugin *p = u;
	Nri__Pkg__Api__V1alpha1__StateChangeEvent *ev;

	ev = nri__pkg__api__v1alpha1__state_change_event__unpack(NULL, len, data);
	if (!ev) {
		nri_error("StateChange: malformed StateChangeEvent (%zu bytes)", len);
		ttrpc_reply_error(rep, TTRPC_INVALID_ARGUMENT, "malformed StateChangeEvent");
		return;
	}
	dispatch(p, ev->event, ev->pod, ev->container, rep);
	nri__pkg__api__v1alpha1__state_change_event__free_unpacked(ev, NULL);
}

static void serve_shutdown(void *u, const struct ttrpc_call_info *ci, const uint8_t *data,
			   size_t len, struct ttrpc_reply *rep)
{
	nri_info("runtime requested Shutdown");
}

/* Methods whose request is {pod 1, container 2} or {pod 1}, and whose reply has no content. */
static const struct event_method {
	const char *name;
	const ProtobufCMessageDescriptor *req;
	int ev;
} event_methods[] = {
	{"CreateContainer", &nri__pkg__api__v1alpha1__create_container_request__descriptor,
	 NRI_EV_CREATE_CONTAINER},
	{"UpdateContainer", &nri__pkg__api__v1alpha1__update_container_request__descriptor,
	 NRI_EV_UPDATE_CONTAINER},
	{"StopContainer", &nri__pkg__api__v1alpha1__stop_container_request__descriptor,
	 NRI_EV_STOP_CONTAINER},
	/* v0.12 dedicated methods */
	{"RunPodSandbox", &nri__pkg__api__v1alpha1__run_pod_sandbox_request__descriptor,
	 NRI_EV_RUN_POD_SANDBOX},
	{"StopPodSandbox", &nri__pkg__api__v1alpha1__stop_pod_sandbox_request__descriptor,
	 NRI_EV_STOP_POD_SANDBOX},
	{"RemovePodSandbox", &nri__pkg__api__v1alpha1__remove_pod_sandbox_request__descriptor,
	 NRI_EV_REMOVE_POD_SANDBOX},
	{"PostUpdatePodSandbox",
	 &nri__pkg__api__v1alpha1__post_update_pod_sandbox_request__descriptor,
	 NRI_EV_POST_UPDATE_POD_SANDBOX},
	{"PostCreateContainer", &nri__pkg__api__v1alpha1__post_create_container_request__descriptor,
	 NRI_EV_POST_CREATE_CONTAINER},
	{"StartContainer", &nri__pkg__api__v1alpha1__start_container_request__descriptor,
	 NRI_EV_START_CONTAINER},
	{"PostStartContainer", &nri__pkg__api__v1alpha1__post_start_container_request__descriptor,
	 NRI_EV_POST_START_CONTAINER},
	{"PostUpdateContainer", &nri__pkg__api__v1alpha1__post_update_container_request__descriptor,
	 NRI_EV_POST_UPDATE_CONTAINER},
	{"RemoveContainer", &nri__pkg__api__v1alpha1__remove_container_request__descriptor,
	 NRI_EV_REMOVE_CONTAINER},
};

#define N_EVENT_METHODS (sizeof(event_methods) / sizeof(event_methods[0]))

/* The message-typed field `name` of msg, or NULL. */
static const void *sub_message(const ProtobufCMessage *msg, const char *name)
{
	const ProtobufCFieldDescriptor *f;

	f = protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name);
	if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
		return NULL;
	return *(const void *const *)((const char *)msg + f->offset);
}

static void serve_event(void *u, const struct ttrpc_call_info *ci, const uint8_t *data, size_t len,
			struct ttrpc_reply *rep)
{
	struct nri_plugin *p = u;
	const struct event_method *em = NULL;
	ProtobufCMessage *req;

	for (size_t i = 0; i < N_EVENT_METHODS && !em; i++)
		if (!strcmp(event_methods[i].name, ci->method))
			em = &event_methods[i];
	if (!em) {
		ttrpc_reply_error(rep, TTRPC_UNIMPLEMENTED, "method %s", ci->method);
		return;
	}
	req = protobuf_c_message_unpack(em->req, NULL, len, data);
	if (!req) {
		nri_error("%s: malformed %s (%zu bytes)", ci->method, em->req->short_name, len);
		ttrpc_reply_error(rep, TTRPC_INVALID_ARGUMENT, "malformed %s", em->req->short_name);
		return;
	}
	dispatch(p, em->ev, sub_message(req, "pod"), sub_message(req, "container"), rep);
	protobuf_c_message_free_unpacked(req, NULL);
}

static const struct ttrpc_method plugin_methods[] = {
	{"Configure", serve_configure},	       {"Synchronize", serve_synchronize},
	{"Shutdown", serve_shutdown},	       {"StateChange", serve_state_change},
	{"CreateContainer", serve_event},      {"UpdateContainer", serve_event},
	{"StopContainer", serve_event},	       {"RunPodSandbox", serve_event},
	{"StopPodSandbox", serve_event},       {"RemovePodSandbox", serve_event},
	{"PostUpdatePodSandbox", serve_event}, {"PostCreateContainer", serve_event},
	{"StartContainer", serve_event},       {"PostStartContainer", serve_event},
	{"PostUpdateContainer", serve_event},  {"RemoveContainer", serve_event},
};

static const struct ttrpc_service plugin_service = {
	.name = NRI_SERVICE_PLUGIN,
	.methods = plugin_methods,
	.nmethods = sizeof(plugin_methods) / sizeof(plugin_methods[0]),
};

/* ---- connection ---- */

static void register_done(void *u, uint32_t stream, int code, const char *msg,
			  const uint8_t *payload, size_t len)
{
	struct nri_plugin *p = u;

	if (!p->connected)
		return; /* failed by a disconnect */
	if (code) {
		nri_error("runtime refused registration as %s-%s (code %d): %s", p->idx, p->name,
			  code, msg);
		set_drop(p, "registration failed");
		return;
	}
	p->registered = 1;
	nri_info("registered as %s-%s", p->idx, p->name);
}

static int on_data(void *u, uint32_t conn, struct nri_buf *rx)
{
	struct nri_plugin *p = u;
	struct ttrpc_msg msg;
	int err;

	while (!p->drop[0] && ttrpc_rx_next(&p->rx[conn], rx, &msg) == 1) {
		if (conn == NRI_CONN_PLUGIN) {
			err = ttrpc_server_handle(&p->server, &p->mux, conn, &msg);
			if (err) {
				set_drop(p, "cannot queue a response: %s", strerror(-err));
			}
		} else {
			ttrpc_client_handle(&p->client, &msg);
		}
		ttrpc_rx_done(rx, &msg);
	}
	return p->drop[0] ? -ECONNABORTED : 0;
}

static void disconnect(struct nri_plugin *p, const char *why)
{
	int was = p->connected;

	if (p->fd >= 0) {
		/* try to get queued replies out (an error reply, say) before closing */
		nri_mux_flush(&p->mux, p->fd);
		close(p->fd);
	}
	p->fd = -1;
	p->connected = p->registered = p->configured = p->synced = 0;
	ttrpc_client_reset(&p->client, TTRPC_UNAVAILABLE, "connection closed");
	ttrpc_server_reset(&p->server);
	nri_mux_reset(&p->mux);
	memset(p->rx, 0, sizeof(p->rx));
	p->partial_since_ms = 0;
	p->drop[0] = '\0';

	if (p->stop) {
		nri_info("%s", why);
		p->done = 1;
	} else if (p->fd_given) {
		nri_info("%s; the runtime owns this plugin's socket (fd %d): exiting", why,
			 p->cfg.fd);
		p->done = 1;
	} else {
		p->next_connect_ms = now_ms() + p->backoff_ms;
		if (was)
			nri_warn("%s; reconnecting in %u ms", why, p->backoff_ms);
		p->backoff_ms = p->backoff_ms * 2 > p->cfg.backoff_max_ms ? p->cfg.backoff_max_ms
									  : p->backoff_ms * 2;
	}
	if (was && p->h->disconnected)
		p->h->disconnected(p->u);
}

static int open_socket(struct nri_plugin *p)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(p->socket_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, p->socket_path, strlen(p->socket_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		/* a unix connect that would block means a full backlog: retry later */
		return e == EINPROGRESS ? -EAGAIN : -e;
	}
	return fd;
}

static int start_connection(struct nri_plugin *p)
{
	Nri__Pkg__Api__V1alpha1__RegisterPluginRequest req =
		NRI__PKG__API__V1ALPHA1__REGISTER_PLUGIN_REQUEST__INIT;
	int fd, err, fl;

	if (p->fd_given) {
		if (p->connects) {
			p->done = 1;
			return 0;
		}
		fd = p->cfg.fd;
		fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			nri_error("plugin socket fd %d is not usable: %s", fd, strerror(errno));
			p->done = 1;
			return -EBADF;
		}
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	} else {
		fd = open_socket(p);
		if (fd < 0) {
			p->connect_failures++;
			if (p->connect_failures == 1 || p->connect_failures % 60 == 0)
				nri_warn("cannot connect to %s: %s; retrying every %u ms at most",
					 p->socket_path, strerror(-fd), p->cfg.backoff_max_ms);
			else
				nri_debug("cannot connect to %s: %s", p->socket_path,
					  strerror(-fd));
			disconnect(p, "connect failed");
			return 0;
		}
	}
	p->fd = fd;
	p->connected = 1;
	p->connects++;
	p->request_timeout_ms = 2000;
	nri_info("connected to %s, registering as %s-%s",
		 p->fd_given ? "the runtime (fd 3)" : p->socket_path, p->idx, p->name);

	req.plugin_name = p->name;
	req.plugin_idx = p->idx;
	err = ttrpc_client_call(&p->client, &p->mux, NRI_CONN_RUNTIME, NRI_SERVICE_RUNTIME,
				"RegisterPlugin", &req.base, p->cfg.register_timeout_ms, now_ms(),
				register_done, p, NULL);
	if (err) {
		set_drop(p, "cannot send RegisterPlugin: %s", strerror(-err));
		return 0;
	}
	return 0;
}

int nri_plugin_new(struct nri_plugin **pp, const struct nri_plugin_config *cfg,
		   const struct nri_handlers *h, void *u, struct weir_error *err)
{
	struct nri_plugin *p;
	int rc;

	*pp = NULL;
	rc = nri_check_name(cfg->name, err);
	if (!rc)
		rc = nri_check_index(cfg->idx, err);
	if (rc)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p)
		return weir_error_set(err, -ENOMEM, "out of memory");
	p->cfg = *cfg;
	p->h = h;
	p->u = u;
	p->fd = -1;
	p->wake[0] = p->wake[1] = -1;
	p->events = cfg->events ? cfg->events : nri_handlers_events(h);
	if (!p->events || (p->events & ~NRI_EV_MASK_PORTABLE)) {
		rc = weir_error_set(err, -EINVAL,
				    "invalid event mask 0x%" PRIx32
				    ": must be non-zero and within 0x%x",
				    p->events, NRI_EV_MASK_PORTABLE);
		goto fail;
	}
	if (!p->cfg.backoff_min_ms)
		p->cfg.backoff_min_ms = 100;
	if (!p->cfg.backoff_max_ms)
		p->cfg.backoff_max_ms = 5000;
	if (p->cfg.backoff_max_ms < p->cfg.backoff_min_ms)
		p->cfg.backoff_max_ms = p->cfg.backoff_min_ms;
	if (!p->cfg.register_timeout_ms)
		p->cfg.register_timeout_ms = 15000;
	if (!p->cfg.stall_timeout_ms)
		p->cfg.stall_timeout_ms = 10000;
	p->backoff_ms = p->cfg.backoff_min_ms;
	p->request_timeout_ms = 2000;
	p->fd_given = cfg->fd >= 0;
	p->socket_path = strdup(cfg->socket_path ? cfg->socket_path : NRI_DEFAULT_SOCKET);
	p->name = strdup(cfg->name);
	p->idx = strdup(cfg->idx);
	if (!p->socket_path || !p->name || !p->idx) {
		rc = weir_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	if (!p->fd_given) {
		struct sockaddr_un sa;

		if (strlen(p->socket_path) >= sizeof(sa.sun_path)) {
			rc = weir_error_set(err, -ENAMETOOLONG, "socket path %s is too long",
					    p->socket_path);
			goto fail;
		}
	}
	if (pipe2(p->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
		rc = weir_error_set(err, -errno, "pipe: %s", strerror(errno));
		goto fail;
	}
	nri_mux_init(&p->mux, on_data, p);
	ttrpc_server_init(&p->server, &plugin_service, 1, p);
	ttrpc_client_init(&p->client);
	*pp = p;
	return 0;
fail:
	nri_plugin_free(p);
	return rc;
}

void nri_plugin_free(struct nri_plugin *p)
{
	if (!p)
		return;
	if (p->fd >= 0)
		close(p->fd);
	if (p->wake[0] >= 0)
		close(p->wake[0]);
	if (p->wake[1] >= 0)
		close(p->wake[1]);
	nri_mux_free(&p->mux);
	free(p->socket_path);
	free(p->name);
	free(p->idx);
	free(p);
}

void nri_plugin_stop(struct nri_plugin *p)
{
	int saved = errno;

	p->stop = 1;
	if (write(p->wake[1], "x", 1) < 0) {
		/* the pipe is full: a wake-up is pending anyway */
	}
	errno = saved;
}

static int read_input(struct nri_plugin *p)
{
	uint8_t buf[READ_CHUNK];
	ssize_t n;
	int err;

	for (int i = 0; i < READS_PER_STEP; i++) {
		n = read(p->fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			set_drop(p, "read failed: %s", strerror(errno));
			return -errno;
		}
		if (n == 0) {
			if (nri_mux_partial(&p->mux) ||
			    ttrpc_rx_partial(&p->rx[1], &p->mux.rx[1]) ||
			    ttrpc_rx_partial(&p->rx[2], &p->mux.rx[2]))
				set_drop(
					p,
					"runtime closed the connection in the middle of a message");
			else
				set_drop(p, "runtime closed the connection");
			return -ECONNRESET;
		}
		err = nri_mux_feed(&p->mux, buf, (size_t)n);
		if (err) {
			if (err == -EPROTO)
				set_drop(p,
					 "protocol error: frame length %" PRIu32
					 " exceeds %u bytes",
					 p->mux.remaining, NRI_MUX_MAX_FRAME);
			else if (err == -ENOBUFS)
				set_drop(p,
					 "protocol error: more than %u bytes buffered on one "
					 "connection",
					 NRI_MUX_MAX_RX);
			else if (err != -ECONNABORTED)
				set_drop(p, "input error: %s", strerror(-err));
			return err;
		}
		if ((size_t)n < sizeof(buf))
			return 0;
	}
	return 0;
}

static int is_partial(struct nri_plugin *p)
{
	return nri_mux_partial(&p->mux) || ttrpc_rx_partial(&p->rx[1], &p->mux.rx[1]) ||
	       ttrpc_rx_partial(&p->rx[2], &p->mux.rx[2]);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

int nri_plugin_step(struct nri_plugin *p, int timeout_ms)
{
	struct pollfd pfd[2];
	uint64_t now, deadline = UINT64_MAX;
	int n, wait;
	char tmp[64];

	if (p->stop || p->done) {
		if (p->connected)
			disconnect(p, "stopping");
		p->done = 1;
		return 1;
	}
	now = now_ms();
	if (!p->connected) {
		if (now >= p->next_connect_ms)
			start_connection(p);
		if (p->done)
			return 1;
	}

	if (p->connected) {
		deadline = ttrpc_client_next_deadline(&p->client);
		if (p->partial_since_ms)
			deadline = min_u64(deadline, p->partial_since_ms + p->cfg.stall_timeout_ms);
	} else {
		deadline = p->next_connect_ms;
	}
	wait = timeout_ms;
	if (deadline != UINT64_MAX) {
		uint64_t d = deadline > now ? deadline - now : 0;

		if (wait < 0 || d < (uint64_t)wait)
			wait = (int)min_u64(d, 60000);
	}

	pfd[0] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
	pfd[1] = (struct pollfd){.fd = p->connected ? p->fd : -1, .events = POLLIN};
	if (p->connected && nri_mux_pending(&p->mux))
		pfd[1].events |= POLLOUT;
	n = poll(pfd, 2, wait);
	if (n < 0 && errno != EINTR)
		return -errno;
	if (n > 0 && (pfd[0].revents & POLLIN)) {
		while (read(p->wake[0], tmp, sizeof(tmp)) > 0)
			;
	}
	if (p->stop)
		return nri_plugin_step(p, 0);

	if (p->connected && n > 0 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
		read_input(p);
	if (p->connected && !p->drop[0] && nri_mux_pending(&p->mux)) {
		int err = nri_mux_flush(&p->mux, p->fd);

		if (err && err != -EAGAIN)
			set_drop(p, "write failed: %s", strerror(-err));
	}

	if (p->connected) {
		now = now_ms();
		if (!p->drop[0] && ttrpc_client_expire(&p->client, now))
			set_drop(p, "the runtime did not answer in time");
		if (is_partial(p)) {
			if (!p->partial_since_ms)
				p->partial_since_ms = now;
			else if (now - p->partial_since_ms >= p->cfg.stall_timeout_ms)
				set_drop(p, "a message stayed incomplete for %u ms",
					 p->cfg.stall_timeout_ms);
		} else {
			p->partial_since_ms = 0;
		}
		if (p->drop[0]) {
			char why[sizeof(p->drop)];

			memcpy(why, p->drop, sizeof(why));
			disconnect(p, why);
		}
	}
	return p->done ? 1 : 0;
}

int nri_plugin_run(struct nri_plugin *p)
{
	int rc;

	while ((rc = nri_plugin_step(p, -1)) == 0)
		;
	return rc < 0 ? rc : 0;
}
