// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_oracle.h"

int weir_oracle_packet(const struct weir_policy *pol, const struct weir_compiled *comp,
		       enum weir_dir dir, uint8_t family, const uint8_t *addr, uint32_t pclass,
		       uint16_t port, bool have_port, char *why, size_t size)
{
	int got = weir_compiled_eval(comp, pol, dir, family, addr, pclass, port, have_port);
	int want = weir_policy_eval_reference(pol, dir, family, addr, pclass, port, have_port);
	char a[INET6_ADDRSTRLEN];

	if (got == want)
		return 0;
	inet_ntop(family == WEIR_V4 ? AF_INET : AF_INET6, addr, a, sizeof(a));
	snprintf(why, size, "%s %s class %u port %u%s: compiled %d, reference %d",
		 dir == WEIR_EGRESS ? "egress" : "ingress", a, pclass, port,
		 have_port ? "" : " (unknown)", got, want);
	return -1;
}

struct addr {
	uint8_t b[16];
};

/* addr +1 or -1 within len bytes; false when it wraps (no such neighbour) */
static bool step(uint8_t *b, size_t len, int delta)
{
	for (size_t i = len; i-- > 0;) {
		if (delta > 0 ? b[i]++ != 0xff : b[i]-- != 0x00)
			return true;
	}
	return false;
}

static void push_addr(struct addr *v, size_t *n, size_t cap, const uint8_t *b)
{
	for (size_t i = 0; i < *n; i++)
		if (!memcmp(v[i].b, b, 16))
			return;
	if (*n < cap)
		memcpy(v[(*n)++].b, b, 16);
}

static void push_port(uint16_t *v, size_t *n, size_t cap, long p)
{
	if (p < 0 || p > 65535)
		return;
	for (size_t i = 0; i < *n; i++)
		if (v[i] == (uint16_t)p)
			return;
	if (*n < cap)
		v[(*n)++] = (uint16_t)p;
}

static bool has_family(const struct weir_dir_policy *dp, uint8_t family)
{
	for (size_t i = 0; i < dp->nrules; i++)
		if (dp->rules[i].family == family)
			return true;
	return false;
}

static long check_family(const struct weir_policy *pol, const struct weir_compiled *comp,
			 enum weir_dir dir, uint8_t family, size_t max_addrs, size_t max_ports,
			 char *why, size_t size)
{
	const struct weir_dir_policy *dp = &pol->dir[dir];
	size_t len = family == WEIR_V4 ? 4 : 16, na = 0, np = 0, all_a = 0, all_p = 0;
	size_t acap = dp->nrules * 4 + 2, pcap = 64 + dp->nrules * 16;
	/* every candidate first, then an even pick: rules late in a long list count too */
	struct addr *addrs = calloc(acap, sizeof(*addrs));
	uint16_t *ports = calloc(pcap, sizeof(*ports));
	uint8_t zero[16] = {0}, ones[16];
	long checked = 0;

	if (!addrs || !ports) {
		free(addrs);
		free(ports);
		snprintf(why, size, "out of memory");
		return -1;
	}
	memset(ones, 0, sizeof(ones));
	memset(ones, 0xff, len);
	push_addr(addrs, &all_a, acap, zero);
	push_addr(addrs, &all_a, acap, ones);
	push_port(ports, &all_p, pcap, 0);
	push_port(ports, &all_p, pcap, 1);
	push_port(ports, &all_p, pcap, 65535);
	for (size_t i = 0; i < dp->nrules; i++) {
		const struct weir_rule *r = &dp->rules[i];
		uint8_t lo[16] = {0}, hi[16] = {0};

		if (r->family != family)
			continue;
		memcpy(lo, r->addr, 16);
		memcpy(hi, r->addr, 16);
		for (unsigned b = r->prefixlen; b < len * 8; b++)
			hi[b / 8] |= (uint8_t)(0x80 >> (b % 8));
		push_addr(addrs, &all_a, acap, lo);
		push_addr(addrs, &all_a, acap, hi);
		if (step(lo, len, -1))
			push_addr(addrs, &all_a, acap, lo);
		if (step(hi, len, +1))
			push_addr(addrs, &all_a, acap, hi);
		for (size_t k = 0; k < r->nports; k++) {
			push_port(ports, &all_p, pcap, (long)r->ports[k].lo - 1);
			push_port(ports, &all_p, pcap, r->ports[k].lo);
			push_port(ports, &all_p, pcap, r->ports[k].hi);
			push_port(ports, &all_p, pcap, (long)r->ports[k].hi + 1);
		}
	}
	na = all_a < max_addrs ? all_a : max_addrs;
	np = all_p < max_ports ? all_p : max_ports;
	/* a family without rules is all default-deny (or all open): its corners say enough */
	if (!has_family(dp, family))
		np = 1;
	for (size_t ia = 0; ia < na && checked >= 0; ia++) {
		const uint8_t *a = addrs[ia * all_a / na].b;

		for (size_t ip = 0; ip < np && checked >= 0; ip++) {
			uint16_t port = ports[ip * all_p / np];

			for (uint32_t pc = 0; pc < WEIR_PCLASSES && checked >= 0; pc++) {
				for (int known = 0; known < 2; known++) {
					if (weir_oracle_packet(pol, comp, dir, family, a, pc, port,
							       known, why, size)) {
						checked = -1;
						break;
					}
					checked++;
				}
			}
		}
	}
	free(addrs);
	free(ports);
	return checked;
}

long weir_oracle_edges(const struct weir_policy *pol, const struct weir_compiled *comp,
		       size_t max_addrs, size_t max_ports, char *why, size_t size)
{
	static const uint8_t families[] = {WEIR_V4, WEIR_V6};
	long total = 0;

	for (int d = 0; d < WEIR_DIRS; d++) {
		for (size_t f = 0; f < sizeof(families); f++) {
			long n = check_family(pol, comp, (enum weir_dir)d, families[f], max_addrs,
					      max_ports, why, size);

			if (n < 0)
				return -1;
			total += n;
		}
	}
	return total;
}
