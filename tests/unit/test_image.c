/*
 * Image writer/reader and streams (src/image/): round trips through every
 * backend, the file sink's commit semantics, and the reader's rejection of
 * every kind of damage (header, truncation at every byte, a flipped bit at
 * every byte, unknown records, END mismatch, trailing garbage, malformed
 * PAGES payloads).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "img_build.h"
#include "unit_util.h"

/* ---- helpers ---- */

static void fix_file_hdr_csum(void *buf)
{
	struct img_file_hdr *h = buf;
	h->hcsum = XXH3_64bits(h, offsetof(struct img_file_hdr, hcsum));
}

/* Stream offsets of the records of a valid image (END included). */
static int rec_offsets(const uint8_t *buf, size_t len, size_t *offs, int max)
{
	size_t off = sizeof(struct img_file_hdr);
	int n = 0;
	while (off + sizeof(struct img_rec_hdr) <= len && n < max) {
		struct img_rec_hdr h;
		memcpy(&h, buf + off, sizeof(h));
		offs[n++] = off;
		off += sizeof(h) + h.len;
	}
	return n;
}

/* Checks everything in an image written by ti_write(opts). */
static void verify_standard(struct img_stream *s, unsigned opts)
{
	static const uint32_t meta_order[] = { REC_INVENTORY, REC_PROCESS, REC_MM, REC_FILES };
	struct imgr r;
	struct img_rec rec;
	uint32_t first, count, pi = 0;
	int n = 0, nindex = 0, ret;

	ti_pages_selection(opts, &first, &count);
	assert_int_equal(imgr_begin(&r, s), 0);
	assert_int_equal(r.version, IMG_VERSION);
	assert_memory_equal(r.image_id, ti_image_id, 16);

	while ((ret = imgr_next(&r, &rec)) > 0) {
		const void *p;
		if (n < 4)
			assert_int_equal(rec.type, meta_order[n]);
		assert_int_equal(imgr_payload(&r, &rec, &p), 0);
		switch (rec.type) {
		case REC_INVENTORY: {
			Rtcr__Inventory *inv = imgr_unpack(&rec, &rtcr__inventory__descriptor, p);
			assert_non_null(inv);
			assert_string_equal(inv->tool_version, "rtcr-unit-test");
			assert_int_equal(inv->root_pid, TI_PID);
			assert_int_equal(inv->page_size, PAGE_SIZE);
			assert_int_equal(inv->image_id.len, 16);
			assert_memory_equal(inv->image_id.data, ti_image_id, 16);
			assert_non_null(inv->cpu);
			assert_string_equal(inv->cpu->vendor, "GenuineTest");
			assert_int_equal(inv->cpu->n_features, 8);
			assert_int_equal(inv->cpu->features[2], 0x20);
			rtcr__inventory__free_unpacked(inv, NULL);
			break;
		}
		case REC_PROCESS: {
			Rtcr__Process *pr = imgr_unpack(&rec, &rtcr__process__descriptor, p);
			assert_non_null(pr);
			assert_int_equal(pr->pid, TI_PID);
			assert_string_equal(pr->comm, "target");
			assert_int_equal(pr->n_threads, 1);
			assert_int_equal(pr->threads[0]->regs->rip, 0x401000);
			assert_int_equal(pr->threads[0]->regs->orig_rax, (uint64_t)-1);
			assert_int_equal(pr->threads[0]->xstate.len, 64);
			assert_int_equal(pr->threads[0]->xstate.data[63], 0x5c);
			rtcr__process__free_unpacked(pr, NULL);
			break;
		}
		case REC_MM: {
			Rtcr__Mm *mm = imgr_unpack(&rec, &rtcr__mm__descriptor, p);
			assert_non_null(mm);
			assert_int_equal(mm->n_vmas, 2);
			assert_string_equal(mm->vmas[0]->file->path, "/usr/bin/target");
			assert_int_equal(mm->vmas[1]->end, 0x90000);
			assert_non_null(mm->exe);
			rtcr__mm__free_unpacked(mm, NULL);
			break;
		}
		case REC_FILES: {
			Rtcr__Files *f = imgr_unpack(&rec, &rtcr__files__descriptor, p);
			assert_non_null(f);
			assert_int_equal(f->n_fds, 1);
			assert_int_equal(f->fds[0]->kind, RTCR__FD_KIND__FD_INHERIT);
			assert_string_equal(f->fds[0]->inherit->desc, "pipe:[1234]");
			rtcr__files__free_unpacked(f, NULL);
			break;
		}
		case REC_PAGES: {
			const struct img_pages_hdr *ph;
			const struct img_page_run *runs;
			const uint8_t *data;
			const struct ti_pages_rec *want;
			uint64_t np;
			void *expect;

			assert_true(pi < count);
			want = &ti_pages_recs[first + pi++];
			np = ti_runs_npages(want->runs, want->nr_runs);
			assert_int_equal(rec.flags, 0);
			assert_int_equal(img_pages_parse(p, rec.len, &ph, &runs, (const void **)&data), 0);
			assert_ptr_equal(ph, p);
			assert_int_equal(ph->pid, TI_PID);
			assert_int_equal(ph->nr_runs, want->nr_runs);
			assert_int_equal(ph->npages, np);
			assert_memory_equal(runs, want->runs, want->nr_runs * sizeof(*runs));
			/* The format's promise: page data on a 4 KiB boundary of the stream. */
			assert_int_equal((rec.off + ph->data_off) % IMG_ALIGN, 0);
			assert_int_equal(rec.len, ph->data_off + np * PAGE_SIZE);
			expect = ti_runs_data(want->runs, want->nr_runs);
			assert_memory_equal(data, expect, np * PAGE_SIZE);
			free(expect);
			break;
		}
		case REC_INDEX: {
			/* Every record before it, in order, where it lies. */
			const struct img_index_ent *e = p;
			assert_int_equal(rec.flags, RECF_OPTIONAL);
			assert_int_equal(rec.len, n * sizeof(*e));
			assert_int_equal(e[0].type, REC_INVENTORY);
			assert_int_equal(e[0].off, sizeof(struct img_file_hdr));
			for (int k = 1; k < n; k++)
				assert_int_equal(e[k].off, e[k - 1].off + sizeof(struct img_rec_hdr) +
						 e[k - 1].len);
			assert_int_equal(rec.off, e[n - 1].off + 2 * sizeof(struct img_rec_hdr) +
					 e[n - 1].len);
			nindex++;
			break;
		}
		case TI_OPT_TYPE:
			assert_true(opts & TI_OPTIONAL_REC);
			assert_int_equal(rec.flags, RECF_OPTIONAL);
			assert_int_equal(rec.len, sizeof(TI_OPT_PAYLOAD));
			assert_memory_equal(p, TI_OPT_PAYLOAD, sizeof(TI_OPT_PAYLOAD));
			break;
		default:
			fail_msg("unexpected record type %u", rec.type);
		}
		n++;
	}
	assert_int_equal(ret, 0);
	assert_int_equal(pi, count);
	assert_int_equal(nindex, 1);
	assert_int_equal(n, 4 + count + !!(opts & TI_OPTIONAL_REC) + 1);
	assert_int_equal(r.nr_records, n);
	assert_int_equal(r.pages, ti_total_pages(opts));
	/* Stays at the end. */
	assert_int_equal(imgr_next(&r, &rec), 0);
	if (s->size)
		assert_int_equal(s->pos, s->size);
	imgr_release(&r);
}

