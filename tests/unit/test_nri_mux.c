// SPDX-License-Identifier: Apache-2.0
/* NRI multiplexer: frame parsing at arbitrary split points, limits, the safe sending rules. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "mux.h"

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Append a frame to a byte array. */
static size_t add_frame(uint8_t *out, size_t off, uint32_t conn, const void *p, uint32_t n)
{
	put_be32(out + off, conn);
	put_be32(out + off + 4, n);
	memcpy(out + off + 8, p, n);
	return off + 8 + n;
}

static int calls;

static int keep_all(void *u, uint32_t conn, struct nri_buf *rx)
{
	calls++;
	return 0;
}

static void test_split_anywhere(void **state)
{
	uint8_t stream[512], want1[128], want2[128];
	size_t len = 0, n1 = 0, n2 = 0;

	for (size_t i = 0; i < sizeof(want1); i++)
		want1[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(want2); i++)
		want2[i] = (uint8_t)(i * 13 + 5);

	/* conn 1 and 2 interleaved, a zero-length frame, frames for unopened ids 0 and 7 */
	len = add_frame(stream, len, 1, want1, 10);
	len = add_frame(stream, len, 2, want2, 33);
	len = add_frame(stream, len, 0, "zzzz", 4);
	len = add_frame(stream, len, 1, "", 0);
	len = add_frame(stream, len, 1, want1 + 10, 100);
	len = add_frame(stream, len, 7, "garbage", 7);
	len = add_frame(stream, len, 2, want2 + 33, 95);
	len = add_frame(stream, len, 1, want1 + 110, 18);
	n1 = 128;
	n2 = 128;

	for (size_t step = 1; step <= len; step++) {
		struct nri_mux m;

		nri_mux_init(&m, keep_all, NULL);
		for (size_t off = 0; off < len; off += step) {
			size_t n = len - off < step ? len - off : step;

			assert_int_equal(nri_mux_feed(&m, stream + off, n), 0);
		}
		assert_false(nri_mux_partial(&m));
		assert_int_equal(nri_buf_avail(&m.rx[1]), n1);
		assert_memory_equal(nri_buf_head(&m.rx[1]), want1, n1);
		assert_int_equal(nri_buf_avail(&m.rx[2]), n2);
		assert_memory_equal(nri_buf_head(&m.rx[2]), want2, n2);
		assert_int_equal(nri_buf_avail(&m.rx[0]), 0);
		assert_int_equal(m.frames_in, 8);
		assert_int_equal(m.frames_dropped, 2);
		nri_mux_free(&m);
	}

	/* two-part split at every position */
	for (size_t cut = 0; cut <= len; cut++) {
		struct nri_mux m;

		nri_mux_init(&m, keep_all, NULL);
		assert_int_equal(nri_mux_feed(&m, stream, cut), 0);
		assert_int_equal(nri_mux_feed(&m, stream + cut, len - cut), 0);
		assert_memory_equal(nri_buf_head(&m.rx[1]), want1, n1);
		assert_memory_equal(nri_buf_head(&m.rx[2]), want2, n2);
		nri_mux_free(&m);
	}
}

static void test_partial(void **state)
{
	uint8_t stream[64];
	size_t len = add_frame(stream, 0, 1, "hello", 5);
	struct nri_mux m;

	nri_mux_init(&m, keep_all, NULL);
	assert_int_equal(nri_mux_feed(&m, stream, 3), 0);
	assert_true(nri_mux_partial(&m));
	assert_int_equal(nri_mux_feed(&m, stream + 3, 7), 0);
	assert_true(nri_mux_partial(&m));
	assert_int_equal(nri_buf_avail(&m.rx[1]), 2);
	assert_int_equal(nri_mux_feed(&m, stream + 10, len - 10), 0);
	assert_false(nri_mux_partial(&m));
	assert_memory_equal(nri_buf_head(&m.rx[1]), "hello", 5);
	nri_mux_reset(&m);
	assert_int_equal(nri_buf_avail(&m.rx[1]), 0);
	nri_mux_free(&m);
}

