// SPDX-License-Identifier: Apache-2.0
/*
 * progtime: the datapath's own time per packet, measured by the kernel with
 * BPF_PROG_TEST_RUN (repeat N, the kernel's average), on the real cgroup_skb programs loaded
 * privately (no pins), for the paths a packet can take: an endpoint without policy, a tracked
 * flow of an endpoint with 1,000 rules, and a packet the LPM lookup denies.
 * Not a test: it prints numbers. Build and run: tests/bench/progtime.sh
 *
 * progtime --table FLOOR_OBJECT REPEAT RULES...: for tests/bench/datapath-bench.sh, one line
 * "weir RULES MONITOR PATH NS" per path, monitor mode (off, counters, flows) and rule count
 * (RULES non-matching /24s with tcp/443, then 10.125.0.0/24 with tcp/5201 and tcp/11111), and
 * "floor RULES floor NS" for the floor program (tests/bench/floor.bpf.c) over the same
 * prefixes.
 *
 * progtime --sockets FLOOR_OBJECT PACKETS ROUNDS: the per-socket verdicts (a socket's later
 * packets skip the cgroup, conntrack and policy lookups) need real sockets: BPF_PROG_TEST_RUN
 * gives every run a dummy socket of its own, which never has a verdict. So this mode runs the
 * programs on real packets and lets the kernel time them (BPF_ENABLE_STATS: run_time_ns and
 * run_cnt of each program): in a network namespace of its own, from a cgroup of its own with
 * the programs attached, datagrams out of a TUN device, 1,000 rules. Each round measures, in
 * rotating order, the floor program, weir on a tracked flow of an unconnected socket
 * (sendto(): conntrack hit) and weir on a connected socket (its cached verdict); it prints
 * "sockets PATH NS RATIO" with the medians of the per-round figures and of their ratios
 * against the floor of the same round. bpf_stats adds its own clock reads to every program
 * alike.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "annot.h"
#include "floor.h"
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

static void endpoint_flags(uint32_t ep, const char *egress, uint32_t mon)
{
	struct weir_config cfg;
	struct weir_kv kv = {"egress.weir.io", egress};
	struct weir_spec spec;
	struct weir_compiled comp;
	struct weir_error err = {};
	struct weir_endpoint epv = {.flags = WEIR_EP_ACTIVE | mon, .gen = 1};
	int ncpu = libbpf_num_possible_cpus();
	void *zero = calloc((size_t)ncpu, sizeof(struct weir_counters));

	weir_config_defaults(&cfg);
	cfg.limits.max_value_bytes = 1 << 20;
	cfg.limits.max_rules = 1 << 16;
	if (egress) {
		if (weir_spec_parse(&cfg, &kv, 1, &spec, &err) ||
		    weir_policy_compile(&spec.policy, &comp, &err)) {
			fprintf(stderr, "%s\n", err.msg);
			exit(1);
		}
		for (size_t i = 0; i < comp.n; i++) {
			comp.entries[i].key.ep_id = ep;
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

static void endpoint(const char *egress)
{
	endpoint_flags(EP, egress, WEIR_EP_MON_TCP);
}

/* The rules of datapath-bench.sh: N non-matching /24s, then the server's; their prefixes to
 * the file CIDRS for the floor. */
static char *bench_rules(int n, FILE *cidrs)
{
	char *r = malloc((size_t)n * 40 + 64);
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		len += (size_t)sprintf(r + len, "allow 10.%d.%d.0/24 tcp/443; ", 50 + i / 256,
				       i % 256);
		fprintf(cidrs, "10.%d.%d.0/24\n", 50 + i / 256, i % 256);
	}
	sprintf(r + len, "allow 10.125.0.0/24 tcp/5201,tcp/11111");
	fprintf(cidrs, "10.125.0.0/24\n");
	return r;
}