/* An fd holding buf, positioned at 0. */
static int memfd_with(const void *buf, size_t len)
{
	int fd = memfd_create("rtcr-test-img", MFD_CLOEXEC);
	assert_true(fd >= 0);
	if (len)
		assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* Accepts (0) or rejects (<0) buf read through a plain fd (no mapping). */
static int read_all_fd(const void *buf, size_t len)
{
	int fd = memfd_with(buf, len), ret;
	struct img_stream *s = img_stream_fd(fd, "<memfd>");
	ret = ti_read_all(s);
	img_close(s);
	close(fd);
	return ret;
}

/* An END record written by hand; 'which' selects a wrong field. */
enum { END_OK, END_NR, END_BYTES, END_PAGES, END_CHAIN, END_GARBAGE, END_EMPTY };

static void put_end(struct imgw *w, int which)
{
	Rtcr__End end = RTCR__END__INIT;
	uint64_t at = w->s->pos;
	uint8_t pb[256];
	size_t pblen;

	/* As imgw_end(): the INDEX of the records so far, then END. */
	assert_int_equal(imgw_put(w, REC_INDEX, RECF_OPTIONAL, w->idx, w->nidx * sizeof(*w->idx)), 0);
	end.has_index_off = 1;
	end.index_off = at;
	end.nr_records = w->nr_records + (which == END_NR);
	end.payload_bytes = w->payload_bytes - (which == END_BYTES);
	end.pages = w->pages + (which == END_PAGES);
	end.chain_hash = XXH3_64bits_digest(w->chain) ^ (which == END_CHAIN);
	pblen = rtcr__end__pack(&end, pb);
	if (which == END_GARBAGE) {
		memset(pb, 0xff, 8);
		pblen = 8;
	} else if (which == END_EMPTY) {
		pblen = 0;
	}
	assert_int_equal(imgw_put(w, REC_END, 0, pb, pblen), 0);
}

static void *build_with_end(int which, size_t *len)
{
	struct img_stream *sink = img_sink_mem();
	struct imgw w;
	const void *d;
	void *copy;

	assert_int_equal(imgw_begin(&w, sink, ti_image_id), 0);
	assert_int_equal(ti_put_records(&w, TI_SMALL), 0);
	put_end(&w, which);
	imgw_release(&w);
	d = img_mem_data(sink, len);
	copy = malloc(*len);
	memcpy(copy, d, *len);
	img_close(sink);
	return copy;
}

/* ---- round trips ---- */

static void test_roundtrip_mem(void **state)
{
	unsigned opts[] = { 0, TI_OPTIONAL_REC, TI_SMALL, TI_OMIT_PAGES, TI_OMIT_PAGES | TI_OPTIONAL_REC };

	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		struct img_stream *sink = img_sink_mem(), *src;
		const void *d;
		size_t len;

		assert_int_equal(ti_write(sink, opts[i]), 0);
		d = img_mem_data(sink, &len);
		assert_int_equal(sink->pos, len);
		assert_memory_equal(d, IMG_MAGIC, 8);
		src = img_source_mem(d, len);
		verify_standard(src, opts[i]);
		img_close(src);
		img_close(sink);
	}
}

