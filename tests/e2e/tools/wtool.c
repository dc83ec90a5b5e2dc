/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wtool: precise, bounded test traffic for weir's end-to-end tests.
 *
 * Built static (gcc -static) so it can be copied into a busybox container rootfs. Runs both
 * inside containers and in the test's peer network namespace. IPv4 and IPv6 everywhere.
 *
 *   wtool connect ADDR PORT [timeout_ms]         TCP connect, then close
 *   wtool tcp-send ADDR PORT BYTES [timeout_ms]  send BYTES, half-close, read the server's reply
 *   wtool tcp-rr ADDR PORT [timeout_ms]          one small request, expect a reply
 *   wtool udp-send ADDR PORT COUNT SIZE          exactly COUNT datagrams of SIZE payload bytes
 *   wtool udp-rr ADDR PORT [timeout_ms]          one datagram, expect it echoed
 *   wtool ping ADDR COUNT [SIZE] [timeout_ms]    ICMP/ICMPv6 echo (datagram socket, raw fallback)
 *   wtool tcp-server PORT [BIND]                 accept, read all, reply "received N"
 *   wtool udp-echo-server PORT [BIND]            echo every datagram
 *   wtool udp-sink PORT [BIND]                   print one line per datagram received
 *   wtool udp-flood ADDR PORT_LO PORT_HI SOCKETS REPEAT
 *                                                from each of SOCKETS sockets (all kept open,
 *                                                so each has its own port), REPEAT datagrams
 *                                                to every port of PORT_LO..PORT_HI: that many
 *                                                distinct flows; "ok flows=N sends=M"
 *   wtool udp-await ADDR PORT [timeout_ms]       one datagram, print "sent", then wait for any
 *                                                answer from ADDR PORT
 *   wtool udp-reply-later PORT GO_FILE [BIND]    answer each datagram once GO_FILE exists
 *   wtool hammer DENIED ALLOWED UDP TCP SECONDS [STATS]
 *                                                every ms: a datagram to DENIED:UDP and a TCP
 *                                                connect attempt to DENIED:TCP; every 10th ms a
 *                                                datagram to ALLOWED:UDP, every 50th a connect
 *                                                to ALLOWED:TCP; until SECONDS pass or SIGTERM.
 *                                                Counts each outcome; rewrites STATS every 100
 *                                                rounds and prints the counts at the end
 *   wtool hold SPEC...                           sockets kept open, driven by commands on
 *                                                stdin. SPEC: tcp,ADDR,PORT or udp,ADDR,PORT
 *                                                (a client: connect()ed now) or tcp-listen,PORT
 *                                                or udp-listen,PORT (,BIND optional: a server
 *                                                that echoes; the
 *                                                UDP one connect()s to its first client). Prints
 *                                                "listening", then per line of stdin:
 *                                                "round N": each client sends HOLD_MSG bytes and
 *                                                waits up to 1.5 s for the echo; prints "round N"
 *                                                and one word per client: ok, lost or an errno
 *                                                name. "info": "tcp segs_out=X segs_in=Y", the
 *                                                kernel's segment counts summed over every TCP
 *                                                socket (tcp_info). EOF ends a hold with
 *                                                clients; one with servers only goes on serving
 *
 * Clients print one line whose first word is "ok" or the errno name (EPERM, ETIMEDOUT,
 * ECONNREFUSED, ...) and exit with a code that tells them apart (see enum below). The elapsed
 * time of the operation goes to stderr as "elapsed_ms=N". Servers listen on [::] (dual stack,
 * falling back to IPv4 only) or on BIND, the one address they then answer from, and exit by
 * themselves after WTOOL_LIFETIME seconds (default 900).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <linux/tcp.h> /* struct tcp_info with the segment counts */
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
	WT_OK = 0,
	WT_USAGE = 2,
	WT_EPERM = 3,
	WT_EACCES = 4,
	WT_ETIMEDOUT = 5,
	WT_ECONNREFUSED = 6,
	WT_UNREACH = 7,
	WT_OTHER = 8,
	WT_NOREPLY = 9,
};

static long long t_start;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *errname(int e)
{
	static char buf[32];
	switch (e) {
	case EPERM:
		return "EPERM";
	case EACCES:
		return "EACCES";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case ECONNREFUSED:
		return "ECONNREFUSED";
	case ECONNRESET:
		return "ECONNRESET";
	case ENETUNREACH:
		return "ENETUNREACH";
	case EHOSTUNREACH:
		return "EHOSTUNREACH";
	case EADDRNOTAVAIL:
		return "EADDRNOTAVAIL";
	case EAFNOSUPPORT:
		return "EAFNOSUPPORT";
	case EINVAL:
		return "EINVAL";
	case ENOBUFS:
		return "ENOBUFS";
	case EMSGSIZE:
		return "EMSGSIZE";
	case EPIPE:
		return "EPIPE";
	case EAGAIN:
		return "EAGAIN";
	default:
		snprintf(buf, sizeof(buf), "E%d", e);
		return buf;
	}
}

