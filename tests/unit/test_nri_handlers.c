// SPDX-License-Identifier: Apache-2.0
/*
 * weir-nri's handler logic over a backend without a kernel (nri_fake.c): what each event
 * decides (check, attach, detach, nothing), the NRI key precedence, the refusal messages the
 * runtime passes on to the user, NUL bytes in protobuf strings, Synchronize (deferred to its
 * last chunk, linear at 32,000 containers), and OCI cgroupsPath to a cgroup v2 directory.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup.h"
#include "handlers.h"
#include "log.h"
#include "nri_fake.h"

#define HYBRID	"/sys/fs/cgroup/unified"
#define UNIFIED "/sys/fs/cgroup"

/* ---- building NRI messages ---- */

/* Everything a test allocates for its messages, freed after it. */
static void **arena;
static size_t narena, arena_cap;

static void *A(size_t n)
{
	void *p = calloc(1, n);

	if (!p)
		abort();
	/* doubling: the scale test makes ~200,000 allocations, and ASan's realloc always copies */
	if (narena == arena_cap) {
		size_t cap = arena_cap ? 2 * arena_cap : 256;
		void **na = realloc(arena, cap * sizeof(*na));

		if (!na)
			abort();
		arena = na;
		arena_cap = cap;
	}
	arena[narena++] = p;
	return p;
}

