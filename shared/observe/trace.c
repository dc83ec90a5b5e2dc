// SPDX-License-Identifier: Apache-2.0
/*
 * Why a packet passes or not. The verdict comes from the kernel: the endpoint's flags in
 * weir_endpoints and the value the weir_policy trie returns for the peer (the same lookup,
 * longest-prefix match included, that the datapath does). The rules of the record's
 * annotations only explain it; when the two disagree the trace says so and keeps the kernel's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "ctx.h"
#include "trace.h"
#include "util.h"
#include "bpf/lib/verdict.h"

static const char *const dir_names[WEIR_DIRS] = {"egress", "ingress"};
static const char *const class_names[WEIR_PCLASSES] = {"tcp", "udp", "icmp", "other"};

/* ---- the query ---------------------------------------------------------------------- */

int weir_trace_parse(struct weir_trace_query *q, enum weir_dir dir, const char *peer,
		     const char *proto, struct weir_error *err)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const char *slash;
	size_t plen;

	memset(q, 0, sizeof(*q));
	q->dir = dir;
	q->pclass = -1;
	if (inet_pton(AF_INET, peer, q->addr) == 1) {
		q->family = WEIR_V4;
	} else if (inet_pton(AF_INET6, peer, q->addr) == 1) {
		q->family = WEIR_V6;
		/* the datapath judges an IPv4-mapped address as the IPv4 address it carries */
		if (!memcmp(q->addr, v4mapped, sizeof(v4mapped))) {
			memmove(q->addr, q->addr + 12, 4);
			memset(q->addr + 4, 0, 12);
			q->family = WEIR_V4;
		}
	} else {
		return weir_error_set(err, -EINVAL,
				      "peer \"%s\": expected one IPv4 or IPv6 address (no prefix "
				      "length)",
				      peer);
	}
	if (!proto)
		return 0;
	slash = strchr(proto, '/');
	plen = slash ? (size_t)(slash - proto) : strlen(proto);
	for (int c = WEIR_PC_TCP; c <= WEIR_PC_ICMP; c++)
		if (plen == strlen(class_names[c]) && !strncmp(proto, class_names[c], plen))
			q->pclass = c;
	if (q->pclass < 0 || (slash && q->pclass == WEIR_PC_ICMP))
		return weir_error_set(err, -EINVAL,
				      "protocol \"%s\": expected tcp, udp, icmp, tcp/PORT or "
				      "udp/PORT",
				      proto);
	if (slash) {
		char *end;
		unsigned long port;

		errno = 0;
		port = strtoul(slash + 1, &end, 10);
		if (slash[1] < '0' || slash[1] > '9' || *end || errno || port < 1 || port > 65535)
			return weir_error_set(err, -EINVAL,
					      "protocol \"%s\": bad port \"%s\": expected 1-65535",
					      proto, slash + 1);
		q->port = (uint16_t)port;
		q->have_port = true;
	}
	return 0;
}

/* ---- the record: the one place that knows its layout ---------------------------------- */

int weir_trace_ep_of(struct json_object *rec, struct weir_trace_ep *te)
{
	struct json_object *ann;

	memset(te, 0, sizeof(*te));
	te->id = weir_json_str(rec, "id") ?: "?";
	te->name = weir_json_str(rec, "name");
	te->running = !strcmp(weir_json_str(rec, "state") ?: "", "running");
	te->ep = (uint32_t)weir_json_u64(rec, "endpoint");
	te->gen = (uint32_t)weir_json_u64(rec, "gen");
	if (json_object_object_get_ex(rec, "annotations", &ann) &&
	    json_object_is_type(ann, json_type_object)) {
		json_object_object_foreach (ann, k, v) {
			if (te->nkv == WEIR_ARRAY_SIZE(te->kv))
				return -E2BIG;
			if (!json_object_is_type(v, json_type_string))
				return -EBADMSG;
			te->kv[te->nkv].key = k;
			te->kv[te->nkv].value = json_object_get_string(v);
			te->nkv++;
		}
	}
	return 0;
}

/* ---- rendering ---------------------------------------------------------------------- */