static int errcode(int e)
{
	switch (e) {
	case EPERM:
		return WT_EPERM;
	case EACCES:
		return WT_EACCES;
	case ETIMEDOUT:
	case EAGAIN:
		return WT_ETIMEDOUT;
	case ECONNREFUSED:
		return WT_ECONNREFUSED;
	case ENETUNREACH:
	case EHOSTUNREACH:
		return WT_UNREACH;
	default:
		return WT_OTHER;
	}
}

static void elapsed(void)
{
	fprintf(stderr, "elapsed_ms=%lld\n", now_ms() - t_start);
}

/* Print the errno name (plus optional detail) and exit with its code. */
static void __attribute__((noreturn)) fail(int e, const char *what)
{
	if (e == EAGAIN || e == EWOULDBLOCK)
		e = ETIMEDOUT;
	printf("%s\n", errname(e));
	fflush(stdout);
	fprintf(stderr, "wtool: %s: %s\n", what, strerror(e));
	elapsed();
	exit(errcode(e));
}

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr,
		"usage: wtool connect ADDR PORT [timeout_ms]\n"
		"       wtool tcp-send ADDR PORT BYTES [timeout_ms]\n"
		"       wtool tcp-rr ADDR PORT [timeout_ms]\n"
		"       wtool udp-send ADDR PORT COUNT SIZE\n"
		"       wtool udp-rr ADDR PORT [timeout_ms]\n"
		"       wtool ping ADDR COUNT [SIZE] [timeout_ms]\n"
		"       wtool tcp-server|udp-echo-server|udp-sink PORT [BIND_ADDR]\n"
		"       wtool udp-reply-server PORT sendto|connect [ALSO4 ALSO6 ALSO_PORT]\n"
		"       wtool udp-flood ADDR PORT_LO PORT_HI SOCKETS REPEAT\n"
		"       wtool udp-await ADDR PORT [timeout_ms]\n"
		"       wtool udp-reply-later PORT GO_FILE [BIND_ADDR]\n"
		"       wtool hammer DENIED ALLOWED UDP_PORT TCP_PORT SECONDS [STATS_FILE]\n");
	exit(WT_USAGE);
}

static long num(const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "wtool: bad number '%s' (expected %ld..%ld)\n", s, lo, hi);
		exit(WT_USAGE);
	}
	return v;
}

static socklen_t parse_addr(const char *s, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, s, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		return sizeof(*in4);
	}
	if (inet_pton(AF_INET6, s, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		return sizeof(*in6);
	}
	fprintf(stderr, "wtool: bad address '%s'\n", s);
	exit(WT_USAGE);
}

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void *a = ss->ss_family == AF_INET
				? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
				: (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
	if (!inet_ntop(ss->ss_family, a, buf, len))
		snprintf(buf, len, "?");
	/* Show v4-mapped peers of a dual-stack socket as plain IPv4. */
	if (strncmp(buf, "::ffff:", 7) == 0 && strchr(buf + 7, '.'))
		memmove(buf, buf + 7, strlen(buf + 7) + 1);
	return buf;
}

