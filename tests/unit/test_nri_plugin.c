// SPDX-License-Identifier: Apache-2.0
/*
 * The plugin against a fake runtime written with weir-nri's own encoders: over a socketpair
 * (a launched plugin's fd 3) and over a listening unix socket (external plugin, reconnects).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "mux.h"
#include "nri_api.h"
#include "plugin.h"
#include "ttrpc.h"
#include "ttrpc.pb-c.h"

#define WEIR_MASK 0x62fu

/* ---- recording handlers ---- */

struct rec {
	int sync, sync_more, sync_pods, sync_ctrs;
	int run, stop_pod, remove_pod, create, start, stop, remove_ctr, disc;
	char last_pod[64], last_ctr[64];
	uint32_t last_pid;
};

static void note(struct rec *r, const Nri__PodSandbox *pod, const Nri__Container *ctr)
{
	snprintf(r->last_pod, sizeof(r->last_pod), "%s", pod->id);
	if (ctr) {
		snprintf(r->last_ctr, sizeof(r->last_ctr), "%s", ctr->id);
		r->last_pid = ctr->pid;
	}
}

static int h_sync(void *u, Nri__PodSandbox *const *pods, size_t npods, Nri__Container *const *ctrs,
		  size_t nctrs, int more, struct weir_error *err)
{
	struct rec *r = u;

	r->sync++;
	r->sync_more += more != 0;
	r->sync_pods += (int)npods;
	r->sync_ctrs += (int)nctrs;
	return 0;
}

static int h_run(void *u, const Nri__PodSandbox *pod, struct weir_error *err)
{
	((struct rec *)u)->run++;
	note(u, pod, NULL);
	return 0;
}

static int h_stop_pod(void *u, const Nri__PodSandbox *pod, struct weir_error *err)
{
	((struct rec *)u)->stop_pod++;
	return 0;
}

static int h_remove_pod(void *u, const Nri__PodSandbox *pod, struct weir_error *err)
{
	((struct rec *)u)->remove_pod++;
	note(u, pod, NULL);
	return 0;
}

static int h_create(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
		    struct weir_error *err)
{
	((struct rec *)u)->create++;
	note(u, pod, ctr);
	for (size_t i = 0; i < ctr->n_annotations; i++) {
		const ProtobufCBinaryData *k = &ctr->annotations[i]->key,
					  *v = &ctr->annotations[i]->value;

		if (k->len == 14 && !memcmp(k->data, "egress.weir.io", 14) && v->len == 5 &&
		    !memcmp(v->data, "bogus", 5)) {
			err->code = -EINVAL;
			snprintf(err->msg, sizeof(err->msg),
				 "weir: annotation \"egress.weir.io\": bad token \"bogus\"");
			return -EINVAL;
		}
	}
	return 0;
}

static int h_start(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
		   struct weir_error *err)
{
	((struct rec *)u)->start++;
	note(u, pod, ctr);
	return 0;
}

static int h_stop(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
		  struct weir_error *err)
{
	((struct rec *)u)->stop++;
	note(u, pod, ctr);
	return 0;
}

static int h_remove_ctr(void *u, const Nri__PodSandbox *pod, const Nri__Container *ctr,
			struct weir_error *err)
{
	((struct rec *)u)->remove_ctr++;
	return 0;
}

static void h_disc(void *u)
{
	((struct rec *)u)->disc++;
}

static const struct nri_handlers handlers = {
	.synchronize = h_sync,
	.run_pod = h_run,
	.stop_pod = h_stop_pod,
	.remove_pod = h_remove_pod,
	.create_container = h_create,
	.start_container = h_start,
	.stop_container = h_stop,
	.remove_container = h_remove_ctr,
	.disconnected = h_disc,
};

/* ---- the fake runtime ---- */

#define QMAX 32

struct rmsg {
	uint32_t conn;
	struct ttrpc_hdr hdr;
	uint8_t *data;
};

struct rt {
	int fd;
	struct nri_mux mux;
	struct ttrpc_rx rx[NRI_MUX_NCONN];
	struct rmsg q[QMAX];
	int nq;
	uint32_t next_stream; /* our calls on conn 1 */
	size_t split;	      /* >0: send frames of at most this many bytes */
	int eof;
};

