// SPDX-License-Identifier: Apache-2.0
/*
 * Security guards: the security.weir.io grammar and its messages, the node baseline's
 * tighten-only merge, the plan that decides how each guard is carried out on a node, and the
 * intersection of a container's rules with the baseline's, checked against the reference
 * evaluator on random policies.
 */
#include <arpa/inet.h>
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
#include "guard.h"
#include "policy.h"
#include "stats.h"
#include "bpf/lib/verdict.h"

static struct weir_error err;

static const char *parse(const char *value, struct weir_guards *g)
{
	memset(&err, 0, sizeof(err));
	if (weir_guards_parse(WEIR_KEY_SECURITY, value, g, &err))
		return err.msg;
	return NULL;
}

static void expect_error(const char *value, const char *expected)
{
	struct weir_guards g;
	const char *msg = parse(value, &g);

	if (!msg) {
		weir_guards_free(&g);
		fail_msg("\"%s\" was accepted", value);
	}
	if (!strstr(msg, expected))
		fail_msg("message \"%s\" lacks \"%s\"", msg, expected);
	if (strchr(msg, '\n'))
		fail_msg("message \"%s\" is more than one line", msg);
}

static void test_parse_valid(void **state)
{
	struct weir_guards g;

	assert_null(parse("raw-sockets; bind enforce allow tcp/8080,udp/53,tcp/9000-9100,tcp/8081; "
			  "sysctl audit allow "
			  "net.ipv4.ip_forward,net.core.*,net/ipv4/conf/eth0.5/rp_filter reads;"
			  " escape kill calls mount,namespaces; port-scan enforce threshold 10 "
			  "window 5 quarantine 30; paths audit protect /etc/shadow,/run/x;",
			  &g));
	assert_int_equal(g.mode[WEIR_GUARD_RAW], WEIR_GM_ENFORCE);
	assert_true(g.raw_families & 1);	    /* raw */
	assert_true(g.raw_families & (1ULL << 17)); /* packet */
	assert_int_equal(g.mode[WEIR_GUARD_BIND], WEIR_GM_ENFORCE);
	assert_int_equal(g.bind.ntcp, 2); /* 8080-8081 merged, 9000-9100 */
	assert_int_equal(g.bind.nudp, 1);
	assert_true(weir_val_allows(&g.bind, WEIR_PC_TCP, 8081, 1));
	assert_true(weir_val_allows(&g.bind, WEIR_PC_TCP, 9050, 1));
	assert_false(weir_val_allows(&g.bind, WEIR_PC_TCP, 53, 1));
	assert_true(weir_val_allows(&g.bind, WEIR_PC_UDP, 53, 1));
	assert_int_equal(g.mode[WEIR_GUARD_SYSCTL], WEIR_GM_AUDIT);
	assert_int_equal(g.nsysctl, 3);
	assert_string_equal(g.sysctl[0].name, "net/ipv4/ip_forward");
	assert_false(g.sysctl[0].prefix);
	assert_string_equal(g.sysctl[1].name, "net/core/");
	assert_true(g.sysctl[1].prefix);
	assert_string_equal(g.sysctl[2].name, "net/ipv4/conf/eth0.5/rp_filter");
	assert_true(g.sysctl_reads);
	assert_int_equal(g.mode[WEIR_GUARD_ESCAPE], WEIR_GM_KILL);
	assert_int_equal(g.escape_calls, (1U << WEIR_CALL_MOUNT) | (1U << WEIR_CALL_NAMESPACES));
	assert_int_equal(g.scan_threshold, 10);
	assert_int_equal(g.scan_window_s, 5);
	assert_int_equal(g.quarantine_s, 30);
	assert_int_equal(g.npaths, 2);
	assert_string_equal(g.paths[1], "/run/x");
	weir_guards_free(&g);

	assert_null(parse("escape audit", &g));
	assert_int_equal(g.escape_calls, ((1U << WEIR_CALLS) - 1) & ~1U);
	assert_int_equal(g.scan_threshold, 0);
	weir_guards_free(&g);
	assert_null(parse("port-scan audit\n", &g));
	assert_int_equal(g.scan_threshold, WEIR_SCAN_THRESHOLD);
	weir_guards_free(&g);
	assert_null(parse("raw-sockets off; bind enforce allow tcp", &g));
	assert_false(weir_guards_any(&g) && g.mode[WEIR_GUARD_RAW]);
	assert_true(g.bind.all & (1U << WEIR_PC_TCP));
	weir_guards_free(&g);
}

