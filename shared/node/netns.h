/* SPDX-License-Identifier: Apache-2.0 */
/* A container's network namespace, seen from outside it: sockets opened inside, addresses. */
#ifndef WEIR_NETNS_H
#define WEIR_NETNS_H

#include <stdint.h>
#include <sys/types.h>

/*
 * A socket(domain, type, protocol) that lives in the network namespace of pid: the calling
 * thread enters the namespace, opens it and comes back (the socket stays there). Returns the
 * fd or -errno.
 */
int weir_netns_socket(pid_t pid, int domain, int type, int protocol);

/*
 * Every local address of the namespace of pid (family AF_INET/AF_INET6, addr in network order),
 * read from /proc/<pid>/net: no setns, so it works with the capabilities weir keeps.
 */
typedef int (*weir_addr_fn)(int family, const uint8_t *addr, void *arg);
int weir_netns_addrs(pid_t pid, weir_addr_fn fn, void *arg);

#endif
