// SPDX-License-Identifier: Apache-2.0
/*
 * The datapath programs, run by the kernel with BPF_PROG_TEST_RUN on crafted packets. The
 * object is loaded privately (no pins), with the test's own cgroup registered as an endpoint:
 * the kernel gives a test-run skb a socket in the caller's cgroup.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "annot.h"
#include "cgroup.h"
#include "config.h"
#include "ctx.h"
#include "iface.h"
#include "policy.h"
#include "util.h"
#include "bpf/lib/verdict.h"
#include "weir.skel.h"

#define EP 7

static struct weir_bpf *skel;
static uint64_t my_cgid;
/* 1 when the programs loaded with their per-socket verdict slots (weir_sk_cache) */
static int sk_cache_loaded;
static int ifindex; /* any non-loopback device: loopback traffic is never filtered */
static int ncpu;
static struct weir_config cfg;

/*
 * The sender: a child process in a cgroup of the test's own, in a network namespace of its
 * own with nothing but a down loopback, where weir's sendmsg programs are attached. It sends
 * one datagram per request and answers with the errno: EPERM is weir's refusal; any other
 * outcome (ENETUNREACH: there is no route) means the program let the datagram through.
 */
struct send_req {
	uint8_t family;	  /* WEIR_V4 or WEIR_V6 */
	uint8_t mapped;	  /* an IPv4 peer, through a dual-stack IPv6 socket */
	uint8_t have_src; /* IP_PKTINFO / IPV6_PKTINFO names the source address */
	uint8_t pad;
	uint16_t lport, rport;
	uint8_t raddr[16];
	uint8_t src[16];
};

static struct {
	char cg[PATH_MAX];
	uint64_t cgid;
	pid_t pid;
	int req, resp; /* pipes to and from the child */
	struct bpf_link *links[2];
} snd = {.pid = -1, .req = -1, .resp = -1};

struct pkt {
	uint8_t buf[256];
	uint32_t len;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Ethernet + IPv4/IPv6 + TCP/UDP/ICMP header + payload bytes. */
static struct pkt make_pkt(const char *src, const char *dst, uint8_t proto, uint16_t sport,
			   uint16_t dport, uint32_t payload)
{
	struct pkt p = {};
	bool v6 = strchr(src, ':') != NULL;
	uint8_t *ip = p.buf + 14, *l4;
	uint32_t l4len = proto == IPPROTO_TCP ? 20 : 8;

	put16(p.buf + 12, v6 ? 0x86dd : 0x0800);
	if (!v6) {
		ip[0] = 0x45;
		put16(ip + 2, (uint16_t)(20 + l4len + payload));
		ip[8] = 64;
		ip[9] = proto;
		inet_pton(AF_INET, src, ip + 12);
		inet_pton(AF_INET, dst, ip + 16);
		l4 = ip + 20;
	} else {
		ip[0] = 0x60;
		put16(ip + 4, (uint16_t)(l4len + payload));
		ip[6] = proto;
		ip[7] = 64;
		inet_pton(AF_INET6, src, ip + 8);
		inet_pton(AF_INET6, dst, ip + 24);
		l4 = ip + 40;
	}
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		put16(l4, sport);
		put16(l4 + 2, dport);
		if (proto == IPPROTO_TCP)
			l4[12] = 5 << 4;
	} else {
		l4[0] = (uint8_t)(sport >> 8); /* type */
		put16(l4 + 4, dport);	       /* echo identifier */
	}
	p.len = (uint32_t)(l4 - p.buf) + l4len + payload;
	return p;
}

static int run(struct bpf_program *prog, const struct pkt *p, bool ingress, uint32_t gso_segs)
{
	struct __sk_buff ctx = {};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p->buf, .data_size_in = p->len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx));
	int r;

	ctx.ifindex = ifindex;
	if (ingress)
		ctx.ingress_ifindex = ifindex;
	ctx.gso_segs = gso_segs;
	r = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);
	if (r)
		fail_msg("test run: %s", strerror(errno));
	return (int)opts.retval;
}

static int egress(const struct pkt *p)
{
	return run(skel->progs.weir_egress, p, false, 0);
}

static int ingress(const struct pkt *p)
{
	return run(skel->progs.weir_ingress, p, true, 0);
}

static struct weir_counters counters_of(uint32_t ep)
{
	struct weir_counters *per = calloc((size_t)ncpu, sizeof(*per)), sum = {};

	assert_non_null(per);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.weir_counters), &ep, per), 0);
	for (int c = 0; c < ncpu; c++)
		for (size_t w = 0; w < sizeof(sum) / 8; w++)
			((uint64_t *)&sum)[w] += ((uint64_t *)&per[c])[w];
	free(per);
	return sum;
}

static struct weir_counters counters(void)
{
	return counters_of(EP);
}

/*
 * Register endpoint ep with the given annotations and a conntrack map of ct_entries, and make
 * it the test's cgroup's.
 */
static void setup_ep(uint32_t ep, const char *egress_rules, const char *ingress_rules, bool audit,
		     uint32_t ct_entries)
{
	struct weir_kv kv[3];
	size_t n = 0;
	struct weir_spec spec;
	struct weir_compiled comp;
	struct weir_error err = {};
	struct weir_endpoint epv = {};
	struct weir_counters *zero = calloc((size_t)ncpu, sizeof(*zero));
	int mfd = bpf_map__fd(skel->maps.weir_policy);
	struct weir_policy_key k = {}, next;

	/* a clean slate: none of its policy keys, no tracked flows */
	while (!bpf_map_get_next_key(mfd, k.prefixlen ? &k : NULL, &next)) {
		if (next.ep_id == ep && !bpf_map_delete_elem(mfd, &next))
			continue; /* the walk starts again from the top */
		k = next;
	}
	/* a fresh conntrack map, as an attach makes */
	mfd = bpf_map__fd(skel->maps.weir_ct);
	weir_ct_remove(mfd, NULL, ep);
	if (weir_ct_create(mfd, NULL, ep, ct_entries, &err))
		fail_msg("%s", err.msg);

	if (egress_rules)
		kv[n++] = (struct weir_kv){"egress.weir.io", egress_rules};
	if (ingress_rules)
		kv[n++] = (struct weir_kv){"ingress.weir.io", ingress_rules};
	kv[n++] = (struct weir_kv){"policy-mode.weir.io", audit ? "audit" : "enforce"};
	if (weir_spec_parse(&cfg, kv, n, &spec, &err) ||
	    weir_policy_compile(&spec.policy, &comp, &err))
		fail_msg("%s", err.msg);
	for (size_t i = 0; i < comp.n; i++) {
		comp.entries[i].key.ep_id = ep;
		assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.weir_policy),
						     &comp.entries[i].key, &comp.entries[i].val,
						     BPF_ANY),
				 0);
	}
	epv.flags = WEIR_EP_ACTIVE | (audit ? WEIR_EP_AUDIT : 0) |
		    (spec.policy.dir[WEIR_EGRESS].present ? WEIR_EP_POLICY_EGRESS : 0) |
		    (spec.policy.dir[WEIR_INGRESS].present ? WEIR_EP_POLICY_INGRESS : 0);
	epv.gen++;
	assert_int_equal(
		bpf_map_update_elem(bpf_map__fd(skel->maps.weir_endpoints), &ep, &epv, BPF_ANY), 0);
	assert_int_equal(
		bpf_map_update_elem(bpf_map__fd(skel->maps.weir_cgroups), &my_cgid, &ep, BPF_ANY),
		0);
	/* the sender's cgroup (sendmsg tests) is the same endpoint */
	if (snd.cgid)
		assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.weir_cgroups),
						     &snd.cgid, &ep, BPF_ANY),
				 0);
	assert_non_null(zero);
	assert_int_equal(
		bpf_map_update_elem(bpf_map__fd(skel->maps.weir_counters), &ep, zero, BPF_ANY), 0);
	free(zero);
	weir_compiled_free(&comp);
	weir_spec_free(&spec);
}