static void test_parse_errors(void **state)
{
	expect_error("", "security.weir.io: empty value");
	expect_error("raw-sockets;;bind", "guard 2 is empty");
	expect_error("rawsockets enforce",
		     "unknown guard \"rawsockets\": expected raw-sockets, bind");
	expect_error("bind kill", "mode \"kill\" is for escape only");
	expect_error("bind enforce allow tcp/0", "bad port item \"tcp/0\"");
	expect_error("bind enforce allow tcp/70000", "bad port item \"tcp/70000\"");
	expect_error("bind enforce allow tcp/90-80", "empty port range \"tcp/90-80\"");
	expect_error("bind enforce allow tcp/80,,udp/53", "bad port list");
	expect_error("bind enforce allow sctp/80", "bad port item \"sctp/80\"");
	expect_error("bind allow", "option \"allow\" needs a value");
	expect_error("bind enforce ports tcp/80", "guard 1 (\"bind enforce ports tcp/80\"): "
						  "unexpected \"ports\": expected \"allow\"");
	expect_error("bind enforce allow tcp/1 allow tcp/2", "option \"allow\" is given twice");
	expect_error("bind; bind audit", "guard \"bind\" is named twice");
	expect_error("raw-sockets enforce families inet", "unknown family \"inet\"");
	expect_error("raw-sockets enforce families packet,bogus", "unknown family \"bogus\"");
	expect_error("sysctl enforce allow net.ipv4.*.x", "bad sysctl name \"net.ipv4.*.x\"");
	expect_error("sysctl enforce allow /net/x", "bad sysctl name \"/net/x\"");
	expect_error("escape kill calls mount,chroot", "unknown call group \"chroot\"");
	expect_error("port-scan enforce threshold 0", "bad threshold \"0\"");
	expect_error("port-scan enforce window 99999", "bad window \"99999\"");
	expect_error("paths enforce protect etc/shadow", "bad path \"etc/shadow\"");
	expect_error("escape audit\x01", "control character");
}

static const char *merge(const char *base_text, const char *text, bool loosen,
			 struct weir_guards *g)
{
	struct weir_guards base;
	int r;

	assert_null(parse(base_text, &base));
	assert_null(parse(text, g));
	memset(&err, 0, sizeof(err));
	r = weir_guards_merge(g, &base, "/etc/weir/weir.conf", loosen, &err);
	weir_guards_free(&base);
	return r ? err.msg : NULL;
}

static void expect_loosens(const char *base, const char *text, const char *why)
{
	struct weir_guards g;
	const char *msg = merge(base, text, false, &g);

	weir_guards_free(&g);
	if (!msg)
		fail_msg("\"%s\" over baseline \"%s\" was accepted", text, base);
	if (!strstr(msg, "loosens the node baseline") || !strstr(msg, why))
		fail_msg("message \"%s\" lacks \"%s\"", msg, why);
	assert_true(merge(base, text, true, &g) == NULL);
	weir_guards_free(&g);
}

