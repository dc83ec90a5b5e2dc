// SPDX-License-Identifier: Apache-2.0
/*
 * Messages a user reads: one line of valid UTF-8 whatever the annotation held, user text
 * quoted by one formatter (weir_quote), the annotation key carried as data (struct
 * weir_error's key), and NUL bytes that a C string would cut refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "annot.h"
#include "config.h"
#include "error.h"
#include "line_check.h"
#include "policy.h"

static struct weir_config cfg;

static void assert_one_line(const char *msg)
{
	const char *why = line_problem(msg, strlen(msg));

	if (why)
		fail_msg("message holds %s: %s", why, msg);
}

/* Parse one annotation as weir-hook and weir-nri do; the message, or NULL when accepted. */
static const char *check(const char *key, const char *value, struct weir_error *err)
{
	struct weir_kv kv = {key, value};

	memset(err, 0, sizeof(*err));
	return weir_spec_check(&cfg, &kv, 1, err) ? err->msg : NULL;
}

static const char *q(const char *s, size_t len, size_t max, enum weir_quote_style st)
{
	static char buf[WEIR_QUOTE_SIZE];

	return weir_quote(buf, sizeof(buf), s, len, max, st);
}

static void test_quote(void **state)
{
	assert_string_equal(q("abc", SIZE_MAX, 0, WEIR_QUOTE_ALWAYS), "\"abc\"");
	assert_string_equal(q("a\nb\tc\rd", SIZE_MAX, 0, WEIR_QUOTE_ALWAYS), "\"a\\nb\\tc\\rd\"");
	assert_string_equal(q("say \"hi\" \\o/", SIZE_MAX, 0, WEIR_QUOTE_ALWAYS),
			    "\"say \\\"hi\\\" \\\\o/\"");
	assert_string_equal(q("\x01\x1b[31m\x7f", SIZE_MAX, 0, WEIR_QUOTE_ALWAYS),
			    "\"\\x01\\x1b[31m\\x7f\"");
	/* bytes that are not UTF-8: a lone continuation, a lead without its tail, overlong */
	assert_string_equal(q("a\x80z\xc3", SIZE_MAX, 0, WEIR_QUOTE_ALWAYS), "\"a\\x80z\\xc3\"");
	assert_string_equal(q("\xc0\xaf", SIZE_MAX, 0, WEIR_QUOTE_ALWAYS), "\"\\xc0\\xaf\"");
	/* valid UTF-8 stays; C1 controls, line separators and bidi overrides are escaped */
	assert_string_equal(q("caf\xc3\xa9 \xe2\x82\xac", SIZE_MAX, 0, WEIR_QUOTE_ALWAYS),
			    "\"caf\xc3\xa9 \xe2\x82\xac\"");
	assert_string_equal(q("a\xc2\x85"
			      "b\xe2\x80\xa8"
			      "c\xe2\x80\xae",
			      SIZE_MAX, 0, WEIR_QUOTE_ALWAYS),
			    "\"a\\u0085b\\u2028c\\u202e\"");
	/* an explicit length shows NUL bytes */
	assert_string_equal(q("a\0b", 3, 0, WEIR_QUOTE_ALWAYS), "\"a\\x00b\"");
	assert_string_equal(q(NULL, SIZE_MAX, 0, WEIR_QUOTE_ALWAYS), "\"\"");

	/* names stay bare when they can */
	assert_string_equal(q("egress.weir.io/container.app-1_x", SIZE_MAX, 0, WEIR_QUOTE_NAME),
			    "egress.weir.io/container.app-1_x");
	assert_string_equal(q("", SIZE_MAX, 0, WEIR_QUOTE_NAME), "\"\"");
	assert_string_equal(q("two words", SIZE_MAX, 0, WEIR_QUOTE_NAME), "\"two words\"");
	assert_string_equal(q("bad\n.weir.io", SIZE_MAX, 0, WEIR_QUOTE_NAME), "\"bad\\n.weir.io\"");

	/* whole messages: only what breaks the line or UTF-8 */
	assert_string_equal(q("k: \"v\\\" \n \xff", SIZE_MAX, 0, WEIR_QUOTE_NONE),
			    "k: \"v\\\" \\n \\xff");
}