static struct json_object *peer_json(uint8_t family, const uint8_t *addr, int plen)
{
	char buf[INET6_ADDRSTRLEN + 8];
	size_t n;

	inet_ntop(family == WEIR_V4 ? AF_INET : AF_INET6, addr, buf, INET6_ADDRSTRLEN);
	n = strlen(buf);
	if (plen >= 0)
		snprintf(buf + n, sizeof(buf) - n, "/%d", plen);
	return json_object_new_string(buf);
}

static struct json_object *range_json(uint16_t lo, uint16_t hi)
{
	char buf[16];

	if (lo == hi)
		snprintf(buf, sizeof(buf), "%u", lo);
	else
		snprintf(buf, sizeof(buf), "%u-%u", lo, hi);
	return json_object_new_string(buf);
}

/* "all", or the allowed port ranges of a class (empty: none). */
static struct json_object *ports_json(const struct weir_policy_val *v, uint32_t pclass)
{
	struct json_object *a;
	unsigned int start = pclass == WEIR_PC_TCP ? 0 : v->ntcp;
	unsigned int n = pclass == WEIR_PC_TCP ? v->ntcp : v->nudp;

	if (v->all & (1U << pclass))
		return json_object_new_string("all");
	a = json_object_new_array();
	for (unsigned int i = start; i < start + n && i < WEIR_POLICY_MAX_RANGES; i++)
		json_object_array_add(a, range_json(v->ranges[i].lo, v->ranges[i].hi));
	return a;
}

static struct json_object *allows_json(const struct weir_policy_val *v)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "tcp", ports_json(v, WEIR_PC_TCP));
	json_object_object_add(o, "udp", ports_json(v, WEIR_PC_UDP));
	json_object_object_add(o, "icmp", json_object_new_boolean(v->all & (1U << WEIR_PC_ICMP)));
	json_object_object_add(o, "other", json_object_new_boolean(v->all & (1U << WEIR_PC_OTHER)));
	return o;
}

static struct json_object *rule_json(const struct weir_rule *r)
{
	struct json_object *o = json_object_new_object(), *protos;

	json_object_object_add(o, "rule", json_object_new_int((int)r->index));
	json_object_object_add(o, "action",
			       json_object_new_string(r->action == WEIR_ALLOW ? "allow" : "deny"));
	json_object_object_add(o, "peer", peer_json(r->family, r->addr, r->prefixlen));
	if (r->all_protocols) {
		protos = json_object_new_string("all");
	} else {
		protos = json_object_new_array();
		for (size_t i = 0; i < r->nports; i++) {
			const struct weir_port_item *it = &r->ports[i];
			char buf[32];

			if (it->pclass == WEIR_PC_ICMP || (it->lo == 0 && it->hi == 65535))
				snprintf(buf, sizeof(buf), "%s", class_names[it->pclass]);
			else if (it->lo == it->hi)
				snprintf(buf, sizeof(buf), "%s/%u", class_names[it->pclass],
					 it->lo);
			else
				snprintf(buf, sizeof(buf), "%s/%u-%u", class_names[it->pclass],
					 it->lo, it->hi);
			json_object_array_add(protos, json_object_new_string(buf));
		}
	}
	json_object_object_add(o, "protocols", protos);
	return o;
}

struct json_object *weir_policy_json(const struct weir_spec *spec, const struct weir_compiled *c)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "mode",
			       json_object_new_string(spec->audit ? "audit" : "enforce"));
	json_object_object_add(o, "monitor",
			       json_object_new_string(weir_monitor_names[spec->monitor]));
	for (int d = 0; d < WEIR_DIRS; d++) {
		const struct weir_dir_policy *dp = &spec->policy.dir[d];
		struct json_object *dj = json_object_new_object();
		struct json_object *rules = json_object_new_array();
		struct json_object *eff = json_object_new_array();

		json_object_object_add(dj, "default",
				       json_object_new_string(dp->present ? "deny" : "allow"));
		for (size_t i = 0; i < dp->nrules; i++)
			json_object_array_add(rules, rule_json(&dp->rules[i]));
		for (size_t i = 0; i < c->n; i++) {
			const struct weir_policy_entry *e = &c->entries[i];
			struct json_object *ej;

			if (e->key.dir != d)
				continue;
			ej = json_object_new_object();
			json_object_object_add(
				ej, "peer",
				peer_json(e->key.family, e->key.addr,
					  (int)(e->key.prefixlen - WEIR_POLICY_KEY_FIXED_BITS)));
			json_object_object_add(ej, "allows", allows_json(&e->val));
			json_object_array_add(eff, ej);
		}
		json_object_object_add(dj, "rules", rules);
		json_object_object_add(dj, "effective", eff);
		json_object_object_add(o, dir_names[d], dj);
	}
	return o;
}