static void set_timeouts(int fd, int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* TCP connect with a bounded wait. Returns a blocking fd, or exits through fail(). */
static int tcp_connect(const char *addr, int port, int timeout_ms)
{
	struct sockaddr_storage ss;
	socklen_t len = parse_addr(addr, port, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail(errno, "socket");
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		if (errno != EINPROGRESS)
			fail(errno, "connect");
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int r = poll(&p, 1, timeout_ms);
		if (r < 0)
			fail(errno, "poll");
		if (r == 0)
			fail(ETIMEDOUT, "connect");
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			fail(errno, "getsockopt");
		if (soerr)
			fail(soerr, "connect");
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	set_timeouts(fd, timeout_ms);
	return fd;
}

static int cmd_connect(int argc, char **argv)
{
	if (argc < 2 || argc > 3)
		usage();
	int timeout = argc > 2 ? (int)num(argv[2], 1, 600000) : 2000;
	int fd = tcp_connect(argv[0], (int)num(argv[1], 1, 65535), timeout);
	close(fd);
	printf("ok\n");
	elapsed();
	return WT_OK;
}

/* Write all of buf; exits through fail() on error. */
static void write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail(errno, "send");
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* Read until EOF (or timeout) into buf; returns bytes read, -errno on error before any data. */
static ssize_t read_reply(int fd, char *buf, size_t len)
{
	size_t got = 0;
	while (got + 1 < len) {
		ssize_t n = recv(fd, buf + got, len - 1 - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (got)
				break;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	while (got && (buf[got - 1] == '\n' || buf[got - 1] == '\r'))
		buf[--got] = '\0';
	return (ssize_t)got;
}

static int tcp_exchange(const char *addr, int port, long long bytes, int timeout, int rr)
{
	int fd = tcp_connect(addr, port, timeout);
	char chunk[16384];
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (char)('a' + i % 26);
	long long left = bytes;
	while (left > 0) {
		size_t n = left > (long long)sizeof(chunk) ? sizeof(chunk) : (size_t)left;
		write_all(fd, chunk, n);
		left -= (long long)n;
	}
	if (shutdown(fd, SHUT_WR) < 0)
		fail(errno, "shutdown");
	char reply[256];
	ssize_t r = read_reply(fd, reply, sizeof(reply));
	close(fd);
	if (r < 0)
		fail((int)-r, "recv");
	if (r == 0) {
		printf("NOREPLY sent=%lld\n", bytes);
		elapsed();
		return WT_NOREPLY;
	}
	if (rr)
		printf("ok reply=\"%s\"\n", reply);
	else
		printf("ok sent=%lld reply=\"%s\"\n", bytes, reply);
	elapsed();
	return WT_OK;
}

static int cmd_tcp_send(int argc, char **argv)
{
	if (argc < 3 || argc > 4)
		usage();
	int timeout = argc > 3 ? (int)num(argv[3], 1, 600000) : 5000;
	return tcp_exchange(argv[0], (int)num(argv[1], 1, 65535), num(argv[2], 0, 1L << 34),
			    timeout, 0);
}

static int cmd_tcp_rr(int argc, char **argv)
{
	if (argc < 2 || argc > 3)
		usage();
	int timeout = argc > 2 ? (int)num(argv[2], 1, 600000) : 2000;
	return tcp_exchange(argv[0], (int)num(argv[1], 1, 65535), 64, timeout, 1);
}

static int udp_socket(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	*len = parse_addr(addr, port, ss);
	int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail(errno, "socket");
	return fd;
}

static int cmd_udp_send(int argc, char **argv)
{
	if (argc != 4)
		usage();
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = udp_socket(argv[0], (int)num(argv[1], 1, 65535), &ss, &len);
	long count = num(argv[2], 0, 1000000);
	size_t size = (size_t)num(argv[3], 0, 65000);
	char *buf = calloc(1, size + 1);
	if (!buf)
		fail(ENOMEM, "calloc");
	memset(buf, 'u', size);
	for (long i = 0; i < count; i++) {
		ssize_t n = sendto(fd, buf, size, 0, (struct sockaddr *)&ss, len);
		if (n < 0) {
			if (errno == EINTR) {
				i--;
				continue;
			}
			fprintf(stderr, "wtool: udp-send: %ld of %ld sent\n", i, count);
			fail(errno, "sendto");
		}
		if ((size_t)n != size)
			fail(EMSGSIZE, "sendto (short)");
		/* A little pacing so that a receiver's socket buffer never overflows. */
		if (count > 1)
			usleep(200);
	}
	close(fd);
	printf("ok sent=%ld size=%zu\n", count, size);
	elapsed();
	return WT_OK;
}

static int cmd_udp_rr(int argc, char **argv)
{
	if (argc < 2 || argc > 3)
		usage();
	int timeout = argc > 2 ? (int)num(argv[2], 1, 600000) : 2000;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = udp_socket(argv[0], (int)num(argv[1], 1, 65535), &ss, &len);
	set_timeouts(fd, timeout);
	const char msg[] = "wtool-udp-rr";
	if (sendto(fd, msg, sizeof(msg) - 1, 0, (struct sockaddr *)&ss, len) < 0)
		fail(errno, "sendto");
	char buf[2048];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail(errno, "recv");
		}
		if ((size_t)n == sizeof(msg) - 1 && memcmp(buf, msg, (size_t)n) == 0)
			break;
	}
	close(fd);
	printf("ok\n");
	elapsed();
	return WT_OK;
}

/* Many distinct UDP flows, fast: one flow per (socket, port), each used REPEAT times. */
static int cmd_udp_flood(int argc, char **argv)
{
	if (argc != 5)
		usage();
	struct sockaddr_storage ss;
	socklen_t len = parse_addr(argv[0], 1, &ss);
	long lo = num(argv[1], 1, 65535), hi = num(argv[2], lo, 65535);
	long nsock = num(argv[3], 1, 64), repeat = num(argv[4], 1, 100);
	long flows = 0, sends = 0;
	int fds[64];
	char byte = 'f';

	for (long s = 0; s < nsock; s++) {
		fds[s] = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fds[s] < 0)
			fail(errno, "socket");
	}
	for (long s = 0; s < nsock; s++)
		for (long port = lo; port <= hi; port++) {
			if (ss.ss_family == AF_INET)
				((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
			else
				((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
			for (long r = 0; r < repeat; r++) {
				if (sendto(fds[s], &byte, 1, 0, (struct sockaddr *)&ss, len) < 0) {
					if (errno == EINTR) {
						r--;
						continue;
					}
					fprintf(stderr, "wtool: udp-flood: %ld flows, %ld sends\n",
						flows, sends);
					fail(errno, "sendto");
				}
				sends++;
			}
			flows++;
		}
	printf("ok flows=%ld sends=%ld\n", flows, sends);
	elapsed();
	return WT_OK;
}

/* One datagram, then wait for whatever ADDR PORT answers (udp-reply-later answers late). */
static int cmd_udp_await(int argc, char **argv)
{
	if (argc < 2 || argc > 3)
		usage();
	int timeout = argc > 2 ? (int)num(argv[2], 1, 600000) : 2000;
	struct sockaddr_storage ss, from;
	socklen_t len, fl;
	int fd = udp_socket(argv[0], (int)num(argv[1], 1, 65535), &ss, &len);
	char buf[2048];

	set_timeouts(fd, timeout);
	if (sendto(fd, "wtool-await", 11, 0, (struct sockaddr *)&ss, len) < 0)
		fail(errno, "sendto");
	printf("sent\n");
	fflush(stdout);
	for (;;) {
		fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail(errno, "recv");
		}
		if (fl == len && !memcmp(&from, &ss, len))
			break;
	}
	close(fd);
	printf("ok\n");
	elapsed();
	return WT_OK;
}

static uint16_t csum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/*
 * ICMP echo. A datagram ("ping") socket needs net.ipv4.ping_group_range to include our gid
 * (set it in the container's sysctls); otherwise fall back to a raw socket (CAP_NET_RAW).
 * Exactly COUNT requests of 8 + SIZE bytes of ICMP, one at a time, each waiting for its reply.
 */
static int cmd_ping(int argc, char **argv)
{
	if (argc < 2 || argc > 4)
		usage();
	struct sockaddr_storage ss;
	socklen_t len = parse_addr(argv[0], 0, &ss);
	long count = num(argv[1], 1, 100000);
	size_t size = argc > 2 ? (size_t)num(argv[2], 0, 65000) : 56;
	int timeout = argc > 3 ? (int)num(argv[3], 1, 600000) : 1000;
	int v6 = ss.ss_family == AF_INET6;
	int proto = v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
	int raw = 0;
	int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, proto);
	if (fd < 0) {
		int e = errno;
		fd = socket(ss.ss_family, SOCK_RAW | SOCK_CLOEXEC, proto);
		if (fd < 0)
			fail(e, "socket(ICMP datagram), raw fallback failed too");
		raw = 1;
	}
	uint16_t ident = (uint16_t)(getpid() & 0xffff);
	size_t plen = 8 + size;
	uint8_t *pkt = calloc(1, plen), *rbuf = malloc(plen + 128);
	if (!pkt || !rbuf)
		fail(ENOMEM, "malloc");
	for (size_t i = 8; i < plen; i++)
		pkt[i] = (uint8_t)i;
	long received = 0;
	for (long seq = 1; seq <= count; seq++) {
		pkt[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
		pkt[1] = 0;
		pkt[2] = pkt[3] = 0;
		*(uint16_t *)(pkt + 4) = htons(ident);
		*(uint16_t *)(pkt + 6) = htons((uint16_t)seq);
		if (!v6) {
			uint16_t c = csum(pkt, plen);
			memcpy(pkt + 2, &c, 2);
		}
		if (sendto(fd, pkt, plen, 0, (struct sockaddr *)&ss, len) < 0) {
			fprintf(stderr, "wtool: ping: %ld of %ld sent\n", seq - 1, count);
			fail(errno, "sendto");
		}
		long long deadline = now_ms() + timeout;
		for (;;) {
			long long left = deadline - now_ms();
			if (left <= 0)
				break;
			struct pollfd p = {.fd = fd, .events = POLLIN};
			int r = poll(&p, 1, (int)left);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			ssize_t n = recv(fd, rbuf, plen + 128, 0);
			if (n < 0)
				break;
			uint8_t *icmp = rbuf;
			if (raw && !v6) {
				size_t hl = (size_t)(rbuf[0] & 0x0f) * 4;
				if ((size_t)n < hl + 8)
					continue;
				icmp = rbuf + hl;
				n -= (ssize_t)hl;
			}
			if (n < 8)
				continue;
			int reply = v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY;
			if (icmp[0] != reply || ntohs(*(uint16_t *)(icmp + 6)) != (uint16_t)seq)
				continue;
			if (raw && ntohs(*(uint16_t *)(icmp + 4)) != ident)
				continue;
			received++;
			break;
		}
	}
	close(fd);
	if (received == count)
		printf("ok sent=%ld received=%ld size=%zu\n", count, received, size);
	else if (received == 0)
		printf("ETIMEDOUT sent=%ld received=0\n", count);
	else
		printf("LOSS sent=%ld received=%ld\n", count, received);
	elapsed();
	return received == count ? WT_OK : received == 0 ? WT_ETIMEDOUT : WT_NOREPLY;
}

/* A server on [::]:PORT (dual stack, else 0.0.0.0), or on BIND:PORT when given: a server
 * bound to one address of a multi-homed host also answers from that address. */
static int server_socket(int type, int port, const char *bind_addr)
{
	int one = 1, zero = 0, fd;
	if (bind_addr) {
		struct sockaddr_storage ss;
		socklen_t len = parse_addr(bind_addr, port, &ss);
		fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0);
		if (fd < 0)
			fail(errno, "socket");
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ss.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&ss, len) < 0)
			fail(errno, "bind");
		goto bound;
	}
	fd = socket(AF_INET6, type | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		struct sockaddr_in6 a = {.sin6_family = AF_INET6,
					 .sin6_port = htons(port),
					 .sin6_addr = IN6ADDR_ANY_INIT};
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			goto bound;
		close(fd);
	}
	fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail(errno, "socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (bind(fd, (struct sockaddr *)&a4, sizeof(a4)) < 0)
		fail(errno, "bind");
bound:
	if (type == SOCK_STREAM && listen(fd, 128) < 0)
		fail(errno, "listen");
	printf("listening %s/%d%s%s\n", type == SOCK_STREAM ? "tcp" : "udp", port,
	       bind_addr ? " on " : "", bind_addr ? bind_addr : "");
	fflush(stdout);
	return fd;
}

static void lifetime(void)
{
	const char *s = getenv("WTOOL_LIFETIME");
	long secs = s ? strtol(s, NULL, 10) : 900;
	alarm(secs > 0 ? (unsigned)secs : 900);
}

static int cmd_tcp_server(int argc, char **argv)
{
	if (argc < 1 || argc > 2)
		usage();
	lifetime();
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	int lfd =
		server_socket(SOCK_STREAM, (int)num(argv[0], 1, 65535), argc > 1 ? argv[1] : NULL);
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept(lfd, (struct sockaddr *)&ss, &sl);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fail(errno, "accept");
		}
		pid_t pid = fork();
		if (pid < 0) {
			close(fd);
			continue;
		}
		if (pid > 0) {
			close(fd);
			continue;
		}
		close(lfd);
		set_timeouts(fd, 5000);
		char buf[16384], peer[INET6_ADDRSTRLEN];
		long long total = 0;
		for (;;) {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			total += n;
		}
		char reply[64];
		int rl = snprintf(reply, sizeof(reply), "received %lld\n", total);
		send(fd, reply, (size_t)rl, MSG_NOSIGNAL);
		close(fd);
		printf("tcp received %lld from %s\n", total, addr_str(&ss, peer, sizeof(peer)));
		fflush(stdout);
		_exit(0);
	}
}

