// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

size_t weir_utf8_char(const unsigned char *s, size_t len, uint32_t *cp)
{
	size_t need;
	uint32_t c;

	if (!len)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		need = 2;
		c = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		need = 3;
		c = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		need = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	if (need > len)
		return 0;
	for (size_t k = 1; k < need; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[k] & 0x3f);
	}
	/* overlong forms, surrogates and values past U+10FFFF are not UTF-8 */
	if ((need == 2 && c < 0x80) || (need == 3 && c < 0x800) || (need == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return need;
}

/* Characters that end a line or turn text around on a terminal, though valid UTF-8. */
static bool invisible_hazard(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x61c || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* How the character at s shows in a message: its bytes or an escape, in rep (returns the
 * length); *used is how many input bytes it stands for. */
static size_t render(char rep[16], const unsigned char *s, size_t avail, size_t *used, bool quoted)
{
	uint32_t cp;
	size_t n = weir_utf8_char(s, avail, &cp);

	if (!n) {
		*used = 1;
		return (size_t)snprintf(rep, 16, "\\x%02x", s[0]);
	}
	*used = n;
	switch (cp) {
	case '\n':
		return (size_t)snprintf(rep, 16, "\\n");
	case '\t':
		return (size_t)snprintf(rep, 16, "\\t");
	case '\r':
		return (size_t)snprintf(rep, 16, "\\r");
	case '"':
	case '\\':
		if (!quoted)
			break;
		return (size_t)snprintf(rep, 16, "\\%c", (char)cp);
	default:
		if (cp < 0x20 || cp == 0x7f)
			return (size_t)snprintf(rep, 16, "\\x%02x", (unsigned)cp);
		if (invisible_hazard(cp))
			return (size_t)snprintf(rep, 16, "\\u%04x", (unsigned)cp);
	}
	memcpy(rep, s, n);
	return n;
}

static bool name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '/' || c == '-';
}

const char *weir_quote(char *buf, size_t size, const char *str, size_t len, size_t max_in,
		       enum weir_quote_style style)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");
	bool quoted = style == WEIR_QUOTE_ALWAYS, cut = false;
	size_t in = 0, out = 0, room;
	char rep[16];

	if (len == SIZE_MAX)
		len = strlen((const char *)s);
	if (style == WEIR_QUOTE_NAME) {
		quoted = !len || (max_in && len > max_in) || len >= size;
		for (size_t i = 0; !quoted && i < len; i++)
			quoted = !name_char(s[i]);
	}
	/* the opening quote, the closing one, "..." and the NUL always fit */
	if (size < 8) {
		if (size)
			buf[0] = '\0';
		return buf;
	}
	room = size - 1 - 3 - quoted;
	if (quoted)
		buf[out++] = '"';
	while (in < len) {
		size_t used, n = render(rep, s + in, len - in, &used, quoted);

		if ((max_in && in + used > max_in) || out + n > room) {
			cut = true;
			break;
		}
		memcpy(buf + out, rep, n);
		out += n;
		in += used;
	}
	if (cut) {
		memcpy(buf + out, "...", 3);
		out += 3;
	}
	if (quoted)
		buf[out++] = '"';
	buf[out] = '\0';
	return buf;
}

/* snprintf cuts at a byte count: drop a character it left incomplete at the end. */
static void utf8_cut_tail(char *msg)
{
	size_t n = strlen(msg), i = n;
	uint32_t cp;

	while (i > 0 && n - i < 3 && ((unsigned char)msg[i - 1] & 0xc0) == 0x80)
		i--;
	if (i > 0 && (unsigned char)msg[i - 1] >= 0x80 &&
	    weir_utf8_char((const unsigned char *)msg + i - 1, n - i + 1, &cp) != n - i + 1)
		msg[i - 1] = '\0';
}

/* Format fmt, escaping whatever a caller let through that would break the line. */
static void vformat(char *out, size_t size, const char *fmt, va_list ap)
{
	char raw[WEIR_ERROR_MAX];

	vsnprintf(raw, sizeof(raw), fmt, ap);
	weir_quote(out, size, raw, SIZE_MAX, 0, WEIR_QUOTE_NONE);
}

static void set_key(struct weir_error *err, const char *key, size_t at, size_t shown)
{
	size_t n = strlen(key);

	if (n < sizeof(err->key))
		memcpy(err->key, key, n + 1);
	else
		err->key[0] = '\0';
	err->key_at = at;
	err->key_len = at + shown <= strlen(err->msg) ? shown : 0;
}

int weir_error_set(struct weir_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	err->key[0] = '\0';
	err->key_at = err->key_len = 0;
	va_start(ap, fmt);
	vformat(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

int weir_error_key(struct weir_error *err, int code, const char *key, const char *fmt, ...)
{
	char k[WEIR_QUOTE_SIZE], detail[WEIR_ERROR_MAX];
	va_list ap;

	if (!err)
		return code;
	va_start(ap, fmt);
	vformat(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	weir_quote(k, sizeof(k), key, SIZE_MAX, 0, WEIR_QUOTE_NAME);
	snprintf(err->msg, sizeof(err->msg), "%s: %s", k, detail);
	utf8_cut_tail(err->msg);
	err->code = code;
	set_key(err, key ? key : "", 0, strlen(k));
	return code;
}

void weir_error_rename_key(struct weir_error *err, const char *key)
{
	char k[WEIR_QUOTE_SIZE], msg[WEIR_ERROR_MAX];

	if (!err || !err->key[0] || !err->key_len)
		return;
	weir_quote(k, sizeof(k), key, SIZE_MAX, 0, WEIR_QUOTE_NAME);
	snprintf(msg, sizeof(msg), "%.*s%s%s", (int)err->key_at, err->msg, k,
		 err->msg + err->key_at + err->key_len);
	utf8_cut_tail(msg);
	memcpy(err->msg, msg, sizeof(msg));
	set_key(err, key, err->key_at, strlen(k));
}

int weir_error_prefix(struct weir_error *err, const char *fmt, ...)
{
	char prefix[WEIR_ERROR_MAX], old[WEIR_ERROR_MAX];
	va_list ap;

	if (!err)
		return -EINVAL;
	va_start(ap, fmt);
	vformat(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
	utf8_cut_tail(err->msg);
	if (err->key_len) {
		err->key_at += strlen(prefix) + 2;
		if (err->key_at + err->key_len > strlen(err->msg))
			err->key_len = 0;
	}
	return err->code;
}

void weir_error_clear(struct weir_error *err)
{
	if (!err)
		return;
	err->code = 0;
	err->key[0] = '\0';
	err->key_at = err->key_len = 0;
	err->msg[0] = '\0';
}
