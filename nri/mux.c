// SPDX-License-Identifier: Apache-2.0
/* NRI connection multiplexer: see mux.h and docs/nri-protocol.md §1.2. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mux.h"

/* Payload is handed to the consumer in slices of at most this size, so a consumer that
 * discards an oversized message keeps the buffer small whatever the caller feeds at once. */
#define FEED_SLICE (64u << 10)

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

int nri_buf_append(struct nri_buf *b, const void *p, size_t n, size_t limit)
{
	size_t need, ncap;
	uint8_t *nd;

	if (!n)
		return 0;
	if (nri_buf_avail(b) > limit || n > limit - nri_buf_avail(b))
		return -ENOBUFS;
	if (b->cap - b->len < n && b->off) {
		/* compact before growing */
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	need = b->len + n;
	if (need > b->cap) {
		ncap = b->cap ? b->cap : 4096;
		while (ncap < need)
			ncap *= 2;
		nd = realloc(b->data, ncap);
		if (!nd)
			return -ENOMEM;
		b->data = nd;
		b->cap = ncap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void nri_buf_consume(struct nri_buf *b, size_t n)
{
	if (n > nri_buf_avail(b))
		n = nri_buf_avail(b);
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

void nri_buf_reset(struct nri_buf *b)
{
	b->off = b->len = 0;
	/* do not keep a huge buffer around after one big message */
	if (b->cap > (1u << 20)) {
		free(b->data);
		b->data = NULL;
		b->cap = 0;
	}
}

void nri_buf_free(struct nri_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void nri_mux_init(struct nri_mux *m, nri_mux_data_fn on_data, void *u)
{
	memset(m, 0, sizeof(*m));
	m->on_data = on_data;
	m->u = u;
}

void nri_mux_reset(struct nri_mux *m)
{
	m->hdr_got = 0;
	m->in_frame = 0;
	m->conn = 0;
	m->remaining = 0;
	for (int i = 0; i < NRI_MUX_NCONN; i++)
		nri_buf_reset(&m->rx[i]);
	nri_buf_reset(&m->tx);
}

void nri_mux_free(struct nri_mux *m)
{
	for (int i = 0; i < NRI_MUX_NCONN; i++)
		nri_buf_free(&m->rx[i]);
	nri_buf_free(&m->tx);
}

int nri_mux_partial(const struct nri_mux *m)
{
	return m->hdr_got > 0 || m->in_frame;
}

static int conn_known(uint32_t conn)
{
	return conn == NRI_CONN_PLUGIN || conn == NRI_CONN_RUNTIME;
}

int nri_mux_feed(struct nri_mux *m, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t n;
	int err;

	while (len) {
		if (!m->in_frame) {
			n = NRI_MUX_HDR_LEN - m->hdr_got;
			if (n > len)
				n = len;
			memcpy(m->hdr + m->hdr_got, p, n);
			m->hdr_got += n;
			p += n;
			len -= n;
			if (m->hdr_got < NRI_MUX_HDR_LEN)
				break;
			m->hdr_got = 0;
			m->conn = get_be32(m->hdr);
			m->remaining = get_be32(m->hdr + 4);
			if (m->remaining > NRI_MUX_MAX_FRAME)
				return -EPROTO;
			m->frames_in++;
			if (!conn_known(m->conn))
				m->frames_dropped++;
			m->in_frame = m->remaining > 0;
			continue;
		}
		n = m->remaining;
		if (n > len)
			n = len;
		if (n > FEED_SLICE)
			n = FEED_SLICE;
		if (conn_known(m->conn)) {
			err = nri_buf_append(&m->rx[m->conn], p, n, NRI_MUX_MAX_RX);
			if (err)
				return err;
		}
		p += n;
		len -= n;
		m->remaining -= n;
		if (!m->remaining)
			m->in_frame = 0;
		if (conn_known(m->conn) && m->on_data) {
			err = m->on_data(m->u, m->conn, &m->rx[m->conn]);
			if (err < 0)
				return err;
		}
	}
	return 0;
}

int nri_mux_queue_frame(struct nri_mux *m, uint32_t conn, const void *p, size_t n)
{
	uint8_t hdr[NRI_MUX_HDR_LEN];
	int err;

	if (!conn_known(conn))
		return -EINVAL;
	if (n > NRI_MUX_MAX_FRAME)
		return -EMSGSIZE;
	if (nri_buf_avail(&m->tx) + sizeof(hdr) + n > NRI_MUX_MAX_TX)
		return -ENOBUFS;
	put_be32(hdr, conn);
	put_be32(hdr + 4, (uint32_t)n);
	err = nri_buf_append(&m->tx, hdr, sizeof(hdr), NRI_MUX_MAX_TX);
	if (err)
		return err;
	err = nri_buf_append(&m->tx, p, n, NRI_MUX_MAX_TX);
	if (err) {
		/* a failed append leaves the bytes before it in place: drop our header again */
		m->tx.len -= sizeof(hdr);
		return err;
	}
	m->frames_out++;
	return 0;
}

int nri_mux_queue_message(struct nri_mux *m, uint32_t conn, const void *head, size_t head_len,
			  const void *body, size_t body_len)
{
	uint8_t *one;
	int err;

	if (!conn_known(conn))
		return -EINVAL;
	if (body_len > NRI_MUX_MAX_FRAME || head_len > NRI_MUX_SAFE_FRAME)
		return -EMSGSIZE;
	if (nri_buf_avail(&m->tx) + 2 * NRI_MUX_HDR_LEN + head_len + body_len > NRI_MUX_MAX_TX)
		return -ENOBUFS;
	if (head_len + body_len <= NRI_MUX_SAFE_FRAME) {
		uint8_t tmp[NRI_MUX_SAFE_FRAME];

		one = tmp;
		memcpy(one, head, head_len);
		if (body_len)
			memcpy(one + head_len, body, body_len);
		return nri_mux_queue_frame(m, conn, one, head_len + body_len);
	}
	err = nri_mux_queue_frame(m, conn, head, head_len);
	if (err)
		return err;
	return nri_mux_queue_frame(m, conn, body, body_len);
}

int nri_mux_flush(struct nri_mux *m, int fd)
{
	ssize_t w;

	while (nri_buf_avail(&m->tx)) {
		w = send(fd, nri_buf_head(&m->tx), nri_buf_avail(&m->tx), MSG_NOSIGNAL);
		if (w < 0 && errno == ENOTSOCK)
			w = write(fd, nri_buf_head(&m->tx), nri_buf_avail(&m->tx));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EWOULDBLOCK)
				return -EAGAIN;
			return -errno;
		}
		nri_buf_consume(&m->tx, (size_t)w);
	}
	return 0;
}