static int table(const char *floor_obj, int repeat, int argc, char **argv, uint64_t cgid)
{
	static const struct {
		const char *name;
		uint32_t flags;
	} mons[] = {{"off", 0},
		    {"counters", WEIR_EP_MON_TCP},
		    {"flows", WEIR_EP_MON_TCP | WEIR_EP_MON_FLOWS}};
	struct pkt flow = tcp4("10.125.0.1", "10.125.0.2", 40000, 5201);
	struct pkt reply = tcp4("10.125.0.2", "10.125.0.1", 5201, 40000);
	struct pkt port = tcp4("10.125.0.1", "10.125.0.2", 40001, 80);
	struct pkt miss = tcp4("10.125.0.1", "10.250.0.9", 40002, 5201);
	int cgfd = bpf_map__fd(skel->maps.weir_cgroups), ret;
	uint32_t ep = EP;

	for (int a = 0; a < argc; a++) {
		int n = atoi(argv[a]);
		char path[] = "/tmp/weir-progtime.XXXXXX";
		int fd = mkstemp(path);
		FILE *cidrs = fd >= 0 ? fdopen(fd, "w") : NULL;
		struct bpf_program *fprog;
		struct bpf_object *fobj;
		char *rules;
		long nf;

		if (!cidrs)
			return 1;
		rules = bench_rules(n, cidrs);
		fclose(cidrs);
		for (size_t m = 0; m < sizeof(mons) / sizeof(mons[0]); m++) {
			ep++;
			endpoint_flags(ep, rules, mons[m].flags);
			bpf_map_update_elem(cgfd, &cgid, &ep, BPF_ANY);
			run(skel->progs.weir_egress, &flow, false, 1, &ret); /* opens the flow */
			printf("weir %d %s egress-tracked %.1f\n", n, mons[m].name,
			       run(skel->progs.weir_egress, &flow, false, repeat, &ret));
			printf("weir %d %s ingress-reply %.1f\n", n, mons[m].name,
			       run(skel->progs.weir_ingress, &reply, true, repeat, &ret));
			/* new flows, none of which is ever tracked: the LPM decides every time */
			printf("weir %d %s egress-new-lpm %.1f\n", n, mons[m].name,
			       run(skel->progs.weir_egress, &port, false, repeat, &ret));
			printf("weir %d %s egress-new-miss %.1f\n", n, mons[m].name,
			       run(skel->progs.weir_egress, &miss, false, repeat, &ret));
		}
		fobj = floor_load(floor_obj, path, &fprog, &nf);
		unlink(path);
		free(rules);
		if (!fobj)
			return 1;
		printf("floor %d floor lpm %.1f\n", n, run(fprog, &flow, false, repeat, &ret));
		if (ret != 1)
			fprintf(stderr, "progtime: the floor dropped the server's packet\n");
		bpf_object__close(fobj);
	}
	return 0;
}

/* ---- --sockets: real packets, timed by the kernel ------------------------------------- */

#define SK_EP	  7
#define SK_PORT	  5201
#define SK_PATHS  3
#define SK_ROUNDS 64

/* tun device wpt0, 10.99.0.1/24, up: the route to 10.99.0.2 leaves through it */
static int tun_up(void)
{
	struct ifreq ifr = {.ifr_flags = IFF_TUN | IFF_NO_PI};
	struct sockaddr_in *a = (struct sockaddr_in *)&ifr.ifr_addr;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC), s;

	strcpy(ifr.ifr_name, "wpt0");
	if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr))
		return -1;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&ifr.ifr_addr, 0, sizeof(ifr.ifr_addr));
	a->sin_family = AF_INET;
	inet_pton(AF_INET, "10.99.0.1", &a->sin_addr);
	if (s < 0 || ioctl(s, SIOCSIFADDR, &ifr))
		return -1;
	inet_pton(AF_INET, "255.255.255.0", &a->sin_addr);
	if (ioctl(s, SIOCSIFNETMASK, &ifr) || ioctl(s, SIOCGIFFLAGS, &ifr))
		return -1;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr))
		return -1;
	close(s);
	return fd;
}

static void prog_stats(int fd, uint64_t *ns, uint64_t *cnt)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_prog_get_info_by_fd(fd, &info, &len)) {
		perror("prog info");
		exit(1);
	}
	*ns = info.run_time_ns;
	*cnt = info.run_cnt;
}

