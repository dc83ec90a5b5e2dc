// SPDX-License-Identifier: Apache-2.0
/* ttrpc framing, envelopes, server dispatch and client matching; golden bytes of §9. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "mux.h"
#include "nri_api.h"
#include "ttrpc.h"
#include "ttrpc.pb-c.h"

/* A loop-back endpoint: frames fed in are parsed into ttrpc messages and handed to a
 * server (conn 1) or a client (conn 2), as the plugin does. */
struct end {
	struct nri_mux mux;
	struct ttrpc_rx rx[NRI_MUX_NCONN];
	struct ttrpc_server server;
	struct ttrpc_client client;
	int msgs;
};

static int end_data(void *u, uint32_t conn, struct nri_buf *rx)
{
	struct end *e = u;
	struct ttrpc_msg msg;
	int err;

	while (ttrpc_rx_next(&e->rx[conn], rx, &msg) == 1) {
		e->msgs++;
		if (conn == NRI_CONN_PLUGIN) {
			err = ttrpc_server_handle(&e->server, &e->mux, conn, &msg);
			if (err)
				return err;
		} else {
			ttrpc_client_handle(&e->client, &msg);
		}
		ttrpc_rx_done(rx, &msg);
	}
	return 0;
}

static void serve_configure(void *u, const struct ttrpc_call_info *ci, const uint8_t *req,
			    size_t len, struct ttrpc_reply *rep)
{
	Nri__Pkg__Api__V1alpha1__ConfigureResponse resp =
		NRI__PKG__API__V1ALPHA1__CONFIGURE_RESPONSE__INIT;

	resp.events = 1; /* RUN_POD_SANDBOX */
	ttrpc_reply_message(rep, &resp.base);
}

static void serve_fail(void *u, const struct ttrpc_call_info *ci, const uint8_t *req, size_t len,
		       struct ttrpc_reply *rep)
{
	ttrpc_reply_error(rep, TTRPC_UNKNOWN, "refused: %zu bytes", len);
}

static const struct ttrpc_method methods[] = {
	{"Configure", serve_configure},
	{"Fail", serve_fail},
};

static const struct ttrpc_service services[] = {
	{NRI_SERVICE_PLUGIN, methods, 2},
};

static void end_init(struct end *e)
{
	memset(e, 0, sizeof(*e));
	nri_mux_init(&e->mux, end_data, e);
	ttrpc_server_init(&e->server, services, 1, e);
	ttrpc_client_init(&e->client);
}

static void end_free(struct end *e)
{
	nri_mux_free(&e->mux);
}

/* Build mux frame(s) holding a ttrpc message (always one frame here). */
static size_t mk_msg(uint8_t *out, uint32_t conn, uint32_t stream, uint8_t type,
		     const uint8_t *data, size_t len)
{
	struct ttrpc_hdr h = {.len = (uint32_t)len, .stream = stream, .type = type};
	uint32_t n = (uint32_t)(len + 10);

	out[0] = conn >> 24;
	out[1] = conn >> 16;
	out[2] = conn >> 8;
	out[3] = conn;
	out[4] = n >> 24;
	out[5] = n >> 16;
	out[6] = n >> 8;
	out[7] = n;
	ttrpc_hdr_pack(out + 8, &h);
	if (len)
		memcpy(out + 18, data, len);
	return 18 + len;
}

static size_t mk_request(uint8_t *out, uint32_t conn, uint32_t stream, const char *svc,
			 const char *method, const uint8_t *payload, size_t plen)
{
	uint8_t *data;
	size_t len, n;

	assert_int_equal(ttrpc_encode_request(svc, method, payload, plen, 0, &data, &len), 0);
	n = mk_msg(out, conn, stream, TTRPC_TYPE_REQUEST, data, len);
	free(data);
	return n;
}

/* Decode the single response queued in e's tx buffer. */
static Ttrpc__Response *take_response(struct end *e, uint32_t conn, uint32_t stream)
{
	const uint8_t *p = nri_buf_head(&e->mux.tx);
	struct ttrpc_hdr h;
	Ttrpc__Response *r;
	size_t avail = nri_buf_avail(&e->mux.tx);

	assert_true(avail >= 18);
	assert_int_equal(p[3], conn);
	ttrpc_hdr_unpack(p + 8, &h);
	assert_int_equal(h.type, TTRPC_TYPE_RESPONSE);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.stream, stream);
	assert_int_equal(avail, 18 + h.len);
	r = ttrpc__response__unpack(NULL, h.len, p + 18);
	assert_non_null(r);
	nri_buf_consume(&e->mux.tx, avail);
	return r;
}

