// SPDX-License-Identifier: Apache-2.0
/*
 * weir top: a live view of every running endpoint, refreshed every --interval seconds.
 *
 * Rates are deltas between two readings of the counters divided by the time between them;
 * DROPS (policy drops in both directions plus the kernel's own drops), GUARD (security guard
 * events, `weir events`) and RETRANS are totals
 * since the container started; P50/P99 RTT are read off the kernel's smoothed-RTT histogram
 * with weir_hist_quantile(), as `weir stats` reads them. CONNTRACK is the endpoint's
 * conntrack map now: entries / budget, and the entries its LRU evicted so far when there are
 * any (`weir stats`' conntrack line); it sorts by how full the map is.
 *
 * Keys: s cycles the sort column, r reverses the order, q quits. --once prints one frame on
 * stdout without curses (two readings --interval apart, so rates are real).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curses.h>

#include "cli.h"
#include "config.h"
#include "stats.h"
#include "log.h"
#include "util.h"

enum col {
	COL_ID,
	COL_NAME,
	COL_POD,
	COL_TXB,
	COL_RXB,
	COL_TXP,
	COL_RXP,
	COL_TXLIM,
	COL_RXLIM,
	COL_DROPS,
	COL_SHAPED,
	COL_GUARD,
	COL_RETRANS,
	COL_P50,
	COL_P99,
	COL_CT,
	NCOLS,
};

static const struct {
	const char *title;
	const char *key; /* --sort name */
	int width;
	bool text; /* sorts ascending by default */
} cols[NCOLS] = {
	[COL_ID] = {"ID", "id", 12, true},
	[COL_NAME] = {"NAME", "name", 20, true},
	[COL_POD] = {"POD", "pod", 24, true},
	[COL_TXB] = {"TX B/s", "tx-bytes", 9, false},
	[COL_RXB] = {"RX B/s", "rx-bytes", 9, false},
	[COL_TXP] = {"TX pk/s", "tx-packets", 9, false},
	[COL_RXP] = {"RX pk/s", "rx-packets", 9, false},
	[COL_TXLIM] = {"TX LIM", "tx-limit", 9, false},
	[COL_RXLIM] = {"RX LIM", "rx-limit", 9, false},
	[COL_DROPS] = {"DROPS", "drops", 9, false},
	[COL_SHAPED] = {"SHAPED", "shaped", 9, false},
	[COL_GUARD] = {"GUARD", "guard", 9, false},
	[COL_RETRANS] = {"RETRANS", "retrans", 9, false},
	[COL_P50] = {"P50 RTT", "p50", 9, false},
	[COL_P99] = {"P99 RTT", "p99", 9, false},
	[COL_CT] = {"CONNTRACK", "ct", 19, false},
};

struct totals {
	uint64_t tx_bytes, rx_bytes, tx_packets, rx_packets;
};

struct row {
	char id[160];
	char name[128];
	char pod[256];
	struct totals t;
	struct weir_ct_usage ct;
	double v[NCOLS];
	bool has[NCOLS]; /* the numeric value is known */
};

struct view {
	struct row *rows;
	size_t n;
	unsigned int running, stopped;
	double dt; /* seconds between the two readings, 0 on the first */
	struct timespec at;
	time_t wall;
	enum col sort;
	bool reverse;
	double interval;
	bool curses;
	int y; /* next line (curses) */
};

static volatile sig_atomic_t quit_sig;

static void on_signal(int sig)
{
	quit_sig = sig;
}

/* ---- reading -------------------------------------------------------------------------- */

static void copy_str(char *dst, size_t size, const char *s)
{
	snprintf(dst, size, "%s", s && *s ? s : "-");
}

