// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "events.h"
#include "util.h"

/*
 * Which container each endpoint id belongs to, from the records, indexed by endpoint id. A
 * stopped record may share its id with a newer, running one: the running one wins.
 */
struct ep_names {
	struct {
		bool set;
		bool running;
		char id[129];
		char name[128];
	} e[WEIR_MAX_ENDPOINTS];
};

static int add_name(struct weir_ctx *ctx, const char *id, struct json_object *rec, void *arg)
{
	struct ep_names *names = arg;
	bool running = !strcmp(weir_json_str(rec, "state") ?: "", "running");
	uint64_t ep = weir_json_u64(rec, "endpoint");

	if (ep >= WEIR_MAX_ENDPOINTS || (names->e[ep].set && (names->e[ep].running || !running)))
		return 0;
	names->e[ep].set = true;
	names->e[ep].running = running;
	snprintf(names->e[ep].id, sizeof(names->e[ep].id), "%s", id);
	snprintf(names->e[ep].name, sizeof(names->e[ep].name), "%s",
		 weir_json_str(rec, "name") ?: "");
	return 0;
}

static const char *name_of(const struct ep_names *names, uint32_t ep, const char **name)
{
	if (ep >= WEIR_MAX_ENDPOINTS || !names->e[ep].set)
		return NULL;
	*name = names->e[ep].name;
	return names->e[ep].id;
}

static bool matches(const char *want, const char *id, const char *name)
{
	if (!want)
		return true;
	if (!id)
		return false;
	return !strncmp(id, want, strlen(want)) || (name && !strcmp(name, want));
}

/* CLOCK_BOOTTIME nanoseconds to wall-clock milliseconds. */
static uint64_t boot_to_wall_ms(uint64_t boot_ns)
{
	struct timespec rt, bt;
	int64_t delta;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &bt);
	delta = ((int64_t)rt.tv_sec - bt.tv_sec) * 1000000000LL + (rt.tv_nsec - bt.tv_nsec);
	return (uint64_t)((int64_t)boot_ns + delta) / 1000000;
}

static void addr_str(uint8_t family, const uint8_t *a, char *out, size_t size)
{
	inet_ntop(family == WEIR_V4 ? AF_INET : AF_INET6, a, out, (socklen_t)size);
}

static const char *proto_name(uint8_t p)
{
	switch (p) {
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 1:
		return "icmp";
	case 58:
		return "icmpv6";
	default:
		return "other";
	}
}

static struct json_object *event_json(const struct weir_event *ev, const char *id, const char *name)
{
	static const char *const verdicts[] = {"allowed", "denied", "audit-denied"};
	struct json_object *o = json_object_new_object();
	char la[INET6_ADDRSTRLEN], ra[INET6_ADDRSTRLEN];

	addr_str(ev->family, ev->laddr, la, sizeof(la));
	addr_str(ev->family, ev->raddr, ra, sizeof(ra));
	json_object_object_add(o, "time_ms", json_object_new_uint64(boot_to_wall_ms(ev->end_ns)));
	json_object_object_add(
		o, "type", json_object_new_string(ev->type == WEIR_EV_FLOW ? "flow" : "denied"));
	if (id)
		json_object_object_add(o, "container", json_object_new_string(id));
	if (name && *name)
		json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "endpoint", json_object_new_uint64(ev->ep_id));
	json_object_object_add(
		o, "direction",
		json_object_new_string(ev->dir == WEIR_EGRESS ? "egress" : "ingress"));
	json_object_object_add(o, "verdict", json_object_new_string(verdicts[ev->verdict % 3]));
	json_object_object_add(o, "protocol", json_object_new_string(proto_name(ev->proto)));
	json_object_object_add(o, "family", json_object_new_int(ev->family));
	if (ev->type == WEIR_EV_DENIED)
		json_object_object_add(
			o, "at",
			json_object_new_string(ev->where == WEIR_AT_SOCKET ? "socket" : "packet"));
	if (ev->type == WEIR_EV_FLOW || ev->where == WEIR_AT_PACKET) {
		json_object_object_add(o, "local_addr", json_object_new_string(la));
		json_object_object_add(o, "local_port", json_object_new_int(ev->lport));
	}
	json_object_object_add(o, "remote_addr", json_object_new_string(ra));
	json_object_object_add(o, "remote_port", json_object_new_int(ev->rport));
	if (ev->type == WEIR_EV_FLOW) {
		json_object_object_add(o, "duration_us",
				       json_object_new_uint64((ev->end_ns - ev->start_ns) / 1000));
		json_object_object_add(o, "bytes_out", json_object_new_uint64(ev->bytes_out));
		json_object_object_add(o, "bytes_in", json_object_new_uint64(ev->bytes_in));
		json_object_object_add(o, "segments_out", json_object_new_uint64(ev->segs_out));
		json_object_object_add(o, "segments_in", json_object_new_uint64(ev->segs_in));
		json_object_object_add(o, "srtt_us", json_object_new_uint64(ev->srtt_us));
		json_object_object_add(o, "retransmits", json_object_new_uint64(ev->retrans));
	}
	return o;
}

