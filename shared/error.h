/* SPDX-License-Identifier: Apache-2.0 */
#ifndef WEIR_ERROR_H
#define WEIR_ERROR_H

#include <errno.h>
#include <stddef.h>

#define WEIR_ERROR_MAX 1024

struct weir_error {
	int code; /* negative errno, 0 when unset */
	char msg[WEIR_ERROR_MAX];
};

/* Set the message (replacing any), return code so callers can `return weir_error_set(...)`. */
int weir_error_set(struct weir_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepend context ("attach abc123: " + old message); returns the stored code. */
int weir_error_prefix(struct weir_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void weir_error_clear(struct weir_error *err);

#endif