static void test_merge(void **state)
{
	struct weir_guards g;

	/* what the annotation leaves out comes from the baseline */
	assert_null(
		merge("raw-sockets enforce; escape audit calls mount", "bind enforce", false, &g));
	assert_int_equal(g.mode[WEIR_GUARD_RAW], WEIR_GM_ENFORCE);
	assert_int_equal(g.mode[WEIR_GUARD_ESCAPE], WEIR_GM_AUDIT);
	assert_int_equal(g.escape_calls, 1U << WEIR_CALL_MOUNT);
	assert_int_equal(g.mode[WEIR_GUARD_BIND], WEIR_GM_ENFORCE);
	weir_guards_free(&g);
	/* tightening is fine */
	assert_null(merge("escape audit calls mount", "escape kill", false, &g));
	weir_guards_free(&g);
	assert_null(merge("bind enforce allow tcp/80,tcp/443", "bind enforce allow tcp/443", false,
			  &g));
	weir_guards_free(&g);
	assert_null(merge("sysctl enforce allow net.core.*",
			  "sysctl enforce allow net.core.somaxconn", false, &g));
	weir_guards_free(&g);
	assert_null(merge("port-scan enforce threshold 20 quarantine 60",
			  "port-scan enforce threshold 5 window 20 quarantine 120", false, &g));
	weir_guards_free(&g);

	expect_loosens("raw-sockets enforce", "raw-sockets audit",
		       "mode audit is weaker than enforce");
	expect_loosens("raw-sockets enforce", "raw-sockets off", "mode off is weaker");
	expect_loosens("raw-sockets enforce", "raw-sockets enforce families raw",
		       "family packet is left out");
	expect_loosens("escape kill", "escape audit", "mode audit is weaker than kill");
	expect_loosens("escape audit", "escape audit calls mount",
		       "call group pivot_root is left out");
	expect_loosens("bind enforce allow tcp/80", "bind enforce allow tcp/80-81",
		       "port tcp/81 is allowed");
	expect_loosens("bind enforce allow tcp/80", "bind enforce allow udp",
		       "every udp port is allowed");
	expect_loosens("sysctl enforce allow net.core.somaxconn", "sysctl enforce allow net.core.*",
		       "sysctl net/core/* is allowed");
	expect_loosens("sysctl enforce reads", "sysctl enforce", "reads are left out");
	expect_loosens("port-scan enforce threshold 10", "port-scan enforce threshold 11",
		       "threshold 11 is above 10");
	expect_loosens("port-scan enforce quarantine 60", "port-scan enforce quarantine 10",
		       "quarantine 10 s is shorter than 60 s");

	/* the message names the annotation's guard and the baseline's, and the file */
	assert_non_null(merge("raw-sockets enforce", "raw-sockets audit", false, &g));
	assert_string_equal(err.msg,
			    "security.weir.io: guard \"raw-sockets audit\" loosens the node "
			    "baseline (\"raw-sockets enforce\" in /etc/weir/weir.conf): mode audit "
			    "is weaker than enforce");
	weir_guards_free(&g);

	/* protected paths add up */
	assert_null(merge("paths enforce protect /a", "paths enforce protect /b", false, &g));
	assert_int_equal(g.npaths, 2);
	weir_guards_free(&g);
}

static const char *plan(const char *text, const struct weir_guard_caps *caps,
			struct weir_guard_plan *p)
{
	struct weir_guards g;
	int r;

	assert_null(parse(text, &g));
	memset(&err, 0, sizeof(err));
	r = weir_guards_plan(&g, caps, p, &err);
	weir_guards_free(&g);
	return r ? err.msg : NULL;
}

