// SPDX-License-Identifier: Apache-2.0
/* Security guards: grammar, baseline merge, and the plan the kernel programs carry out. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "guard.h"
#include "policy.h"
#include "util.h"
#include "bpf/lib/verdict.h"

const char *const weir_guard_names[WEIR_GUARDS] = {
	[WEIR_GUARD_RAW] = "raw-sockets", [WEIR_GUARD_BIND] = "bind",
	[WEIR_GUARD_SYSCTL] = "sysctl",	  [WEIR_GUARD_ESCAPE] = "escape",
	[WEIR_GUARD_PATHS] = "paths",	  [WEIR_GUARD_SCAN] = "port-scan",
};

const char *const weir_gaction_names[WEIR_GACTIONS] = {
	[WEIR_GA_AUDIT] = "audit",
	[WEIR_GA_DENIED] = "denied",
	[WEIR_GA_KILLED] = "killed",
	[WEIR_GA_QUARANTINED] = "quarantined",
};

const char *const weir_gmode_names[WEIR_GM_ENFORCE + 1] = {
	[WEIR_GM_OFF] = "off",
	[WEIR_GM_AUDIT] = "audit",
	[WEIR_GM_KILL] = "kill",
	[WEIR_GM_ENFORCE] = "enforce",
};

static const char *const call_names[WEIR_CALLS] = {
	[WEIR_CALL_MOUNT] = "mount",
	[WEIR_CALL_PIVOT_ROOT] = "pivot_root",
	[WEIR_CALL_NAMESPACES] = "namespaces",
	[WEIR_CALL_MODULES] = "modules",
	[WEIR_CALL_KEXEC] = "kexec",
	[WEIR_CALL_BPF] = "bpf",
	[WEIR_CALL_PERF] = "perf_event_open",
	[WEIR_CALL_PTRACE] = "ptrace",
	[WEIR_CALL_OPEN_BY_HANDLE] = "open_by_handle_at",
	[WEIR_CALL_KEYRING] = "keyring",
	[WEIR_CALL_USERFAULTFD] = "userfaultfd",
	[WEIR_CALL_REBOOT] = "reboot",
	[WEIR_CALL_SWAP] = "swap",
	[WEIR_CALL_IOPL] = "iopl",
};

#define ALL_CALLS (((1U << WEIR_CALLS) - 1) & ~1U)

const char *weir_call_name(unsigned int call)
{
	if (call == WEIR_CALL_SOCKET)
		return "socket";
	return call < WEIR_CALLS && call_names[call] ? call_names[call] : "?";
}

/* Address families by the names of AF_* (linux/socket.h); inet and inet6 are the policy's. */
static const char *const family_names[64] = {
	[1] = "unix",	    [3] = "ax25",	 [4] = "ipx",	   [5] = "appletalk",
	[6] = "netrom",	    [7] = "bridge",	 [8] = "atmpvc",   [9] = "x25",
	[11] = "rose",	    [12] = "decnet",	 [13] = "netbeui", [14] = "security",
	[15] = "key",	    [16] = "netlink",	 [17] = "packet",  [18] = "ash",
	[19] = "econet",    [20] = "atmsvc",	 [21] = "rds",	   [22] = "sna",
	[23] = "irda",	    [24] = "pppox",	 [25] = "wanpipe", [26] = "llc",
	[27] = "ib",	    [28] = "mpls",	 [29] = "can",	   [30] = "tipc",
	[31] = "bluetooth", [32] = "iucv",	 [33] = "rxrpc",   [34] = "isdn",
	[35] = "phonet",    [36] = "ieee802154", [37] = "caif",	   [38] = "alg",
	[39] = "nfc",	    [40] = "vsock",	 [41] = "kcm",	   [42] = "qipcrtr",
	[43] = "smc",	    [44] = "xdp",	 [45] = "mctp",
};

const char *weir_family_name(unsigned int family)
{
	if (family == WEIR_RAW_FAMILY_RAW)
		return "raw";
	return family < 64 ? family_names[family] : NULL;
}

/* ---- parsing ------------------------------------------------------------------------ */

struct gctx {
	const char *key;
	unsigned int index;
	const char *quote;
};