/* Register the test's cgroup as endpoint EP with the given annotations. */
static void setup_endpoint(const char *egress_rules, const char *ingress_rules, bool audit)
{
	setup_ep(EP, egress_rules, ingress_rules, audit, WEIR_CT_DEFAULT_ENTRIES);
}

/* Packets from now on are endpoint ep's. */
static void become(uint32_t ep)
{
	assert_int_equal(
		bpf_map_update_elem(bpf_map__fd(skel->maps.weir_cgroups), &my_cgid, &ep, BPF_ANY),
		0);
}

static void test_egress_policy(void **state)
{
	struct pkt ok = make_pkt("10.1.0.2", "10.2.0.9", IPPROTO_TCP, 40000, 443, 100);
	struct pkt bad_port = make_pkt("10.1.0.2", "10.2.0.9", IPPROTO_TCP, 40000, 80, 10);
	struct pkt denied = make_pkt("10.1.0.2", "10.9.0.9", IPPROTO_TCP, 40000, 443, 0);
	struct pkt dns = make_pkt("10.1.0.2", "192.0.2.53", IPPROTO_UDP, 5353, 53, 30);
	struct pkt dns6 = make_pkt("fd00::2", "fd01::53", IPPROTO_UDP, 5353, 53, 30);
	struct pkt ping = make_pkt("10.1.0.2", "10.2.0.9", IPPROTO_ICMP, 8 << 8, 77, 56);
	struct weir_counters c;

	setup_endpoint("allow 10.0.0.0/8 tcp/443,tcp/8000-8100; allow any udp/53; deny 10.9.0.0/16",
		       NULL, false);
	assert_int_equal(egress(&ok), 1);
	assert_int_equal(egress(&bad_port), 0);
	assert_int_equal(egress(&denied), 0);
	assert_int_equal(egress(&dns), 1);
	assert_int_equal(egress(&dns6), 1);
	assert_int_equal(egress(&ping), 0);

	c = counters();
	/* bytes are the L3 length: IP header + L4 header + payload */
	assert_int_equal(c.dir[WEIR_EGRESS].proto[WEIR_PC_TCP].packets, 1);
	assert_int_equal(c.dir[WEIR_EGRESS].proto[WEIR_PC_TCP].bytes, 20 + 20 + 100);
	assert_int_equal(c.dir[WEIR_EGRESS].proto[WEIR_PC_UDP].packets, 2);
	assert_int_equal(c.dir[WEIR_EGRESS].proto[WEIR_PC_UDP].bytes,
			 (20 + 8 + 30) + (40 + 8 + 30));
	assert_int_equal(c.dir[WEIR_EGRESS].policy_dropped.packets, 3);
	assert_int_equal(c.dir[WEIR_EGRESS].policy_dropped.bytes,
			 (20 + 20 + 10) + (20 + 20) + (20 + 8 + 56));
	assert_int_equal(c.dir[WEIR_INGRESS].proto[WEIR_PC_TCP].packets, 0);
}

static void test_replies_pass(void **state)
{
	struct pkt syn = make_pkt("10.1.0.2", "10.2.0.9", IPPROTO_TCP, 40000, 443, 0);
	struct pkt synack = make_pkt("10.2.0.9", "10.1.0.2", IPPROTO_TCP, 443, 40000, 0);
	struct pkt other = make_pkt("10.2.0.9", "10.1.0.2", IPPROTO_TCP, 443, 40001, 0);
	struct pkt echo = make_pkt("10.1.0.2", "10.2.0.9", IPPROTO_ICMP, 8 << 8, 99, 8);
	struct pkt echo_reply = make_pkt("10.2.0.9", "10.1.0.2", IPPROTO_ICMP, 0, 99, 8);
	struct pkt in_syn = make_pkt("10.3.0.1", "10.1.0.2", IPPROTO_TCP, 50000, 8080, 0);
	struct pkt out_synack = make_pkt("10.1.0.2", "10.3.0.1", IPPROTO_TCP, 8080, 50000, 0);

	/* both directions default-deny */
	setup_endpoint("allow 10.2.0.0/16 tcp/443, icmp", "allow 10.3.0.0/16 tcp/8080", false);
	assert_int_equal(ingress(&synack), 0); /* no flow yet: unsolicited */
	assert_int_equal(egress(&syn), 1);
	assert_int_equal(ingress(&synack), 1); /* the reply of a tracked flow */
	assert_int_equal(ingress(&other), 0);  /* another port pair is another flow */
	assert_int_equal(egress(&echo), 1);
	assert_int_equal(ingress(&echo_reply), 1);
	assert_int_equal(egress(&out_synack), 0); /* not allowed out by itself */
	assert_int_equal(ingress(&in_syn), 1);
	assert_int_equal(egress(&out_synack), 1); /* but as the reply of an allowed inbound */
}

static void test_replies_with_one_sided_policy(void **state)
{
	struct pkt in_syn = make_pkt("192.0.2.7", "10.1.0.2", IPPROTO_TCP, 50000, 80, 0);
	struct pkt out_synack = make_pkt("10.1.0.2", "192.0.2.7", IPPROTO_TCP, 80, 50000, 0);
	struct pkt out_new = make_pkt("10.1.0.2", "192.0.2.7", IPPROTO_TCP, 41000, 80, 0);

	/* ingress open, egress restricted: a server must still answer its clients */
	setup_endpoint("allow 10.0.0.0/8", NULL, false);
	assert_int_equal(ingress(&in_syn), 1);
	assert_int_equal(egress(&out_synack), 1);
	assert_int_equal(egress(&out_new), 0);
}

static void test_audit_counts_but_passes(void **state)
{
	struct pkt denied = make_pkt("10.1.0.2", "10.9.0.9", IPPROTO_UDP, 1000, 9999, 12);
	struct weir_counters c;

	setup_endpoint("deny 10.9.0.0/16; allow any", NULL, true);
	assert_int_equal(egress(&denied), 1);
	assert_int_equal(egress(&denied), 1);
	c = counters();
	assert_int_equal(c.dir[WEIR_EGRESS].audit_denied.packets, 2);
	assert_int_equal(c.dir[WEIR_EGRESS].audit_denied.bytes, 2 * (20 + 8 + 12));
	assert_int_equal(c.dir[WEIR_EGRESS].proto[WEIR_PC_UDP].packets, 2);
	assert_int_equal(c.dir[WEIR_EGRESS].policy_dropped.packets, 0);
}

static void test_ipv6_extension_headers_and_ndp(void **state)
{
	struct pkt p = make_pkt("fd00::2", "fd01::1", IPPROTO_TCP, 40000, 443, 0);
	struct pkt ns = make_pkt("fd00::2", "ff02::1:ff00:1", IPPROTO_ICMPV6, 135 << 8, 0, 16);
	struct pkt hbh = {};

	/* insert an 8-byte hop-by-hop header before TCP */
	memcpy(hbh.buf, p.buf, 14 + 40);
	hbh.buf[14 + 6] = 0; /* next header: hop-by-hop */
	hbh.buf[14 + 40] = IPPROTO_TCP;
	hbh.buf[14 + 41] = 0; /* 8 bytes */
	memcpy(hbh.buf + 14 + 48, p.buf + 14 + 40, 20);
	put16(hbh.buf + 14 + 4, 8 + 20);
	hbh.len = p.len + 8;

	setup_endpoint("allow fd01::/64 tcp/443", NULL, false);
	assert_int_equal(egress(&hbh), 1);
	hbh.buf[14 + 48 + 2] = 0;
	hbh.buf[14 + 48 + 3] = 80; /* dport 80 */
	assert_int_equal(egress(&hbh), 0);
	assert_int_equal(egress(&ns), 1); /* neighbour discovery is never filtered */
}

