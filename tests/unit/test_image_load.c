/*
 * image_load() on image directories crafted in a temporary directory:
 * a good image, missing files, missing or duplicate records, foreign
 * inventory, truncation at every byte and a flipped bit at every byte
 * (caught by image_load or, for page data, by image_pages()).
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

#include "image/load.h"
#include "img_build.h"
#include "unit_util.h"

struct ctx {
	char *dir;
	char path[4096];
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	c->dir = tmpdir_make();
	snprintf(c->path, sizeof(c->path), "%s/%s", c->dir, IMG_FILE_NAME);
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

static void put_image(struct ctx *c, unsigned opts)
{
	size_t len;
	void *img = ti_build(opts, &len);
	ti_write_file(c->path, img, len);
	free(img);
}

/* image_load + image_pages of every record: 0 if all accepted. */
static int load_all(const char *dir)
{
	struct loaded_image im;
	int ret = image_load(dir, &im);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < im.nr_pages_recs && !ret; i++) {
		const struct img_pages_hdr *h;
		const struct img_page_run *r;
		const void *d;
		ret = image_pages(&im, i, &h, &r, &d);
	}
	image_unload(&im);
	return ret;
}

static void test_load_good(void **state)
{
	struct ctx *c = *state;
	struct loaded_image im;

	put_image(c, TI_OPTIONAL_REC);
	assert_int_equal(image_load(c->dir, &im), 0);
	assert_memory_equal(im.image_id, ti_image_id, 16);
	assert_non_null(im.inv);
	assert_int_equal(im.nprocs, 1);
	assert_non_null(im.procs[0]);
	assert_non_null(im.mm[0]);
	assert_non_null(im.files[0]);
	assert_string_equal(im.inv->tool_version, "rtcr-unit-test");
	assert_int_equal(im.procs[0]->pid, TI_PID);
	assert_int_equal(image_proc_index(&im, TI_PID), 0);
	assert_int_equal(im.mm[0]->n_vmas, 2);
	assert_int_equal(im.files[0]->n_fds, 1);
	assert_int_equal(im.nr_pages_recs, ARRAY_SIZE(ti_pages_recs));
	assert_int_equal(im.total_pages, ti_total_pages(0));
	for (uint32_t i = 0; i < im.nr_pages_recs; i++) {
		const struct ti_pages_rec *want = &ti_pages_recs[i];
		uint64_t np = ti_runs_npages(want->runs, want->nr_runs);
		const struct img_pages_hdr *h;
		const struct img_page_run *r;
		const void *d;
		void *expect;

		assert_int_equal(image_pages(&im, i, &h, &r, &d), 0);
		assert_int_equal(h->nr_runs, want->nr_runs);
		assert_int_equal(h->npages, np);
		assert_memory_equal(r, want->runs, want->nr_runs * sizeof(*r));
		/* Mapped data is page aligned in the file, hence in memory. */
		assert_int_equal((uintptr_t)d % PAGE_SIZE, 0);
		expect = ti_runs_data(want->runs, want->nr_runs);
		assert_memory_equal(d, expect, np * PAGE_SIZE);
		free(expect);
	}
	image_unload(&im);
	assert_null(im.inv);
	assert_null(im.src);
}

static void test_load_no_image(void **state)
{
	struct ctx *c = *state;
	struct loaded_image im;
	char p[4096];

	/* Empty directory. */
	log_capture_begin();
	assert_int_equal(image_load(c->dir, &im), -ENOENT);
	assert_non_null(strstr(log_capture_end(), "no image here"));

	/* Only the partial file of an unfinished dump. */
	snprintf(p, sizeof(p), "%s/.image.rtcr.partial", c->dir);
	{
		size_t len;
		void *img = ti_build(TI_NO_END, &len);
		ti_write_file(p, img, len);
		free(img);
	}
	log_capture_begin();
	assert_int_equal(image_load(c->dir, &im), -ENOENT);
	assert_non_null(strstr(log_capture_end(), "no image here"));
	unlink(p);

	/* Directory that does not exist. */
	snprintf(p, sizeof(p), "%s/nope", c->dir);
	log_quiet(true);
	assert_int_equal(image_load(p, &im), -ENOENT);

	/* image.rtcr is a directory. */
	assert_int_equal(mkdir(c->path, 0700), 0);
	log_quiet(false);
	log_capture_begin();
	assert_int_equal(image_load(c->dir, &im), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "not a regular file"));
	rmdir(c->path);

	/* Empty file. */
	ti_write_file(c->path, "", 0);
	log_capture_begin();
	assert_int_equal(image_load(c->dir, &im), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "too short"));

	/* Unfinished image under the final name. */
	put_image(c, TI_NO_END);
	log_capture_begin();
	assert_int_equal(image_load(c->dir, &im), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "no END record"));
}

