// SPDX-License-Identifier: Apache-2.0
/* Network namespaces of containers, from /proc and sockets opened inside them (never ip). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "netns.h"
#include "util.h"

int weir_netns_socket(pid_t pid, int domain, int type, int protocol)
{
	_cleanup_close_ int self = -1, target = -1;
	char path[64];
	int fd, r = 0;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	target = open(path, O_RDONLY | O_CLOEXEC);
	if (target < 0)
		return -errno;
	/* this thread's namespace: another thread of the process may have entered another */
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return -errno;
	if (setns(target, CLONE_NEWNET))
		return -errno;
	fd = socket(domain, type | SOCK_CLOEXEC, protocol);
	if (fd < 0)
		r = -errno;
	if (setns(self, CLONE_NEWNET)) {
		/* a thread stuck in a container's namespace must not go on as if at home */
		perror("weir: cannot return to the host network namespace");
		abort();
	}
	return fd < 0 ? r : fd;
}

/*
 * Addresses from /proc/<pid>/net: readable with the capabilities weir keeps (it needs no
 * setns, which CAP_SYS_ADMIN guards). IPv6: if_inet6, one address a line in hex. IPv4: the
 * local routing table's trie, where each "/32 host LOCAL" leaf follows the line naming its
 * address.
 */
static int addrs_v6(pid_t pid, weir_addr_fn fn, void *arg)
{
	char path[64], hex[33], line[256];
	FILE *f;
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/net/if_inet6", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno; /* no IPv6 in that namespace */
	while (!r && fgets(line, sizeof(line), f)) {
		uint8_t addr[16];

		if (sscanf(line, "%32s", hex) != 1 || strlen(hex) != 32)
			continue;
		for (int i = 0; i < 16; i++) {
			unsigned int b;

			sscanf(hex + 2 * i, "%2x", &b);
			addr[i] = (uint8_t)b;
		}
		r = fn(AF_INET6, addr, arg);
	}
	fclose(f);
	return r;
}

static int addrs_v4(pid_t pid, weir_addr_fn fn, void *arg)
{
	char path[64], line[256], last[64] = "";
	FILE *f;
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/net/fib_trie", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (!r && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "|-- ");
		struct in_addr a;

		if (p) {
			snprintf(last, sizeof(last), "%s", p + 4);
			last[strcspn(last, " \n")] = '\0';
		} else if (strstr(line, "/32 host LOCAL") && inet_pton(AF_INET, last, &a) == 1) {
			r = fn(AF_INET, (const uint8_t *)&a, arg);
		}
	}
	fclose(f);
	return r;
}

int weir_netns_addrs(pid_t pid, weir_addr_fn fn, void *arg)
{
	int r = addrs_v4(pid, fn, arg);

	return r ? r : addrs_v6(pid, fn, arg);
}