/* The non-mapping path: payloads are read into the reader's buffer. */
static void test_roundtrip_fd_stream(void **state)
{
	size_t len;
	void *img = ti_build(TI_OPTIONAL_REC, &len);
	int fd = memfd_with(img, len);
	struct img_stream *s = img_stream_fd(fd, "<memfd>");

	verify_standard(s, TI_OPTIONAL_REC);
	assert_int_equal(s->pos, len);
	img_close(s);
	close(fd);

	/* And writing through a plain fd gives the same bytes. */
	fd = memfd_create("rtcr-test-out", MFD_CLOEXEC);
	s = img_stream_fd(fd, "<memfd>");
	assert_int_equal(ti_write(s, TI_OPTIONAL_REC), 0);
	img_close(s);
	{
		uint8_t *back = malloc(len + 1);
		assert_int_equal(pread(fd, back, len + 1, 0), (ssize_t)len);
		assert_memory_equal(back, img, len);
		free(back);
	}
	close(fd);
	free(img);
}

/* imgr_skip_pages counts pages without hashing; END still checks them. */
static void test_skip_pages(void **state)
{
	size_t len;
	void *img = ti_build(0, &len);
	struct img_stream *s = img_source_mem(img, len);
	struct imgr r;
	struct img_rec rec;
	uint64_t total = 0;
	int ret, nrec = 0;

	assert_int_equal(imgr_begin(&r, s), 0);
	while ((ret = imgr_next(&r, &rec)) > 0) {
		nrec++;
		if (rec.type == REC_PAGES) {
			uint64_t n = 0;
			assert_int_equal(imgr_skip_pages(&r, &rec, &n), 0);
			total += n;
		} else {
			assert_int_equal(imgr_skip(&r, &rec), 0);
		}
	}
	assert_int_equal(ret, 0);
	assert_int_equal(nrec, 8);   /* with the INDEX */
	assert_int_equal(total, ti_total_pages(0));
	imgr_release(&r);
	img_close(s);
	free(img);
}

/* An empty image (header + INDEX + END) is valid. */
static void test_empty_image(void **state)
{
	struct img_stream *sink = img_sink_mem(), *src;
	struct imgw w;
	struct imgr r;
	struct img_rec rec;
	const void *d;
	size_t len;

	assert_int_equal(imgw_begin(&w, sink, ti_image_id), 0);
	assert_int_equal(imgw_finish(&w), 0);
	imgw_release(&w);
	d = img_mem_data(sink, &len);
	src = img_source_mem(d, len);
	assert_int_equal(imgr_begin(&r, src), 0);
	assert_int_equal(imgr_next(&r, &rec), 1);
	assert_int_equal(rec.type, REC_INDEX);
	assert_int_equal(rec.len, 0);
	assert_int_equal(imgr_skip(&r, &rec), 0);
	assert_int_equal(imgr_next(&r, &rec), 0);
	assert_int_equal(r.nr_records, 1);
	imgr_release(&r);
	img_close(src);
	img_close(sink);
}

/* A PAGES record with no runs and no pages is well-formed. */
static void test_empty_pages_record(void **state)
{
	static const struct img_page_run dummy_run[1];
	static const uint8_t dummy_data[1];
	struct img_stream *sink = img_sink_mem();
	struct imgw w;
	const void *d;
	size_t len;

	assert_int_equal(imgw_begin(&w, sink, ti_image_id), 0);
	assert_int_equal(imgw_put_pages(&w, 1, dummy_run, 0, dummy_data, 0), 0);
	assert_int_equal(imgw_finish(&w), 0);
	imgw_release(&w);
	d = img_mem_data(sink, &len);
	assert_int_equal(ti_read_all_mem(d, len), 0);
	img_close(sink);
}

/* imgr_next() refuses to go on while a payload was not consumed. */
static void test_payload_not_consumed(void **state)
{
	size_t len;
	void *img = ti_build(TI_SMALL, &len);
	struct img_stream *s = img_source_mem(img, len);
	struct imgr r;
	struct img_rec rec;

	assert_int_equal(imgr_begin(&r, s), 0);
	assert_int_equal(imgr_next(&r, &rec), 1);
	log_capture_begin();
	assert_true(imgr_next(&r, &rec) < 0);
	assert_non_null(strstr(log_capture_end(), "not consumed"));
	imgr_release(&r);
	img_close(s);
	free(img);
}

/* ---- file sink ---- */


static void test_file_sink_commit(void **state)
{
	char *dir = tmpdir_make();
	struct img_stream *s;
	struct imgw w;
	char path[4096];

	assert_int_equal(img_sink_file(dir, IMG_FILE_NAME, &s), 0);
	assert_true(path_exists(dir, ".image.rtcr.partial"));
	assert_false(path_exists(dir, IMG_FILE_NAME));

	assert_int_equal(imgw_begin(&w, s, ti_image_id), 0);
	assert_int_equal(ti_put_records(&w, TI_OPTIONAL_REC), 0);
	/* Everything but END written: still nothing under the final name. */
	assert_false(path_exists(dir, IMG_FILE_NAME));
	assert_true(path_exists(dir, ".image.rtcr.partial"));

	assert_int_equal(imgw_finish(&w), 0);
	imgw_release(&w);
	assert_true(path_exists(dir, IMG_FILE_NAME));
	assert_false(path_exists(dir, ".image.rtcr.partial"));
	img_close(s);
	assert_true(path_exists(dir, IMG_FILE_NAME));
	assert_int_equal(dir_entries(dir), 1);

	snprintf(path, sizeof(path), "%s/%s", dir, IMG_FILE_NAME);
	assert_int_equal(img_source_file(path, &s), 0);
	verify_standard(s, TI_OPTIONAL_REC);
	img_close(s);
	tmpdir_remove(dir);
}

