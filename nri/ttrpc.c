// SPDX-License-Identifier: Apache-2.0
/* Unary ttrpc for weir-nri: see ttrpc.h and docs/nri-protocol.md §2. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nri_log.h"
#include "ttrpc.h"
#include "ttrpc.pb-c.h"
#include "util.h"

static void request_freep(Ttrpc__Request **r)
{
	if (*r)
		ttrpc__request__free_unpacked(*r, NULL);
}

static void response_freep(Ttrpc__Response **r)
{
	if (*r)
		ttrpc__response__free_unpacked(*r, NULL);
}

static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

void ttrpc_hdr_pack(uint8_t out[TTRPC_HDR_LEN], const struct ttrpc_hdr *h)
{
	put_be32(out, h->len);
	put_be32(out + 4, h->stream);
	out[8] = h->type;
	out[9] = h->flags;
}

void ttrpc_hdr_unpack(const uint8_t in[TTRPC_HDR_LEN], struct ttrpc_hdr *h)
{
	h->len = get_be32(in);
	h->stream = get_be32(in + 4);
	h->type = in[8];
	h->flags = in[9];
}

int ttrpc_rx_next(struct ttrpc_rx *rx, struct nri_buf *buf, struct ttrpc_msg *msg)
{
	size_t n;

	if (rx->discard) {
		n = nri_buf_avail(buf);
		if (n > rx->discard)
			n = rx->discard;
		nri_buf_consume(buf, n);
		rx->discard -= n;
		if (rx->discard)
			return 0;
	}
	if (nri_buf_avail(buf) < TTRPC_HDR_LEN)
		return 0;
	memset(msg, 0, sizeof(*msg));
	ttrpc_hdr_unpack(nri_buf_head(buf), &msg->hdr);
	if (msg->hdr.len > TTRPC_MAX_DATA) {
		nri_buf_consume(buf, TTRPC_HDR_LEN);
		rx->discard = msg->hdr.len;
		msg->oversized = 1;
		/* skip what is already here */
		n = nri_buf_avail(buf);
		if (n > rx->discard)
			n = rx->discard;
		nri_buf_consume(buf, n);
		rx->discard -= n;
		return 1;
	}
	if (nri_buf_avail(buf) - TTRPC_HDR_LEN < msg->hdr.len)
		return 0;
	msg->data = nri_buf_head(buf) + TTRPC_HDR_LEN;
	return 1;
}

void ttrpc_rx_done(struct nri_buf *buf, const struct ttrpc_msg *msg)
{
	if (!msg->oversized)
		nri_buf_consume(buf, TTRPC_HDR_LEN + (size_t)msg->hdr.len);
}

int ttrpc_rx_partial(const struct ttrpc_rx *rx, const struct nri_buf *buf)
{
	return rx->discard > 0 || nri_buf_avail(buf) > 0;
}

int ttrpc_queue(struct nri_mux *m, uint32_t conn, uint32_t stream, uint8_t type,
		const uint8_t *data, size_t len)
{
	uint8_t hdr[TTRPC_HDR_LEN];
	struct ttrpc_hdr h = {.len = (uint32_t)len, .stream = stream, .type = type};

	if (len > TTRPC_MAX_DATA)
		return -EMSGSIZE;
	ttrpc_hdr_pack(hdr, &h);
	return nri_mux_queue_message(m, conn, hdr, sizeof(hdr), data, len);
}

int ttrpc_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *p;

	*out = NULL;
	*len = 0;
	if (!n)
		return 0;
	if (n > TTRPC_MAX_DATA)
		return -EMSGSIZE;
	p = malloc(n);
	if (!p)
		return -ENOMEM;
	if (protobuf_c_message_pack(msg, p) != n) {
		free(p);
		return -EPROTO;
	}
	*out = p;
	*len = n;
	return 0;
}

int ttrpc_encode_request(const char *service, const char *method, const uint8_t *payload,
			 size_t payload_len, int64_t timeout_nano, uint8_t **out, size_t *len)
{
	Ttrpc__Request req = TTRPC__REQUEST__INIT;

	req.service = (char *)service;
	req.method = (char *)method;
	req.payload.data = (uint8_t *)payload;
	req.payload.len = payload_len;
	req.timeout_nano = timeout_nano;
	return ttrpc_pack(&req.base, out, len);
}

