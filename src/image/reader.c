#include "image/image.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "image/pb.h"

/* Metadata records are small; anything bigger than this is damage. */
#define MAX_META_RECORD (256u << 20)
#define MAX_PAGES_RECORD (1ULL << 32)

int imgr_begin(struct imgr *r, struct img_stream *s)
{
	struct img_file_hdr fh;
	int ret;

	memset(r, 0, sizeof(*r));
	r->s = s;
	r->chain = XXH3_createState();
	if (!r->chain)
		return -ENOMEM;
	XXH3_64bits_reset(r->chain);

	ret = img_read(s, &fh, sizeof(fh));
	if (ret == -ENODATA) {
		pr_err("%s: not an rtcr image (too short for a header)", s->name);
		return -EINVAL;
	}
	if (ret) {
		pr_err("%s: read: %s", s->name, strerror(-ret));
		return ret;
	}
	if (memcmp(fh.magic, IMG_MAGIC, sizeof(fh.magic))) {
		pr_err("%s: not an rtcr image (bad magic)", s->name);
		return -EINVAL;
	}
	if (fh.hcsum != XXH3_64bits(&fh, offsetof(struct img_file_hdr, hcsum))) {
		pr_err("%s: image header is corrupted (checksum mismatch)", s->name);
		return -EINVAL;
	}
	if (fh.version > IMG_VERSION) {
		pr_err("%s: image format version %u is newer than this rtcr supports (%u)",
		       s->name, fh.version, IMG_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (fh.version < 1 || fh.hdr_size != sizeof(fh) || fh.flags) {
		pr_err("%s: unsupported image header (version %u, size %u, flags %#llx)", s->name,
		       fh.version, fh.hdr_size, (unsigned long long)fh.flags);
		return -EINVAL;
	}
	r->version = fh.version;
	memcpy(r->image_id, fh.image_id, 16);
	return 0;
}

static bool type_known(uint32_t t)
{
	switch (t) {
	case REC_INVENTORY: case REC_PROCESS: case REC_MM: case REC_FILES:
	case REC_OBJECTS: case REC_PAGES: case REC_OBJ_PAGES: case REC_END: case REC_INDEX:
		return true;
	}
	return false;
}

static bool is_pages(uint32_t t)
{
	return t == REC_PAGES || t == REC_OBJ_PAGES;
}

static int check_end(struct imgr *r, const struct img_rec *rec, const void *data)
{
	Rtcr__End *end = imgr_unpack(rec, &rtcr__end__descriptor, data);
	int ret = 0;

	if (!end)
		return -EINVAL;
	if (end->nr_records != r->nr_records || end->payload_bytes != r->payload_bytes ||
	    end->pages != r->pages || end->chain_hash != XXH3_64bits_digest(r->chain)) {
		pr_err("%s: image is inconsistent: END record does not match the records read "
		       "(%llu records, %llu pages; END says %llu, %llu)", r->s->name,
		       (unsigned long long)r->nr_records, (unsigned long long)r->pages,
		       (unsigned long long)end->nr_records, (unsigned long long)end->pages);
		ret = -EINVAL;
	}
	rtcr__end__free_unpacked(end, NULL);
	return ret;
}

int imgr_next(struct imgr *r, struct img_rec *rec)
{
	struct img_rec_hdr h;
	uint64_t at = r->s->pos;
	int ret;

	if (r->ended)
		return 0;
	if (r->pending) {
		pr_err("%s: internal error: record payload not consumed", r->s->name);
		return -EINVAL;
	}
	ret = img_read(r->s, &h, sizeof(h));
	if (ret == -ENODATA) {
		pr_err("%s: image is truncated at byte %llu (no END record: the dump did not finish)",
		       r->s->name, (unsigned long long)at);
		return -EINVAL;
	}
	if (ret) {
		pr_err("%s: read: %s", r->s->name, strerror(-ret));
		return ret;
	}
	if (h.hcsum != XXH3_64bits(&h, offsetof(struct img_rec_hdr, hcsum))) {
		pr_err("%s: record header at byte %llu is corrupted (checksum mismatch)",
		       r->s->name, (unsigned long long)at);
		return -EINVAL;
	}
	if (!type_known(h.type) && !(h.flags & RECF_OPTIONAL)) {
		pr_err("%s: record type %u at byte %llu is unknown: the image needs a newer rtcr",
		       r->s->name, h.type, (unsigned long long)at);
		return -EPROTONOSUPPORT;
	}
	if (h.len > (is_pages(h.type) ? MAX_PAGES_RECORD : (uint64_t)MAX_META_RECORD)) {
		pr_err("%s: %s record at byte %llu claims %llu bytes: corrupted", r->s->name,
		       img_rec_name(h.type), (unsigned long long)at, (unsigned long long)h.len);
		return -EINVAL;
	}
	if (r->s->size && r->s->pos + h.len > r->s->size) {
		pr_err("%s: image is truncated: %s record at byte %llu needs %llu bytes, %llu left",
		       r->s->name, img_rec_name(h.type), (unsigned long long)at,
		       (unsigned long long)h.len, (unsigned long long)(r->s->size - r->s->pos));
		return -EINVAL;
	}
	rec->type = h.type;
	rec->flags = h.flags;
	rec->len = h.len;
	rec->csum = h.csum;
	rec->off = r->s->pos;

	if (h.type == REC_END) {
		const void *data;
		r->pending = true;
		ret = imgr_payload(r, rec, &data);
		if (ret)
			return ret;
		ret = check_end(r, rec, data);
		if (ret)
			return ret;
		if (r->s->size && r->s->pos != r->s->size) {
			pr_err("%s: %llu bytes of garbage after the END record", r->s->name,
			       (unsigned long long)(r->s->size - r->s->pos));
			return -EINVAL;
		}
		r->ended = true;
		return 0;
	}
	XXH3_64bits_update(r->chain, &h, sizeof(h));
	r->nr_records++;
	r->payload_bytes += h.len;
	r->pending = true;
	return 1;
}

int imgr_payload(struct imgr *r, const struct img_rec *rec, const void **data)
{
	const void *p;
	int ret;

	if (!r->pending || rec->off != r->s->pos)
		return -EINVAL;
	p = img_map(r->s, rec->off, rec->len);
	if (p) {
		ret = img_skip(r->s, rec->len);
	} else {
		if (rec->len > r->buf_cap) {
			free(r->buf);
			r->buf_cap = rec->len;
			r->buf = xmalloc(r->buf_cap);
		}
		p = r->buf;
		ret = img_read(r->s, r->buf, rec->len);
	}
	if (ret == -ENODATA) {
		pr_err("%s: image is truncated inside a %s record at byte %llu", r->s->name,
		       img_rec_name(rec->type), (unsigned long long)rec->off);
		return -EINVAL;
	}
	if (ret) {
		pr_err("%s: read: %s", r->s->name, strerror(-ret));
		return ret;
	}
	r->pending = false;
	if (XXH3_64bits(p, rec->len) != rec->csum) {
		pr_err("%s: %s record at byte %llu is corrupted (checksum mismatch)", r->s->name,
		       img_rec_name(rec->type), (unsigned long long)rec->off);
		return -EINVAL;
	}
	if (is_pages(rec->type)) {
		const struct img_pages_hdr *ph;
		const struct img_page_run *runs;
		const void *d;
		ret = img_pages_parse(p, rec->len, &ph, &runs, &d);
		if (ret) {
			pr_err("%s: pages record at byte %llu is malformed", r->s->name,
			       (unsigned long long)rec->off);
			return ret;
		}
		r->pages += ph->npages;
	}
	*data = p;
	return 0;
}

int imgr_skip(struct imgr *r, const struct img_rec *rec)
{
	const void *d;
	/* Skipping still verifies: a damaged image must never pass a scan. */
	return imgr_payload(r, rec, &d);
}

int imgr_skip_pages(struct imgr *r, const struct img_rec *rec, uint64_t *npages)
{
	const struct img_pages_hdr *ph;

	if (!r->pending || rec->off != r->s->pos || !is_pages(rec->type))
		return -EINVAL;
	ph = img_map(r->s, rec->off, sizeof(*ph));
	if (!ph || rec->len < sizeof(*ph) || ph->npages > rec->len / PAGE_SIZE) {
		pr_err("%s: pages record at byte %llu is malformed", r->s->name,
		       (unsigned long long)rec->off);
		return -EINVAL;
	}
	if (img_skip(r->s, rec->len)) {
		pr_err("%s: image is truncated inside a pages record at byte %llu", r->s->name,
		       (unsigned long long)rec->off);
		return -EINVAL;
	}
	r->pending = false;
	r->pages += ph->npages;
	*npages = ph->npages;
	return 0;
}

void *imgr_unpack(const struct img_rec *rec, const ProtobufCMessageDescriptor *desc,
		  const void *data)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, rec->len, data);
	if (!m)
		pr_err("%s record at byte %llu: cannot decode %s", img_rec_name(rec->type),
		       (unsigned long long)rec->off, desc->name);
	return m;
}

