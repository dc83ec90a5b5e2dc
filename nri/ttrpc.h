/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unary ttrpc over one logical NRI connection (docs/nri-protocol.md §2): 10-byte message
 * header, protobuf Request/Response envelopes, google.rpc.Status errors. A ttrpc_server
 * answers requests from a service table; a ttrpc_client numbers its calls with odd,
 * increasing stream ids and matches responses by id.
 */
#ifndef WEIR_NRI_TTRPC_H
#define WEIR_NRI_TTRPC_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "mux.h"

#define TTRPC_HDR_LEN  10
#define TTRPC_MAX_DATA (4u << 20)

enum ttrpc_type {
	TTRPC_TYPE_REQUEST = 1,
	TTRPC_TYPE_RESPONSE = 2,
	TTRPC_TYPE_DATA = 3,
};

/* google.rpc.Code values used here */
enum ttrpc_code {
	TTRPC_OK = 0,
	TTRPC_UNKNOWN = 2,
	TTRPC_INVALID_ARGUMENT = 3,
	TTRPC_DEADLINE_EXCEEDED = 4,
	TTRPC_RESOURCE_EXHAUSTED = 8,
	TTRPC_UNIMPLEMENTED = 12,
	TTRPC_INTERNAL = 13,
	TTRPC_UNAVAILABLE = 14,
};

#define TTRPC_MSG_MAX 1024

struct ttrpc_hdr {
	uint32_t len; /* data length, header not counted */
	uint32_t stream;
	uint8_t type;
	uint8_t flags;
};

void ttrpc_hdr_pack(uint8_t out[TTRPC_HDR_LEN], const struct ttrpc_hdr *h);
void ttrpc_hdr_unpack(const uint8_t in[TTRPC_HDR_LEN], struct ttrpc_hdr *h);

/* Receive side of one logical connection. */
struct ttrpc_rx {
	uint32_t discard; /* bytes of an oversized message still to skip */
};

struct ttrpc_msg {
	struct ttrpc_hdr hdr;
	const uint8_t *data; /* hdr.len bytes inside the conn buffer; NULL when oversized */
	int oversized;	     /* hdr.len > TTRPC_MAX_DATA: the data is being discarded */
};

/*
 * Take the next complete message out of buf. Returns 1 with *msg set (call ttrpc_rx_done()
 * once done with msg->data), 0 when more bytes are needed. An oversized message is returned
 * once, as soon as its header is known, and its data is then skipped as it arrives.
 */
int ttrpc_rx_next(struct ttrpc_rx *rx, struct nri_buf *buf, struct ttrpc_msg *msg);
void ttrpc_rx_done(struct nri_buf *buf, const struct ttrpc_msg *msg);
/* True while a message is partially received. */
int ttrpc_rx_partial(const struct ttrpc_rx *rx, const struct nri_buf *buf);

/* Queue header + data on the mux (safe sending rules). -EMSGSIZE above TTRPC_MAX_DATA. */
int ttrpc_queue(struct nri_mux *m, uint32_t conn, uint32_t stream, uint8_t type,
		const uint8_t *data, size_t len);

/* Pack a protobuf-c message into a fresh malloc()ed buffer (*out NULL when it packs to 0). */
int ttrpc_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len);

/* Encode a Request / Response envelope into a malloc()ed buffer. */
int ttrpc_encode_request(const char *service, const char *method, const uint8_t *payload,
			 size_t payload_len, int64_t timeout_nano, uint8_t **out, size_t *len);
/* code 0: status left out, payload (if any) set; otherwise status {code, msg} only. */
int ttrpc_encode_response(int code, const char *msg, const uint8_t *payload, size_t payload_len,
			  uint8_t **out, size_t *len);

/* ---- server ---- */

struct ttrpc_reply {
	int code;		 /* TTRPC_OK or an error code */
	char msg[TTRPC_MSG_MAX]; /* status message when code != 0 */
	uint8_t *payload;	 /* malloc()ed packed response message, or NULL */
	size_t payload_len;
};

/* Set an error reply (printf-style message). */
void ttrpc_reply_error(struct ttrpc_reply *rep, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Pack msg as the reply payload; on failure the reply becomes an INTERNAL error. */
void ttrpc_reply_message(struct ttrpc_reply *rep, const ProtobufCMessage *msg);

struct ttrpc_call_info {
	const char *service;
	const char *method;
	uint32_t stream;
	int64_t timeout_nano; /* 0: none */
};

typedef void (*ttrpc_method_fn)(void *u, const struct ttrpc_call_info *ci, const uint8_t *req,
				size_t len, struct ttrpc_reply *rep);

struct ttrpc_method {
	const char *name;
	ttrpc_method_fn fn;
};

struct ttrpc_service {
	const char *name;
	const struct ttrpc_method *methods;
	size_t nmethods;
};

struct ttrpc_server {
	const struct ttrpc_service *services;
	size_t nservices;
	void *u;
	uint32_t last_stream; /* highest stream id served on this connection */
};

void ttrpc_server_init(struct ttrpc_server *s, const struct ttrpc_service *services,
		       size_t nservices, void *u);
void ttrpc_server_reset(struct ttrpc_server *s);

/*
 * Serve one received message: dispatch a request and queue its response on conn. Unknown
 * service or method: 12 "service NAME" / "method NAME"; bad envelope or stream id: 3;
 * oversized: 8. Non-request messages are logged and ignored. Returns 0, or -errno when the
 * response could not be queued (the connection should be dropped).
 */
int ttrpc_server_handle(struct ttrpc_server *s, struct nri_mux *m, uint32_t conn,
			const struct ttrpc_msg *msg);

/* ---- client ---- */

/* Completion: code is TTRPC_OK with the response payload, or an error with its message. */
typedef void (*ttrpc_done_fn)(void *u, uint32_t stream, int code, const char *msg,
			      const uint8_t *payload, size_t len);

#define TTRPC_MAX_CALLS 16

struct ttrpc_call {
	uint32_t stream; /* 0: slot unused */
	char method[64];
	uint64_t deadline_ms;
	ttrpc_done_fn done;
	void *u;
};

struct ttrpc_client {
	uint32_t next_stream;
	struct ttrpc_call calls[TTRPC_MAX_CALLS];
};

void ttrpc_client_init(struct ttrpc_client *c);

/*
 * Start a call: pack req, queue the Request on conn and remember the call until its response,
 * its deadline (now_ms + timeout_ms; timeout_ms 0 = none) or a reset. -EBUSY when too many calls
 * are pending.
 */
int ttrpc_client_call(struct ttrpc_client *c, struct nri_mux *m, uint32_t conn, const char *service,
		      const char *method, const ProtobufCMessage *req, uint64_t timeout_ms,
		      uint64_t now_ms, ttrpc_done_fn done, void *u, uint32_t *stream);

/* Complete the matching call with a received message. Unknown streams are logged, ignored. */
void ttrpc_client_handle(struct ttrpc_client *c, const struct ttrpc_msg *msg);

/* Fail calls past their deadline with DEADLINE_EXCEEDED; returns how many. */
int ttrpc_client_expire(struct ttrpc_client *c, uint64_t now_ms);
/* Earliest pending deadline, or UINT64_MAX. */
uint64_t ttrpc_client_next_deadline(const struct ttrpc_client *c);
size_t ttrpc_client_pending(const struct ttrpc_client *c);
/* Fail every pending call with code/msg and restart stream numbering at 1. */
void ttrpc_client_reset(struct ttrpc_client *c, int code, const char *msg);

#endif
