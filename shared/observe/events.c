// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ctx.h"
#include "events.h"
#include "guard.h"
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

static int add_name(struct weir_ctx *ctx, const char *id, const struct weir_record *rec,
		    const struct weir_error *why, void *arg)
{
	struct ep_names *names = arg;
	bool running;
	uint32_t ep;

	if (!rec)
		return 0;
	running = rec->state == WEIR_STATE_RUNNING;
	ep = rec->endpoint;
	if (names->e[ep].set && (names->e[ep].running || !running))
		return 0;
	names->e[ep].set = true;
	names->e[ep].running = running;
	snprintf(names->e[ep].id, sizeof(names->e[ep].id), "%s", id);
	snprintf(names->e[ep].name, sizeof(names->e[ep].name), "%s", rec->name ?: "");
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

static void flow_event_format(struct json_object *ev, char *buf, size_t size);
static void guard_event_format(struct json_object *ev, char *buf, size_t size);

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
	if (!strcmp(weir_json_str(ev, "type") ?: "", "guard")) {
		guard_event_format(ev, buf, size);
		return;
	}
	flow_event_format(ev, buf, size);
}

static void flow_event_format(struct json_object *ev, char *buf, size_t size)
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

/* ---- guard events ------------------------------------------------------------------ */

static const char *family_str(uint64_t f, char *buf, size_t size)
{
	const char *n = f == 2	      ? "inet"
			: f == 10     ? "inet6"
			: f && f < 64 ? weir_family_name((unsigned int)f)
				      : NULL;

	if (n)
		return n;
	snprintf(buf, size, "%llu", (unsigned long long)f);
	return buf;
}

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static void add_s(struct json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

/* The guard's own fields, decoded (bpf/weir.h says what each guard puts where). */
static void guard_fields(struct json_object *o, const struct weir_guard_event *ev)
{
	char buf[64], text[sizeof(ev->text) + 1];

	memcpy(text, ev->text, sizeof(ev->text));
	text[sizeof(ev->text)] = '\0';
	switch (ev->guard) {
	case WEIR_GUARD_RAW:
		add_s(o, "family", family_str(ev->args[0], buf, sizeof(buf)));
		add_u64(o, "socket_type", ev->args[1]);
		add_u64(o, "socket_protocol", ev->args[2]);
		break;
	case WEIR_GUARD_BIND:
		add_s(o, "family", family_str(ev->args[0], buf, sizeof(buf)));
		add_s(o, "protocol",
		      ev->args[1] == 6	  ? "tcp"
		      : ev->args[1] == 17 ? "udp"
					  : "other");
		add_u64(o, "port", ev->args[2]);
		break;
	case WEIR_GUARD_SYSCTL:
		add_s(o, "sysctl", text);
		json_object_object_add(o, "write", json_object_new_boolean(ev->args[0] != 0));
		break;
	case WEIR_GUARD_ESCAPE:
		add_s(o, "call", weir_call_name(ev->call));
		break;
	case WEIR_GUARD_PATHS:
		add_s(o, "file", text);
		snprintf(buf, sizeof(buf), "%llu:%llu", (unsigned long long)(ev->args[0] >> 20),
			 (unsigned long long)(ev->args[0] & 0xfffff));
		add_s(o, "dev", buf);
		add_u64(o, "inode", ev->args[1]);
		break;
	case WEIR_GUARD_SCAN: {
		uint8_t family = (uint8_t)(ev->args[5] >> 24), proto = (uint8_t)(ev->args[5] >> 16);
		char addr[INET6_ADDRSTRLEN];

		add_u64(o, "probes", ev->args[0]);
		add_u64(o, "answered", ev->args[1]);
		add_u64(o, "reset", ev->args[2]);
		add_u64(o, "window_ms", ev->args[3]);
		add_u64(o, "quarantine_ms", ev->args[4]);
		addr_str(family, (const uint8_t *)ev->text, addr, sizeof(addr));
		add_s(o, "last_target", addr);
		add_u64(o, "last_port", ev->args[5] & 0xffff);
		add_s(o, "protocol", proto_name(proto));
		break;
	}
	default:
		break;
	}
}

static struct json_object *guard_event_json(const struct weir_guard_event *ev, const char *id,
					    const char *name)
{
	struct json_object *o = json_object_new_object();
	char comm[sizeof(ev->comm) + 1];

	memcpy(comm, ev->comm, sizeof(ev->comm));
	comm[sizeof(ev->comm)] = '\0';
	add_u64(o, "time_ms", boot_to_wall_ms(ev->time_ns));
	add_s(o, "type", "guard");
	add_s(o, "guard", ev->guard < WEIR_GUARDS ? weir_guard_names[ev->guard] : "?");
	add_s(o, "action", ev->action < WEIR_GACTIONS ? weir_gaction_names[ev->action] : "?");
	if (id)
		add_s(o, "container", id);
	if (name && *name)
		add_s(o, "name", name);
	add_u64(o, "endpoint", ev->ep_id);
	if (ev->guard != WEIR_GUARD_SCAN) {
		/* the scan guard counts packets, which carry no process */
		add_u64(o, "pid", ev->pid);
		add_u64(o, "tid", ev->tid);
		add_u64(o, "uid", ev->uid);
		add_s(o, "comm", comm);
	}
	if (ev->nr >= 0) {
		struct json_object *args = json_object_new_array();
		const char *sc = weir_syscall_name(ev->nr, ev->compat);

		if (sc)
			add_s(o, "syscall", sc);
		add_u64(o, "syscall_nr", (uint64_t)ev->nr);
		if (ev->compat)
			json_object_object_add(o, "compat", json_object_new_boolean(true));
		for (int i = 0; i < 6; i++)
			json_object_array_add(args, json_object_new_uint64(ev->args[i]));
		json_object_object_add(o, "args", args);
	}
	guard_fields(o, ev);
	return o;
}

/* The guard's detail for the one-line form. */
static void guard_detail(struct json_object *ev, char *buf, size_t size)
{
	const char *g = weir_json_str(ev, "guard") ?: "";
	const char *sc = weir_json_str(ev, "syscall");

	if (!strcmp(g, "raw-sockets"))
		snprintf(buf, size, "socket family %s type %llu",
			 weir_json_str(ev, "family") ?: "?",
			 (unsigned long long)weir_json_u64(ev, "socket_type"));
	else if (!strcmp(g, "bind"))
		snprintf(buf, size, "bind %s/%llu", weir_json_str(ev, "protocol") ?: "?",
			 (unsigned long long)weir_json_u64(ev, "port"));
	else if (!strcmp(g, "sysctl"))
		snprintf(buf, size, "%s %s",
			 json_object_get_boolean(json_object_object_get(ev, "write")) ? "write"
										      : "read",
			 weir_json_str(ev, "sysctl") ?: "?");
	else if (!strcmp(g, "escape"))
		snprintf(buf, size, "%s (%s)", sc ? sc : "?", weir_json_str(ev, "call") ?: "?");
	else if (!strcmp(g, "paths"))
		snprintf(buf, size, "open %s (dev %s inode %llu)", weir_json_str(ev, "file") ?: "?",
			 weir_json_str(ev, "dev") ?: "?",
			 (unsigned long long)weir_json_u64(ev, "inode"));
	else if (!strcmp(g, "port-scan"))
		snprintf(buf, size,
			 "%llu probes, %llu answered, %llu reset in %.0f s (last %s %s port %llu)",
			 (unsigned long long)weir_json_u64(ev, "probes"),
			 (unsigned long long)weir_json_u64(ev, "answered"),
			 (unsigned long long)weir_json_u64(ev, "reset"),
			 (double)weir_json_u64(ev, "window_ms") / 1000,
			 weir_json_str(ev, "protocol") ?: "?",
			 weir_json_str(ev, "last_target") ?: "?",
			 (unsigned long long)weir_json_u64(ev, "last_port"));
	else
		snprintf(buf, size, "-");
}

static void guard_event_format(struct json_object *ev, char *buf, size_t size)
{
	time_t secs = (time_t)(weir_json_u64(ev, "time_ms") / 1000);
	char ts[32], who[48], proc[48] = "", detail[160];
	struct tm tm;

	gmtime_r(&secs, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(who, sizeof(who), "%.12s%s%.20s", weir_json_str(ev, "container") ?: "?",
		 weir_json_str(ev, "name") ? "/" : "", weir_json_str(ev, "name") ?: "");
	if (weir_json_str(ev, "comm"))
		snprintf(proc, sizeof(proc), " pid %llu (%s)",
			 (unsigned long long)weir_json_u64(ev, "pid"), weir_json_str(ev, "comm"));
	guard_detail(ev, detail, sizeof(detail));
	snprintf(buf, size, "%s.%03llu %-24s %-11s %-11s %s%s", ts,
		 (unsigned long long)(weir_json_u64(ev, "time_ms") % 1000), who,
		 weir_json_str(ev, "guard") ?: "?", weir_json_str(ev, "action") ?: "?", detail,
		 proc);
}

static struct ep_names *load_names(struct weir_ctx *ctx)
{
	struct ep_names *names = calloc(1, sizeof(*names));

	if (names)
		weir_records_foreach(ctx, add_name, names);
	return names;
}

/*
 * The two kinds of events: flows and denials (weir_events, weir_flows), and guard events
 * (weir_guard_events, weir_guard_recent). Each knows its map, its endpoint, its time and its
 * JSON form; the walking and the following are the same for both.
 */
struct kind {
	enum weir_map_id ring, recent;
	size_t size, max;
	uint32_t (*ep_of)(const void *ev);
	uint64_t (*time_of)(const void *ev);
	struct json_object *(*to_json)(const void *ev, const char *id, const char *name);
};

static uint32_t flow_ep(const void *ev)
{
	return ((const struct weir_event *)ev)->ep_id;
}

static uint64_t flow_time(const void *ev)
{
	return ((const struct weir_event *)ev)->end_ns;
}

static struct json_object *flow_json(const void *ev, const char *id, const char *name)
{
	return event_json(ev, id, name);
}

static uint32_t guard_ep(const void *ev)
{
	return ((const struct weir_guard_event *)ev)->ep_id;
}

static uint64_t guard_time(const void *ev)
{
	return ((const struct weir_guard_event *)ev)->time_ns;
}

static struct json_object *guard_json(const void *ev, const char *id, const char *name)
{
	return guard_event_json(ev, id, name);
}

static const struct kind kinds[] = {
	{WEIR_MAP_EVENTS, WEIR_MAP_FLOWS, sizeof(struct weir_event), WEIR_MAX_FLOWS, flow_ep,
	 flow_time, flow_json},
	{WEIR_MAP_GUARD_EVENTS, WEIR_MAP_GUARD_RECENT, sizeof(struct weir_guard_event),
	 WEIR_MAX_GUARD_RECENT, guard_ep, guard_time, guard_json},
};

static const struct kind *sort_kind;

static int cmp_time(const void *a, const void *b)
{
	uint64_t x = sort_kind->time_of(a), y = sort_kind->time_of(b);

	return x < y ? -1 : x > y;
}

static int recent(struct weir_ctx *ctx, const struct kind *k, const char *id, weir_event_fn fn,
		  void *arg, struct weir_error *err)
{
	_cleanup_free_ struct ep_names *names = NULL;
	_cleanup_free_ uint8_t *evs = NULL;
	__u64 key, next, *prev = NULL;
	size_t n = 0;
	int map, r;

	r = weir_ctx_datapath(ctx, false, err);
	if (r)
		return r;
	names = load_names(ctx);
	evs = calloc(k->max, k->size);
	if (!names || !evs)
		return weir_error_set(err, -ENOMEM, "out of memory");
	map = ctx->dp.map[k->recent];
	while (n < k->max && !bpf_map_get_next_key(map, prev, &next)) {
		key = next;
		prev = &key;
		if (!bpf_map_lookup_elem(map, &key, evs + n * k->size))
			n++;
	}
	sort_kind = k;
	qsort(evs, n, k->size, cmp_time);
	for (size_t i = 0; i < n; i++) {
		const void *ev = evs + i * k->size;
		const char *name = NULL, *cid = name_of(names, k->ep_of(ev), &name);
		struct json_object *o;

		if (!matches(id, cid, name))
			continue;
		o = k->to_json(ev, cid, name);
		r = fn(o, arg);
		json_object_put(o);
		if (r)
			break;
	}
	return 0;
}

int weir_events_recent(struct weir_ctx *ctx, const char *id, weir_event_fn fn, void *arg,
		       struct weir_error *err)
{
	return recent(ctx, &kinds[0], id, fn, arg, err);
}

int weir_guard_events_recent(struct weir_ctx *ctx, const char *id, weir_event_fn fn, void *arg,
			     struct weir_error *err)
{
	return recent(ctx, &kinds[1], id, fn, arg, err);
}

struct follow_state {
	uint64_t since_ns; /* the ring keeps what nobody read: older events are the recent ones */
	uint64_t reloaded_ns;
	uint64_t checked_ns;
	struct timespec records_mtime; /* of the records folder when the names were read */
	struct weir_ctx *ctx;
	struct ep_names *names;
	const char *id;
	weir_event_fn fn;
	void *arg;
	int stop;
};

struct follow_ring {
	struct follow_state *st;
	const struct kind *k;
};

static bool records_changed(struct follow_state *st, struct timespec *now)
{
	struct stat sb;

	if (stat(st->ctx->containers_dir, &sb))
		return false;
	*now = sb.st_mtim;
	return sb.st_mtim.tv_sec != st->records_mtime.tv_sec ||
	       sb.st_mtim.tv_nsec != st->records_mtime.tv_nsec;
}

/*
 * Read the records again when the folder changed since the names were read (a record written,
 * renamed over or removed: a container came or went, and endpoint ids are reused), and at most
 * once a second regardless, in case two changes fell within one tick of the folder's clock.
 */
static void refresh_names(struct follow_state *st, uint64_t t, bool miss)
{
	struct timespec mtime = st->records_mtime;

	if (!records_changed(st, &mtime) && !(miss && t - st->reloaded_ns > 1000000000ULL))
		return;
	st->reloaded_ns = t;
	st->records_mtime = mtime;
	memset(st->names, 0, sizeof(*st->names));
	weir_records_foreach(st->ctx, add_name, st->names);
}

static int on_ring(void *arg, void *data, size_t size)
{
	struct follow_ring *fr = arg;
	struct follow_state *st = fr->st;
	const char *name = NULL, *cid;
	uint8_t ev[sizeof(struct weir_event) > sizeof(struct weir_guard_event)
			   ? sizeof(struct weir_event)
			   : sizeof(struct weir_guard_event)];
	struct json_object *o;
	uint64_t t;
	int r;

	if (size < fr->k->size)
		return 0;
	memcpy(ev, data, fr->k->size);
	t = fr->k->time_of(ev);
	if (t < st->since_ns)
		return 0;
	/* a stat of the folder at most every 100 ms of events catches an endpoint id reused by a
	 * newer container; an unknown id (a container started after we did) checks at once */
	if (t - st->checked_ns > 100000000ULL) {
		st->checked_ns = t;
		refresh_names(st, t, false);
	}
	cid = name_of(st->names, fr->k->ep_of(ev), &name);
	if (!cid) {
		refresh_names(st, t, true);
		cid = name_of(st->names, fr->k->ep_of(ev), &name);
	}
	if (!matches(st->id, cid, name))
		return 0;
	o = fr->k->to_json(ev, cid, name);
	r = st->fn(o, st->arg);
	json_object_put(o);
	if (r)
		st->stop = 1;
	return r;
}

int weir_events_follow_kinds(struct weir_ctx *ctx, unsigned int which, const char *id,
			     weir_event_fn fn, void *arg, volatile sig_atomic_t *stop,
			     struct weir_error *err)
{
	struct follow_state st = {.ctx = ctx, .id = id, .fn = fn, .arg = arg};
	struct follow_ring rings[2] = {{&st, &kinds[0]}, {&st, &kinds[1]}};
	struct ring_buffer *rb = NULL;
	struct timespec bt;
	int r;

	r = weir_ctx_datapath(ctx, false, err);
	if (r)
		return r;
	records_changed(&st, &st.records_mtime); /* before the read: a change during it shows */
	st.names = load_names(ctx);
	if (!st.names)
		return weir_error_set(err, -ENOMEM, "out of memory");
	clock_gettime(CLOCK_BOOTTIME, &bt);
	st.since_ns = (uint64_t)bt.tv_sec * 1000000000ULL + (uint64_t)bt.tv_nsec;
	for (int i = 0; i < 2; i++) {
		int map = ctx->dp.map[kinds[i].ring];

		if (!(which & (1U << i)))
			continue;
		if (!rb)
			rb = ring_buffer__new(map, on_ring, &rings[i], NULL);
		else if (ring_buffer__add(rb, map, on_ring, &rings[i]))
			r = -errno;
		if (!rb || r) {
			r = rb ? r : -errno;
			ring_buffer__free(rb);
			free(st.names);
			return weir_error_set(err, r, "cannot open the event ring: %s",
					      strerror(-r));
		}
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

int weir_events_follow(struct weir_ctx *ctx, const char *id, weir_event_fn fn, void *arg,
		       volatile sig_atomic_t *stop, struct weir_error *err)
{
	return weir_events_follow_kinds(ctx, WEIR_EVENTS_FLOWS, id, fn, arg, stop, err);
}

/* Delivered and lost counts of a ring, summed over CPUs (both stats structs: sent, lost). */
static int ring_counts(int map, uint64_t *sent, uint64_t *lost)
{
	int ncpu = libbpf_num_possible_cpus();
	_cleanup_free_ struct weir_event_stats *per =
		ncpu > 0 ? calloc((size_t)ncpu, sizeof(*per)) : NULL;
	__u32 zero = 0;

	*sent = *lost = 0;
	if (!per)
		return -ENOMEM;
	if (bpf_map_lookup_elem(map, &zero, per))
		return -errno;
	for (int c = 0; c < ncpu; c++) {
		*lost += per[c].lost;
		*sent += per[c].sent;
	}
	return 0;
}

int weir_events_counts(struct weir_ctx *ctx, uint64_t *sent, uint64_t *lost)
{
	return ring_counts(ctx->dp.map[WEIR_MAP_EVENT_STATS], sent, lost);
}

int weir_guard_events_counts(struct weir_ctx *ctx, uint64_t *sent, uint64_t *lost)
{
	_Static_assert(sizeof(struct weir_guard_event_stats) == sizeof(struct weir_event_stats),
		       "ring_counts reads both");
	return ring_counts(ctx->dp.map[WEIR_MAP_GUARD_EVSTATS], sent, lost);
}