static void test_tcp_resets_counted(void **state)
{
	struct pkt rst = make_pkt("10.2.0.9", "10.1.0.2", IPPROTO_TCP, 443, 40000, 0);
	struct pkt out = make_pkt("10.1.0.2", "10.2.0.9", IPPROTO_TCP, 40001, 443, 0);
	struct weir_counters c;

	setup_endpoint(NULL, NULL, false);
	rst.buf[14 + 20 + 13] = 0x14; /* RST|ACK */
	out.buf[14 + 20 + 13] = 0x04; /* RST */
	assert_int_equal(ingress(&rst), 1);
	assert_int_equal(egress(&out), 1);
	assert_int_equal(egress(&out), 1);
	c = counters();
	assert_int_equal(c.dir[WEIR_INGRESS].tcp_resets, 1);
	assert_int_equal(c.dir[WEIR_EGRESS].tcp_resets, 2);
}

static void test_gso_counts_segments(void **state)
{
	struct pkt big = make_pkt("10.1.0.2", "10.2.0.9", IPPROTO_TCP, 40000, 443, 200);
	struct weir_counters c;

	setup_endpoint(NULL, NULL, false);
	assert_int_equal(run(skel->progs.weir_egress, &big, false, 4), 1);
	c = counters();
	/* 4 segments on the wire, each with its own 40 bytes of headers */
	assert_int_equal(c.dir[WEIR_EGRESS].proto[WEIR_PC_TCP].packets, 4);
	assert_int_equal(c.dir[WEIR_EGRESS].proto[WEIR_PC_TCP].bytes, 40 + 200 + 3 * 40);
}

/* ---- the container's interface (weir_iface_egress, tcx/clsact on the host-side veth) ---- */

#define EP2 8

static int iface(const struct pkt *p)
{
	return run(skel->progs.weir_iface_egress, p, false, 0);
}

static void iface_set(uint32_t n, uint32_t a, uint32_t b)
{
	struct weir_iface v = {.n = n, .ep = {a, b}};
	uint32_t key = (uint32_t)ifindex;

	if (!n) {
		bpf_map_delete_elem(bpf_map__fd(skel->maps.weir_ifaces), &key);
		return;
	}
	assert_int_equal(
		bpf_map_update_elem(bpf_map__fd(skel->maps.weir_ifaces), &key, &v, BPF_ANY), 0);
}

/* Endpoint EP2: active, with or without an ingress policy that allows nothing. */
static void ep2_set(bool deny_all)
{
	struct weir_endpoint epv = {.flags = WEIR_EP_ACTIVE, .gen = 5};
	uint32_t ep = EP2;

	if (deny_all)
		epv.flags |= WEIR_EP_POLICY_INGRESS; /* no policy key: nothing is allowed */
	assert_int_equal(
		bpf_map_update_elem(bpf_map__fd(skel->maps.weir_endpoints), &ep, &epv, BPF_ANY), 0);
}

static void test_iface_ingress(void **state)
{
	struct pkt echo = make_pkt("10.3.0.1", "10.1.0.2", IPPROTO_ICMP, 8 << 8, 5, 56);
	struct pkt echo6 = make_pkt("fd03::1", "fd01::2", IPPROTO_ICMPV6, 128 << 8, 5, 56);
	struct pkt echo_ok = make_pkt("10.4.0.1", "10.1.0.2", IPPROTO_ICMP, 8 << 8, 6, 56);
	struct pkt syn_closed = make_pkt("10.3.0.1", "10.1.0.2", IPPROTO_TCP, 50000, 9001, 0);
	struct pkt syn_ok = make_pkt("10.3.0.1", "10.1.0.2", IPPROTO_TCP, 50000, 80, 0);
	struct pkt unreach = make_pkt("10.3.0.1", "10.1.0.2", IPPROTO_ICMP, 3 << 8, 0, 28);
	struct pkt ns6 = make_pkt("fd03::1", "fd01::2", IPPROTO_ICMPV6, 135 << 8, 0, 16);
	struct pkt out_syn = make_pkt("10.1.0.2", "10.9.0.9", IPPROTO_TCP, 41000, 443, 0);
	struct pkt in_synack = make_pkt("10.9.0.9", "10.1.0.2", IPPROTO_TCP, 443, 41000, 0);
	struct pkt arp = echo;
	struct weir_counters c;

	arp.buf[12] = 0x08;
	arp.buf[13] = 0x06;
	setup_endpoint(NULL, "allow 10.4.0.0/16 icmp; allow 10.3.0.0/16 tcp/80", false);
	ep2_set(true);
	iface_set(0, 0, 0);
	assert_int_equal(iface(&arp), WEIR_TC_NEXT);	 /* not IP: nothing to judge */
	assert_int_equal(iface(&echo_ok), WEIR_TC_DROP); /* attached, not registered: fail closed */

	iface_set(1, EP, 0);
	assert_int_equal(iface(&echo), WEIR_TC_DROP);
	assert_int_equal(iface(&echo6), WEIR_TC_DROP);
	assert_int_equal(iface(&syn_closed), WEIR_TC_DROP);
	assert_int_equal(iface(&echo_ok), WEIR_TC_NEXT);
	assert_int_equal(iface(&syn_ok), WEIR_TC_NEXT);
	assert_int_equal(iface(&unreach), WEIR_TC_NEXT); /* ICMP errors: the kernel matches them */
	assert_int_equal(iface(&ns6), WEIR_TC_NEXT);	 /* neighbour discovery */
	assert_int_equal(iface(&in_synack), WEIR_TC_DROP);
	assert_int_equal(egress(&out_syn), 1);		   /* the container opens the flow ... */
	assert_int_equal(iface(&in_synack), WEIR_TC_NEXT); /* ... and its reply passes */
	c = counters();
	/* only drops are counted here, each once, as IP lengths (no Ethernet header) */
	assert_int_equal(c.dir[WEIR_INGRESS].policy_dropped.packets, 4);
	assert_int_equal(c.dir[WEIR_INGRESS].policy_dropped.bytes,
			 (20 + 8 + 56) + (40 + 8 + 56) + (20 + 20) + (20 + 20));
	assert_int_equal(c.dir[WEIR_INGRESS].proto[WEIR_PC_ICMP].packets, 0);
	assert_int_equal(c.dir[WEIR_INGRESS].proto[WEIR_PC_TCP].packets, 0);

	/* a pod: a packet passes when any endpoint lets it in; drops count at the first */
	iface_set(2, EP, EP2);
	assert_int_equal(iface(&echo), WEIR_TC_DROP);
	ep2_set(false); /* EP2's ingress is open */
	assert_int_equal(iface(&echo), WEIR_TC_NEXT);
	ep2_set(true);
	iface_set(2, EP2, EP);
	assert_int_equal(iface(&echo_ok), WEIR_TC_NEXT); /* EP allows it */
	c = counters();
	assert_int_equal(c.dir[WEIR_INGRESS].policy_dropped.packets, 5);
	assert_int_equal(iface(&echo), WEIR_TC_DROP); /* counted at EP2 now, the first */
	c = counters();
	assert_int_equal(c.dir[WEIR_INGRESS].policy_dropped.packets, 5);

	/* audit mode never drops here */
	setup_endpoint(NULL, "allow 10.4.0.0/16 icmp", true);
	iface_set(1, EP, 0);
	assert_int_equal(iface(&echo), WEIR_TC_NEXT);
	assert_int_equal(iface(&syn_closed), WEIR_TC_NEXT);
	c = counters();
	assert_int_equal(c.dir[WEIR_INGRESS].policy_dropped.packets, 0);
	assert_int_equal(c.dir[WEIR_INGRESS].audit_denied.packets, 0); /* the cgroup's to count */
	iface_set(0, 0, 0);
}