static void test_load_missing_records(void **state)
{
	static const struct {
		unsigned opts;
		const char *name;
	} cases[] = {
		{ TI_OMIT_INV, "inventory" },
		{ TI_OMIT_PROC, "process" },
		{ TI_OMIT_MM, "mm" },
		{ TI_OMIT_FILES, "files" },
		{ TI_OMIT_INV | TI_OMIT_PROC | TI_OMIT_MM | TI_OMIT_FILES | TI_OMIT_PAGES, "inventory" },
	};
	struct ctx *c = *state;
	struct loaded_image im;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char want[64];
		const char *log;
		put_image(c, cases[i].opts);
		log_capture_begin();
		assert_int_equal(image_load(c->dir, &im), -EINVAL);
		log = log_capture_end();
		snprintf(want, sizeof(want), "lacks its %s record", cases[i].name);
		if (!strstr(log, want))
			fail_msg("case %zu: expected \"%s\" in: %s", i, want, log);
		/* Failed loads leave nothing behind. */
		assert_null(im.src);
		assert_null(im.inv);
	}
	/* No PAGES records at all is fine (nothing stored). */
	put_image(c, TI_OMIT_PAGES);
	assert_int_equal(image_load(c->dir, &im), 0);
	assert_int_equal(im.nr_pages_recs, 0);
	assert_int_equal(im.total_pages, 0);
	image_unload(&im);
}

static void test_load_inconsistent_records(void **state)
{
	struct ctx *c = *state;
	struct loaded_image im;

	put_image(c, TI_DUP_INV);
	log_capture_begin();
	assert_int_equal(image_load(c->dir, &im), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "two inventory records"));

	put_image(c, TI_BAD_INV_ID);
	log_capture_begin();
	assert_int_equal(image_load(c->dir, &im), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "id mismatch"));

	/* A process has at least its main thread: a record without is malformed. */
	put_image(c, TI_NO_THREADS);
	log_capture_begin();
	assert_int_equal(image_load(c->dir, &im), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "0 threads"));

	/* A metadata record that does not decode (checksums are right). */
	{
		struct img_stream *s;
		struct imgw w;
		assert_int_equal(img_sink_file(c->dir, IMG_FILE_NAME, &s), 0);
		assert_int_equal(imgw_begin(&w, s, ti_image_id), 0);
		assert_int_equal(imgw_put(&w, REC_INVENTORY, 0, "\xff\xff\xff", 3), 0);
		assert_int_equal(ti_put_records(&w, TI_OMIT_INV | TI_SMALL), 0);
		assert_int_equal(imgw_finish(&w), 0);
		imgw_release(&w);
		img_close(s);
	}
	log_capture_begin();
	assert_int_equal(image_load(c->dir, &im), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "cannot decode"));

	/* An optional record of a newer rtcr is skipped. */
	put_image(c, TI_OPTIONAL_REC | TI_SMALL);
	assert_int_equal(load_all(c->dir), 0);
}

static void test_load_truncation_every_offset(void **state)
{
	struct ctx *c = *state;
	size_t len;
	uint8_t *img = ti_build(TI_SMALL | TI_OPTIONAL_REC, &len);

	ti_write_file(c->path, img, len);
	assert_int_equal(load_all(c->dir), 0);
	log_quiet(true);
	for (size_t n = 0; n < len; n++) {
		int ret;
		ti_write_file(c->path, img, n);
		ret = load_all(c->dir);
		if (ret >= 0) {
			log_quiet(false);
			fail_msg("image file truncated to %zu of %zu bytes was loaded", n, len);
		}
	}
	log_quiet(false);
	free(img);
}

/* Every byte is covered: image_load refuses, or image_pages does when
 * the damage is in page data (verified only when used). */
static void test_load_bitflip_every_byte(void **state)
{
	struct ctx *c = *state;
	size_t len;
	uint8_t *img = ti_build(TI_SMALL | TI_OPTIONAL_REC, &len);

	log_quiet(true);
	for (size_t i = 0; i < len; i++) {
		int ret;
		img[i] ^= 1u << (i % 8);
		ti_write_file(c->path, img, len);
		img[i] ^= 1u << (i % 8);
		ret = load_all(c->dir);
		if (ret >= 0) {
			log_quiet(false);
			fail_msg("image file with bit %zu of byte %zu flipped was loaded", i % 8, i);
		}
	}
	log_quiet(false);
	free(img);
}

