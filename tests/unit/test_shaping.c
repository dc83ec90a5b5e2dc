// SPDX-License-Identifier: Apache-2.0
/*
 * Shaping annotations: Kubernetes quantities and their bounds, the burst, priority classes,
 * congestion controls against the node's list, NRI precedence, and what the datapath gets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "annot.h"
#include "config.h"
#include "shaping.h"

static struct weir_config cfg;
static char cc_list[] = "/tmp/weir-test-cc-XXXXXX";

static int setup(void **state)
{
	int fd = mkstemp(cc_list);

	(void)state;
	if (fd < 0 || write(fd, "reno cubic bbr\n", 15) != 15)
		return -1;
	close(fd);
	weir_config_defaults(&cfg);
	snprintf(cfg.tcp_cc_list, sizeof(cfg.tcp_cc_list), "%s", cc_list);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(cc_list);
	return 0;
}

static struct weir_error err;

/* Parse one annotation; the spec's shaping on success, NULL with err set on a refusal. */
static const struct weir_shaping *parse(const char *key, const char *value)
{
	static struct weir_shaping out;
	struct weir_kv kv = {key, value};
	struct weir_spec spec;

	memset(&err, 0, sizeof(err));
	if (weir_spec_check(&cfg, &kv, 1, &err))
		return NULL;
	assert_int_equal(weir_spec_parse(&cfg, &kv, 1, &spec, &err), 0);
	assert_true(spec.any);
	out = spec.shaping;
	weir_spec_free(&spec);
	return &out;
}

static uint64_t rate(const char *key, const char *value)
{
	const struct weir_shaping *sh = parse(key, value);

	if (!sh)
		fail_msg("%s=%s refused: %s", key, value, err.msg);
	return sh->rate_bps[!strcmp(key, WEIR_KEY_EGRESS_BW) ? WEIR_EGRESS : WEIR_INGRESS];
}

static void refused(const char *key, const char *value, const char *expected)
{
	if (parse(key, value))
		fail_msg("%s=\"%s\" was accepted", key, value);
	if (!strstr(err.msg, expected))
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, expected);
	/* one line, naming the key as written */
	assert_null(strchr(err.msg, '\n'));
	assert_true(!strncmp(err.msg, key, strlen(key)));
}

static void test_quantities(void **state)
{
	(void)state;
	assert_int_equal(rate(WEIR_KEY_EGRESS_BW, "10M"), 10000000);
	assert_int_equal(rate(WEIR_KEY_EGRESS_BW, "1G"), 1000000000);
	assert_int_equal(rate(WEIR_KEY_INGRESS_BW, "500k"), 500000);
	assert_int_equal(rate(WEIR_KEY_INGRESS_BW, "1Gi"), 1073741824);
	assert_int_equal(rate(WEIR_KEY_EGRESS_BW, "1.5M"), 1500000);
	assert_int_equal(rate(WEIR_KEY_EGRESS_BW, "100Mi"), 104857600);
	assert_int_equal(rate(WEIR_KEY_EGRESS_BW, "1e6"), 1000000);
	assert_int_equal(rate(WEIR_KEY_EGRESS_BW, "+2k"), 2000);
	assert_int_equal(rate(WEIR_KEY_EGRESS_BW, "1k"), 1000); /* Kubernetes' minimum */
	assert_int_equal(rate(WEIR_KEY_EGRESS_BW, "1P"), 1000000000000000ULL); /* its maximum */
	assert_int_equal(rate(WEIR_KEY_EGRESS_BW, "1000001m"), 1001);	       /* rounded up */
	assert_int_equal(rate(WEIR_KEY_EGRESS_BW, "1024"), 1024);
}

static void test_bad_quantities(void **state)
{
	static const char *const bad[] = {
		"10Q",	"-1M",	  "0",	  "0M",	  "999", "1.001P", "2P",    "1Ei",  "",
		"M",	"10 M",	  " 10M", "10M ", "1e",	 "1e+",	   "1..5M", "0x10", "10mb",
		"10MB", "1,000k", "NaN",  "inf",  "-0",	 "1e16",   "10m",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		refused(WEIR_KEY_EGRESS_BW, bad[i], "bad bandwidth");
		refused(WEIR_KEY_INGRESS_BW, bad[i],
			"expected a Kubernetes quantity of bits per second from 1k to 1P");
	}
	refused(WEIR_KEY_EGRESS_BW, "10Q",
		"kubernetes.io/egress-bandwidth: bad bandwidth \"10Q\": expected a Kubernetes "
		"quantity of bits per second from 1k to 1P, such as 500k, 10M, 1G or 1Gi");
	/* not UTF-8, control characters, too long: the usual text checks */
	refused(WEIR_KEY_EGRESS_BW, "10\xff", "invalid UTF-8");
	refused(WEIR_KEY_EGRESS_BW, "10\x01M", "control character");
	refused(WEIR_KEY_EGRESS_BW,
		"1000000000000000000000000000000000000000000000000000000000000000000000",
		"at most 64 allowed");
}