static int udp_server(int argc, char **argv, int echo)
{
	if (argc < 1 || argc > 2)
		usage();
	lifetime();
	int fd = server_socket(SOCK_DGRAM, (int)num(argv[0], 1, 65535), argc > 1 ? argv[1] : NULL);
	static char buf[65536];
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail(errno, "recvfrom");
		}
		if (echo) {
			sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&ss, sl);
		} else {
			char peer[INET6_ADDRSTRLEN];
			printf("udp %zd from %s\n", n, addr_str(&ss, peer, sizeof(peer)));
			fflush(stdout);
		}
	}
}

/* Receive a datagram, say so ("got N from PEER"), answer it once GO_FILE exists. */
static int cmd_udp_reply_later(int argc, char **argv)
{
	if (argc < 2 || argc > 3)
		usage();
	lifetime();
	int fd = server_socket(SOCK_DGRAM, (int)num(argv[0], 1, 65535), argc > 2 ? argv[2] : NULL);
	static char buf[65536];
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char peer[INET6_ADDRSTRLEN];
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail(errno, "recvfrom");
		}
		printf("got %zd from %s\n", n, addr_str(&ss, peer, sizeof(peer)));
		fflush(stdout);
		while (access(argv[1], F_OK))
			usleep(10000);
		if (sendto(fd, "late", 4, 0, (struct sockaddr *)&ss, sl) < 0)
			printf("reply: %s\n", errname(errno));
		else
			printf("replied to %s\n", peer);
		fflush(stdout);
	}
}