static int rt_data(void *u, uint32_t conn, struct nri_buf *rx)
{
	struct rt *r = u;
	struct ttrpc_msg msg;

	while (ttrpc_rx_next(&r->rx[conn], rx, &msg) == 1) {
		assert_true(r->nq < QMAX);
		r->q[r->nq].conn = conn;
		r->q[r->nq].hdr = msg.hdr;
		r->q[r->nq].data = malloc(msg.hdr.len + 1);
		memcpy(r->q[r->nq].data, msg.data, msg.hdr.len);
		r->nq++;
		ttrpc_rx_done(rx, &msg);
	}
	return 0;
}

static void rt_init(struct rt *r, int fd)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->next_stream = 1;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	nri_mux_init(&r->mux, rt_data, r);
}

static void rt_close(struct rt *r)
{
	for (int i = 0; i < r->nq; i++)
		free(r->q[i].data);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	nri_mux_free(&r->mux);
}

static void rt_pump(struct rt *r)
{
	uint8_t buf[4096];
	ssize_t n;

	while ((n = read(r->fd, buf, sizeof(buf))) > 0)
		assert_int_equal(nri_mux_feed(&r->mux, buf, (size_t)n), 0);
	if (n == 0 || (n < 0 && errno == ECONNRESET))
		r->eof = 1;
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};

			poll(&pfd, 1, 100);
			continue;
		}
		assert_true(w > 0);
		p += w;
		n -= (size_t)w;
	}
}

/* Send raw bytes of conn's stream as frames (split into r->split-byte frames if set). */
static void rt_send_stream(struct rt *r, uint32_t conn, const uint8_t *p, size_t n)
{
	size_t step = r->split ? r->split : n;

	for (size_t off = 0; off < n; off += step) {
		size_t k = n - off < step ? n - off : step;

		assert_int_equal(nri_mux_queue_frame(&r->mux, conn, p + off, k), 0);
	}
	write_all(r->fd, nri_buf_head(&r->mux.tx), nri_buf_avail(&r->mux.tx));
	nri_buf_consume(&r->mux.tx, nri_buf_avail(&r->mux.tx));
}

static void rt_send_msg(struct rt *r, uint32_t conn, uint32_t stream, uint8_t type,
			const uint8_t *data, size_t len)
{
	uint8_t *buf = malloc(10 + len + 1);
	struct ttrpc_hdr h = {.len = (uint32_t)len, .stream = stream, .type = type};

	ttrpc_hdr_pack(buf, &h);
	if (len)
		memcpy(buf + 10, data, len);
	rt_send_stream(r, conn, buf, 10 + len);
	free(buf);
}

/* Call a Plugin method on conn 1; returns the stream id used. */
static uint32_t rt_call(struct rt *r, const char *service, const char *method,
			const ProtobufCMessage *msg)
{
	uint8_t *payload = NULL, *data;
	size_t plen = 0, len;
	uint32_t s = r->next_stream;

	if (msg)
		assert_int_equal(ttrpc_pack(msg, &payload, &plen), 0);
	assert_int_equal(
		ttrpc_encode_request(service, method, payload, plen, 2000000000LL, &data, &len), 0);
	rt_send_msg(r, NRI_CONN_PLUGIN, s, TTRPC_TYPE_REQUEST, data, len);
	free(payload);
	free(data);
	r->next_stream += 2;
	return s;
}

/* Step the plugin until the runtime side holds a message; pop it. */
static struct rmsg rt_expect(struct rt *r, struct nri_plugin *p)
{
	struct rmsg m;

	for (int i = 0; i < 300 && !r->nq; i++) {
		assert_int_equal(nri_plugin_step(p, 10), 0);
		rt_pump(r);
	}
	assert_true(r->nq > 0);
	m = r->q[0];
	memmove(r->q, r->q + 1, sizeof(r->q[0]) * (size_t)(r->nq - 1));
	r->nq--;
	return m;
}

