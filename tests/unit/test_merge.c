/*
 * Merging an incremental chain: image_resolve_pages() takes each page from
 * the image itself or the newest ancestor that holds it; image_flatten()
 * writes a self-contained image with exactly those pages, in place or
 * elsewhere, and changes nothing when the chain is broken.
 *
 * The chain, one process with two anonymous areas:
 *   A = 16 pages at 0x10000, B = 1500 pages at 0x100000 (more than one
 *   PAGES record's worth once merged).
 *   g (full):  A 0-14 version 0, B 0-1499 version 0
 *   p (of g):  A 2-3 version 1; inherits A 0-1, A 4-14, B 0-1499
 *   c (of p):  A 3 and A 10 version 2; inherits A 0-2, A 4-9, A 11-13,
 *              B 0-1499 (A 14 was dropped: neither stored nor inherited)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "image/load.h"
#include "image/merge.h"
#include "unit_util.h"

#define PID    4343
#define A      0x10000ULL
#define A_NPG  16
#define B      0x100000ULL
#define B_NPG  1500

struct ctx {
	char *dir;
	char g[512], p[512], c[512], out[512];
};

static const uint8_t id_g[16] = { 'g' }, id_p[16] = { 'p' }, id_c[16] = { 'c' };

static uint8_t page_byte(uint64_t addr, int ver, size_t off)
{
	return (uint8_t)((addr >> 12) * 31 + ver * 101 + off * 7);
}

struct run { uint64_t vaddr, npages; int ver; };

/* One image: the areas above; stored runs; inherited (start, npages)
 * pairs per area. */
static void write_img(const char *dir, const uint8_t id[16], const uint8_t *pid_ptr,
		      const char *ppath, const struct run *st, size_t nst,
		      const uint64_t *inh_a, size_t n_inh_a, const uint64_t *inh_b, size_t n_inh_b)
{
	Rtcr__CpuInfo cpu = RTCR__CPU_INFO__INIT;
	Rtcr__Inventory inv = RTCR__INVENTORY__INIT;
	Rtcr__Creds creds = RTCR__CREDS__INIT;
	Rtcr__X86Regs regs = RTCR__X86_REGS__INIT;
	Rtcr__Thread th = RTCR__THREAD__INIT, *thp = &th;
	Rtcr__Process proc = RTCR__PROCESS__INIT;
	Rtcr__Vma va = RTCR__VMA__INIT, vb = RTCR__VMA__INIT, *vmas[2] = { &va, &vb };
	Rtcr__Mm mm = RTCR__MM__INIT;
	Rtcr__Files files = RTCR__FILES__INIT;
	struct img_stream *s;
	struct imgw w;

	mkdir(dir, 0700);
	cpu.vendor = "GenuineTest";
	inv.format_version = IMG_VERSION;
	inv.tool_version = "unit";
	inv.root_pid = PID;
	inv.kernel_release = "6.18";
	inv.boot_id = "boot";
	inv.cpu = &cpu;
	inv.image_id = (ProtobufCBinaryData){ 16, (uint8_t *)id };
	inv.page_size = PAGE_SIZE;
	if (pid_ptr) {
		inv.has_parent_id = 1;
		inv.parent_id = (ProtobufCBinaryData){ 16, (uint8_t *)pid_ptr };
		inv.parent_path = (char *)ppath;
	}
	th.tid = PID;
	th.regs = &regs;
	th.comm = "t";
	proc.pid = PID;
	proc.ppid = 1;
	proc.comm = "t";
	proc.creds = &creds;
	proc.cwd = "/";
	proc.root = "/";
	proc.n_threads = 1;
	proc.threads = &thp;
	va.start = A;
	va.end = A + A_NPG * PAGE_SIZE;
	va.prot = 3;
	va.kind = RTCR__VMA_KIND__ANON_PRIVATE;
	va.n_inherited = n_inh_a;
	va.inherited = (uint64_t *)inh_a;
	vb = va;
	vb.start = B;
	vb.end = B + B_NPG * PAGE_SIZE;
	vb.n_inherited = n_inh_b;
	vb.inherited = (uint64_t *)inh_b;
	for (size_t i = 0; i < nst; i++)
		(st[i].vaddr < B ? &va : &vb)->pages_stored += st[i].npages;
	mm.n_vmas = 2;
	mm.vmas = vmas;
	files.pid = PID;

	assert_int_equal(img_sink_file(dir, IMG_FILE_NAME, &s), 0);
	assert_int_equal(imgw_begin(&w, s, id), 0);
	assert_int_equal(imgw_put_pb(&w, REC_INVENTORY, &inv.base), 0);
	assert_int_equal(imgw_put_pb(&w, REC_PROCESS, &proc.base), 0);
	assert_int_equal(imgw_put_pb(&w, REC_MM, &mm.base), 0);
	assert_int_equal(imgw_put_pb(&w, REC_FILES, &files.base), 0);
	/* One PAGES record per stored run. */
	for (size_t i = 0; i < nst; i++) {
		struct img_page_run r = { st[i].vaddr, st[i].npages };
		uint8_t *d = xmalloc(st[i].npages * PAGE_SIZE);
		for (uint64_t k = 0; k < st[i].npages; k++)
			for (size_t o = 0; o < PAGE_SIZE; o++)
				d[k * PAGE_SIZE + o] = page_byte(st[i].vaddr + k * PAGE_SIZE, st[i].ver, o);
		assert_int_equal(imgw_put_pages(&w, PID, &r, 1, d, st[i].npages), 0);
		free(d);
	}
	assert_int_equal(imgw_finish(&w), 0);
	imgw_release(&w);
	img_close(s);
}

