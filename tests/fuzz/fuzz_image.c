/*
 * libFuzzer harness for the image reader (src/image/reader.c, stream.c):
 * arbitrary bytes through img_source_mem + imgr_begin / imgr_next /
 * imgr_payload / imgr_skip_pages / imgr_unpack / img_pages_parse.
 *
 * Every input is read six times:
 *   - as is, verifying every payload (imgr_payload) and decoding it;
 *   - as is, locating PAGES records with imgr_skip_pages (image_load's way);
 *   - as is, through a stream that cannot map (payloads copied into the
 *     reader's buffer, as for a pipe; its size is known so that claimed
 *     lengths are checked before the buffer is allocated);
 *   - the same three again on a "repaired" copy whose checksums (file header,
 *     record headers, payloads) and, where it fits, END record are
 *     recomputed, so mutations reach the payload parsers and the END
 *     check instead of stopping at the first checksum.
 * Besides crashes, leaks and sanitizer reports, a few invariants of the
 * reader are checked (an accepted image was consumed exactly, a verified
 * PAGES payload parses, skip_pages counts the pages the header claims).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "image/image.h"
#include "image/pb.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void touch_pages(const struct img_pages_hdr *ph, const struct img_page_run *runs,
			const uint8_t *data, const uint8_t *payload, uint64_t len)
{
	volatile uint8_t sink = 0;
	uint64_t idx = 0;

	CHECK((const uint8_t *)ph == payload);
	CHECK(data + ph->npages * PAGE_SIZE == payload + len);
	for (uint32_t i = 0; i < ph->nr_runs; i++) {
		CHECK(!(runs[i].vaddr & (PAGE_SIZE - 1)) && runs[i].npages);
		for (uint64_t k = 0; k < runs[i].npages; k++, idx++)
			sink ^= data[idx * PAGE_SIZE] ^ data[idx * PAGE_SIZE + PAGE_SIZE - 1];
	}
	CHECK(idx == ph->npages);
	(void)sink;
}

static void decode(const struct img_rec *rec, const void *p)
{
	const ProtobufCMessageDescriptor *d = NULL;
	ProtobufCMessage *m;

	switch (rec->type) {
	case REC_INVENTORY: d = &rtcr__inventory__descriptor; break;
	case REC_PROCESS: d = &rtcr__process__descriptor; break;
	case REC_MM: d = &rtcr__mm__descriptor; break;
	case REC_FILES: d = &rtcr__files__descriptor; break;
	default: return;
	}
	m = imgr_unpack(rec, d, p);
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

/* A source that can only read (no map, no skip): the buffered path. */
struct copy_stream {
	struct img_stream s;
	const uint8_t *data;
};

static int cs_read(struct img_stream *s, void *buf, size_t len)
{
	struct copy_stream *c = (struct copy_stream *)s;
	if (s->pos + len > s->size || s->pos + len < s->pos)
		return -ENODATA;
	if (len)
		memcpy(buf, c->data + s->pos, len);
	return 0;
}

static void cs_close(struct img_stream *s)
{
	free(s);
}

static const struct img_stream_ops cs_ops = { .read = cs_read, .close = cs_close };

static struct img_stream *copy_stream(const uint8_t *data, size_t size)
{
	struct copy_stream *c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->s.ops = &cs_ops;
	c->s.name = "<copy>";
	c->s.size = size;
	c->data = data;
	return &c->s;
}

/* mode 0: every payload via imgr_payload; 1: PAGES via imgr_skip_pages;
 * 2: mode 0 through the non-mapping stream. */