/* One line: "<key>: guard <n> ("<text>"): <what>". */
static int gerr(struct weir_error *err, const struct gctx *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "<key>: <what>": an annotation's key is data (an integration may rename it), a config
 * file's "<file>: \"security\"" is not. */
static int keyed(struct weir_error *err, int code, const char *key, const char *what)
{
	if (!strcmp(key, WEIR_KEY_SECURITY))
		return weir_error_key(err, code, key, "%s", what);
	return weir_error_set(err, code, "%s: %s", key, what);
}

static int gerr(struct weir_error *err, const struct gctx *c, const char *fmt, ...)
{
	char what[WEIR_ERROR_MAX], line[WEIR_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "guard %u (%s): %s", c->index, WEIR_Q(c->quote), what);
	return keyed(err, -EINVAL, c->key, line);
}

static int parse_uint(const char *s, unsigned long lo, unsigned long hi, uint32_t *out)
{
	unsigned long v;
	int r = weir_parse_uint(s, lo, hi, &v);

	if (!r)
		*out = (uint32_t)v;
	return r;
}

/* Split a comma list in place; empty items are errors. */
static int split_list(char *list, char **items, size_t max, size_t *n)
{
	char *it;

	*n = 0;
	while ((it = strsep(&list, ","))) {
		if (!*it)
			return -EINVAL;
		if (*n == max)
			return -E2BIG;
		items[(*n)++] = it;
	}
	return 0;
}

static int parse_families(const struct gctx *c, char *list, uint64_t *out, struct weir_error *err)
{
	char *items[64];
	size_t n;

	if (split_list(list, items, 64, &n))
		return gerr(err, c,
			    "bad family list %s: expected names such as packet,netlink "
			    "separated by ','",
			    WEIR_Q(list));
	*out = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t af = 64;

		for (unsigned int f = 0; f < 64; f++)
			if (weir_family_name(f) && !strcmp(items[i], weir_family_name(f)))
				af = f;
		if (af == 64 && parse_uint(items[i], 1, 63, &af))
			af = 64;
		if (af == 64 || af == 2 || af == 10)
			return gerr(err, c,
				    "unknown family %s: expected raw (raw IPv4/IPv6 sockets), "
				    "packet, netlink, xdp, vsock, alg or another AF_ name in lower "
				    "case, or a number 1-63 other than inet (2) and inet6 (10)",
				    WEIR_Q(items[i]));
		*out |= 1ULL << af;
	}
	return 0;
}

struct range {
	uint16_t lo, hi;
};

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sort and merge touching ranges in place; returns the new count. */
static size_t merge_ranges(struct range *r, size_t n)
{
	size_t out = 0;

	if (!n)
		return 0; /* r may be NULL then, which qsort must not get */
	qsort(r, n, sizeof(*r), cmp_range);
	for (size_t i = 0; i < n; i++) {
		if (out && (uint32_t)r[i].lo <= (uint32_t)r[out - 1].hi + 1) {
			if (r[i].hi > r[out - 1].hi)
				r[out - 1].hi = r[i].hi;
			continue;
		}
		r[out++] = r[i];
	}
	return out;
}

static const char bind_expected[] =
	"expected tcp, udp, tcp/PORT, udp/PORT, tcp/PORT-PORT or udp/PORT-PORT with ports "
	"1-65535, separated by ','";

static int parse_ports(const struct gctx *c, char *list, struct weir_policy_val *v,
		       struct weir_error *err)
{
	struct range r[2][WEIR_POLICY_MAX_RANGES * 2];
	size_t nr[2] = {0, 0}, n;
	char *items[WEIR_POLICY_MAX_RANGES * 2];

	memset(v, 0, sizeof(*v));
	if (split_list(list, items, WEIR_ARRAY_SIZE(items), &n))
		return gerr(err, c, "bad port list %s: %s (at most %d items)", WEIR_Q(list),
			    bind_expected, WEIR_POLICY_MAX_RANGES * 2);
	for (size_t i = 0; i < n; i++) {
		char *slash = strchr(items[i], '/'), *dash;
		uint32_t lo, hi;
		int cls;

		if (slash)
			*slash = '\0';
		cls = !strcmp(items[i], "tcp") ? 0 : !strcmp(items[i], "udp") ? 1 : -1;
		if (slash)
			*slash = '/';
		if (cls < 0)
			return gerr(err, c, "bad port item %s: %s", WEIR_Q(items[i]),
				    bind_expected);
		if (!slash) {
			v->all |= 1U << (cls ? WEIR_PC_UDP : WEIR_PC_TCP);
			continue;
		}
		dash = strchr(slash + 1, '-');
		if (dash)
			*dash = '\0';
		if (parse_uint(slash + 1, 1, 65535, &lo) ||
		    (dash && parse_uint(dash + 1, 1, 65535, &hi))) {
			if (dash)
				*dash = '-';
			return gerr(err, c, "bad port item %s: %s", WEIR_Q(items[i]),
				    bind_expected);
		}
		if (dash)
			*dash = '-';
		else
			hi = lo;
		if (lo > hi)
			return gerr(err, c,
				    "empty port range %s: expected the first port not above "
				    "the second",
				    WEIR_Q(items[i]));
		r[cls][nr[cls]].lo = (uint16_t)lo;
		r[cls][nr[cls]++].hi = (uint16_t)hi;
	}
	for (int cls = 0; cls < 2; cls++)
		nr[cls] = merge_ranges(r[cls], nr[cls]);
	if (nr[0] + nr[1] > WEIR_POLICY_MAX_RANGES)
		return gerr(err, c, "%zu separate port ranges: at most %d fit", nr[0] + nr[1],
			    WEIR_POLICY_MAX_RANGES);
	v->ntcp = (uint8_t)nr[0];
	v->nudp = (uint8_t)nr[1];
	for (size_t i = 0; i < nr[0]; i++) {
		v->ranges[i].lo = r[0][i].lo;
		v->ranges[i].hi = r[0][i].hi;
	}
	for (size_t i = 0; i < nr[1]; i++) {
		v->ranges[nr[0] + i].lo = r[1][i].lo;
		v->ranges[nr[0] + i].hi = r[1][i].hi;
	}
	return 0;
}

/*
 * "net.ipv4.ip_forward" or "net/ipv4/ip_forward"; a name that holds a '/' is taken as written
 * (interface names may hold dots). A trailing ".*" or "/" then "*" allows everything below.
 */