static void test_file_sink_uncommitted(void **state)
{
	char *dir = tmpdir_make();
	struct img_stream *s;
	struct imgw w;

	/* Records written, no END, closed. */
	assert_int_equal(img_sink_file(dir, IMG_FILE_NAME, &s), 0);
	assert_int_equal(imgw_begin(&w, s, ti_image_id), 0);
	assert_int_equal(ti_put_records(&w, 0), 0);
	imgw_release(&w);
	img_close(s);
	assert_false(path_exists(dir, IMG_FILE_NAME));
	assert_false(path_exists(dir, ".image.rtcr.partial"));
	assert_int_equal(dir_entries(dir), 0);

	/* Opened and closed at once. */
	assert_int_equal(img_sink_file(dir, IMG_FILE_NAME, &s), 0);
	img_close(s);
	assert_int_equal(dir_entries(dir), 0);

	/* Everything including a valid END written, but never committed. */
	assert_int_equal(img_sink_file(dir, IMG_FILE_NAME, &s), 0);
	assert_int_equal(imgw_begin(&w, s, ti_image_id), 0);
	assert_int_equal(ti_put_records(&w, TI_SMALL), 0);
	put_end(&w, END_OK);
	imgw_release(&w);
	assert_true(path_exists(dir, ".image.rtcr.partial"));
	img_close(s);
	assert_int_equal(dir_entries(dir), 0);
	tmpdir_remove(dir);
}

/* A partial file left by a killed dump does not block the next dump, and
 * a failed dump leaves an older complete image alone. */
static void test_file_sink_leftovers(void **state)
{
	char *dir = tmpdir_make();
	char p[4096], final[4096];
	struct img_stream *s;
	size_t len;
	void *img = ti_build(TI_SMALL, &len);

	snprintf(p, sizeof(p), "%s/.image.rtcr.partial", dir);
	ti_write_file(p, "junk of a killed dump", 21);
	snprintf(final, sizeof(final), "%s/%s", dir, IMG_FILE_NAME);
	ti_write_file(final, img, len);

	assert_int_equal(img_sink_file(dir, IMG_FILE_NAME, &s), 0);
	assert_int_equal(ti_write(s, TI_NO_END), 0);
	img_close(s);
	assert_false(path_exists(dir, ".image.rtcr.partial"));
	assert_true(path_exists(dir, IMG_FILE_NAME));
	assert_int_equal(img_source_file(final, &s), 0);
	verify_standard(s, TI_SMALL);
	img_close(s);

	/* Directory that does not exist: error, nothing created. */
	snprintf(p, sizeof(p), "%s/nonexistent", dir);
	log_capture_begin();
	assert_int_equal(img_sink_file(p, IMG_FILE_NAME, &s), -ENOENT);
	assert_non_null(strstr(log_capture_end(), "nonexistent"));
	assert_int_equal(dir_entries(dir), 1);
	free(img);
	tmpdir_remove(dir);
}

/* A write error mid-image (file size limit): the dump fails and leaves
 * neither the final nor the partial file. In a child: RLIMIT_FSIZE. */
static void test_file_sink_write_error(void **state)
{
	char *dir = tmpdir_make();
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = { 3 * 4096, 3 * 4096 };
		struct img_stream *s;
		int ret;
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl))
			_exit(90);
		if (img_sink_file(dir, IMG_FILE_NAME, &s))
			_exit(91);
		log_capture_begin();
		ret = ti_write(s, 0);
		if (ret != -EFBIG)
			_exit(1);
		if (!strstr(log_capture_end(), "File too large"))
			_exit(2);
		img_close(s);
		_exit(dir_entries(dir) == 0 ? 0 : 3);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	tmpdir_remove(dir);
}

/* Write errors on a plain fd are reported with the record they hit. */
static void test_fd_write_error(void **state)
{
	int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
	struct img_stream *s;
	const char *log;

	if (fd < 0)
		skip();
	s = img_stream_fd(fd, "/dev/full");
	log_capture_begin();
	assert_int_equal(ti_write(s, 0), -ENOSPC);
	log = log_capture_end();
	assert_non_null(strstr(log, "/dev/full"));
	assert_non_null(strstr(log, "No space left"));
	img_close(s);
	close(fd);
}

/* ---- file header ---- */

static void test_bad_magic(void **state)
{
	size_t len;
	uint8_t *img = ti_build(TI_SMALL, &len);

	img[0] = 'X';
	log_capture_begin();
	assert_int_equal(ti_read_all_mem(img, len), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "bad magic"));

	/* Even with a matching checksum. */
	fix_file_hdr_csum(img);
	log_capture_begin();
	assert_int_equal(ti_read_all_mem(img, len), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "bad magic"));

	/* Shorter than a header. */
	log_capture_begin();
	assert_int_equal(ti_read_all_mem(img, sizeof(struct img_file_hdr) - 1), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "too short"));
	free(img);
}