static void test_burst_priority_cc(void **state)
{
	const struct weir_shaping *sh;

	(void)state;
	sh = parse(WEIR_KEY_BURST, "256Ki");
	assert_non_null(sh);
	assert_int_equal(sh->burst, 262144);
	refused(WEIR_KEY_BURST, "100", "bad burst \"100\": expected a quantity of bytes from 1Ki");
	refused(WEIR_KEY_BURST, "2Gi", "bad burst");
	refused(WEIR_KEY_BURST, "lots", "bad burst");

	for (int c = WEIR_PRIO_CRITICAL; c < WEIR_PRIO_CLASSES; c++) {
		sh = parse(WEIR_KEY_PRIORITY, weir_prio_classes[c].name);
		assert_non_null(sh);
		assert_int_equal(sh->prio, c);
	}
	refused(WEIR_KEY_PRIORITY, "urgent",
		"priority.weir.io: unknown priority class \"urgent\": expected \"critical\", "
		"\"high\", \"normal\" or \"bulk\"");
	refused(WEIR_KEY_PRIORITY, "Critical", "unknown priority class");

	sh = parse(WEIR_KEY_TCP_CC, "bbr");
	assert_non_null(sh);
	assert_string_equal(sh->cc, "bbr");
	refused(WEIR_KEY_TCP_CC, "dctcp",
		"tcp-congestion.weir.io: unknown congestion control \"dctcp\": expected one this "
		"node has: reno cubic bbr");
	refused(WEIR_KEY_TCP_CC, "bb r", "bad congestion control");
	refused(WEIR_KEY_TCP_CC, "", "bad congestion control");
	refused(WEIR_KEY_TCP_CC, "averyveryverylongname", "bad congestion control");
	refused(WEIR_KEY_TCP_CC, "../x", "bad congestion control");
	refused("bandwidth.weir.io", "10M", "unknown annotation");
}

/* NRI: /container.<name> beats /pod beats the plain key, for Kubernetes' keys too. */
static void test_precedence(void **state)
{
	struct weir_kv pod[] = {
		{"kubernetes.io/egress-bandwidth", "1M"},
		{"kubernetes.io/egress-bandwidth/pod", "2M"},
		{"kubernetes.io/ingress-bandwidth", "3M"},
		{"tcp-congestion.weir.io/pod", "reno"},
	};
	struct weir_kv ctr[] = {
		{"kubernetes.io/egress-bandwidth/container.app", "5M"},
		{"kubernetes.io/egress-bandwidth/container.other", "7M"},
		{"tcp-congestion.weir.io/container.app", "bbr"},
	};
	struct weir_kv *res = NULL;
	struct weir_spec spec;
	size_t n;

	(void)state;
	assert_int_equal(weir_annotations_resolve(pod, 4, ctr, 3, "app", &res, &n, &err), 0);
	assert_int_equal(weir_spec_parse(&cfg, res, n, &spec, &err), 0);
	assert_int_equal(spec.shaping.rate_bps[WEIR_EGRESS], 5000000);
	assert_int_equal(spec.shaping.rate_bps[WEIR_INGRESS], 3000000);
	assert_string_equal(spec.shaping.cc, "bbr");
	weir_spec_free(&spec);
	free(res);
	assert_int_equal(weir_annotations_resolve(pod, 4, ctr, 0, "side", &res, &n, &err), 0);
	assert_int_equal(weir_spec_parse(&cfg, res, n, &spec, &err), 0);
	assert_int_equal(spec.shaping.rate_bps[WEIR_EGRESS], 2000000);
	assert_string_equal(spec.shaping.cc, "reno");
	weir_spec_free(&spec);
	free(res);
	/* a bad suffix is refused like for weir's keys */
	struct weir_kv bad = {"kubernetes.io/egress-bandwidth/node", "1M"};

	assert_int_not_equal(weir_annotations_resolve(&bad, 1, NULL, 0, "app", &res, &n, &err), 0);
	assert_non_null(strstr(err.msg, "unknown suffix \"/node\""));
	/* other kubernetes.io keys are not weir's */
	assert_false(weir_is_weir_key("kubernetes.io/egress-bandwidthx"));
	assert_false(weir_is_weir_key("kubernetes.io/psp"));
	assert_true(weir_is_weir_key("kubernetes.io/ingress-bandwidth"));
}

