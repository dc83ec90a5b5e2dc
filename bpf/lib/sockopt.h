/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket options (asm-generic/socket.h, linux/in.h, linux/in6.h, linux/tcp.h) the programs set
 * with bpf_setsockopt: the libc headers that name them cannot be included here.
 */
#ifndef WEIR_LIB_SOCKOPT_H
#define WEIR_LIB_SOCKOPT_H

#define WEIR_SOL_SOCKET		1
#define WEIR_SO_PRIORITY	12
#define WEIR_SO_MAX_PACING_RATE 47
#define WEIR_SOL_IP		0
#define WEIR_IP_TOS		1
#define WEIR_SOL_IPV6		41
#define WEIR_IPV6_TCLASS	67
#define WEIR_SOL_TCP		6
#define WEIR_TCP_CONGESTION	13
#define WEIR_AF_INET6		10

#endif