/* Expect the response to a call of ours: returns it decoded. */
static Ttrpc__Response *rt_response(struct rt *r, struct nri_plugin *p, uint32_t stream)
{
	struct rmsg m = rt_expect(r, p);
	Ttrpc__Response *resp;

	assert_int_equal(m.conn, NRI_CONN_PLUGIN);
	assert_int_equal(m.hdr.type, TTRPC_TYPE_RESPONSE);
	assert_int_equal(m.hdr.stream, stream);
	resp = ttrpc__response__unpack(NULL, m.hdr.len, m.data);
	assert_non_null(resp);
	free(m.data);
	return resp;
}

static int resp_code(Ttrpc__Response *resp)
{
	int code = resp->status ? resp->status->code : 0;

	return code;
}

/* Call and expect success with an empty reply. */
static void rt_call_ok_empty(struct rt *r, struct nri_plugin *p, const char *method,
			     const ProtobufCMessage *msg)
{
	uint32_t s = rt_call(r, NRI_SERVICE_PLUGIN, method, msg);
	Ttrpc__Response *resp = rt_response(r, p, s);

	assert_int_equal(resp_code(resp), 0);
	assert_int_equal(resp->payload.len, 0);
	ttrpc__response__free_unpacked(resp, NULL);
}

/* Expect RegisterPlugin on conn 2; returns its stream id. */
static uint32_t rt_expect_register(struct rt *r, struct nri_plugin *p, const char *name,
				   const char *idx)
{
	struct rmsg m = rt_expect(r, p);
	Nri__Pkg__Api__V1alpha1__RegisterPluginRequest *reg;
	Ttrpc__Request *req;
	uint32_t s = m.hdr.stream;

	assert_int_equal(m.conn, NRI_CONN_RUNTIME);
	assert_int_equal(m.hdr.type, TTRPC_TYPE_REQUEST);
	assert_int_equal(m.hdr.flags, 0);
	req = ttrpc__request__unpack(NULL, m.hdr.len, m.data);
	assert_non_null(req);
	assert_string_equal(req->service, NRI_SERVICE_RUNTIME);
	assert_string_equal(req->method, "RegisterPlugin");
	reg = nri__pkg__api__v1alpha1__register_plugin_request__unpack(NULL, req->payload.len,
								       req->payload.data);
	assert_non_null(reg);
	assert_string_equal(reg->plugin_name, name);
	assert_string_equal(reg->plugin_idx, idx);
	nri__pkg__api__v1alpha1__register_plugin_request__free_unpacked(reg, NULL);
	ttrpc__request__free_unpacked(req, NULL);
	free(m.data);
	return s;
}

static void rt_reply(struct rt *r, uint32_t stream, int code, const char *msg)
{
	uint8_t *data;
	size_t len;

	assert_int_equal(ttrpc_encode_response(code, msg, NULL, 0, &data, &len), 0);
	rt_send_msg(r, NRI_CONN_RUNTIME, stream, TTRPC_TYPE_RESPONSE, data, len);
	free(data);
}

static void rt_configure(struct rt *r, struct nri_plugin *p)
{
	Nri__Pkg__Api__V1alpha1__ConfigureRequest cfg =
		NRI__PKG__API__V1ALPHA1__CONFIGURE_REQUEST__INIT;
	Nri__Pkg__Api__V1alpha1__ConfigureResponse *cr;
	Ttrpc__Response *resp;
	uint32_t s;

	cfg.runtime_name = "containerd";
	cfg.runtime_version = "1.7.24~ds1";
	s = rt_call(r, NRI_SERVICE_PLUGIN, "Configure", &cfg.base);
	resp = rt_response(r, p, s);
	assert_int_equal(resp_code(resp), 0);
	cr = nri__pkg__api__v1alpha1__configure_response__unpack(NULL, resp->payload.len,
								 resp->payload.data);
	assert_non_null(cr);
	assert_int_equal(cr->events, WEIR_MASK);
	assert_true(cr->events != 0 && !(cr->events & ~0x7ff));
	nri__pkg__api__v1alpha1__configure_response__free_unpacked(cr, NULL);
	ttrpc__response__free_unpacked(resp, NULL);
}