/* The IPv4 header checksum of the packet, as a receiver checks it: 0 when it is right. */
static uint16_t ip4_csum(const uint8_t *ip)
{
	uint32_t sum = 0;

	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static int iface_out(const struct pkt *p, struct pkt *out)
{
	struct __sk_buff ctx = {.ifindex = ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p->buf, .data_size_in = p->len,
		    .data_out = out->buf, .data_size_out = sizeof(out->buf), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx));

	if (bpf_prog_test_run_opts(bpf_program__fd(skel->progs.weir_iface_egress), &opts))
		fail_msg("test run: %s", strerror(errno));
	out->len = opts.data_size_out;
	return (int)opts.retval;
}

/*
 * EP's ingress shaped at the interface: 2,400 B/s, marks past 450 ms ahead, drops past 950 ms.
 * A packet of the tests (240 IP bytes) costs 100 ms of the rate: far more than a test run takes,
 * even in a TCG guest, so the counts below do not depend on the machine's speed.
 */
static void shape_iface_set(uint32_t flags)
{
	struct weir_endpoint epv = {.flags = WEIR_EP_ACTIVE | flags};
	uint32_t ep = EP;
	static uint32_t gen = 100;

	epv.gen = ++gen; /* a fresh, idle limiter */
	epv.shape[WEIR_INGRESS].rate = 2400;
	epv.shape[WEIR_INGRESS].burst_ns = 950000000;
	epv.shape[WEIR_INGRESS].mark_ns = 450000000;
	assert_int_equal(
		bpf_map_update_elem(bpf_map__fd(skel->maps.weir_endpoints), &ep, &epv, BPF_ANY), 0);
}

/*
 * weir_iface_egress shapes a marked endpoint's ingress: packets pass, then (ahead of the rate
 * by more than the mark threshold) pass CE-marked with a right IPv4 checksum, then (past the
 * burst) are dropped, each counted once in the endpoint's ingress counters; the cgroup ingress
 * program then shapes nothing of it. Each packet costs 100 ms of the rate, and
 * back-to-back test runs take far less: 4 pass, 5 are marked, the rest dropped.
 */
static void test_iface_shaping(void **state)
{
	struct pkt ect = make_pkt("10.3.0.1", "10.1.0.2", IPPROTO_TCP, 80, 41000, 200);
	struct pkt ect6 = make_pkt("fd03::1", "fd01::2", IPPROTO_UDP, 53, 41000, 192);
	struct pkt plain = ect, out;
	int pass = 0, mark = 0, drop = 0, r;
	struct weir_counters c;
	uint8_t *ip = ect.buf + 14;

	(void)state;
	setup_endpoint(NULL, NULL, false);
	ip[1] = 0x02; /* ECT(0) */
	put16(ip + 10, 0);
	put16(ip + 10, ip4_csum(ip));
	ect6.buf[15] |= 0x20; /* traffic class ECT(0): ECN is bits 4-5 of the second byte */
	plain.buf[15] = 0;
	put16(plain.buf + 24, 0);
	put16(plain.buf + 24, ip4_csum(plain.buf + 14));
	iface_set(1, EP, 0);

	shape_iface_set(WEIR_EP_SHAPE_IFACE);
	for (int i = 0; i < 12; i++) {
		r = iface_out(&ect, &out);
		if (r == WEIR_TC_DROP) {
			drop++;
			continue;
		}
		assert_int_equal(r, WEIR_TC_NEXT);
		assert_int_equal(ip4_csum(out.buf + 14), 0);
		if ((out.buf[15] & 3) == 3)
			mark++;
		else
			pass++;
	}
	assert_int_equal(pass, 4);
	assert_int_equal(mark, 5);
	assert_int_equal(drop, 3);
	c = counters();
	assert_int_equal(c.dir[WEIR_INGRESS].ce_marked, 5);
	assert_int_equal(c.dir[WEIR_INGRESS].shaped_dropped.packets, 3);
	assert_int_equal(c.dir[WEIR_INGRESS].shaped_dropped.bytes, 3 * 240);
	/* the cgroup program counts what passes and shapes none of it: no second limiter */
	for (int i = 0; i < 20; i++)
		assert_int_equal(ingress(&ect), 1);
	c = counters();
	assert_int_equal(c.dir[WEIR_INGRESS].shaped_dropped.packets, 3);
	assert_int_equal(c.dir[WEIR_INGRESS].ce_marked, 5);

	/* not ECN-capable: passes unmarked, uncounted, where an ECT one would be marked */
	shape_iface_set(WEIR_EP_SHAPE_IFACE);
	for (int i = 0; i < 6; i++)
		assert_int_equal(iface_out(&plain, &out), WEIR_TC_NEXT);
	assert_int_equal(out.buf[15] & 3, 0);
	assert_int_equal(ip4_csum(out.buf + 14), 0);
	assert_int_equal(counters().dir[WEIR_INGRESS].ce_marked, 5);

	/* IPv6: the traffic class's ECN bits */
	shape_iface_set(WEIR_EP_SHAPE_IFACE);
	for (int i = 0; i < 6; i++)
		assert_int_equal(iface_out(&ect6, &out), WEIR_TC_NEXT);
	assert_int_equal(out.buf[15] & 0x30, 0x30);
	assert_int_equal(counters().dir[WEIR_INGRESS].ce_marked, 7); /* the 5th and 6th */

	/* without the bit the interface shapes nothing, the cgroup program does */
	shape_iface_set(0);
	for (int i = 0; i < 12; i++)
		assert_int_equal(iface_out(&ect, &out), WEIR_TC_NEXT);
	for (int i = 0; i < 12; i++)
		ingress(&ect);
	assert_true(counters().dir[WEIR_INGRESS].shaped_dropped.packets > 3);
	iface_set(0, 0, 0);
}

static void test_unregistered_and_malformed(void **state)
{
	struct pkt p = make_pkt("10.1.0.2", "10.2.0.9", IPPROTO_TCP, 40000, 443, 0);
	struct pkt no_l4 = p, bad_ihl = p;

	setup_endpoint("allow any tcp/443", NULL, false);
	assert_int_equal(egress(&p), 1);
	no_l4.len = 14 + 20; /* TCP without its header: the port is unknown */
	assert_int_equal(egress(&no_l4), 0);
	bad_ihl.buf[14] = 0x44; /* an IPv4 header shorter than the minimum */
	assert_int_equal(egress(&bad_ihl), 0);
	assert_int_equal(bpf_map_delete_elem(bpf_map__fd(skel->maps.weir_cgroups), &my_cgid), 0);
	assert_int_equal(egress(&p), 0); /* attached but not registered: fail closed */
}

static uint64_t rs = 88172645463325252ULL;
static uint32_t rnd(uint32_t n)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (uint32_t)(rs % n);
}

/* ---- sendmsg: replies to UDP flows a peer opened --------------------------------------- */

#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif

static int child_send(const struct send_req *q)
{
	bool v6 = q->family == WEIR_V6 || q->mapped;
	int one = 1, zero = 0, fd, e = 0;
	struct sockaddr_storage dst = {}, local = {};
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} ctl = {};
	char data[8] = "weir";
	struct iovec iov = {.iov_base = data, .iov_len = sizeof(data)};
	struct msghdr msg = {.msg_name = &dst, .msg_iov = &iov, .msg_iovlen = 1};
	socklen_t len;

	fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (v6) {
		struct sockaddr_in6 *l6 = (struct sockaddr_in6 *)&local;
		struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&dst;

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, q->mapped ? &zero : &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
		l6->sin6_family = AF_INET6;
		l6->sin6_port = htons(q->lport);
		d6->sin6_family = AF_INET6;
		d6->sin6_port = htons(q->rport);
		if (q->mapped) {
			d6->sin6_addr.s6_addr[10] = d6->sin6_addr.s6_addr[11] = 0xff;
			memcpy(&d6->sin6_addr.s6_addr[12], q->raddr, 4);
		} else {
			memcpy(&d6->sin6_addr, q->raddr, 16);
		}
		len = sizeof(*l6);
		msg.msg_namelen = sizeof(*d6);
	} else {
		struct sockaddr_in *l4 = (struct sockaddr_in *)&local;
		struct sockaddr_in *d4 = (struct sockaddr_in *)&dst;

		l4->sin_family = AF_INET;
		l4->sin_port = htons(q->lport);
		d4->sin_family = AF_INET;
		d4->sin_port = htons(q->rport);
		memcpy(&d4->sin_addr, q->raddr, 4);
		len = sizeof(*l4);
		msg.msg_namelen = sizeof(*d4);
	}
	if (bind(fd, (struct sockaddr *)&local, len)) {
		e = errno;
		close(fd);
		return e ? e : EIO;
	}
	if (q->have_src) {
		struct cmsghdr *c;

		msg.msg_control = ctl.buf;
		c = (struct cmsghdr *)ctl.buf;
		if (v6) {
			struct in6_pktinfo pi = {};

			if (q->mapped) {
				pi.ipi6_addr.s6_addr[10] = pi.ipi6_addr.s6_addr[11] = 0xff;
				memcpy(&pi.ipi6_addr.s6_addr[12], q->src, 4);
			} else {
				memcpy(&pi.ipi6_addr, q->src, 16);
			}
			c->cmsg_level = IPPROTO_IPV6;
			c->cmsg_type = IPV6_PKTINFO;
			c->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(c), &pi, sizeof(pi));
			msg.msg_controllen = CMSG_SPACE(sizeof(pi));
		} else {
			struct in_pktinfo pi = {};

			memcpy(&pi.ipi_spec_dst, q->src, 4);
			c->cmsg_level = IPPROTO_IP;
			c->cmsg_type = IP_PKTINFO;
			c->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(c), &pi, sizeof(pi));
			msg.msg_controllen = CMSG_SPACE(sizeof(pi));
		}
	}
	if (sendmsg(fd, &msg, 0) < 0)
		e = errno;
	close(fd);
	return e;
}

static void __attribute__((noreturn)) child_main(int req, int resp)
{
	char procs[PATH_MAX + 16];
	struct send_req q;
	int fd, r = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", snd.cg);
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1 || unshare(CLONE_NEWNET))
		r = errno ? errno : EIO;
	if (fd >= 0)
		close(fd);
	if (write(resp, &r, sizeof(r)) != sizeof(r) || r)
		_exit(1);
	while (read(req, &q, sizeof(q)) == sizeof(q)) {
		r = child_send(&q);
		if (write(resp, &r, sizeof(r)) != sizeof(r))
			break;
	}
	_exit(0);
}

static void sender_stop(void)
{
	for (int i = 0; i < 2; i++)
		if (snd.links[i])
			bpf_link__destroy(snd.links[i]);
	snd.links[0] = snd.links[1] = NULL;
	if (snd.req >= 0)
		close(snd.req);
	if (snd.resp >= 0)
		close(snd.resp);
	snd.req = snd.resp = -1;
	if (snd.pid > 0) {
		kill(snd.pid, SIGKILL);
		waitpid(snd.pid, NULL, 0);
	}
	snd.pid = -1;
	if (snd.cg[0])
		rmdir(snd.cg);
	snd.cg[0] = '\0';
	snd.cgid = 0;
}

/* The child, its cgroup and the two sendmsg programs linked to it; 0 or -errno. */
static int sender_start(void)
{
	char mnt[PATH_MAX];
	int req[2], resp[2], r = 0, cgfd;

	if (weir_cgroup2_mount(mnt, sizeof(mnt)))
		return -ENOENT;
	snprintf(snd.cg, sizeof(snd.cg), "%s/weir-test-datapath-%d", mnt, getpid());
	if (mkdir(snd.cg, 0755) || weir_cgroup_id(snd.cg, &snd.cgid)) {
		r = -errno;
		snd.cg[0] = '\0';
		return r;
	}
	cgfd = open(snd.cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0)
		return -errno;
	snd.links[0] = bpf_program__attach_cgroup(skel->progs.weir_sendmsg4, cgfd);
	snd.links[1] = bpf_program__attach_cgroup(skel->progs.weir_sendmsg6, cgfd);
	close(cgfd);
	if (!snd.links[0] || !snd.links[1])
		return -EIO;
	if (pipe2(req, O_CLOEXEC) || pipe2(resp, O_CLOEXEC))
		return -errno;
	snd.pid = fork();
	if (snd.pid < 0)
		return -errno;
	if (snd.pid == 0) {
		close(req[1]);
		close(resp[0]);
		child_main(req[0], resp[1]);
	}
	close(req[0]);
	close(resp[1]);
	snd.req = req[1];
	snd.resp = resp[0];
	if (read(snd.resp, &r, sizeof(r)) != sizeof(r))
		return -EIO;
	return -r;
}

/* The errno of one datagram from lport to raddr:rport (0: sent). */
static int send_from(const char *laddr, uint16_t lport, const char *raddr, uint16_t rport,
		     bool mapped)
{
	struct send_req q = {.lport = lport, .rport = rport, .mapped = mapped};
	int r;

	q.family = strchr(raddr, ':') ? WEIR_V6 : WEIR_V4;
	inet_pton(q.family == WEIR_V4 ? AF_INET : AF_INET6, raddr, q.raddr);
	if (laddr) {
		q.have_src = 1;
		inet_pton(q.family == WEIR_V4 ? AF_INET : AF_INET6, laddr, q.src);
	}
	if (write(snd.req, &q, sizeof(q)) != sizeof(q) ||
	    read(snd.resp, &r, sizeof(r)) != sizeof(r))
		fail_msg("the sender child is gone");
	return r;
}

/* "EPERM" (weir refused) or "sent" (weir let it through: anything else) */
static const char *sent(int e)
{
	return e == EPERM ? "EPERM" : "sent";
}

static void udp_in(const char *src, uint16_t sport, const char *dst, uint16_t dport, int want)
{
	struct pkt p = make_pkt(src, dst, IPPROTO_UDP, sport, dport, 20);

	assert_int_equal(ingress(&p), want);
}

static void test_udp_replies_at_sendmsg(void **state)
{
	struct weir_counters c;

	(void)state;
	/* issue 10's example: egress names one TCP service, ingress is open */
	setup_endpoint("allow 10.150.0.64/26 tcp/65533; allow 10.150.0.64/26 udp/9", NULL, false);
	assert_string_equal(sent(send_from(NULL, 53, "192.0.2.7", 40000, false)), "EPERM");
	assert_string_equal(sent(send_from(NULL, 53, "10.150.0.70", 9, false)), "sent");
	udp_in("192.0.2.7", 40000, "10.1.0.2", 53, 1);
	udp_in("fd01::7", 40000, "fd00::2", 53, 1);
	/* the reply, from a wildcard-bound socket: IPv4, IPv4-mapped, IPv6 */
	assert_string_equal(sent(send_from(NULL, 53, "192.0.2.7", 40000, false)), "sent");
	assert_string_equal(sent(send_from(NULL, 53, "192.0.2.7", 40000, true)), "sent");
	assert_string_equal(sent(send_from(NULL, 53, "fd01::7", 40000, false)), "sent");
	/* the source address known: the flow itself decides */
	assert_string_equal(sent(send_from("10.1.0.2", 53, "192.0.2.7", 40000, false)), "sent");
	assert_string_equal(sent(send_from("10.1.0.2", 53, "192.0.2.7", 40000, true)), "sent");
	assert_string_equal(sent(send_from("fd00::2", 53, "fd01::7", 40000, false)), "sent");
	assert_string_equal(sent(send_from("10.1.0.3", 53, "192.0.2.7", 40000, false)), "EPERM");
	assert_string_equal(sent(send_from("fd00::3", 53, "fd01::7", 40000, false)), "EPERM");
	/* no allow leaks: another peer, peer port, local port or family */
	assert_string_equal(sent(send_from(NULL, 53, "192.0.2.8", 40000, false)), "EPERM");
	assert_string_equal(sent(send_from(NULL, 53, "192.0.2.7", 40001, false)), "EPERM");
	assert_string_equal(sent(send_from(NULL, 54, "192.0.2.7", 40000, false)), "EPERM");
	assert_string_equal(sent(send_from(NULL, 53, "fd01::8", 40000, false)), "EPERM");
	c = counters();
	assert_int_equal(c.dir[WEIR_EGRESS].denied_connects, 7);
	assert_int_equal(c.dir[WEIR_EGRESS].audit_denied_connects, 0);
	/* sendmsg counts no packet: the packet path does */
	assert_int_equal(c.dir[WEIR_EGRESS].proto[WEIR_PC_UDP].packets, 0);
	assert_int_equal(c.dir[WEIR_INGRESS].proto[WEIR_PC_UDP].packets, 2);
}