static void test_plan(void **state)
{
	struct weir_guard_caps nolsm = {
		.cgroup = true, .tracing = true, .exec = true, .why_no_lsm = "EPERM"};
	struct weir_guard_caps fallback = nolsm;
	struct weir_guard_caps lsm = {.cgroup = true,
				      .tracing = true,
				      .exec = true,
				      .lsm = true,
				      .lsm_per_cgroup = true,
				      .lsm_socket = true,
				      .lsm_file_open = true,
				      .lsm_calls = (1U << WEIR_CALL_MOUNT) | (1U << WEIR_CALL_BPF)};
	struct weir_guard_plan p;
	const char *msg;

	fallback.fallback_kill = true;

	/* raw IPv4/IPv6 sockets and bind: cgroup hooks, everywhere */
	assert_null(plan("raw-sockets enforce families raw; bind audit allow tcp/80", &nolsm, &p));
	assert_true(p.cfg.raw_inet);
	assert_int_equal(p.cfg.raw_deny_families | p.cfg.raw_trace_families, 0);
	assert_int_equal(p.cgroup_progs, (1U << WEIR_GUARD_RAW) | (1U << WEIR_GUARD_BIND));
	assert_int_equal(p.node_links, WEIR_GL_EXEC);
	assert_string_equal(p.summary, "raw-sockets=enforce bind=audit");

	/* packet sockets need BPF-LSM to be refused */
	msg = plan("raw-sockets enforce", &nolsm, &p);
	assert_non_null(msg);
	assert_non_null(strstr(msg,
			       "guard \"raw-sockets enforce\": refusing socket families other "
			       "than raw needs BPF-LSM, which this node does not offer (EPERM)"));
	assert_null(plan("raw-sockets enforce", &fallback, &p));
	assert_int_equal(p.cfg.raw_trace_families, 1ULL << 17);
	assert_true(p.cfg.raw_trace_kill);
	assert_true(p.fallback);
	assert_int_equal(p.node_links, WEIR_GL_EXEC | WEIR_GL_SYS_ENTER);
	assert_string_equal(p.summary, "raw-sockets=enforce(kill: no BPF-LSM)");
	assert_null(plan("raw-sockets enforce", &lsm, &p));
	assert_int_equal(p.cfg.raw_deny_families, 1ULL << 17);
	assert_true(p.lsm_per_cgroup);
	assert_null(plan("raw-sockets audit", &nolsm, &p));
	assert_int_equal(p.cfg.raw_trace_families, 1ULL << 17);
	assert_false(p.cfg.raw_trace_kill);

	/* escape: audit and kill at syscall entry; enforce through BPF-LSM, kill where no hook */
	assert_null(plan("escape kill calls mount,ptrace", &nolsm, &p));
	assert_int_equal(p.cfg.escape_kill, (1U << WEIR_CALL_MOUNT) | (1U << WEIR_CALL_PTRACE));
	assert_non_null(strstr(plan("escape enforce", &nolsm, &p), "escape enforce needs BPF-LSM"));
	assert_null(plan("escape enforce calls mount,keyring", &fallback, &p));
	assert_int_equal(p.cfg.escape_kill, (1U << WEIR_CALL_MOUNT) | (1U << WEIR_CALL_KEYRING));
	assert_null(plan("escape enforce calls mount,keyring", &lsm, &p));
	assert_int_equal(p.cfg.escape_deny, 1U << WEIR_CALL_MOUNT);
	assert_int_equal(p.cfg.escape_kill, 1U << WEIR_CALL_KEYRING);
	lsm.lsm_per_cgroup = false;
	assert_null(plan("escape enforce calls bpf", &lsm, &p));
	assert_int_equal(p.node_links, WEIR_GL_EXEC | WEIR_GL_LSM);

	/*
	 * a runtime's exec into the container is trusted until its exec wherever a guard judges
	 * the task (syscall entry, BPF-LSM) and the node loaded the entry programs
	 */
	lsm.entry = nolsm.entry = true;
	assert_null(plan("escape enforce calls bpf", &lsm, &p));
	assert_int_equal(p.node_links, WEIR_GL_EXEC | WEIR_GL_LSM | WEIR_GL_ENTRY);
	lsm.lsm_per_cgroup = true;
	assert_null(plan("escape enforce calls bpf", &lsm, &p));
	assert_true(p.lsm_per_cgroup);
	assert_int_equal(p.node_links, WEIR_GL_EXEC | WEIR_GL_ENTRY);
	lsm.lsm_per_cgroup = false;
	assert_null(plan("escape kill calls keyring", &nolsm, &p));
	assert_int_equal(p.node_links, WEIR_GL_EXEC | WEIR_GL_SYS_ENTER | WEIR_GL_ENTRY);
	assert_null(plan("bind enforce allow tcp/80; sysctl enforce", &nolsm, &p));
	assert_int_equal(p.node_links, WEIR_GL_EXEC);
	lsm.entry = nolsm.entry = false;

	/* paths: BPF-LSM or nothing, even with the fallback */
	assert_non_null(strstr(plan("paths enforce protect /x", &fallback, &p),
			       "protected paths need BPF-LSM"));
	assert_non_null(strstr(plan("paths enforce", &lsm, &p), "nothing to protect"));

	/* every guard waits for the workload's exec */
	nolsm.exec = false;
	assert_non_null(strstr(plan("bind enforce", &nolsm, &p), "sched_process_exec"));
	assert_null(plan("raw-sockets off", &nolsm, &p));

	assert_null(plan("port-scan audit threshold 3 window 2", &fallback, &p));
	assert_int_equal(p.cfg.scan_threshold, 3);
	assert_int_equal(p.cfg.scan_window_ms, 2000);
	assert_int_equal(p.cfg.quarantine_ms, 0);
}

