/* SPDX-License-Identifier: Apache-2.0 */
/*
 * For tests: is a message one printable line of valid UTF-8? Written apart from the library's
 * own decoder on purpose. Strict UTF-8 (no overlong forms, no surrogates, nothing past
 * U+10FFFF), and no C0, DEL or C1 control, no line or paragraph separator.
 */
#ifndef WEIR_TEST_LINE_CHECK_H
#define WEIR_TEST_LINE_CHECK_H

#include <stddef.h>

/* NULL when msg (n bytes) is one such line, else what is wrong with it. */
static inline const char *line_problem(const char *msg, size_t n)
{
	const unsigned char *s = (const unsigned char *)msg;

	for (size_t i = 0; i < n;) {
		unsigned c = s[i], k, cp, min;

		if (c < 0x20 || c == 0x7f)
			return "a control character";
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3, cp = c & 0x07, min = 0x10000;
		else
			return "a byte that starts no UTF-8 character";
		if (k >= n - i)
			return "a truncated UTF-8 character";
		for (unsigned j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return "a truncated UTF-8 character";
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return "an overlong form, a surrogate or a value past U+10FFFF";
		if (cp <= 0x9f || cp == 0x2028 || cp == 0x2029)
			return "a C1 control or a line separator";
		i += k + 1;
	}
	return NULL;
}

#endif
