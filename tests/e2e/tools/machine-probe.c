/* SPDX-License-Identifier: Apache-2.0 */
/*
 * machine-probe: what this machine's kernel can do, asked of the kernel itself, without weir.
 *
 *   machine-probe [--cgroup2 MOUNT] CAPABILITY...
 *
 * Prints one line per capability, "NAME yes" or "NAME no: REASON", and exits 0 when every one
 * is there, 1 when one is not, 2 on a usage error. Each probe loads the smallest program of
 * the kind, attaches it where that kind attaches, and lets it go again (nothing is pinned, the
 * links go with their file descriptors). Capabilities:
 *
 *   sockops    a BPF_PROG_TYPE_SOCK_OPS program on a cgroup (a scratch cgroup under MOUNT)
 *   kfree_skb  a tp_btf program on the kfree_skb tracepoint, whose arguments carry an
 *              enum skb_drop_reason (the kernel's drop reasons)
 *   tcx        a tcx ingress link (on the loopback device of a network namespace of its own)
 *   bpf_lsm    a BPF-LSM program on file_open, with "bpf" among the kernel's active LSMs
 *   fentry     an fentry program
 *
 * The test suites' own declaration of what the machine supports (tests/machine.conf) is
 * checked against these answers by tests/e2e/machine.t.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

static char reason[1024];
static char vlog[4096];

static bool no(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return false;
}

/* r0 = RET; exit */
static int load(enum bpf_prog_type type, enum bpf_attach_type attach, int btf_id, int ret)
{
	const struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = ret},
		{.code = BPF_JMP | BPF_EXIT},
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = attach,
		    .attach_btf_id = (__u32)btf_id, .log_buf = vlog, .log_size = sizeof(vlog),
		    .log_level = 1);

	vlog[0] = '\0';
	return bpf_prog_load(type, "machine_probe", "GPL", insns, 2, &opts);
}

static bool load_failed(const char *what)
{
	int e = errno;
	char *nl = strchr(vlog, '\n');

	if (nl)
		*nl = '\0';
	return no("the kernel refuses to load a %s program: %s%s%s", what, strerror(e),
		  vlog[0] ? ": " : "", vlog);
}

static bool attach_failed(const char *what)
{
	return no("the kernel loads a %s program but refuses to attach it: %s", what,
		  strerror(errno));
}

static struct btf *vmlinux(void)
{
	struct btf *btf = btf__load_vmlinux_btf();

	if (!btf)
		no("no kernel BTF (/sys/kernel/btf/vmlinux): %s", strerror(errno));
	return btf;
}

static int btf_id(struct btf *btf, const char *name, int kind)
{
	int id = btf__find_by_name_kind(btf, name, kind);

	if (id < 0)
		no("%s is not in the kernel's BTF", name);
	return id;
}

static const char *cgroup2;

static bool probe_sockops(void)
{
	char dir[4096];
	int prog, cg, link;
	bool ok = false;

	if (!cgroup2)
		return no("no cgroup2 mount given (--cgroup2)");
	prog = load(BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS, 0, 1);
	if (prog < 0)
		return load_failed("sockops");
	snprintf(dir, sizeof(dir), "%s/machine-probe.%d", cgroup2, (int)getpid());
	if (mkdir(dir, 0700)) {
		no("cannot make the scratch cgroup %s: %s", dir, strerror(errno));
		goto out;
	}
	cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		no("cannot open %s: %s", dir, strerror(errno));
		goto out_rmdir;
	}
	link = bpf_link_create(prog, cg, BPF_CGROUP_SOCK_OPS, NULL);
	if (link < 0) {
		attach_failed("sockops");
	} else {
		ok = true;
		close(link);
	}
	close(cg);
out_rmdir:
	rmdir(dir);
out:
	close(prog);
	return ok;
}

/* The tracepoint's arguments (after the context) hold an enum skb_drop_reason. */
static bool has_drop_reason(struct btf *btf, int typedef_id)
{
	const struct btf_type *t = btf__type_by_id(btf, typedef_id);
	const struct btf_param *p;

	/* typedef btf_trace_kfree_skb -> pointer -> function prototype */
	t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_ptr(t))
		return false;
	t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_func_proto(t))
		return false;
	p = btf_params(t);
	for (int i = 0; i < btf_vlen(t); i++) {
		const struct btf_type *a = btf__type_by_id(btf, btf__resolve_type(btf, p[i].type));

		if (a && btf_is_enum(a) &&
		    !strcmp(btf__name_by_offset(btf, a->name_off), "skb_drop_reason"))
			return true;
	}
	return false;
}

static bool probe_kfree_skb(void)
{
	struct btf *btf = vmlinux();
	int id, prog, link;

	if (!btf)
		return false;
	id = btf_id(btf, "btf_trace_kfree_skb", BTF_KIND_TYPEDEF);
	if (id < 0 || !has_drop_reason(btf, id)) {
		if (id >= 0)
			no("the kfree_skb tracepoint carries no enum skb_drop_reason");
		btf__free(btf);
		return false;
	}
	btf__free(btf);
	prog = load(BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP, id, 0);
	if (prog < 0)
		return load_failed("tp_btf/kfree_skb");
	link = bpf_link_create(prog, 0, BPF_TRACE_RAW_TP, NULL);
	close(prog);
	if (link < 0)
		return attach_failed("tp_btf/kfree_skb");
	close(link);
	return true;
}