int ttrpc_encode_response(int code, const char *msg, const uint8_t *payload, size_t payload_len,
			  uint8_t **out, size_t *len)
{
	Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
	Ttrpc__Status status = TTRPC__STATUS__INIT;

	if (code) {
		status.code = code;
		status.message = (char *)(msg ? msg : "");
		resp.status = &status;
	} else {
		resp.payload.data = (uint8_t *)payload;
		resp.payload.len = payload_len;
	}
	return ttrpc_pack(&resp.base, out, len);
}

/* ---- server ---- */

void ttrpc_reply_error(struct ttrpc_reply *rep, int code, const char *fmt, ...)
{
	char raw[TTRPC_MSG_MAX];
	va_list ap;

	free(rep->payload);
	rep->payload = NULL;
	rep->payload_len = 0;
	rep->code = code;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* google.rpc.Status.message is a protobuf string: it must be UTF-8 */
	weir_quote(rep->msg, sizeof(rep->msg), raw, SIZE_MAX, 0, WEIR_QUOTE_NONE);
}

void ttrpc_reply_message(struct ttrpc_reply *rep, const ProtobufCMessage *msg)
{
	int err;

	free(rep->payload);
	rep->payload = NULL;
	err = ttrpc_pack(msg, &rep->payload, &rep->payload_len);
	if (err)
		ttrpc_reply_error(rep, TTRPC_INTERNAL, "cannot encode %s: %s",
				  msg->descriptor->short_name, strerror(-err));
}

void ttrpc_server_init(struct ttrpc_server *s, const struct ttrpc_service *services,
		       size_t nservices, void *u)
{
	s->services = services;
	s->nservices = nservices;
	s->u = u;
	s->last_stream = 0;
}

void ttrpc_server_reset(struct ttrpc_server *s)
{
	s->last_stream = 0;
}

static int send_reply(struct nri_mux *m, uint32_t conn, uint32_t stream, struct ttrpc_reply *rep)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;
	int err;

	if (rep->code)
		nri_debug("ttrpc: conn %" PRIu32 " stream %" PRIu32 ": reply code %d: %s", conn,
			  stream, rep->code, rep->msg);
	err = ttrpc_encode_response(rep->code, rep->msg, rep->payload, rep->payload_len, &data,
				    &len);
	if (err == -EMSGSIZE) {
		ttrpc_reply_error(rep, TTRPC_RESOURCE_EXHAUSTED, "response exceeds %u bytes",
				  TTRPC_MAX_DATA);
		err = ttrpc_encode_response(rep->code, rep->msg, NULL, 0, &data, &len);
	}
	free(rep->payload);
	rep->payload = NULL;
	if (err)
		return err;
	return ttrpc_queue(m, conn, stream, TTRPC_TYPE_RESPONSE, data, len);
}

static const struct ttrpc_method *find_method(const struct ttrpc_service *svc, const char *name)
{
	for (size_t i = 0; i < svc->nmethods; i++)
		if (!strcmp(svc->methods[i].name, name))
			return &svc->methods[i];
	return NULL;
}

