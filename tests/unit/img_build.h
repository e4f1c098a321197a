/*
 * Test helper (header only, no cmocka): builds valid rtcr images with
 * every record type, for the unit tests and the fuzzing seed generator.
 *
 * The "standard" image holds INVENTORY, PROCESS, MM, FILES, three PAGES
 * records (6 + 1 + 5 pages, with several runs each), an optional record
 * of an unknown type (TI_OPTIONAL_REC) and END. TI_SMALL keeps only the
 * one-page PAGES record (an image of about 8 KiB).
 */
#ifndef RTCR_TEST_IMG_BUILD_H
#define RTCR_TEST_IMG_BUILD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "image/image.h"
#include "image/pb.h"

enum {
	TI_OMIT_INV     = 1 << 0,
	TI_OMIT_PROC    = 1 << 1,
	TI_OMIT_MM      = 1 << 2,
	TI_OMIT_FILES   = 1 << 3,
	TI_OMIT_PAGES   = 1 << 4,
	TI_SMALL        = 1 << 5,   /* only the one-page PAGES record */
	TI_OPTIONAL_REC = 1 << 6,   /* add an unknown record flagged RECF_OPTIONAL */
	TI_DUP_INV      = 1 << 7,   /* a second INVENTORY record */
	TI_BAD_INV_ID   = 1 << 8,   /* inventory image_id differs from the header's */
	TI_NO_THREADS   = 1 << 9,   /* PROCESS without threads */
	TI_NO_END       = 1 << 10,  /* stop before END (what a killed dump leaves) */
};

#define TI_PID          4242
#define CPU_FEATURE_WORDS_FOR_TEST 8
#define TI_OPT_TYPE     200
#define TI_OPT_PAYLOAD  "optional payload of a newer rtcr"

static const uint8_t ti_image_id[16] = {
	0x52, 0x54, 0x43, 0x52, 0x01, 0x02, 0x03, 0x04,
	0xa5, 0x5a, 0xc3, 0x3c, 0xde, 0xad, 0xbe, 0xef,
};

/* The three PAGES records of the standard image. */
static const struct img_page_run ti_runs0[] = {
	{ 0x10000, 2 }, { 0x30000, 1 }, { 0x7f0000000000ULL, 3 },
};
static const struct img_page_run ti_runs1[] = {
	{ 0x50000, 1 },
};
static const struct img_page_run ti_runs2[] = {
	{ 0x60000, 4 }, { 0x80000, 1 },
};

struct ti_pages_rec {
	const struct img_page_run *runs;
	uint32_t nr_runs;
};

static const struct ti_pages_rec ti_pages_recs[] = {
	{ ti_runs0, ARRAY_SIZE(ti_runs0) },
	{ ti_runs1, ARRAY_SIZE(ti_runs1) },
	{ ti_runs2, ARRAY_SIZE(ti_runs2) },
};

/* Byte 'off' of the page at 'vaddr': differs between pages and offsets. */
static inline uint8_t ti_page_byte(uint64_t vaddr, size_t off)
{
	uint64_t x = (vaddr >> 12) * 0x9e3779b97f4a7c15ULL + off * 0x85ebca6bULL;
	return (uint8_t)(x >> 29);
}

static uint64_t ti_runs_npages(const struct img_page_run *runs, uint32_t nr)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < nr; i++)
		n += runs[i].npages;
	return n;
}

/* malloc'ed data for runs, page by page in run order. */
static void *ti_runs_data(const struct img_page_run *runs, uint32_t nr)
{
	uint8_t *d = xmalloc(ti_runs_npages(runs, nr) * PAGE_SIZE + 1), *p = d;
	for (uint32_t i = 0; i < nr; i++)
		for (uint64_t k = 0; k < runs[i].npages; k++)
			for (size_t o = 0; o < PAGE_SIZE; o++)
				*p++ = ti_page_byte(runs[i].vaddr + k * PAGE_SIZE, o);
	return d;
}

/* Which PAGES records an image built with opts has. */
static void ti_pages_selection(unsigned opts, uint32_t *first, uint32_t *count)
{
	if (opts & TI_OMIT_PAGES) {
		*first = 0;
		*count = 0;
	} else if (opts & TI_SMALL) {
		*first = 1;
		*count = 1;
	} else {
		*first = 0;
		*count = ARRAY_SIZE(ti_pages_recs);
	}
}

static uint64_t ti_total_pages(unsigned opts)
{
	uint32_t first, count;
	uint64_t n = 0;
	ti_pages_selection(opts, &first, &count);
	for (uint32_t i = first; i < first + count; i++)
		n += ti_runs_npages(ti_pages_recs[i].runs, ti_pages_recs[i].nr_runs);
	return n;
}