static void rt_sync(struct rt *r, struct nri_plugin *p, Nri__PodSandbox **pods, size_t npods,
		    Nri__Container **ctrs, size_t nctrs, int more)
{
	Nri__Pkg__Api__V1alpha1__SynchronizeRequest req =
		NRI__PKG__API__V1ALPHA1__SYNCHRONIZE_REQUEST__INIT;
	Nri__Pkg__Api__V1alpha1__SynchronizeResponse *sr;
	Ttrpc__Response *resp;
	uint32_t s;

	req.pods = pods;
	req.n_pods = npods;
	req.containers = ctrs;
	req.n_containers = nctrs;
	req.more = more;
	s = rt_call(r, NRI_SERVICE_PLUGIN, "Synchronize", &req.base);
	resp = rt_response(r, p, s);
	assert_int_equal(resp_code(resp), 0);
	if (more) {
		/* echo more=true, no updates: payload is exactly 10 01 */
		assert_int_equal(resp->payload.len, 2);
		assert_int_equal(resp->payload.data[0], 0x10);
		assert_int_equal(resp->payload.data[1], 0x01);
	} else {
		assert_int_equal(resp->payload.len, 0);
	}
	sr = nri__pkg__api__v1alpha1__synchronize_response__unpack(NULL, resp->payload.len,
								   resp->payload.data);
	assert_non_null(sr);
	assert_int_equal(sr->n_update, 0);
	assert_int_equal(sr->more, more);
	nri__pkg__api__v1alpha1__synchronize_response__free_unpacked(sr, NULL);
	ttrpc__response__free_unpacked(resp, NULL);
}

/* ---- test data ---- */

#define TEXT(s)                                                                                    \
	{                                                                                          \
		sizeof(s) - 1, (uint8_t *)(s)                                                      \
	}
static Nri__TextEntry pod_ann = {
	PROTOBUF_C_MESSAGE_INIT(&nri__pkg__api__v1alpha1__text_entry__descriptor),
	TEXT("egress.weir.io/pod"), TEXT("allow any udp/53")};
static Nri__TextEntry *pod_anns[] = {&pod_ann};
static Nri__TextEntry bad_ann = {
	PROTOBUF_C_MESSAGE_INIT(&nri__pkg__api__v1alpha1__text_entry__descriptor),
	TEXT("egress.weir.io"), TEXT("bogus")};
static Nri__TextEntry *bad_anns[] = {&bad_ann};

static void mk_pod(Nri__PodSandbox *pod, const char *id)
{
	nri__pkg__api__v1alpha1__pod_sandbox__init(pod);
	pod->id = (char *)id;
	pod->name = "web";
	pod->namespace_ = "default";
	pod->uid = "uid-1";
	pod->pid = 100;
	pod->annotations = pod_anns;
	pod->n_annotations = 1;
}

static void mk_ctr(Nri__Container *c, const char *id, const char *pod, uint32_t pid)
{
	nri__pkg__api__v1alpha1__container__init(c);
	c->id = (char *)id;
	c->pod_sandbox_id = (char *)pod;
	c->name = "app";
	c->pid = pid;
	c->state = NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_RUNNING;
}

static void state_change(struct rt *r, struct nri_plugin *p, int ev, Nri__PodSandbox *pod,
			 Nri__Container *ctr)
{
	Nri__Pkg__Api__V1alpha1__StateChangeEvent e =
		NRI__PKG__API__V1ALPHA1__STATE_CHANGE_EVENT__INIT;

	e.event = ev;
	e.pod = pod;
	e.container = ctr;
	rt_call_ok_empty(r, p, "StateChange", &e.base);
}

/* Register, configure (before the register reply, as containerd does), sync. */
static void handshake(struct rt *r, struct nri_plugin *p, struct rec *rec)
{
	Nri__PodSandbox pod1, pod2;
	Nri__Container c1;
	Nri__PodSandbox *pods[2] = {&pod1, &pod2};
	Nri__Container *ctrs[1] = {&c1};
	int more0 = rec->sync_more;
	uint32_t s;

	mk_pod(&pod1, "pod-1");
	mk_pod(&pod2, "pod-2");
	mk_ctr(&c1, "ctr-1", "pod-1", 4000);

	s = rt_expect_register(r, p, "weir", "10");
	assert_int_equal(s, 1);
	assert_int_equal(nri_plugin_phase(p), NRI_PHASE_REGISTERING);
	rt_configure(r, p);
	rt_reply(r, s, 0, NULL);
	for (int i = 0; i < 5; i++)
		assert_int_equal(nri_plugin_step(p, 5), 0);
	assert_int_equal(nri_plugin_phase(p), NRI_PHASE_SYNCING);

	rt_sync(r, p, pods, 2, NULL, 0, 1);
	assert_int_equal(nri_plugin_phase(p), NRI_PHASE_SYNCING);
	rt_sync(r, p, NULL, 0, ctrs, 1, 0);
	assert_int_equal(nri_plugin_phase(p), NRI_PHASE_ACTIVE);
	assert_int_equal(rec->sync_more, more0 + 1);
}