static int parse_sysctl_name(const struct gctx *c, const char *item, struct weir_sysctl_pattern *p,
			     struct weir_error *err)
{
	size_t len = strlen(item);
	bool slashes = strchr(item, '/') != NULL;
	size_t i;

	memset(p, 0, sizeof(*p));
	if (len >= 2 && item[len - 1] == '*' && (item[len - 2] == '.' || item[len - 2] == '/')) {
		p->prefix = true;
		len--; /* keep the separator: "net/ipv4/" matches below net/ipv4 only */
	}
	if (!len || len >= sizeof(p->name) - 1)
		goto bad;
	for (i = 0; i < len; i++) {
		char ch = item[i];

		if (!isalnum((unsigned char)ch) && ch != '_' && ch != '-' && ch != '.' && ch != '/')
			goto bad;
		p->name[i] = (ch == '.' && !slashes) ? '/' : ch;
	}
	if (p->name[0] == '/' || (!p->prefix && p->name[len - 1] == '/') || strstr(p->name, "//"))
		goto bad;
	return 0;
bad:
	return gerr(err, c,
		    "bad sysctl name %s: expected a name such as net.ipv4.ip_forward (or "
		    "net/ipv4/ip_forward), or a prefix such as net.ipv4.conf.*, shorter than %d "
		    "characters",
		    WEIR_Q(item), WEIR_SYSCTL_NAME - 2);
}

static int parse_sysctls(const struct gctx *c, char *list, struct weir_guards *g,
			 struct weir_error *err)
{
	char *items[256];
	size_t n;
	int r;

	if (split_list(list, items, WEIR_ARRAY_SIZE(items), &n))
		return gerr(err, c,
			    "bad sysctl list \"%s\": expected names separated by ',' (at most %zu)",
			    list, WEIR_ARRAY_SIZE(items));
	free(g->sysctl);
	g->sysctl = calloc(n, sizeof(*g->sysctl));
	g->nsysctl = 0;
	if (!g->sysctl)
		return weir_error_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		r = parse_sysctl_name(c, items[i], &g->sysctl[i], err);
		if (r)
			return r;
		g->nsysctl++;
	}
	return 0;
}

static int parse_calls(const struct gctx *c, char *list, uint32_t *out, struct weir_error *err)
{
	char *items[WEIR_CALLS + 1];
	size_t n;

	*out = 0;
	if (split_list(list, items, WEIR_ARRAY_SIZE(items), &n))
		goto bad;
	for (size_t i = 0; i < n; i++) {
		unsigned int k;

		if (!strcmp(items[i], "all")) {
			*out |= ALL_CALLS;
			continue;
		}
		for (k = 1; k < WEIR_CALLS && strcmp(items[i], call_names[k]); k++)
			;
		if (k == WEIR_CALLS) {
			list = items[i];
			goto bad;
		}
		*out |= 1U << k;
	}
	return 0;
bad:
	return gerr(err, c,
		    "unknown call group %s: expected all, mount, pivot_root, namespaces, "
		    "modules, kexec, bpf, perf_event_open, ptrace, open_by_handle_at, keyring, "
		    "userfaultfd, reboot, swap or iopl, separated by ','",
		    WEIR_Q(list));
}

static int parse_paths(const struct gctx *c, char *list, struct weir_guards *g,
		       struct weir_error *err)
{
	char *items[64];
	size_t n;

	if (split_list(list, items, WEIR_ARRAY_SIZE(items), &n))
		return gerr(err, c,
			    "bad path list %s: expected absolute paths separated by ',' (at "
			    "most %zu)",
			    WEIR_Q(list), WEIR_ARRAY_SIZE(items));
	for (size_t i = 0; i < n; i++) {
		char **p;

		if (items[i][0] != '/' || strlen(items[i]) >= PATH_MAX)
			return gerr(err, c, "bad path %s: expected an absolute path",
				    WEIR_Q(items[i]));
		p = realloc(g->paths, (g->npaths + 1) * sizeof(*p));
		if (!p)
			return weir_error_set(err, -ENOMEM, "out of memory");
		g->paths = p;
		g->paths[g->npaths] = strdup(items[i]);
		if (!g->paths[g->npaths])
			return weir_error_set(err, -ENOMEM, "out of memory");
		g->npaths++;
	}
	return 0;
}

/* The option words each guard takes; NULL-terminated, "reads" alone takes no value. */
static const char *const guard_options[WEIR_GUARDS][4] = {
	[WEIR_GUARD_RAW] = {"families"},
	[WEIR_GUARD_BIND] = {"allow"},
	[WEIR_GUARD_SYSCTL] = {"allow", "reads"},
	[WEIR_GUARD_ESCAPE] = {"calls"},
	[WEIR_GUARD_PATHS] = {"protect"},
	[WEIR_GUARD_SCAN] = {"threshold", "window", "quarantine"},
};

static void expected_options(unsigned int guard, char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < 4 && guard_options[guard][i]; i++)
		off += (size_t)snprintf(buf + off, off < size ? size - off : 0, "%s\"%s\"",
					i ? ", " : "", guard_options[guard][i]);
}

static int parse_option(const struct gctx *c, unsigned int guard, const char *opt, char *val,
			struct weir_guards *g, struct weir_error *err)
{
	uint32_t u;