static void test_sysctl_key(void **state)
{
	struct weir_sysctl_pattern exact = {.name = "net/core/somaxconn"},
				   pre = {.name = "net/", .prefix = true};
	struct weir_sysctl_key k;

	weir_sysctl_key_of(&exact, 7, &k);
	assert_int_equal(k.ep_id, 7);
	assert_int_equal(k.prefixlen, WEIR_SYSCTL_KEY_FIXED_BITS + 8 * 19);
	weir_sysctl_key_of(&pre, 7, &k);
	assert_int_equal(k.prefixlen, WEIR_SYSCTL_KEY_FIXED_BITS + 8 * 4);
}

static void test_syscall_table(void **state)
{
	static struct weir_syscall_nr t[WEIR_SYSCALL_SLOTS];

	weir_syscalls_fill(t);
	assert_int_equal(t[165].abi[0].call, WEIR_CALL_MOUNT);	    /* x86-64 mount */
	assert_int_equal(t[272].abi[0].call, WEIR_CALL_NAMESPACES); /* unshare */
	assert_int_equal(t[272].abi[0].filter, WEIR_CF_UNSHARE);
	assert_int_equal(t[39].abi[0].call, WEIR_CALL_NONE);  /* getpid */
	assert_int_equal(t[39].abi[1].call, WEIR_CALL_NONE);  /* ia32 umask */
	assert_int_equal(t[21].abi[1].call, WEIR_CALL_MOUNT); /* ia32 mount */
	assert_int_equal(t[102].abi[1].filter, WEIR_CF_SOCKETCALL);
}

/* ---- the baseline through the node config -------------------------------------------- */

static char conf_path[64];
static struct weir_config cfg;

static void load_conf(const char *json)
{
	FILE *f = fopen(conf_path, "w");

	assert_non_null(f);
	fputs(json, f);
	fclose(f);
	weir_config_release(&cfg);
	memset(&err, 0, sizeof(err));
	if (weir_config_load(&cfg, conf_path, true, &err))
		fail_msg("config: %s", err.msg);
}

static const char *spec_of(const char *ns, struct weir_spec *spec, size_t n, ...)
{
	struct weir_kv kv[8];
	va_list ap;

	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		kv[i].key = va_arg(ap, const char *);
		kv[i].value = va_arg(ap, const char *);
	}
	va_end(ap);
	memset(&err, 0, sizeof(err));
	if (weir_spec_parse_for(&cfg, kv, n, ns, spec, &err))
		return err.msg;
	return NULL;
}