/* ---- tests ---- */

static void test_names(void **state)
{
	struct weir_error err = {0};

	assert_int_equal(nri_check_index("10", &err), 0);
	assert_int_equal(nri_check_index("00", &err), 0);
	assert_int_equal(nri_check_index("4", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "two digits"));
	assert_int_equal(nri_check_index("100", &err), -EINVAL);
	assert_int_equal(nri_check_index("a1", &err), -EINVAL);
	assert_int_equal(nri_check_index(NULL, &err), -EINVAL);
	assert_int_equal(nri_check_name("weir", &err), 0);
	assert_int_equal(nri_check_name("we_ir-1.2+x", &err), 0);
	assert_int_equal(nri_check_name("", &err), -EINVAL);
	assert_int_equal(nri_check_name("we ir", &err), -EINVAL);
	assert_int_equal(nri_check_name("we/ir", &err), -EINVAL);
	assert_int_equal(nri_handlers_events(&handlers), WEIR_MASK);
}

static void test_new_rejects(void **state)
{
	struct nri_plugin_config cfg = {.fd = -1, .name = "weir", .idx = "4"};
	struct nri_handlers none = {0};
	struct weir_error err = {0};
	struct nri_plugin *p;

	assert_int_equal(nri_plugin_new(&p, &cfg, &handlers, NULL, &err), -EINVAL);
	assert_null(p);
	cfg.idx = "10";
	/* no handler: the mask would be 0, which means "everything" to the runtime */
	assert_int_equal(nri_plugin_new(&p, &cfg, &none, NULL, &err), -EINVAL);
	cfg.events = 0x800; /* UPDATE_POD_SANDBOX: 1.7 drops the plugin */
	assert_int_equal(nri_plugin_new(&p, &cfg, &handlers, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "0x800"));
}

