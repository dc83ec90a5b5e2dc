// SPDX-License-Identifier: Apache-2.0
/*
 * The endpoint registry against the real kernel (root): attach, detach and gc, and every
 * state a process killed between two steps of an attach or a detach leaves, made exactly:
 * a real attach, then the steps after the crash point undone by hand. Each must be repaired
 * by the next operation that meets it, leaving an intact endpoint or nothing.
 *
 * tests/e2e/registry.t kills weir-hook at random instants; this suite names each instant.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <cmocka.h>

#include "cgroup.h"
#include "ctx.h"
#include "log.h"
#include "registry.h"
#include "util.h"

static char tmp[PATH_MAX], cg_a[PATH_MAX], cg_b[PATH_MAX], bpffs[PATH_MAX];
static struct weir_ctx *ctx;

static const struct weir_kv ann[] = {
	{"egress.weir.io", "allow 10.0.0.0/8 tcp/443; deny 10.9.0.0/16; allow any udp/53"},
	{"ingress.weir.io", "allow 192.0.2.0/24 tcp/80"},
};

static int attach(const char *id, const char *cg)
{
	struct weir_container c = {.id = id,
				   .source = "test",
				   .cgroup_path = cg,
				   .annotations = ann,
				   .n_annotations = WEIR_ARRAY_SIZE(ann)};
	struct weir_error err = {};
	int r = weir_endpoint_attach(ctx, &c, &err);

	if (r)
		print_message("attach %s: %s\n", id, err.msg);
	return r;
}

static int detach(const char *id)
{
	struct weir_error err = {};
	int r = weir_endpoint_detach(ctx, id, &err);

	if (r)
		print_message("detach %s: %s\n", id, err.msg);
	return r;
}

static void read_rec(const char *id, struct weir_record *rec)
{
	struct weir_error err = {};

	if (weir_record_read(ctx, id, rec, &err))
		fail_msg("record %s: %s", id, err.msg);
}

static size_t count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	size_t n = 0;

	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void ep_path(char *out, const char *dir, uint32_t ep)
{
	snprintf(out, PATH_MAX, "%s/%u", dir, ep);
}

static size_t policy_entries_of(uint32_t ep)
{
	struct weir_policy_key k, next, *prev = NULL;
	int map = ctx->dp.map[WEIR_MAP_POLICY];
	size_t n = 0;

	while (!bpf_map_get_next_key(map, prev, &next)) {
		k = next;
		prev = &k;
		n += k.ep_id == ep;
	}
	return n;
}

/* Invariant 2 of shared/node/registry.c, checked from outside. */
static void assert_intact(const char *id, const char *cg)
{
	struct weir_endpoint epv;
	struct weir_record rec;
	char path[PATH_MAX];
	uint64_t cgid;
	uint32_t owner;

	read_rec(id, &rec);
	assert_int_equal(rec.state, WEIR_STATE_RUNNING);
	assert_string_equal(rec.cgroup, cg);
	assert_int_equal(weir_cgroup_id(cg, &cgid), 0);
	assert_true(rec.cgroup_id == cgid);
	assert_int_equal(bpf_map_lookup_elem(ctx->dp.map[WEIR_MAP_CGROUPS], &cgid, &owner), 0);
	assert_int_equal(owner, rec.endpoint);
	assert_int_equal(bpf_map_lookup_elem(ctx->dp.map[WEIR_MAP_ENDPOINTS], &rec.endpoint, &epv),
			 0);
	assert_true(epv.flags & WEIR_EP_ACTIVE);
	assert_int_equal(epv.gen, rec.gen);
	ep_path(path, ctx->paths.endpoints, rec.endpoint);
	assert_true(count_dir(path) >= 6);
	assert_int_equal(policy_entries_of(rec.endpoint), rec.policy_keys);
	assert_true(rec.policy_keys > 0);
	ep_path(path, ctx->ids_dir, rec.endpoint);
	assert_int_equal(access(path, F_OK), 0);
	/* its conntrack map: in its weir_ct slot and pinned, the same map */
	assert_int_equal(weir_ct_check(ctx->dp.map[WEIR_MAP_CT], ctx->paths.maps, rec.endpoint), 0);
	assert_true(weir_endpoint_ct_intact(ctx, &rec));
	weir_record_release(&rec);
}