static void test_absurd_length(void **state)
{
	uint8_t hdr[8];
	struct nri_mux m;

	put_be32(hdr, 1);
	put_be32(hdr + 4, 0xfffffff0u);
	nri_mux_init(&m, keep_all, NULL);
	assert_int_equal(nri_mux_feed(&m, hdr, sizeof(hdr)), -EPROTO);
	/* nothing was allocated for it */
	assert_int_equal(m.rx[1].cap, 0);
	nri_mux_free(&m);

	/* the same for a conn id nobody opened */
	put_be32(hdr, 9);
	put_be32(hdr + 4, NRI_MUX_MAX_FRAME + 1);
	nri_mux_init(&m, keep_all, NULL);
	assert_int_equal(nri_mux_feed(&m, hdr, sizeof(hdr)), -EPROTO);
	nri_mux_free(&m);

	/* the largest legal frame header is accepted */
	put_be32(hdr, 2);
	put_be32(hdr + 4, NRI_MUX_MAX_FRAME);
	nri_mux_init(&m, keep_all, NULL);
	assert_int_equal(nri_mux_feed(&m, hdr, sizeof(hdr)), 0);
	assert_true(nri_mux_partial(&m));
	assert_int_equal(m.rx[2].cap, 0);
	nri_mux_free(&m);
}

static void test_rx_limit(void **state)
{
	size_t chunk = 1u << 20;
	uint8_t *data = calloc(1, chunk);
	uint8_t hdr[8];
	struct nri_mux m;
	int err = 0;

	assert_non_null(data);
	nri_mux_init(&m, keep_all, NULL); /* never consumes */
	put_be32(hdr, 1);
	put_be32(hdr + 4, NRI_MUX_MAX_FRAME);
	assert_int_equal(nri_mux_feed(&m, hdr, 8), 0);
	for (int i = 0; i < 16 && !err; i++)
		err = nri_mux_feed(&m, data, chunk);
	assert_int_equal(err, -ENOBUFS);
	assert_true(nri_buf_avail(&m.rx[1]) <= NRI_MUX_MAX_RX);
	nri_mux_free(&m);
	free(data);
}

static int consume_all(void *u, uint32_t conn, struct nri_buf *rx)
{
	size_t *total = u;

	*total += nri_buf_avail(rx);
	nri_buf_consume(rx, nri_buf_avail(rx));
	return 0;
}

static void test_consumer_keeps_memory_small(void **state)
{
	/* a 16 MiB frame fed at once is handed over in slices a consumer can discard */
	size_t n = NRI_MUX_MAX_FRAME, total = 0;
	uint8_t *stream = calloc(1, n + 8);
	struct nri_mux m;

	assert_non_null(stream);
	put_be32(stream, 2);
	put_be32(stream + 4, (uint32_t)n);
	nri_mux_init(&m, consume_all, &total);
	assert_int_equal(nri_mux_feed(&m, stream, n + 8), 0);
	assert_int_equal(total, n);
	assert_true(m.rx[2].cap <= (1u << 20));
	nri_mux_free(&m);
	free(stream);
}

static int fail_cb(void *u, uint32_t conn, struct nri_buf *rx)
{
	return -ECONNABORTED;
}

static void test_callback_error(void **state)
{
	uint8_t stream[64];
	size_t len = add_frame(stream, 0, 2, "abc", 3);
	struct nri_mux m;

	nri_mux_init(&m, fail_cb, NULL);
	assert_int_equal(nri_mux_feed(&m, stream, len), -ECONNABORTED);
	nri_mux_free(&m);
}

/* The frames in the tx buffer: conn ids and lengths. */
static size_t frames_of(const struct nri_mux *m, uint32_t *conn, uint32_t *len, size_t max)
{
	const uint8_t *p = nri_buf_head(&m->tx);
	size_t avail = nri_buf_avail(&m->tx), off = 0, n = 0;

	while (off < avail && n < max) {
		assert_true(avail - off >= 8);
		conn[n] = get_be32(p + off);
		len[n] = get_be32(p + off + 4);
		off += 8 + len[n];
		assert_true(off <= avail);
		n++;
	}
	assert_int_equal(off, avail);
	return n;
}