static void test_conversation_fd(void **state)
{
	struct nri_plugin_config cfg = {.name = "weir", .idx = "10"};
	struct weir_error err = {0};
	struct rec rec = {0};
	struct nri_plugin *p;
	struct rt r;
	int sv[2];
	Nri__PodSandbox pod;
	Nri__Container ctr;
	Ttrpc__Response *resp;
	uint32_t s;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cfg.fd = sv[1];
	assert_int_equal(nri_plugin_new(&p, &cfg, &handlers, &rec, &err), 0);
	assert_int_equal(nri_plugin_events(p), WEIR_MASK);
	rt_init(&r, sv[0]);
	r.split = 7; /* every message in 7-byte frames */
	handshake(&r, p, &rec);
	assert_int_equal(rec.sync, 2);
	assert_int_equal(rec.sync_pods, 2);
	assert_int_equal(rec.sync_ctrs, 1);

	r.split = 0;
	mk_pod(&pod, "pod-9");
	mk_ctr(&ctr, "ctr-9", "pod-9", 0);

	/* v0.6 to v0.11 style */
	state_change(&r, p, NRI_EV_RUN_POD_SANDBOX, &pod, NULL);
	assert_int_equal(rec.run, 1);
	assert_string_equal(rec.last_pod, "pod-9");
	{
		Nri__Pkg__Api__V1alpha1__CreateContainerRequest cr =
			NRI__PKG__API__V1ALPHA1__CREATE_CONTAINER_REQUEST__INIT;

		cr.pod = &pod;
		cr.container = &ctr;
		rt_call_ok_empty(&r, p, "CreateContainer", &cr.base);
		assert_int_equal(rec.create, 1);
		assert_string_equal(rec.last_ctr, "ctr-9");

		/* a bad annotation refuses the container with the handler's text */
		ctr.annotations = bad_anns;
		ctr.n_annotations = 1;
		s = rt_call(&r, NRI_SERVICE_PLUGIN, "CreateContainer", &cr.base);
		resp = rt_response(&r, p, s);
		assert_int_equal(resp_code(resp), 2);
		assert_string_equal(resp->status->message,
				    "weir: annotation \"egress.weir.io\": bad token \"bogus\"");
		assert_int_equal(resp->payload.len, 0);
		ttrpc__response__free_unpacked(resp, NULL);
		ctr.annotations = NULL;
		ctr.n_annotations = 0;
	}
	ctr.pid = 4242;
	state_change(&r, p, NRI_EV_START_CONTAINER, &pod, &ctr);
	assert_int_equal(rec.start, 1);
	assert_int_equal(rec.last_pid, 4242);
	/* not subscribed: answered, no handler */
	state_change(&r, p, NRI_EV_POST_START_CONTAINER, &pod, &ctr);
	/* an event without a pod: handlers get an empty one, never NULL */
	state_change(&r, p, NRI_EV_REMOVE_POD_SANDBOX, NULL, NULL);
	assert_int_equal(rec.remove_pod, 1);
	assert_string_equal(rec.last_pod, "");
	{
		Nri__Pkg__Api__V1alpha1__StopContainerRequest sr =
			NRI__PKG__API__V1ALPHA1__STOP_CONTAINER_REQUEST__INIT;

		sr.pod = &pod;
		sr.container = &ctr;
		rt_call_ok_empty(&r, p, "StopContainer", &sr.base);
		assert_int_equal(rec.stop, 1);
	}

	/* v0.12 dedicated methods reach the same handlers */
	{
		Nri__Pkg__Api__V1alpha1__RunPodSandboxRequest rp =
			NRI__PKG__API__V1ALPHA1__RUN_POD_SANDBOX_REQUEST__INIT;
		Nri__Pkg__Api__V1alpha1__StartContainerRequest sc =
			NRI__PKG__API__V1ALPHA1__START_CONTAINER_REQUEST__INIT;
		Nri__Pkg__Api__V1alpha1__StopPodSandboxRequest spr =
			NRI__PKG__API__V1ALPHA1__STOP_POD_SANDBOX_REQUEST__INIT;
		Nri__Pkg__Api__V1alpha1__RemoveContainerRequest rc =
			NRI__PKG__API__V1ALPHA1__REMOVE_CONTAINER_REQUEST__INIT;
		Nri__Pkg__Api__V1alpha1__PostCreateContainerRequest pc =
			NRI__PKG__API__V1ALPHA1__POST_CREATE_CONTAINER_REQUEST__INIT;

		rp.pod = &pod;
		rt_call_ok_empty(&r, p, "RunPodSandbox", &rp.base);
		assert_int_equal(rec.run, 2);
		sc.pod = &pod;
		sc.container = &ctr;
		rt_call_ok_empty(&r, p, "StartContainer", &sc.base);
		assert_int_equal(rec.start, 2);
		spr.pod = &pod;
		rt_call_ok_empty(&r, p, "StopPodSandbox", &spr.base);
		assert_int_equal(rec.stop_pod, 1);
		rc.pod = &pod;
		rc.container = &ctr;
		rt_call_ok_empty(&r, p, "RemoveContainer", &rc.base);
		assert_int_equal(rec.remove_ctr, 1);
		pc.pod = &pod;
		pc.container = &ctr;
		rt_call_ok_empty(&r, p, "PostCreateContainer", &pc.base);
	}
	rt_call_ok_empty(&r, p, "Shutdown", NULL);

	/* anything else: 12 */
	s = rt_call(&r, NRI_SERVICE_PLUGIN, "UpdatePodSandbox", NULL);
	resp = rt_response(&r, p, s);
	assert_int_equal(resp_code(resp), 12);
	assert_string_equal(resp->status->message, "method UpdatePodSandbox");
	ttrpc__response__free_unpacked(resp, NULL);
	s = rt_call(&r, "nri.pkg.api.v1alpha1.Other", "Configure", NULL);
	resp = rt_response(&r, p, s);
	assert_int_equal(resp_code(resp), 12);
	assert_string_equal(resp->status->message, "service nri.pkg.api.v1alpha1.Other");
	ttrpc__response__free_unpacked(resp, NULL);

	/* a malformed event payload: INVALID_ARGUMENT, the connection stays */
	{
		static const uint8_t junk[] = {0x0a, 0x50, 0x01};
		uint8_t *data;
		size_t len;

		assert_int_equal(ttrpc_encode_request(NRI_SERVICE_PLUGIN, "CreateContainer", junk,
						      sizeof(junk), 0, &data, &len),
				 0);
		s = r.next_stream;
		r.next_stream += 2;
		rt_send_msg(&r, NRI_CONN_PLUGIN, s, TTRPC_TYPE_REQUEST, data, len);
		free(data);
		resp = rt_response(&r, p, s);
		assert_int_equal(resp_code(resp), TTRPC_INVALID_ARGUMENT);
		ttrpc__response__free_unpacked(resp, NULL);
	}
	state_change(&r, p, NRI_EV_STOP_CONTAINER, &pod, &ctr);
	assert_int_equal(rec.stop, 2);
	assert_int_equal(nri_plugin_phase(p), NRI_PHASE_ACTIVE);

	/* the runtime goes away: a launched plugin has nothing to reconnect to */
	close(r.fd);
	r.fd = -1;
	{
		int rc = 0;

		for (int i = 0; i < 100 && !rc; i++)
			rc = nri_plugin_step(p, 10);
		assert_int_equal(rc, 1);
	}
	assert_int_equal(nri_plugin_phase(p), NRI_PHASE_DONE);
	assert_int_equal(rec.disc, 1);
	rt_close(&r);
	nri_plugin_free(p);
}