/* Nothing of endpoint ep is left anywhere. */
static void assert_gone(uint32_t ep)
{
	struct weir_endpoint epv;
	char path[PATH_MAX];

	ep_path(path, ctx->paths.endpoints, ep);
	assert_int_not_equal(access(path, F_OK), 0);
	ep_path(path, ctx->ids_dir, ep);
	assert_int_not_equal(access(path, F_OK), 0);
	ep_path(path, ctx->keys_dir, ep);
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(policy_entries_of(ep), 0);
	assert_int_equal(bpf_map_lookup_elem(ctx->dp.map[WEIR_MAP_ENDPOINTS], &ep, &epv), 0);
	assert_false(epv.flags & WEIR_EP_ACTIVE);
	assert_int_equal(weir_ct_check(ctx->dp.map[WEIR_MAP_CT], ctx->paths.maps, ep), -ENOENT);
	snprintf(path, sizeof(path), "%s/weir_ct_%u", ctx->paths.maps, ep);
	assert_int_not_equal(access(path, F_OK), 0);
}

static void assert_clean(void)
{
	uint64_t k;

	assert_int_equal(count_dir(ctx->ids_dir), 0);
	assert_int_equal(count_dir(ctx->keys_dir), 0);
	assert_int_equal(count_dir(ctx->paths.endpoints), 0);
	assert_int_not_equal(bpf_map_get_next_key(ctx->dp.map[WEIR_MAP_CGROUPS], NULL, &k), 0);
}

/* Rewrite a record as a process that died at that point would have left it. */
static void set_state(const char *id, enum weir_ep_state st)
{
	struct weir_error err = {};
	struct weir_record rec;

	read_rec(id, &rec);
	rec.state = st;
	assert_int_equal(weir_record_write(ctx, &rec, &err), 0);
	weir_record_release(&rec);
}

static uint32_t endpoint_of(const char *id)
{
	struct weir_record rec;
	uint32_t ep;

	read_rec(id, &rec);
	ep = rec.endpoint;
	weir_record_release(&rec);
	return ep;
}

/* Detach and unpin the endpoint's links but the first `keep`, as a teardown cut short does. */
static void unpin_links(uint32_t ep, size_t keep)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	ep_path(dir, ctx->paths.endpoints, ep);
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d))) {
		int fd;

		if (de->d_name[0] == '.')
			continue;
		if (keep) {
			keep--;
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = bpf_obj_get(path);
		assert_true(fd >= 0);
		assert_int_equal(bpf_link_detach(fd), 0);
		close(fd);
		assert_int_equal(unlink(path), 0);
	}
	closedir(d);
}

static struct weir_gc_report gc(void)
{
	struct weir_gc_report rep;
	struct weir_error err = {};

	if (weir_gc(ctx, &rep, &err))
		fail_msg("gc: %s", err.msg);
	return rep;
}

/* ---- the tests ---------------------------------------------------------------------- */

static void test_attach_detach(void **state)
{
	uint32_t ep;

	(void)state;
	assert_int_equal(attach("c1", cg_a), 0);
	assert_intact("c1", cg_a);
	ep = endpoint_of("c1");
	assert_int_equal(attach("c1", cg_a), 0); /* idempotent */
	assert_int_equal(endpoint_of("c1"), ep);
	assert_int_equal(detach("c1"), 0);
	assert_gone(ep);
	assert_int_equal(detach("c1"), 0); /* idempotent */
	assert_int_equal(detach("never-attached"), 0);
	assert_clean();
}

/* Killed after taking its id, before writing anything else. */
static void test_crash_after_id(void **state)
{
	char path[PATH_MAX];
	struct weir_gc_report rep;

	(void)state;
	assert_int_equal(weir_mkdir_p(ctx->ids_dir, 0700), 0);
	ep_path(path, ctx->ids_dir, 4242);
	assert_int_equal(weir_write_file_atomic(path, "c2", 2, 0600), 0);
	/* and one that died between O_EXCL and writing its owner */
	ep_path(path, ctx->ids_dir, 4243);
	assert_int_equal(weir_write_file_atomic(path, "", 0, 0600), 0);
	assert_int_equal(attach("c2", cg_a), 0); /* a retry is not blocked by it */
	assert_intact("c2", cg_a);
	rep = gc();
	assert_int_equal(rep.orphans, 2);
	assert_intact("c2", cg_a);
	assert_int_equal(detach("c2"), 0);
	assert_clean();
}