static const struct run st_g[] = { { A, 15, 0 }, { B, B_NPG, 0 } };
static const struct run st_p[] = { { A + 2 * PAGE_SIZE, 2, 1 } };
static const uint64_t inh_p_a[] = { A, 2, A + 4 * PAGE_SIZE, 11 };
static const uint64_t inh_all_b[] = { B, B_NPG };
static const struct run st_c[] = { { A + 10 * PAGE_SIZE, 1, 2 }, { A + 3 * PAGE_SIZE, 1, 2 } };
static const uint64_t inh_c_a[] = { A, 3, A + 4 * PAGE_SIZE, 6, A + 11 * PAGE_SIZE, 3 };

/* The version page 'addr' has in c, -1 if c has no data for it. */
static int want_ver(uint64_t addr)
{
	uint64_t i = (addr - A) / PAGE_SIZE;
	if (addr >= B)
		return 0;
	if (i == 3 || i == 10)
		return 2;
	if (i == 2)
		return 1;
	return i == 14 || i == 15 ? -1 : 0;
}

static void check_page(uint64_t addr, const uint8_t *d)
{
	int v = want_ver(addr);
	assert_true(v >= 0);
	for (size_t o = 0; o < PAGE_SIZE; o += 511)
		if (d[o] != page_byte(addr, v, o))
			fail_msg("page %#llx byte %zu: not version %d", (unsigned long long)addr, o, v);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	c->dir = tmpdir_make();
	snprintf(c->g, sizeof(c->g), "%s/g", c->dir);
	snprintf(c->p, sizeof(c->p), "%s/p", c->dir);
	snprintf(c->c, sizeof(c->c), "%s/c", c->dir);
	snprintf(c->out, sizeof(c->out), "%s/out", c->dir);
	write_img(c->g, id_g, NULL, NULL, st_g, ARRAY_SIZE(st_g), NULL, 0, NULL, 0);
	write_img(c->p, id_p, id_g, "../g", st_p, ARRAY_SIZE(st_p), inh_p_a, ARRAY_SIZE(inh_p_a),
		  inh_all_b, 2);
	write_img(c->c, id_c, id_p, "../p", st_c, ARRAY_SIZE(st_c), inh_c_a, ARRAY_SIZE(inh_c_a),
		  inh_all_b, 2);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	tmpdir_remove(c->dir);
	free(c);
	return 0;
}

static void test_resolve_newest_first(void **state)
{
	struct ctx *c = *state;
	struct loaded_image im;
	struct img_page_src *s;
	size_t n;
	uint64_t total = 0, prev_end = 0;

	assert_int_equal(image_load(c->c, &im), 0);
	assert_int_equal(image_load_chain(&im), 0);
	assert_int_equal(image_resolve_pages(&im, 0, 0, &s, &n), 0);
	for (size_t i = 0; i < n; i++) {
		assert_true(s[i].vaddr >= prev_end);            /* sorted, no overlap */
		/* never across the two areas */
		assert_true(s[i].vaddr >= B || s[i].vaddr + s[i].npages * PAGE_SIZE <= A + A_NPG * PAGE_SIZE);
		for (uint64_t k = 0; k < s[i].npages; k++)
			check_page(s[i].vaddr + k * PAGE_SIZE, (const uint8_t *)s[i].data + k * PAGE_SIZE);
		total += s[i].npages;
		prev_end = s[i].vaddr + s[i].npages * PAGE_SIZE;
	}
	assert_int_equal(total, 14 + B_NPG);
	free(s);
	image_unload(&im);
}

static void test_resolve_missing_page(void **state)
{
	struct ctx *c = *state;
	static const uint64_t inh_a[] = { A, 3, A + 4 * PAGE_SIZE, 6, A + 11 * PAGE_SIZE, 3,
					  A + 15 * PAGE_SIZE, 1 };
	struct loaded_image im;
	struct img_page_src *s;
	size_t n;

	/* c inherits A 15 too, which no image ever held. */
	write_img(c->c, id_c, id_p, "../p", st_c, ARRAY_SIZE(st_c), inh_a, ARRAY_SIZE(inh_a),
		  inh_all_b, 2);
	assert_int_equal(image_load(c->c, &im), 0);
	assert_int_equal(image_load_chain(&im), 0);
	log_capture_begin();
	assert_int_equal(image_resolve_pages(&im, 0, 0, &s, &n), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "1 pages it inherits (the first at 0x1f000) are in none"));
	image_unload(&im);
}