static void test_header_checksum(void **state)
{
	size_t len;
	uint8_t *img = ti_build(TI_SMALL, &len);
	struct img_file_hdr *h = (void *)img;

	h->image_id[3] ^= 0x10;
	log_capture_begin();
	assert_int_equal(ti_read_all_mem(img, len), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "header is corrupted"));
	h->image_id[3] ^= 0x10;
	assert_int_equal(ti_read_all_mem(img, len), 0);

	h->hcsum ^= 1ULL << 40;
	log_capture_begin();
	assert_int_equal(ti_read_all_mem(img, len), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "header is corrupted"));
	free(img);
}

static void test_header_version_and_fields(void **state)
{
	size_t len;
	uint8_t *img = ti_build(TI_SMALL, &len);
	struct img_file_hdr *h = (void *)img;
	const char *log;

	/* Newer version, checksum right: must say the image is newer. */
	h->version = IMG_VERSION + 1;
	fix_file_hdr_csum(img);
	log_capture_begin();
	assert_int_equal(ti_read_all_mem(img, len), -EPROTONOSUPPORT);
	log = log_capture_end();
	assert_non_null(strstr(log, "newer"));
	assert_non_null(strstr(log, "version 2"));

	h->version = 0xffffffffu;
	fix_file_hdr_csum(img);
	log_capture_begin();
	assert_int_equal(ti_read_all_mem(img, len), -EPROTONOSUPPORT);
	assert_non_null(strstr(log_capture_end(), "newer"));

	h->version = 0;
	fix_file_hdr_csum(img);
	log_capture_begin();
	assert_int_equal(ti_read_all_mem(img, len), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "unsupported image header"));

	h->version = IMG_VERSION;
	h->hdr_size = 72;
	fix_file_hdr_csum(img);
	log_quiet(true);
	assert_int_equal(ti_read_all_mem(img, len), -EINVAL);
	h->hdr_size = sizeof(*h);
	h->flags = 1;
	fix_file_hdr_csum(img);
	assert_int_equal(ti_read_all_mem(img, len), -EINVAL);
	log_quiet(false);

	h->flags = 0;
	fix_file_hdr_csum(img);
	assert_int_equal(ti_read_all_mem(img, len), 0);
	free(img);
}

/* ---- truncation and bit flips ---- */

static void test_truncation_every_offset(void **state)
{
	size_t len;
	uint8_t *img = ti_build(TI_SMALL | TI_OPTIONAL_REC, &len);
	uint8_t *copy = malloc(len);

	assert_int_equal(ti_read_all_mem(img, len), 0);
	log_quiet(true);
	for (size_t n = 0; n < len; n++) {
		int ret;
		/* An exact-size heap copy, so ASan sees any read past the end. */
		memcpy(copy, img, n);
		ret = ti_read_all_mem(copy, n);
		if (ret >= 0) {
			log_quiet(false);
			fail_msg("image truncated to %zu of %zu bytes was accepted (ret %d)", n, len, ret);
		}
	}
	log_quiet(false);
	free(copy);
	free(img);
}

/* The same through a plain fd, where the reader does not know the size. */
static void test_truncation_every_offset_fd(void **state)
{
	size_t len;
	uint8_t *img = ti_build(TI_SMALL | TI_OPTIONAL_REC, &len);

	assert_int_equal(read_all_fd(img, len), 0);
	log_quiet(true);
	for (size_t n = 0; n < len; n++) {
		int ret = read_all_fd(img, n);
		if (ret >= 0) {
			log_quiet(false);
			fail_msg("fd stream truncated to %zu of %zu bytes was accepted (ret %d)", n, len,
				 ret);
		}
	}
	log_quiet(false);
	free(img);
}

static void test_bitflip_every_byte(void **state)
{
	size_t len;
	uint8_t *img = ti_build(TI_SMALL | TI_OPTIONAL_REC, &len);
	uint8_t *copy = malloc(len);

	log_quiet(true);
	for (size_t i = 0; i < len; i++) {
		for (int b = 0; b < 8; b++) {
			int ret;
			memcpy(copy, img, len);
			copy[i] ^= 1u << b;
			ret = ti_read_all_mem(copy, len);
			if (ret >= 0) {
				log_quiet(false);
				fail_msg("image with bit %d of byte %zu (of %zu) flipped was accepted", b, i,
					 len);
			}
		}
	}
	log_quiet(false);
	free(copy);
	free(img);
}

/* ---- record types ---- */

static void *build_with_rec(uint32_t type, uint32_t flags, size_t *len)
{
	struct img_stream *sink = img_sink_mem();
	struct imgw w;
	const void *d;
	void *copy;

	assert_int_equal(imgw_begin(&w, sink, ti_image_id), 0);
	assert_int_equal(ti_put_records(&w, TI_OMIT_PAGES), 0);
	assert_int_equal(imgw_put(&w, type, flags, "abc", 3), 0);
	assert_int_equal(imgw_finish(&w), 0);
	imgw_release(&w);
	d = img_mem_data(sink, len);
	copy = malloc(*len);
	memcpy(copy, d, *len);
	img_close(sink);
	return copy;
}