/* Killed after the keys file, before the record. */
static void test_crash_after_keys(void **state)
{
	char path[PATH_MAX];
	struct weir_policy_key k = {.ep_id = 4244};

	(void)state;
	assert_int_equal(weir_mkdir_p(ctx->keys_dir, 0700), 0);
	ep_path(path, ctx->ids_dir, 4244);
	assert_int_equal(weir_write_file_atomic(path, "c3", 2, 0600), 0);
	ep_path(path, ctx->keys_dir, 4244);
	assert_int_equal(weir_write_file_atomic(path, (char *)&k, sizeof(k), 0600), 0);
	/* a temporary record of a writer that died before its rename */
	snprintf(path, sizeof(path), "%s/c3.json.tmp.999999", ctx->containers_dir);
	assert_int_equal(weir_write_file_atomic(path, "{", 1, 0600), 0);
	assert_int_equal(gc().orphans, 3);
	assert_clean();
	assert_int_not_equal(access(path, F_OK), 0);
}

/* Killed inside apply(): the record says attaching, the kernel has part of the endpoint. */
static void test_crash_inside_attach(void **state)
{
	uint32_t ep;

	(void)state;
	for (size_t keep = 0; keep < 7; keep += 3) {
		assert_int_equal(attach("c4", cg_a), 0);
		ep = endpoint_of("c4");
		set_state("c4", WEIR_STATE_ATTACHING);
		unpin_links(ep, keep);
		/* the retry of the same container repairs and attaches again */
		assert_int_equal(attach("c4", cg_a), 0);
		assert_intact("c4", cg_a);
		if (endpoint_of("c4") != ep)
			assert_gone(ep);
		assert_int_equal(detach("c4"), 0);
	}
	/* the same left for gc, and for a detach */
	assert_int_equal(attach("c4", cg_a), 0);
	ep = endpoint_of("c4");
	set_state("c4", WEIR_STATE_ATTACHING);
	assert_int_equal(gc().repaired, 1);
	assert_gone(ep);
	assert_int_equal(attach("c4", cg_a), 0);
	ep = endpoint_of("c4");
	set_state("c4", WEIR_STATE_ATTACHING);
	assert_int_equal(detach("c4"), 0);
	assert_gone(ep);
	assert_clean();
}

/* Killed inside a detach: the record says detaching, some links are gone. */
static void test_crash_inside_detach(void **state)
{
	struct weir_record rec;
	uint32_t ep;

	(void)state;
	assert_int_equal(attach("c5", cg_a), 0);
	ep = endpoint_of("c5");
	set_state("c5", WEIR_STATE_DETACHING);
	unpin_links(ep, 2);
	assert_int_equal(gc().repaired, 1);
	assert_gone(ep);
	read_rec("c5", &rec);
	assert_int_equal(rec.state, WEIR_STATE_STOPPED);
	assert_string_equal(rec.note, "detach interrupted");
	weir_record_release(&rec);
	assert_clean();
}

/* Damaged from outside while running: an attach of the same container makes it whole. */
static void test_not_intact(void **state)
{
	struct weir_record rec;

	(void)state;
	assert_int_equal(attach("c6", cg_a), 0);
	read_rec("c6", &rec);
	bpf_map_delete_elem(ctx->dp.map[WEIR_MAP_CGROUPS], &rec.cgroup_id);
	weir_record_release(&rec);
	assert_int_equal(attach("c6", cg_a), 0);
	assert_intact("c6", cg_a);
	assert_int_equal(detach("c6"), 0);
	assert_clean();
}

/* ---- conntrack map damaged from outside ---- */

static const struct weir_ct_key held_flow = {
	.proto = 6, .family = WEIR_V4, .lport = 40000, .rport = 443, .raddr = {10, 1, 2, 3}};

static void ct_pin(uint32_t ep, char *out)
{
	snprintf(out, PATH_MAX, "%s/weir_ct_%u", ctx->paths.maps, ep);
}

/* A flow the endpoint holds, as the datapath would have tracked it. */
static void ct_hold(uint32_t ep)
{
	struct weir_ct_val v = {.gen = 1};
	struct weir_ct_key k = held_flow;
	int fd = weir_ct_open(ctx->dp.map[WEIR_MAP_CT], ctx->paths.maps, ep);

	assert_true(fd >= 0);
	k.ep_id = ep;
	assert_int_equal(bpf_map_update_elem(fd, &k, &v, BPF_ANY), 0);
	close(fd);
}

/* Does the map in the endpoint's weir_ct slot (what the datapath reads) still hold it? */
static bool ct_holds(uint32_t ep)
{
	struct weir_ct_key k = held_flow;
	struct weir_ct_val v;
	uint32_t id;
	int fd, r;

	if (bpf_map_lookup_elem(ctx->dp.map[WEIR_MAP_CT], &ep, &id))
		return false;
	fd = bpf_map_get_fd_by_id(id);
	assert_true(fd >= 0);
	k.ep_id = ep;
	r = bpf_map_lookup_elem(fd, &k, &v);
	close(fd);
	return !r;
}