/* One running endpoint's row: totals now; rates come from the previous reading. */
static void row_fill(struct row *rw, const struct weir_ep_view *ep)
{
	const struct weir_ep_stats *s = &ep->s;

	copy_str(rw->id, sizeof(rw->id), ep->id);
	/* runc has no names: its ids are the names people gave */
	copy_str(rw->name, sizeof(rw->name), ep->name ?: ep->id);
	if (ep->pod_name)
		snprintf(rw->pod, sizeof(rw->pod), "%s/%s", ep->pod_namespace ?: "", ep->pod_name);
	else
		snprintf(rw->pod, sizeof(rw->pod), "-");
	if (!ep->counters_available)
		return;
	for (int p = 0; p < WEIR_PCLASSES; p++) {
		rw->t.tx_bytes += s->c.dir[WEIR_EGRESS].proto[p].bytes;
		rw->t.tx_packets += s->c.dir[WEIR_EGRESS].proto[p].packets;
		rw->t.rx_bytes += s->c.dir[WEIR_INGRESS].proto[p].bytes;
		rw->t.rx_packets += s->c.dir[WEIR_INGRESS].proto[p].packets;
	}
	rw->v[COL_DROPS] = (double)(s->c.dir[WEIR_EGRESS].policy_dropped.packets +
				    s->c.dir[WEIR_INGRESS].policy_dropped.packets);
	for (size_t i = 0; i < s->ndrops; i++)
		rw->v[COL_DROPS] += (double)s->drops[i].count;
	rw->has[COL_DROPS] = true;
	/* shaping: the limits in B/s like the rates beside them, and what the limiter dropped */
	rw->v[COL_TXLIM] = (double)s->c.dir[WEIR_EGRESS].rate_limit / 8;
	rw->has[COL_TXLIM] = s->c.dir[WEIR_EGRESS].rate_limit != 0;
	rw->v[COL_RXLIM] = (double)s->c.dir[WEIR_INGRESS].rate_limit / 8;
	rw->has[COL_RXLIM] = s->c.dir[WEIR_INGRESS].rate_limit != 0;
	rw->v[COL_SHAPED] = (double)(s->c.dir[WEIR_EGRESS].shaped_dropped.packets +
				     s->c.dir[WEIR_INGRESS].shaped_dropped.packets);
	rw->has[COL_SHAPED] = true;
	for (int i = 0; s->has_guards && i < WEIR_GUARDS; i++)
		for (int a = 0; a < WEIR_GACTIONS; a++)
			rw->v[COL_GUARD] += (double)s->guards.n[i][a];
	rw->has[COL_GUARD] = s->has_guards;
	if (s->has_ct && s->ct.budget) {
		rw->ct = s->ct;
		rw->v[COL_CT] = (double)s->ct.entries / (double)s->ct.budget;
		rw->has[COL_CT] = true;
	}
	if (s->has_tcp) {
		rw->v[COL_RETRANS] = (double)s->tcp.retransmits;
		rw->has[COL_RETRANS] = true;
		if (weir_hist_count(&s->tcp.srtt)) {
			rw->v[COL_P50] = weir_hist_quantile(&s->tcp.srtt, 0.5);
			rw->v[COL_P99] = weir_hist_quantile(&s->tcp.srtt, 0.99);
			rw->has[COL_P50] = rw->has[COL_P99] = true;
		}
	}
}

static int row_cmp_id(const void *a, const void *b)
{
	return strcmp(((const struct row *)a)->id, ((const struct row *)b)->id);
}

/* A counter never goes back for one id; be safe anyway. */
static double rate(uint64_t now, uint64_t before, double dt)
{
	return now >= before ? (double)(now - before) / dt : 0;
}