static bool probe_tcx(void)
{
	int prog, link;

	/* a namespace of this process's own: its loopback carries no one else's traffic */
	if (unshare(CLONE_NEWNET))
		return no("cannot make a network namespace: %s", strerror(errno));
	prog = load(BPF_PROG_TYPE_SCHED_CLS, BPF_TCX_INGRESS, 0, -1 /* TCX_NEXT */);
	if (prog < 0)
		return load_failed("tcx");
	link = bpf_link_create(prog, 1 /* lo */, BPF_TCX_INGRESS, NULL);
	close(prog);
	if (link < 0)
		return attach_failed("tcx ingress");
	close(link);
	return true;
}

static bool lsm_active(const char *name)
{
	char buf[512], *tok, *save = NULL;
	ssize_t n;
	int fd = open("/sys/kernel/security/lsm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return no("cannot read the active LSMs (/sys/kernel/security/lsm): %s",
			  strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return no("cannot read /sys/kernel/security/lsm: %s", strerror(errno));
	buf[n] = '\0';
	for (tok = strtok_r(buf, ",\n", &save); tok; tok = strtok_r(NULL, ",\n", &save))
		if (!strcmp(tok, name))
			return true;
	return no("\"%s\" is not among the active LSMs", name);
}

/* tracing and LSM programs: load against a kernel function, attach through a link */
static bool probe_func(const char *what, enum bpf_prog_type type, enum bpf_attach_type attach,
		       const char *func)
{
	struct btf *btf = vmlinux();
	int id, prog, link;

	if (!btf)
		return false;
	id = btf_id(btf, func, BTF_KIND_FUNC);
	btf__free(btf);
	if (id < 0)
		return false;
	prog = load(type, attach, id, 0);
	if (prog < 0)
		return load_failed(what);
	link = bpf_link_create(prog, 0, attach, NULL);
	close(prog);
	if (link < 0)
		return attach_failed(what);
	close(link);
	return true;
}

static bool probe_bpf_lsm(void)
{
	return probe_func("BPF-LSM", BPF_PROG_TYPE_LSM, BPF_LSM_MAC, "bpf_lsm_file_open") &&
	       lsm_active("bpf");
}

static bool probe_fentry(void)
{
	return probe_func("fentry", BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, "bpf_fentry_test1");
}

static const struct {
	const char *name;
	bool (*probe)(void);
	bool own_process; /* changes the process (a namespace): run in a child */
} probes[] = {
	{"sockops", probe_sockops, false}, {"kfree_skb", probe_kfree_skb, false},
	{"tcx", probe_tcx, true},	   {"bpf_lsm", probe_bpf_lsm, false},
	{"fentry", probe_fentry, false},
};

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

static bool run(int i)
{
	if (probes[i].own_process) {
		int fds[2], status;
		pid_t pid;
		ssize_t n;

		if (pipe(fds))
			return no("pipe: %s", strerror(errno));
		pid = fork();
		if (pid < 0)
			return no("fork: %s", strerror(errno));
		if (pid == 0) {
			bool ok = probes[i].probe();

			if (!ok && write(fds[1], reason, strlen(reason)) < 0)
				_exit(2);
			_exit(ok ? 0 : 1);
		}
		close(fds[1]);
		n = read(fds[0], reason, sizeof(reason) - 1);
		reason[n > 0 ? n : 0] = '\0';
		close(fds[0]);
		if (waitpid(pid, &status, 0) < 0)
			return no("waitpid: %s", strerror(errno));
		return WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	return probes[i].probe();
}

int main(int argc, char **argv)
{
	int i = 1, rc = 0;

	libbpf_set_print(silent);
	if (i + 1 < argc && !strcmp(argv[i], "--cgroup2")) {
		cgroup2 = argv[i + 1];
		i += 2;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: machine-probe [--cgroup2 MOUNT] CAPABILITY...\n");
		return 2;
	}
	for (; i < argc; i++) {
		size_t j;

		for (j = 0; j < sizeof(probes) / sizeof(probes[0]); j++)
			if (!strcmp(argv[i], probes[j].name))
				break;
		if (j == sizeof(probes) / sizeof(probes[0])) {
			fprintf(stderr,
				"machine-probe: unknown capability \"%s\": expected sockops, "
				"kfree_skb, tcx, bpf_lsm or fentry\n",
				argv[i]);
			return 2;
		}
		reason[0] = '\0';
		if (run((int)j)) {
			printf("%s yes\n", argv[i]);
		} else {
			printf("%s no: %s\n", argv[i], reason);
			rc = 1;
		}
		fflush(stdout);
	}
	return rc;
}