static void test_unknown_record_type(void **state)
{
	size_t len;
	void *img;
	const char *log;
	struct img_stream *s;
	struct imgr r;
	struct img_rec rec;
	int ret, seen = 0;

	/* Not optional: refused, naming the type and asking for a newer rtcr. */
	img = build_with_rec(77, 0, &len);
	log_capture_begin();
	assert_int_equal(ti_read_all_mem(img, len), -EPROTONOSUPPORT);
	log = log_capture_end();
	assert_non_null(strstr(log, "type 77"));
	assert_non_null(strstr(log, "newer rtcr"));
	free(img);

	/* Some other flag bit does not make it optional. */
	img = build_with_rec(78, 0x2, &len);
	log_quiet(true);
	assert_int_equal(ti_read_all_mem(img, len), -EPROTONOSUPPORT);
	log_quiet(false);
	free(img);

	/* Optional: handed to the caller, skippable, image valid. */
	img = build_with_rec(77, RECF_OPTIONAL | 0x2, &len);
	s = img_source_mem(img, len);
	assert_int_equal(imgr_begin(&r, s), 0);
	while ((ret = imgr_next(&r, &rec)) > 0) {
		if (rec.type == 77) {
			seen++;
			assert_int_equal(rec.flags, RECF_OPTIONAL | 0x2);
			assert_int_equal(rec.len, 3);
		}
		assert_int_equal(imgr_skip(&r, &rec), 0);
	}
	assert_int_equal(ret, 0);
	assert_int_equal(seen, 1);
	imgr_release(&r);
	img_close(s);
	free(img);

	/* A known type flagged optional is still read normally. */
	img = build_with_rec(REC_PAGES, RECF_OPTIONAL, &len);
	log_quiet(true);
	/* ...and its payload ("abc") is not a PAGES payload. */
	assert_int_equal(ti_read_all_mem(img, len), -EINVAL);
	log_quiet(false);
	free(img);
}

static void test_end_mismatch(void **state)
{
	size_t len, ref_len;
	void *img = build_with_end(END_OK, &len), *ref = ti_build(TI_SMALL, &ref_len);

	/* The hand-made END is what imgw_finish writes. */
	assert_int_equal(len, ref_len);
	assert_memory_equal(img, ref, len);
	assert_int_equal(ti_read_all_mem(img, len), 0);
	free(img);
	free(ref);

	for (int which = END_NR; which <= END_EMPTY; which++) {
		const char *log;
		img = build_with_end(which, &len);
		log_capture_begin();
		assert_int_equal(ti_read_all_mem(img, len), -EINVAL);
		log = log_capture_end();
		if (which <= END_CHAIN)
			assert_non_null(strstr(log, "END record does not match"));
		free(img);
	}
}

/* Records swapped, dropped or duplicated, every record intact: END catches it. */
static void test_end_detects_reordering(void **state)
{
	size_t len, offs[16];
	uint8_t *img = ti_build(TI_OMIT_PAGES, &len), *mod = malloc(2 * len);
	int n = rec_offsets(img, len, offs, 16);
	size_t a_len, b_len, c_len, m;

	assert_int_equal(n, 6);     /* inventory, process, mm, files, index, end */
	a_len = offs[1] - offs[0];
	b_len = offs[2] - offs[1];
	c_len = offs[4] - offs[3];

	/* Swap INVENTORY and PROCESS. */
	memcpy(mod, img, offs[0]);
	memcpy(mod + offs[0], img + offs[1], b_len);
	memcpy(mod + offs[0] + b_len, img + offs[0], a_len);
	memcpy(mod + offs[2], img + offs[2], len - offs[2]);
	log_capture_begin();
	assert_int_equal(ti_read_all_mem(mod, len), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "END record does not match"));

	/* Drop FILES. */
	memcpy(mod, img, offs[3]);
	memcpy(mod + offs[3], img + offs[4], len - offs[4]);
	log_capture_begin();
	assert_int_equal(ti_read_all_mem(mod, len - c_len), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "END record does not match"));

	/* Duplicate FILES. */
	memcpy(mod, img, offs[4]);
	memcpy(mod + offs[4], img + offs[3], c_len);
	memcpy(mod + offs[4] + c_len, img + offs[4], len - offs[4]);
	m = len + c_len;
	log_capture_begin();
	assert_int_equal(ti_read_all_mem(mod, m), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "END record does not match"));

	/* No END at all. */
	log_capture_begin();
	assert_int_equal(ti_read_all_mem(img, offs[4]), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "no END record"));
	free(mod);
	free(img);
}

static void test_garbage_after_end(void **state)
{
	size_t len;
	uint8_t *img = ti_build(TI_SMALL, &len);
	uint8_t *big = calloc(1, 2 * len + 4096);
	size_t extra[] = { 1, 31, 32, 4096 };

	for (size_t i = 0; i < ARRAY_SIZE(extra); i++) {
		const char *log;
		memcpy(big, img, len);
		memset(big + len, 0, extra[i]);
		log_capture_begin();
		assert_int_equal(ti_read_all_mem(big, len + extra[i]), -EINVAL);
		log = log_capture_end();
		assert_non_null(strstr(log, "garbage after the END"));
	}
	/* A second complete image appended. */
	memcpy(big, img, len);
	memcpy(big + len, img, len);
	log_capture_begin();
	assert_int_equal(ti_read_all_mem(big, 2 * len), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "garbage after the END"));
	free(big);
	free(img);
}