static void test_quote_cut(void **state)
{
	char buf[WEIR_QUOTE_SIZE], in[600];

	/* "é" is 2 bytes: a cut at 7 bytes keeps 3 of them, never half of one */
	assert_string_equal(
		q("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", SIZE_MAX, 7, WEIR_QUOTE_ALWAYS),
		"\"\xc3\xa9\xc3\xa9\xc3\xa9...\"");
	assert_string_equal(q("abcdefgh", SIZE_MAX, 8, WEIR_QUOTE_ALWAYS), "\"abcdefgh\"");
	assert_string_equal(q("abcdefghi", SIZE_MAX, 8, WEIR_QUOTE_ALWAYS), "\"abcdefgh...\"");
	/* a name cut is quoted */
	assert_string_equal(q("abcdefghi", SIZE_MAX, 8, WEIR_QUOTE_NAME), "\"abcdefgh...\"");

	/* the buffer bounds the output, escapes and all, on a character boundary */
	for (size_t i = 0; i < sizeof(in) - 1; i++)
		in[i] = "\xe2\x82\xac\n\x01"[i % 5];
	in[sizeof(in) - 1] = '\0';
	for (size_t size = 8; size <= sizeof(buf); size++) {
		weir_quote(buf, size, in, SIZE_MAX, 0, WEIR_QUOTE_ALWAYS);
		assert_true(strlen(buf) < size);
		assert_one_line(buf);
		assert_string_equal(buf + strlen(buf) - 4, "...\"");
	}
	weir_quote(buf, 4, in, SIZE_MAX, 0, WEIR_QUOTE_ALWAYS);
	assert_string_equal(buf, "");
}

static void test_key_as_data(void **state)
{
	struct weir_error err = {0};

	assert_non_null(check("egress.weir.io", "allow 10.0.0.300/8 tcp/443", &err));
	assert_string_equal(err.key, "egress.weir.io");
	assert_int_equal(err.key_at, 0);
	assert_int_equal(err.key_len, strlen("egress.weir.io"));
	assert_int_equal(err.code, -EINVAL);

	/* a resolved key is renamed to the one the user wrote, whatever the prefixes */
	weir_error_prefix(&err, "weir: container %s in pod %s/%s", "app", "ns", "p");
	weir_error_rename_key(&err, "egress.weir.io/container.app");
	assert_string_equal(err.msg,
			    "weir: container app in pod ns/p: egress.weir.io/container.app: rule 1 "
			    "(\"allow 10.0.0.300/8 tcp/443\"): bad peer \"10.0.0.300/8\": expected "
			    "\"any\", an IPv4 or IPv6 address, or a CIDR such as 10.0.0.0/8");
	assert_string_equal(err.key, "egress.weir.io/container.app");
	/* renamed again, shorter: the message stays whole */
	weir_error_rename_key(&err, "egress.weir.io");
	assert_string_equal(err.msg,
			    "weir: container app in pod ns/p: egress.weir.io: rule 1 (\"allow "
			    "10.0.0.300/8 tcp/443\"): bad peer \"10.0.0.300/8\": expected \"any\", "
			    "an IPv4 or IPv6 address, or a CIDR such as 10.0.0.0/8");
	/* a key that needs quoting is quoted where it is named */
	weir_error_rename_key(&err, "egress.weir.io/container.a b");
	assert_non_null(strstr(err.msg, "p: \"egress.weir.io/container.a b\": rule 1"));

	/* a key pushed out of the message by a long prefix is not renamed in it */
	{
		char big[1016];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		weir_error_key(&err, -EINVAL, "egress.weir.io", "x");
		weir_error_prefix(&err, "%s", big);
		assert_int_equal(err.key_len, 0);
		assert_string_equal(err.key, "egress.weir.io");
		weir_error_rename_key(&err, "egress.weir.io/pod");
		assert_int_equal(strlen(err.msg), WEIR_ERROR_MAX - 1);
		assert_string_equal(err.msg + sizeof(big) - 1, ": egress");
	}

	/* errors that are not about an annotation carry no key, and renaming does nothing */
	weir_error_set(&err, -ENOENT, "cannot open %s", "x");
	assert_string_equal(err.key, "");
	weir_error_rename_key(&err, "egress.weir.io");
	assert_string_equal(err.msg, "cannot open x");

	/* every annotation message carries its key */
	assert_non_null(check("monitor.weir.io", "all", &err));
	assert_string_equal(err.key, "monitor.weir.io");
	assert_non_null(check("policy-mode.weir.io", "strict", &err));
	assert_string_equal(err.key, "policy-mode.weir.io");
	assert_non_null(check("nope.weir.io", "x", &err));
	assert_string_equal(err.key, "nope.weir.io");
	assert_string_equal(
		err.msg, "nope.weir.io: unknown annotation: expected egress.weir.io, "
			 "ingress.weir.io, policy-mode.weir.io, monitor.weir.io, security.weir.io, "
			 "bandwidth-burst.weir.io, priority.weir.io, tcp-congestion.weir.io or "
			 "conntrack.weir.io");
}