/* Write all records of an image with opts to w (after imgw_begin). */
static int ti_put_records(struct imgw *w, unsigned opts)
{
	Rtcr__CpuInfo cpu = RTCR__CPU_INFO__INIT;
	Rtcr__Inventory inv = RTCR__INVENTORY__INIT;
	uint32_t features[CPU_FEATURE_WORDS_FOR_TEST] = { 0x1, 0x2, 0x20, 0, 0, 0x1, 0, 0 };
	uint8_t bad_id[16];
	Rtcr__Creds creds = RTCR__CREDS__INIT;
	Rtcr__X86Regs regs = RTCR__X86_REGS__INIT;
	Rtcr__Thread th = RTCR__THREAD__INIT, *thp = &th;
	Rtcr__Process proc = RTCR__PROCESS__INIT;
	Rtcr__FileRef fref = RTCR__FILE_REF__INIT;
	Rtcr__Vma vma[2] = { RTCR__VMA__INIT, RTCR__VMA__INIT }, *vmap[2] = { &vma[0], &vma[1] };
	Rtcr__Mm mm = RTCR__MM__INIT;
	Rtcr__InheritFd ifd = RTCR__INHERIT_FD__INIT;
	Rtcr__Fd fd = RTCR__FD__INIT, *fdp = &fd;
	Rtcr__Files files = RTCR__FILES__INIT;
	uint8_t xstate[64];
	uint32_t first, count;
	int ret = 0;

	cpu.vendor = "GenuineTest";
	cpu.xfeatures = 0x7;
	cpu.xsave_size = 832;
	cpu.n_features = CPU_FEATURE_WORDS_FOR_TEST;
	cpu.features = features;
	inv.format_version = IMG_VERSION;
	inv.tool_version = "rtcr-unit-test";
	inv.dump_time_ns = 1700000000123456789ULL;
	inv.root_pid = TI_PID;
	inv.kernel_release = "6.1.0-test";
	inv.boot_id = "00000000-1111-2222-3333-444444444444";
	inv.cpu = &cpu;
	memcpy(bad_id, ti_image_id, 16);
	bad_id[15] ^= 0xff;
	inv.image_id.len = 16;
	inv.image_id.data = (uint8_t *)((opts & TI_BAD_INV_ID) ? bad_id : ti_image_id);
	inv.page_size = PAGE_SIZE;

	creds.n_groups = 0;
	regs.rip = 0x401000;
	regs.rsp = 0x7ffc0000f000ULL;
	regs.orig_rax = (uint64_t)-1;
	regs.cs = 0x33;
	regs.ss = 0x2b;
	memset(xstate, 0x5c, sizeof(xstate));
	th.tid = TI_PID;
	th.regs = &regs;
	th.xstate.len = sizeof(xstate);
	th.xstate.data = xstate;
	th.comm = "target";
	proc.pid = TI_PID;
	proc.ppid = 1;
	proc.pgid = TI_PID;
	proc.sid = TI_PID;
	proc.comm = "target";
	proc.creds = &creds;
	proc.cwd = "/";
	proc.root = "/";
	proc.n_threads = (opts & TI_NO_THREADS) ? 0 : 1;
	proc.threads = &thp;

	fref.path = "/usr/bin/target";
	fref.size = 12345;
	fref.mode = 0100755;
	vma[0].start = 0x400000;
	vma[0].end = 0x402000;
	vma[0].prot = 5;
	vma[0].kind = RTCR__VMA_KIND__FILE_PRIVATE;
	vma[0].file = &fref;
	vma[1].start = 0x10000;
	vma[1].end = 0x90000;
	vma[1].prot = 3;
	vma[1].kind = RTCR__VMA_KIND__ANON_PRIVATE;
	vma[1].pages_stored = 12;
	mm.n_vmas = 2;
	mm.vmas = vmap;
	mm.exe = &fref;

	ifd.desc = "pipe:[1234]";
	ifd.flags = 1;
	fd.fd = 1;
	fd.kind = RTCR__FD_KIND__FD_INHERIT;
	fd.inherit = &ifd;
	files.pid = TI_PID;
	files.n_fds = 1;
	files.fds = &fdp;

	if (!(opts & TI_OMIT_INV))
		ret = imgw_put_pb(w, REC_INVENTORY, &inv.base);
	if (!ret && !(opts & TI_OMIT_PROC))
		ret = imgw_put_pb(w, REC_PROCESS, &proc.base);
	if (!ret && !(opts & TI_OMIT_MM))
		ret = imgw_put_pb(w, REC_MM, &mm.base);
	if (!ret && !(opts & TI_OMIT_FILES))
		ret = imgw_put_pb(w, REC_FILES, &files.base);
	if (!ret && (opts & TI_DUP_INV))
		ret = imgw_put_pb(w, REC_INVENTORY, &inv.base);
	ti_pages_selection(opts, &first, &count);
	for (uint32_t i = first; !ret && i < first + count; i++) {
		const struct ti_pages_rec *pr = &ti_pages_recs[i];
		void *data = ti_runs_data(pr->runs, pr->nr_runs);
		ret = imgw_put_pages(w, TI_PID, pr->runs, pr->nr_runs, data,
				     ti_runs_npages(pr->runs, pr->nr_runs));
		free(data);
		if (!ret && i == first && (opts & TI_OPTIONAL_REC))
			ret = imgw_put(w, TI_OPT_TYPE, RECF_OPTIONAL, TI_OPT_PAYLOAD,
				       sizeof(TI_OPT_PAYLOAD));
	}
	if (!ret && count == 0 && (opts & TI_OPTIONAL_REC))
		ret = imgw_put(w, TI_OPT_TYPE, RECF_OPTIONAL, TI_OPT_PAYLOAD, sizeof(TI_OPT_PAYLOAD));
	return ret;
}

