// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

int weir_error_set(struct weir_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

int weir_error_prefix(struct weir_error *err, const char *fmt, ...)
{
	char prefix[WEIR_ERROR_MAX];
	char old[WEIR_ERROR_MAX];
	va_list ap;

	if (!err)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
	return err->code;
}

void weir_error_clear(struct weir_error *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}