static void test_one_line(void **state)
{
	struct weir_error err;
	char rule[256];
	const char *m;

	/* a newline inside a rule is escaped where the rule is quoted */
	m = check("egress.weir.io", "allow 10.0.0.1/8\ntcp/80", &err);
	assert_non_null(m);
	assert_one_line(m);
	assert_non_null(strstr(m, "(\"allow 10.0.0.1/8\\ntcp/80\")"));

	/* the rule quote is cut at 60 bytes on a character boundary: 6 + 27 * 2 bytes fit,
	 * the 28th "é" would be byte 61 */
	strcpy(rule, "allow ");
	for (int i = 0; i < 40; i++)
		strcat(rule, "\xc3\xa9");
	m = check("egress.weir.io", rule, &err);
	assert_non_null(m);
	assert_one_line(m);
	assert_non_null(strstr(m, "rule 1 (\"allow "));
	assert_non_null(strstr(m, "\xc3\xa9...\")"));

	/* keys are checked before they are echoed: control characters and bad bytes escaped */
	m = check("ev\x1bil\n\xff.weir.io", "x", &err);
	assert_non_null(m);
	assert_one_line(m);
	assert_string_equal(err.msg,
			    "\"ev\\x1bil\\n\\xff.weir.io\": unknown annotation: "
			    "expected egress.weir.io, ingress.weir.io, policy-mode.weir.io, "
			    "monitor.weir.io, security.weir.io, bandwidth-burst.weir.io, "
			    "priority.weir.io, tcp-congestion.weir.io or conntrack.weir.io");
	m = check("monitor.weir.io", "fl\xe2\x80\xa8ows", &err);
	assert_non_null(m);
	assert_string_equal(m, "monitor.weir.io: unknown value \"fl\\u2028ows\": expected "
			       "\"counters\", \"flows\" or \"off\"");
	/* a C1 control in a value is no text */
	m = check("egress.weir.io", "allow any\xc2\x85", &err);
	assert_non_null(m);
	assert_string_equal(m, "egress.weir.io: control character U+0085 at byte 9: expected "
			       "printable text");

	/* the setters cut long messages on a character boundary too */
	for (int n = 1000; n < 1030; n++) {
		char big[1100];

		memset(big, 'a', (size_t)n);
		big[n] = '\0';
		weir_error_set(&err, -EINVAL, "%s\xe2\x82\xac\xe2\x82\xac", big);
		assert_one_line(err.msg);
		weir_error_key(&err, -EINVAL, "egress.weir.io", "%s\xe2\x82\xac", big);
		assert_one_line(err.msg);
		weir_error_prefix(&err, "%s\xc3\xa9", big + 900);
		assert_one_line(err.msg);
		/* the key moved behind the prefix */
		assert_int_equal(err.key_at, (size_t)n - 900 + 2 + 2);
		assert_memory_equal(err.msg + err.key_at, "egress.weir.io: ", 16);
	}
}