int ttrpc_server_handle(struct ttrpc_server *s, struct nri_mux *m, uint32_t conn,
			const struct ttrpc_msg *msg)
{
	__attribute__((cleanup(request_freep))) Ttrpc__Request *req = NULL;
	struct ttrpc_reply rep = {.code = TTRPC_OK};
	const struct ttrpc_service *svc = NULL;
	const struct ttrpc_method *meth;
	struct ttrpc_call_info ci;
	uint32_t stream = msg->hdr.stream;

	if (msg->hdr.type != TTRPC_TYPE_REQUEST) {
		nri_warn("ttrpc: conn %" PRIu32 " stream %" PRIu32
			 ": ignoring message of type %u (%" PRIu32 " bytes) on a server connection",
			 conn, stream, msg->hdr.type, msg->hdr.len);
		return 0;
	}
	if (msg->oversized) {
		nri_warn("ttrpc: conn %" PRIu32 " stream %" PRIu32 ": request of %" PRIu32
			 " bytes exceeds the %u byte limit, discarding it",
			 conn, stream, msg->hdr.len, TTRPC_MAX_DATA);
		ttrpc_reply_error(&rep, TTRPC_RESOURCE_EXHAUSTED,
				  "message length %" PRIu32 " exceed maximum message size of %u",
				  msg->hdr.len, TTRPC_MAX_DATA);
		return send_reply(m, conn, stream, &rep);
	}
	if (!(stream & 1)) {
		nri_warn("ttrpc: conn %" PRIu32 ": request on even stream id %" PRIu32, conn,
			 stream);
		ttrpc_reply_error(&rep, TTRPC_INVALID_ARGUMENT,
				  "stream id %" PRIu32 " must be odd for client initiated streams",
				  stream);
		return send_reply(m, conn, stream, &rep);
	}
	if (stream <= s->last_stream) {
		nri_warn("ttrpc: conn %" PRIu32 ": stream id %" PRIu32
			 " does not increase (last %" PRIu32 ")",
			 conn, stream, s->last_stream);
		ttrpc_reply_error(&rep, TTRPC_INVALID_ARGUMENT,
				  "stream id %" PRIu32 " cannot be reused and must increase",
				  stream);
		return send_reply(m, conn, stream, &rep);
	}
	s->last_stream = stream;

	req = ttrpc__request__unpack(NULL, msg->hdr.len, msg->data);
	if (!req) {
		nri_warn("ttrpc: conn %" PRIu32 " stream %" PRIu32
			 ": malformed request envelope (%" PRIu32 " bytes)",
			 conn, stream, msg->hdr.len);
		ttrpc_reply_error(&rep, TTRPC_INVALID_ARGUMENT, "unmarshal request error");
		return send_reply(m, conn, stream, &rep);
	}
	for (size_t i = 0; i < s->nservices; i++)
		if (!strcmp(s->services[i].name, req->service))
			svc = &s->services[i];
	if (!svc) {
		nri_warn("ttrpc: conn %" PRIu32 " stream %" PRIu32 ": unknown service \"%s\"", conn,
			 stream, req->service);
		ttrpc_reply_error(&rep, TTRPC_UNIMPLEMENTED, "service %s", req->service);
		return send_reply(m, conn, stream, &rep);
	}
	meth = find_method(svc, req->method);
	if (!meth) {
		nri_info("ttrpc: conn %" PRIu32 " stream %" PRIu32
			 ": method %s.%s is not implemented",
			 conn, stream, req->service, req->method);
		ttrpc_reply_error(&rep, TTRPC_UNIMPLEMENTED, "method %s", req->method);
		return send_reply(m, conn, stream, &rep);
	}
	ci.service = req->service;
	ci.method = req->method;
	ci.stream = stream;
	ci.timeout_nano = req->timeout_nano;
	nri_debug("ttrpc: conn %" PRIu32 " stream %" PRIu32 ": %s (%zu bytes, timeout %" PRId64
		  " ns)",
		  conn, stream, req->method, req->payload.len, req->timeout_nano);
	meth->fn(s->u, &ci, req->payload.data, req->payload.len, &rep);
	return send_reply(m, conn, stream, &rep);
}

/* ---- client ---- */

void ttrpc_client_init(struct ttrpc_client *c)
{
	memset(c, 0, sizeof(*c));
	c->next_stream = 1;
}

size_t ttrpc_client_pending(const struct ttrpc_client *c)
{
	size_t n = 0;

	for (size_t i = 0; i < TTRPC_MAX_CALLS; i++)
		n += c->calls[i].stream != 0;
	return n;
}