	switch (guard) {
	case WEIR_GUARD_RAW:
		return parse_families(c, val, &g->raw_families, err);
	case WEIR_GUARD_BIND:
		return parse_ports(c, val, &g->bind, err);
	case WEIR_GUARD_SYSCTL:
		return parse_sysctls(c, val, g, err);
	case WEIR_GUARD_ESCAPE:
		return parse_calls(c, val, &g->escape_calls, err);
	case WEIR_GUARD_PATHS:
		return parse_paths(c, val, g, err);
	default:
		break;
	}
	if (!strcmp(opt, "threshold")) {
		if (parse_uint(val, 1, 65535, &u))
			return gerr(err, c, "bad threshold %s: expected failed probes 1-65535",
				    WEIR_Q(val));
		g->scan_threshold = u;
	} else if (!strcmp(opt, "window")) {
		if (parse_uint(val, 1, 3600, &u))
			return gerr(err, c, "bad window %s: expected seconds 1-3600", WEIR_Q(val));
		g->scan_window_s = u;
	} else {
		if (parse_uint(val, 1, 86400, &u))
			return gerr(err, c, "bad quarantine %s: expected seconds 1-86400",
				    WEIR_Q(val));
		g->quarantine_s = u;
	}
	return 0;
}

static void set_defaults(unsigned int guard, struct weir_guards *g)
{
	switch (guard) {
	case WEIR_GUARD_RAW:
		g->raw_families = (1ULL << WEIR_RAW_FAMILY_RAW) | (1ULL << 17 /* packet */);
		break;
	case WEIR_GUARD_ESCAPE:
		g->escape_calls = ALL_CALLS;
		break;
	case WEIR_GUARD_SCAN:
		g->scan_threshold = WEIR_SCAN_THRESHOLD;
		g->scan_window_s = WEIR_SCAN_WINDOW_S;
		g->quarantine_s = WEIR_QUARANTINE_S;
		break;
	default:
		break;
	}
}

static int parse_guard(struct gctx *c, char *text, struct weir_guards *g, struct weir_error *err)
{
	char *tok[64], *save = NULL, *t;
	size_t n = 0, i = 1;
	unsigned int guard;
	bool seen[4] = {};

	for (t = strtok_r(text, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == WEIR_ARRAY_SIZE(tok))
			return gerr(err, c, "more than %zu words", WEIR_ARRAY_SIZE(tok));
		tok[n++] = t;
	}
	for (guard = 0; guard < WEIR_GUARDS && strcmp(tok[0], weir_guard_names[guard]); guard++)
		;
	if (guard == WEIR_GUARDS)
		return gerr(err, c,
			    "unknown guard %s: expected raw-sockets, bind, sysctl, escape, "
			    "paths or port-scan",
			    WEIR_Q(tok[0]));
	if (g->named[guard])
		return gerr(err, c, "guard %s is named twice", WEIR_Q(tok[0]));
	g->named[guard] = true;
	snprintf(g->quote[guard], sizeof(g->quote[guard]), "%s", c->quote);
	set_defaults(guard, g);
	g->mode[guard] = WEIR_GM_ENFORCE;
	if (n > 1) {
		for (unsigned int m = WEIR_GM_OFF; m <= WEIR_GM_ENFORCE; m++) {
			if (strcmp(tok[1], weir_gmode_names[m]))
				continue;
			if (m == WEIR_GM_KILL && guard != WEIR_GUARD_ESCAPE)
				return gerr(err, c,
					    "mode \"kill\" is for escape only: expected off, audit "
					    "or enforce");
			g->mode[guard] = (uint8_t)m;
			i = 2;
		}
	}
	while (i < n) {
		char expected[96];
		const char *opt = tok[i];
		size_t k;
		int r;

		for (k = 0;
		     k < 4 && guard_options[guard][k] && strcmp(opt, guard_options[guard][k]); k++)
			;
		expected_options(guard, expected, sizeof(expected));
		if (k == 4 || !guard_options[guard][k])
			return gerr(err, c, "unexpected %s: expected %s%s%s", WEIR_Q(opt),
				    i == 1 ? "a mode (off, audit, enforce" : "",
				    i == 1 ? (guard == WEIR_GUARD_ESCAPE ? ", kill) or " : ") or ")
					   : "",
				    expected);
		if (seen[k])
			return gerr(err, c, "option %s is given twice", WEIR_Q(opt));
		seen[k] = true;
		if (!strcmp(opt, "reads")) {
			g->sysctl_reads = true;
			i++;
			continue;
		}
		if (i + 1 >= n)
			return gerr(err, c, "option %s needs a value", WEIR_Q(opt));
		r = parse_option(c, guard, opt, tok[i + 1], g, err);
		if (r)
			return r;
		i += 2;
	}
	if (guard == WEIR_GUARD_ESCAPE && !g->escape_calls)
		return gerr(err, c, "no call group to guard");
	return 0;
}

int weir_guards_parse(const char *key, const char *value, struct weir_guards *out,
		      struct weir_error *err)
{
	_cleanup_free_ char *copy = NULL;
	char *cur, *semi;
	struct gctx c = {.key = key};
	int r;

