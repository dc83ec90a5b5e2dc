// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: every message weir builds from user text is one line of valid UTF-8 that
 * fits struct weir_error, whatever the text (defect: newlines and split characters reached
 * runtimes and containerd, whose protobuf strings must be UTF-8).
 *
 * Input: byte 0 is the key's length (mod 64), then the key, then the value; either may hold
 * any byte, NUL included. They go through the formatter (three styles, several sizes and
 * cuts), the raw annotation check, annotation resolution, the annotation parser and policy
 * compiler, the JSON key check, and the message setters (prefix, key renaming).
 *
 * Needs shared/core/error.c, shared/core/annot.c and shared/core/policy.c (no kernel, no I/O):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. -Ishared/include/weir \
 *     tests/fuzz/fuzz_errmsg.c shared/core/error.c shared/core/annot.c shared/core/policy.c -o
 * fuzz_errmsg
 *   ./fuzz_errmsg tests/fuzz/corpus/errmsg
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot.h"
#include "error.h"
#include "../unit/line_check.h"

static void check_line(const char *what, const char *msg, size_t size)
{
	size_t n = strnlen(msg, size);
	const char *why = n < size ? line_problem(msg, n) : "no NUL within the buffer";

	if (why) {
		fprintf(stderr, "%s: %s: %.*s\n", what, why, (int)n, msg);
		abort();
	}
}

static void check_err(const char *what, const struct weir_error *err)
{
	check_line(what, err->msg, sizeof(err->msg));
	/* where the message names its key, the key is there */
	if (err->key_len && err->key_at + err->key_len > strlen(err->msg)) {
		fprintf(stderr, "%s: key at %zu+%zu past the message\n", what, err->key_at,
			err->key_len);
		abort();
	}
}

static void quote_all(const char *s, size_t len)
{
	static const size_t sizes[] = {8, 9, 17, 64, WEIR_QUOTE_SIZE};
	static const size_t cuts[] = {0, 1, 5, 60};
	char buf[WEIR_QUOTE_SIZE];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (size_t j = 0; j < sizeof(cuts) / sizeof(cuts[0]); j++) {
			for (int st = WEIR_QUOTE_ALWAYS; st <= WEIR_QUOTE_NONE; st++) {
				weir_quote(buf, sizes[i], s, len, cuts[j],
					   (enum weir_quote_style)st);
				check_line("weir_quote", buf, sizes[i]);
				if (st == WEIR_QUOTE_ALWAYS &&
				    (buf[0] != '"' || buf[strlen(buf) - 1] != '"'))
					abort();
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct weir_config cfg = {.limits = {.max_value_bytes = 4096, .max_rules = 256}};
	struct weir_error err = {0};
	struct weir_kv kv, *res = NULL;
	size_t klen, vlen, nres = 0;
	char *key, *value;

	if (!size)
		return 0;
	klen = data[0] % 64;
	if (klen > size - 1)
		klen = size - 1;
	vlen = size - 1 - klen;
	key = malloc(klen + 1);
	value = malloc(vlen + 1);
	if (!key || !value)
		abort();
	memcpy(key, data + 1, klen);
	key[klen] = '\0';
	memcpy(value, data + 1 + klen, vlen);
	value[vlen] = '\0';

	quote_all(key, klen);
	quote_all(value, vlen);

	if (weir_annotation_check_raw(key, klen, value, vlen, &err))
		check_err("weir_annotation_check_raw", &err);
	if (weir_json_check_keys(value, vlen, key, &err))
		check_err("weir_json_check_keys", &err);

	/* as C strings, the way the parser sees them once the raw check passed */
	kv.key = key;
	kv.value = value;
	if (weir_annotations_resolve(NULL, 0, &kv, 1, "app", &res, &nres, &err)) {
		check_err("weir_annotations_resolve", &err);
	} else if (weir_spec_check(&cfg, res, nres, &err)) {
		check_err("weir_spec_check", &err);
	}
	free(res);

	/* the setters, with the user's text where a caller might wrongly put it */
	weir_error_key(&err, -EINVAL, key, "value %s", value);
	check_err("weir_error_key", &err);
	weir_error_prefix(&err, "weir: container %s in pod %s", value, key);
	check_err("weir_error_prefix", &err);
	weir_error_rename_key(&err, value);
	check_err("weir_error_rename_key", &err);
	weir_error_set(&err, -EINVAL, "%s: %s", key, value);
	check_err("weir_error_set", &err);

	free(key);
	free(value);
	return 0;
}