static void test_baseline_config(void **state)
{
	struct weir_spec spec;
	struct weir_error e = {};
	const char *msg;

	load_conf("{\"security\": \"raw-sockets enforce families raw; escape audit\", "
		  "\"egress\": \"allow 10.0.0.0/8\", \"loosen_namespaces\": [\"kube-system\"], "
		  "\"protected_paths\": [\"/etc/shadow\"], \"lsm_fallback\": \"kill\"}");
	assert_true(cfg.lsm_fallback_kill);
	/* no annotation at all: the baseline makes an endpoint of it */
	assert_null(spec_of(NULL, &spec, 0));
	assert_true(spec.any);
	assert_int_equal(spec.guards.mode[WEIR_GUARD_RAW], WEIR_GM_ENFORCE);
	assert_int_equal(spec.guards.mode[WEIR_GUARD_ESCAPE], WEIR_GM_AUDIT);
	assert_true(weir_spec_dir_present(&spec, WEIR_EGRESS));
	weir_spec_free(&spec);
	/* loosening is refused, except for a trusted namespace */
	msg = spec_of("default", &spec, 1, "security.weir.io", "escape off");
	assert_non_null(msg);
	assert_non_null(strstr(msg, "guard \"escape off\" loosens the node baseline (\"escape "
				    "audit\" in "));
	assert_null(spec_of("kube-system", &spec, 1, "security.weir.io", "escape off"));
	assert_int_equal(spec.guards.mode[WEIR_GUARD_ESCAPE], WEIR_GM_OFF);
	weir_spec_free(&spec);
	msg = spec_of(NULL, &spec, 1, "policy-mode.weir.io", "audit");
	assert_non_null(msg);
	assert_non_null(strstr(msg, "policy-mode.weir.io: \"audit\" loosens the node baseline"));
	/* the node's protected paths join a paths guard */
	assert_null(spec_of(NULL, &spec, 1, "security.weir.io", "paths enforce protect /x"));
	assert_int_equal(spec.guards.npaths, 2);
	weir_spec_free(&spec);

	/* a bad baseline fails the config load, naming the file and the key */
	{
		FILE *f = fopen(conf_path, "w");

		fputs("{\"security\": \"bind kill\"}", f);
		fclose(f);
	}
	weir_config_release(&cfg);
	assert_int_not_equal(weir_config_load(&cfg, conf_path, true, &e), 0);
	assert_non_null(strstr(e.msg, ": \"security\": guard 1 (\"bind kill\"): mode \"kill\" is "
				      "for escape only"));
	memset(&e, 0, sizeof(e));
	{
		FILE *f = fopen(conf_path, "w");

		fputs("{\"lsm\": \"maybe\"}", f);
		fclose(f);
	}
	assert_int_not_equal(weir_config_load(&cfg, conf_path, true, &e), 0);
	assert_non_null(strstr(e.msg, "\"lsm\": expected \"auto\", \"global\" or \"off\""));
	weir_config_release(&cfg);
	weir_config_defaults(&cfg);
}

/* ---- intersection against the reference --------------------------------------------- */

static uint32_t rng = 12345;

static uint32_t rnd(uint32_t n)
{
	rng = rng * 1103515245 + 12345;
	return (rng >> 8) % n;
}

/* Random rules over a small address space, so prefixes overlap often. */
static void random_rules(char *buf, size_t size)
{
	size_t off = 0;
	uint32_t n = 1 + rnd(5);

	buf[0] = '\0';
	for (uint32_t i = 0; i < n; i++) {
		uint32_t plen = 8 + rnd(25),
			 a = (10U << 24) | (rnd(4) << 16) | (rnd(4) << 8) | rnd(4);
		char item[64] = "";

		a &= plen ? ~0U << (32 - plen) : 0;
		switch (rnd(4)) {
		case 0:
			break;
		case 1:
			snprintf(item, sizeof(item), " tcp/%u-%u", 1 + rnd(50), 50 + rnd(50));
			break;
		case 2:
			snprintf(item, sizeof(item), " udp/%u,tcp/%u", 1 + rnd(99), 1 + rnd(99));
			break;
		default:
			snprintf(item, sizeof(item), " icmp,tcp");
		}
		off += (size_t)snprintf(buf + off, size - off, "%s%s %u.%u.%u.%u/%u%s",
					i ? "; " : "", rnd(3) ? "allow" : "deny", a >> 24,
					(a >> 16) & 255, (a >> 8) & 255, a & 255, plen, item);
	}
}

static int lpm_eval(const struct weir_compiled *c, uint8_t dir, const uint8_t *addr,
		    uint32_t pclass, uint16_t port)
{
	const struct weir_policy_val *best = NULL;
	uint32_t best_len = 0;

	for (size_t i = 0; i < c->n; i++) {
		const struct weir_policy_key *k = &c->entries[i].key;
		uint32_t plen = k->prefixlen - WEIR_POLICY_KEY_FIXED_BITS, bit;

		if (k->dir != dir || k->family != WEIR_V4)
			continue;
		for (bit = 0; bit < plen; bit++)
			if ((k->addr[bit / 8] ^ addr[bit / 8]) & (0x80 >> (bit % 8)))
				break;
		if (bit == plen && (!best || plen >= best_len)) {
			best = &c->entries[i].val;
			best_len = plen;
		}
	}
	return best && weir_val_allows(best, pclass, port, 1);
}