static void test_nul(void **state)
{
	static const char v[] = "allow any\0; deny 10.9.0.0/16";
	struct weir_error err = {0};

	/* "allow any" as a C string: the deny would be lost */
	assert_int_equal(weir_annotation_check_raw("egress.weir.io", 14, v, sizeof(v) - 1, &err),
			 -EINVAL);
	assert_string_equal(err.msg, "egress.weir.io: control character 0x00 at byte 9: "
				     "expected printable text");
	assert_string_equal(err.key, "egress.weir.io");
	assert_int_equal(
		weir_annotation_check_raw("egress.weir.io/pod", 18, v, sizeof(v) - 1, &err),
		-EINVAL);
	/* other keys are not weir's concern */
	assert_int_equal(weir_annotation_check_raw("app", 3, v, sizeof(v) - 1, &err), 0);
	assert_int_equal(weir_annotation_check_raw("egress.weir.io", 14, "allow any", 9, &err), 0);
	/* a key cut by a NUL would read as another one */
	assert_int_equal(weir_annotation_check_raw("egress.weir.io\0x", 16, "deny any", 8, &err),
			 -EINVAL);
	assert_string_equal(err.msg, "annotation key \"egress.weir.io\\x00x\": control character "
				     "0x00 at byte 14: expected printable text");
	assert_int_equal(weir_annotation_check_raw("x\0egress.weir.io", 16, "deny any", 8, &err),
			 -EINVAL);
	assert_int_equal(weir_annotation_check_raw("app\0x", 5, "y", 1, &err), 0);
	/* other control characters in a value are refused by the parser itself */
	assert_non_null(check("egress.weir.io", "allow any\x01", &err));
}

static int json_keys(const char *text)
{
	struct weir_error err = {0};
	int r = weir_json_check_keys(text, strlen(text), "config.json", &err);

	if (r)
		assert_one_line(err.msg);
	return r;
}

static void test_json_keys(void **state)
{
	struct weir_error err = {0};
	static const char t[] =
		"{\"annotations\": {\"egress.weir.io\": \"deny any\", \"egress.weir.io\\u0000\" : "
		"\"allow any\"}}";

	assert_int_equal(weir_json_check_keys(t, strlen(t), "config.json", &err), -EINVAL);
	assert_string_equal(err.msg, "config.json: key \"egress.weir.io\" is followed by \\u0000 "
				     "(a NUL character): expected printable text");
	assert_int_equal(json_keys("{\"a\":{\"b\\u0000c\":1}}"), -EINVAL);
	/* NUL in values is for the annotation check; an escaped backslash is no NUL */
	assert_int_equal(json_keys("{\"a\": \"x\\u0000\", \"b\": [\"\\u0000\"]}"), 0);
	assert_int_equal(json_keys("{\"a\\\\u0000\": 1, \"c\\\"\\u0041\": 2}"), 0);
	assert_int_equal(json_keys("{\"a\\\\\\u0000\": 1}"), -EINVAL);
}

/* Random bytes in keys and values: whatever is refused is said in one line. */
static void test_random_messages(void **state)
{
	static const char *const keys[] = {"egress.weir.io", "ingress.weir.io", "monitor.weir.io",
					   "policy-mode.weir.io"};
	static const char alphabet[] = "allow deny any tcp udp icmp / - , ; : . 10 ff \n\t\"\\";
	struct weir_error err;
	char key[64], value[200];
	unsigned seed = 7;

	for (int i = 0; i < 20000; i++) {
		size_t n = (size_t)(rand_r(&seed) % (sizeof(value) - 1));
		const char *k = keys[rand_r(&seed) % 4];

		for (size_t j = 0; j < n; j++)
			value[j] = rand_r(&seed) % 3
					   ? alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)]
					   : (char)(rand_r(&seed) % 255 + 1);
		value[n] = '\0';
		if (i % 10 == 0) {
			snprintf(key, sizeof(key), "%c%c.weir.io", (char)(rand_r(&seed) % 255 + 1),
				 (char)(rand_r(&seed) % 255 + 1));
			k = key;
		}
		if (check(k, value, &err))
			assert_one_line(err.msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_quote_cut),
		cmocka_unit_test(test_key_as_data),
		cmocka_unit_test(test_one_line),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_json_keys),
		cmocka_unit_test(test_random_messages),
	};

	weir_config_defaults(&cfg);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