/* Rule `index` (1-based) of an annotation value, as written, whitespace trimmed. */
static void rule_source(const char *value, unsigned int index, char *buf, size_t size)
{
	const char *s = value ?: "", *e;
	size_t n;

	for (unsigned int i = 1; i < index && s; i++) {
		s = strchr(s, ';');
		if (s)
			s++;
	}
	if (!s) {
		buf[0] = '\0';
		return;
	}
	e = strchr(s, ';') ?: s + strlen(s);
	while (s < e && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		e--;
	n = (size_t)(e - s) < size - 1 ? (size_t)(e - s) : size - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
}

/* ---- the kernel --------------------------------------------------------------------- */

/* What the datapath's lookup returns, with the key's prefix length limited to plen. */
static int kernel_policy(struct weir_ctx *ctx, uint32_t ep, const struct weir_trace_query *q,
			 const uint8_t *addr, unsigned int plen, struct weir_policy_val *v)
{
	struct weir_policy_key key = {};

	key.prefixlen = WEIR_POLICY_KEY_FIXED_BITS + plen;
	key.ep_id = ep;
	key.dir = (uint8_t)q->dir;
	key.family = q->family;
	memcpy(key.addr, addr, q->family == WEIR_V4 ? 4 : 16);
	if (bpf_map_lookup_elem(ctx->dp.map[WEIR_MAP_POLICY], &key, v))
		return -errno;
	return 0;
}

struct ct_count {
	unsigned int same_dir, other_dir; /* by the direction of the flow's first packet */
};

/*
 * Tracked flows of this endpoint with the peer (and the port, when one is given): a packet of
 * a tracked flow passes without a policy lookup, whichever side opened it.
 */
static int ct_scan(struct weir_ctx *ctx, const struct weir_trace_ep *te,
		   const struct weir_trace_query *q, uint32_t pclass, struct ct_count *out)
{
	_cleanup_close_ int fd = weir_ct_open(ctx->dp.map[WEIR_MAP_CT], ctx->paths.maps, te->ep);
	struct weir_ct_key key, next;
	struct weir_ct_val val;
	void *prev = NULL;

	memset(out, 0, sizeof(*out));
	if (fd == -ENOENT)
		return 0; /* no conntrack map: nothing tracked */
	if (fd < 0)
		return fd;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (key.ep_id != te->ep || key.kind != WEIR_CT_FLOW || key.family != q->family ||
		    weir_pclass_of(key.proto) != pclass ||
		    memcmp(key.raddr, q->addr, q->family == WEIR_V4 ? 4 : 16))
			continue;
		/* ICMP echo keeps its identifier in the port fields: no port to compare */
		if (q->have_port && pclass != WEIR_PC_ICMP &&
		    (q->dir == WEIR_EGRESS ? key.rport : key.lport) != q->port)
			continue;
		if (bpf_map_lookup_elem(fd, &key, &val) || val.gen != te->gen)
			continue;
		if (val.origin == q->dir)
			out->same_dir++;
		else
			out->other_dir++;
	}
	return errno == ENOENT ? 0 : -errno;
}

/* ---- explaining --------------------------------------------------------------------- */

struct trace_run {
	struct weir_ctx *ctx;
	const struct weir_trace_query *q;
	const struct weir_trace_ep *te;
	const struct weir_spec *spec;
	struct weir_endpoint kep;
	bool policy;	 /* this direction is default-deny (the kernel's flag) */
	bool any_policy; /* either direction: conntrack is in use */
	bool found;	 /* the trie has an entry for the peer */
	struct weir_policy_val kval;
};