static void test_udp_replies_need_allowed_ingress(void **state)
{
	struct weir_counters c;
	struct weir_endpoint epv;
	uint32_t ep = EP;
	int fd = bpf_map__fd(skel->maps.weir_endpoints);

	(void)state;
	setup_endpoint("allow 10.150.0.64/26 tcp/65533", "allow 192.0.2.0/24 udp/53", false);
	udp_in("198.51.100.1", 40000, "10.1.0.2", 53, 0); /* dropped: no flow */
	assert_string_equal(sent(send_from(NULL, 53, "198.51.100.1", 40000, false)), "EPERM");
	udp_in("192.0.2.7", 40000, "10.1.0.2", 54, 0); /* another port: dropped */
	assert_string_equal(sent(send_from(NULL, 54, "192.0.2.7", 40000, false)), "EPERM");
	udp_in("192.0.2.7", 40000, "10.1.0.2", 53, 1);
	assert_string_equal(sent(send_from(NULL, 53, "192.0.2.7", 40000, false)), "sent");
	c = counters();
	assert_int_equal(c.dir[WEIR_EGRESS].denied_connects, 2);
	assert_int_equal(c.dir[WEIR_INGRESS].policy_dropped.packets, 2);

	/* a new registration of the endpoint (another gen) inherits no flow */
	assert_int_equal(bpf_map_lookup_elem(fd, &ep, &epv), 0);
	epv.gen++;
	assert_int_equal(bpf_map_update_elem(fd, &ep, &epv, BPF_ANY), 0);
	assert_string_equal(sent(send_from(NULL, 53, "192.0.2.7", 40000, false)), "EPERM");
	assert_string_equal(sent(send_from("10.1.0.2", 53, "192.0.2.7", 40000, false)), "EPERM");
	udp_in("192.0.2.7", 40000, "10.1.0.2", 53, 1);
	assert_string_equal(sent(send_from(NULL, 53, "192.0.2.7", 40000, false)), "sent");
}

static void test_udp_replies_audit(void **state)
{
	struct weir_counters c;

	(void)state;
	setup_endpoint("allow 10.150.0.64/26 tcp/65533", "allow 192.0.2.0/24 udp/53", true);
	/* denied but passed: it opens no flow, so its reply is itself judged (and audited) */
	udp_in("198.51.100.1", 40000, "10.1.0.2", 53, 1);
	assert_string_equal(sent(send_from(NULL, 53, "198.51.100.1", 40000, false)), "sent");
	c = counters();
	assert_int_equal(c.dir[WEIR_INGRESS].audit_denied.packets, 1);
	assert_int_equal(c.dir[WEIR_EGRESS].audit_denied_connects, 1);
	/* allowed: its reply is a reply, nothing to audit */
	udp_in("192.0.2.7", 40000, "10.1.0.2", 53, 1);
	assert_string_equal(sent(send_from(NULL, 53, "192.0.2.7", 40000, false)), "sent");
	c = counters();
	assert_int_equal(c.dir[WEIR_EGRESS].audit_denied_connects, 1);
	assert_int_equal(c.dir[WEIR_EGRESS].denied_connects, 0);
}

/* ---- conntrack budgets ---------------------------------------------------------------- */

#define EP2    8
#define BUDGET 64
#define FLOOD  5000

struct ct_flood {
	int victim_reply;   /* the victim's reply after the flood: 1 passed */
	int flooder_reply;  /* the flooder's own first flow's reply after the flood */
	uint64_t inserted;  /* the flooder's inserts, counted by the datapath */
	uint64_t victim_in; /* the victim's inserts */
};

/*
 * A victim (EP2) opens a TCP flow in a default-deny setup, a flooder (EP) then opens FLOOD UDP
 * flows of two packets each, then the victim's SYN-ACK comes again: it needs the victim's
 * entry. The kernel's LRU gives entries that were used again a second chance, so the flood's
 * flows are used twice, as flows with an answer are.
 */
static struct ct_flood ct_flood_run(bool shared_map)
{
	struct pkt syn = make_pkt("10.1.0.3", "10.2.0.9", IPPROTO_TCP, 40000, 443, 0);
	struct pkt synack = make_pkt("10.2.0.9", "10.1.0.3", IPPROTO_TCP, 443, 40000, 0);
	struct pkt first = make_pkt("10.1.0.2", "10.2.0.7", IPPROTO_UDP, 1000, 7, 8);
	struct pkt first_reply = make_pkt("10.2.0.7", "10.1.0.2", IPPROTO_UDP, 7, 1000, 8);
	struct ct_flood out = {};
	int ct = bpf_map__fd(skel->maps.weir_ct);

	setup_ep(EP2, "allow 10.2.0.0/16 tcp/443", "allow 10.3.0.0/16 tcp/8080", false, BUDGET);
	setup_ep(EP, "allow any udp", "allow 10.3.0.0/16 tcp/8080", false, BUDGET);
	if (shared_map) {
		/* what one node-wide map did: both endpoints' entries in one LRU */
		int fd = weir_ct_open(ct, NULL, EP);

		assert_true(fd >= 0);
		assert_int_equal(bpf_map_update_elem(ct, &(uint32_t){EP2}, &fd, BPF_ANY), 0);
		close(fd);
	}
	become(EP2);
	assert_int_equal(ingress(&synack), 0); /* unsolicited */
	assert_int_equal(egress(&syn), 1);
	assert_int_equal(ingress(&synack), 1);

	become(EP);
	assert_int_equal(egress(&first), 1);
	assert_int_equal(ingress(&first_reply), 1);
	for (uint32_t i = 0; i < FLOOD; i++) {
		struct pkt p = make_pkt("10.1.0.2", i & 1 ? "10.2.0.8" : "10.4.0.8", IPPROTO_UDP,
					(uint16_t)(2000 + i / 40000), (uint16_t)(1 + i % 40000), 8);

		/* twice: a flow seen again is one the LRU keeps over flows seen once */
		assert_int_equal(egress(&p), 1);
		assert_int_equal(egress(&p), 1);
	}
	out.flooder_reply = ingress(&first_reply);
	out.inserted = counters_of(EP).dir[WEIR_EGRESS].ct_inserted;

	become(EP2);
	out.victim_reply = ingress(&synack);
	out.victim_in = counters_of(EP2).dir[WEIR_EGRESS].ct_inserted;
	become(EP);
	return out;
}