static void test_intersection(void **state)
{
	struct weir_policy_limits lim = {65536, 1000};
	unsigned long checked = 0;

	for (int t = 0; t < 400; t++) {
		struct weir_spec spec = {};
		struct weir_compiled c;
		char a[1024], b[1024];
		bool base_egress = rnd(4) != 0, own_egress = rnd(4) != 0;

		random_rules(a, sizeof(a));
		random_rules(b, sizeof(b));
		if (own_egress)
			assert_int_equal(weir_policy_parse_dir(&spec.policy, WEIR_EGRESS, "a", a,
							       &lim, &err),
					 0);
		if (base_egress)
			assert_int_equal(
				weir_policy_parse_dir(&spec.base, WEIR_EGRESS, "b", b, &lim, &err),
				0);
		if (weir_spec_compile(&spec, &c, &err)) {
			assert_non_null(strstr(err.msg, "port ranges"));
			weir_spec_free(&spec);
			continue;
		}
		for (int k = 0; k < 300; k++) {
			uint8_t addr[16] = {10, (uint8_t)rnd(4), (uint8_t)rnd(4), (uint8_t)rnd(4)};
			uint32_t pclass = rnd(3);
			uint16_t port = (uint16_t)(1 + rnd(110));
			int want = 1, got;

			if (own_egress)
				want &= weir_policy_eval_reference(&spec.policy, WEIR_EGRESS,
								   WEIR_V4, addr, pclass, port, 1);
			if (base_egress)
				want &= weir_policy_eval_reference(&spec.base, WEIR_EGRESS, WEIR_V4,
								   addr, pclass, port, 1);
			got = (own_egress || base_egress)
				      ? lpm_eval(&c, WEIR_EGRESS, addr, pclass, port)
				      : 1;
			if (got != want)
				fail_msg("own \"%s\" (%d), baseline \"%s\" (%d): %u.%u.%u.%u class "
					 "%u "
					 "port %u: compiled %d, reference %d",
					 a, own_egress, b, base_egress, addr[0], addr[1], addr[2],
					 addr[3], pclass, port, got, want);
			checked++;
		}
		weir_compiled_free(&c);
		weir_spec_free(&spec);
	}
	assert_true(checked > 100000);
}

/* A stopped record keeps the guard counters: written and read back, field by field. */
static void test_guard_counters_json(void **state)
{
	static struct weir_ep_stats s, back;
	struct json_object *o, *g;

	s.has_guards = true;
	s.guards.n[WEIR_GUARD_ESCAPE][WEIR_GA_KILLED] = 3;
	s.guards.n[WEIR_GUARD_BIND][WEIR_GA_DENIED] = 2;
	s.guards.quarantine_drops = 21;
	o = weir_ep_stats_to_json(&s);
	assert_int_equal(weir_ep_stats_from_json(o, &back, &err), 0);
	assert_true(back.has_guards);
	assert_memory_equal(&back.guards, &s.guards, sizeof(s.guards));
	/* a mistyped count names its field */
	g = json_object_object_get(json_object_object_get(o, "guards"), "escape");
	json_object_object_add(g, "killed", json_object_new_string("three"));
	assert_int_not_equal(weir_ep_stats_from_json(o, &back, &err), 0);
	assert_non_null(strstr(err.msg, "guards.escape.killed"));
	json_object_put(o);
}

static int setup(void **state)
{
	snprintf(conf_path, sizeof(conf_path), "/tmp/weir-test-guard.%d.conf", (int)getpid());
	weir_config_defaults(&cfg);
	return 0;
}

static int teardown(void **state)
{
	unlink(conf_path);
	weir_config_release(&cfg);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_plan),
		cmocka_unit_test(test_sysctl_key),
		cmocka_unit_test(test_syscall_table),
		cmocka_unit_test(test_baseline_config),
		cmocka_unit_test(test_intersection),
		cmocka_unit_test(test_guard_counters_json),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
