// SPDX-License-Identifier: Apache-2.0
/*
 * Policy parser and compiler. The compiler is checked against the brute-force reference
 * evaluator on thousands of random policies, with random packets and with every policy's edge
 * packets (tests/lib/policy_oracle.c, which the fuzzers share), through weir_val_allows(), the
 * very function the datapath runs on the value the LPM lookup returns.
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
#include "policy.h"
#include "policy_oracle.h"

static struct weir_config cfg;

/* Parse annotations the way weir-hook does; returns the error message or NULL. */
static const char *check(const char *key, const char *value)
{
	static struct weir_error err;
	struct weir_kv kv = {key, value};
	struct weir_spec spec;
	struct weir_compiled comp;
	int r;

	memset(&err, 0, sizeof(err));
	r = weir_spec_parse(&cfg, &kv, 1, &spec, &err);
	if (r)
		return err.msg;
	r = weir_policy_compile(&spec.policy, &comp, &err);
	weir_spec_free(&spec);
	if (r)
		return err.msg;
	weir_compiled_free(&comp);
	return NULL;
}

static void expect_error(const char *key, const char *value, const char *expected)
{
	const char *msg = check(key, value);

	if (!msg)
		fail_msg("\"%s\" = \"%.60s\" was accepted", key, value);
	if (!strstr(msg, expected))
		fail_msg("message \"%s\" lacks \"%s\"", msg, expected);
}

static void test_valid(void **state)
{
	assert_null(check(
		"egress.weir.io",
		"allow 10.0.0.0/8 tcp/443,tcp/8000-8100; allow any udp/53; deny 10.9.0.0/16"));
	assert_null(check("ingress.weir.io", "allow fd00::/64 tcp/22, icmp ;\n allow 192.0.2.1;"));
	assert_null(check("egress.weir.io", "deny any"));
	assert_null(check("policy-mode.weir.io", "audit"));
	assert_null(check("policy-mode.weir.io", "enforce"));
	assert_null(check("monitor.weir.io", "flows"));
	assert_null(check("monitor.weir.io", "off"));
	assert_null(check("monitor.weir.io", "counters"));
	assert_null(check("io.kubernetes.pod.name", "not weir's"));
}

/* conntrack.weir.io: a number of entries within the node's bounds, nothing else. */
static void test_conntrack_entries(void **state)
{
	static const char *const bad[] = {"63",	  "65537", "",	  " 100",  "100 ",
					  "+100", "-1",	   "1e3", "0x100", "99999999999999999999"};
	struct weir_kv kv = {"conntrack.weir.io", "64"};
	struct weir_error err = {};
	struct weir_config c = cfg;
	struct weir_spec spec;

	(void)state;
	assert_int_equal(weir_spec_parse(&cfg, NULL, 0, &spec, &err), 0);
	assert_int_equal(spec.ct_entries, WEIR_CT_DEFAULT_ENTRIES);
	weir_spec_free(&spec);
	assert_int_equal(weir_spec_parse(&cfg, &kv, 1, &spec, &err), 0);
	assert_int_equal(spec.ct_entries, 64);
	weir_spec_free(&spec);
	kv.value = "65536";
	assert_int_equal(weir_spec_parse(&cfg, &kv, 1, &spec, &err), 0);
	assert_int_equal(spec.ct_entries, 65536);
	weir_spec_free(&spec);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[160];

		snprintf(want, sizeof(want),
			 "conntrack.weir.io: \"%s\": expected a number of entries from 64 to 65536",
			 bad[i]);
		expect_error("conntrack.weir.io", bad[i], want);
	}
	/* the node's bound, and its default */
	c.ct_max_entries = 1000;
	c.ct_entries = 500;
	kv.value = "1001";
	assert_int_not_equal(weir_spec_parse(&c, &kv, 1, &spec, &err), 0);
	assert_non_null(strstr(err.msg, "from 64 to 1000"));
	assert_int_equal(weir_spec_parse(&c, NULL, 0, &spec, &err), 0);
	assert_int_equal(spec.ct_entries, 500);
	weir_spec_free(&spec);
}

