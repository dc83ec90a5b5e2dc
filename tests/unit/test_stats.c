// SPDX-License-Identifier: Apache-2.0
/*
 * The statistics model: the JSON a stopped record keeps its final counters in reads back to
 * the same struct; a damaged one is refused with the field named, never trusted; one
 * quantile serves every view; records are checked field by field; weir_meta's flags say
 * whether the per-socket verdict slots are in use only where the loader recorded it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ctx.h"
#include "record.h"
#include "stats.h"

static void fill(struct weir_ep_stats *s)
{
	uint64_t v = 1;

	memset(s, 0, sizeof(*s));
	for (int d = 0; d < WEIR_DIRS; d++) {
		for (int p = 0; p < WEIR_PCLASSES; p++) {
			s->c.dir[d].proto[p].packets = v++;
			s->c.dir[d].proto[p].bytes = v++ * 1000;
		}
		for (size_t i = 0; i < weir_dir_counters_ndesc; i++)
			*(__u64 *)((char *)&s->c.dir[d] + weir_dir_counters_desc[i].off) = v++;
	}
	s->has_tcp = true;
	s->tcp.active_opens = 11;
	s->tcp.passive_opens = 12;
	s->tcp.failed_connects = 13;
	s->tcp.retransmits = (1ULL << 63) + 5; /* above INT64_MAX: json-c keeps it as uint64 */
	for (int b = 0; b < WEIR_HIST_BUCKETS; b++) {
		s->tcp.srtt.buckets[b] = (uint64_t)b * 3;
		s->tcp.connect_latency.buckets[b] = b == 7;
	}
	s->tcp.srtt.sum = 123456;
	s->tcp.connect_latency.sum = 100;
}

static void test_round_trip(void **state)
{
	struct weir_ep_stats in, out;
	struct weir_error err = {};
	struct json_object *j;

	(void)state;
	fill(&in);
	j = weir_ep_stats_to_json(&in);
	/* through text, as a record file does */
	struct json_object *back = json_tokener_parse(json_object_to_json_string(j));

	assert_int_equal(weir_ep_stats_from_json(back, &out, &err), 0);
	assert_memory_equal(&in.c, &out.c, sizeof(in.c));
	assert_memory_equal(&in.tcp, &out.tcp, sizeof(in.tcp));
	assert_true(out.has_tcp);
	json_object_put(j);
	json_object_put(back);
}

static void expect_refused(const char *json, const char *field)
{
	struct json_object *o = json_tokener_parse(json);
	struct weir_error err = {};
	struct weir_ep_stats s;

	assert_non_null(o);
	assert_int_equal(weir_ep_stats_from_json(o, &s, &err), -EBADMSG);
	if (!strstr(err.msg, field))
		fail_msg("message \"%s\" does not name %s", err.msg, field);
	json_object_put(o);
}

static void test_damaged(void **state)
{
	(void)state;
	expect_refused("{\"egress\": {\"tcp\": {\"packets\": \"7\"}}}", "egress.tcp");
	expect_refused("{\"egress\": {\"tcp\": {\"packets\": -1}}}", "egress.tcp");
	expect_refused("{\"egress\": {\"tcp\": {\"packets\": 1.5}}}", "egress.tcp");
	expect_refused("{\"ingress\": {\"denied_connects\": {}}}", "ingress.denied_connects");
	expect_refused("{\"ingress\": []}", "ingress");
	expect_refused("{\"tcp\": {\"retransmits\": true}}", "tcp.retransmits");
	expect_refused("{\"tcp\": {\"srtt_us\": {\"buckets\": [1, 2]}}}", "srtt_us");
	expect_refused("{\"kernel_drops\": {\"NO_SOCKET\": \"x\"}}", "kernel_drops.NO_SOCKET");
}

static void test_missing_is_zero(void **state)
{
	struct json_object *o = json_tokener_parse("{\"egress\": {\"udp\": {\"packets\": 4}}}");
	struct weir_error err = {};
	struct weir_ep_stats s;

	(void)state;
	assert_int_equal(weir_ep_stats_from_json(o, &s, &err), 0);
	assert_int_equal(s.c.dir[WEIR_EGRESS].proto[WEIR_PC_UDP].packets, 4);
	assert_int_equal(s.c.dir[WEIR_EGRESS].proto[WEIR_PC_UDP].bytes, 0);
	assert_false(s.has_tcp);
	json_object_put(o);
}

static void test_quantile(void **state)
{
	struct weir_hist h = {};

	(void)state;
	assert_true(weir_hist_quantile(&h, 0.5) == 0);
	/* 100 samples in [64, 127]: the median sits half way through the bucket */
	h.buckets[7] = 100;
	assert_true(weir_hist_quantile(&h, 0.5) > 64 && weir_hist_quantile(&h, 0.5) < 127);
	assert_true(weir_hist_quantile(&h, 1.0) == 127);
	assert_int_equal(weir_hist_count(&h), 100);
	h.buckets[0] = 100; /* value 0 */
	assert_true(weir_hist_quantile(&h, 0.25) == 0);
}

