/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gtool: the actions weir's security guards judge, one at a time, with a precise answer. Built
 * static so it runs in a busybox container rootfs (and in the qemu guests).
 *
 *   gtool raw [4|6]                 socket(AF_INET[6], SOCK_RAW, ICMP)
 *   gtool packet                    socket(AF_PACKET, SOCK_RAW, 0)
 *   gtool socket FAMILY TYPE        socket(FAMILY, TYPE, 0)
 *   gtool bind tcp|udp PORT         socket + bind to the port (IPv4) + listen for TCP
 *   gtool sysctl-write NAME VALUE   write /proc/sys/NAME (dots or slashes)
 *   gtool sysctl-read NAME
 *   gtool unshare-user              unshare(CLONE_NEWUSER)
 *   gtool unshare-user32            the same through the 32-bit syscall ABI (int $0x80,
 *                                   x86-64 only: ENOSYS elsewhere)
 *   gtool keyring                   keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)
 *   gtool sweep ADDR LO HI [ms]     TCP connect to each port LO..HI, one after the other
 *   gtool repeat N ACTION...        the action N times (prints the first and last answers)
 *   gtool loop getpid|open|forkexec N   a syscall-heavy loop; prints ns per iteration
 *   gtool fork ACTION...            the action in a child forked without exec; the
 *                                   parent prints "killed" when it dies by SIGKILL
 *   gtool enter CGROUP PID CMD...   a runtime's exec by hand, from the host: a child
 *                                   forked into cgroup directory CGROUP (clone3 with
 *                                   CLONE_INTO_CGROUP) joins the ipc, uts, net and mount
 *                                   namespaces of PID (setns), calls keyctl as runc's
 *                                   exec init does, and execs CMD; exits as the child
 *                                   did (128+N for signal N)
 *
 * One line on stdout: "ok", or the errno name (EPERM, EACCES, ...). Exit 0 for ok, 3 for
 * EPERM, 4 for EACCES, 8 for any other error, 2 for usage. A process the kernel kills prints
 * nothing: its exit status says so.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *errname(int e)
{
	static char buf[32];

	switch (e) {
	case EPERM:
		return "EPERM";
	case EACCES:
		return "EACCES";
	case EROFS:
		return "EROFS";
	case ENOENT:
		return "ENOENT";
	case EINVAL:
		return "EINVAL";
	case EAFNOSUPPORT:
		return "EAFNOSUPPORT";
	case EADDRINUSE:
		return "EADDRINUSE";
	case ECONNREFUSED:
		return "ECONNREFUSED";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	default:
		snprintf(buf, sizeof(buf), "E%d", e);
		return buf;
	}
}

static int answer(int r)
{
	int e = errno;

	if (r >= 0) {
		printf("ok\n");
		return 0;
	}
	printf("%s\n", errname(e));
	return e == EPERM ? 3 : e == EACCES ? 4 : 8;
}

static int usage(void)
{
	fprintf(stderr, "usage: see the comment at the top of gtool.c\n");
	return 2;
}

static int do_socket(int family, int type, int proto)
{
	int fd = socket(family, type, proto);

	if (fd >= 0)
		close(fd);
	return fd;
}

/* Close fd, keeping the errno of what failed; returns -1. */
static int fail_close(int fd)
{
	int e = errno;

	close(fd);
	errno = e;
	return -1;
}

static int do_bind(const char *proto, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int tcp = !strcmp(proto, "tcp");
	int fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0), r;
	int one = 1;

	if (fd < 0)
		return fd;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (!r && tcp)
		r = listen(fd, 1);
	if (r)
		return fail_close(fd);
	close(fd);
	return 0;
}

static void sysctl_path(const char *name, char *out, size_t size)
{
	size_t n = (size_t)snprintf(out, size, "/proc/sys/");

	for (const char *p = name; *p && n + 1 < size; p++)
		out[n++] = *p == '.' && !strchr(name, '/') ? '/' : *p;
	out[n] = '\0';
}

