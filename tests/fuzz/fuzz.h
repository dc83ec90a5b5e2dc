/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers the fuzz targets share: reading a fuzzer's input as a sequence of fields. */
#ifndef WEIR_FUZZ_H
#define WEIR_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
	return (uint16_t)(fuzz_u8(in) | fuzz_u8(in) << 8);
}

/* The next len bytes (fewer at the end), as a malloc()ed NUL-terminated copy. */
static inline char *fuzz_bytes(struct fuzz_in *in, size_t len, size_t *got)
{
	char *s;

	if (len > in->n)
		len = in->n;
	s = malloc(len + 1);
	if (!s)
		abort();
	memcpy(s, in->p, len);
	s[len] = '\0';
	in->p += len;
	in->n -= len;
	if (got)
		*got = len;
	return s;
}

/* Up to the next NUL byte (consumed) or the end. */
static inline char *fuzz_field(struct fuzz_in *in)
{
	const uint8_t *nul = memchr(in->p, 0, in->n);
	size_t len = nul ? (size_t)(nul - in->p) : in->n;
	char *s = fuzz_bytes(in, len, NULL);

	if (nul)
		fuzz_u8(in);
	return s;
}

#endif
