// SPDX-License-Identifier: Apache-2.0
/*
 * floor: attaches the floor program of tests/bench/datapath-bench.sh to a cgroup, its trie
 * filled with the prefixes of a file, and pins the link; removing the pin detaches it.
 *
 *   floor OBJECT CGROUP LINK_PIN CIDR_FILE
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "floor.h"

int main(int argc, char **argv)
{
	struct bpf_program *prog;
	struct bpf_object *obj;
	int cg, link, ret = 1;
	long n;

	if (argc != 5) {
		fprintf(stderr, "usage: floor OBJECT CGROUP LINK_PIN CIDR_FILE\n");
		return 2;
	}
	obj = floor_load(argv[1], argv[4], &prog, &n);
	if (!obj)
		return 1;
	cg = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		fprintf(stderr, "floor: %s: %s\n", argv[2], strerror(errno));
		goto out;
	}
	link = bpf_link_create(bpf_program__fd(prog), cg, BPF_CGROUP_INET_EGRESS, NULL);
	if (link < 0 || bpf_obj_pin(link, argv[3])) {
		fprintf(stderr, "floor: attach to %s: %s\n", argv[2], strerror(errno));
		if (link >= 0)
			close(link);
	} else {
		close(link);
		ret = 0;
	}
	close(cg);
out:
	bpf_object__close(obj);
	return ret;
}