static int do_sysctl(const char *name, const char *value)
{
	char path[256], buf[256];
	int fd, r;

	sysctl_path(name, path, sizeof(path));
	fd = open(path, value ? O_WRONLY : O_RDONLY);
	if (fd < 0)
		return -1;
	r = value ? (int)write(fd, value, strlen(value)) : (int)read(fd, buf, sizeof(buf));
	if (r < 0)
		return fail_close(fd);
	close(fd);
	return 0;
}

static int do_mount(const char *dir)
{
	mkdir(dir, 0755);
	if (mount("none", dir, "tmpfs", 0, NULL))
		return -1;
	umount(dir);
	return 0;
}

static int do_open(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd >= 0)
		close(fd);
	return fd;
}

/* One connect with a deadline: the answer a port gave. */
static const char *probe(const char *addr, int port, int ms)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	int fd = socket(AF_INET, SOCK_STREAM, 0), r;

	if (fd < 0)
		return errname(errno);
	inet_pton(AF_INET, addr, &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (!r)
		return "ok";
	return errno == EINPROGRESS || errno == EAGAIN ? "ETIMEDOUT" : errname(errno);
}

static int sweep(const char *addr, int lo, int hi, int ms)
{
	int refused = 0, timeout = 0, ok = 0, eperm = 0, other = 0;

	for (int p = lo; p <= hi; p++) {
		const char *a = probe(addr, p, ms);

		if (!strcmp(a, "ok"))
			ok++;
		else if (!strcmp(a, "ECONNREFUSED"))
			refused++;
		else if (!strcmp(a, "ETIMEDOUT"))
			timeout++;
		else if (!strcmp(a, "EPERM"))
			eperm++;
		else
			other++;
	}
	printf("ok %d refused %d timeout %d eperm %d other %d\n", ok, refused, timeout, eperm,
	       other);
	return 0;
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A syscall-heavy loop: the benchmark's workload. */
static int loop(const char *what, long n)
{
	long long t0 = now_ns();

	for (long i = 0; i < n; i++) {
		if (!strcmp(what, "getpid")) {
			syscall(SYS_getpid);
		} else if (!strcmp(what, "open")) {
			int fd = open("/proc/self/stat", O_RDONLY);

			if (fd >= 0)
				close(fd);
		} else if (!strcmp(what, "forkexec")) {
			pid_t pid = fork();

			if (pid == 0) {
				execl("/bin/true", "true", (char *)NULL);
				_exit(127);
			}
			if (pid > 0)
				waitpid(pid, NULL, 0);
		} else {
			return usage();
		}
	}
	printf("%.1f\n", (double)(now_ns() - t0) / (double)n);
	return 0;
}

#define WEIR_KEYCTL_JOIN_SESSION_KEYRING 1

static int do_keyring(void)
{
	return (int)syscall(SYS_keyctl, WEIR_KEYCTL_JOIN_SESSION_KEYRING, NULL);
}

/* unshare(CLONE_NEWUSER) as a 32-bit process calls it: the kernel's ia32 entry and table. */
static int do_unshare_user32(void)
{
#if defined(__x86_64__)
	long r = 310; /* __NR_unshare of i386 */

	__asm__ volatile("int $0x80"
			 : "+a"(r)
			 : "b"((long)CLONE_NEWUSER)
			 : "memory", "r8", "r9", "r10", "r11");
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return -1;
	}
	return (int)r;
#else
	errno = ENOSYS;
	return -1;
#endif
}

static int act(int argc, char **argv);

/* The action in a child that does not exec: "killed" when the kernel kills it. */
static int fork_act(int argc, char **argv)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return answer(-1);
	if (pid == 0)
		_exit(act(argc, argv));
	if (waitpid(pid, &status, 0) < 0)
		return answer(-1);
	if (WIFSIGNALED(status)) {
		printf("%s\n", WTERMSIG(status) == SIGKILL ? "killed" : "signal");
		return 128 + WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}