/*
 * A UDP server that says what became of each reply: "reply N to PEER: ok" or the errno's name.
 * sendto: the reply names the client. connect: a socket bound to the server's port connect()s
 * to the client and send()s (the pattern of servers that keep a socket per client). With ALSO,
 * each datagram is followed by one to ALSO4 or ALSO6 (the client's family) from the same
 * socket, a peer that never sent anything: "also N to ADDR: ...".
 */
static int cmd_udp_reply_server(int argc, char **argv)
{
	if ((argc != 2 && argc != 5) || (strcmp(argv[1], "sendto") && strcmp(argv[1], "connect")))
		usage();
	lifetime();
	int connect_mode = !strcmp(argv[1], "connect");
	int fd = server_socket(SOCK_DGRAM, (int)num(argv[0], 1, 65535), NULL);
	static char buf[65536];
	for (long n = 1;; n++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char peer[INET6_ADDRSTRLEN];
		ssize_t len = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl);
		int e = 0;
		if (len < 0) {
			if (errno == EINTR) {
				n--;
				continue;
			}
			fail(errno, "recvfrom");
		}
		addr_str(&ss, peer, sizeof(peer));
		if (connect_mode) {
			/*
			 * A socket of its own per reply, bound to the server's port: disconnecting
			 * (AF_UNSPEC) the server's own socket after a connect() to an IPv4-mapped
			 * client leaves it deaf to IPv6 datagrams on Linux 6.18.
			 */
			struct sockaddr_storage me;
			socklen_t ml = sizeof(me);
			int one = 1, zero = 0;
			int cfd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (cfd < 0 || getsockname(fd, (struct sockaddr *)&me, &ml) < 0) {
				e = errno;
			} else {
				setsockopt(cfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
				if (ss.ss_family == AF_INET6)
					setsockopt(cfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
						   sizeof(zero));
				if (bind(cfd, (struct sockaddr *)&me, ml) < 0 ||
				    connect(cfd, (struct sockaddr *)&ss, sl) < 0 ||
				    send(cfd, buf, (size_t)len, 0) < 0)
					e = errno;
			}
			if (cfd >= 0)
				close(cfd);
		} else if (sendto(fd, buf, (size_t)len, 0, (struct sockaddr *)&ss, sl) < 0) {
			e = errno;
		}
		printf("reply %ld to %s: %s\n", n, peer, e ? errname(e) : "ok");
		if (argc == 5) {
			/* the client's family: a dual-stack socket shows IPv4 clients mapped */
			const char *also = strchr(peer, ':') ? argv[3] : argv[2];
			struct sockaddr_storage as;
			socklen_t al = parse_addr(also, (int)num(argv[4], 1, 65535), &as);
			if (as.ss_family == AF_INET && ss.ss_family == AF_INET6) {
				struct sockaddr_in6 m = {
					.sin6_family = AF_INET6,
					.sin6_port = ((struct sockaddr_in *)&as)->sin_port};
				m.sin6_addr.s6_addr[10] = m.sin6_addr.s6_addr[11] = 0xff;
				memcpy(&m.sin6_addr.s6_addr[12],
				       &((struct sockaddr_in *)&as)->sin_addr, 4);
				memcpy(&as, &m, sizeof(m));
				al = sizeof(m);
			}
			e = sendto(fd, "also", 4, 0, (struct sockaddr *)&as, al) < 0 ? errno : 0;
			printf("also %ld to %s: %s\n", n, also, e ? errname(e) : "ok");
		}
		fflush(stdout);
	}
}