	memset(out, 0, sizeof(*out));
	r = weir_check_text(key, value, strlen(value), 65536, err);
	if (r)
		return r;
	copy = strdup(value);
	if (!copy)
		return weir_error_set(err, -ENOMEM, "out of memory");
	for (cur = copy;; cur = semi + 1) {
		char quote[WEIR_GUARD_QUOTE_MAX + 4], *text;
		size_t len;

		semi = strchr(cur, ';');
		if (semi)
			*semi = '\0';
		text = cur;
		while (isspace((unsigned char)*text))
			text++;
		len = strlen(text);
		while (len && isspace((unsigned char)text[len - 1]))
			text[--len] = '\0';
		c.index++;
		if (!len) {
			if (!semi && c.index > 1)
				break; /* one trailing ';' */
			char what[96];

			if (c.index == 1 && !semi)
				snprintf(what, sizeof(what),
					 "empty value: expected guards such as \"raw-sockets "
					 "enforce; escape audit\"");
			else
				snprintf(what, sizeof(what),
					 "guard %u is empty: expected a guard name between ';'",
					 c.index);
			r = keyed(err, -EINVAL, key, what);
			goto fail;
		}
		if (len > WEIR_GUARD_QUOTE_MAX)
			snprintf(quote, sizeof(quote), "%.*s...", WEIR_GUARD_QUOTE_MAX - 3, text);
		else
			snprintf(quote, sizeof(quote), "%s", text);
		c.quote = quote;
		r = parse_guard(&c, text, out, err);
		if (r)
			goto fail;
		if (!semi)
			break;
	}
	return 0;
fail:
	weir_guards_free(out);
	return r;
}

void weir_guards_free(struct weir_guards *g)
{
	for (size_t i = 0; i < g->npaths; i++)
		free(g->paths[i]);
	free(g->paths);
	free(g->sysctl);
	memset(g, 0, sizeof(*g));
}

bool weir_guards_any(const struct weir_guards *g)
{
	for (int i = 0; i < WEIR_GUARDS; i++)
		if (g->mode[i] != WEIR_GM_OFF)
			return true;
	return false;
}

/* ---- the node baseline ------------------------------------------------------------ */

/* Is every port v allows also allowed by base? */
static const char *ports_within(const struct weir_policy_val *v, const struct weir_policy_val *base,
				char *buf, size_t size)
{
	static const char *const cls[2] = {"tcp", "udp"};

	for (int c = 0; c < 2; c++) {
		uint32_t pc = c ? WEIR_PC_UDP : WEIR_PC_TCP;
		size_t start = c ? v->ntcp : 0, n = c ? v->nudp : v->ntcp;

		if (base->all & (1U << pc))
			continue;
		if (v->all & (1U << pc)) {
			snprintf(buf, size, "every %s port", cls[c]);
			return buf;
		}
		for (size_t i = start; i < start + n; i++) {
			for (uint32_t p = v->ranges[i].lo; p <= v->ranges[i].hi; p++) {
				if (!weir_val_allows(base, pc, (uint16_t)p, 1)) {
					snprintf(buf, size, "port %s/%u", cls[c], p);
					return buf;
				}
			}
		}
	}
	return NULL;
}

static bool sysctl_covered(const struct weir_sysctl_pattern *p, const struct weir_guards *base)
{
	for (size_t i = 0; i < base->nsysctl; i++) {
		const struct weir_sysctl_pattern *b = &base->sysctl[i];

		if (b->prefix ? !strncmp(p->name, b->name, strlen(b->name))
			      : !p->prefix && !strcmp(p->name, b->name))
			return true;
	}
	return false;
}

/* Why g's guard i allows more than base's, or NULL. */
static const char *loosens(unsigned int i, const struct weir_guards *g,
			   const struct weir_guards *base, char *buf, size_t size)
{
	if (g->mode[i] < base->mode[i]) {
		snprintf(buf, size, "mode %s is weaker than %s", weir_gmode_names[g->mode[i]],
			 weir_gmode_names[base->mode[i]]);
		return buf;
	}
	switch (i) {
	case WEIR_GUARD_RAW:
		for (unsigned int f = 0; f < 64; f++) {
			if ((base->raw_families & (1ULL << f)) &&
			    !(g->raw_families & (1ULL << f))) {
				snprintf(buf, size, "family %s is left out",
					 weir_family_name(f) ? weir_family_name(f) : "?");
				return buf;
			}
		}
		return NULL;
	case WEIR_GUARD_BIND:
		if (ports_within(&g->bind, &base->bind, buf, size)) {
			size_t l = strlen(buf);

			snprintf(buf + l, size - l, " is allowed");
			return buf;
		}
		return NULL;
	case WEIR_GUARD_SYSCTL:
		if (base->sysctl_reads && !g->sysctl_reads) {
			snprintf(buf, size, "reads are left out");
			return buf;
		}
		for (size_t k = 0; k < g->nsysctl; k++) {
			if (!sysctl_covered(&g->sysctl[k], base)) {
				snprintf(buf, size, "sysctl %s%s is allowed", g->sysctl[k].name,
					 g->sysctl[k].prefix ? "*" : "");
				return buf;
			}
		}
		return NULL;
	case WEIR_GUARD_ESCAPE:
		for (unsigned int k = 1; k < WEIR_CALLS; k++) {
			if ((base->escape_calls & (1U << k)) && !(g->escape_calls & (1U << k))) {
				snprintf(buf, size, "call group %s is left out", call_names[k]);
				return buf;
			}
		}
		return NULL;
	case WEIR_GUARD_SCAN:
		if (g->scan_threshold > base->scan_threshold)
			snprintf(buf, size, "threshold %u is above %u", g->scan_threshold,
				 base->scan_threshold);
		else if (g->scan_window_s < base->scan_window_s)
			snprintf(buf, size, "window %u s is shorter than %u s", g->scan_window_s,
				 base->scan_window_s);
		else if (base->mode[i] == WEIR_GM_ENFORCE && g->quarantine_s < base->quarantine_s)
			snprintf(buf, size, "quarantine %u s is shorter than %u s", g->quarantine_s,
				 base->quarantine_s);
		else
			return NULL;
		return buf;
	default:
		return NULL;
	}
}

