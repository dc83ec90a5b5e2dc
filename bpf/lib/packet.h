/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing. At cgroup_skb the skb starts at the network header (l2 = 0); at tc, at the
 * Ethernet header (l2 = ETH_HLEN). l4_off counts from the start of the skb's data.
 */
#ifndef WEIR_LIB_PACKET_H
#define WEIR_LIB_PACKET_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "../weir.h"

#define WEIR_IPV6_MAX_EXT 6

/* ICMP message types (RFC 792, RFC 4443); linux/icmp.h drags in libc headers. */
#define WEIR_ICMP_ECHOREPLY   0
#define WEIR_ICMP_ECHO	      8
#define WEIR_ICMPV6_ECHO_REQ  128
#define WEIR_ICMPV6_ECHO_REPL 129
#define WEIR_TCP_RST	      0x04

struct weir_pkt {
	__u8 family;
	__u8 proto;
	__u8 have_ports; /* false for non-first fragments and truncated headers */
	__u8 icmp_type;
	__u8 tcp_flags;
	__u16 sport; /* host order; ICMP echo: the identifier */
	__u16 dport;
	__u32 l3_hdr; /* IP header length incl. IPv6 extension headers */
	__u32 l4_off; /* from the start of the skb's data */
	__u32 l4_hdr; /* transport header length, for per-segment byte counts of GSO packets */
	__u8 saddr[16];
	__u8 daddr[16];
};

static __always_inline int weir_parse_l4(struct __sk_buff *skb, struct weir_pkt *p)
{
	__u16 ports[2];

	switch (p->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		if (bpf_skb_load_bytes(skb, p->l4_off, ports, sizeof(ports)))
			return 0;
		p->sport = bpf_ntohs(ports[0]);
		p->dport = bpf_ntohs(ports[1]);
		p->have_ports = 1;
		p->l4_hdr = 8;
		if (p->proto == IPPROTO_TCP) {
			__u8 off_flags[2]; /* data offset, then the flags byte */

			if (!bpf_skb_load_bytes(skb, p->l4_off + 12, off_flags, 2)) {
				p->l4_hdr = (off_flags[0] >> 4) * 4;
				p->tcp_flags = off_flags[1];
			}
		}
		return 0;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		/* type, code, checksum, then identifier for echo messages */
		__u8 hdr[6];

		if (bpf_skb_load_bytes(skb, p->l4_off, hdr, sizeof(hdr)))
			return 0;
		p->icmp_type = hdr[0];
		p->have_ports = 1;
		if ((p->proto == IPPROTO_ICMP &&
		     (hdr[0] == WEIR_ICMP_ECHO || hdr[0] == WEIR_ICMP_ECHOREPLY)) ||
		    (p->proto == IPPROTO_ICMPV6 &&
		     (hdr[0] == WEIR_ICMPV6_ECHO_REQ || hdr[0] == WEIR_ICMPV6_ECHO_REPL))) {
			p->sport = ((__u16)hdr[4] << 8) | hdr[5];
			p->dport = p->sport;
		}
		return 0;
	}
	default:
		return 0;
	}
}

static __always_inline int weir_parse_v4(struct __sk_buff *skb, struct weir_pkt *p, __u32 l2)
{
	struct iphdr ip;

	if (bpf_skb_load_bytes(skb, l2, &ip, sizeof(ip)))
		return -1;
	if (ip.ihl < 5)
		return -1;
	p->family = WEIR_V4;
	p->proto = ip.protocol;
	p->l3_hdr = ip.ihl * 4;
	p->l4_off = l2 + p->l3_hdr;
	__builtin_memcpy(p->saddr, &ip.saddr, 4);
	__builtin_memcpy(p->daddr, &ip.daddr, 4);
	/* A non-first fragment carries no L4 header. */
	if (ip.frag_off & bpf_htons(0x1fff))
		return 0;
	return weir_parse_l4(skb, p);
}

static __always_inline int weir_ipv6_is_ext(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
	       nh == IPPROTO_FRAGMENT || nh == IPPROTO_AH;
}