/* Read every running endpoint; rates against the previous reading. */
static int sample(struct cli *cli, struct view *v)
{
	struct weir_ep_views views __attribute__((cleanup(weir_views_free))) = {};
	struct timespec now;
	struct row *rows;
	size_t n = 0;
	int r;

	r = weir_views_collect(cli->ctx, true, &views);
	if (r)
		return r;
	clock_gettime(CLOCK_MONOTONIC, &now);
	rows = calloc(views.n ? views.n : 1, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	v->running = v->stopped = 0;
	for (size_t i = 0; i < views.n; i++) {
		if (views.v[i].state != WEIR_STATE_RUNNING) {
			v->stopped += views.v[i].state == WEIR_STATE_STOPPED;
			continue;
		}
		v->running++;
		row_fill(&rows[n++], &views.v[i]);
	}
	qsort(rows, n, sizeof(*rows), row_cmp_id);

	/* rates against the previous reading (v->rows, sorted by id for the lookup) */
	v->dt = 0;
	if (v->rows) {
		qsort(v->rows, v->n, sizeof(*v->rows), row_cmp_id);
		v->dt = (double)(now.tv_sec - v->at.tv_sec) +
			(double)(now.tv_nsec - v->at.tv_nsec) / 1e9;
	}
	for (size_t i = 0; i < n && v->dt > 0; i++) {
		struct row *rw = &rows[i];
		struct row *old = bsearch(rw, v->rows, v->n, sizeof(*rw), row_cmp_id);

		if (!old)
			continue;
		rw->v[COL_TXB] = rate(rw->t.tx_bytes, old->t.tx_bytes, v->dt);
		rw->v[COL_RXB] = rate(rw->t.rx_bytes, old->t.rx_bytes, v->dt);
		rw->v[COL_TXP] = rate(rw->t.tx_packets, old->t.tx_packets, v->dt);
		rw->v[COL_RXP] = rate(rw->t.rx_packets, old->t.rx_packets, v->dt);
		rw->has[COL_TXB] = rw->has[COL_RXB] = rw->has[COL_TXP] = rw->has[COL_RXP] = true;
	}
	free(v->rows);
	v->rows = rows;
	v->n = n;
	v->at = now;
	v->wall = time(NULL);
	return 0;
}

/* ---- sorting -------------------------------------------------------------------------- */

static const struct view *sort_view;

static int row_cmp(const void *pa, const void *pb)
{
	const struct row *a = pa, *b = pb;
	enum col c = sort_view->sort;
	int d = 0;

	switch (c) {
	case COL_ID:
		d = strcmp(a->id, b->id);
		break;
	case COL_NAME:
		d = strcmp(a->name, b->name);
		break;
	case COL_POD:
		d = strcmp(a->pod, b->pod);
		break;
	default:
		/* unknown values sort last, numbers descending */
		if (a->has[c] != b->has[c])
			d = a->has[c] ? -1 : 1;
		else if (a->v[c] != b->v[c])
			d = a->v[c] > b->v[c] ? -1 : 1;
		break;
	}
	if (sort_view->reverse)
		d = -d;
	return d ? d : strcmp(a->id, b->id);
}

static void sort_rows(struct view *v)
{
	sort_view = v;
	qsort(v->rows, v->n, sizeof(*v->rows), row_cmp);
}

/* ---- drawing -------------------------------------------------------------------------- */

static void fmt_rate(char *buf, size_t size, bool has, double x)
{
	static const char *const units[] = {"", "k", "M", "G", "T"};
	size_t u = 0;

	if (!has) {
		snprintf(buf, size, "-");
		return;
	}
	while (x >= 999.5 && u + 1 < WEIR_ARRAY_SIZE(units)) {
		x /= 1000;
		u++;
	}
	if (!u)
		snprintf(buf, size, "%.0f", x);
	else
		snprintf(buf, size, "%.*f%s", x < 9.95 ? 2 : x < 99.5 ? 1 : 0, x, units[u]);
}

static void fmt_us(char *buf, size_t size, bool has, double us)
{
	if (!has)
		snprintf(buf, size, "-");
	else if (us < 1000)
		snprintf(buf, size, "%.0fus", us);
	else if (us < 1000000)
		snprintf(buf, size, "%.*fms", us < 9995 ? 2 : 1, us / 1000);
	else
		snprintf(buf, size, "%.2fs", us / 1e6);
}

static void put_line(struct view *v, const char *s, bool bold)
{
	int n = (int)strlen(s);

	while (n > 0 && s[n - 1] == ' ')
		n--;
	if (!v->curses) {
		printf("%.*s\n", n, s);
		return;
	}
	if (v->y >= LINES)
		return;
	if (bold)
		attron(A_BOLD);
	mvaddnstr(v->y, 0, s, n < COLS ? n : COLS);
	clrtoeol();
	if (bold)
		attroff(A_BOLD);
	v->y++;
}

static void fmt_cell(char *out, size_t size, const struct row *rw, enum col c)
{
	switch (c) {
	case COL_ID:
		snprintf(out, size, "%.12s", rw->id);
		break;
	case COL_NAME:
		snprintf(out, size, "%s", rw->name);
		break;
	case COL_POD:
		snprintf(out, size, "%s", rw->pod);
		break;
	case COL_P50:
	case COL_P99:
		fmt_us(out, size, rw->has[c], rw->v[c]);
		break;
	case COL_CT: {
		char ev[32];

		if (!rw->has[c]) {
			snprintf(out, size, "-");
			break;
		}
		fmt_rate(ev, sizeof(ev), true, (double)rw->ct.evicted);
		snprintf(out, size, "%" PRIu64 "/%" PRIu64 "%s%s", rw->ct.entries, rw->ct.budget,
			 rw->ct.evicted ? " ev " : "", rw->ct.evicted ? ev : "");
		break;
	}
	case COL_DROPS:
	case COL_SHAPED:
	case COL_GUARD:
	case COL_RETRANS:
		if (rw->has[c])
			snprintf(out, size, "%.0f", rw->v[c]);
		else
			snprintf(out, size, "-");
		break;
	default:
		fmt_rate(out, size, rw->has[c], rw->v[c]);
		break;
	}
}

/* Append one cell, padded (text left-aligned, numbers right-aligned) or cut to its width. */
static void add_cell(char *line, size_t size, enum col c, const char *text)
{
	size_t n = strlen(line);
	int w = cols[c].width;

	if (n >= size)
		return;
	snprintf(line + n, size - n, cols[c].text ? "%-*.*s " : "%*.*s ", w, w, text);
}

static void draw(struct view *v)
{
	char line[1024], a[32], b[32], c[32], d[32], tm[32];
	double tot[NCOLS] = {0};
	bool have_rates = false;
	struct tm lt;

	sort_rows(v);
	for (size_t i = 0; i < v->n; i++) {
		for (int k = COL_TXB; k <= COL_RETRANS; k++)
			tot[k] += v->rows[i].v[k];
		have_rates |= v->rows[i].has[COL_TXB];
	}
	if (v->curses) {
		v->y = 0;
		erase();
	}
	localtime_r(&v->wall, &lt);
	strftime(tm, sizeof(tm), "%Y-%m-%d %H:%M:%S", &lt);
	snprintf(line, sizeof(line),
		 "weir top - %s   endpoints: %u running, %u stopped   every %gs", tm, v->running,
		 v->stopped, v->interval);
	put_line(v, line, true);
	fmt_rate(a, sizeof(a), have_rates, tot[COL_TXB]);
	fmt_rate(b, sizeof(b), have_rates, tot[COL_TXP]);
	fmt_rate(c, sizeof(c), have_rates, tot[COL_RXB]);
	fmt_rate(d, sizeof(d), have_rates, tot[COL_RXP]);
	snprintf(line, sizeof(line),
		 "total: TX %sB/s %s pk/s   RX %sB/s %s pk/s   drops %.0f   retrans %.0f", a, b, c,
		 d, tot[COL_DROPS], tot[COL_RETRANS]);
	put_line(v, line, false);
	snprintf(line, sizeof(line), "sort: %s %s%s", cols[v->sort].title,
		 (cols[v->sort].text != v->reverse) ? "ascending" : "descending",
		 v->curses ? "   keys: s sort column, r reverse, q quit" : "");
	put_line(v, line, false);
	put_line(v, "", false);

	line[0] = '\0';
	for (int k = 0; k < NCOLS; k++) {
		char t[32];

		snprintf(t, sizeof(t), "%s%s", cols[k].title, k == (int)v->sort ? "*" : "");
		add_cell(line, sizeof(line), k, t);
	}
	put_line(v, line, true);
	for (size_t i = 0; i < v->n; i++) {
		line[0] = '\0';
		for (int k = 0; k < NCOLS; k++) {
			char cell[256];

			fmt_cell(cell, sizeof(cell), &v->rows[i], k);
			add_cell(line, sizeof(line), k, cell);
		}
		put_line(v, line, false);
	}
	if (!v->n)
		put_line(v, "(no running endpoint)", false);
	if (v->curses)
		refresh();
	else
		fflush(stdout);
}

/* ---- loop ----------------------------------------------------------------------------- */

static double elapsed_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static int run_curses(struct cli *cli, struct view *v)
{
	int r = 0, ch;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		pr_err("top: needs a terminal (use --once for a single frame on stdout)");
		return -ENOTTY;
	}
	if (!initscr()) {
		pr_err("top: cannot initialise the terminal");
		return -ENOTTY;
	}
	v->curses = true;
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	draw(v);
	while (!quit_sig) {
		double left = v->interval - elapsed_since(&v->at);

		if (left <= 0) {
			r = sample(cli, v);
			if (r)
				break;
			draw(v);
			continue;
		}
		/* wake at least every 200 ms to notice signals */
		timeout(left > 0.2 ? 200 : (int)(left * 1000) + 1);
		ch = getch();
		if (ch == 'q' || ch == 'Q')
			break;
		if (ch == 's') {
			v->sort = (v->sort + 1) % NCOLS;
			v->reverse = false;
		} else if (ch == 'S') {
			v->sort = (v->sort + NCOLS - 1) % NCOLS;
			v->reverse = false;
		} else if (ch == 'r') {
			v->reverse = !v->reverse;
		} else if (ch != KEY_RESIZE) {
			continue;
		}
		draw(v);
	}
	endwin();
	if (r)
		pr_err("top: cannot read the endpoints: %s", strerror(-r));
	return r;
}