static int copy_guard(unsigned int i, struct weir_guards *g, const struct weir_guards *base)
{
	g->mode[i] = base->mode[i];
	snprintf(g->quote[i], sizeof(g->quote[i]), "%s", base->quote[i]);
	switch (i) {
	case WEIR_GUARD_RAW:
		g->raw_families = base->raw_families;
		break;
	case WEIR_GUARD_BIND:
		g->bind = base->bind;
		break;
	case WEIR_GUARD_SYSCTL:
		free(g->sysctl);
		g->sysctl = NULL;
		g->nsysctl = 0;
		g->sysctl_reads = base->sysctl_reads;
		if (!base->nsysctl)
			break;
		g->sysctl = malloc(base->nsysctl * sizeof(*g->sysctl));
		if (!g->sysctl)
			return -ENOMEM;
		memcpy(g->sysctl, base->sysctl, base->nsysctl * sizeof(*g->sysctl));
		g->nsysctl = base->nsysctl;
		break;
	case WEIR_GUARD_ESCAPE:
		g->escape_calls = base->escape_calls;
		break;
	case WEIR_GUARD_SCAN:
		g->scan_threshold = base->scan_threshold;
		g->scan_window_s = base->scan_window_s;
		g->quarantine_s = base->quarantine_s;
		break;
	default:
		break;
	}
	return 0;
}

int weir_guards_merge(struct weir_guards *g, const struct weir_guards *base, const char *base_where,
		      bool may_loosen, struct weir_error *err)
{
	char why[160];

	for (unsigned int i = 0; i < WEIR_GUARDS; i++) {
		if (!base->named[i] || base->mode[i] == WEIR_GM_OFF)
			continue;
		if (!g->named[i]) {
			if (copy_guard(i, g, base))
				return weir_error_set(err, -ENOMEM, "out of memory");
		} else if (!may_loosen && loosens(i, g, base, why, sizeof(why))) {
			return weir_error_key(err, -EPERM, WEIR_KEY_SECURITY,
					      "guard %s loosens the node baseline (%s in %s): %s",
					      WEIR_Q(g->quote[i]), WEIR_Q(base->quote[i]),
					      base_where, why);
		}
		if (i == WEIR_GUARD_PATHS && g->mode[i] != WEIR_GM_OFF) {
			for (size_t k = 0; k < base->npaths; k++) {
				char **p = realloc(g->paths, (g->npaths + 1) * sizeof(*p));

				if (!p || !(p[g->npaths] = strdup(base->paths[k]))) {
					if (p)
						g->paths = p;
					return weir_error_set(err, -ENOMEM, "out of memory");
				}
				g->paths = p;
				g->npaths++;
			}
		}
	}
	return 0;
}

/* ---- the plan ----------------------------------------------------------------------- */

static int unavailable(struct weir_error *err, const struct weir_guards *g, unsigned int i,
		       const char *what)
{
	return weir_error_key(err, -EOPNOTSUPP, WEIR_KEY_SECURITY, "guard %s: %s (weir status)",
			      WEIR_Q(g->quote[i]), what);
}

static void summary_add(struct weir_guard_plan *plan, const char *name, const char *mode,
			const char *note)
{
	size_t off = strlen(plan->summary);

	snprintf(plan->summary + off, sizeof(plan->summary) - off, "%s%s=%s%s%s%s", off ? " " : "",
		 name, mode, note ? "(" : "", note ? note : "", note ? ")" : "");
}

/* An enforce that needs BPF-LSM: refused without it, unless the node falls back to kill. */
static int lsm_or_fallback(const struct weir_guards *g, unsigned int i,
			   const struct weir_guard_caps *caps, const char *what,
			   struct weir_error *err)
{
	char msg[256];

	if (caps->fallback_kill && caps->tracing)
		return 0;
	snprintf(msg, sizeof(msg),
		 "%s needs BPF-LSM, which this node does not offer (%s); the node config's "
		 "lsm_fallback \"kill\" would turn it into detection with kill",
		 what, caps->why_no_lsm ? caps->why_no_lsm : "unavailable");
	return unavailable(err, g, i, msg);
}

int weir_guards_plan(const struct weir_guards *g, const struct weir_guard_caps *caps,
		     struct weir_guard_plan *plan, struct weir_error *err)
{
	struct weir_guard_cfg *cfg = &plan->cfg;
	bool lsm_used = false;
	int r;