int img_pages_parse(const void *payload, uint64_t len, const struct img_pages_hdr **hdr,
		    const struct img_page_run **runs, const void **data)
{
	const struct img_pages_hdr *ph = payload;
	const struct img_page_run *rr;
	uint64_t total = 0, runs_end;

	if (len < sizeof(*ph))
		return -EINVAL;
	runs_end = sizeof(*ph) + (uint64_t)ph->nr_runs * sizeof(*rr);
	if (runs_end > len || ph->data_off < runs_end || ph->data_off > len ||
	    (len - ph->data_off) != ph->npages * PAGE_SIZE ||
	    ph->npages > len / PAGE_SIZE)
		return -EINVAL;
	rr = (const void *)((const char *)payload + sizeof(*ph));
	for (uint32_t i = 0; i < ph->nr_runs; i++) {
		if ((rr[i].vaddr & ~PAGE_MASK) || !rr[i].npages ||
		    rr[i].npages > ph->npages || rr[i].vaddr + rr[i].npages * PAGE_SIZE < rr[i].vaddr)
			return -EINVAL;
		total += rr[i].npages;
	}
	if (total != ph->npages)
		return -EINVAL;
	*hdr = ph;
	*runs = rr;
	*data = (const char *)payload + ph->data_off;
	return 0;
}