/* A flooding endpoint evicts its own entries, never another endpoint's. */
static void test_ct_budget_isolates(void **state)
{
	struct ct_flood f;
	struct weir_ct_usage u, v;
	int ct = bpf_map__fd(skel->maps.weir_ct);

	(void)state;
	f = ct_flood_run(false);
	assert_int_equal(f.victim_reply, 1);
	assert_int_equal(f.flooder_reply, 0); /* its own first flow went to make room */
	/* every flow the flooder opened was added once: the first, then the flood */
	assert_int_equal(f.inserted, 1 + FLOOD);
	assert_int_equal(f.victim_in, 1);
	assert_int_equal(weir_ct_usage(ct, NULL, EP, &u), 0);
	assert_int_equal(u.budget, BUDGET);
	assert_true(u.entries <= BUDGET);
	assert_true(u.entries > 0);
	assert_int_equal(weir_ct_usage(ct, NULL, EP2, &v), 0);
	assert_int_equal(v.entries, 1);
	assert_true(u.memory > 0);
	print_message("flooder: %" PRIu64 " inserted, %" PRIu64 " left, %" PRIu64
		      " evicted; victim: %" PRIu64 " entry; %" PRIu64 " bytes per %u-entry map\n",
		      f.inserted, (uint64_t)u.entries, f.inserted - u.entries, (uint64_t)v.entries,
		      (uint64_t)u.memory, BUDGET);
}

/* The same run with one map for both, as the node-wide LRU was: the victim's reply is lost. */
static void test_ct_shared_map_would_evict(void **state)
{
	struct ct_flood f;

	(void)state;
	f = ct_flood_run(true);
	assert_int_equal(f.flooder_reply, 0);
	assert_int_equal(f.victim_reply, 0);
	/* leave EP2 as no other test expects it: its own map again */
	setup_ep(EP2, "allow any", NULL, false, BUDGET);
	become(EP);
}

/*
 * Random ingress and egress policies, random datagrams in and replies out, against a model:
 * a send passes when the egress policy allows it or when it answers a flow the peer opened
 * (an ingress datagram the ingress policy allowed, to that local port, and to that local
 * address when the sender names one).
 */
struct flow_model {
	uint8_t peer, pport, lport, laddr; /* indexes */
};

static void test_random_replies_in_kernel(void **state)
{
	static const char *const eg_rules[] = {
		"allow 10.1.0.0/16 udp/53",	  "allow 10.1.2.3 udp",
		"deny 10.1.2.0/24 udp/5000-6000", "allow any udp/5000",
		"allow 192.0.2.0/24 tcp/53",	  "allow fd01::/64 udp/53"};
	static const char *const in_rules[] = {"allow 10.1.0.0/16 udp/53",
					       "allow any udp/5353",
					       "deny 10.1.2.3",
					       "allow 192.0.2.0/24",
					       "allow fd01::/64 udp/53,udp/5353",
					       "allow any tcp"};
	static const char *const peers[] = {"10.1.2.3", "10.1.9.9", "192.0.2.1",
					    "10.2.0.1", "fd01::1",  "fd02::1"};
	static const char *const laddrs4[] = {"10.9.0.2", "10.9.0.3"};
	static const char *const laddrs6[] = {"fd09::2", "fd09::3"};
	static const uint16_t pports[] = {53, 5000, 40000};
	static const uint16_t lports[] = {53, 5353, 6000};
	unsigned int sends = 0, passed = 0, replies = 0;

	(void)state;
	for (int t = 0; t < 60; t++) {
		char eg[512] = "", in[512] = "";
		struct weir_policy pol = {};
		struct weir_error err = {};
		struct flow_model flows[64];
		size_t nflows = 0;
		uint64_t want_denied = 0;
		bool have_in = rnd(3);

		for (uint32_t i = 0, n = 1 + rnd(3); i < n; i++)
			sprintf(eg + strlen(eg), "%s%s", i ? "; " : "", eg_rules[rnd(6)]);
		for (uint32_t i = 0, n = 1 + rnd(3); have_in && i < n; i++)
			sprintf(in + strlen(in), "%s%s", i ? "; " : "", in_rules[rnd(6)]);
		assert_int_equal(weir_policy_parse_dir(&pol, WEIR_EGRESS, "egress.weir.io", eg,
						       &cfg.limits, &err),
				 0);
		if (have_in)
			assert_int_equal(weir_policy_parse_dir(&pol, WEIR_INGRESS,
							       "ingress.weir.io", in, &cfg.limits,
							       &err),
					 0);
		setup_endpoint(eg, have_in ? in : NULL, false);
		for (int k = 0; k < 40; k++) {
			uint8_t pi = (uint8_t)rnd(6), ppi = (uint8_t)rnd(3), li = (uint8_t)rnd(3);
			uint8_t ai = (uint8_t)rnd(2);
			const char *peer = peers[pi];
			bool v6 = strchr(peer, ':') != NULL;
			const char *laddr = v6 ? laddrs6[ai] : laddrs4[ai];
			uint8_t addr[16] = {};

			inet_pton(v6 ? AF_INET6 : AF_INET, peer, addr);
			if (rnd(2)) {
				/* a datagram in */
				int want = weir_policy_eval_reference(
					&pol, WEIR_INGRESS, v6 ? WEIR_V6 : WEIR_V4, addr,
					WEIR_PC_UDP, lports[li], true);
				bool known = false;

				for (size_t f = 0; f < nflows; f++)
					known |= flows[f].peer == pi && flows[f].pport == ppi &&
						 flows[f].lport == li && flows[f].laddr == ai;
				udp_in(peer, pports[ppi], laddr, lports[li], want || known);
				if (want && !known && nflows < sizeof(flows) / sizeof(flows[0]))
					flows[nflows++] = (struct flow_model){pi, ppi, li, ai};
				continue;
			} else {
				/* a datagram out, naming its source or not */
				bool named = rnd(2), reply = false;
				int want, got;

				for (size_t f = 0; f < nflows; f++)
					reply |= flows[f].peer == pi && flows[f].pport == ppi &&
						 flows[f].lport == li &&
						 (!named || flows[f].laddr == ai);
				want = weir_policy_eval_reference(&pol, WEIR_EGRESS,
								  v6 ? WEIR_V6 : WEIR_V4, addr,
								  WEIR_PC_UDP, pports[ppi], true) ||
				       reply;
				got = send_from(named ? laddr : NULL, lports[li], peer, pports[ppi],
						!v6 && rnd(2));
				if ((got != EPERM) != want)
					fail_msg("egress \"%s\", ingress \"%s\": %s:%u from %s:%u: "
						 "kernel %s, model %s%s",
						 eg, have_in ? in : "(open)", peer, pports[ppi],
						 named ? laddr : "*", lports[li], sent(got),
						 want ? "sent" : "EPERM",
						 reply ? " (a reply)" : "");
				want_denied += !want;
				sends++;
				passed += want;
				replies += reply;
			}
		}
		assert_int_equal(counters().dir[WEIR_EGRESS].denied_connects, want_denied);
		weir_policy_free(&pol);
	}
	print_message("%u datagrams sent through sendmsg (%u passed, %u replies)\n", sends, passed,
		      replies);
}

/* The real program against the reference evaluator, on random policies and packets. */