	memset(plan, 0, sizeof(*plan));
	for (unsigned int i = 0; i < WEIR_GUARDS; i++) {
		const char *note = NULL;
		uint8_t mode = g->mode[i];

		cfg->mode[i] = mode;
		if (mode == WEIR_GM_OFF)
			continue;
		if (!caps->exec && !caps->cgroup)
			return unavailable(err, g, i, "the kernel refused weir's guard programs");
		switch (i) {
		case WEIR_GUARD_RAW: {
			uint64_t other = g->raw_families & ~(1ULL << WEIR_RAW_FAMILY_RAW);

			cfg->raw_inet = (g->raw_families >> WEIR_RAW_FAMILY_RAW) & 1;
			if (cfg->raw_inet && !caps->cgroup)
				return unavailable(err, g, i,
						   "raw IPv4/IPv6 sockets need cgroup/sock_create, "
						   "which the kernel refused");
			if (cfg->raw_inet)
				plan->cgroup_progs |= 1U << i;
			if (!other)
				break;
			if (mode == WEIR_GM_ENFORCE && caps->lsm && caps->lsm_socket) {
				cfg->raw_deny_families = other;
				lsm_used = true;
				break;
			}
			if (mode == WEIR_GM_ENFORCE) {
				r = lsm_or_fallback(g, i, caps,
						    "refusing socket families other than raw", err);
				if (r)
					return r;
				cfg->raw_trace_kill = 1;
				plan->fallback = true;
				note = "kill: no BPF-LSM";
			}
			if (!caps->tracing)
				return unavailable(err, g, i,
						   "socket families other than raw are seen at "
						   "syscall entry, and the kernel refused "
						   "raw_tp/sys_enter");
			cfg->raw_trace_families = other;
			plan->node_links |= WEIR_GL_SYS_ENTER;
			break;
		}
		case WEIR_GUARD_BIND:
		case WEIR_GUARD_SYSCTL:
			if (!caps->cgroup)
				return unavailable(
					err, g, i,
					i == WEIR_GUARD_BIND
						? "the kernel refused cgroup/bind4 and bind6"
						: "the kernel refused cgroup/sysctl");
			plan->cgroup_progs |= 1U << i;
			if (i == WEIR_GUARD_BIND)
				cfg->bind = g->bind;
			else
				cfg->sysctl_reads = g->sysctl_reads;
			break;
		case WEIR_GUARD_ESCAPE: {
			uint32_t calls = g->escape_calls;

			if (mode == WEIR_GM_AUDIT) {
				cfg->escape_audit = calls;
			} else if (mode == WEIR_GM_KILL) {
				cfg->escape_kill = calls;
			} else if (caps->lsm) {
				cfg->escape_deny = calls & caps->lsm_calls;
				cfg->escape_kill = calls & ~caps->lsm_calls;
				lsm_used = cfg->escape_deny != 0;
				if (cfg->escape_kill)
					note = "kill where no BPF-LSM hook covers a call";
			} else {
				r = lsm_or_fallback(g, i, caps, "escape enforce", err);
				if (r)
					return r;
				cfg->escape_kill = calls;
				plan->fallback = true;
				note = "kill: no BPF-LSM";
			}
			if ((cfg->escape_audit | cfg->escape_kill) && !caps->tracing)
				return unavailable(
					err, g, i,
					"escape calls are seen at syscall entry, and the "
					"kernel refused raw_tp/sys_enter");
			if (cfg->escape_audit | cfg->escape_kill)
				plan->node_links |= WEIR_GL_SYS_ENTER;
			break;
		}
		case WEIR_GUARD_PATHS:
			if (!caps->lsm || !caps->lsm_file_open)
				return unavailable(
					err, g, i,
					"protected paths need BPF-LSM (file_open), which "
					"this node does not offer; there is no fallback");
			if (!g->npaths)
				return unavailable(
					err, g, i,
					"nothing to protect: name paths with \"protect\" "
					"or in the node config's protected_paths");
			lsm_used = true;
			break;
		case WEIR_GUARD_SCAN:
			cfg->scan_threshold = g->scan_threshold;
			cfg->scan_window_ms = g->scan_window_s * 1000;
			cfg->quarantine_ms = mode == WEIR_GM_ENFORCE ? g->quarantine_s * 1000 : 0;
			break;
		default:
			break;
		}
		summary_add(plan, weir_guard_names[i], weir_gmode_names[mode], note);
	}
	if (!weir_guards_any(g))
		return 0;
	/* every guard waits for the workload's exec: the runtime's init before it is trusted */
	if (!caps->exec)
		return weir_error_key(err, -EOPNOTSUPP, WEIR_KEY_SECURITY,
				      "guards start at the workload's exec, which needs "
				      "raw_tp/sched_process_exec, refused by this kernel (weir "
				      "status)");
	plan->node_links |= WEIR_GL_EXEC;
	if (lsm_used && caps->lsm_per_cgroup)
		plan->lsm_per_cgroup = true;
	else if (lsm_used)
		plan->node_links |= WEIR_GL_LSM;
	/* a runtime's exec into the container is trusted until its exec, as the init is */
	if (caps->entry && (lsm_used || (plan->node_links & WEIR_GL_SYS_ENTER)))
		plan->node_links |= WEIR_GL_ENTRY;
	return 0;
}

void weir_sysctl_key_of(const struct weir_sysctl_pattern *p, uint32_t ep,
			struct weir_sysctl_key *key)
{
	size_t len = strlen(p->name);