/* Write a whole image (header, records, END unless TI_NO_END) to s. */
static int ti_write(struct img_stream *s, unsigned opts)
{
	struct imgw w;
	int ret = imgw_begin(&w, s, ti_image_id);
	if (!ret)
		ret = ti_put_records(&w, opts);
	if (!ret && !(opts & TI_NO_END))
		ret = imgw_finish(&w);
	imgw_release(&w);
	return ret;
}

/* A whole image in a malloc'ed buffer (aborts on failure). */
static void *ti_build(unsigned opts, size_t *len)
{
	struct img_stream *s = img_sink_mem();
	const void *d;
	void *copy;

	if (ti_write(s, opts)) {
		fprintf(stderr, "ti_build: writing the test image failed\n");
		abort();
	}
	d = img_mem_data(s, len);
	copy = xmalloc(*len + 1);
	memcpy(copy, d, *len);
	img_close(s);
	return copy;
}

/* Write buf to path (aborts on failure). */
static void ti_write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f || (len && fwrite(buf, 1, len, f) != len) || fclose(f)) {
		fprintf(stderr, "ti_write_file %s failed\n", path);
		abort();
	}
}

/*
 * Read a whole image the way a careful consumer does: every payload
 * verified, every metadata record decoded, every PAGES record parsed and
 * its pages touched. 0 if the image is accepted (valid END reached),
 * else the first error (<0). A decoding failure counts as -EBADMSG.
 */
static int ti_read_all(struct img_stream *s)
{
	static const ProtobufCMessageDescriptor *const desc[] = {
		[REC_INVENTORY] = &rtcr__inventory__descriptor,
		[REC_PROCESS] = &rtcr__process__descriptor,
		[REC_MM] = &rtcr__mm__descriptor,
		[REC_FILES] = &rtcr__files__descriptor,
	};
	struct imgr r;
	struct img_rec rec;
	int ret = imgr_begin(&r, s);

	while (!ret && (ret = imgr_next(&r, &rec)) > 0) {
		const void *p;
		ret = imgr_payload(&r, &rec, &p);
		if (ret)
			break;
		if (rec.type < ARRAY_SIZE(desc) && desc[rec.type]) {
			ProtobufCMessage *m = imgr_unpack(&rec, desc[rec.type], p);
			if (!m) {
				ret = -EBADMSG;
				break;
			}
			protobuf_c_message_free_unpacked(m, NULL);
		} else if (rec.type == REC_PAGES) {
			const struct img_pages_hdr *ph;
			const struct img_page_run *runs;
			const uint8_t *data;
			volatile uint8_t sink = 0;
			ret = img_pages_parse(p, rec.len, &ph, &runs, (const void **)&data);
			if (ret)
				break;
			for (uint64_t k = 0; k < ph->npages; k++)
				sink ^= data[k * PAGE_SIZE] ^ data[k * PAGE_SIZE + PAGE_SIZE - 1];
			(void)sink;
		}
	}
	imgr_release(&r);
	return ret;
}

static int ti_read_all_mem(const void *buf, size_t len)
{
	struct img_stream *s = img_source_mem(buf, len);
	int ret = ti_read_all(s);
	img_close(s);
	return ret;
}

#endif