static void expect_record_refused(const char *json, const char *field)
{
	struct json_object *o = json_tokener_parse(json);
	struct weir_error err = {};
	struct weir_record rec;

	assert_non_null(o);
	assert_int_equal(weir_record_parse(o, &rec, &err), -EBADMSG);
	if (!strstr(err.msg, field))
		fail_msg("message \"%s\" does not name %s", err.msg, field);
	json_object_put(o);
}

#define REC_OK                                                                                     \
	"\"id\": \"c1\", \"source\": \"hook\", \"cgroup\": \"/sys/fs/cgroup/x\", \"state\": "      \
	"\"running\", \"mode\": \"enforce\", \"monitor\": \"counters\", \"gen\": 1, "              \
	"\"cgroup_id\": 99, \"started_ms\": 5"

static void test_record(void **state)
{
	struct json_object *o = json_tokener_parse("{" REC_OK ", \"endpoint\": 7}");
	struct weir_error err = {};
	struct weir_record rec;

	(void)state;
	assert_int_equal(weir_record_parse(o, &rec, &err), 0);
	assert_int_equal(rec.endpoint, 7);
	assert_int_equal(rec.state, WEIR_STATE_RUNNING);
	assert_string_equal(rec.cgroup, "/sys/fs/cgroup/x");
	weir_record_release(&rec);
	json_object_put(o);

	expect_record_refused("{" REC_OK ", \"endpoint\": \"7\"}", "endpoint");
	expect_record_refused("{" REC_OK ", \"endpoint\": 0}", "endpoint");
	expect_record_refused("{" REC_OK ", \"endpoint\": 16384}", "endpoint");
	expect_record_refused("{" REC_OK ", \"endpoint\": 7, \"state\": \"dancing\"}", "state");
	expect_record_refused("{" REC_OK ", \"endpoint\": 7, \"cgroup_id\": -1}", "cgroup_id");
	expect_record_refused("{" REC_OK ", \"endpoint\": 7, \"annotations\": {\"a\": 1}}",
			      "annotations");
	expect_record_refused("{" REC_OK ", \"endpoint\": 7, \"final\": []}", "final");
	expect_record_refused("{" REC_OK ", \"endpoint\": 7, \"id\": \"../x\"}", "id");
	expect_record_refused("{" REC_OK ", \"endpoint\": 7, \"name\": \"a\\u0000b\"}", "name");
	expect_record_refused("{" REC_OK ", \"endpoint\": 7, \"cgroup\": \"rel\"}", "cgroup");
	/* the interface: an ifindex names how its program is attached */
	expect_record_refused("{" REC_OK ", \"endpoint\": 7, \"iface_ifindex\": 4}", "iface_tc");
	expect_record_refused("{" REC_OK ", \"endpoint\": 7, \"iface_ifindex\": 4, "
			      "\"iface_tc\": \"bpf\"}",
			      "iface_tc");
	expect_record_refused("{" REC_OK ", \"endpoint\": 7, \"iface_ifindex\": -4}",
			      "iface_ifindex");
	o = json_tokener_parse("{" REC_OK ", \"endpoint\": 7, \"iface_ifindex\": 4, "
			       "\"iface_netns\": 4026531840, \"iface_name\": \"veth1\", "
			       "\"iface_tc\": \"tcx\"}");
	assert_int_equal(weir_record_parse(o, &rec, &err), 0);
	assert_int_equal(rec.iface_ifindex, 4);
	assert_int_equal(rec.iface_netns, 4026531840u);
	assert_string_equal(rec.iface_name, "veth1");
	assert_string_equal(rec.iface_tc, "tcx");
	weir_record_release(&rec);
	json_object_put(o);
}

/*
 * The per-socket verdict slots as weir_meta records them: a datapath pinned by a weir that did
 * not record them (no WEIR_META_SK_RECORDED) is unknown, whatever its other bits say.
 */
static void test_sk_verdicts(void **state)
{
	(void)state;
	assert_int_equal(weir_sk_verdicts_of(WEIR_META_SK_RECORDED | WEIR_META_SK_VERDICTS),
			 WEIR_SK_VERDICTS_ON);
	assert_int_equal(weir_sk_verdicts_of(WEIR_META_SK_RECORDED | WEIR_META_SOCKOPS),
			 WEIR_SK_VERDICTS_OFF);
	assert_int_equal(weir_sk_verdicts_of(0), WEIR_SK_VERDICTS_UNKNOWN);
	assert_int_equal(weir_sk_verdicts_of(WEIR_META_SOCKOPS | WEIR_META_DROP_REASONS),
			 WEIR_SK_VERDICTS_UNKNOWN);
	assert_int_equal(weir_sk_verdicts_of(WEIR_META_SK_VERDICTS), WEIR_SK_VERDICTS_UNKNOWN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),	cmocka_unit_test(test_damaged),
		cmocka_unit_test(test_missing_is_zero), cmocka_unit_test(test_quantile),
		cmocka_unit_test(test_record),		cmocka_unit_test(test_sk_verdicts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