static void read_image(const uint8_t *data, size_t size, int mode)
{
	struct img_stream *s = mode == 2 ? copy_stream(data, size) : img_source_mem(data, size);
	int skip_mode = mode == 1;
	struct imgr r;
	struct img_rec rec;
	int ret = imgr_begin(&r, s);

	while (!ret && (ret = imgr_next(&r, &rec)) > 0) {
		const void *p;
		if (skip_mode && rec.type == REC_PAGES) {
			const struct img_pages_hdr *ph = (const void *)(data + rec.off);
			uint64_t n;
			ret = imgr_skip_pages(&r, &rec, &n);
			if (ret)
				break;
			CHECK(rec.len >= sizeof(*ph) && n == ph->npages && n <= rec.len / PAGE_SIZE);
			continue;
		}
		ret = imgr_payload(&r, &rec, &p);
		if (ret)
			break;
		CHECK(mode == 2 ? !rec.len || !memcmp(p, data + rec.off, rec.len) : p == data + rec.off);
		if (rec.type == REC_PAGES) {
			const struct img_pages_hdr *ph;
			const struct img_page_run *runs;
			const void *d;
			/* imgr_payload already parsed it: it must parse again. */
			CHECK(img_pages_parse(p, rec.len, &ph, &runs, &d) == 0);
			touch_pages(ph, runs, d, p, rec.len);
		} else {
			decode(&rec, p);
		}
	}
	if (ret == 0) {
		/* Accepted: consumed exactly, and reading on stays at the end. */
		CHECK(s->pos == size);
		CHECK(imgr_next(&r, &rec) == 0);
	}
	imgr_release(&r);
	img_close(s);
}

/* Recompute checksums (and the END record when its size allows) in place. */
static void repair(uint8_t *b, size_t size)
{
	XXH3_state_t *chain;
	uint64_t off = sizeof(struct img_file_hdr), nr = 0, bytes = 0, pages = 0;

	if (size < sizeof(struct img_file_hdr))
		return;
	{
		struct img_file_hdr fh;
		memcpy(&fh, b, sizeof(fh));
		fh.hcsum = XXH3_64bits(&fh, offsetof(struct img_file_hdr, hcsum));
		memcpy(b, &fh, sizeof(fh));
	}
	chain = XXH3_createState();
	if (!chain)
		abort();
	XXH3_64bits_reset(chain);
	while (off + sizeof(struct img_rec_hdr) <= size) {
		struct img_rec_hdr h;
		uint8_t *pl = b + off + sizeof(h);
		uint64_t avail = size - off - sizeof(h);

		memcpy(&h, b + off, sizeof(h));
		if (h.len > avail) {
			h.hcsum = XXH3_64bits(&h, offsetof(struct img_rec_hdr, hcsum));
			memcpy(b + off, &h, sizeof(h));
			break;
		}
		if (h.type == REC_END) {
			Rtcr__End end = RTCR__END__INIT;
			uint8_t buf[64];
			end.nr_records = nr;
			end.payload_bytes = bytes;
			end.pages = pages;
			end.chain_hash = XXH3_64bits_digest(chain);
			if (rtcr__end__get_packed_size(&end) == h.len) {
				rtcr__end__pack(&end, buf);
				memcpy(pl, buf, h.len);
			}
		}
		h.csum = XXH3_64bits(pl, h.len);
		h.hcsum = XXH3_64bits(&h, offsetof(struct img_rec_hdr, hcsum));
		memcpy(b + off, &h, sizeof(h));
		if (h.type == REC_END)
			break;
		if (h.type == REC_PAGES) {
			const struct img_pages_hdr *ph;
			const struct img_page_run *runs;
			const void *d;
			if (img_pages_parse(pl, h.len, &ph, &runs, &d) == 0)
				pages += ph->npages;
		}
		XXH3_64bits_update(chain, &h, sizeof(h));
		nr++;
		bytes += h.len;
		off += sizeof(h) + h.len;
	}
	XXH3_freeState(chain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	uint8_t *copy;

	if (!init) {
		log_set_level(-1);   /* the reader logs every rejection */
		init = 1;
	}
	read_image(data, size, 0);
	read_image(data, size, 1);
	read_image(data, size, 2);

	/* An exact-size heap copy, so ASan sees any overread. */
	copy = malloc(size ? size : 1);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	repair(copy, size);
	read_image(copy, size, 0);
	read_image(copy, size, 1);
	read_image(copy, size, 2);
	free(copy);
	return 0;
}
