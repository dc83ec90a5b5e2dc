// SPDX-License-Identifier: Apache-2.0
/*
 * `weir policy trace` arguments and the normalised policy `weir policy check` prints. The
 * kernel side of the trace is checked against real packets in tests/e2e/trace.t.
 */
#include <arpa/inet.h>
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
#include "trace.h"

static void parse_ok(enum weir_dir dir, const char *peer, const char *proto, uint8_t family,
		     const char *addr, int pclass, int port)
{
	struct weir_trace_query q;
	struct weir_error err = {};
	uint8_t want[16] = {};

	if (weir_trace_parse(&q, dir, peer, proto, &err))
		fail_msg("%s %s: %s", peer, proto ?: "", err.msg);
	inet_pton(family == WEIR_V4 ? AF_INET : AF_INET6, addr, want);
	assert_int_equal(q.dir, dir);
	assert_int_equal(q.family, family);
	assert_memory_equal(q.addr, want, 16);
	assert_int_equal(q.pclass, pclass);
	assert_int_equal(q.have_port, port > 0);
	assert_int_equal(q.port, port > 0 ? port : 0);
}

static void parse_bad(const char *peer, const char *proto, const char *msg)
{
	struct weir_trace_query q;
	struct weir_error err = {};

	assert_int_equal(weir_trace_parse(&q, WEIR_EGRESS, peer, proto, &err), -EINVAL);
	assert_string_equal(err.msg, msg);
}

static void test_parse(void **state)
{
	parse_ok(WEIR_EGRESS, "10.1.2.3", NULL, WEIR_V4, "10.1.2.3", -1, 0);
	parse_ok(WEIR_INGRESS, "fd00::1", "tcp/443", WEIR_V6, "fd00::1", WEIR_PC_TCP, 443);
	parse_ok(WEIR_EGRESS, "::ffff:192.0.2.7", "udp/53", WEIR_V4, "192.0.2.7", WEIR_PC_UDP, 53);
	parse_ok(WEIR_EGRESS, "192.0.2.7", "udp", WEIR_V4, "192.0.2.7", WEIR_PC_UDP, 0);
	parse_ok(WEIR_EGRESS, "192.0.2.7", "icmp", WEIR_V4, "192.0.2.7", WEIR_PC_ICMP, 0);
	parse_ok(WEIR_EGRESS, "192.0.2.7", "tcp/65535", WEIR_V4, "192.0.2.7", WEIR_PC_TCP, 65535);

	parse_bad("10.0.0.0/8", NULL,
		  "peer \"10.0.0.0/8\": expected one IPv4 or IPv6 address (no prefix length)");
	parse_bad("any", NULL,
		  "peer \"any\": expected one IPv4 or IPv6 address (no prefix length)");
	parse_bad("10.0.0.1", "sctp",
		  "protocol \"sctp\": expected tcp, udp, icmp, tcp/PORT or udp/PORT");
	parse_bad("10.0.0.1", "tcpx/1",
		  "protocol \"tcpx/1\": expected tcp, udp, icmp, tcp/PORT or udp/PORT");
	parse_bad("10.0.0.1", "icmp/8",
		  "protocol \"icmp/8\": expected tcp, udp, icmp, tcp/PORT or udp/PORT");
	parse_bad("10.0.0.1", "tcp/0", "protocol \"tcp/0\": bad port \"0\": expected 1-65535");
	parse_bad("10.0.0.1", "tcp/65536",
		  "protocol \"tcp/65536\": bad port \"65536\": expected 1-65535");
	parse_bad("10.0.0.1", "tcp/", "protocol \"tcp/\": bad port \"\": expected 1-65535");
	parse_bad("10.0.0.1", "udp/+5", "protocol \"udp/+5\": bad port \"+5\": expected 1-65535");
}

static void test_policy_json(void **state)
{
	struct weir_config cfg;
	struct weir_kv kv[] = {
		{"egress.weir.io", "allow 10.0.0.0/8 tcp/443,tcp/8000-8010; allow any udp/53; "
				   "deny 10.1.0.0/16 tcp/8005;deny 10.9.0.1"},
		{"policy-mode.weir.io", "audit"},
	};
	struct weir_error err = {};
	struct weir_compiled comp;
	struct weir_spec spec;
	struct json_object *o;
	const char *got;

	weir_config_defaults(&cfg);
	assert_int_equal(weir_spec_parse(&cfg, kv, 2, &spec, &err), 0);
	assert_int_equal(weir_policy_compile(&spec.policy, &comp, &err), 0);
	o = weir_policy_json(&spec, &comp);
	got = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							JSON_C_TO_STRING_NOSLASHESCAPE);
	/* every peer a CIDR, "any" as both families, each prefix's allowed set after merging */
	assert_string_equal(
		got,
		"{\"mode\":\"audit\",\"monitor\":\"counters\",\"egress\":{\"default\":\"deny\","
		"\"rules\":["
		"{\"rule\":1,\"action\":\"allow\",\"peer\":\"10.0.0.0/8\",\"protocols\":"
		"[\"tcp/443\",\"tcp/8000-8010\"]},"
		"{\"rule\":2,\"action\":\"allow\",\"peer\":\"0.0.0.0/0\",\"protocols\":[\"udp/"
		"53\"]},"
		"{\"rule\":2,\"action\":\"allow\",\"peer\":\"::/0\",\"protocols\":[\"udp/53\"]},"
		"{\"rule\":3,\"action\":\"deny\",\"peer\":\"10.1.0.0/16\",\"protocols\":"
		"[\"tcp/8005\"]},"
		"{\"rule\":4,\"action\":\"deny\",\"peer\":\"10.9.0.1/32\",\"protocols\":\"all\"}],"
		"\"effective\":["
		"{\"peer\":\"0.0.0.0/0\",\"allows\":{\"tcp\":[],\"udp\":[\"53\"],\"icmp\":false,"
		"\"other\":false}},"
		"{\"peer\":\"10.0.0.0/"
		"8\",\"allows\":{\"tcp\":[\"443\",\"8000-8010\"],\"udp\":[\"53\"],"
		"\"icmp\":false,\"other\":false}},"
		"{\"peer\":\"10.1.0.0/"
		"16\",\"allows\":{\"tcp\":[\"443\",\"8000-8004\",\"8006-8010\"],"
		"\"udp\":[\"53\"],\"icmp\":false,\"other\":false}},"
		"{\"peer\":\"10.9.0.1/32\",\"allows\":{\"tcp\":[],\"udp\":[],\"icmp\":false,"
		"\"other\":false}},"
		"{\"peer\":\"::/0\",\"allows\":{\"tcp\":[],\"udp\":[\"53\"],\"icmp\":false,"
		"\"other\":false}}]},"
		"\"ingress\":{\"default\":\"allow\",\"rules\":[],\"effective\":[]}}");
	json_object_put(o);
	weir_compiled_free(&comp);
	weir_spec_free(&spec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_policy_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
