/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The floor program of tests/bench/datapath-bench.sh (tests/bench/floor.bpf.c): open the
 * object, load it and fill its trie with the prefixes of a file (one IPv4 CIDR a line).
 * Shared by the loader (tests/bench/floor.c) and tests/bench/progtime.c.
 */
#ifndef WEIR_BENCH_FLOOR_H
#define WEIR_BENCH_FLOOR_H

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

struct floor_key {
	__u32 prefixlen;
	__u32 addr;
};

/* Returns the loaded object (its program: *prog), NULL with a message on failure. */
static inline struct bpf_object *floor_load(const char *obj_path, const char *cidrs,
					    struct bpf_program **prog, long *n)
{
	struct bpf_object *obj = bpf_object__open_file(obj_path, NULL);
	char line[64], addr[32];
	struct floor_key k;
	unsigned int len;
	__u8 one = 1;
	FILE *f;
	int fd;

	*n = 0;
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "floor: cannot load %s: %s\n", obj_path, strerror(errno));
		return NULL;
	}
	*prog = bpf_object__find_program_by_name(obj, "floor_egress");
	fd = bpf_object__find_map_fd_by_name(obj, "floor_trie");
	f = fopen(cidrs, "r");
	if (!*prog || fd < 0 || !f) {
		fprintf(stderr, "floor: %s: %s\n", f ? obj_path : cidrs, strerror(errno));
		goto fail;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%31[0-9.]/%u", addr, &len) != 2 || len > 32 ||
		    inet_pton(AF_INET, addr, &k.addr) != 1) {
			fprintf(stderr, "floor: %s: bad prefix: %s", cidrs, line);
			goto fail;
		}
		k.prefixlen = len;
		if (bpf_map_update_elem(fd, &k, &one, BPF_ANY)) {
			fprintf(stderr, "floor: trie update: %s\n", strerror(errno));
			goto fail;
		}
		(*n)++;
	}
	fclose(f);
	return obj;
fail:
	if (f)
		fclose(f);
	bpf_object__close(obj);
	return NULL;
}

#endif
