/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NRI connection multiplexer (docs/nri-protocol.md §1.2): one stream socket carries logical
 * connections as frames of {conn id u32 BE, length u32 BE, payload}. weir-nri serves ttrpc on
 * conn 1 and calls the runtime on conn 2; frames for any other id are dropped.
 *
 * The mux does no I/O itself: nri_mux_feed() parses received bytes (split anywhere) into
 * per-conn stream buffers, and the send side appends frames to an output buffer that the
 * caller writes with nri_mux_flush().
 */
#ifndef WEIR_NRI_MUX_H
#define WEIR_NRI_MUX_H

#include <stddef.h>
#include <stdint.h>

#define NRI_MUX_HDR_LEN	   8
#define NRI_CONN_PLUGIN	   1 /* PluginServiceConn: we are the ttrpc server */
#define NRI_CONN_RUNTIME   2 /* RuntimeServiceConn: we are the ttrpc client */
#define NRI_MUX_NCONN	   3 /* ids 0..2; 0 is reserved and never opened */
/* Largest frame a Go sender produces (v0.6.1: 1 << 24). Longer lengths are a broken peer. */
#define NRI_MUX_MAX_FRAME  (1u << 24)
/* Frames of at most this size (header excluded) are always safe for a Go receiver. */
#define NRI_MUX_SAFE_FRAME 4096
/* Bytes buffered per conn (one 4 MiB ttrpc message plus slack) and queued for sending. */
#define NRI_MUX_MAX_RX	   ((4u << 20) + (1u << 20))
#define NRI_MUX_MAX_TX	   (32u << 20)

struct nri_buf {
	uint8_t *data;
	size_t off; /* consumed bytes at the front */
	size_t len; /* end of valid bytes */
	size_t cap;
};

static inline size_t nri_buf_avail(const struct nri_buf *b)
{
	return b->len - b->off;
}

static inline const uint8_t *nri_buf_head(const struct nri_buf *b)
{
	return b->data + b->off;
}

int nri_buf_append(struct nri_buf *b, const void *p, size_t n, size_t limit);
void nri_buf_consume(struct nri_buf *b, size_t n);
void nri_buf_reset(struct nri_buf *b);
void nri_buf_free(struct nri_buf *b);

/*
 * Called after new payload bytes were appended to a conn's buffer. The callee consumes what it
 * can parse (nri_buf_consume) and leaves the rest. A negative return stops nri_mux_feed()
 * with that error.
 */
typedef int (*nri_mux_data_fn)(void *u, uint32_t conn, struct nri_buf *rx);

struct nri_mux {
	/* frame parser */
	uint8_t hdr[NRI_MUX_HDR_LEN];
	size_t hdr_got;
	uint32_t conn;	    /* conn id of the frame being received */
	uint32_t remaining; /* payload bytes of that frame still to come */
	int in_frame;

	struct nri_buf rx[NRI_MUX_NCONN];
	struct nri_buf tx;

	nri_mux_data_fn on_data;
	void *u;

	/* statistics, for logs and tests */
	uint64_t frames_in, frames_dropped, frames_out;
};

void nri_mux_init(struct nri_mux *m, nri_mux_data_fn on_data, void *u);
/* Forget all buffered input and output (used on disconnect); keeps the callback. */
void nri_mux_reset(struct nri_mux *m);
void nri_mux_free(struct nri_mux *m);

/*
 * Parse received bytes. Returns 0, -EPROTO for an absurd frame length, -ENOBUFS when a conn
 * buffers more than NRI_MUX_MAX_RX, or the callback's error. After an error the mux state is
 * undefined until nri_mux_reset().
 */
int nri_mux_feed(struct nri_mux *m, const void *data, size_t len);

/* True when a frame header or payload is partially received. */
int nri_mux_partial(const struct nri_mux *m);

/* Queue one raw frame. Returns 0, -EINVAL (bad conn id), -EMSGSIZE or -ENOBUFS. */
int nri_mux_queue_frame(struct nri_mux *m, uint32_t conn, const void *p, size_t n);

/*
 * Queue one message (ttrpc header + body) following the safe sending rules: when
 * head_len + body_len <= 4096, one frame; otherwise the header as one frame and the whole body
 * as exactly one frame. Never mixes two messages in one frame.
 */
int nri_mux_queue_message(struct nri_mux *m, uint32_t conn, const void *head, size_t head_len,
			  const void *body, size_t body_len);

/* Bytes waiting to be written. */
static inline size_t nri_mux_pending(const struct nri_mux *m)
{
	return nri_buf_avail(&m->tx);
}

/*
 * Write queued bytes to fd (non-blocking or blocking). Returns 0 when everything was written,
 * -EAGAIN when some remain, or another -errno on a write error.
 */
int nri_mux_flush(struct nri_mux *m, int fd);

#endif