static uint32_t ct_budget(uint32_t ep)
{
	struct weir_ct_usage u;

	assert_int_equal(weir_ct_usage(ctx->dp.map[WEIR_MAP_CT], ctx->paths.maps, ep, &u), 0);
	return u.budget;
}

static bool ct_intact(const char *id)
{
	struct weir_record rec;
	bool ok;

	read_rec(id, &rec);
	ok = weir_endpoint_ct_intact(ctx, &rec);
	weir_record_release(&rec);
	return ok;
}

/*
 * Its conntrack pin removed, its weir_ct slot cleared or pointed at another map: the endpoint
 * is not intact; gc and an attach of the same container put the map back with its flows, on
 * the same endpoint. With both gone the flows are lost: a new map of the recorded budget.
 */
static void test_ct_not_intact(void **state)
{
	struct weir_record rec;
	char pin[PATH_MAX];
	uint32_t ep;
	int other;

	(void)state;
	assert_int_equal(attach("c11", cg_a), 0);
	ep = endpoint_of("c11");
	read_rec("c11", &rec);
	assert_int_equal(rec.ct_entries, ctx->cfg.ct_entries);
	weir_record_release(&rec);
	ct_pin(ep, pin);
	ct_hold(ep);

	/* the pin: gc pins the slot's map again */
	assert_int_equal(unlink(pin), 0);
	assert_false(ct_intact("c11"));
	assert_int_equal(gc().repaired, 1);
	assert_intact("c11", cg_a);
	assert_true(ct_holds(ep));
	assert_int_equal(gc().repaired, 0); /* nothing left to do */

	/* the slot: gc puts the pinned map back */
	assert_int_equal(bpf_map_delete_elem(ctx->dp.map[WEIR_MAP_CT], &ep), 0);
	assert_false(ct_intact("c11"));
	assert_false(ct_holds(ep));
	assert_int_equal(gc().repaired, 1);
	assert_intact("c11", cg_a);
	assert_true(ct_holds(ep));

	/* the slot again, found by an attach of the same container (weir-nri's Synchronize) */
	assert_int_equal(bpf_map_delete_elem(ctx->dp.map[WEIR_MAP_CT], &ep), 0);
	assert_int_equal(attach("c11", cg_a), 0);
	assert_int_equal(endpoint_of("c11"), ep);
	assert_intact("c11", cg_a);
	assert_true(ct_holds(ep));

	/* the slot pointed at another map: the pinned one is weir's */
	other = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "other", sizeof(struct weir_ct_key),
			       sizeof(struct weir_ct_val), WEIR_CT_MIN_ENTRIES, NULL);
	assert_true(other >= 0);
	assert_int_equal(bpf_map_update_elem(ctx->dp.map[WEIR_MAP_CT], &ep, &other, BPF_ANY), 0);
	close(other);
	assert_int_equal(weir_ct_check(ctx->dp.map[WEIR_MAP_CT], ctx->paths.maps, ep), -ESTALE);
	assert_false(ct_holds(ep));
	assert_int_equal(gc().repaired, 1);
	assert_intact("c11", cg_a);
	assert_true(ct_holds(ep));

	/* and the pin on its own, for an attach */
	assert_int_equal(unlink(pin), 0);
	assert_int_equal(attach("c11", cg_a), 0);
	assert_int_equal(endpoint_of("c11"), ep);
	assert_intact("c11", cg_a);
	assert_true(ct_holds(ep));

	/* both: the map is gone with its flows; a new one of the endpoint's budget */
	assert_int_equal(bpf_map_delete_elem(ctx->dp.map[WEIR_MAP_CT], &ep), 0);
	assert_int_equal(unlink(pin), 0);
	assert_int_equal(gc().repaired, 1);
	assert_intact("c11", cg_a);
	assert_false(ct_holds(ep));
	assert_int_equal(ct_budget(ep), ctx->cfg.ct_entries);

	assert_int_equal(detach("c11"), 0);
	assert_gone(ep);
	assert_clean();
}

/* A restart after a lost poststop: same id, another cgroup. */
static void test_new_cgroup(void **state)
{
	uint32_t ep;

	(void)state;
	assert_int_equal(attach("c7", cg_a), 0);
	ep = endpoint_of("c7");
	assert_int_equal(attach("c7", cg_b), 0);
	assert_intact("c7", cg_b);
	if (endpoint_of("c7") != ep)
		assert_gone(ep);
	assert_int_equal(detach("c7"), 0);
	assert_clean();
}

