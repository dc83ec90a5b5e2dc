/* SPDX-License-Identifier: Apache-2.0 */
#ifndef WEIR_UTIL_H
#define WEIR_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <json-c/json.h>

#include "error.h"

#define WEIR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void weir_freep(void *p)
{
	free(*(void **)p);
}

static inline void weir_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static inline void weir_json_putp(struct json_object **o)
{
	if (*o)
		json_object_put(*o);
}

#define _cleanup_free_	__attribute__((cleanup(weir_freep)))
#define _cleanup_close_ __attribute__((cleanup(weir_closep)))
#define _cleanup_json_	__attribute__((cleanup(weir_json_putp)))

int weir_mkdir_p(const char *path, unsigned int mode);
/* Write via a temporary file and rename, so readers never see half a file. */
int weir_write_file_atomic(const char *path, const char *data, size_t len, unsigned int mode);
/*
 * Read a whole regular file up to max bytes (NUL-terminated): -EFBIG past max, -EINVAL for
 * anything but a regular file (a FIFO or a device is never waited for).
 */
int weir_read_file(const char *path, size_t max, char **out, size_t *len);
int weir_read_fd(int fd, size_t max, char **out, size_t *len);
/* What a weir_read_file() or weir_read_fd() error means, for messages. */
const char *weir_read_strerror(int r);
uint64_t weir_now_ms(void);
/* No control characters: safe to quote in a one-line message. */
bool weir_printable(const char *s);
/* Container ids become file names: [A-Za-z0-9_.-], 1-128 chars, no leading '.'. */
bool weir_valid_id(const char *id);
/* A decimal number from lo to hi: -EINVAL when it is none, -ERANGE when it is out of range. */
int weir_parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *out);
int weir_path_join(char *out, size_t size, const char *a, const char *b);
/*
 * Open (creating it and its folder) and flock a lock file; returns the fd, held until closed.
 * Without `wait`, a lock someone else holds is -EWOULDBLOCK.
 */
int weir_lock_file(const char *path, bool wait, struct weir_error *err);

/* Lenient JSON getters for weir's own output formats: 0 / NULL when absent or mistyped. */
uint64_t weir_json_u64(struct json_object *o, const char *key);
const char *weir_json_str(struct json_object *o, const char *key);

#endif
