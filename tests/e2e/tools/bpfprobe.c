/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bpfprobe: what a process inside a container can do to weir, tried the direct way. Built
 * static, like wtool, and copied into a container rootfs by tests/e2e/privilege.t.
 *
 *   bpfprobe MAP_ID PROG_ID LINK_ID PIN_PATH
 *
 * prints one line per attempt, "NAME ok" or "NAME ERRNO", and exits 0:
 *   next_map_id, next_prog_id, next_link_id   list the node's BPF objects
 *   map_by_id, prog_by_id, link_by_id         open weir's own objects by the ids given
 *   obj_get                                   open a pin of weir's by its path
 *   cgroup2 PATH                              where its own cgroup is (or why it is not)
 *   query_egress                              ask what is attached to its own cgroup
 *   detach_egress                             detach the egress programs of its own cgroup
 *   load_skb                                  load a cgroup_skb program of its own
 *   mount_bpffs                               mount a bpffs (ok only if it shows no weir pins)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/bpf.h>

static long bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static void report(const char *name, long r)
{
	if (r >= 0)
		printf("%s ok\n", name);
	else
		printf("%s %s\n", name, strerrorname_np(errno) ?: "EUNKNOWN");
	if (r > 0 && r < 1024)
		close((int)r);
}

static long by_id(int cmd, uint32_t id)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	if (cmd == BPF_MAP_GET_FD_BY_ID)
		a.map_id = id;
	else if (cmd == BPF_PROG_GET_FD_BY_ID)
		a.prog_id = id;
	else
		a.link_id = id;
	return bpf(cmd, &a);
}

static long next_id(int cmd)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	return bpf(cmd, &a);
}

/* The cgroup v2 mount of this mount namespace, or one made at /tmp/cg2. */
static int open_cgroup2(void)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "r");

	while (f && fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - cgroup2 "), *p = line;

		if (!sep)
			continue;
		for (int i = 0; i < 4 && p; i++)
			p = strchr(p + 1, ' ');
		if (p) {
			*strchrnul(p + 1, ' ') = '\0';
			fclose(f);
			printf("cgroup2 %s\n", p + 1);
			return open(p + 1, O_RDONLY | O_DIRECTORY);
		}
	}
	if (f)
		fclose(f);
	mkdir("/tmp/cg2", 0700);
	if (mount("cgroup2", "/tmp/cg2", "cgroup2", 0, NULL)) {
		printf("cgroup2 mount %s\n", strerrorname_np(errno) ?: "EUNKNOWN");
		return -1;
	}
	printf("cgroup2 /tmp/cg2\n");
	return open("/tmp/cg2", O_RDONLY | O_DIRECTORY);
}

int main(int argc, char **argv)
{
	/* r0 = 1: pass every packet */
	struct bpf_insn prog[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 1},
		{.code = BPF_JMP | BPF_EXIT},
	};
	union bpf_attr a;
	uint32_t ids[8];
	int cg;
	long r;

	if (argc != 5) {
		fprintf(stderr, "usage: bpfprobe MAP_ID PROG_ID LINK_ID PIN_PATH\n");
		return 2;
	}
	report("next_map_id", next_id(BPF_MAP_GET_NEXT_ID));
	report("next_prog_id", next_id(BPF_PROG_GET_NEXT_ID));
	report("next_link_id", next_id(BPF_LINK_GET_NEXT_ID));
	report("map_by_id", by_id(BPF_MAP_GET_FD_BY_ID, (uint32_t)atoi(argv[1])));
	report("prog_by_id", by_id(BPF_PROG_GET_FD_BY_ID, (uint32_t)atoi(argv[2])));
	report("link_by_id", by_id(BPF_LINK_GET_FD_BY_ID, (uint32_t)atoi(argv[3])));
	memset(&a, 0, sizeof(a));
	a.pathname = (uint64_t)(uintptr_t)argv[4];
	report("obj_get", bpf(BPF_OBJ_GET, &a));

	/* its own cgroup: the root of its cgroup namespace, mounted here if nobody did */
	cg = open_cgroup2();
	memset(&a, 0, sizeof(a));
	a.query.target_fd = cg;
	a.query.attach_type = BPF_CGROUP_INET_EGRESS;
	a.query.prog_ids = (uint64_t)(uintptr_t)ids;
	a.query.prog_cnt = 8;
	report("query_egress", cg < 0 ? (errno = EBADF, -1) : bpf(BPF_PROG_QUERY, &a));
	/* no program named (attach_bpf_fd 0, so fd 0 must not be open): whatever is attached */
	close(STDIN_FILENO);
	memset(&a, 0, sizeof(a));
	a.target_fd = cg;
	a.attach_type = BPF_CGROUP_INET_EGRESS;
	report("detach_egress", cg < 0 ? (errno = EBADF, -1) : bpf(BPF_PROG_DETACH, &a));

	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_CGROUP_SKB;
	a.expected_attach_type = BPF_CGROUP_INET_EGRESS;
	a.insns = (uint64_t)(uintptr_t)prog;
	a.insn_cnt = 2;
	a.license = (uint64_t)(uintptr_t) "GPL";
	report("load_skb", bpf(BPF_PROG_LOAD, &a));

	mkdir("/tmp/bpffs", 0700);
	r = mount("bpf", "/tmp/bpffs", "bpf", 0, NULL);
	if (!r && access("/tmp/bpffs/weir", F_OK) == 0) {
		printf("mount_bpffs WEIR_PINS_VISIBLE\n");
	} else {
		report("mount_bpffs", r);
	}
	if (!r)
		umount("/tmp/bpffs");
	return 0;
}