static bool is_loopback(const struct weir_trace_query *q)
{
	static const uint8_t v6lo[16] = {[15] = 1};

	return q->family == WEIR_V4 ? q->addr[0] == 127 : !memcmp(q->addr, v6lo, 16);
}

/* Does rule r speak about this class for the peer (any port when the query has none)? */
static bool rule_applies(const struct weir_rule *r, const struct weir_trace_query *q,
			 uint32_t pclass, bool have_port)
{
	if (have_port || pclass == WEIR_PC_ICMP)
		return weir_rule_matches(r, q->family, q->addr, pclass, q->port, true);
	if (r->family != q->family || !weir_prefix_contains(r->prefixlen, r->addr, q->addr))
		return false;
	if (r->all_protocols)
		return true;
	for (size_t i = 0; i < r->nports; i++)
		if (r->ports[i].pclass == pclass)
			return true;
	return false;
}

static const char *effect_of(const struct trace_run *t, uint32_t pclass, const char *verdict)
{
	if (!strcmp(verdict, "allowed"))
		return "passes";
	if (t->kep.flags & WEIR_EP_AUDIT)
		return "passes: audit mode counts it as audit_denied (audit_denied_connects at "
		       "connect() and sendmsg())";
	if (!strcmp(verdict, "some ports"))
		return t->q->dir == WEIR_INGRESS ? "to the other ports: dropped"
		       : pclass == WEIR_PC_TCP	 ? "to the other ports: connect() fails with EPERM"
						 : "to the other ports: send() fails with EPERM";
	if (t->q->dir == WEIR_INGRESS)
		return "dropped, counted in ingress policy_dropped";
	if (pclass == WEIR_PC_TCP)
		return "connect() fails with EPERM at once";
	if (pclass == WEIR_PC_UDP)
		return "sendto() and send() fail with EPERM, except replies to a flow the peer "
		       "opened; nothing is sent";
	/* an ICMPv6 socket does not report what happens to the packet once it is built */
	return t->q->family == WEIR_V4
		       ? "dropped, counted in egress policy_dropped; the send fails with EPERM"
		       : "dropped silently, counted in egress policy_dropped";
}

static void add_rules(struct json_object *arr, const struct trace_run *t, const struct weir_rule *r,
		      const char *key, char *text, size_t size)
{
	struct json_object *o = json_object_new_object();
	const char *value = NULL;

	for (size_t i = 0; i < t->te->nkv; i++)
		if (!strcmp(t->te->kv[i].key, key))
			value = t->te->kv[i].value;
	rule_source(value, r->index, text, size);
	json_object_object_add(o, "rule", json_object_new_int((int)r->index));
	json_object_object_add(o, "text", json_object_new_string(text));
	json_object_array_add(arr, o);
}

/* `rule 3 ("deny 10.9.0.0/16")`, the rules of arr joined with ", " */
static void rules_text(struct json_object *arr, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < json_object_array_length(arr) && n < size; i++) {
		struct json_object *o = json_object_array_get_idx(arr, i);

		n += (size_t)snprintf(buf + n, size - n, "%srule %" PRIu64 " (\"%s\")",
				      i ? ", " : "", weir_json_u64(o, "rule"),
				      weir_json_str(o, "text") ?: "");
	}
}

static const char *conntrack_text(const struct trace_run *t, bool passes, bool partly, bool audited,
				  char *buf, size_t size)
{
	const char *other = dir_names[!t->q->dir];
	bool other_policy = t->kep.flags & (t->q->dir == WEIR_EGRESS ? WEIR_EP_POLICY_INGRESS
								     : WEIR_EP_POLICY_EGRESS);

	if (!t->any_policy)
		snprintf(buf, size,
			 "no policy in either direction: nothing is tracked, "
			 "everything passes");
	else if (audited)
		snprintf(buf, size,
			 "audit mode passes it without opening a flow: its replies are judged by "
			 "the %s policy (and audited)",
			 other);
	else if (partly)
		snprintf(buf, size,
			 "on the ports that pass, the first packet opens a tracked flow whose "
			 "replies pass %s",
			 other);
	else if (passes && other_policy)
		snprintf(buf, size,
			 "the first packet opens a tracked flow: replies pass %s although %s is "
			 "default-deny",
			 other, other);
	else if (passes)
		snprintf(buf, size, "the first packet opens a tracked flow; replies pass %s",
			 other);
	else
		snprintf(buf, size, "nothing is tracked: no reply can come back");
	return buf;
}

