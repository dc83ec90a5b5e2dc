// SPDX-License-Identifier: Apache-2.0
/*
 * progtime: the datapath's own time per packet, measured by the kernel with
 * BPF_PROG_TEST_RUN (repeat N, the kernel's average), on the real programs loaded privately
 * (no pins), for the paths a packet can take: an endpoint without policy, a tracked flow of an
 * endpoint with 1,000 rules, and a packet the LPM lookup denies. Every endpoint gets its own
 * conntrack map, as an attach does.
 * Not a test: it prints numbers. Build and run: tests/bench/progtime.sh
 *
 * progtime --table FLOOR_OBJECT REPEAT RULES...: for tests/bench/datapath-bench.sh, one line
 * "weir RULES MONITOR PATH NS" per path, monitor mode (off, counters, flows) and rule count
 * (RULES non-matching /24s with tcp/443, then 10.125.0.0/24 with tcp/5201 and tcp/11111), and
 * "floor RULES floor lpm NS" for the floor program (tests/bench/floor.bpf.c) over the same
 * prefixes. The cgroup_skb programs (an endpoint with those rules as its egress policy):
 * egress-tracked (a tracked flow, conntrack hit), ingress-reply (its reply), egress-new-lpm (a
 * new flow to the server's /24, refused by port: the LPM decides every packet) and
 * egress-new-miss (no prefix matches). The interface program weir_iface_egress (the host side
 * of the container's veth; an endpoint with the rules both ways, the interface its own):
 * iface-reply (the reply of the container's tracked flow, going into the container) and
 * iface-new-lpm (a new connection into the container, allowed by the ingress policy's LPM;
 * the interface tracks nothing, so every packet is decided anew). Each verdict is checked
 * before its time is printed.
 *
 * progtime --sockets FLOOR_OBJECT PACKETS ROUNDS: the per-socket verdicts (a socket's later
 * packets skip the cgroup, conntrack and policy lookups) need real sockets: BPF_PROG_TEST_RUN
 * gives every run a dummy socket of its own, which never has a verdict. So this mode runs the
 * programs on real packets and lets the kernel time them (BPF_ENABLE_STATS: run_time_ns and
 * run_cnt of each program): in a network namespace of its own, from a cgroup of its own with
 * the programs attached, 1,000 rules each way. Outbound, datagrams out of a TUN device;
 * inbound, datagrams written into it from the peer (10.99.0.2:5201) and received by the local
 * sockets, whose own ports the ingress policy does not open: they pass only as replies, and
 * every one must reach recv() (a dropped one is an error, never a time). Each round measures,
 * in rotating order, the floor program (tests/bench/floor.bpf.c: floor_egress looks up the
 * destination, floor_ingress the source), weir on a tracked flow of an unconnected socket
 * (sendto(), and what it receives: conntrack hit) and weir on a connected socket (its cached
 * verdict), each way; it prints "sockets PATH NS RATIO" with the medians of the per-round
 * figures and of their ratios against the floor of the same round and direction: floor,
 * weir-tracked, weir-cached against floor; floor-in, weir-tracked-in, weir-cached-in against
 * floor-in. Then the bounds of any per-socket verdict, on the connected socket outbound,
 * against the floor (tests/bench/floor.bpf.c): bound-noop (a program that only passes: what
 * any program costs here, bpf_stats' clock reads included), bound-counter (one per-CPU counter
 * update), bound-sk (the socket's slot in socket storage), bound-sk-counter (both: the least a
 * cached verdict with exact counters touches), bound-sk-counter-dep (the same with the
 * counters' key read from the slot: the counters' loads wait for the slot's). bpf_stats adds
 * its own clock reads to every program alike.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
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
#include "ctx.h"
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

/*
 * Endpoint ep: active, monitor flags mon, the egress and ingress rules given (NULL: none), a
 * fresh conntrack map as an attach makes (without one nothing is ever tracked).
 */