/* What the datapath gets: bytes per second, the burst as time, pacing below the limit. */
static void test_fill(void **state)
{
	struct weir_shaping sh = {.rate_bps = {10000000, 1000000000}, .prio = WEIR_PRIO_CRITICAL};
	struct weir_endpoint ep = {};

	(void)state;
	memcpy(sh.cc, "bbr", 4);
	weir_shaping_fill(&sh, &ep);
	assert_int_equal(ep.shape[WEIR_EGRESS].rate, 1250000);
	/* 10 Mbit/s: the default burst is the 65 KiB floor, 53.4 ms at the rate */
	assert_int_equal(ep.shape[WEIR_EGRESS].burst_ns, 66560ULL * 1000000000ULL / 1250000);
	assert_int_equal(ep.shape[WEIR_EGRESS].mark_ns, ep.shape[WEIR_EGRESS].burst_ns / 2);
	assert_int_equal(ep.shape[WEIR_EGRESS].pace, 1250000ULL * 1448 / 1514);
	/* ingress at 1 Gbit/s: 250 ms (31.25 MB), so a sender's retransmission timeout (200 ms
	 * at least) does not leave the limit idle */
	assert_int_equal(ep.shape[WEIR_INGRESS].rate, 125000000);
	assert_int_equal(ep.shape[WEIR_INGRESS].burst_ns, 250000000);
	assert_int_equal(ep.shape[WEIR_INGRESS].mark_ns, 125000000);
	assert_int_equal(ep.shape[WEIR_INGRESS].pace, 0);
	assert_true(ep.flags & WEIR_EP_PRIORITY);
	assert_int_equal(ep.priority, 6);
	assert_int_equal(ep.tos, 46 << 2);
	assert_true(ep.flags & WEIR_EP_CC);
	assert_string_equal(ep.cc, "bbr");

	sh = (struct weir_shaping){.rate_bps = {1000000000000000ULL, 0}, .burst = 1 << 30};
	memset(&ep, 0, sizeof(ep));
	weir_shaping_fill(&sh, &ep);
	assert_int_equal(ep.shape[WEIR_EGRESS].burst_ns, 8589); /* 1 GiB at 1 Pbit/s: 8.6 us */
	assert_int_equal(ep.shape[WEIR_INGRESS].rate, 0);

	/* the defaults per direction: 10 ms and 250 ms, at least 65 KiB, at most 1 GiB */
	sh = (struct weir_shaping){.rate_bps = {100000000, 10000000}};
	memset(&ep, 0, sizeof(ep));
	weir_shaping_fill(&sh, &ep);
	assert_int_equal(ep.shape[WEIR_EGRESS].burst_ns, 10000000);   /* 125000 bytes */
	assert_int_equal(ep.shape[WEIR_INGRESS].burst_ns, 250000000); /* 312500 bytes */
	sh = (struct weir_shaping){.rate_bps = {80000000000ULL, 1000000000000000ULL}};
	memset(&ep, 0, sizeof(ep));
	weir_shaping_fill(&sh, &ep);
	assert_int_equal(ep.shape[WEIR_EGRESS].burst_ns, 10000000);
	assert_int_equal(ep.shape[WEIR_INGRESS].burst_ns, 8589); /* capped at 1 GiB */
	/* an annotated burst holds for both directions */
	sh = (struct weir_shaping){.rate_bps = {10000000, 10000000}, .burst = 131072};
	memset(&ep, 0, sizeof(ep));
	weir_shaping_fill(&sh, &ep);
	assert_int_equal(ep.shape[WEIR_EGRESS].burst_ns, 104857600);
	assert_int_equal(ep.shape[WEIR_INGRESS].burst_ns, 104857600);
	assert_false(ep.flags & (WEIR_EP_PRIORITY | WEIR_EP_CC));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quantities),
		cmocka_unit_test(test_bad_quantities),
		cmocka_unit_test(test_burst_priority_cc),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_fill),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