static struct json_object *trace_class(struct trace_run *t, uint32_t pclass)
{
	const struct weir_trace_query *q = t->q;
	const struct weir_dir_policy *dp = &t->spec->policy.dir[q->dir];
	const char *key = q->dir == WEIR_EGRESS ? WEIR_KEY_EGRESS : WEIR_KEY_INGRESS;
	bool have_port = q->have_port && pclass != WEIR_PC_ICMP;
	struct json_object *o = json_object_new_object(), *ct = json_object_new_object();
	struct json_object *allow = json_object_new_array(), *deny = json_object_new_array();
	char text[512], reason[2048], a[700], d[700], ctbuf[200];
	const char *verdict;
	struct ct_count cnt = {};
	struct weir_policy_val none = {};
	const struct weir_policy_val *v = t->found ? &t->kval : &none;
	int r;

	json_object_object_add(o, "protocol", json_object_new_string(class_names[pclass]));
	json_object_object_add(o, "port", have_port ? json_object_new_int(q->port) : NULL);

	for (size_t i = 0; i < dp->nrules; i++) {
		const struct weir_rule *rule = &dp->rules[i];

		if (rule_applies(rule, q, pclass, have_port))
			add_rules(rule->action == WEIR_ALLOW ? allow : deny, t, rule, key, text,
				  sizeof(text));
	}
	rules_text(allow, a, sizeof(a));
	rules_text(deny, d, sizeof(d));

	if (is_loopback(q)) {
		verdict = "allowed";
		snprintf(reason, sizeof(reason),
			 "loopback traffic never leaves the container: always allowed");
	} else if (!t->policy) {
		verdict = "allowed";
		snprintf(reason, sizeof(reason), "%s has no rules: it is open", dir_names[q->dir]);
	} else if (have_port || pclass == WEIR_PC_ICMP) {
		bool ok = weir_val_allows(v, pclass, q->port, 1);

		verdict = ok ? "allowed" : "denied";
		if (ok)
			snprintf(reason, sizeof(reason), "allowed by %s", a[0] ? a : "the kernel");
		else if (d[0] && a[0])
			snprintf(reason, sizeof(reason),
				 "denied by %s: deny overrides the allow of %s", d, a);
		else if (d[0])
			snprintf(reason, sizeof(reason), "denied by %s", d);
		else
			snprintf(reason, sizeof(reason),
				 "no rule allows it: %s has rules, so it is default-deny",
				 dir_names[q->dir]);
	} else {
		/* a class without a port: which ports of it pass */
		struct json_object *ports = ports_json(v, pclass);
		bool all = json_object_is_type(ports, json_type_string);
		size_t n = all ? 0 : json_object_array_length(ports);

		verdict = all ? "allowed" : n ? "some ports" : "denied";
		if (all)
			snprintf(reason, sizeof(reason), "every %s port is allowed, by %s",
				 class_names[pclass], a[0] ? a : "the kernel");
		else if (n)
			snprintf(reason, sizeof(reason),
				 "only the ports listed pass: allowed by %s%s%s",
				 a[0] ? a : "the kernel", d[0] ? "; denied by " : "", d);
		else if (d[0])
			snprintf(reason, sizeof(reason), "denied by %s%s%s", d,
				 a[0] ? ": deny overrides the allow of " : "", a);
		else
			snprintf(reason, sizeof(reason),
				 "no rule allows %s to this peer: %s has rules, so it is "
				 "default-deny",
				 class_names[pclass], dir_names[q->dir]);
		json_object_object_add(o, "ports", ports);
	}
	json_object_object_add(o, "verdict", json_object_new_string(verdict));
	json_object_object_add(o, "effect", json_object_new_string(effect_of(t, pclass, verdict)));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_object_add(o, "allowed_by", allow);
	json_object_object_add(o, "denied_by", deny);
	json_object_object_add(
		o, "deny_overrides_allow",
		json_object_new_boolean(t->policy && strcmp(verdict, "allowed") && a[0] && d[0]));