void weir_event_format(struct json_object *ev, char *buf, size_t size)
{
	time_t secs = (time_t)(weir_json_u64(ev, "time_ms") / 1000);
	const char *type = weir_json_str(ev, "type") ?: "?";
	const char *fam6 = weir_json_u64(ev, "family") == WEIR_V6 ? "[" : "";
	const char *fam6e = *fam6 ? "]" : "";
	char ts[32], local[80] = "", who[48];
	struct tm tm;
	int n;

	gmtime_r(&secs, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(who, sizeof(who), "%.12s%s%.20s%s", weir_json_str(ev, "container") ?: "?",
		 weir_json_str(ev, "name") ? "/" : "", weir_json_str(ev, "name") ?: "", "");
	if (weir_json_str(ev, "local_addr"))
		snprintf(local, sizeof(local), "%s%s%s:%llu ", fam6,
			 weir_json_str(ev, "local_addr"), fam6e,
			 (unsigned long long)weir_json_u64(ev, "local_port"));
	n = snprintf(buf, size, "%s.%03llu %-24s %-7s %-6s %s%s %s%s%s:%llu %s", ts,
		     (unsigned long long)(weir_json_u64(ev, "time_ms") % 1000), who,
		     weir_json_str(ev, "direction") ?: "?", weir_json_str(ev, "protocol") ?: "?",
		     local, strcmp(weir_json_str(ev, "direction") ?: "", "egress") ? "<-" : "->",
		     fam6, weir_json_str(ev, "remote_addr") ?: "?", fam6e,
		     (unsigned long long)weir_json_u64(ev, "remote_port"),
		     weir_json_str(ev, "verdict") ?: "?");
	if (n < 0 || (size_t)n >= size)
		return;
	if (!strcmp(type, "flow"))
		snprintf(buf + n, size - (size_t)n,
			 " out %lluB/%llu seg in %lluB/%llu seg %.3fms rtt %lluus retrans %llu",
			 (unsigned long long)weir_json_u64(ev, "bytes_out"),
			 (unsigned long long)weir_json_u64(ev, "segments_out"),
			 (unsigned long long)weir_json_u64(ev, "bytes_in"),
			 (unsigned long long)weir_json_u64(ev, "segments_in"),
			 (double)weir_json_u64(ev, "duration_us") / 1000.0,
			 (unsigned long long)weir_json_u64(ev, "srtt_us"),
			 (unsigned long long)weir_json_u64(ev, "retransmits"));
	else
		snprintf(buf + n, size - (size_t)n, " (at %s)", weir_json_str(ev, "at") ?: "?");
}

static struct ep_names *load_names(struct weir_ctx *ctx)
{
	struct ep_names *names = calloc(1, sizeof(*names));

	if (names)
		weir_records_foreach(ctx, add_name, names);
	return names;
}

static int cmp_end(const void *a, const void *b)
{
	const struct weir_event *x = a, *y = b;

	return x->end_ns < y->end_ns ? -1 : x->end_ns > y->end_ns;
}

int weir_events_recent(struct weir_ctx *ctx, const char *id, weir_event_fn fn, void *arg,
		       struct weir_error *err)
{
	_cleanup_free_ struct ep_names *names = NULL;
	_cleanup_free_ struct weir_event *evs = NULL;
	__u64 key, next, *prev = NULL;
	size_t n = 0;
	int map, r;

	r = weir_ctx_datapath(ctx, false, err);
	if (r)
		return r;
	names = load_names(ctx);
	evs = calloc(WEIR_MAX_FLOWS, sizeof(*evs));
	if (!names || !evs)
		return weir_error_set(err, -ENOMEM, "out of memory");
	map = ctx->dp.map[WEIR_MAP_FLOWS];
	while (n < WEIR_MAX_FLOWS && !bpf_map_get_next_key(map, prev, &next)) {
		key = next;
		prev = &key;
		if (!bpf_map_lookup_elem(map, &key, &evs[n]))
			n++;
	}
	qsort(evs, n, sizeof(*evs), cmp_end);
	for (size_t i = 0; i < n; i++) {
		const char *name = NULL, *cid = name_of(names, evs[i].ep_id, &name);
		struct json_object *o;

		if (!matches(id, cid, name))
			continue;
		o = event_json(&evs[i], cid, name);
		r = fn(o, arg);
		json_object_put(o);
		if (r)
			break;
	}
	return 0;
}

struct follow_state {
	uint64_t since_ns; /* the ring keeps what nobody read: older events are `weir flows` */
	uint64_t reloaded_ns;
	struct weir_ctx *ctx;
	struct ep_names *names;
	const char *id;
	weir_event_fn fn;
	void *arg;
	int stop;
};

static int on_ring(void *arg, void *data, size_t size)
{
	struct follow_state *st = arg;
	struct weir_event ev;
	const char *name = NULL, *cid;
	struct json_object *o;
	int r;

	if (size < sizeof(ev))
		return 0;
	memcpy(&ev, data, sizeof(ev));
	if (ev.end_ns < st->since_ns)
		return 0;
	cid = name_of(st->names, ev.ep_id, &name);
	if (!cid && ev.end_ns - st->reloaded_ns > 1000000000ULL) {
		/* a container started after we did: read the records again, at most once a second
		 */
		st->reloaded_ns = ev.end_ns;
		memset(st->names, 0, sizeof(*st->names));
		weir_records_foreach(st->ctx, add_name, st->names);
		cid = name_of(st->names, ev.ep_id, &name);
	}
	if (!matches(st->id, cid, name))
		return 0;
	o = event_json(&ev, cid, name);
	r = st->fn(o, st->arg);
	json_object_put(o);
	if (r)
		st->stop = 1;
	return r;
}

int weir_events_follow(struct weir_ctx *ctx, const char *id, weir_event_fn fn, void *arg,
		       volatile sig_atomic_t *stop, struct weir_error *err)
{
	struct follow_state st = {.ctx = ctx, .id = id, .fn = fn, .arg = arg};
	struct ring_buffer *rb;
	int r;

	r = weir_ctx_datapath(ctx, false, err);
	if (r)
		return r;
	st.names = load_names(ctx);
	if (!st.names)
		return weir_error_set(err, -ENOMEM, "out of memory");
	{
		struct timespec bt;

		clock_gettime(CLOCK_BOOTTIME, &bt);
		st.since_ns = (uint64_t)bt.tv_sec * 1000000000ULL + (uint64_t)bt.tv_nsec;
	}
	rb = ring_buffer__new(ctx->dp.map[WEIR_MAP_EVENTS], on_ring, &st, NULL);
	if (!rb) {
		r = -errno;
		free(st.names);
		return weir_error_set(err, r, "cannot open the event ring: %s", strerror(-r));
	}
	while (!*stop && !st.stop) {
		r = ring_buffer__poll(rb, 200);
		if (r < 0 && r != -EINTR) {
			weir_error_set(err, r, "reading events: %s", strerror(-r));
			break;
		}
		r = 0;
	}
	ring_buffer__free(rb);
	free(st.names);
	return r;
}

static int count_states(struct weir_ctx *ctx, const char *id, struct json_object *rec, void *arg)
{
	uint64_t *n = arg;

	n[strcmp(weir_json_str(rec, "state") ?: "", "running") ? 1 : 0]++;
	return 0;
}

int weir_node_stats(struct weir_ctx *ctx, struct json_object **out)
{
	struct json_object *o = json_object_new_object();
	struct weir_error e = {};
	uint64_t states[2] = {0, 0};
	bool loaded = !weir_ctx_datapath(ctx, false, &e);

	json_object_object_add(o, "datapath_loaded", json_object_new_boolean(loaded));
	weir_records_foreach(ctx, count_states, states);
	json_object_object_add(o, "endpoints_running", json_object_new_uint64(states[0]));
	json_object_object_add(o, "endpoints_stopped", json_object_new_uint64(states[1]));
	if (loaded) {
		int ncpu = libbpf_num_possible_cpus();
		struct weir_event_stats *per = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*per)) : NULL;
		uint64_t lost = 0, sent = 0;
		__u32 zero = 0;

		if (per && !bpf_map_lookup_elem(ctx->dp.map[WEIR_MAP_EVENT_STATS], &zero, per)) {
			for (int c = 0; c < ncpu; c++) {
				lost += per[c].lost;
				sent += per[c].sent;
			}
			json_object_object_add(o, "events_sent", json_object_new_uint64(sent));
			json_object_object_add(o, "events_lost", json_object_new_uint64(lost));
		}
		free(per);
		json_object_object_add(
			o, "kernel_drop_reasons",
			json_object_new_boolean(ctx->dp.meta_flags & WEIR_META_DROP_REASONS));
	}
	*out = o;
	return 0;
}