static void test_hdr(void **state)
{
	struct ttrpc_hdr h = {.len = 0x01020304, .stream = 0xa0b0c0d1, .type = 2, .flags = 4}, g;
	uint8_t b[10];
	static const uint8_t want[10] = {1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd1, 2, 4};

	ttrpc_hdr_pack(b, &h);
	assert_memory_equal(b, want, 10);
	ttrpc_hdr_unpack(b, &g);
	assert_int_equal(g.len, h.len);
	assert_int_equal(g.stream, h.stream);
	assert_int_equal(g.type, h.type);
	assert_int_equal(g.flags, h.flags);
}

static const uint8_t golden_register[77] = {
	0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x45,		    /* conn 2, 69 bytes */
	0x00, 0x00, 0x00, 0x3b, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, /* 59 bytes, stream 1, req */
	0x0a, 0x1c, 'n',  'r',	'i',  '.',  'p',  'k',	'g',  '.',  'a',  'p',	'i', '.', 'v',
	'1',  'a',  'l',  'p',	'h',  'a',  '1',  '.',	'R',  'u',  'n',  't',	'i', 'm', 'e',
	0x12, 0x0e, 'R',  'e',	'g',  'i',  's',  't',	'e',  'r',  'P',  'l',	'u', 'g', 'i',
	'n',  0x1a, 0x0b, 0x0a, 0x05, 'p',  'r',  'o',	'b',  'e',  0x12, 0x02, '4', '2',
};

static int done_calls;
static int done_code;
static char done_msg[256];
static uint32_t done_stream;
static uint8_t done_payload[64];
static size_t done_len;

static void on_done(void *u, uint32_t stream, int code, const char *msg, const uint8_t *payload,
		    size_t len)
{
	done_calls++;
	done_code = code;
	done_stream = stream;
	snprintf(done_msg, sizeof(done_msg), "%s", msg ? msg : "");
	done_len = len;
	if (len && len <= sizeof(done_payload)) /* payload is NULL when len is 0 */
		memcpy(done_payload, payload, len);
	if (u)
		*(int *)u = (int)stream;
}

static void test_golden_register(void **state)
{
	Nri__Pkg__Api__V1alpha1__RegisterPluginRequest req =
		NRI__PKG__API__V1ALPHA1__REGISTER_PLUGIN_REQUEST__INIT;
	static const uint8_t reply[18] = {0, 0, 0, 2, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0};
	uint32_t stream = 0;
	struct end e;

	end_init(&e);
	req.plugin_name = "probe";
	req.plugin_idx = "42";
	assert_int_equal(ttrpc_client_call(&e.client, &e.mux, NRI_CONN_RUNTIME, NRI_SERVICE_RUNTIME,
					   "RegisterPlugin", &req.base, 5000, 1000, on_done, NULL,
					   &stream),
			 0);
	assert_int_equal(stream, 1);
	assert_int_equal(nri_buf_avail(&e.mux.tx), 77);
	assert_memory_equal(nri_buf_head(&e.mux.tx), golden_register, 77);
	assert_int_equal(ttrpc_client_pending(&e.client), 1);
	assert_int_equal(ttrpc_client_next_deadline(&e.client), 6000);

	/* the runtime's observed reply: data length 0 */
	done_calls = 0;
	assert_int_equal(nri_mux_feed(&e.mux, reply, sizeof(reply)), 0);
	assert_int_equal(done_calls, 1);
	assert_int_equal(done_code, 0);
	assert_int_equal(done_len, 0);
	assert_int_equal(ttrpc_client_pending(&e.client), 0);
	end_free(&e);
}

static void test_golden_configure_reply(void **state)
{
	static const uint8_t want[22] = {0, 0, 0, 1, 0, 0, 0, 0x0e, 0,	  0,	0,
					 4, 0, 0, 0, 1, 2, 0, 0x12, 0x02, 0x10, 0x01};
	uint8_t in[256];
	size_t n = mk_request(in, 1, 1, NRI_SERVICE_PLUGIN, "Configure", NULL, 0);
	struct end e;

	end_init(&e);
	assert_int_equal(nri_mux_feed(&e.mux, in, n), 0);
	assert_int_equal(nri_buf_avail(&e.mux.tx), 22);
	assert_memory_equal(nri_buf_head(&e.mux.tx), want, 22);
	end_free(&e);
}