	/* denied in audit mode still passes, but opens no flow */
	bool passes = strcmp(verdict, "denied");
	bool audited = !passes && t->any_policy && (t->kep.flags & WEIR_EP_AUDIT);

	json_object_object_add(ct, "tracked", json_object_new_boolean(t->any_policy && passes));
	json_object_object_add(
		ct, "text",
		json_object_new_string(conntrack_text(t, passes, !strcmp(verdict, "some ports"),
						      audited, ctbuf, sizeof(ctbuf))));
	r = t->any_policy ? ct_scan(t->ctx, t->te, q, pclass, &cnt) : 0;
	if (r) {
		json_object_object_add(ct, "live_flows", NULL);
	} else {
		json_object_object_add(ct, "live_flows",
				       json_object_new_int((int)(cnt.same_dir + cnt.other_dir)));
		json_object_object_add(ct, "live_flows_opened_by_peer",
				       json_object_new_int((int)cnt.other_dir));
	}
	json_object_object_add(o, "conntrack", ct);
	return o;
}

/*
 * The compiled entries of the record's policy that hold the peer, longest first: the first is
 * what the kernel should return, the others what a shorter key would find.
 */
static size_t chain_of(const struct weir_compiled *c, const struct weir_trace_query *q,
		       const struct weir_policy_entry **chain, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n && n < max; i++) {
		const struct weir_policy_entry *e = &c->entries[i];

		if (e->key.dir != q->dir || e->key.family != q->family ||
		    !weir_prefix_contains((uint8_t)(e->key.prefixlen - WEIR_POLICY_KEY_FIXED_BITS),
					  e->key.addr, q->addr))
			continue;
		chain[n++] = e;
	}
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && chain[j]->key.prefixlen > chain[j - 1]->key.prefixlen;
		     j--) {
			const struct weir_policy_entry *tmp = chain[j];

			chain[j] = chain[j - 1];
			chain[j - 1] = tmp;
		}
	return n;
}

/* The kernel's entry: which prefix it is, and whether the record's policy explains it. */
static struct json_object *kernel_entry(struct trace_run *t, const struct weir_compiled *c,
					bool *agrees)
{
	const struct weir_policy_entry *chain[130];
	const struct weir_policy_entry *match = NULL;
	size_t n = chain_of(c, t->q, chain, WEIR_ARRAY_SIZE(chain));
	struct json_object *o;

	*agrees = t->found ? n && !memcmp(&chain[0]->val, &t->kval, sizeof(t->kval)) : !n;
	if (!t->found)
		return NULL;
	/* the longest prefix of the chain whose own lookup gives the kernel's value */
	for (size_t i = 0; i < n && !match; i++) {
		struct weir_policy_val v;
		unsigned int plen = chain[i]->key.prefixlen - WEIR_POLICY_KEY_FIXED_BITS;

		if (!memcmp(&chain[i]->val, &t->kval, sizeof(v)) &&
		    !kernel_policy(t->ctx, t->te->ep, t->q, chain[i]->key.addr, plen, &v) &&
		    !memcmp(&v, &t->kval, sizeof(v)))
			match = chain[i];
	}
	o = json_object_new_object();
	json_object_object_add(
		o, "prefix",
		match ? peer_json(t->q->family, match->key.addr,
				  (int)(match->key.prefixlen - WEIR_POLICY_KEY_FIXED_BITS))
		      : NULL);
	json_object_object_add(o, "allows", allows_json(&t->kval));
	return o;
}

int weir_policy_trace(struct weir_ctx *ctx, struct json_object *rec,
		      const struct weir_trace_query *q, struct json_object **out,
		      struct weir_error *err)
{
	static const struct weir_policy_val none;
	struct trace_run t = {.ctx = ctx, .q = q};
	struct weir_compiled comp = {};
	struct weir_spec spec = {};
	struct weir_trace_ep te;
	struct json_object *o, *results, *entry;
	struct weir_config unlimited;
	bool agrees;
	int r;