/* ---- external plugin over a listening socket: failures and reconnects ---- */

struct lsock {
	char dir[64];
	char path[128];
	int fd;
};

static void ls_open(struct lsock *l)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(l->fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", l->path);
	unlink(l->path);
	assert_int_equal(bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l->fd, 4), 0);
}

static void ls_close(struct lsock *l)
{
	close(l->fd);
	l->fd = -1;
	unlink(l->path);
}

/* Step the plugin until it connects; accept. */
static int ls_accept(struct lsock *l, struct nri_plugin *p)
{
	for (int i = 0; i < 500; i++) {
		struct pollfd pfd = {.fd = l->fd, .events = POLLIN};

		if (poll(&pfd, 1, 0) == 1)
			return accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		assert_int_equal(nri_plugin_step(p, 10), 0);
	}
	fail_msg("the plugin did not connect");
	return -1;
}

/* Step the plugin until it closes its side. */
static void rt_wait_eof(struct rt *r, struct nri_plugin *p, int max_ms)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		assert_int_equal(nri_plugin_step(p, 10), 0);
		rt_pump(r);
		if (r->eof)
			return;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 > max_ms)
			fail_msg("the plugin did not drop the connection in %d ms", max_ms);
	}
}

static void test_reconnect(void **state)
{
	struct nri_plugin_config cfg = {.fd = -1, .name = "weir", .idx = "10"};
	struct weir_error err = {0};
	struct rec rec = {0};
	struct nri_plugin *p;
	struct lsock l;
	struct rt r;
	uint32_t s;
	int fd;

	snprintf(l.dir, sizeof(l.dir), "/tmp/weir-nri-test.XXXXXX");
	assert_non_null(mkdtemp(l.dir));
	snprintf(l.path, sizeof(l.path), "%s/nri.sock", l.dir);
	cfg.socket_path = l.path;
	cfg.backoff_min_ms = 5;
	cfg.backoff_max_ms = 40;
	cfg.stall_timeout_ms = 200;
	cfg.register_timeout_ms = 300;
	assert_int_equal(nri_plugin_new(&p, &cfg, &handlers, &rec, &err), 0);

	/* the socket does not exist yet: retries with backoff, then connects */
	for (int i = 0; i < 10; i++)
		assert_int_equal(nri_plugin_step(p, 10), 0);
	assert_int_equal(nri_plugin_phase(p), NRI_PHASE_DISCONNECTED);
	assert_int_equal(nri_plugin_connects(p), 0);
	ls_open(&l);

	/* 1: full handshake, an event, then EOF */
	fd = ls_accept(&l, p);
	rt_init(&r, fd);
	handshake(&r, p, &rec);
	{
		Nri__PodSandbox pod;

		mk_pod(&pod, "pod-1");
		state_change(&r, p, NRI_EV_RUN_POD_SANDBOX, &pod, NULL);
		assert_int_equal(rec.run, 1);
	}
	rt_close(&r);

	/* 2: reconnects, registers again on stream 1, resynchronises */
	fd = ls_accept(&l, p);
	assert_int_equal(rec.disc, 1);
	rt_init(&r, fd);
	handshake(&r, p, &rec);
	assert_int_equal(nri_plugin_connects(p), 2);
	assert_int_equal(rec.sync, 4);

	/* an absurd frame length: dropped without allocating it */
	{
		static const uint8_t bad[8] = {0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff};

		write_all(r.fd, bad, sizeof(bad));
		rt_wait_eof(&r, p, 2000);
	}
	assert_int_equal(nri_plugin_phase(p), NRI_PHASE_DISCONNECTED);
	rt_close(&r);

	/* 3: the peer closes in the middle of a message */
	fd = ls_accept(&l, p);
	rt_init(&r, fd);
	s = rt_expect_register(&r, p, "weir", "10");
	rt_reply(&r, s, 0, NULL);
	{
		static const uint8_t half[] = {0, 0, 0, 1, 0, 0, 0, 40, 0, 0, 0, 30, 0, 0, 0, 1, 1};

		write_all(r.fd, half, sizeof(half));
		for (int i = 0; i < 5; i++)
			assert_int_equal(nri_plugin_step(p, 5), 0);
	}
	rt_close(&r);

	/* 4: a message that never completes: dropped after the stall timeout */
	fd = ls_accept(&l, p);
	rt_init(&r, fd);
	s = rt_expect_register(&r, p, "weir", "10");
	rt_reply(&r, s, 0, NULL);
	{
		static const uint8_t half[] = {0, 0, 0, 1, 0, 0, 0, 40, 0, 0, 0, 30};

		write_all(r.fd, half, sizeof(half));
		rt_wait_eof(&r, p, 2000);
	}
	rt_close(&r);

	/* 5: registration refused: disconnect */
	fd = ls_accept(&l, p);
	rt_init(&r, fd);
	s = rt_expect_register(&r, p, "weir", "10");
	rt_reply(&r, s, 2, "invalid plugin index \"10\"");
	rt_wait_eof(&r, p, 2000);
	rt_close(&r);

	/* 6: no answer to RegisterPlugin: dropped after the registration timeout */
	fd = ls_accept(&l, p);
	rt_init(&r, fd);
	s = rt_expect_register(&r, p, "weir", "10");
	rt_wait_eof(&r, p, 2000);
	rt_close(&r);

	/* 7: the socket vanishes (runtime restart) and comes back */
	ls_close(&l);
	for (int i = 0; i < 10; i++)
		assert_int_equal(nri_plugin_step(p, 10), 0);
	ls_open(&l);
	fd = ls_accept(&l, p);
	rt_init(&r, fd);
	handshake(&r, p, &rec);
	assert_int_equal(nri_plugin_phase(p), NRI_PHASE_ACTIVE);

	/* stop: the loop finishes and closes the connection */
	nri_plugin_stop(p);
	assert_int_equal(nri_plugin_step(p, 1000), 1);
	rt_pump(&r);
	assert_true(r.eof);
	assert_int_equal(nri_plugin_run(p), 0);
	rt_close(&r);

	nri_plugin_free(p);
	ls_close(&l);
	rmdir(l.dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_new_rejects),
		cmocka_unit_test(test_conversation_fd),
		cmocka_unit_test(test_reconnect),
	};

	weir_log_init("test_nri_plugin",
		      getenv("NRI_TEST_DEBUG") ? WEIR_LOG_DEBUG : WEIR_LOG_ERROR + 0,
		      WEIR_LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