/* Record header claims more than the image holds, or absurd sizes. */
static void test_record_length_claims(void **state)
{
	size_t len, offs[8];
	uint8_t *img = ti_build(TI_OMIT_PAGES, &len);
	int n = rec_offsets(img, len, offs, 8);
	struct img_rec_hdr h;
	uint64_t claims[] = { len, (256ull << 20) + 1, 1ull << 40, ~0ull };

	assert_int_equal(n, 6);
	for (size_t i = 0; i < ARRAY_SIZE(claims); i++) {
		uint8_t *mod = malloc(len);
		memcpy(mod, img, len);
		memcpy(&h, mod + offs[1], sizeof(h));
		h.len = claims[i];
		h.hcsum = XXH3_64bits(&h, offsetof(struct img_rec_hdr, hcsum));
		memcpy(mod + offs[1], &h, sizeof(h));
		log_quiet(true);
		assert_int_equal(ti_read_all_mem(mod, len), -EINVAL);
		/* Through an fd the size is unknown: still refused, no huge allocation
		 * for the metadata limit. */
		if (claims[i] > (256ull << 20))
			assert_int_equal(read_all_fd(mod, len), -EINVAL);
		log_quiet(false);
		free(mod);
	}
	free(img);
}

/* A PAGES record with a well-checksummed but malformed payload. */
static void test_pages_record_malformed(void **state)
{
	struct img_stream *sink = img_sink_mem(), *src;
	struct img_pages_hdr ph = { .nr_runs = 1, .pid = 1, .data_off = 40, .npages = 1 };
	uint8_t payload[64] = { 0 };
	struct imgw w;
	struct imgr r;
	struct img_rec rec;
	const void *d, *p;
	size_t len;

	memcpy(payload, &ph, sizeof(ph));
	assert_int_equal(imgw_begin(&w, sink, ti_image_id), 0);
	assert_int_equal(imgw_put(&w, REC_PAGES, 0, payload, sizeof(payload)), 0);
	assert_int_equal(imgw_finish(&w), 0);
	imgw_release(&w);
	d = img_mem_data(sink, &len);

	src = img_source_mem(d, len);
	assert_int_equal(imgr_begin(&r, src), 0);
	assert_int_equal(imgr_next(&r, &rec), 1);
	log_capture_begin();
	assert_int_equal(imgr_payload(&r, &rec, &p), -EINVAL);
	assert_non_null(strstr(log_capture_end(), "malformed"));
	imgr_release(&r);
	img_close(src);

	/* imgr_skip_pages: npages (1) exceeds what 64 bytes can hold. */
	src = img_source_mem(d, len);
	assert_int_equal(imgr_begin(&r, src), 0);
	assert_int_equal(imgr_next(&r, &rec), 1);
	{
		uint64_t np;
		log_capture_begin();
		assert_int_equal(imgr_skip_pages(&r, &rec, &np), -EINVAL);
		assert_non_null(strstr(log_capture_end(), "malformed"));
	}
	imgr_release(&r);
	img_close(src);
	img_close(sink);
}

/* ---- img_pages_parse ---- */

/* A payload buffer of exactly len bytes: header, runs, zeros. */
static void *pp_make(uint32_t nr_runs, uint64_t data_off, uint64_t npages,
		     const struct img_page_run *runs, uint32_t runs_written, size_t len)
{
	struct img_pages_hdr ph = { .nr_runs = nr_runs, .pid = 7, .data_off = data_off,
				    .npages = npages };
	uint8_t *b = calloc(1, len ? len : 1);
	assert_true(len >= sizeof(ph) + runs_written * sizeof(*runs));
	memcpy(b, &ph, sizeof(ph));
	memcpy(b + sizeof(ph), runs, runs_written * sizeof(*runs));
	return b;
}

static int pp_parse(void *b, size_t len)
{
	const struct img_pages_hdr *h;
	const struct img_page_run *r;
	const void *d;
	int ret = img_pages_parse(b, len, &h, &r, &d);
	free(b);
	return ret;
}

static void test_pages_parse_valid(void **state)
{
	struct img_page_run runs[2] = { { 0x1000, 1 }, { 0x5000, 2 } };
	size_t len = 4096 + 3 * 4096;
	void *b = pp_make(2, 4096, 3, runs, 2, len);
	const struct img_pages_hdr *h;
	const struct img_page_run *r;
	const void *d;

	assert_int_equal(img_pages_parse(b, len, &h, &r, &d), 0);
	assert_ptr_equal(h, b);
	assert_ptr_equal(r, (char *)b + sizeof(*h));
	assert_ptr_equal(d, (char *)b + 4096);
	assert_int_equal(h->npages, 3);
	free(b);

	/* No padding between runs and data. */
	len = 24 + 32 + 3 * 4096;
	assert_int_equal(pp_parse(pp_make(2, 56, 3, runs, 2, len), len), 0);
	/* No runs, no pages. */
	assert_int_equal(pp_parse(pp_make(0, 24, 0, runs, 0, 24), 24), 0);
}