/* ---- hammer: continuous denied and allowed traffic, for restart-under-fire tests ---------- */

struct hammer_counts {
	long rounds;
	long d_udp_eperm, d_udp_sent, d_udp_other;	 /* datagrams to DENIED */
	long d_tcp_eperm, d_tcp_leak, d_tcp_other;	 /* connect attempts to DENIED */
	long a_udp_ok, a_udp_fail, a_tcp_ok, a_tcp_fail; /* traffic to ALLOWED */
};

static volatile sig_atomic_t hammer_stop;

static void hammer_on_term(int sig)
{
	(void)sig;
	hammer_stop = 1;
}

static void hammer_print(FILE *f, const struct hammer_counts *c)
{
	fprintf(f,
		"rounds=%ld denied_udp_eperm=%ld denied_udp_sent=%ld denied_udp_other=%ld "
		"denied_tcp_eperm=%ld denied_tcp_leak=%ld denied_tcp_other=%ld allowed_udp_ok=%ld "
		"allowed_udp_fail=%ld allowed_tcp_ok=%ld allowed_tcp_fail=%ld\n",
		c->rounds, c->d_udp_eperm, c->d_udp_sent, c->d_udp_other, c->d_tcp_eperm,
		c->d_tcp_leak, c->d_tcp_other, c->a_udp_ok, c->a_udp_fail, c->a_tcp_ok,
		c->a_tcp_fail);
}

/* Written whole to a temporary file, then renamed: a reader never sees half a line. */
static void hammer_save(const char *path, const struct hammer_counts *c)
{
	char tmp[4096];
	FILE *f;

	if (!path)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	hammer_print(f, c);
	if (fclose(f) == 0)
		rename(tmp, path);
}

/*
 * One TCP connect attempt without waiting for the handshake unless wait_ms > 0: 0 when it
 * connected (or, without waiting, when a SYN went out: EINPROGRESS), else the errno.
 */
static int hammer_connect(const struct sockaddr_storage *ss, socklen_t len, int wait_ms)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), e = 0;

	if (fd < 0)
		return errno;
	if (connect(fd, (const struct sockaddr *)ss, len) < 0) {
		e = errno;
		if (e == EINPROGRESS) {
			e = 0;
			if (wait_ms > 0) {
				struct pollfd p = {.fd = fd, .events = POLLOUT};
				socklen_t sl = sizeof(e);

				if (poll(&p, 1, wait_ms) <= 0)
					e = ETIMEDOUT;
				else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0)
					e = errno;
			}
		}
	}
	close(fd);
	return e;
}