void imgr_release(struct imgr *r)
{
	if (r->chain)
		XXH3_freeState(r->chain);
	free(r->buf);
	r->chain = NULL;
	r->buf = NULL;
}

/* The END record at the very end of a mapped image: its offset, or 0. */
static uint64_t find_end(struct img_stream *s)
{
	uint64_t size = s->size, lo = size > 4096 + sizeof(struct img_file_hdr) ?
		size - 4096 : sizeof(struct img_file_hdr);
	const uint8_t *tail;

	if (size < lo + sizeof(struct img_rec_hdr) || !(tail = img_map(s, lo, size - lo)))
		return 0;
	for (uint64_t o = size - sizeof(struct img_rec_hdr) + 1; o-- > lo; ) {
		struct img_rec_hdr h;
		memcpy(&h, tail + (o - lo), sizeof(h));
		if (h.type == REC_END && o + sizeof(h) + h.len == size &&
		    h.hcsum == XXH3_64bits(&h, offsetof(struct img_rec_hdr, hcsum)) &&
		    XXH3_64bits(tail + (o - lo) + sizeof(h), h.len) == h.csum)
			return o;
	}
	return 0;
}

int imgr_index(struct img_stream *s, struct img_index_ent **out, size_t *nout)
{
	uint64_t end_off = find_end(s), at = sizeof(struct img_file_hdr), bytes = 0, pages = 0;
	const struct img_rec_hdr *eh, *ih;
	const struct img_index_ent *e;
	Rtcr__End *end = NULL;
	XXH3_state_t *chain = NULL;
	size_t n;
	int ret = -ENOENT;

	const uint8_t *ep;

	if (!end_off || !(eh = img_map(s, end_off, sizeof(*eh))) ||
	    !(ep = img_map(s, end_off + sizeof(*eh), eh->len)))
		return -ENOENT;
	end = (Rtcr__End *)protobuf_c_message_unpack(&rtcr__end__descriptor, NULL, eh->len, ep);
	if (!end || !end->has_index_off || end->index_off >= end_off ||
	    !(ih = img_map(s, end->index_off, sizeof(*ih))))
		goto out;
	if (ih->type != REC_INDEX || ih->hcsum != XXH3_64bits(ih, offsetof(struct img_rec_hdr, hcsum)) ||
	    end->index_off + sizeof(*ih) + ih->len != end_off || ih->len % sizeof(*e) ||
	    ih->len > MAX_META_RECORD || !(e = img_map(s, end->index_off + sizeof(*ih), ih->len)) ||
	    XXH3_64bits(e, ih->len) != ih->csum)
		goto out;
	n = ih->len / sizeof(*e);
	/* The records lie back to back from the file header to the INDEX,
	 * and their headers hash to END's chain hash. */
	chain = XXH3_createState();
	if (!chain)
		goto out;
	XXH3_64bits_reset(chain);
	for (size_t i = 0; i < n; i++) {
		struct img_rec_hdr h;
		if (e[i].off != at || e[i].type == REC_END || e[i].type == REC_INDEX ||
		    (!type_known(e[i].type) && !(e[i].flags & RECF_OPTIONAL)) ||
		    e[i].len > (is_pages(e[i].type) ? MAX_PAGES_RECORD : (uint64_t)MAX_META_RECORD) ||
		    (is_pages(e[i].type) && e[i].npages > e[i].len / PAGE_SIZE))
			goto out;
		img_rec_hdr_fill(&h, e[i].type, e[i].flags, e[i].len, e[i].csum);
		XXH3_64bits_update(chain, &h, sizeof(h));
		at += sizeof(h) + e[i].len;
		bytes += e[i].len;
		if (is_pages(e[i].type))
			pages += e[i].npages;
	}
	XXH3_64bits_update(chain, ih, sizeof(*ih));
	if (at != end->index_off || end->nr_records != n + 1 ||
	    end->payload_bytes != bytes + ih->len || end->pages != pages ||
	    end->chain_hash != XXH3_64bits_digest(chain))
		goto out;
	*out = xmalloc((n ? n : 1) * sizeof(**out));
	memcpy(*out, e, n * sizeof(*e));
	*nout = n;
	ret = 0;
out:
	if (chain)
		XXH3_freeState(chain);
	if (end)
		rtcr__end__free_unpacked(end, NULL);
	return ret;
}