static void test_unknown_service_and_method(void **state)
{
	static const uint8_t want_prefix[] = {0x0a, 0x10, 0x08, 0x0c, 0x12, 0x0c};
	Ttrpc__Response *r;
	uint8_t in[256];
	size_t n;
	struct end e;

	end_init(&e);
	n = mk_request(in, 1, 1, NRI_SERVICE_PLUGIN, "Bogus", NULL, 0);
	assert_int_equal(nri_mux_feed(&e.mux, in, n), 0);
	/* Response{status{08 0c, 12 "method Bogus"}} */
	assert_int_equal(nri_buf_avail(&e.mux.tx), 18 + 18);
	assert_memory_equal(nri_buf_head(&e.mux.tx) + 18, want_prefix, sizeof(want_prefix));
	r = take_response(&e, 1, 1);
	assert_non_null(r->status);
	assert_int_equal(r->status->code, 12);
	assert_string_equal(r->status->message, "method Bogus");
	assert_int_equal(r->payload.len, 0);
	ttrpc__response__free_unpacked(r, NULL);

	n = mk_request(in, 1, 3, "nri.pkg.api.v1alpha1.Nope", "Configure", NULL, 0);
	assert_int_equal(nri_mux_feed(&e.mux, in, n), 0);
	r = take_response(&e, 1, 3);
	assert_int_equal(r->status->code, 12);
	assert_string_equal(r->status->message, "service nri.pkg.api.v1alpha1.Nope");
	ttrpc__response__free_unpacked(r, NULL);

	/* a handler error: code 2 with its text */
	n = mk_request(in, 1, 5, NRI_SERVICE_PLUGIN, "Fail", (const uint8_t *)"abc", 3);
	assert_int_equal(nri_mux_feed(&e.mux, in, n), 0);
	r = take_response(&e, 1, 5);
	assert_int_equal(r->status->code, 2);
	assert_string_equal(r->status->message, "refused: 3 bytes");
	ttrpc__response__free_unpacked(r, NULL);
	end_free(&e);
}

static void test_stream_ids(void **state)
{
	Ttrpc__Response *r;
	uint8_t in[256];
	size_t n;
	struct end e;

	end_init(&e);
	n = mk_request(in, 1, 2, NRI_SERVICE_PLUGIN, "Configure", NULL, 0);
	assert_int_equal(nri_mux_feed(&e.mux, in, n), 0);
	r = take_response(&e, 1, 2);
	assert_int_equal(r->status->code, TTRPC_INVALID_ARGUMENT);
	ttrpc__response__free_unpacked(r, NULL);

	n = mk_request(in, 1, 7, NRI_SERVICE_PLUGIN, "Configure", NULL, 0);
	assert_int_equal(nri_mux_feed(&e.mux, in, n), 0);
	r = take_response(&e, 1, 7);
	assert_null(r->status);
	ttrpc__response__free_unpacked(r, NULL);

	/* reused and smaller ids */
	for (uint32_t s = 7; s >= 5; s -= 2) {
		n = mk_request(in, 1, s, NRI_SERVICE_PLUGIN, "Configure", NULL, 0);
		assert_int_equal(nri_mux_feed(&e.mux, in, n), 0);
		r = take_response(&e, 1, s);
		assert_int_equal(r->status->code, TTRPC_INVALID_ARGUMENT);
		ttrpc__response__free_unpacked(r, NULL);
	}
	end_free(&e);
}

