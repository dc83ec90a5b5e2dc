// SPDX-License-Identifier: Apache-2.0
/*
 * progtime: the datapath's own time per packet, measured by the kernel with
 * BPF_PROG_TEST_RUN (repeat N, the kernel's average), on the real cgroup_skb programs loaded
 * privately (no pins), for the paths a packet can take: an endpoint without policy, a tracked
 * flow of an endpoint with 1,000 rules, and a packet the LPM lookup denies.
 * Not a test: it prints numbers. Build and run: tests/bench/progtime.sh
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "annot.h"
#include "cgroup.h"
#include "config.h"
#include "policy.h"
#include "weir.skel.h"

#define EP 9

static struct weir_bpf *skel;
static int ifindex;

struct pkt {
	uint8_t buf[128];
	uint32_t len;
};

static struct pkt tcp4(const char *src, const char *dst, uint16_t sport, uint16_t dport)
{
	struct pkt p = {};
	uint8_t *ip = p.buf + 14, *l4 = ip + 20;

	p.buf[12] = 0x08;
	ip[0] = 0x45;
	ip[3] = 40 + 60;
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	inet_pton(AF_INET, src, ip + 12);
	inet_pton(AF_INET, dst, ip + 16);
	l4[0] = (uint8_t)(sport >> 8);
	l4[1] = (uint8_t)sport;
	l4[2] = (uint8_t)(dport >> 8);
	l4[3] = (uint8_t)dport;
	l4[12] = 5 << 4;
	l4[13] = 0x10;
	p.len = 14 + 40 + 60;
	return p;
}

static double run(struct bpf_program *prog, const struct pkt *p, bool ingress, int repeat, int *ret)
{
	struct __sk_buff ctx = {};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->buf, .data_size_in = p->len, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = repeat);

	ctx.ifindex = ifindex;
	if (ingress)
		ctx.ingress_ifindex = ifindex;
	if (bpf_prog_test_run_opts(bpf_program__fd(prog), &o)) {
		perror("test run");
		exit(1);
	}
	*ret = (int)o.retval;
	return (double)o.duration; /* the kernel's average ns per run */
}

static void endpoint(const char *egress)
{
	struct weir_config cfg;
	struct weir_kv kv = {"egress.weir.io", egress};
	struct weir_spec spec;
	struct weir_compiled comp;
	struct weir_error err = {};
	struct weir_endpoint epv = {.flags = WEIR_EP_ACTIVE | WEIR_EP_MON_TCP, .gen = 1};
	uint32_t ep = EP;
	int ncpu = libbpf_num_possible_cpus();
	void *zero = calloc((size_t)ncpu, sizeof(struct weir_counters));

	weir_config_defaults(&cfg);
	cfg.limits.max_value_bytes = 1 << 20;
	if (egress) {
		if (weir_spec_parse(&cfg, &kv, 1, &spec, &err) ||
		    weir_policy_compile(&spec.policy, &comp, &err)) {
			fprintf(stderr, "%s\n", err.msg);
			exit(1);
		}
		for (size_t i = 0; i < comp.n; i++) {
			comp.entries[i].key.ep_id = EP;
			bpf_map_update_elem(bpf_map__fd(skel->maps.weir_policy),
					    &comp.entries[i].key, &comp.entries[i].val, BPF_ANY);
		}
		epv.flags |= WEIR_EP_POLICY_EGRESS;
		weir_compiled_free(&comp);
		weir_spec_free(&spec);
	}
	bpf_map_update_elem(bpf_map__fd(skel->maps.weir_endpoints), &ep, &epv, BPF_ANY);
	bpf_map_update_elem(bpf_map__fd(skel->maps.weir_counters), &ep, zero, BPF_ANY);
	free(zero);
}

int main(int argc, char **argv)
{
	int repeat = argc > 1 ? atoi(argv[1]) : 200000, ret;
	struct if_nameindex *ifs = if_nameindex();
	char cg[4096], *rules;
	uint64_t cgid;
	uint32_t ep = EP;
	size_t n = 0;

	for (struct if_nameindex *i = ifs; i && i->if_index; i++)
		if (i->if_index != 1 && !ifindex)
			ifindex = (int)i->if_index;
	if_freenameindex(ifs);
	if (weir_cgroup_of_pid(getpid(), cg, sizeof(cg)) || weir_cgroup_id(cg, &cgid))
		return 1;
	skel = weir_bpf__open();
	for (struct bpf_map *m = bpf_object__next_map(skel->obj, NULL); m;
	     m = bpf_object__next_map(skel->obj, m))
		bpf_map__set_pin_path(m, NULL);
	if (weir_bpf__load(skel))
		return 1;
	bpf_map_update_elem(bpf_map__fd(skel->maps.weir_cgroups), &cgid, &ep, BPF_ANY);

	struct pkt flow = tcp4("10.1.0.2", "10.123.0.2", 40000, 443);
	struct pkt denied = tcp4("10.1.0.2", "10.250.0.9", 40001, 443);

	double ns;

	endpoint(NULL);
	ns = run(skel->progs.weir_egress, &flow, false, repeat, &ret);
	printf("endpoint without policy:             %6.1f ns per packet (verdict %d)\n", ns, ret);

	rules = malloc(40 * 1000 + 64);
	for (int i = 0; i < 999; i++)
		n += (size_t)sprintf(rules + n, "allow 10.%d.%d.0/24 tcp/5201,udp/53; ",
				     i / 250 + 50, i % 250);
	sprintf(rules + n, "allow 10.123.0.0/24 tcp/443");
	endpoint(rules);
	run(skel->progs.weir_egress, &flow, false, 1, &ret); /* opens the tracked flow */
	ns = run(skel->progs.weir_egress, &flow, false, repeat, &ret);
	printf("1,000 rules, tracked flow (ct hit):  %6.1f ns per packet (verdict %d)\n", ns, ret);
	/* a fresh generation makes every packet look new: conntrack misses, the LPM decides */
	{
		struct weir_endpoint epv;

		bpf_map_lookup_elem(bpf_map__fd(skel->maps.weir_endpoints), &ep, &epv);
		epv.gen = 0xffffffff; /* the tracked entry carries gen 1 */
		bpf_map_update_elem(bpf_map__fd(skel->maps.weir_endpoints), &ep, &epv, BPF_ANY);
	}
	ns = run(skel->progs.weir_egress, &denied, false, repeat, &ret);
	printf("1,000 rules, denied (LPM, drop):     %6.1f ns per packet (verdict %d)\n", ns, ret);
	weir_bpf__destroy(skel);
	free(rules);
	return 0;
}