static int cmd_hammer(int argc, char **argv)
{
	if (argc < 5 || argc > 6)
		usage();
	struct sockaddr_storage du, dt, au, at;
	int uport = (int)num(argv[2], 1, 65535), tport = (int)num(argv[3], 1, 65535);
	socklen_t dul = parse_addr(argv[0], uport, &du), dtl = parse_addr(argv[0], tport, &dt);
	socklen_t aul = parse_addr(argv[1], uport, &au), atl = parse_addr(argv[1], tport, &at);
	long long end = now_ms() + num(argv[4], 1, 86400) * 1000;
	const char *stats = argc > 5 ? argv[5] : NULL;
	struct hammer_counts c = {0};
	const char payload[] = "weir-hammer";
	struct sigaction sa = {.sa_handler = hammer_on_term};

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	int ud = socket(du.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int ua = socket(au.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ud < 0 || ua < 0)
		fail(errno, "socket");
	while (!hammer_stop && now_ms() < end) {
		int e;

		/* unconnected sockets: the sendmsg hook decides every datagram afresh */
		if (sendto(ud, payload, sizeof(payload) - 1, 0, (struct sockaddr *)&du, dul) >= 0)
			c.d_udp_sent++;
		else if (errno == EPERM)
			c.d_udp_eperm++;
		else
			c.d_udp_other++;
		e = hammer_connect(&dt, dtl, 0);
		if (e == EPERM)
			c.d_tcp_eperm++;
		else if (!e)
			c.d_tcp_leak++;
		else
			c.d_tcp_other++;
		if (c.rounds % 10 == 0) {
			if (sendto(ua, payload, sizeof(payload) - 1, 0, (struct sockaddr *)&au,
				   aul) < 0)
				c.a_udp_fail++;
			else
				c.a_udp_ok++;
		}
		if (c.rounds % 50 == 0 && hammer_connect(&at, atl, 500))
			c.a_tcp_fail++;
		else if (c.rounds % 50 == 0)
			c.a_tcp_ok++;
		if (++c.rounds % 100 == 0)
			hammer_save(stats, &c);
		usleep(1000);
	}
	hammer_save(stats, &c);
	hammer_print(stdout, &c);
	return WT_OK;
}

/* ---- hold: long-lived sockets, for verdicts that must change under open connections ---- */

#define HOLD_MAX 16
#define HOLD_MSG 100

enum hold_kind { HOLD_TCP, HOLD_UDP, HOLD_TCP_LISTEN, HOLD_UDP_LISTEN, HOLD_TCP_CONN, HOLD_CLOSED };

struct hold_sock {
	int fd;
	enum hold_kind kind;
	int connected; /* a UDP server: connect()ed to its first client */
	size_t got;    /* a client: echo bytes of the current round */
	int err;       /* a client: the send's errno this round */
};

static struct hold_sock hold_socks[HOLD_MAX];
static int hold_n;
static int hold_stdin = 1; /* stdin is still open */

static void hold_add(int fd, enum hold_kind kind)
{
	if (hold_n == HOLD_MAX) {
		fprintf(stderr, "wtool: too many sockets\n");
		exit(WT_USAGE);
	}
	hold_socks[hold_n++] = (struct hold_sock){.fd = fd, .kind = kind};
}

static void hold_open(char *spec)
{
	char *kind = strtok(spec, ","), *a = strtok(NULL, ","), *b = strtok(NULL, ",");
	int one = 1;

	if (kind && a && !strcmp(kind, "tcp-listen")) {
		hold_add(server_socket(SOCK_STREAM, (int)num(a, 1, 65535), b), HOLD_TCP_LISTEN);
	} else if (kind && a && !strcmp(kind, "udp-listen")) {
		/* bound to BIND, the connected socket answers from the address the client used */
		hold_add(server_socket(SOCK_DGRAM, (int)num(a, 1, 65535), b), HOLD_UDP_LISTEN);
	} else if (kind && a && b && !strcmp(kind, "tcp")) {
		int fd = tcp_connect(a, (int)num(b, 1, 65535), 2000);

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		hold_add(fd, HOLD_TCP);
	} else if (kind && a && b && !strcmp(kind, "udp")) {
		struct sockaddr_storage ss;
		socklen_t len = parse_addr(a, (int)num(b, 1, 65535), &ss);
		int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0)
			fail(errno, "udp connect");
		hold_add(fd, HOLD_UDP);
	} else {
		usage();
	}
}

/* One socket is readable: accept, echo, or count a client's echo. */
static void hold_serve(struct hold_sock *h)
{
	char buf[2048];
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	ssize_t n;
	int fd, one = 1;

	switch (h->kind) {
	case HOLD_TCP_LISTEN:
		fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			hold_add(fd, HOLD_TCP_CONN);
		}
		return;
	case HOLD_UDP_LISTEN:
		n = recvfrom(h->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n <= 0)
			return;
		/* a server that answers its one client from a connected socket */
		if (!h->connected && !connect(h->fd, (struct sockaddr *)&from, fl))
			h->connected = 1;
		send(h->fd, buf, (size_t)n, MSG_DONTWAIT);
		return;
	case HOLD_TCP_CONN:
		n = recv(h->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0)
			write_all(h->fd, buf, (size_t)n);
		else if (n == 0)
			h->kind = HOLD_CLOSED; /* ignored from now on */
		return;
	case HOLD_TCP:
	case HOLD_UDP:
		n = recv(h->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0)
			h->got += (size_t)n;
		return;
	case HOLD_CLOSED:
		return;
	}
}

static int hold_pending(void)
{
	for (int i = 0; i < hold_n; i++)
		if ((hold_socks[i].kind == HOLD_TCP || hold_socks[i].kind == HOLD_UDP) &&
		    !hold_socks[i].err && hold_socks[i].got < HOLD_MSG)
			return 1;
	return 0;
}