static void test_garbage_and_types(void **state)
{
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a};
	Ttrpc__Response *r;
	uint8_t in[256];
	size_t n;
	struct end e;

	end_init(&e);
	/* a request whose envelope is not protobuf */
	n = mk_msg(in, 1, 1, TTRPC_TYPE_REQUEST, junk, sizeof(junk));
	assert_int_equal(nri_mux_feed(&e.mux, in, n), 0);
	r = take_response(&e, 1, 1);
	assert_int_equal(r->status->code, TTRPC_INVALID_ARGUMENT);
	ttrpc__response__free_unpacked(r, NULL);

	/* data and response messages on the server conn are ignored, no reply */
	n = mk_msg(in, 1, 3, TTRPC_TYPE_DATA, junk, sizeof(junk));
	assert_int_equal(nri_mux_feed(&e.mux, in, n), 0);
	n = mk_msg(in, 1, 5, TTRPC_TYPE_RESPONSE, NULL, 0);
	assert_int_equal(nri_mux_feed(&e.mux, in, n), 0);
	n = mk_msg(in, 1, 7, 0x7f, NULL, 0);
	assert_int_equal(nri_mux_feed(&e.mux, in, n), 0);
	assert_int_equal(nri_mux_pending(&e.mux), 0);

	/* a response for a stream the client never opened, and a garbage response */
	n = mk_msg(in, 2, 9, TTRPC_TYPE_RESPONSE, NULL, 0);
	assert_int_equal(nri_mux_feed(&e.mux, in, n), 0);
	{
		Nri__Pkg__Api__V1alpha1__Empty empty = NRI__PKG__API__V1ALPHA1__EMPTY__INIT;

		done_calls = 0;
		assert_int_equal(ttrpc_client_call(&e.client, &e.mux, 2, "s", "m", &empty.base, 0,
						   0, on_done, NULL, NULL),
				 0);
		nri_buf_consume(&e.mux.tx, nri_mux_pending(&e.mux));
		n = mk_msg(in, 2, 1, TTRPC_TYPE_RESPONSE, junk, sizeof(junk));
		assert_int_equal(nri_mux_feed(&e.mux, in, n), 0);
		assert_int_equal(done_calls, 1);
		assert_int_equal(done_code, TTRPC_INTERNAL);
	}
	end_free(&e);
}

static void test_truncated(void **state)
{
	uint8_t in[256];
	size_t n = mk_request(in, 1, 1, NRI_SERVICE_PLUGIN, "Configure", NULL, 0);
	struct end e;

	end_init(&e);
	/* every prefix is incomplete and produces nothing */
	for (size_t cut = 0; cut < n; cut++) {
		end_free(&e);
		end_init(&e);
		assert_int_equal(nri_mux_feed(&e.mux, in, cut), 0);
		assert_int_equal(e.msgs, 0);
		assert_int_equal(nri_mux_pending(&e.mux), 0);
		if (cut > 18)
			assert_true(ttrpc_rx_partial(&e.rx[1], &e.mux.rx[1]));
	}
	/* the rest completes it */
	end_free(&e);
	end_init(&e);
	assert_int_equal(nri_mux_feed(&e.mux, in, n - 1), 0);
	assert_int_equal(nri_mux_feed(&e.mux, in + n - 1, 1), 0);
	assert_int_equal(e.msgs, 1);
	assert_int_equal(nri_buf_avail(&e.mux.tx), 22);
	end_free(&e);
}

static void test_oversized_then_next(void **state)
{
	size_t big = TTRPC_MAX_DATA + 7, n;
	uint8_t *in = calloc(1, 18 + big + 256);
	struct ttrpc_hdr h = {.len = (uint32_t)big, .stream = 1, .type = TTRPC_TYPE_REQUEST};
	uint32_t flen = (uint32_t)(10 + big);
	Ttrpc__Response *r;
	struct end e;

	assert_non_null(in);
	in[3] = 1;
	in[4] = flen >> 24;
	in[5] = flen >> 16;
	in[6] = flen >> 8;
	in[7] = flen;
	ttrpc_hdr_pack(in + 8, &h);
	n = 18 + big;
	end_init(&e);
	/* the header alone gets the RESOURCE_EXHAUSTED reply at once */
	assert_int_equal(nri_mux_feed(&e.mux, in, 18), 0);
	r = take_response(&e, 1, 1);
	assert_int_equal(r->status->code, TTRPC_RESOURCE_EXHAUSTED);
	ttrpc__response__free_unpacked(r, NULL);
	/* its data is skipped; the next request is served normally */
	n += mk_request(in + n, 1, 3, NRI_SERVICE_PLUGIN, "Configure", NULL, 0);
	for (size_t off = 18; off < n; off += 65537) {
		size_t k = n - off < 65537 ? n - off : 65537;

		assert_int_equal(nri_mux_feed(&e.mux, in + off, k), 0);
	}
	r = take_response(&e, 1, 3);
	assert_null(r->status);
	assert_int_equal(r->payload.len, 2);
	ttrpc__response__free_unpacked(r, NULL);
	assert_false(ttrpc_rx_partial(&e.rx[1], &e.mux.rx[1]));
	end_free(&e);
	free(in);
}