static void endpoint_flags(uint32_t ep, const char *egress, const char *ingress, uint32_t mon)
{
	struct weir_config cfg;
	struct weir_kv kv[2];
	struct weir_spec spec;
	struct weir_compiled comp;
	struct weir_error err = {};
	struct weir_endpoint epv = {.flags = WEIR_EP_ACTIVE | mon, .gen = 1};
	int ncpu = libbpf_num_possible_cpus(), ct = bpf_map__fd(skel->maps.weir_ct);
	void *zero = calloc((size_t)ncpu, sizeof(struct weir_counters));
	size_t nkv = 0;

	weir_config_defaults(&cfg);
	cfg.limits.max_value_bytes = 1 << 20;
	cfg.limits.max_rules = 1 << 16;
	if (egress)
		kv[nkv++] = (struct weir_kv){"egress.weir.io", egress};
	if (ingress)
		kv[nkv++] = (struct weir_kv){"ingress.weir.io", ingress};
	if (nkv) {
		if (weir_spec_parse(&cfg, kv, nkv, &spec, &err) ||
		    weir_policy_compile(&spec.policy, &comp, &err)) {
			fprintf(stderr, "%s\n", err.msg);
			exit(1);
		}
		for (size_t i = 0; i < comp.n; i++) {
			comp.entries[i].key.ep_id = ep;
			if (bpf_map_update_elem(bpf_map__fd(skel->maps.weir_policy),
						&comp.entries[i].key, &comp.entries[i].val,
						BPF_ANY)) {
				perror("weir_policy");
				exit(1);
			}
		}
		if (spec.policy.dir[WEIR_EGRESS].present)
			epv.flags |= WEIR_EP_POLICY_EGRESS;
		if (spec.policy.dir[WEIR_INGRESS].present)
			epv.flags |= WEIR_EP_POLICY_INGRESS;
		weir_compiled_free(&comp);
		weir_spec_free(&spec);
	}
	weir_ct_remove(ct, NULL, ep);
	if (weir_ct_create(ct, NULL, ep, WEIR_CT_DEFAULT_ENTRIES, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		exit(1);
	}
	bpf_map_update_elem(bpf_map__fd(skel->maps.weir_endpoints), &ep, &epv, BPF_ANY);
	bpf_map_update_elem(bpf_map__fd(skel->maps.weir_counters), &ep, zero, BPF_ANY);
	free(zero);
}

static void endpoint(const char *egress)
{
	endpoint_flags(EP, egress, NULL, WEIR_EP_MON_TCP);
}

/* Has endpoint ep's conntrack map an entry? (Its map is fresh: any entry is the flow.) */
static bool tracked_any(uint32_t ep)
{
	struct weir_ct_key k;
	int fd = weir_ct_open(bpf_map__fd(skel->maps.weir_ct), NULL, ep);
	bool any = fd >= 0 && !bpf_map_get_next_key(fd, NULL, &k);

	if (fd >= 0)
		close(fd);
	return any;
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

/* One timed path: the kernel's ns per run, after checking the verdict is the path's own. */
static double timed(struct bpf_program *prog, const struct pkt *p, bool ingress, int repeat,
		    int want, int n, const char *mon, const char *path)
{
	int ret;
	double ns = run(prog, p, ingress, repeat, &ret);

	if (ret != want) {
		fprintf(stderr, "progtime: %d rules, %s, %s: verdict %d, expected %d\n", n, mon,
			path, ret, want);
		exit(1);
	}
	printf("weir %d %s %s %.1f\n", n, mon, path, ns);
	return ns;
}

/* The interface ifindex serves endpoint ep alone (weir_ifaces, as libweir registers it). */
static void iface_of(uint32_t ep)
{
	struct weir_iface v = {.n = 1, .ep = {ep}};
	uint32_t key = (uint32_t)ifindex;

	if (bpf_map_update_elem(bpf_map__fd(skel->maps.weir_ifaces), &key, &v, BPF_ANY)) {
		perror("weir_ifaces");
		exit(1);
	}
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
	/* into the container (10.125.0.1): a new connection to its port 5201 */
	struct pkt inbound = tcp4("10.125.0.2", "10.125.0.1", 50000, 5201);
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
			const char *mon = mons[m].name;

			ep++;
			endpoint_flags(ep, rules, NULL, mons[m].flags);
			bpf_map_update_elem(cgfd, &cgid, &ep, BPF_ANY);
			run(skel->progs.weir_egress, &flow, false, 1, &ret); /* opens the flow */
			if (ret != 1 || !tracked_any(ep)) {
				fprintf(stderr, "progtime: the server's flow was not tracked\n");
				return 1;
			}
			timed(skel->progs.weir_egress, &flow, false, repeat, 1, n, mon,
			      "egress-tracked");
			timed(skel->progs.weir_ingress, &reply, true, repeat, 1, n, mon,
			      "ingress-reply");
			/* new flows, none of which is ever tracked: the LPM decides every time */
			timed(skel->progs.weir_egress, &port, false, repeat, 0, n, mon,
			      "egress-new-lpm");
			timed(skel->progs.weir_egress, &miss, false, repeat, 0, n, mon,
			      "egress-new-miss");

			/*
			 * The interface program, on the host side of the container's veth: an
			 * endpoint with the same rules both ways, the interface its own. The reply
			 * of its egress flow passes as tracked; a new connection into it is decided
			 * by the ingress policy's LPM (allowed, never tracked here: the cgroup
			 * program of the receiving socket tracks it).
			 */
			ep++;
			endpoint_flags(ep, rules, rules, mons[m].flags);
			bpf_map_update_elem(cgfd, &cgid, &ep, BPF_ANY);
			iface_of(ep);
			run(skel->progs.weir_egress, &flow, false, 1, &ret);
			if (ret != 1 || !tracked_any(ep)) {
				fprintf(stderr, "progtime: the server's flow was not tracked\n");
				return 1;
			}
			timed(skel->progs.weir_iface_egress, &reply, false, repeat, WEIR_TC_NEXT, n,
			      mon, "iface-reply");
			timed(skel->progs.weir_iface_egress, &inbound, false, repeat, WEIR_TC_NEXT,
			      n, mon, "iface-new-lpm");
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
#define SK_PATHS  11 /* floor, weir-tracked, weir-cached; the same inbound; the bounds */
#define SK_IN	  3
#define SK_BOUND  6 /* the bounds of a per-socket verdict, outbound on the connected socket */
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

/*
 * n datagrams through prog attached to cg's egress; the kernel's ns per run of prog, -1 with
 * a message (and prog detached) when one could not be sent
 */
static double sk_measure(int prog, int cg, int tun, int sock, bool connected, long n)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(SK_PORT)};
	uint64_t ns0, c0, ns1, c1;
	char buf[2048] = {0};
	long i;

	inet_pton(AF_INET, "10.99.0.2", &to.sin_addr);
	if (bpf_prog_attach(prog, cg, BPF_CGROUP_INET_EGRESS, BPF_F_ALLOW_MULTI)) {
		perror("attach");
		return -1;
	}
	/* the first packet opens the flow (and leaves the socket's verdict): not timed */
	if (connected)
		send(sock, buf, 64, 0);
	else
		sendto(sock, buf, 64, 0, (struct sockaddr *)&to, sizeof(to));
	prog_stats(prog, &ns0, &c0);
	for (i = 0; i < n; i++) {
		ssize_t r = connected
				    ? send(sock, buf, 64, 0)
				    : sendto(sock, buf, 64, 0, (struct sockaddr *)&to, sizeof(to));

		if (r != 64) {
			perror("send");
			break;
		}
		if (!(i & 31))
			while (read(tun, buf, sizeof(buf)) > 0)
				;
	}
	prog_stats(prog, &ns1, &c1);
	bpf_prog_detach2(prog, cg, BPF_CGROUP_INET_EGRESS);
	while (read(tun, buf, sizeof(buf)) > 0)
		;
	if (i < n)
		return -1;
	if (c1 - c0 < (uint64_t)n) {
		fprintf(stderr, "progtime: %llu runs for %ld packets\n",
			(unsigned long long)(c1 - c0), n);
		return -1;
	}
	return (double)(ns1 - ns0) / (double)(c1 - c0);
}

/* A datagram from the peer (10.99.0.2:SK_PORT) to local port lport, as the tun device gets it. */
static size_t udp4_in(uint8_t *b, uint16_t lport)
{
	uint32_t sum = 0;

	memset(b, 0, 20 + 8 + 64);
	b[0] = 0x45;
	b[3] = 20 + 8 + 64;
	b[8] = 64;
	b[9] = IPPROTO_UDP;
	inet_pton(AF_INET, "10.99.0.2", b + 12);
	inet_pton(AF_INET, "10.99.0.1", b + 16);
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	b[10] = (uint8_t)(~sum >> 8);
	b[11] = (uint8_t)~sum;
	b[20] = SK_PORT >> 8;
	b[21] = SK_PORT & 0xff;
	b[22] = (uint8_t)(lport >> 8);
	b[23] = (uint8_t)lport;
	b[25] = 8 + 64; /* UDP checksum 0: none, which IPv4 allows */
	return 20 + 8 + 64;
}

/*
 * k datagrams into the tun device, each received by sock: 0, or -1 with a message when one
 * never arrived (dropped)
 */
static int sk_inject(int tun, int sock, const uint8_t *d, size_t len, long k, const char *path)
{
	char buf[2048];

	for (long i = 0; i < k; i++)
		if (write(tun, d, len) != (ssize_t)len) {
			perror("tun write");
			return -1;
		}
	for (long i = 0; i < k; i++)
		if (recv(sock, buf, sizeof(buf), 0) != 64) {
			fprintf(stderr,
				"progtime: %s: %ld of %ld datagrams never reached the socket\n",
				path, k - i, k);
			return -1;
		}
	return 0;
}

/*
 * n datagrams into sock through prog attached to cg's ingress; the kernel's ns per run of
 * prog, -1 with a message (and prog detached) when one went missing
 */
static double sk_measure_in(int prog, int cg, int tun, int sock, long n, const char *path)
{
	struct sockaddr_in me;
	socklen_t len = sizeof(me);
	uint64_t ns0, c0, ns1, c1;
	uint8_t d[128];
	size_t dlen;
	int r;

	if (getsockname(sock, (struct sockaddr *)&me, &len) || !me.sin_port) {
		fprintf(stderr, "progtime: %s: the socket has no port\n", path);
		return -1;
	}
	dlen = udp4_in(d, ntohs(me.sin_port));
	if (bpf_prog_attach(prog, cg, BPF_CGROUP_INET_INGRESS, BPF_F_ALLOW_MULTI)) {
		perror("attach");
		return -1;
	}
	r = sk_inject(tun, sock, d, dlen, 1, path); /* not timed */
	prog_stats(prog, &ns0, &c0);
	for (long i = 0; i < n && !r; i += 32)
		r = sk_inject(tun, sock, d, dlen, n - i < 32 ? n - i : 32, path);
	prog_stats(prog, &ns1, &c1);
	bpf_prog_detach2(prog, cg, BPF_CGROUP_INET_INGRESS);
	if (r)
		return -1;
	if (c1 - c0 < (uint64_t)n) {
		fprintf(stderr, "progtime: %s: %llu runs for %ld packets\n", path,
			(unsigned long long)(c1 - c0), n);
		return -1;
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
	/*
	 * egress paths, then ingress (SK_IN on), then the bounds (SK_BOUND on, egress): each
	 * against the floor of its direction
	 */
	static const char *const names[SK_PATHS] = {
		"floor",	   "weir-tracked",     "weir-cached",	      "floor-in",
		"weir-tracked-in", "weir-cached-in",   "bound-noop",	      "bound-counter",
		"bound-sk",	   "bound-sk-counter", "bound-sk-counter-dep"};
	char cidrs[] = "/tmp/weir-progtime.XXXXXX", cg[4200], procs[4300], pid[32], buf[128] = {0};
	double ns[SK_PATHS][SK_ROUNDS], ratio[SK_PATHS][SK_ROUNDS];
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(SK_PORT)};
	struct timeval wait = {.tv_sec = 2};
	int fd = mkstemp(cidrs), cgfd, tun, us, cs, progs[SK_PATHS], rc = 1;
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	struct bpf_program *fprog, *fprog_in;
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
	fprog_in = bpf_object__find_program_by_name(fobj, "floor_ingress");
	if (!fprog_in) {
		fprintf(stderr, "progtime: %s has no floor_ingress\n", floor_obj);
		goto out_obj;
	}
	for (int p = SK_BOUND; p < SK_PATHS; p++) {
		char prog[32];
		struct bpf_program *bp;

		/* bound-sk-counter is the program bound_sk_counter */
		snprintf(prog, sizeof(prog), "%s", names[p]);
		for (char *c = prog; *c; c++)
			*c = *c == '-' ? '_' : *c;
		bp = bpf_object__find_program_by_name(fobj, prog);
		if (!bp) {
			fprintf(stderr, "progtime: %s has no %s\n", floor_obj, prog);
			goto out_obj;
		}
		progs[p] = bpf_program__fd(bp);
	}
	if (unshare(CLONE_NEWNET) || (tun = tun_up()) < 0) {
		perror("network namespace with a tun device");
		goto out_obj;
	}
	/* a cgroup of its own, below this process's, with this process in it */
	snprintf(cg, sizeof(cg), "%s/weir-progtime-%d", own_cg, (int)getpid());
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (mkdir(cg, 0755) || weir_cgroup_id(cg, &cgid)) {
		perror(cg);
		goto out_obj;
	}
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, pid, strlen(pid)) < 0) {
		perror(procs);
		goto out_rmdir;
	}
	close(fd);
	cgfd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	/*
	 * The same rules both ways. Inbound, udp/5201 is the local port: the datagrams to the
	 * sockets' own (ephemeral) ports pass only as replies of their tracked flows, or by the
	 * connected socket's cached verdict; a dropped one never reaches recv().
	 */
	endpoint_flags(ep, rules, rules, 0);
	bpf_map_update_elem(bpf_map__fd(skel->maps.weir_cgroups), &cgid, &ep, BPF_ANY);
	inet_pton(AF_INET, "10.99.0.2", &to.sin_addr);
	us = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cs = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (us < 0 || cs < 0 || connect(cs, (struct sockaddr *)&to, sizeof(to)) ||
	    setsockopt(us, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait)) ||
	    setsockopt(cs, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait))) {
		perror("sockets");
		goto out;
	}
	/* both flows opened through weir before any round (the ingress paths need them) */
	if (bpf_prog_attach(bpf_program__fd(skel->progs.weir_egress), cgfd, BPF_CGROUP_INET_EGRESS,
			    BPF_F_ALLOW_MULTI)) {
		perror("attach");
		goto out;
	}
	rc = sendto(us, buf, 64, 0, (struct sockaddr *)&to, sizeof(to)) != 64 ||
	     send(cs, buf, 64, 0) != 64;
	bpf_prog_detach2(bpf_program__fd(skel->progs.weir_egress), cgfd, BPF_CGROUP_INET_EGRESS);
	if (rc) {
		perror("send");
		goto out;
	}
	rc = 1;
	while (read(tun, buf, sizeof(buf)) > 0)
		;
	stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats < 0) {
		perror("BPF_ENABLE_STATS");
		goto out;
	}
	progs[0] = bpf_program__fd(fprog);
	progs[1] = progs[2] = bpf_program__fd(skel->progs.weir_egress);
	progs[SK_IN] = bpf_program__fd(fprog_in);
	progs[SK_IN + 1] = progs[SK_IN + 2] = bpf_program__fd(skel->progs.weir_ingress);
	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < SK_PATHS; k++) {
			int p = (r + k) % SK_PATHS;
			int s = p >= SK_BOUND || p % SK_IN == 2 ? cs : us;

			if (p < SK_IN || p >= SK_BOUND)
				ns[p][r] = sk_measure(progs[p], cgfd, tun, s, s == cs, packets);
			else
				ns[p][r] = sk_measure_in(progs[p], cgfd, tun, s, packets, names[p]);
			if (ns[p][r] < 0) {
				close(stats);
				goto out;
			}
		}
		for (int p = 0; p < SK_PATHS; p++)
			ratio[p][r] = ns[p][r] / ns[p < SK_IN || p >= SK_BOUND ? 0 : SK_IN][r];
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
out_obj:
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