static __always_inline int weir_parse_v6(struct __sk_buff *skb, struct weir_pkt *p, __u32 l2)
{
	struct ipv6hdr ip6;
	__u32 off = sizeof(ip6);
	__u8 nh;
	int i;

	if (bpf_skb_load_bytes(skb, l2, &ip6, sizeof(ip6)))
		return -1;
	p->family = WEIR_V6;
	__builtin_memcpy(p->saddr, &ip6.saddr, 16);
	__builtin_memcpy(p->daddr, &ip6.daddr, 16);
	nh = ip6.nexthdr;
	for (i = 0; i < WEIR_IPV6_MAX_EXT; i++) {
		__u8 ext[2];

		if (!weir_ipv6_is_ext(nh))
			break;
		if (bpf_skb_load_bytes(skb, l2 + off, ext, sizeof(ext)))
			return -1;
		if (nh == IPPROTO_FRAGMENT) {
			__u16 frag;

			if (bpf_skb_load_bytes(skb, l2 + off + 2, &frag, sizeof(frag)))
				return -1;
			off += 8;
			nh = ext[0];
			if (bpf_ntohs(frag) & 0xfff8) {
				/* non-first fragment: L4 header is elsewhere */
				p->proto = nh;
				p->l3_hdr = off;
				p->l4_off = l2 + off;
				return 0;
			}
			continue;
		}
		off += nh == IPPROTO_AH ? ((__u32)ext[1] + 2) * 4 : ((__u32)ext[1] + 1) * 8;
		nh = ext[0];
	}
	p->proto = nh;
	p->l3_hdr = off;
	p->l4_off = l2 + off;
	return weir_parse_l4(skb, p);
}

/*
 * The common case read in place: IPv4 without options or IPv6 without extension headers,
 * carrying TCP or UDP, with the headers in the linear part of the skb. Returns 1 when the
 * packet needs the general path (bpf_skb_load_bytes), which handles everything else.
 */
static __always_inline int weir_parse_direct(struct __sk_buff *skb, struct weir_pkt *p, __u32 l2)
{
	void *data = (void *)(long)skb->data + l2;
	void *end = (void *)(long)skb->data_end;
	__u8 *l4;
	__u8 proto;

	if (skb->protocol == bpf_htons(0x0800)) {
		struct iphdr *ip = data;

		if ((void *)(ip + 1) > end || ip->ihl != 5 || (ip->frag_off & bpf_htons(0x1fff)))
			return 1;
		proto = ip->protocol;
		p->family = WEIR_V4;
		p->l3_hdr = sizeof(*ip);
		__builtin_memcpy(p->saddr, &ip->saddr, 4);
		__builtin_memcpy(p->daddr, &ip->daddr, 4);
		l4 = (__u8 *)(ip + 1);
	} else if (skb->protocol == bpf_htons(0x86DD)) {
		struct ipv6hdr *ip6 = data;

		if ((void *)(ip6 + 1) > end)
			return 1;
		proto = ip6->nexthdr;
		p->family = WEIR_V6;
		p->l3_hdr = sizeof(*ip6);
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->daddr, &ip6->daddr, 16);
		l4 = (__u8 *)(ip6 + 1);
	} else {
		return 1;
	}
	/* 14 bytes: ports, and for TCP the data offset and flags */
	if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || (void *)(l4 + 14) > end)
		return 1;
	p->proto = proto;
	p->l4_off = l2 + p->l3_hdr;
	p->sport = ((__u16)l4[0] << 8) | l4[1];
	p->dport = ((__u16)l4[2] << 8) | l4[3];
	p->have_ports = 1;
	if (proto == IPPROTO_TCP) {
		p->l4_hdr = (l4[12] >> 4) * 4;
		p->tcp_flags = l4[13];
	} else {
		p->l4_hdr = 8;
	}
	return 0;
}

static __always_inline int weir_parse_at(struct __sk_buff *skb, struct weir_pkt *p, __u32 l2)
{
	if (!weir_parse_direct(skb, p, l2))
		return 0;
	if (skb->protocol == bpf_htons(0x0800))
		return weir_parse_v4(skb, p, l2);
	if (skb->protocol == bpf_htons(0x86DD))
		return weir_parse_v6(skb, p, l2);
	return -1;
}

static __always_inline int weir_parse(struct __sk_buff *skb, struct weir_pkt *p)
{
	return weir_parse_at(skb, p, 0);
}

/*
 * ICMPv6 neighbour discovery and multicast listener messages keep IPv6 itself working; no
 * firewall filters them, and the container's own kernel sockets may send them from its cgroup.
 */
static __always_inline int weir_is_icmp6_control(const struct weir_pkt *p)
{
	return p->family == WEIR_V6 && p->proto == IPPROTO_ICMPV6 && p->icmp_type >= 130 &&
	       p->icmp_type <= 143;
}

#endif
