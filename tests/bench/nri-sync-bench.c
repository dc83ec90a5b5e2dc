// SPDX-License-Identifier: Apache-2.0
/*
 * weir-nri's Synchronize at scale (a benchmark, not a test: no pass/fail).
 *
 * A node's whole state arrives in one Synchronize, within containerd's request timeout (2 s).
 * For 8,000, 16,000 and 32,000 containers (two per pod, half the pods with an egress policy,
 * a quarter of the containers attached before, 500 endpoints of vanished containers), this
 * times weir-nri's handler over a kernel-less backend (tests/unit/nri_fake.c, which still
 * parses and compiles every policy it attaches), against a baseline measured in the same run:
 * decoding the same SynchronizeRequest with protobuf-c, work every plugin does and that grows
 * linearly. A linear handler keeps the ratio and the time per container flat as N doubles.
 *
 *   make nri-sync-bench && .output/tests/nri-sync-bench [ROUNDS=7]
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers.h"
#include "log.h"
#include "nri_fake.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static char *dupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dupf(const char *fmt, ...)
{
	char buf[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return strdup(buf);
}

static Nri__TextEntry *entry(const char *k, char *v)
{
	Nri__TextEntry *e = malloc(sizeof(*e));

	nri__pkg__api__v1alpha1__text_entry__init(e);
	e->key.data = (uint8_t *)strdup(k);
	e->key.len = strlen(k);
	e->value.data = (uint8_t *)v;
	e->value.len = strlen(v);
	return e;
}

/* The packed SynchronizeRequest for nctrs containers, as containerd would send it. */
static uint8_t *build(int nctrs, size_t *len)
{
	Nri__Pkg__Api__V1alpha1__SynchronizeRequest req =
		NRI__PKG__API__V1ALPHA1__SYNCHRONIZE_REQUEST__INIT;
	int npods = nctrs / 2;
	uint8_t *buf;

	req.n_pods = (size_t)npods;
	req.pods = calloc(req.n_pods, sizeof(*req.pods));
	req.n_containers = (size_t)nctrs;
	req.containers = calloc(req.n_containers, sizeof(*req.containers));
	for (int i = 0; i < npods; i++) {
		Nri__PodSandbox *p = calloc(1, sizeof(*p));

		nri__pkg__api__v1alpha1__pod_sandbox__init(p);
		p->id = dupf("pod-%08d", i);
		p->name = dupf("web-%d", i);
		p->namespace_ = strdup("default");
		p->uid = dupf("uid-%08d", i);
		p->annotations = calloc(4, sizeof(*p->annotations));
		p->annotations[p->n_annotations++] =
			entry("io.kubernetes.cri.sandbox-id", dupf("pod-%08d", i));
		p->annotations[p->n_annotations++] =
			entry("io.kubernetes.cri.sandbox-name", dupf("web-%d", i));
		p->annotations[p->n_annotations++] =
			entry("io.kubernetes.cri.sandbox-namespace", strdup("default"));
		if (i % 2)
			p->annotations[p->n_annotations++] =
				entry("egress.weir.io/pod",
				      dupf("allow 10.%d.%d.0/24 tcp/443; allow any udp/53", i / 256,
					   i % 256));
		req.pods[i] = p;
	}
	for (int i = 0; i < nctrs; i++) {
		Nri__Container *c = calloc(1, sizeof(*c));

		nri__pkg__api__v1alpha1__container__init(c);
		c->id = dupf("ctr-%08d", i);
		c->pod_sandbox_id = dupf("pod-%08d", i / 2);
		c->name = strdup(i % 2 ? "sidecar" : "app");
		c->state = NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_RUNNING;
		c->pid = 1;
		c->annotations = calloc(1, sizeof(*c->annotations));
		c->annotations[c->n_annotations++] =
			entry("io.kubernetes.cri.container-type", strdup("container"));
		req.containers[i] = c;
	}
	*len = protobuf_c_message_get_packed_size(&req.base);
	buf = malloc(*len);
	protobuf_c_message_pack(&req.base, buf);
	/* the request was built by hand: free it by hand */
	for (int i = 0; i < npods; i++) {
		for (size_t k = 0; k < req.pods[i]->n_annotations; k++) {
			free(req.pods[i]->annotations[k]->key.data);
			free(req.pods[i]->annotations[k]->value.data);
			free(req.pods[i]->annotations[k]);
		}
		free(req.pods[i]->annotations);
		free(req.pods[i]->id);
		free(req.pods[i]->name);
		free(req.pods[i]->namespace_);
		free(req.pods[i]->uid);
		free(req.pods[i]);
	}
	for (int i = 0; i < nctrs; i++) {
		free(req.containers[i]->annotations[0]->key.data);
		free(req.containers[i]->annotations[0]->value.data);
		free(req.containers[i]->annotations[0]);
		free(req.containers[i]->annotations);
		free(req.containers[i]->id);
		free(req.containers[i]->pod_sandbox_id);
		free(req.containers[i]->name);
		free(req.containers[i]);
	}
	free(req.pods);
	free(req.containers);
	return buf;
}