static void test_random_policies_in_kernel(void **state)
{
	static const char *const peers[] = {"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24",
					    "10.1.2.3",	  "any",	 "10.2.0.0/15"};
	static const char *const ports[] = {"",	     " tcp/443", " tcp/400-500,udp/53",
					    " icmp", " udp",	 " tcp/1-1000,tcp/443"};
	static const char *const dsts[] = {"10.1.2.3", "10.1.2.4", "10.1.9.9",
					   "10.3.0.1", "10.2.1.1", "192.0.2.1"};
	static const uint16_t dports[] = {53, 443, 450, 1000, 1001, 22};
	static const uint8_t protos[] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP};
	unsigned int runs = 0;

	for (int t = 0; t < 150; t++) {
		char text[1024] = "";
		struct weir_policy pol = {};
		struct weir_error err = {};

		for (uint32_t i = 0, n = 1 + rnd(5); i < n; i++)
			sprintf(text + strlen(text), "%s%s %s%s", i ? "; " : "",
				rnd(3) ? "allow" : "deny", peers[rnd(6)], ports[rnd(6)]);
		assert_int_equal(weir_policy_parse_dir(&pol, WEIR_EGRESS, "egress.weir.io", text,
						       &cfg.limits, &err),
				 0);
		setup_endpoint(text, NULL, false);
		for (int k = 0; k < 40; k++) {
			const char *dst = dsts[rnd(6)];
			uint8_t proto = protos[rnd(3)];
			uint16_t dport = dports[rnd(6)];
			/* a fresh source port each time: no tracked flow decides for the policy */
			struct pkt p = make_pkt("10.9.9.9", dst, proto,
						proto == IPPROTO_ICMP ? 8 << 8 : 20000 + runs,
						proto == IPPROTO_ICMP ? runs : dport, 0);
			uint8_t addr[16] = {};
			int want;

			inet_pton(AF_INET, dst, addr);
			want = weir_policy_eval_reference(&pol, WEIR_EGRESS, WEIR_V4, addr,
							  weir_pclass_of(proto), dport, true);
			if (egress(&p) != want)
				fail_msg("policy \"%s\": %s proto %u port %u: kernel %d, reference "
					 "%d",
					 text, dst, proto, dport, !want, want);
			runs++;
		}
		weir_policy_free(&pol);
	}
	print_message("%u packets run through the kernel program\n", runs);
}

/*
 * The loader falls back to programs without the per-socket verdicts where a kernel's verifier
 * refuses them. On the kernels weir is tested on (the host's, and Debian's 6.1 and 6.12 in
 * tests/vm) it must never need to: the fast path and the full path are separate functions so
 * that the verifier never explores them together.
 */
static void test_sk_verdicts_load(void **state)
{
	(void)state;
	assert_int_equal(sk_cache_loaded, 1);
}

/*
 * Per-socket verdicts (bpf/lib/sockverdict.h) need a real socket: a test run's skb carries a
 * dummy socket of its own (protocol 0, TCP_CLOSE), which never gets a slot, so every test run
 * takes the full path. Here: a flow tracked under one registration, then a new registration of
 * the same endpoint id (another gen) whose policy allows nothing: the next packet of the flow
 * is dropped, in both directions. tests/e2e/sockverdict.t checks the cached path itself with
 * real sockets.
 */
static void test_new_registration_judges_tracked_flows(void **state)
{
	struct pkt out = make_pkt("10.1.0.2", "10.2.0.9", IPPROTO_TCP, 40000, 443, 100);
	struct pkt in = make_pkt("10.2.0.9", "10.1.0.2", IPPROTO_TCP, 443, 40000, 100);
	int pfd = bpf_map__fd(skel->maps.weir_policy);
	struct weir_policy_key k = {}, next;
	struct weir_endpoint epv;
	struct weir_counters c;
	uint32_t ep = EP;

	(void)state;
	setup_endpoint("allow 10.2.0.0/16 tcp/443", "allow 10.255.255.254/32", false);
	assert_int_equal(egress(&out), 1);
	assert_int_equal(egress(&out), 1);
	assert_int_equal(ingress(&in), 1);
	/* the new registration: every key of the endpoint gone, another gen, conntrack kept */
	while (!bpf_map_get_next_key(pfd, k.prefixlen ? &k : NULL, &next)) {
		if (next.ep_id == ep && !bpf_map_delete_elem(pfd, &next))
			continue;
		k = next;
	}
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.weir_endpoints), &ep, &epv), 0);
	epv.gen++;
	assert_int_equal(
		bpf_map_update_elem(bpf_map__fd(skel->maps.weir_endpoints), &ep, &epv, BPF_ANY), 0);
	assert_int_equal(egress(&out), 0);
	assert_int_equal(ingress(&in), 0);
	c = counters();
	assert_int_equal(c.dir[WEIR_EGRESS].proto[WEIR_PC_TCP].packets, 2);
	assert_int_equal(c.dir[WEIR_EGRESS].policy_dropped.packets, 1);
	assert_int_equal(c.dir[WEIR_INGRESS].policy_dropped.packets, 1);
}

static int setup(void **state)
{
	char cg[4096];
	struct if_nameindex *ifs = if_nameindex();
	int r;

	weir_config_defaults(&cfg);
	ncpu = libbpf_num_possible_cpus();
	for (struct if_nameindex *i = ifs; i && i->if_index; i++)
		if (i->if_index != 1) {
			ifindex = (int)i->if_index;
			break;
		}
	if_freenameindex(ifs);
	if (!ifindex) {
		fprintf(stderr, "no non-loopback interface to stand for the container's\n");
		return -1;
	}
	if (weir_cgroup_of_pid(getpid(), cg, sizeof(cg)) || weir_cgroup_id(cg, &my_cgid)) {
		fprintf(stderr, "cannot find this process's cgroup v2\n");
		return -1;
	}
	/* as libweir loads it: without the slots where the verifier gives up on them */
	for (int cache = 1;; cache = 0) {
		sk_cache_loaded = cache;
		skel = weir_bpf__open();
		if (!skel)
			return -1;
		/* private maps: never touch a node's pinned datapath */
		for (struct bpf_map *m = bpf_object__next_map(skel->obj, NULL); m;
		     m = bpf_object__next_map(skel->obj, m))
			bpf_map__set_pin_path(m, NULL);
		skel->rodata->weir_sk_cache = cache;
		/* and without the tcx attach type where the kernel has no tcx */
		if (weir_iface_probe(1) != WEIR_TC_TCX)
			bpf_program__set_expected_attach_type(skel->progs.weir_iface_egress,
							      (enum bpf_attach_type)0);
		r = weir_bpf__load(skel);
		if (!r)
			break;
		weir_bpf__destroy(skel);
		skel = NULL;
		if (r != -E2BIG || !cache) {
			fprintf(stderr, "cannot load the datapath: %s\n", strerror(-r));
			return -1;
		}
		printf("# the verifier refuses the per-socket verdicts (E2BIG): loaded without\n");
	}
	r = sender_start();
	if (r) {
		fprintf(stderr, "cannot start the sender (cgroup, netns, sendmsg links): %s\n",
			strerror(-r));
		sender_stop();
		weir_bpf__destroy(skel);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	sender_stop();
	weir_bpf__destroy(skel);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_egress_policy),
		cmocka_unit_test(test_replies_pass),
		cmocka_unit_test(test_replies_with_one_sided_policy),
		cmocka_unit_test(test_audit_counts_but_passes),
		cmocka_unit_test(test_ipv6_extension_headers_and_ndp),
		cmocka_unit_test(test_gso_counts_segments),
		cmocka_unit_test(test_tcp_resets_counted),
		cmocka_unit_test(test_udp_replies_at_sendmsg),
		cmocka_unit_test(test_udp_replies_need_allowed_ingress),
		cmocka_unit_test(test_udp_replies_audit),
		cmocka_unit_test(test_random_replies_in_kernel),
		cmocka_unit_test(test_ct_budget_isolates),
		cmocka_unit_test(test_ct_shared_map_would_evict),
		cmocka_unit_test(test_unregistered_and_malformed),
		cmocka_unit_test(test_iface_ingress),
		cmocka_unit_test(test_iface_shaping),
		cmocka_unit_test(test_random_policies_in_kernel),
		cmocka_unit_test(test_new_registration_judges_tracked_flows),
		cmocka_unit_test(test_sk_verdicts_load),
	};

	return cmocka_run_group_tests_name("datapath", tests, setup, teardown);
}