static void test_send_rules(void **state)
{
	uint8_t head[10], *body = malloc(9062);
	uint32_t conn[4], len[4];
	struct nri_mux m;

	assert_non_null(body);
	memset(head, 0xaa, sizeof(head));
	for (size_t i = 0; i < 9062; i++)
		body[i] = (uint8_t)i;

	/* exactly 4096: one frame holding header and body */
	nri_mux_init(&m, NULL, NULL);
	assert_int_equal(nri_mux_queue_message(&m, 2, head, 10, body, 4086), 0);
	assert_int_equal(frames_of(&m, conn, len, 4), 1);
	assert_int_equal(conn[0], 2);
	assert_int_equal(len[0], 4096);
	assert_memory_equal(nri_buf_head(&m.tx) + 8, head, 10);
	assert_memory_equal(nri_buf_head(&m.tx) + 18, body, 4086);
	nri_mux_free(&m);

	/* 4097: the header alone, then the whole body as one frame */
	nri_mux_init(&m, NULL, NULL);
	assert_int_equal(nri_mux_queue_message(&m, 1, head, 10, body, 4087), 0);
	assert_int_equal(frames_of(&m, conn, len, 4), 2);
	assert_int_equal(conn[0], 1);
	assert_int_equal(len[0], 10);
	assert_int_equal(conn[1], 1);
	assert_int_equal(len[1], 4087);
	assert_memory_equal(nri_buf_head(&m.tx) + 8, head, 10);
	assert_memory_equal(nri_buf_head(&m.tx) + 26, body, 4087);
	nri_mux_free(&m);

	/* the 9,062-byte payload observed to work, after a small message: no mixing */
	nri_mux_init(&m, NULL, NULL);
	assert_int_equal(nri_mux_queue_message(&m, 2, head, 10, NULL, 0), 0);
	assert_int_equal(nri_mux_queue_message(&m, 2, head, 10, body, 9062), 0);
	assert_int_equal(nri_mux_queue_message(&m, 1, head, 10, body, 4), 0);
	assert_int_equal(frames_of(&m, conn, len, 4), 4);
	assert_int_equal(len[0], 10);
	assert_int_equal(len[1], 10);
	assert_int_equal(len[2], 9062);
	assert_int_equal(len[3], 14);
	assert_int_equal(conn[3], 1);
	assert_int_equal(m.frames_out, 4);
	nri_mux_free(&m);

	/* bad conn ids */
	nri_mux_init(&m, NULL, NULL);
	assert_int_equal(nri_mux_queue_message(&m, 0, head, 10, body, 4), -EINVAL);
	assert_int_equal(nri_mux_queue_frame(&m, 3, body, 4), -EINVAL);
	assert_int_equal(nri_mux_pending(&m), 0);
	nri_mux_free(&m);
	free(body);
}

static void test_roundtrip_socketpair(void **state)
{
	/* both directions through a real socket, read back with a second mux */
	uint8_t head[10] = {0, 0, 0, 4, 0, 0, 0, 1, 1, 0}, *body = malloc(20000);
	struct nri_mux a, b;
	uint8_t buf[777];
	int sv[2];

	assert_non_null(body);
	for (size_t i = 0; i < 20000; i++)
		body[i] = (uint8_t)(i ^ (i >> 8));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	for (int dir = 0; dir < 2; dir++) {
		int wfd = sv[dir], rfd = sv[!dir];
		size_t got = 0;

		nri_mux_init(&a, NULL, NULL);
		nri_mux_init(&b, keep_all, NULL);
		assert_int_equal(nri_mux_queue_message(&a, 1, head, 10, body, 20000), 0);
		assert_int_equal(nri_mux_queue_message(&a, 2, head, 10, body, 100), 0);
		assert_int_equal(nri_mux_flush(&a, wfd), 0);
		assert_int_equal(nri_mux_pending(&a), 0);
		while (got < 8 + 10 + 8 + 20000 + 8 + 110) {
			ssize_t n = read(rfd, buf, sizeof(buf));

			assert_true(n > 0);
			assert_int_equal(nri_mux_feed(&b, buf, (size_t)n), 0);
			got += (size_t)n;
		}
		assert_int_equal(nri_buf_avail(&b.rx[1]), 20010);
		assert_memory_equal(nri_buf_head(&b.rx[1]) + 10, body, 20000);
		assert_int_equal(nri_buf_avail(&b.rx[2]), 110);
		assert_memory_equal(nri_buf_head(&b.rx[2]), head, 10);
		nri_mux_free(&a);
		nri_mux_free(&b);
	}
	close(sv[0]);
	close(sv[1]);
	free(body);
}

static void test_flush_errors(void **state)
{
	struct nri_mux m;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	nri_mux_init(&m, NULL, NULL);
	assert_int_equal(nri_mux_queue_frame(&m, 1, "x", 1), 0);
	/* no SIGPIPE, just an error */
	assert_int_equal(nri_mux_flush(&m, sv[0]), -EPIPE);
	nri_mux_free(&m);
	close(sv[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_anywhere),
		cmocka_unit_test(test_partial),
		cmocka_unit_test(test_absurd_length),
		cmocka_unit_test(test_rx_limit),
		cmocka_unit_test(test_consumer_keeps_memory_small),
		cmocka_unit_test(test_callback_error),
		cmocka_unit_test(test_send_rules),
		cmocka_unit_test(test_roundtrip_socketpair),
		cmocka_unit_test(test_flush_errors),
	};

	weir_log_init("test_nri_mux", WEIR_LOG_ERROR, WEIR_LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