/* A runtime's exec, done by hand: see the comment at the top. */
static int enter(const char *cgroup, const char *pid, char **cmd)
{
	static const char *const ns[] = {"ipc", "uts", "net", "mnt"};
	struct clone_args args = {.exit_signal = SIGCHLD};
	int fds[4], cg, status;
	char path[64];
	long child;

	cg = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		perror(cgroup);
		return 8;
	}
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "/proc/%s/ns/%s", pid, ns[i]);
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0) {
			perror(path);
			return 8;
		}
	}
	args.flags = CLONE_INTO_CGROUP;
	args.cgroup = (__u64)cg;
	child = syscall(SYS_clone3, &args, sizeof(args));
	if (child < 0) {
		perror("clone3");
		return 8;
	}
	if (child == 0) {
		for (int i = 0; i < 4; i++)
			if (setns(fds[i], 0))
				_exit(20 + i);
		if (do_keyring() < 0)
			_exit(30);
		execv(cmd[0], cmd);
		_exit(127);
	}
	if (waitpid((pid_t)child, &status, 0) < 0)
		return 8;
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

static int act(int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "raw"))
		return answer(do_socket(
			argc > 1 && !strcmp(argv[1], "6") ? AF_INET6 : AF_INET, SOCK_RAW,
			argc > 1 && !strcmp(argv[1], "6") ? IPPROTO_ICMPV6 : IPPROTO_ICMP));
	if (argc >= 1 && !strcmp(argv[0], "packet"))
		return answer(do_socket(17 /* AF_PACKET */, SOCK_RAW, 0));
	if (argc >= 3 && !strcmp(argv[0], "socket"))
		return answer(do_socket(atoi(argv[1]), atoi(argv[2]), 0));
	if (argc >= 3 && !strcmp(argv[0], "bind"))
		return answer(do_bind(argv[1], atoi(argv[2])));
	if (argc >= 3 && !strcmp(argv[0], "sysctl-write"))
		return answer(do_sysctl(argv[1], argv[2]));
	if (argc >= 2 && !strcmp(argv[0], "sysctl-read"))
		return answer(do_sysctl(argv[1], NULL));
	if (argc >= 1 && !strcmp(argv[0], "unshare-user"))
		return answer(unshare(CLONE_NEWUSER));
	if (argc >= 1 && !strcmp(argv[0], "unshare-user32"))
		return answer(do_unshare_user32());
	if (argc >= 1 && !strcmp(argv[0], "keyring"))
		return answer(do_keyring());
	if (argc >= 2 && !strcmp(argv[0], "fork"))
		return fork_act(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[0], "mount"))
		return answer(do_mount(argv[1]));
	if (argc >= 2 && !strcmp(argv[0], "open"))
		return answer(do_open(argv[1]));
	return usage();
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 4 && !strcmp(argv[1], "sweep"))
		return sweep(argv[2], atoi(argv[3]), atoi(argv[4 < argc ? 4 : 3]),
			     argc > 5 ? atoi(argv[5]) : 300);
	if (argc >= 4 && !strcmp(argv[1], "loop"))
		return loop(argv[2], atol(argv[3]));
	if (argc >= 5 && !strcmp(argv[1], "enter"))
		return enter(argv[2], argv[3], argv + 4);
	if (argc >= 4 && !strcmp(argv[1], "repeat")) {
		long n = atol(argv[2]);
		int saved = dup(STDOUT_FILENO), null = open("/dev/null", O_WRONLY);

		/* only the last answer is printed */
		dup2(null, STDOUT_FILENO);
		for (long i = 0; i < n - 1; i++) {
			act(argc - 3, argv + 3);
			fflush(stdout);
		}
		dup2(saved, STDOUT_FILENO);
		return act(argc - 3, argv + 3);
	}
	if (argc < 2)
		return usage();
	return act(argc - 1, argv + 1);
}
