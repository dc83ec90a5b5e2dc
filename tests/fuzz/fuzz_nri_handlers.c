// SPDX-License-Identifier: Apache-2.0
/*
 * weir-nri's request handlers, driven the way containerd drives them: a plugin (nri/plugin.c)
 * with weir's own handler table (nri/handlers.c) on one end of a socketpair, a fake runtime on
 * the other (as tests/unit/test_nri_plugin.c drives the plugin). The runtime answers
 * RegisterPlugin, then sends the input's requests, each a method and a protobuf payload the
 * plugin decodes and hands to the handlers (pods remembered, annotations resolved and checked,
 * containers attached and detached, Synchronize), and waits for each response.
 *
 * The handlers reach libweir, so the process first drops every capability: no BPF program, map,
 * mount or cgroup change can happen whatever the input says. Its node config keeps state in a
 * scratch folder and allows no cgroup that exists, so an attach is refused before the kernel.
 *
 * Input: { method u8, length u16 LE, payload }...
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctx.h"
#include "fuzz.h"
#include "handlers.h"
#include "log.h"
#include "mux.h"
#include "nri_api.h"
#include "plugin.h"
#include "ttrpc.h"

static const char *const methods[] = {
	"Configure",	   "Synchronize",	  "StateChange",	  "RunPodSandbox",
	"CreateContainer", "PostCreateContainer", "StartContainer",	  "PostStartContainer",
	"UpdateContainer", "PostUpdateContainer", "StopContainer",	  "RemoveContainer",
	"StopPodSandbox",  "RemovePodSandbox",	  "PostUpdatePodSandbox", "UpdatePodSandbox",
	"Shutdown",
};

static struct weir_ctx *ctx;
static char scratch[64] = "/tmp/weir-fuzz-nri.XXXXXX";

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void cleanup(void)
{
	weir_ctx_close(ctx);
	nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	cap_t none = cap_init();
	struct weir_error err = {};
	char conf[128], text[512];
	FILE *f;

	/* nothing below may reach the kernel's BPF, mounts or cgroups, whatever the input says */
	if (!none || cap_set_proc(none) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		abort();
	cap_free(none);
	if (!mkdtemp(scratch))
		abort();
	snprintf(conf, sizeof(conf), "%s/weir.conf", scratch);
	snprintf(text, sizeof(text),
		 "{\"state_dir\": \"%s/state\", \"bpffs\": \"%s/bpffs\", "
		 "\"endpoint_cgroups\": [\"/weir-fuzz-no-such-cgroup-%d\"]}",
		 scratch, scratch, (int)getpid());
	f = fopen(conf, "w");
	if (!f || fputs(text, f) < 0 || fclose(f))
		abort();
	/* WEIR_FUZZ_LOG=1 shows what the handlers did with an input (running it alone) */
	weir_log_init("fuzz_nri_handlers",
		      getenv("WEIR_FUZZ_LOG") ? WEIR_LOG_DEBUG : WEIR_LOG_ERROR, WEIR_LOG_TEXT);
	if (weir_ctx_open(&ctx, conf, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		abort();
	}
	atexit(cleanup);
	return 0;
}

/* ---- the fake runtime: reads what the plugin sends, counts responses ---- */

struct rt {
	int fd;
	struct nri_mux mux;
	struct ttrpc_rx rx[NRI_MUX_NCONN];
	uint32_t register_stream; /* the plugin's RegisterPlugin call, to answer */
	unsigned responses;
};

static int rt_data(void *u, uint32_t conn, struct nri_buf *rx)
{
	struct rt *r = u;
	struct ttrpc_msg msg;

	while (ttrpc_rx_next(&r->rx[conn], rx, &msg) == 1) {
		if (conn == NRI_CONN_RUNTIME && msg.hdr.type == TTRPC_TYPE_REQUEST)
			r->register_stream = msg.hdr.stream;
		else if (conn == NRI_CONN_PLUGIN && msg.hdr.type == TTRPC_TYPE_RESPONSE)
			r->responses++;
		ttrpc_rx_done(rx, &msg);
	}
	return 0;
}

static void rt_read(struct rt *r)
{
	uint8_t buf[8192];
	ssize_t n;

	while ((n = read(r->fd, buf, sizeof(buf))) > 0)
		if (nri_mux_feed(&r->mux, buf, (size_t)n))
			abort(); /* the plugin sends only well-formed frames */
}

static void rt_send(struct rt *r, uint32_t conn, uint32_t stream, uint8_t type, const uint8_t *data,
		    size_t len)
{
	uint8_t head[TTRPC_HDR_LEN];
	struct ttrpc_hdr h = {.len = (uint32_t)len, .stream = stream, .type = type};

	ttrpc_hdr_pack(head, &h);
	if (nri_mux_queue_message(&r->mux, conn, head, sizeof(head), data, len))
		abort();
	while (nri_mux_pending(&r->mux)) {
		struct pollfd pfd = {.fd = r->fd, .events = POLLOUT};

		if (nri_mux_flush(&r->mux, r->fd) == -EAGAIN)
			poll(&pfd, 1, 100);
		else
			break;
	}
}

/* Step the plugin until cond holds or it is done; false when it never did. */
static bool step_until(struct nri_plugin *p, struct rt *r, unsigned *counter, unsigned want)
{
	for (int i = 0; i < 50; i++) {
		if (nri_plugin_step(p, i ? 10 : 0))
			return false;
		rt_read(r);
		if (*counter >= want)
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nri_plugin_config cfg = {.name = "weir", .idx = "10", .stall_timeout_ms = 60000};
	struct fuzz_in in = {data, size};
	struct weir_error err = {};
	struct nri_plugin *p = NULL;
	struct weir_nri *w = NULL;
	struct rt r = {};
	uint32_t stream = 1;
	int sv[2];
	uint8_t *env;
	size_t envlen;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	r.fd = sv[0];
	nri_mux_init(&r.mux, rt_data, &r);
	cfg.fd = sv[1];
	if (weir_nri_new(&w, &weir_nri_libweir_ops, ctx) ||
	    nri_plugin_new(&p, &cfg, &weir_nri_handlers, w, &err))
		abort();

	/* registration: the plugin calls, the runtime accepts */
	for (int i = 0; i < 50 && !r.register_stream; i++) {
		if (nri_plugin_step(p, 10))
			abort();
		rt_read(&r);
	}
	if (!r.register_stream || ttrpc_encode_response(0, NULL, NULL, 0, &env, &envlen))
		abort();
	rt_send(&r, NRI_CONN_RUNTIME, r.register_stream, TTRPC_TYPE_RESPONSE, env, envlen);
	free(env);
	for (int i = 0; i < 50 && nri_plugin_phase(p) < NRI_PHASE_REGISTERED; i++)
		if (nri_plugin_step(p, i ? 10 : 0))
			abort();
	if (nri_plugin_phase(p) < NRI_PHASE_REGISTERED)
		abort();

	while (in.n) {
		const char *method = methods[fuzz_u8(&in) % (sizeof(methods) / sizeof(methods[0]))];
		size_t len;
		char *payload = fuzz_bytes(&in, fuzz_u16(&in), &len);

		if (ttrpc_encode_request(NRI_SERVICE_PLUGIN, method, (uint8_t *)payload, len,
					 2000000000LL, &env, &envlen))
			abort();
		free(payload);
		rt_send(&r, NRI_CONN_PLUGIN, stream, TTRPC_TYPE_REQUEST, env, envlen);
		free(env);
		stream += 2;
		/* every request is answered, unless the plugin hung up (Shutdown) */
		if (!step_until(p, &r, &r.responses, (stream - 1) / 2))
			break;
	}
	nri_plugin_free(p); /* closes sv[1] */
	weir_nri_free(w);
	close(sv[0]);
	nri_mux_free(&r.mux);
	return 0;
}