static char *S(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *S(const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return strcpy(A(strlen(buf) + 1), buf);
}

static Nri__TextEntry *ent_len(const char *k, size_t klen, const char *v, size_t vlen)
{
	Nri__TextEntry *e = A(sizeof(*e));

	nri__pkg__api__v1alpha1__text_entry__init(e);
	e->key.data = memcpy(A(klen + 1), k, klen);
	e->key.len = klen;
	e->value.data = memcpy(A(vlen + 1), v, vlen);
	e->value.len = vlen;
	return e;
}

/* Annotations from "key=value" strings, NULL-terminated. */
static Nri__TextEntry **anns(size_t *n, const char *const *kvs)
{
	Nri__TextEntry **a;

	for (*n = 0; kvs && kvs[*n]; (*n)++)
		;
	a = A((*n + 1) * sizeof(*a));
	for (size_t i = 0; i < *n; i++) {
		const char *eq = strchr(kvs[i], '=');

		a[i] = ent_len(kvs[i], (size_t)(eq - kvs[i]), eq + 1, strlen(eq + 1));
	}
	return a;
}

#define KV(...) ((const char *const[]){__VA_ARGS__, NULL})

static Nri__PodSandbox *pod(const char *id, const char *ns, const char *name,
			    const char *const *kvs)
{
	Nri__PodSandbox *p = A(sizeof(*p));

	nri__pkg__api__v1alpha1__pod_sandbox__init(p);
	p->id = (char *)id;
	p->namespace_ = (char *)(ns ? ns : "");
	p->name = (char *)(name ? name : "");
	p->uid = ns ? S("uid-%s", id) : "";
	p->annotations = anns(&p->n_annotations, kvs);
	return p;
}

/* The pod as the runtime sends it in some events: an id, nothing else. */
static Nri__PodSandbox *stripped(const char *id)
{
	return pod(id, NULL, NULL, NULL);
}

static Nri__Container *ctr(const char *id, const char *pod_id, const char *name, uint32_t pid,
			   const char *const *kvs)
{
	Nri__Container *c = A(sizeof(*c));

	nri__pkg__api__v1alpha1__container__init(c);
	c->id = (char *)id;
	c->pod_sandbox_id = (char *)pod_id;
	c->name = (char *)name;
	c->pid = pid;
	c->state = NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_RUNNING;
	c->annotations = anns(&c->n_annotations, kvs);
	return c;
}

/* ---- fixture ---- */

static struct fake F;
static struct weir_nri *W;
static struct weir_error E;
static const struct nri_handlers *H = &weir_nri_handlers;

static int setup(void **state)
{
	fake_init(&F);
	assert_int_equal(weir_nri_new(&W, &fake_ops, &F), 0);
	memset(&E, 0, sizeof(E));
	return 0;
}

static int teardown(void **state)
{
	weir_nri_free(W);
	fake_free(&F);
	for (size_t i = 0; i < narena; i++)
		free(arena[i]);
	free(arena);
	arena = NULL;
	narena = arena_cap = 0;
	return 0;
}

static int run_pod(Nri__PodSandbox *p)
{
	memset(&E, 0, sizeof(E));
	return H->run_pod(W, p, &E);
}

static int create(Nri__PodSandbox *p, Nri__Container *c)
{
	memset(&E, 0, sizeof(E));
	return H->create_container(W, p, c, &E);
}

static int start(Nri__PodSandbox *p, Nri__Container *c)
{
	memset(&E, 0, sizeof(E));
	return H->start_container(W, p, c, &E);
}

static int synchronize(Nri__PodSandbox **pods, size_t npods, Nri__Container **ctrs, size_t nctrs,
		       int more)
{
	memset(&E, 0, sizeof(E));
	return H->synchronize(W, pods, npods, ctrs, nctrs, more, &E);
}

static const char bad_peer[] = "rule 1 (\"allow 10.0.0.300/8\"): bad peer \"10.0.0.300/8\": "
			       "expected \"any\", an IPv4 or IPv6 address, or a CIDR such as "
			       "10.0.0.0/8";

/* ---- RunPodSandbox and CreateContainer: checks and refusals ---- */

static void test_refusals(void **state)
{
	char want[WEIR_ERROR_MAX];
	Nri__PodSandbox *p;

	/* a bad pod annotation refuses the pod, named as the user wrote it */
	p = pod("p1", "ns", "web", KV("egress.weir.io/pod=allow 10.0.0.300/8"));
	assert_int_equal(run_pod(p), -EINVAL);
	snprintf(want, sizeof(want), "weir: pod ns/web: egress.weir.io/pod: %s", bad_peer);
	assert_string_equal(E.msg, want);
	assert_string_equal(E.key, "egress.weir.io/pod");
	/* ... and the refused pod is not remembered: a stripped event finds nothing to check */
	assert_int_equal(create(stripped("p1"), ctr("c1", "p1", "app", 0, NULL)), 0);
	assert_int_equal(F.check_calls, 1);

	/* a key for another container does not concern the pod, nor its other containers */
	p = pod("p2", "ns", "q", KV("egress.weir.io/container.bad=allow any tcp/99999"));
	assert_int_equal(run_pod(p), 0);
	assert_int_equal(create(stripped("p2"), ctr("c2", "p2", "good", 0, NULL)), 0);
	assert_int_equal(create(stripped("p2"), ctr("c3", "p2", "bad", 0, NULL)), -EINVAL);
	assert_string_equal(E.msg,
			    "weir: container bad in pod ns/q: egress.weir.io/container.bad: rule 1 "
			    "(\"allow any tcp/99999\"): bad port in \"tcp/99999\": expected tcp, "
			    "udp, icmp, tcp/PORT, udp/PORT or tcp/PORT-PORT, udp/PORT-PORT with "
			    "ports 1-65535");

	/* a container's own annotation; the plain key stays plain */
	assert_int_equal(create(p, ctr("c4", "p2", "c4", 0, KV("policy-mode.weir.io=strict"))),
			 -EINVAL);
	assert_string_equal(E.msg, "weir: container c4 in pod ns/q: policy-mode.weir.io: unknown "
				   "mode \"strict\": expected \"enforce\" or \"audit\"");

	/* resolution errors name the whole key */
	assert_int_equal(run_pod(pod("p3", "ns", "n", KV("egress.weir.io/node=deny any"))),
			 -EINVAL);
	assert_string_equal(E.msg, "weir: pod ns/n: egress.weir.io/node: unknown suffix "
				   "\"/node\": expected \"/pod\" or \"/container.NAME\"");
	assert_int_equal(run_pod(pod("p4", "ns", "n", KV("nope.weir.io/pod=x"))), -EINVAL);
	assert_string_equal(E.msg, "weir: pod ns/n: nope.weir.io/pod: unknown annotation: "
				   "expected egress.weir.io, ingress.weir.io, policy-mode.weir.io, "
				   "monitor.weir.io, security.weir.io, bandwidth-burst.weir.io, "
				   "priority.weir.io, tcp-congestion.weir.io or conntrack.weir.io");

	/* names the runtime passes are quoted where they could break the one line */
	assert_int_equal(run_pod(pod("p5", "n\ns", "w\xffz", KV("monitor.weir.io=all"))), -EINVAL);
	assert_string_equal(E.msg, "weir: pod \"n\\ns\"/\"w\\xffz\": monitor.weir.io: unknown "
				   "value \"all\": expected \"counters\", \"flows\" or \"off\"");

	/* pods and containers without weir annotations are not checked at all */
	F.check_calls = 0;
	assert_int_equal(run_pod(pod("p6", "ns", "plain", KV("app=x", "io.kubernetes.x=y"))), 0);
	assert_int_equal(create(stripped("p6"), ctr("c6", "p6", "c6", 0, KV("app=y"))), 0);
	assert_int_equal(F.check_calls, 0);
	assert_int_equal(F.attach_calls, 0);
}

/* ---- precedence ---- */

static const char *attached_egress(const char *cid)
{
	const struct fake_ep *e = fake_get(&F, cid);

	return e && e->running ? fake_value(e, "egress.weir.io") : "(not attached)";
}

static void test_precedence(void **state)
{
	pid_t me = getpid();
	Nri__PodSandbox *p;
	struct fake_ep *e;

	p = pod("p1", "ns", "web",
		KV("egress.weir.io=allow 10.0.0.1/32", "egress.weir.io/pod=allow 10.0.0.2/32",
		   "egress.weir.io/container.c1=allow 10.0.0.3/32",
		   "ingress.weir.io=allow any tcp/80"));
	assert_int_equal(run_pod(p), 0);
	assert_int_equal(start(p, ctr("k1", "p1", "c1", me, NULL)), 0);
	assert_int_equal(start(p, ctr("k2", "p1", "c2", me, NULL)), 0);
	/* container.<name> beats /pod beats plain, key by key */
	assert_string_equal(attached_egress("k1"), "allow 10.0.0.3/32");
	assert_string_equal(attached_egress("k2"), "allow 10.0.0.2/32");
	assert_string_equal(fake_value(fake_get(&F, "k2"), "ingress.weir.io"), "allow any tcp/80");

	/* a container's own plain key beats the pod's plain key, not the pod's /pod key */
	p = pod("p2", "ns", "two",
		KV("egress.weir.io=allow 10.0.0.1/32", "egress.weir.io/pod=allow 10.0.0.2/32"));
	assert_int_equal(run_pod(p), 0);
	assert_int_equal(start(p, ctr("k3", "p2", "c", me, KV("egress.weir.io=allow 10.0.0.4/32"))),
			 0);
	assert_string_equal(attached_egress("k3"), "allow 10.0.0.2/32");
	p = pod("p3", "ns", "three", KV("egress.weir.io=allow 10.0.0.1/32"));
	assert_int_equal(run_pod(p), 0);
	assert_int_equal(start(p, ctr("k4", "p3", "c", me, KV("egress.weir.io=allow 10.0.0.4/32"))),
			 0);
	assert_string_equal(attached_egress("k4"), "allow 10.0.0.4/32");

	/* a stripped pod in the event: the remembered one gives annotations and labels */
	assert_int_equal(start(stripped("p1"), ctr("k5", "p1", "c1", me, NULL)), 0);
	assert_string_equal(attached_egress("k5"), "allow 10.0.0.3/32");
	e = fake_get(&F, "k5");
	assert_string_equal(e->pod_name, "web");
	assert_string_equal(e->pod_ns, "ns");
	assert_string_equal(e->pod_uid, "uid-p1");
	assert_string_equal(e->name, "c1");
	/* even with no pod at all: the container names its pod */
	assert_int_equal(start(stripped(""), ctr("k6", "p1", "c2", me, NULL)), 0);
	assert_string_equal(attached_egress("k6"), "allow 10.0.0.2/32");
	/* an event's own annotations win over remembered ones (the pod may be re-sent whole) */
	assert_int_equal(start(pod("p1", "ns", "web", KV("egress.weir.io=deny any")),
			       ctr("k7", "p1", "c1", me, NULL)),
			 0);
	assert_string_equal(attached_egress("k7"), "deny any");
}

/* the Kubernetes bandwidth keys reach weir from the pod, with NRI's suffixes too */
static void test_bandwidth_keys(void **state)
{
	pid_t me = getpid();
	Nri__PodSandbox *p;

	(void)state;
	p = pod("b1", "ns", "bw",
		KV("kubernetes.io/egress-bandwidth=10M",
		   "kubernetes.io/ingress-bandwidth/pod=20M"));
	assert_int_equal(run_pod(p), 0);
	assert_int_equal(start(p, ctr("bw1", "b1", "c", me, NULL)), 0);
	assert_string_equal(fake_value(fake_get(&F, "bw1"), "kubernetes.io/egress-bandwidth"),
			    "10M");
	assert_string_equal(fake_value(fake_get(&F, "bw1"), "kubernetes.io/ingress-bandwidth"),
			    "20M");
	/* a key that only starts like one is no key of weir's */
	p = pod("b2", "ns", "not", KV("kubernetes.io/egress-bandwidthx=10M"));
	assert_int_equal(run_pod(p), 0);
	assert_int_equal(start(p, ctr("bw2", "b2", "c", me, NULL)), 0);
	assert_null(fake_get(&F, "bw2"));
}

/* ---- StartContainer: what is attached, and when it is refused ---- */

static void test_start(void **state)
{
	char cg[PATH_MAX], root[PATH_MAX];
	Nri__PodSandbox *p = pod("p1", "ns", "web", KV("egress.weir.io/pod=allow any udp/53"));
	Nri__Container *c;
	struct fake_ep *e;

	assert_int_equal(run_pod(p), 0);

	/* no weir annotation: nothing asked of libweir */
	assert_int_equal(start(pod("p2", "ns", "x", KV("app=1")), ctr("k0", "p2", "a", 1, NULL)),
			 0);
	assert_int_equal(F.attach_calls, 0);

	/* the pid's cgroup is the one attached, with the container's identity */
	assert_int_equal(weir_cgroup_of_pid(getpid(), cg, sizeof(cg)), 0);
	assert_int_equal(start(p, ctr("k1", "p1", "app", (uint32_t)getpid(), NULL)), 0);
	e = fake_get(&F, "k1");
	assert_non_null(e);
	assert_true(e->running && e->nri);
	assert_string_equal(e->cgroup_path, cg);
	assert_int_equal(e->pid, getpid());
	/* started again (a replayed event): libweir's answer, no error */
	assert_int_equal(start(p, ctr("k1", "p1", "app", (uint32_t)getpid(), NULL)), 0);
	assert_int_equal(F.attach_calls, 2);

	/* no pid: cgroupsPath under the cgroup v2 mount, when that directory exists */
	c = ctr("k2", "p1", "app", 0, NULL);
	c->linux = A(sizeof(*c->linux));
	nri__pkg__api__v1alpha1__linux_container__init(c->linux);
	c->linux->cgroups_path = "/";
	if (!weir_cgroup2_mount(root, sizeof(root))) {
		assert_int_equal(start(p, c), 0);
		strcat(root, "/");
		assert_string_equal(fake_get(&F, "k2")->cgroup_path, root);
	} else {
		assert_int_equal(start(p, c), -ESRCH);
	}
	/* neither a pid nor an existing cgroup: refused, nothing asked of libweir */
	c->id = "k3";
	c->linux->cgroups_path = "/weir-test-no-such-cgroup/x";
	F.attach_calls = 0;
	assert_int_equal(start(p, c), -ESRCH);
	assert_string_equal(E.msg, "weir: container app in pod ns/web: container id k3: neither a "
				   "pid nor a cgroup to attach to (cgroupsPath "
				   "\"/weir-test-no-such-cgroup/x\")");
	assert_int_equal(F.attach_calls, 0);

	/* libweir refuses: its message, behind the container, with the key as written */
	F.attach_fail = -EPERM;
	F.attach_fail_key = "egress.weir.io";
	assert_int_equal(start(p, ctr("k4", "p1", "app", (uint32_t)getpid(), NULL)), -EPERM);
	assert_string_equal(E.msg, "weir: container app in pod ns/web: egress.weir.io/pod: the "
				   "kernel refused it");
	F.attach_fail_key = NULL;
	assert_int_equal(start(p, ctr("k4", "p1", "app", (uint32_t)getpid(), NULL)), -EPERM);
	snprintf(root, sizeof(root), "weir: container app in pod ns/web: cannot open cgroup %s",
		 cg);
	assert_string_equal(E.msg, root);
	assert_null(fake_get(&F, "k4"));
}

/* ---- StopContainer and RemoveContainer ---- */

static void test_stop_remove(void **state)
{
	Nri__PodSandbox *p = pod("p1", "ns", "web", KV("egress.weir.io=deny any"));
	Nri__Container *c = ctr("k1", "p1", "app", (uint32_t)getpid(), NULL);

	assert_int_equal(run_pod(p), 0);
	assert_int_equal(start(p, c), 0);
	assert_int_equal(H->stop_container(W, p, c, &E), 0);
	assert_int_equal(F.detach_calls, 1);
	assert_false(fake_get(&F, "k1")->running);
	/* RemoveContainer after StopContainer: nothing left to detach */
	assert_int_equal(H->remove_container(W, p, c, &E), 0);
	assert_int_equal(F.detach_calls, 1);
	/* a container weir never attached costs a lookup, no detach */
	assert_int_equal(H->stop_container(W, p, ctr("k2", "p1", "x", 0, NULL), &E), 0);
	assert_int_equal(H->remove_container(W, p, ctr("", "p1", "x", 0, NULL), &E), 0);
	assert_int_equal(F.detach_calls, 1);
	/* RemoveContainer when StopContainer was missed detaches */
	fake_add(&F, "k3", true, true);
	assert_int_equal(H->remove_container(W, p, ctr("k3", "p1", "x", 0, NULL), &E), 0);
	assert_int_equal(F.detach_calls, 2);
	/* a failed detach never fails the runtime's stop (weir gc finishes it) */
	fake_add(&F, "k4", true, true);
	F.detach_fail = -EIO;
	assert_int_equal(H->stop_container(W, p, ctr("k4", "p1", "x", 0, NULL), &E), 0);
	assert_int_equal(F.detach_calls, 3);

	/* RemovePodSandbox forgets the pod: a later stripped event finds no annotations */
	assert_int_equal(H->remove_pod(W, stripped("p1"), &E), 0);
	F.attach_calls = 0;
	assert_int_equal(start(stripped("p1"), ctr("k5", "p1", "app", 1, NULL)), 0);
	assert_int_equal(F.attach_calls, 0);
}

/* ---- Synchronize ---- */

static Nri__Container *with_state(Nri__Container *c, int state)
{
	c->state = (Nri__Pkg__Api__V1alpha1__ContainerState)state;
	return c;
}

static void test_synchronize(void **state)
{
	enum {
		RUNNING = NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_RUNNING,
		CREATED = NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_CREATED,
		STOPPED = NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_STOPPED,
	};
	pid_t me = getpid();
	Nri__PodSandbox *pods[3];
	Nri__Container *c1[3], *c2[2];
	struct fake_ep *hook;

	/* what weir-nri attached before it went away, and the hook's own endpoint */
	fake_add(&F, "keep", true, true);
	fake_add(&F, "gone", true, true);
	fake_add(&F, "created", true, true);
	hook = fake_add(&F, "hooked", true, false);
	/* a pod remembered before, gone from the runtime since */
	assert_int_equal(run_pod(pod("old", "ns", "old", KV("egress.weir.io=deny any"))), 0);

	/* chunk 1: containers whose pods come in chunk 2 */
	c1[0] = ctr("new", "pa", "app", me, NULL);
	c1[1] = ctr("keep", "pa", "app", me, NULL);
	c1[2] = with_state(ctr("created", "pb", "app", 0, NULL), CREATED);
	assert_int_equal(synchronize(NULL, 0, c1, 3, 1), 0);
	assert_int_equal(F.attach_calls + F.detach_calls, 0); /* nothing before the last chunk */

	pods[0] = pod("pa", "ns", "a", KV("egress.weir.io/pod=allow 10.1.0.0/16"));
	pods[1] = pod("pb", "ns", "b", KV("egress.weir.io=allow 10.2.0.0/16"));
	pods[2] = pod("pc", "ns", "c", KV("app=x"));
	c2[0] = with_state(ctr("stopped", "pb", "app", 0, NULL), STOPPED);
	c2[1] = ctr("plain", "pc", "app", me, NULL);
	assert_int_equal(synchronize(pods, 3, c2, 2, 0), 0);

	/* the running container with weir annotations is attached with its pod's policy ... */
	assert_string_equal(attached_egress("new"), "allow 10.1.0.0/16");
	assert_string_equal(fake_get(&F, "new")->pod_name, "a");
	/* ... the one already attached, the created, stopped and plain ones are not */
	assert_int_equal(F.attach_calls, 1);
	/* the endpoint of a container the runtime no longer lists is detached, the created
	 * container's is kept, and the hook's is not weir-nri's */
	assert_false(fake_get(&F, "gone")->running);
	assert_true(fake_get(&F, "created")->running);
	assert_true(fake_get(&F, "keep")->running);
	assert_true(hook->running);
	assert_int_equal(F.detach_calls, 1);
	/* pods: the listed are remembered, the one no longer listed is forgotten */
	F.attach_calls = 0;
	assert_int_equal(start(stripped("pb"), ctr("late", "pb", "app", me, NULL)), 0);
	assert_string_equal(attached_egress("late"), "allow 10.2.0.0/16");
	assert_int_equal(start(stripped("old"), ctr("late2", "old", "app", me, NULL)), 0);
	assert_int_equal(F.attach_calls, 1);

	/* a connection lost in the middle of a Synchronize: its chunks are forgotten */
	c1[0] = ctr("half", "pa", "app", me, NULL);
	assert_int_equal(synchronize(NULL, 0, c1, 1, 1), 0);
	H->disconnected(W);
	F.attach_calls = F.detach_calls = 0;
	assert_int_equal(synchronize(pods, 3, NULL, 0, 0), 0);
	assert_null(fake_get(&F, "half"));
	/* and everything weir-nri attached is gone from this runtime's view: detached */
	assert_false(fake_get(&F, "keep")->running);
	assert_false(fake_get(&F, "new")->running);
	assert_true(hook->running);
}

/*
 * A weir-nri killed inside StartContainer's attach leaves the record attaching, and containerd
 * starts the container anyway: the next Synchronize attaches it again (which finishes or undoes
 * the half-done endpoint), and detaches a half-done one whose container is gone.
 */
static void test_synchronize_interrupted_attach(void **state)
{
	Nri__PodSandbox *pods[1];
	Nri__Container *c[2];

	fake_add(&F, "halfway", false, true)->half = true;
	fake_add(&F, "halfgone", false, true)->half = true;
	fake_add(&F, "whole", true, true);
	pods[0] = pod("pa", "ns", "a", KV("egress.weir.io=allow 10.1.0.0/16"));
	c[0] = ctr("halfway", "pa", "app", getpid(), NULL);
	c[1] = ctr("whole", "pa", "app", getpid(), NULL);
	assert_int_equal(synchronize(pods, 1, c, 2, 0), 0);
	assert_int_equal(F.attach_calls, 1);
	assert_true(fake_get(&F, "halfway")->running);
	assert_string_equal(attached_egress("halfway"), "allow 10.1.0.0/16");
	assert_true(fake_get(&F, "whole")->running);
	assert_int_equal(F.detach_calls, 1);
	assert_false(fake_get(&F, "halfgone")->half);
}

/*
 * 16,000 pods of 2 containers in 4 chunks, the pods in the last one: the right policy on
 * every container, nothing attached twice, every vanished endpoint detached.
 */
static void test_synchronize_at_scale(void **state)
{
	enum { PODS = 16000, CTRS = 2 * PODS, CHUNKS = 4, BEFORE = 8000, VANISHED = 2000 };
	Nri__PodSandbox **pods = A(PODS * sizeof(*pods));
	Nri__Container **ctrs = A(CTRS * sizeof(*ctrs));
	size_t want = 0, wrong = 0;

	for (int i = 0; i < PODS; i++) {
		const char *a = S("egress.weir.io/pod=allow 10.%d.%d.0/24", i / 256, i % 256);

		pods[i] = pod(S("pod-%d", i), "ns", S("n%d", i), i % 2 ? KV(a) : KV("app=x"));
	}
	for (int i = 0; i < CTRS; i++) {
		ctrs[i] = ctr(S("ctr-%d", i), S("pod-%d", i / 2), i % 2 ? "b" : "a", 1, NULL);
		if (i < BEFORE)
			fake_add(&F, ctrs[i]->id, true, true);
		else if ((i / 2) % 2)
			want++;
	}
	for (int i = 0; i < VANISHED; i++)
		fake_add(&F, S("vanished-%d", i), true, true);
	for (int k = 0; k < CHUNKS; k++)
		assert_int_equal(synchronize(NULL, 0, ctrs + k * (CTRS / CHUNKS), CTRS / CHUNKS, 1),
				 0);
	assert_int_equal(F.attach_calls, 0);
	assert_int_equal(synchronize(pods, PODS, NULL, 0, 0), 0);

	assert_int_equal(F.attach_calls, want);
	assert_int_equal(F.detach_calls, VANISHED);
	for (int i = BEFORE; i < CTRS; i++) {
		const char *v = attached_egress(ctrs[i]->id);
		char exp[64];

		if ((i / 2) % 2) {
			snprintf(exp, sizeof(exp), "allow 10.%d.%d.0/24", (i / 2) / 256,
				 (i / 2) % 256);
			wrong += !v || strcmp(v, exp);
		} else {
			wrong += fake_get(&F, ctrs[i]->id) != NULL;
		}
	}
	assert_int_equal(wrong, 0);
	for (int i = 0; i < VANISHED; i++)
		assert_false(fake_get(&F, S("vanished-%d", i))->running);
}

/* ---- NUL bytes in protobuf strings ---- */

static void test_nul(void **state)
{
	static const char v[] = "allow any\0; deny 10.9.0.0/16";
	/* RunPodSandboxRequest{pod{id "p9", namespace "ns", name "web", annotations
	 * {"egress.weir.io": v}}}, written as a Go map<string, string> encodes it */
	static const uint8_t wire[] = {
		0x0a, 0x3d, 0x0a, 0x02, 'p',  '9',  0x12, 0x03, 'w',  'e', 'b', 0x22, 0x02,
		'n',  's',  0x32, 0x2e, 0x0a, 0x0e, 'e',  'g',	'r',  'e', 's', 's',  '.',
		'w',  'e',  'i',  'r',	'.',  'i',  'o',  0x12, 0x1c, 'a', 'l', 'l',  'o',
		'w',  ' ',  'a',  'n',	'y',  0x00, ';',  ' ',	'd',  'e', 'n', 'y',  ' ',
		'1',  '0',  '.',  '9',	'.',  '0',  '.',  '0',	'/',  '1', '6'};
	Nri__Pkg__Api__V1alpha1__RunPodSandboxRequest *req;
	Nri__PodSandbox *p;

	p = pod("p1", "ns", "web", NULL);
	p->annotations = A(sizeof(*p->annotations));
	p->annotations[0] = ent_len("egress.weir.io", 14, v, sizeof(v) - 1);
	p->n_annotations = 1;
	assert_int_equal(run_pod(p), -EINVAL);
	assert_string_equal(E.msg, "weir: pod ns/web: egress.weir.io: control character 0x00 at "
				   "byte 9: expected printable text");

	/* the same from the wire: the whole value reaches the handler */
	req = nri__pkg__api__v1alpha1__run_pod_sandbox_request__unpack(NULL, sizeof(wire), wire);
	assert_non_null(req);
	assert_int_equal(req->pod->annotations[0]->value.len, sizeof(v) - 1);
	assert_int_equal(run_pod(req->pod), -EINVAL);
	assert_string_equal(E.msg, "weir: pod ns/web: egress.weir.io: control character 0x00 at "
				   "byte 9: expected printable text");
	nri__pkg__api__v1alpha1__run_pod_sandbox_request__free_unpacked(req, NULL);

	/* a key a NUL would cut into a weir key, on a container */
	p = pod("p2", "ns", "web", NULL);
	assert_int_equal(run_pod(p), 0);
	{
		Nri__Container *c = ctr("k1", "p2", "app", 0, NULL);

		c->annotations = A(sizeof(*c->annotations));
		c->annotations[0] = ent_len("egress.weir.io\0x", 16, "allow any", 9);
		c->n_annotations = 1;
		assert_int_equal(create(p, c), -EINVAL);
		assert_string_equal(E.msg, "weir: container app in pod ns/web: annotation key "
					   "\"egress.weir.io\\x00x\": control character 0x00 at "
					   "byte 14: expected printable text");
		/* NUL bytes in annotations that are not weir's are not weir's concern */
		c->annotations[0] = ent_len("app\0x", 5, "a\0b", 3);
		assert_int_equal(create(p, c), 0);
	}
}

/* ---- the datapath is loaded before any StartContainer ---- */

static void test_load(void **state)
{
	F.load_fail = -EPERM;
	assert_int_equal(weir_nri_load(W), -EPERM);
	assert_int_equal(F.load_calls, 1);
	/* each Configure tries again until it works, then never again */
	H->configured(W, "containerd", "1.7.24");
	assert_int_equal(F.load_calls, 2);
	F.load_fail = 0;
	H->configured(W, "containerd", "1.7.24");
	assert_int_equal(F.load_calls, 3);
	H->configured(W, "containerd", "1.7.24");
	assert_int_equal(weir_nri_load(W), 0);
	assert_int_equal(F.load_calls, 4);
}

/* ---- OCI cgroupsPath to a cgroup v2 directory ---- */

static void expect_dir(const char *cgroups_path, const char *root, const char *want)
{
	char out[512];
	int r = weir_nri_cgroup_dir(cgroups_path, root, out, sizeof(out));

	if (r)
		print_error("\"%s\": got %d\n", cgroups_path, r);
	assert_int_equal(r, 0);
	assert_string_equal(out, want);
}

static void expect_err(const char *cgroups_path, int want)
{
	char out[512] = "untouched";

	assert_int_equal(weir_nri_cgroup_dir(cgroups_path, UNIFIED, out, sizeof(out)), want);
}

static void test_cgroupfs(void **state)
{
	/* containerd's cgroupfs driver: CRI cgroup parent + "/" + container id */
	expect_dir("/weir-test/pod-1234/abcdef", HYBRID, HYBRID "/weir-test/pod-1234/abcdef");
	expect_dir("/kubepods/besteffort/pod1/c1", UNIFIED, UNIFIED "/kubepods/besteffort/pod1/c1");
	expect_dir("/", UNIFIED, UNIFIED "/");
}

static void test_systemd(void **state)
{
	/* "slice:prefix:name": the slice's parents come from its dashes */
	expect_dir("kubepods-besteffort-pod12_34.slice:cri-containerd:abc", UNIFIED,
		   UNIFIED "/kubepods.slice/kubepods-besteffort.slice/"
			   "kubepods-besteffort-pod12_34.slice/cri-containerd-abc.scope");
	expect_dir("kubepods.slice:cri-containerd:abc", HYBRID,
		   HYBRID "/kubepods.slice/cri-containerd-abc.scope");
	expect_dir("system.slice::abc", UNIFIED, UNIFIED "/system.slice/abc.scope");
	/* the root slice and an empty slice are the cgroup root */
	expect_dir("-.slice:docker:abc", UNIFIED, UNIFIED "/docker-abc.scope");
	expect_dir(":docker:abc", UNIFIED, UNIFIED "/docker-abc.scope");
}

static void test_invalid(void **state)
{
	expect_err(NULL, -EINVAL);
	expect_err("", -EINVAL);
	expect_err("relative/path", -EINVAL);
	expect_err("a.slice:b", -EINVAL);		    /* two fields */
	expect_err("a.slice:b:c:d", -EINVAL);		    /* four fields */
	expect_err("a.slice:b:", -EINVAL);		    /* no name */
	expect_err("kubepods:cri-containerd:abc", -EINVAL); /* not a .slice */
	expect_err(".slice:p:n", -EINVAL);		    /* nothing before .slice */
	expect_err("a--b.slice:p:n", -EINVAL);		    /* empty component */
	expect_err("-a.slice:p:n", -EINVAL);
	expect_err("a-.slice:p:n", -EINVAL);
}

static void test_too_long(void **state)
{
	char out[32];

	assert_int_equal(
		weir_nri_cgroup_dir("/weir-test/pod-1234/abcdef", UNIFIED, out, sizeof(out)),
		-ENAMETOOLONG);
	assert_int_equal(
		weir_nri_cgroup_dir("a-b-c-d-e-f-g-h.slice:p:n", UNIFIED, out, sizeof(out)),
		-ENAMETOOLONG);
	assert_int_equal(
		weir_nri_cgroup_dir("/x", "/0123456789012345678901234567890123", out, sizeof(out)),
		-ENAMETOOLONG);
	/* exactly fitting */
	assert_int_equal(
		weir_nri_cgroup_dir("/abc", "/0123456789012345678901234", out, sizeof(out)), 0);
	assert_string_equal(out, "/0123456789012345678901234/abc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bandwidth_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_synchronize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_synchronize_at_scale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_synchronize_interrupted_attach, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_nul, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load, setup, teardown),
		cmocka_unit_test(test_cgroupfs),
		cmocka_unit_test(test_systemd),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_too_long),
	};

	weir_log_init("test_nri_handlers", WEIR_LOG_ERROR, WEIR_LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