	if (weir_trace_ep_of(rec, &te))
		return weir_error_set(err, -EBADMSG, "the record of %s is damaged", te.id);
	if (!te.running)
		return weir_error_set(
			err, -ESRCH, "%s is not running: the kernel holds no policy for it", te.id);
	if (!te.ep || te.ep >= WEIR_MAX_ENDPOINTS)
		return weir_error_set(err, -EBADMSG, "the record of %s has no endpoint id", te.id);
	t.te = &te;
	r = weir_ctx_datapath(ctx, false, err);
	if (r)
		return r;
	if (bpf_map_lookup_elem(ctx->dp.map[WEIR_MAP_ENDPOINTS], &te.ep, &t.kep))
		return weir_error_set(err, -errno, "cannot read endpoint %u: %s", te.ep,
				      strerror(errno));
	if (!(t.kep.flags & WEIR_EP_ACTIVE) || t.kep.gen != te.gen)
		return weir_error_set(err, -ESTALE,
				      "endpoint %u in the kernel is not %s's (its record is stale: "
				      "weir gc removes it)",
				      te.ep, te.id);
	t.policy = t.kep.flags &
		   (q->dir == WEIR_EGRESS ? WEIR_EP_POLICY_EGRESS : WEIR_EP_POLICY_INGRESS);
	t.any_policy = t.kep.flags & (WEIR_EP_POLICY_EGRESS | WEIR_EP_POLICY_INGRESS);
	r = kernel_policy(ctx, te.ep, q, q->addr, q->family == WEIR_V4 ? 32 : 128, &t.kval);
	if (r && r != -ENOENT)
		return weir_error_set(err, r, "cannot look the peer up in weir_policy: %s",
				      strerror(-r));
	t.found = !r;

	/* the record explains the verdict: its annotations, parsed as when it was attached */
	unlimited = ctx->cfg;
	unlimited.limits.max_value_bytes = 16 << 20;
	unlimited.limits.max_rules = 1 << 20;
	r = weir_spec_parse(&unlimited, te.kv, te.nkv, &spec, err);
	if (!r)
		r = weir_policy_compile(&spec.policy, &comp, err);
	if (r) {
		weir_spec_free(&spec);
		return weir_error_prefix(err, "the record of %s: ", te.id);
	}
	t.spec = &spec;

	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(te.id));
	json_object_object_add(o, "name", te.name ? json_object_new_string(te.name) : NULL);
	json_object_object_add(o, "endpoint", json_object_new_int64(te.ep));
	json_object_object_add(o, "direction", json_object_new_string(dir_names[q->dir]));
	json_object_object_add(o, "peer", peer_json(q->family, q->addr, -1));
	json_object_object_add(
		o, "mode",
		json_object_new_string(t.kep.flags & WEIR_EP_AUDIT ? "audit" : "enforce"));
	json_object_object_add(o, "default", json_object_new_string(t.policy ? "deny" : "allow"));
	entry = t.policy ? kernel_entry(&t, &comp, &agrees) : NULL;
	if (!t.policy)
		agrees = !spec.policy.dir[q->dir].present;
	json_object_object_add(o, "kernel_entry", entry);
	if (t.policy && !entry)
		json_object_object_add(o, "kernel_allows", allows_json(&none));
	json_object_object_add(o, "record_agrees", json_object_new_boolean(agrees));

	results = json_object_new_array();
	for (int c = WEIR_PC_TCP; c <= WEIR_PC_ICMP; c++)
		if (q->pclass < 0 || q->pclass == c)
			json_object_array_add(results, trace_class(&t, (uint32_t)c));
	json_object_object_add(o, "results", results);
	if (q->family == WEIR_V6 && (q->pclass < 0 || q->pclass == WEIR_PC_ICMP))
		json_object_object_add(
			o, "note",
			json_object_new_string("ICMPv6 neighbour discovery and multicast listener "
					       "messages (types 130-143) always pass"));
	weir_compiled_free(&comp);
	weir_spec_free(&spec);
	*out = o;
	return 0;
}