int ttrpc_client_call(struct ttrpc_client *c, struct nri_mux *m, uint32_t conn, const char *service,
		      const char *method, const ProtobufCMessage *req, uint64_t timeout_ms,
		      uint64_t now_ms, ttrpc_done_fn done, void *u, uint32_t *stream)
{
	_cleanup_free_ uint8_t *payload = NULL, *data = NULL;
	struct ttrpc_call *slot = NULL;
	size_t plen, len;
	int err;

	for (size_t i = 0; i < TTRPC_MAX_CALLS && !slot; i++)
		if (!c->calls[i].stream)
			slot = &c->calls[i];
	if (!slot)
		return -EBUSY;
	if (c->next_stream > UINT32_MAX - 2)
		return -EOVERFLOW;
	err = ttrpc_pack(req, &payload, &plen);
	if (err)
		return err;
	/* the deadline stays local: timeout_nano is left out, as in the golden bytes of §9 */
	err = ttrpc_encode_request(service, method, payload, plen, 0, &data, &len);
	if (err)
		return err;
	err = ttrpc_queue(m, conn, c->next_stream, TTRPC_TYPE_REQUEST, data, len);
	if (err)
		return err;
	slot->stream = c->next_stream;
	snprintf(slot->method, sizeof(slot->method), "%s", method);
	slot->deadline_ms = timeout_ms ? now_ms + timeout_ms : UINT64_MAX;
	slot->done = done;
	slot->u = u;
	if (stream)
		*stream = slot->stream;
	c->next_stream += 2;
	return 0;
}

static void complete(struct ttrpc_call *call, int code, const char *msg, const uint8_t *payload,
		     size_t len)
{
	struct ttrpc_call done = *call;

	memset(call, 0, sizeof(*call));
	if (done.done)
		done.done(done.u, done.stream, code, msg, payload, len);
}

void ttrpc_client_handle(struct ttrpc_client *c, const struct ttrpc_msg *msg)
{
	__attribute__((cleanup(response_freep))) Ttrpc__Response *resp = NULL;
	struct ttrpc_call *call = NULL;
	char why[128];

	for (size_t i = 0; i < TTRPC_MAX_CALLS && !call; i++)
		if (c->calls[i].stream && c->calls[i].stream == msg->hdr.stream)
			call = &c->calls[i];
	if (!call) {
		nri_warn("ttrpc: ignoring message of type %u for unknown stream %" PRIu32,
			 msg->hdr.type, msg->hdr.stream);
		return;
	}
	if (msg->hdr.type != TTRPC_TYPE_RESPONSE) {
		nri_warn("ttrpc: %s (stream %" PRIu32 "): ignoring message of type %u",
			 call->method, msg->hdr.stream, msg->hdr.type);
		return;
	}
	if (msg->oversized) {
		snprintf(why, sizeof(why), "response of %" PRIu32 " bytes exceeds %u bytes",
			 msg->hdr.len, TTRPC_MAX_DATA);
		complete(call, TTRPC_RESOURCE_EXHAUSTED, why, NULL, 0);
		return;
	}
	resp = ttrpc__response__unpack(NULL, msg->hdr.len, msg->data);
	if (!resp) {
		snprintf(why, sizeof(why), "malformed response envelope (%" PRIu32 " bytes)",
			 msg->hdr.len);
		complete(call, TTRPC_INTERNAL, why, NULL, 0);
		return;
	}
	if (resp->status && resp->status->code)
		complete(call, resp->status->code, resp->status->message, NULL, 0);
	else
		complete(call, TTRPC_OK, "", resp->payload.data, resp->payload.len);
}

int ttrpc_client_expire(struct ttrpc_client *c, uint64_t now_ms)
{
	int n = 0;

	for (size_t i = 0; i < TTRPC_MAX_CALLS; i++) {
		if (c->calls[i].stream && c->calls[i].deadline_ms <= now_ms) {
			complete(&c->calls[i], TTRPC_DEADLINE_EXCEEDED,
				 "no response before deadline", NULL, 0);
			n++;
		}
	}
	return n;
}

uint64_t ttrpc_client_next_deadline(const struct ttrpc_client *c)
{
	uint64_t d = UINT64_MAX;

	for (size_t i = 0; i < TTRPC_MAX_CALLS; i++)
		if (c->calls[i].stream && c->calls[i].deadline_ms < d)
			d = c->calls[i].deadline_ms;
	return d;
}

void ttrpc_client_reset(struct ttrpc_client *c, int code, const char *msg)
{
	for (size_t i = 0; i < TTRPC_MAX_CALLS; i++)
		if (c->calls[i].stream)
			complete(&c->calls[i], code, msg, NULL, 0);
	c->next_stream = 1;
}