static void test_errors(void **state)
{
	char *big, *many;

	expect_error("egress.weir.io", "allow 10.0.0.300/8 tcp/443",
		     "egress.weir.io: rule 1 (\"allow 10.0.0.300/8 tcp/443\"): bad peer "
		     "\"10.0.0.300/8\": expected \"any\"");
	expect_error("egress.weir.io", "allow 10.0.0.0/33",
		     "bad prefix length in \"10.0.0.0/33\": "
		     "expected 0-32");
	expect_error("egress.weir.io", "allow 10.0.0.1/8",
		     "\"10.0.0.1/8\" has host bits set: expected a network address such as "
		     "10.0.0.0/8");
	expect_error("egress.weir.io", "allow any tcp/70000",
		     "bad port in \"tcp/70000\": expected tcp, udp, icmp");
	expect_error("egress.weir.io", "allow any tcp/0", "bad port in \"tcp/0\"");
	expect_error("egress.weir.io", "allow any tcp/90-80", "empty port range \"tcp/90-80\"");
	expect_error("egress.weir.io", "allow any sctp/5", "unknown protocol in \"sctp/5\"");
	expect_error("egress.weir.io", "allow any icmp/8", "icmp takes no port");
	expect_error("egress.weir.io", "allow any tcp/80 udp/53",
		     "unexpected \"tcp/80 udp/53\": expected one peer followed by port items");
	expect_error("egress.weir.io", "allow any tcp/80,,udp/53", "empty port item");
	expect_error("egress.weir.io", "permit any",
		     "unknown action \"permit\": expected "
		     "\"allow\" or \"deny\"");
	expect_error("egress.weir.io", "allow", "missing peer");
	expect_error("egress.weir.io", "allow any;; deny any", "rule 2 is empty");
	expect_error("egress.weir.io", "", "empty value");
	expect_error("egress.weir.io", "  ", "empty value");
	expect_error("egress.weir.io", "allow any \xff\xfe", "invalid UTF-8 at byte 10");
	expect_error("egress.weir.io", "allow \xc0\xaf", "invalid UTF-8"); /* overlong */
	expect_error("egress.weir.io", "allow any\x01", "control character 0x01 at byte 9");
	expect_error("frobnicate.weir.io", "x",
		     "frobnicate.weir.io: unknown annotation: expected egress.weir.io, "
		     "ingress.weir.io, policy-mode.weir.io, monitor.weir.io, security.weir.io, "
		     "bandwidth-burst.weir.io, priority.weir.io, tcp-congestion.weir.io or "
		     "conntrack.weir.io");
	expect_error("monitor.weir.io", "everything",
		     "monitor.weir.io: unknown value \"everything\": expected \"counters\", "
		     "\"flows\" or \"off\"");
	expect_error("policy-mode.weir.io", "strict",
		     "policy-mode.weir.io: unknown mode \"strict\": expected \"enforce\" or "
		     "\"audit\"");

	big = malloc(100 * 1024 + 1);
	assert_non_null(big);
	memset(big, 'a', 100 * 1024);
	big[100 * 1024] = '\0';
	expect_error("egress.weir.io", big, "egress.weir.io: value is 102400 bytes, at most 65536");
	free(big);

	/* more than 32 disjoint port ranges towards one peer */
	many = calloc(1, 8192);
	assert_non_null(many);
	strcpy(many, "allow 10.0.0.0/8 ");
	for (int i = 0; i < 40; i++)
		sprintf(many + strlen(many), "%stcp/%d", i ? "," : "", 1000 + 2 * i);
	expect_error("egress.weir.io", many, "needs more than 32 distinct port ranges");
	free(many);
}

static void test_resolve(void **state)
{
	struct weir_kv pod[] = {
		{"egress.weir.io", "deny any"},
		{"egress.weir.io/pod", "allow 10.0.0.0/8"},
		{"ingress.weir.io/container.web", "allow any tcp/80"},
		{"ingress.weir.io/container.db", "allow any tcp/5432"},
		{"app", "x"},
	};
	struct weir_kv ctr[] = {{"egress.weir.io", "allow 192.0.2.0/24"}};
	struct weir_kv bad[] = {{"egress.weir.io/node", "deny any"}};
	struct weir_kv *out = NULL;
	struct weir_error err = {};
	size_t n = 0;
	const char *eg = NULL, *in = NULL;

	assert_int_equal(weir_annotations_resolve(pod, 5, NULL, 0, "web", &out, &n, &err), 0);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(out[i].key, "egress.weir.io"))
			eg = out[i].value;
		if (!strcmp(out[i].key, "ingress.weir.io"))
			in = out[i].value;
	}
	assert_int_equal(n, 2);
	assert_string_equal(eg, "allow 10.0.0.0/8"); /* /pod beats plain */
	assert_string_equal(in, "allow any tcp/80"); /* only web's own */
	free(out);

	/* the container's own plain key beats the pod's plain key, not its /pod key */
	assert_int_equal(weir_annotations_resolve(pod, 1, ctr, 1, "web", &out, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].value, "allow 192.0.2.0/24");
	free(out);

	assert_int_not_equal(weir_annotations_resolve(NULL, 0, bad, 1, "web", &out, &n, &err), 0);
	assert_non_null(strstr(err.msg, "unknown suffix \"/node\""));
	assert_true(weir_annotations_present(pod, 5));
	assert_false(weir_annotations_present(&pod[4], 1));
}

static struct weir_policy parse_one(enum weir_dir dir, const char *value)
{
	struct weir_policy pol = {};
	struct weir_error err = {};