/* n datagrams through prog attached to cg's egress; the kernel's ns per run of prog */
static double sk_measure(int prog, int cg, int tun, int sock, bool connected, long n)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(SK_PORT)};
	uint64_t ns0, c0, ns1, c1;
	char buf[2048] = {0};

	inet_pton(AF_INET, "10.99.0.2", &to.sin_addr);
	if (bpf_prog_attach(prog, cg, BPF_CGROUP_INET_EGRESS, BPF_F_ALLOW_MULTI)) {
		perror("attach");
		exit(1);
	}
	/* the first packet opens the flow (and leaves the socket's verdict): not timed */
	if (connected)
		send(sock, buf, 64, 0);
	else
		sendto(sock, buf, 64, 0, (struct sockaddr *)&to, sizeof(to));
	prog_stats(prog, &ns0, &c0);
	for (long i = 0; i < n; i++) {
		ssize_t r = connected
				    ? send(sock, buf, 64, 0)
				    : sendto(sock, buf, 64, 0, (struct sockaddr *)&to, sizeof(to));

		if (r != 64) {
			perror("send");
			exit(1);
		}
		if (!(i & 31))
			while (read(tun, buf, sizeof(buf)) > 0)
				;
	}
	prog_stats(prog, &ns1, &c1);
	bpf_prog_detach2(prog, cg, BPF_CGROUP_INET_EGRESS);
	while (read(tun, buf, sizeof(buf)) > 0)
		;
	if (c1 - c0 < (uint64_t)n) {
		fprintf(stderr, "progtime: %llu runs for %ld packets\n",
			(unsigned long long)(c1 - c0), n);
		exit(1);
	}
	return (double)(ns1 - ns0) / (double)(c1 - c0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int sockets(const char *floor_obj, long packets, int rounds, const char *own_cg)
{
	static const char *const names[SK_PATHS] = {"floor", "weir-tracked", "weir-cached"};
	char cidrs[] = "/tmp/weir-progtime.XXXXXX", cg[4200], procs[4300], pid[32];
	double ns[SK_PATHS][SK_ROUNDS], ratio[SK_PATHS][SK_ROUNDS];
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(SK_PORT)};
	int fd = mkstemp(cidrs), cgfd, tun, ct, us, cs, progs[SK_PATHS], rc = 1;
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	struct bpf_program *fprog;
	struct bpf_object *fobj;
	uint32_t ep = SK_EP;
	char *rules = malloc(40 * 1000 + 64);
	size_t n = 0;
	uint64_t cgid;
	long nf;
	int stats;

	if (rounds < 1 || rounds > SK_ROUNDS || !f || !rules)
		return 1;
	for (int i = 0; i < 999; i++) {
		n += (size_t)sprintf(rules + n, "allow 10.%d.%d.0/24 tcp/443; ", 50 + i / 250,
				     i % 250);
		fprintf(f, "10.%d.%d.0/24\n", 50 + i / 250, i % 250);
	}
	sprintf(rules + n, "allow 10.99.0.0/24 udp/%d", SK_PORT);
	fprintf(f, "10.99.0.0/24\n");
	fclose(f);
	fobj = floor_load(floor_obj, cidrs, &fprog, &nf);
	unlink(cidrs);
	if (!fobj)
		return 1;
	if (unshare(CLONE_NEWNET) || (tun = tun_up()) < 0) {
		perror("network namespace with a tun device");
		return 1;
	}
	/* a cgroup of its own, below this process's, with this process in it */
	snprintf(cg, sizeof(cg), "%s/weir-progtime-%d", own_cg, (int)getpid());
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (mkdir(cg, 0755) || weir_cgroup_id(cg, &cgid)) {
		perror(cg);
		return 1;
	}
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, pid, strlen(pid)) < 0) {
		perror(procs);
		goto out_rmdir;
	}
	close(fd);
	cgfd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	endpoint_flags(ep, rules, 0);
	bpf_map_update_elem(bpf_map__fd(skel->maps.weir_cgroups), &cgid, &ep, BPF_ANY);
	ct = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "weir_ct_pt", sizeof(struct weir_ct_key),
			    sizeof(struct weir_ct_val), WEIR_CT_DEFAULT_ENTRIES, NULL);
	if (ct < 0 || bpf_map_update_elem(bpf_map__fd(skel->maps.weir_ct), &ep, &ct, BPF_ANY)) {
		perror("conntrack map");
		goto out;
	}
	inet_pton(AF_INET, "10.99.0.2", &to.sin_addr);
	us = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cs = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (us < 0 || cs < 0 || connect(cs, (struct sockaddr *)&to, sizeof(to))) {
		perror("sockets");
		goto out;
	}
	stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats < 0) {
		perror("BPF_ENABLE_STATS");
		goto out;
	}
	progs[0] = bpf_program__fd(fprog);
	progs[1] = progs[2] = bpf_program__fd(skel->progs.weir_egress);
	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < SK_PATHS; k++) {
			int p = (r + k) % SK_PATHS;

			ns[p][r] =
				sk_measure(progs[p], cgfd, tun, p == 2 ? cs : us, p == 2, packets);
		}
		for (int p = 0; p < SK_PATHS; p++)
			ratio[p][r] = ns[p][r] / ns[0][r];
	}
	close(stats);
	for (int p = 0; p < SK_PATHS; p++)
		printf("sockets %s %.1f %.3f\n", names[p], median(ns[p], rounds),
		       median(ratio[p], rounds));
	rc = 0;
out:
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", own_cg);
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, pid, strlen(pid)) < 0)
		perror(procs);
	if (fd >= 0)
		close(fd);
out_rmdir:
	rmdir(cg);
	bpf_object__close(fobj);
	free(rules);
	return rc;
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
	if (argc > 4 && !strcmp(argv[1], "--sockets")) {
		int r = sockets(argv[2], atol(argv[3]), atoi(argv[4]), cg);

		weir_bpf__destroy(skel);
		return r;
	}
	if (argc > 3 && !strcmp(argv[1], "--table")) {
		int r = table(argv[2], atoi(argv[3]), argc - 4, argv + 4, cgid);

		weir_bpf__destroy(skel);
		return r;
	}
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
