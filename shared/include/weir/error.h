/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Errors that reach a user: one line of valid UTF-8 (runtimes print it as the reason a container
 * was refused; weir-nri sends it to containerd in a protobuf string, which must be UTF-8).
 * Every piece of text a user wrote goes into a message through weir_quote(), and the setters
 * below escape whatever else could break the line.
 */
#ifndef WEIR_ERROR_H
#define WEIR_ERROR_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define WEIR_ERROR_MAX	   1024
#define WEIR_ERROR_KEY_MAX 256

struct weir_error {
	int code; /* negative errno, 0 when unset */
	/*
	 * The annotation the message is about ("egress.weir.io"), as the parser saw it; "" when
	 * the error is not about one (or its key is longer than this). An integration that
	 * resolved it from another key ("egress.weir.io/container.app") renames it in the
	 * message with weir_error_rename_key(): msg shows it at byte key_at, key_len bytes long
	 * (key_len 0: the message does not show it whole).
	 */
	char key[WEIR_ERROR_KEY_MAX];
	size_t key_at, key_len;
	char msg[WEIR_ERROR_MAX];
};

/* Set the message (replacing any), return code so callers can `return weir_error_set(...)`. */
int weir_error_set(struct weir_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The same for a message about annotation `key`: "<key>: <fmt...>" (the key quoted if needed). */
int weir_error_key(struct weir_error *err, int code, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Name the error's annotation key differently in its message; nothing when it has none. */
void weir_error_rename_key(struct weir_error *err, const char *key);

/* Prepend context ("attach abc123: " + old message); returns the stored code. */
int weir_error_prefix(struct weir_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void weir_error_clear(struct weir_error *err);

/*
 * The one formatter for user text in messages. The result is one line of valid UTF-8 whatever
 * the input: control characters (C0, DEL, C1), line and paragraph separators and bidirectional
 * controls are escaped (\n, \t, \r, \xHH, \uHHHH), and so is every byte that is not part of a
 * valid UTF-8 character (\xHH). At most max_in bytes of s are shown (0: as many as fit in
 * size), cut at a character boundary and followed by "...".
 *   WEIR_QUOTE_ALWAYS  between double quotes, '"' and '\' escaped: a value, a token
 *   WEIR_QUOTE_NAME    bare when non-empty and made of [A-Za-z0-9._/-] only, else as ALWAYS:
 *                      keys and names (egress.weir.io/pod stays as it is)
 *   WEIR_QUOTE_NONE    no quotes, only what breaks a line or UTF-8 escaped: whole messages
 * len is s's length (it may hold NUL bytes), or SIZE_MAX for strlen(s); s NULL is "".
 * Returns buf.
 */
enum weir_quote_style {
	WEIR_QUOTE_ALWAYS,
	WEIR_QUOTE_NAME,
	WEIR_QUOTE_NONE,
};

#define WEIR_QUOTE_SIZE 256

const char *weir_quote(char *buf, size_t size, const char *s, size_t len, size_t max_in,
		       enum weir_quote_style style);

/*
 * For format arguments: WEIR_Q(tok) and WEIR_QN(name) quote into a buffer of the enclosing
 * block (a compound literal), long enough for one message part.
 */
#define WEIR_Q(s)                                                                                  \
	weir_quote((char[WEIR_QUOTE_SIZE]){0}, WEIR_QUOTE_SIZE, (s), SIZE_MAX, 0, WEIR_QUOTE_ALWAYS)
#define WEIR_QN(s)                                                                                 \
	weir_quote((char[WEIR_QUOTE_SIZE]){0}, WEIR_QUOTE_SIZE, (s), SIZE_MAX, 0, WEIR_QUOTE_NAME)

/*
 * One UTF-8 character at s (len bytes available): its length (1-4) with *cp set, or 0 when the
 * bytes there are not UTF-8 (overlong forms, surrogates, past U+10FFFF, truncated).
 */
size_t weir_utf8_char(const unsigned char *s, size_t len, uint32_t *cp);

#endif