	if (weir_policy_parse_dir(&pol, dir, "test", value, &cfg.limits, &err))
		fail_msg("parse \"%s\": %s", value, err.msg);
	return pol;
}

static int verdict(const struct weir_policy *pol, const char *ip, uint32_t pc, uint16_t port)
{
	struct weir_compiled comp;
	struct weir_error err = {};
	uint8_t addr[16] = {};
	uint8_t fam = strchr(ip, ':') ? WEIR_V6 : WEIR_V4;
	char why[256];
	int a;

	inet_pton(fam == WEIR_V4 ? AF_INET : AF_INET6, ip, addr);
	assert_int_equal(weir_policy_compile(pol, &comp, &err), 0);
	if (weir_oracle_packet(pol, &comp, WEIR_EGRESS, fam, addr, pc, port, true, why,
			       sizeof(why)))
		fail_msg("%s", why);
	a = weir_compiled_eval(&comp, pol, WEIR_EGRESS, fam, addr, pc, port, true);
	weir_compiled_free(&comp);
	return a;
}

static void test_semantics(void **state)
{
	struct weir_policy p = parse_one(
		WEIR_EGRESS,
		"allow 10.0.0.0/8 tcp/443,tcp/8000-8100; allow any udp/53; deny 10.9.0.0/16");

	assert_true(verdict(&p, "10.1.2.3", WEIR_PC_TCP, 443));
	assert_true(verdict(&p, "10.1.2.3", WEIR_PC_TCP, 8050));
	assert_false(verdict(&p, "10.1.2.3", WEIR_PC_TCP, 8101));
	assert_false(verdict(&p, "10.9.2.3", WEIR_PC_TCP, 443)); /* deny overrides allow */
	assert_false(verdict(&p, "10.9.2.3", WEIR_PC_UDP, 53));	 /* ... and the any rule */
	assert_true(verdict(&p, "192.0.2.1", WEIR_PC_UDP, 53));
	assert_true(verdict(&p, "fd00::1", WEIR_PC_UDP, 53));	 /* any is both families */
	assert_false(verdict(&p, "192.0.2.1", WEIR_PC_ICMP, 0)); /* default deny */
	weir_policy_free(&p);

	p = parse_one(WEIR_EGRESS, "allow any; deny 10.0.0.0/8 tcp/22; allow 10.1.0.0/16 tcp/22");
	assert_false(verdict(&p, "10.1.0.1", WEIR_PC_TCP, 22)); /* deny wins at any depth */
	assert_true(verdict(&p, "10.1.0.1", WEIR_PC_TCP, 23));
	assert_true(verdict(&p, "10.1.0.1", WEIR_PC_ICMP, 0));
	assert_true(verdict(&p, "11.0.0.1", WEIR_PC_TCP, 22));
	weir_policy_free(&p);

	p = parse_one(WEIR_EGRESS, "allow 10.0.0.0/8 icmp");
	assert_true(verdict(&p, "10.0.0.1", WEIR_PC_ICMP, 0));
	assert_false(verdict(&p, "10.0.0.1", WEIR_PC_OTHER, 0));
	assert_false(verdict(&p, "10.0.0.1", WEIR_PC_TCP, 80));
	weir_policy_free(&p);
}

/* ---- random policies against the reference ------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

/* Addresses from a small space, so prefixes overlap and nest often. */
static void rand_addr(uint8_t fam, uint8_t *a)
{
	memset(a, 0, 16);
	if (fam == WEIR_V4) {
		a[0] = 10;
		a[1] = (uint8_t)rnd(3);
		a[2] = (uint8_t)rnd(3);
		a[3] = (uint8_t)(rnd(4) * 64 + rnd(3));
	} else {
		a[0] = 0xfd;
		a[1] = (uint8_t)rnd(2);
		a[7] = (uint8_t)rnd(3);
		a[15] = (uint8_t)rnd(4);
	}
}

static const uint16_t port_pool[] = {22, 53, 80, 443, 1000, 1001, 8000, 8080, 8100, 65535};