/* Two containers may not share a cgroup; the refused one leaves nothing. */
static void test_cgroup_taken(void **state)
{
	size_t ids;

	(void)state;
	assert_int_equal(attach("c8", cg_a), 0);
	ids = count_dir(ctx->ids_dir);
	assert_int_equal(attach("c9", cg_a), -EEXIST);
	assert_int_equal(count_dir(ctx->ids_dir), ids);
	assert_intact("c8", cg_a);
	assert_int_equal(detach("c8"), 0);
	assert_clean();
}

/* The sweep deletes map entries of free ids only. */
static void test_sweep(void **state)
{
	struct weir_policy_key k = {.prefixlen = WEIR_POLICY_KEY_FIXED_BITS + 32,
				    .ep_id = 9999,
				    .family = WEIR_V4,
				    .addr = {10, 9, 9, 9}};
	struct weir_policy_val v = {.all = 1};
	uint64_t cgid = 123456789;
	uint32_t ep = 9999;

	(void)state;
	assert_int_equal(attach("c10", cg_a), 0);
	assert_int_equal(bpf_map_update_elem(ctx->dp.map[WEIR_MAP_POLICY], &k, &v, BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(ctx->dp.map[WEIR_MAP_CGROUPS], &cgid, &ep, BPF_ANY),
			 0);
	assert_int_equal(gc().stale_entries, 2);
	assert_intact("c10", cg_a);
	assert_int_equal(detach("c10"), 0);
	assert_clean();
}

/* ---- setup -------------------------------------------------------------------------- */

static int setup(void **state)
{
	char mnt[PATH_MAX], conf[PATH_MAX + 32], text[3 * PATH_MAX];
	struct weir_error err = {};

	(void)state;
	weir_log_set_level(WEIR_LOG_WARN);
	snprintf(tmp, sizeof(tmp), "/tmp/weir-test-registry.XXXXXX");
	if (!mkdtemp(tmp) || weir_cgroup2_mount(mnt, sizeof(mnt)))
		return -1;
	snprintf(cg_a, sizeof(cg_a), "%s/weir-test-registry-%d-a", mnt, getpid());
	snprintf(cg_b, sizeof(cg_b), "%s/weir-test-registry-%d-b", mnt, getpid());
	snprintf(bpffs, sizeof(bpffs), "/sys/fs/bpf/weir-test-registry-%d", getpid());
	/* a fresh machine has no bpffs mounted: weir mounts one only at a configured path itself */
	if (weir_bpffs_ensure("/sys/fs/bpf", &err)) {
		print_message("setup: %s\n", err.msg);
		return -1;
	}
	if (mkdir(cg_a, 0755) || mkdir(cg_b, 0755) || mkdir(bpffs, 0700))
		return -1;
	snprintf(conf, sizeof(conf), "%s/weir.conf", tmp);
	snprintf(text, sizeof(text),
		 "{\"state_dir\": \"%s/state\", \"bpffs\": \"%s\", "
		 "\"endpoint_cgroups\": [\"/weir-test-registry-*\"]}",
		 tmp, bpffs);
	if (weir_write_file_atomic(conf, text, strlen(text), 0600) ||
	    weir_ctx_open(&ctx, conf, &err) || weir_ctx_datapath(ctx, true, &err)) {
		print_message("setup: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int teardown_all(void **state)
{
	struct weir_error err = {};
	char cmd[PATH_MAX * 2];

	(void)state;
	if (ctx) {
		struct weir_config cfg = ctx->cfg;

		weir_ctx_close(ctx);
		weir_datapath_unload(&cfg, &err);
	}
	rmdir(cg_a);
	rmdir(cg_b);
	rmdir(bpffs);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attach_detach),
		cmocka_unit_test(test_crash_after_id),
		cmocka_unit_test(test_crash_after_keys),
		cmocka_unit_test(test_crash_inside_attach),
		cmocka_unit_test(test_crash_inside_detach),
		cmocka_unit_test(test_not_intact),
		cmocka_unit_test(test_ct_not_intact),
		cmocka_unit_test(test_new_cgroup),
		cmocka_unit_test(test_cgroup_taken),
		cmocka_unit_test(test_sweep),
	};

	if (getuid() != 0) {
		printf("1..0 # SKIP needs root (BPF maps, cgroups)\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, setup, teardown_all);
}