	memset(key, 0, sizeof(*key));
	key->ep_id = ep;
	memcpy(key->name, p->name, len);
	/* an exact name matches through its NUL, so a longer name never matches it */
	key->prefixlen = WEIR_SYSCTL_KEY_FIXED_BITS + 8 * (uint32_t)(p->prefix ? len : len + 1);
}

/* ---- syscall numbers -------------------------------------------------------------- */

static const struct {
	long nr;
	uint8_t call, filter;
	const char *name;
} native_calls[] = {
	{SYS_mount, WEIR_CALL_MOUNT, WEIR_CF_ANY, "mount"},
	{SYS_umount2, WEIR_CALL_MOUNT, WEIR_CF_ANY, "umount2"},
	{SYS_fsopen, WEIR_CALL_MOUNT, WEIR_CF_ANY, "fsopen"},
	{SYS_fsmount, WEIR_CALL_MOUNT, WEIR_CF_ANY, "fsmount"},
	{SYS_fspick, WEIR_CALL_MOUNT, WEIR_CF_ANY, "fspick"},
	{SYS_move_mount, WEIR_CALL_MOUNT, WEIR_CF_ANY, "move_mount"},
	{SYS_open_tree, WEIR_CALL_MOUNT, WEIR_CF_ANY, "open_tree"},
	{SYS_mount_setattr, WEIR_CALL_MOUNT, WEIR_CF_ANY, "mount_setattr"},
	{SYS_pivot_root, WEIR_CALL_PIVOT_ROOT, WEIR_CF_ANY, "pivot_root"},
	{SYS_unshare, WEIR_CALL_NAMESPACES, WEIR_CF_UNSHARE, "unshare"},
	{SYS_setns, WEIR_CALL_NAMESPACES, WEIR_CF_ANY, "setns"},
	{SYS_clone, WEIR_CALL_NAMESPACES, WEIR_CF_CLONE, "clone"},
	{SYS_clone3, WEIR_CALL_NAMESPACES, WEIR_CF_CLONE3, "clone3"},
	{SYS_init_module, WEIR_CALL_MODULES, WEIR_CF_ANY, "init_module"},
	{SYS_finit_module, WEIR_CALL_MODULES, WEIR_CF_ANY, "finit_module"},
	{SYS_delete_module, WEIR_CALL_MODULES, WEIR_CF_ANY, "delete_module"},
	{SYS_kexec_load, WEIR_CALL_KEXEC, WEIR_CF_ANY, "kexec_load"},
	{SYS_kexec_file_load, WEIR_CALL_KEXEC, WEIR_CF_ANY, "kexec_file_load"},
	{SYS_bpf, WEIR_CALL_BPF, WEIR_CF_ANY, "bpf"},
	{SYS_perf_event_open, WEIR_CALL_PERF, WEIR_CF_ANY, "perf_event_open"},
	{SYS_ptrace, WEIR_CALL_PTRACE, WEIR_CF_PTRACE, "ptrace"},
	{SYS_process_vm_readv, WEIR_CALL_PTRACE, WEIR_CF_ANY, "process_vm_readv"},
	{SYS_process_vm_writev, WEIR_CALL_PTRACE, WEIR_CF_ANY, "process_vm_writev"},
	{SYS_open_by_handle_at, WEIR_CALL_OPEN_BY_HANDLE, WEIR_CF_ANY, "open_by_handle_at"},
	{SYS_keyctl, WEIR_CALL_KEYRING, WEIR_CF_ANY, "keyctl"},
	{SYS_add_key, WEIR_CALL_KEYRING, WEIR_CF_ANY, "add_key"},
	{SYS_request_key, WEIR_CALL_KEYRING, WEIR_CF_ANY, "request_key"},
	{SYS_userfaultfd, WEIR_CALL_USERFAULTFD, WEIR_CF_ANY, "userfaultfd"},
	{SYS_reboot, WEIR_CALL_REBOOT, WEIR_CF_ANY, "reboot"},
	{SYS_swapon, WEIR_CALL_SWAP, WEIR_CF_ANY, "swapon"},
	{SYS_swapoff, WEIR_CALL_SWAP, WEIR_CF_ANY, "swapoff"},
#ifdef SYS_iopl /* x86 only */
	{SYS_iopl, WEIR_CALL_IOPL, WEIR_CF_ANY, "iopl"},
	{SYS_ioperm, WEIR_CALL_IOPL, WEIR_CF_ANY, "ioperm"},
#endif
	{SYS_socket, WEIR_CALL_SOCKET, WEIR_CF_FAMILY, "socket"},
};

void weir_syscalls_fill(struct weir_syscall_nr *table)
{
	memset(table, 0, WEIR_SYSCALL_SLOTS * sizeof(*table));
	for (size_t i = 0; i < WEIR_ARRAY_SIZE(native_calls); i++) {
		if (native_calls[i].nr < 0 || native_calls[i].nr >= WEIR_SYSCALL_SLOTS)
			continue;
		table[native_calls[i].nr].abi[0].call = native_calls[i].call;
		table[native_calls[i].nr].abi[0].filter = native_calls[i].filter;
	}
	weir_syscalls_fill_compat(table);
}

const char *weir_syscall_name(long nr, bool compat)
{
	if (compat)
		return weir_syscall_name_compat(nr);
	for (size_t i = 0; i < WEIR_ARRAY_SIZE(native_calls); i++)
		if (native_calls[i].nr == nr)
			return native_calls[i].name;
	return NULL;
}