static void rand_rule(char *out, size_t size)
{
	uint8_t fam = rnd(3) ? WEIR_V4 : WEIR_V6, a[16];
	int maxlen = fam == WEIR_V4 ? 32 : 128;
	static const int v4lens[] = {0, 8, 16, 24, 26, 30, 32};
	static const int v6lens[] = {0, 8, 16, 64, 120, 126, 128};
	int plen = fam == WEIR_V4 ? v4lens[rnd(7)] : v6lens[rnd(7)];
	char net[INET6_ADDRSTRLEN];
	size_t n;

	rand_addr(fam, a);
	for (int b = plen; b < maxlen; b++)
		a[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
	inet_ntop(fam == WEIR_V4 ? AF_INET : AF_INET6, a, net, sizeof(net));
	n = (size_t)snprintf(out, size, "%s %s/%d", rnd(10) < 3 ? "deny" : "allow",
			     rnd(12) ? net : "any", plen);
	if (strstr(out, "any/"))
		n = (size_t)snprintf(out, size, "%s any", rnd(10) < 3 ? "deny" : "allow");
	if (rnd(4) == 0)
		return; /* all protocols */
	for (uint32_t i = 0, items = 1 + rnd(3); i < items; i++) {
		const char *sep = i ? "," : " ";
		uint32_t kind = rnd(7);
		uint16_t lo = port_pool[rnd(10)], hi = port_pool[rnd(10)];

		if (hi < lo) {
			uint16_t t = lo;

			lo = hi;
			hi = t;
		}
		if (kind == 0)
			n += (size_t)snprintf(out + n, size - n, "%sicmp", sep);
		else if (kind == 1)
			n += (size_t)snprintf(out + n, size - n, "%s%s", sep,
					      rnd(2) ? "tcp" : "udp");
		else if (kind < 4)
			n += (size_t)snprintf(out + n, size - n, "%s%s/%u-%u", sep,
					      rnd(2) ? "tcp" : "udp", lo, hi);
		else
			n += (size_t)snprintf(out + n, size - n, "%s%s/%u", sep,
					      rnd(2) ? "tcp" : "udp", lo);
	}
}

static void test_random_against_reference(void **state)
{
	unsigned int policies = 4000, packets = 300, checked = 0, skipped = 0;

	for (unsigned int t = 0; t < policies; t++) {
		char text[4096] = "";
		struct weir_policy pol = {};
		struct weir_compiled comp;
		struct weir_error err = {};
		uint32_t nrules = 1 + rnd(12);
		char edge_why[256];
		long edges;

		for (uint32_t i = 0; i < nrules; i++) {
			char rule[256];

			rand_rule(rule, sizeof(rule));
			strcat(text, i ? "; " : "");
			strcat(text, rule);
		}
		if (weir_policy_parse_dir(&pol, WEIR_EGRESS, "egress.weir.io", text, &cfg.limits,
					  &err))
			fail_msg("random policy rejected: %s\n%s", err.msg, text);
		if (weir_policy_compile(&pol, &comp, &err)) {
			/* only the documented range limit may refuse a valid policy */
			assert_non_null(strstr(err.msg, "distinct port ranges"));
			skipped++;
			weir_policy_free(&pol);
			continue;
		}
		for (unsigned int k = 0; k < packets; k++) {
			uint8_t fam = rnd(3) ? WEIR_V4 : WEIR_V6, addr[16];
			uint32_t pc = rnd(WEIR_PCLASSES);
			uint16_t port = rnd(3) ? port_pool[rnd(10)] : (uint16_t)rnd(65536);
			bool have_port = rnd(20) != 0;
			char why[256];

			rand_addr(fam, addr);
			if (weir_oracle_packet(&pol, &comp, WEIR_EGRESS, fam, addr, pc, port,
					       have_port, why, sizeof(why)))
				fail_msg("policy \"%s\": %s", text, why);
			checked++;
		}
		/* and at the edges of its own prefixes and port ranges */
		edges = weir_oracle_edges(&pol, &comp, 64, 64, edge_why, sizeof(edge_why));
		if (edges < 0)
			fail_msg("policy \"%s\": %s", text, edge_why);
		checked += (unsigned int)edges;
		weir_compiled_free(&comp);
		weir_policy_free(&pol);
	}
	/* the limit must stay an exception, or this test would prove little */
	assert_true(skipped < policies / 50);
	print_message("%u packets checked over %u policies (%u over the range limit)\n", checked,
		      policies - skipped, skipped);
}

static void test_large_policy(void **state)
{
	char *text = malloc(32 * 10000 + 64);
	struct weir_policy pol = {};
	struct weir_compiled comp;
	struct weir_error err = {};
	struct weir_policy_limits lim = {.max_value_bytes = 1 << 20, .max_rules = 20000};
	size_t n = 0;

	assert_non_null(text);
	for (int i = 0; i < 10000; i++)
		n += (size_t)sprintf(text + n, "allow 10.%d.%d.0/24;", i / 256, i % 256);
	assert_int_equal(
		weir_policy_parse_dir(&pol, WEIR_EGRESS, "egress.weir.io", text, &lim, &err), 0);
	assert_int_equal(weir_policy_compile(&pol, &comp, &err), 0);
	assert_int_equal(comp.n, 10000);
	weir_compiled_free(&comp);
	weir_policy_free(&pol);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_conntrack_entries),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_semantics),
		cmocka_unit_test(test_random_against_reference),
		cmocka_unit_test(test_large_policy),
	};

	weir_config_defaults(&cfg);
	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