/* Serve every socket until stdin has a line or until deadline (0: none). */
static void hold_poll(long long deadline)
{
	struct pollfd p[HOLD_MAX + 1];
	int i, r, wait;

	for (;;) {
		if (deadline && (now_ms() >= deadline || !hold_pending()))
			return;
		p[0] = (struct pollfd){.fd = deadline || !hold_stdin ? -1 : 0, .events = POLLIN};
		for (i = 0; i < hold_n; i++)
			p[i + 1] = (struct pollfd){
				.fd = hold_socks[i].kind > HOLD_TCP_CONN ? -1 : hold_socks[i].fd,
				.events = POLLIN};
		wait = deadline ? (int)(deadline - now_ms()) : -1;
		r = poll(p, (nfds_t)hold_n + 1, wait < 0 && deadline ? 0 : wait);
		if (r < 0 && errno != EINTR)
			fail(errno, "poll");
		for (i = 0; r > 0 && i < hold_n; i++)
			if (p[i + 1].revents)
				hold_serve(&hold_socks[i]);
		if (!deadline && r > 0 && p[0].revents)
			return;
	}
}

static void hold_round(const char *name)
{
	char msg[HOLD_MSG];
	int i;

	memset(msg, 'r', sizeof(msg));
	for (i = 0; i < hold_n; i++) {
		struct hold_sock *h = &hold_socks[i];

		if (h->kind != HOLD_TCP && h->kind != HOLD_UDP)
			continue;
		h->got = 0;
		h->err = 0;
		if (send(h->fd, msg, sizeof(msg), MSG_DONTWAIT) != (ssize_t)sizeof(msg))
			h->err = errno ? errno : EIO;
	}
	hold_poll(now_ms() + 1500);
	printf("round %s", name);
	for (i = 0; i < hold_n; i++) {
		struct hold_sock *h = &hold_socks[i];

		if (h->kind != HOLD_TCP && h->kind != HOLD_UDP)
			continue;
		printf(" %s", h->err ? errname(h->err) : h->got >= HOLD_MSG ? "ok" : "lost");
	}
	printf("\n");
}

static void hold_info(void)
{
	unsigned long long out = 0, in = 0;

	for (int i = 0; i < hold_n; i++) {
		struct tcp_info ti;
		socklen_t l = sizeof(ti);

		if (hold_socks[i].kind != HOLD_TCP && hold_socks[i].kind != HOLD_TCP_CONN)
			continue;
		if (getsockopt(hold_socks[i].fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0)
			fail(errno, "TCP_INFO");
		out += ti.tcpi_segs_out;
		in += ti.tcpi_segs_in;
	}
	printf("tcp segs_out=%llu segs_in=%llu\n", out, in);
}

static int cmd_hold(int argc, char **argv)
{
	char line[128];

	if (argc < 1)
		usage();
	lifetime();
	for (int i = 0; i < argc; i++)
		hold_open(argv[i]);
	printf("listening\n");
	for (;;) {
		hold_poll(0);
		if (!fgets(line, sizeof(line), stdin)) {
			/* a client is done; a server goes on serving its clients */
			for (int i = 0; i < hold_n; i++)
				if (hold_socks[i].kind == HOLD_TCP ||
				    hold_socks[i].kind == HOLD_UDP)
					return WT_OK;
			hold_stdin = 0;
			continue;
		}
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "round ", 6))
			hold_round(line + 6);
		else if (!strcmp(line, "info"))
			hold_info();
	}
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	t_start = now_ms();
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *cmd = argv[1];
	argc -= 2;
	argv += 2;
	if (!strcmp(cmd, "connect"))
		return cmd_connect(argc, argv);
	if (!strcmp(cmd, "tcp-send"))
		return cmd_tcp_send(argc, argv);
	if (!strcmp(cmd, "tcp-rr"))
		return cmd_tcp_rr(argc, argv);
	if (!strcmp(cmd, "udp-send"))
		return cmd_udp_send(argc, argv);
	if (!strcmp(cmd, "udp-rr"))
		return cmd_udp_rr(argc, argv);
	if (!strcmp(cmd, "ping"))
		return cmd_ping(argc, argv);
	if (!strcmp(cmd, "tcp-server"))
		return cmd_tcp_server(argc, argv);
	if (!strcmp(cmd, "udp-echo-server"))
		return udp_server(argc, argv, 1);
	if (!strcmp(cmd, "udp-reply-server"))
		return cmd_udp_reply_server(argc, argv);
	if (!strcmp(cmd, "udp-sink"))
		return udp_server(argc, argv, 0);
	if (!strcmp(cmd, "udp-flood"))
		return cmd_udp_flood(argc, argv);
	if (!strcmp(cmd, "udp-await"))
		return cmd_udp_await(argc, argv);
	if (!strcmp(cmd, "udp-reply-later"))
		return cmd_udp_reply_later(argc, argv);
	if (!strcmp(cmd, "hold"))
		return cmd_hold(argc, argv);
	if (!strcmp(cmd, "hammer"))
		return cmd_hammer(argc, argv);
	usage();
}