static void test_resolve_stored_and_inherited(void **state)
{
	struct ctx *c = *state;
	static const uint64_t inh_a[] = { A, 4 };      /* A 3 is also stored */
	struct loaded_image im;
	struct img_page_src *s;
	size_t n;

	write_img(c->c, id_c, id_p, "../p", st_c, ARRAY_SIZE(st_c), inh_a, ARRAY_SIZE(inh_a),
		  inh_all_b, 2);
	assert_int_equal(image_load(c->c, &im), 0);
	assert_int_equal(image_load_chain(&im), 0);
	log_capture_begin();
	assert_int_equal(image_resolve_pages(&im, 0, 0, &s, &n), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "both stored and inherited"));
	image_unload(&im);
}

/* The merged image: no parent, every page stored, the right data. */
static void check_merged(const char *dir)
{
	struct loaded_image im;
	uint64_t seen = 0;

	assert_int_equal(image_load(dir, &im), 0);
	assert_false(im.inv->has_parent_id);
	assert_null(im.inv->parent_path);
	assert_int_equal(im.total_pages, 14 + B_NPG);
	assert_true(im.nr_pages_recs >= 2);
	assert_int_equal(im.mm[0]->vmas[0]->pages_stored, 14);
	assert_int_equal(im.mm[0]->vmas[1]->pages_stored, B_NPG);
	for (size_t k = 0; k < 2; k++) {
		assert_int_equal(im.mm[0]->vmas[k]->n_inherited, 0);
		assert_int_equal(im.mm[0]->vmas[k]->pages_inherited, 0);
	}
	for (uint32_t r = 0; r < im.nr_pages_recs; r++) {
		const struct img_pages_hdr *ph;
		const struct img_page_run *runs;
		const uint8_t *d;
		assert_int_equal(image_pages(&im, r, &ph, &runs, (const void **)&d), 0);
		assert_int_equal(ph->pid, PID);
		assert_true(ph->npages <= 1024);
		for (uint32_t k = 0; k < ph->nr_runs; k++)
			for (uint64_t p = 0; p < runs[k].npages; p++, d += PAGE_SIZE, seen++)
				check_page(runs[k].vaddr + p * PAGE_SIZE, d);
	}
	assert_int_equal(seen, 14 + B_NPG);
	image_unload(&im);
}

static void test_flatten_to_outdir(void **state)
{
	struct ctx *c = *state;
	struct flatten_result res;
	struct loaded_image im;

	assert_int_equal(image_flatten(c->c, c->out, 0, &res), 0);
	assert_false(res.self_contained);
	assert_int_equal(res.images, 3);
	assert_int_equal(res.pages, 14 + B_NPG);
	check_merged(c->out);
	assert_int_equal(image_load(c->out, &im), 0);
	assert_memory_not_equal(im.image_id, id_c, 16);
	image_unload(&im);
	/* The source is untouched. */
	assert_int_equal(image_load(c->c, &im), 0);
	assert_true(im.inv->has_parent_id);
	image_unload(&im);
}

static void test_flatten_in_place_keep_id(void **state)
{
	struct ctx *c = *state;
	struct flatten_result res;
	struct loaded_image im;
	char cmd[1200];

	assert_int_equal(image_flatten(c->c, NULL, IMG_FLATTEN_KEEP_ID, &res), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", c->g, c->p);
	assert_int_equal(system(cmd), 0);
	check_merged(c->c);
	assert_int_equal(image_load(c->c, &im), 0);
	assert_memory_equal(im.image_id, id_c, 16);
	image_unload(&im);
	/* Merging a full image in place: nothing to do. */
	assert_int_equal(image_flatten(c->c, NULL, 0, &res), 0);
	assert_true(res.self_contained);
	assert_int_equal(image_load(c->c, &im), 0);
	assert_memory_equal(im.image_id, id_c, 16);
	image_unload(&im);
}

static void test_flatten_broken_chain(void **state)
{
	struct ctx *c = *state;
	char from[600], cmd[1200];
	char *before, *after;
	ssize_t blen, alen;

	snprintf(from, sizeof(from), "%s/%s", c->c, IMG_FILE_NAME);
	blen = read_file(from, &before);
	assert_true(blen > 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->g);
	assert_int_equal(system(cmd), 0);
	log_capture_begin();
	assert_true(image_flatten(c->c, NULL, 0, NULL) < 0);
	assert_non_null(strstr(log_capture_end(), "/g cannot be used (the chain is broken)"));
	alen = read_file(from, &after);
	assert_int_equal(alen, blen);
	assert_memory_equal(before, after, blen);
	assert_false(path_exists(c->c, ".image.rtcr.partial"));
	assert_int_equal(dir_entries(c->c), 1);
	free(before);
	free(after);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_resolve_newest_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_missing_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_stored_and_inherited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flatten_to_outdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flatten_in_place_keep_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flatten_broken_chain, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
