// SPDX-License-Identifier: Apache-2.0
/*
 * weir-nri's wire: the NRI connection multiplexer and ttrpc framing.
 *
 *  1. The input as bytes from the runtime, fed to the multiplexer in pieces of a size the input
 *     chooses: frames to per-connection streams, ttrpc messages out of them, requests served
 *     (conn 1) and responses matched to pending calls (conn 2), as weir-nri does.
 *  2. The input as messages to send: what the multiplexer queues, fed back into another one in
 *     pieces, must give each connection exactly the bytes that were sent on it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "log.h"
#include "mux.h"
#include "nri_api.h"
#include "ttrpc.h"

static void echo(void *u, const struct ttrpc_call_info *ci, const uint8_t *req, size_t len,
		 struct ttrpc_reply *rep)
{
	Nri__Pkg__Api__V1alpha1__Empty e = NRI__PKG__API__V1ALPHA1__EMPTY__INIT;

	ttrpc_reply_message(rep, &e.base);
}

static void refuse(void *u, const struct ttrpc_call_info *ci, const uint8_t *req, size_t len,
		   struct ttrpc_reply *rep)
{
	ttrpc_reply_error(rep, TTRPC_INVALID_ARGUMENT, "refused %zu bytes", len);
}

static const struct ttrpc_method methods[] = {{"Echo", echo}, {"Refuse", refuse}};
static const struct ttrpc_service services[] = {{NRI_SERVICE_PLUGIN, methods, 2}};

struct peer {
	struct ttrpc_server server;
	struct ttrpc_client client;
	struct ttrpc_rx rx[NRI_MUX_NCONN];
	struct nri_mux *mux; /* responses are queued here */
};

static void done(void *u, uint32_t stream, int code, const char *msg, const uint8_t *payload,
		 size_t len)
{
	if (code && !msg)
		abort();
}

static int on_data(void *u, uint32_t conn, struct nri_buf *rx)
{
	struct peer *p = u;
	struct ttrpc_msg msg;
	int err = 0;

	while (!err && ttrpc_rx_next(&p->rx[conn], rx, &msg) == 1) {
		if (conn == NRI_CONN_PLUGIN)
			err = ttrpc_server_handle(&p->server, p->mux, conn, &msg);
		else
			ttrpc_client_handle(&p->client, &msg);
		ttrpc_rx_done(rx, &msg);
	}
	return err;
}

static void receive(const uint8_t *data, size_t size, size_t piece)
{
	Nri__Pkg__Api__V1alpha1__Empty e = NRI__PKG__API__V1ALPHA1__EMPTY__INIT;
	struct peer p = {};
	struct nri_mux m;
	uint32_t stream;

	nri_mux_init(&m, on_data, &p);
	p.mux = &m;
	ttrpc_server_init(&p.server, services, 1, NULL);
	ttrpc_client_init(&p.client);
	for (int i = 0; i < 4; i++)
		ttrpc_client_call(&p.client, &m, NRI_CONN_RUNTIME, NRI_SERVICE_RUNTIME, "Call",
				  &e.base, 1000, 0, done, NULL, &stream);
	for (size_t off = 0; off < size; off += piece)
		if (nri_mux_feed(&m, data + off, size - off < piece ? size - off : piece))
			break; /* the connection would be dropped */
	ttrpc_client_expire(&p.client, UINT64_MAX - 1);
	ttrpc_client_reset(&p.client, TTRPC_UNAVAILABLE, "closed");
	ttrpc_server_reset(&p.server);
	nri_mux_free(&m);
}

struct sink {
	struct nri_buf got[NRI_MUX_NCONN];
};

static int collect(void *u, uint32_t conn, struct nri_buf *rx)
{
	struct sink *s = u;

	if (nri_buf_append(&s->got[conn], nri_buf_head(rx), nri_buf_avail(rx), 64u << 20))
		abort();
	nri_buf_consume(rx, nri_buf_avail(rx));
	return 0;
}

static void roundtrip(const uint8_t *data, size_t size, size_t piece)
{
	struct fuzz_in in = {data, size};
	struct nri_buf want[NRI_MUX_NCONN] = {};
	struct sink s = {};
	struct nri_mux a, b;

	nri_mux_init(&a, NULL, NULL);
	nri_mux_init(&b, collect, &s);
	while (in.n) {
		uint32_t conn = fuzz_u8(&in) % 4;
		size_t hl, bl;
		char *head = fuzz_bytes(&in, fuzz_u8(&in), &hl);
		char *body = fuzz_bytes(&in, fuzz_u16(&in) * 4u, &bl);
		int r = nri_mux_queue_message(&a, conn, head, hl, body, bl);

		if (!r && (nri_buf_append(&want[conn], head, hl, 64u << 20) ||
			   nri_buf_append(&want[conn], body, bl, 64u << 20)))
			abort();
		if (r && conn >= 1 && conn <= 2 && hl + bl <= NRI_MUX_MAX_FRAME)
			abort(); /* a message of a known conn within limits is always queued */
		free(head);
		free(body);
	}
	for (size_t off = 0; off < nri_buf_avail(&a.tx); off += piece) {
		size_t n = nri_buf_avail(&a.tx) - off;

		if (nri_mux_feed(&b, nri_buf_head(&a.tx) + off, n < piece ? n : piece))
			abort(); /* what the mux sends, the mux takes */
	}
	for (int c = 0; c < NRI_MUX_NCONN; c++) {
		size_t n = nri_buf_avail(&want[c]);

		/* conn 0 is never opened: its frames are dropped */
		if (c == 0 ? nri_buf_avail(&s.got[c]) != 0
			   : nri_buf_avail(&s.got[c]) != n ||
				     (n &&
				      memcmp(nri_buf_head(&s.got[c]), nri_buf_head(&want[c]), n)))
			abort();
		nri_buf_free(&want[c]);
		nri_buf_free(&s.got[c]);
	}
	nri_mux_free(&a);
	nri_mux_free(&b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	weir_log_init("fuzz_nri_wire", WEIR_LOG_ERROR, WEIR_LOG_TEXT);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t piece;

	if (!size)
		return 0;
	piece = 1 + data[0] % 97;
	receive(data + 1, size - 1, piece);
	roundtrip(data + 1, size - 1, piece);
	return 0;
}