static void test_interleaved_streams(void **state)
{
	Nri__Pkg__Api__V1alpha1__Empty empty = NRI__PKG__API__V1ALPHA1__EMPTY__INIT;
	uint32_t ids[3];
	int seen[3] = {0};
	uint8_t in[1024];
	size_t n = 0, rlen;
	uint8_t *data;
	struct end e;

	end_init(&e);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ttrpc_client_call(&e.client, &e.mux, 2, NRI_SERVICE_RUNTIME,
						   "UpdateContainers", &empty.base, 100, 0, on_done,
						   &seen[i], &ids[i]),
				 0);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[1], 3);
	assert_int_equal(ids[2], 5);
	nri_buf_consume(&e.mux.tx, nri_mux_pending(&e.mux));

	/* responses 5, 1, 3 with distinct payloads, and a request on conn 1 in between */
	for (int k = 0; k < 3; k++) {
		static const int order[3] = {2, 0, 1};
		uint8_t p = (uint8_t)(0x40 + order[k]);

		assert_int_equal(ttrpc_encode_response(0, NULL, &p, 1, &data, &rlen), 0);
		n += mk_msg(in + n, 2, ids[order[k]], TTRPC_TYPE_RESPONSE, data, rlen);
		free(data);
		if (k == 0)
			n += mk_request(in + n, 1, 1, NRI_SERVICE_PLUGIN, "Configure", NULL, 0);
	}
	/* byte by byte */
	done_calls = 0;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(nri_mux_feed(&e.mux, in + i, 1), 0);
		if (done_calls && done_len == 1) {
			int which = done_payload[0] - 0x40;

			assert_int_equal(done_stream, ids[which]);
			done_len = 0;
		}
	}
	assert_int_equal(done_calls, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(seen[i], (int)ids[i]);
	assert_int_equal(ttrpc_client_pending(&e.client), 0);
	/* the Configure was answered */
	assert_int_equal(nri_buf_avail(&e.mux.tx), 22);

	/* deadlines */
	done_calls = 0;
	assert_int_equal(ttrpc_client_call(&e.client, &e.mux, 2, "s", "m", &empty.base, 100, 1000,
					   on_done, NULL, &ids[0]),
			 0);
	assert_int_equal(ids[0], 7);
	assert_int_equal(ttrpc_client_expire(&e.client, 1099), 0);
	assert_int_equal(ttrpc_client_expire(&e.client, 1100), 1);
	assert_int_equal(done_code, TTRPC_DEADLINE_EXCEEDED);
	/* reset fails pending calls and restarts numbering */
	assert_int_equal(ttrpc_client_call(&e.client, &e.mux, 2, "s", "m", &empty.base, 0, 0,
					   on_done, NULL, &ids[0]),
			 0);
	ttrpc_client_reset(&e.client, TTRPC_UNAVAILABLE, "gone");
	assert_int_equal(done_code, TTRPC_UNAVAILABLE);
	assert_string_equal(done_msg, "gone");
	assert_int_equal(e.client.next_stream, 1);
	end_free(&e);
}

static void test_error_response_decoded(void **state)
{
	Nri__Pkg__Api__V1alpha1__Empty empty = NRI__PKG__API__V1ALPHA1__EMPTY__INIT;
	uint8_t in[256], *data;
	size_t n, len;
	struct end e;

	end_init(&e);
	assert_int_equal(ttrpc_client_call(&e.client, &e.mux, 2, NRI_SERVICE_RUNTIME,
					   "RegisterPlugin", &empty.base, 0, 0, on_done, NULL,
					   NULL),
			 0);
	assert_int_equal(
		ttrpc_encode_response(2, "invalid plugin index \"4\"", NULL, 0, &data, &len), 0);
	n = mk_msg(in, 2, 1, TTRPC_TYPE_RESPONSE, data, len);
	free(data);
	done_calls = 0;
	assert_int_equal(nri_mux_feed(&e.mux, in, n), 0);
	assert_int_equal(done_calls, 1);
	assert_int_equal(done_code, 2);
	assert_string_equal(done_msg, "invalid plugin index \"4\"");
	end_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hdr),
		cmocka_unit_test(test_golden_register),
		cmocka_unit_test(test_golden_configure_reply),
		cmocka_unit_test(test_unknown_service_and_method),
		cmocka_unit_test(test_stream_ids),
		cmocka_unit_test(test_garbage_and_types),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_oversized_then_next),
		cmocka_unit_test(test_interleaved_streams),
		cmocka_unit_test(test_error_response_decoded),
	};

	weir_log_init("test_nri_ttrpc", WEIR_LOG_ERROR, WEIR_LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