/* image_pages refuses record bad, saying msg, and accepts every other. */
static void only_record_refused(struct loaded_image *im, uint32_t bad, const char *msg)
{
	for (uint32_t i = 0; i < im->nr_pages_recs; i++) {
		const struct img_pages_hdr *h;
		const struct img_page_run *r;
		const void *d;
		int ret;
		log_capture_begin();
		ret = image_pages(im, i, &h, &r, &d);
		if (i == bad) {
			assert_int_equal(ret, -EINVAL);
			assert_non_null(strstr(log_capture_end(), msg));
		} else {
			log_capture_end();
			assert_int_equal(ret, 0);
		}
	}
}

/* Damaged page data: image_load succeeds (it does not hash pages),
 * image_pages refuses that record and only that one. */
static void test_load_page_data_damage(void **state)
{
	struct ctx *c = *state;
	struct loaded_image im;
	size_t len;
	uint8_t *img = ti_build(0, &len);
	uint64_t off;

	ti_write_file(c->path, img, len);
	assert_int_equal(image_load(c->dir, &im), 0);
	off = im.pages_off[1] + im.pages_len[1] - 100;   /* in its last page */
	image_unload(&im);

	img[off] ^= 0x40;
	ti_write_file(c->path, img, len);
	assert_int_equal(image_load(c->dir, &im), 0);
	only_record_refused(&im, 1, "corrupted");
	image_unload(&im);
	free(img);
}

/* The INDEX path and the walk load the same image identically. */
static void test_load_indexed_same_as_walk(void **state)
{
	struct ctx *c = *state;
	struct loaded_image a, b;

	put_image(c, TI_OPTIONAL_REC);
	assert_int_equal(image_load(c->dir, &a), 0);
	assert_true(a.indexed);
	setenv("RTCR_IMAGE_WALK", "1", 1);
	assert_int_equal(image_load(c->dir, &b), 0);
	unsetenv("RTCR_IMAGE_WALK");
	assert_false(b.indexed);
	assert_int_equal(a.nprocs, b.nprocs);
	assert_int_equal(a.procs[0]->pid, b.procs[0]->pid);
	assert_int_equal(a.mm[0]->n_vmas, b.mm[0]->n_vmas);
	assert_int_equal(a.total_pages, b.total_pages);
	assert_int_equal(a.nr_pages_recs, b.nr_pages_recs);
	assert_memory_equal(a.pages_off, b.pages_off, a.nr_pages_recs * sizeof(uint64_t));
	assert_memory_equal(a.pages_len, b.pages_len, a.nr_pages_recs * sizeof(uint64_t));
	assert_memory_equal(a.pages_csum, b.pages_csum, a.nr_pages_recs * sizeof(uint64_t));
	assert_memory_equal(a.pages_pid, b.pages_pid, a.nr_pages_recs * sizeof(int32_t));
	image_unload(&a);
	image_unload(&b);
}

/* A damaged INDEX: not used; the walk reads it as any record and names it. */
static void test_load_damaged_index_walks(void **state)
{
	struct ctx *c = *state;
	struct loaded_image im;
	size_t len, n;
	uint8_t *img = ti_build(0, &len);
	struct img_stream *src = img_source_mem(img, len);
	struct img_index_ent *e;

	/* The last entry's bytes lie just before END's and INDEX's headers. */
	assert_int_equal(imgr_index(src, &e, &n), 0);
	img_close(src);
	img[e[n - 1].off + sizeof(struct img_rec_hdr) + e[n - 1].len + sizeof(struct img_rec_hdr) + 8] ^= 1;
	free(e);
	ti_write_file(c->path, img, len);
	log_capture_begin();
	assert_int_equal(image_load(c->dir, &im), -EINVAL);
	/* The walk reads the INDEX as a record and names it. */
	assert_non_null(strstr(log_capture_end(), "index record at byte"));
	free(img);
}

/* A damaged PAGES record header: a load through the INDEX does not read
 * it; image_pages does, and names it. */
static void test_load_pages_header_damage(void **state)
{
	struct ctx *c = *state;
	struct loaded_image im;
	char want[64];
	size_t len;
	uint8_t *img = ti_build(0, &len);
	uint64_t hdr;

	ti_write_file(c->path, img, len);
	assert_int_equal(image_load(c->dir, &im), 0);
	hdr = im.pages_off[1] - sizeof(struct img_rec_hdr);
	image_unload(&im);
	img[hdr + 10] ^= 0x01;   /* in its length */
	ti_write_file(c->path, img, len);
	assert_int_equal(image_load(c->dir, &im), 0);
	assert_true(im.indexed);
	snprintf(want, sizeof(want), "record header at byte %llu is corrupted",
		 (unsigned long long)hdr);
	only_record_refused(&im, 1, want);
	image_unload(&im);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_load_good, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_no_image, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_missing_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_inconsistent_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_truncation_every_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_bitflip_every_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_page_data_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_indexed_same_as_walk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_damaged_index_walks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_pages_header_damage, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