static void test_pages_parse_malformed(void **state)
{
	struct img_page_run ok[2] = { { 0x1000, 1 }, { 0x5000, 2 } };
	struct img_page_run r[2];
	size_t len = 4096 + 3 * 4096;

	/* Too short for the header. */
	assert_int_equal(pp_parse(pp_make(0, 24, 0, ok, 0, 24), 23), -EINVAL);
	assert_int_equal(pp_parse(pp_make(0, 24, 0, ok, 0, 24), 0), -EINVAL);
	/* Runs past the payload. */
	assert_int_equal(pp_parse(pp_make(3, 56, 0, ok, 2, 56), 56), -EINVAL);
	assert_int_equal(pp_parse(pp_make(1000, 4096, 3, ok, 2, len), len), -EINVAL);
	/* nr_runs * 16 beyond 32 bits. */
	assert_int_equal(pp_parse(pp_make(0xffffffffu, 4096, 3, ok, 2, len), len), -EINVAL);
	assert_int_equal(pp_parse(pp_make(0x10000000u, 4096, 3, ok, 2, len), len), -EINVAL);
	/* Data inside the runs, or beyond the payload. */
	assert_int_equal(pp_parse(pp_make(2, 40, 3, ok, 2, len), len), -EINVAL);
	assert_int_equal(pp_parse(pp_make(2, len + 4096, 3, ok, 2, len), len), -EINVAL);
	assert_int_equal(pp_parse(pp_make(2, ~0ull, 3, ok, 2, len), len), -EINVAL);
	/* npages does not match the data length. */
	assert_int_equal(pp_parse(pp_make(2, 4096, 2, ok, 2, len), len), -EINVAL);
	assert_int_equal(pp_parse(pp_make(2, 4096, 4, ok, 2, len), len), -EINVAL);
	assert_int_equal(pp_parse(pp_make(2, 4096, 3, ok, 2, len - 1), len - 1), -EINVAL);
	/* npages * 4096 wraps to the data length. */
	assert_int_equal(pp_parse(pp_make(2, 2 * 4096, (1ull << 52) + 2, ok, 2, len), len),
			 -EINVAL);
	/* Runs do not add up to npages. */
	r[0] = ok[0];
	r[1] = (struct img_page_run){ 0x5000, 1 };
	assert_int_equal(pp_parse(pp_make(2, 4096, 3, r, 2, len), len), -EINVAL);
	r[1] = (struct img_page_run){ 0x5000, 3 };
	assert_int_equal(pp_parse(pp_make(2, 4096, 3, r, 2, len), len), -EINVAL);
	/* Misaligned vaddr. */
	r[1] = (struct img_page_run){ 0x5001, 2 };
	assert_int_equal(pp_parse(pp_make(2, 4096, 3, r, 2, len), len), -EINVAL);
	r[1] = (struct img_page_run){ 0x5800, 2 };
	assert_int_equal(pp_parse(pp_make(2, 4096, 3, r, 2, len), len), -EINVAL);
	/* Empty run. */
	r[0] = (struct img_page_run){ 0x1000, 0 };
	r[1] = (struct img_page_run){ 0x5000, 3 };
	assert_int_equal(pp_parse(pp_make(2, 4096, 3, r, 2, len), len), -EINVAL);
	/* A run larger than the record (its npages * 4096 would wrap). */
	r[0] = (struct img_page_run){ 0x1000, (1ull << 52) + 1 };
	r[1] = (struct img_page_run){ 0x5000, 2 };
	assert_int_equal(pp_parse(pp_make(2, 4096, 3, r, 2, len), len), -EINVAL);
	/* Address range wraps around the top of the address space. */
	r[0] = (struct img_page_run){ 0xfffffffffffff000ull, 2 };
	r[1] = (struct img_page_run){ 0x5000, 1 };
	assert_int_equal(pp_parse(pp_make(2, 4096, 3, r, 2, len), len), -EINVAL);
	r[0] = (struct img_page_run){ 0xffffffffffffe000ull, 2 };
	assert_int_equal(pp_parse(pp_make(2, 4096, 3, r, 2, len), len), -EINVAL);
	/* Sanity: the same shapes with good values pass. */
	assert_int_equal(pp_parse(pp_make(2, 4096, 3, ok, 2, len), len), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_mem),
		cmocka_unit_test(test_roundtrip_fd_stream),
		cmocka_unit_test(test_skip_pages),
		cmocka_unit_test(test_empty_image),
		cmocka_unit_test(test_empty_pages_record),
		cmocka_unit_test(test_payload_not_consumed),
		cmocka_unit_test(test_file_sink_commit),
		cmocka_unit_test(test_file_sink_uncommitted),
		cmocka_unit_test(test_file_sink_leftovers),
		cmocka_unit_test(test_file_sink_write_error),
		cmocka_unit_test(test_fd_write_error),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_header_checksum),
		cmocka_unit_test(test_header_version_and_fields),
		cmocka_unit_test(test_truncation_every_offset),
		cmocka_unit_test(test_truncation_every_offset_fd),
		cmocka_unit_test(test_bitflip_every_byte),
		cmocka_unit_test(test_unknown_record_type),
		cmocka_unit_test(test_end_mismatch),
		cmocka_unit_test(test_end_detects_reordering),
		cmocka_unit_test(test_garbage_after_end),
		cmocka_unit_test(test_record_length_claims),
		cmocka_unit_test(test_pages_record_malformed),
		cmocka_unit_test(test_pages_parse_valid),
		cmocka_unit_test(test_pages_parse_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