int cmd_top(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"interval", required_argument, NULL, 'i'}, {"once", no_argument, NULL, '1'},
		{"sort", required_argument, NULL, 's'},	    {"reverse", no_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},	    {},
	};
	static const char usage[] =
		"weir top [--interval SEC] [--sort COLUMN] [--reverse] [--once]";
	struct view v = {.sort = COL_TXB, .interval = 1.0};
	struct sigaction sa = {.sa_handler = on_signal};
	bool once = false, found;
	char *end;
	int opt, r;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "i:s:rh", opts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			errno = 0;
			v.interval = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(v.interval) ||
			    v.interval < 0.1 || v.interval > 3600) {
				pr_err("top: --interval \"%s\": expected seconds from 0.1 to 3600",
				       optarg);
				return 2;
			}
			break;
		case '1':
			once = true;
			break;
		case 's':
			found = false;
			for (int k = 0; k < NCOLS; k++)
				if (!strcasecmp(optarg, cols[k].key)) {
					v.sort = k;
					found = true;
				}
			if (!found) {
				pr_err("top: --sort \"%s\": expected id, name, pod, tx-bytes, "
				       "rx-bytes, tx-packets, rx-packets, tx-limit, rx-limit, "
				       "drops, "
				       "shaped, guard, retrans, p50, p99 or ct",
				       optarg);
				return 2;
			}
			break;
		case 'r':
			v.reverse = true;
			break;
		case 'h':
			printf("usage: %s\n", usage);
			return 0;
		default:
			fprintf(stderr, "usage: %s\n", usage);
			return 2;
		}
	}
	if (optind < argc) {
		pr_err("top: unexpected argument \"%s\"", argv[optind]);
		return 2;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	r = sample(cli, &v);
	if (!r && once) {
		struct timespec ts = {
			.tv_sec = (time_t)v.interval,
			.tv_nsec = (long)((v.interval - (double)(time_t)v.interval) * 1e9)};

		while (nanosleep(&ts, &ts) && errno == EINTR && !quit_sig)
			;
		r = sample(cli, &v);
		if (!r)
			draw(&v);
	} else if (!r) {
		r = run_curses(cli, &v);
		if (r == -ENOTTY)
			return 1;
	}
	free(v.rows);
	if (r) {
		if (r != -ENOTTY)
			pr_err("top: cannot read the endpoints: %s", strerror(-r));
		return 1;
	}
	return 0;
}
