// SPDX-License-Identifier: Apache-2.0
/*
 * connload: TCP connections as fast as one thread can open them, for the flow-consumer
 * benchmark. `connload server PORT` accepts and closes at once (the server closes first, so
 * TIME_WAIT stays on its side); `connload client ADDR PORT SECONDS` connects, waits for the
 * server's FIN, closes, and prints how many connections it completed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int server(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4096)) {
		perror("connload server");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		int c = accept(fd, NULL, NULL);

		if (c >= 0)
			close(c);
	}
}

static int client(const char *addr, int port, double seconds)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	double start = now(), end = start + seconds;
	unsigned long done = 0, failed = 0;
	char buf[16];

	inet_pton(AF_INET, addr, &a.sin_addr);
	while (now() < end) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
			failed++;
			if (fd >= 0)
				close(fd);
			continue;
		}
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		close(fd);
		done++;
	}
	printf("%lu %lu %.3f\n", done, failed, now() - start);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "server"))
		return server(atoi(argv[2]));
	if (argc == 5 && !strcmp(argv[1], "client"))
		return client(argv[2], atoi(argv[3]), atof(argv[4]));
	fprintf(stderr, "usage: connload server PORT | connload client ADDR PORT SECONDS\n");
	return 2;
}