int main(int argc, char **argv)
{
	static const int sizes[] = {8000, 16000, 32000};
	int rounds = argc > 1 ? atoi(argv[1]) : 7;
	double first = 0, last = 0;

	if (rounds < 1 || rounds > 100) {
		fprintf(stderr, "usage: nri-sync-bench [ROUNDS (1-100)]\n");
		return 2;
	}
	weir_log_init("nri-sync-bench", WEIR_LOG_ERROR, WEIR_LOG_TEXT);
	printf("Synchronize, one chunk, median of %d rounds (baseline: protobuf-c decoding of the "
	       "same request)\n",
	       rounds);
	printf("%10s %12s %12s %8s %14s\n", "containers", "handler ms", "decode ms", "ratio",
	       "us/container");
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		int n = sizes[s];
		double th[100], td[100], mh, md;
		size_t len;
		uint8_t *buf = build(n, &len);

		for (int r = 0; r < rounds; r++) {
			Nri__Pkg__Api__V1alpha1__SynchronizeRequest *req;
			struct weir_error err = {0};
			struct weir_nri *w;
			struct fake f;
			char id[32];
			double t0;

			fake_init(&f);
			for (int i = 0; i < n / 4; i++) {
				snprintf(id, sizeof(id), "ctr-%08d", i);
				fake_add(&f, id, true, true);
			}
			for (int i = 0; i < 500; i++) {
				snprintf(id, sizeof(id), "vanished-%d", i);
				fake_add(&f, id, true, true);
			}
			if (weir_nri_new(&w, &fake_ops, &f))
				return 1;
			t0 = now_ms();
			req = nri__pkg__api__v1alpha1__synchronize_request__unpack(NULL, len, buf);
			td[r] = now_ms() - t0;
			if (!req)
				return 1;
			t0 = now_ms();
			if (weir_nri_handlers.synchronize(w, req->pods, req->n_pods,
							  req->containers, req->n_containers, 0,
							  &err)) {
				fprintf(stderr, "synchronize: %s\n", err.msg);
				return 1;
			}
			th[r] = now_ms() - t0;
			if (f.detach_calls != 500 || f.attach_calls != (unsigned)(n / 2 - n / 8)) {
				fprintf(stderr, "unexpected: %u attached, %u detached\n",
					f.attach_calls, f.detach_calls);
				return 1;
			}
			nri__pkg__api__v1alpha1__synchronize_request__free_unpacked(req, NULL);
			weir_nri_free(w);
			fake_free(&f);
		}
		mh = median(th, rounds);
		md = median(td, rounds);
		last = mh / n;
		if (!s)
			first = last;
		printf("%10d %12.1f %12.1f %8.2f %14.2f\n", n, mh, md, mh / md, mh * 1000 / n);
		free(buf);
	}
	printf("handler time per container at 32,000 against 8,000: %.2f (1.00 is linear, 4.00 "
	       "quadratic)\n",
	       last / first);
	return 0;
}
