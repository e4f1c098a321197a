#include "image/image.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "image/pb.h"

static const uint8_t zero_page[IMG_ALIGN];

const char *img_rec_name(uint32_t type)
{
	switch (type) {
	case REC_INVENTORY: return "inventory";
	case REC_PROCESS: return "process";
	case REC_MM: return "mm";
	case REC_FILES: return "files";
	case REC_OBJECTS: return "objects";
	case REC_PAGES: return "pages";
	case REC_OBJ_PAGES: return "object pages";
	case REC_INDEX: return "index";
	case REC_END: return "end";
	}
	return "unknown";
}

void img_rec_hdr_fill(struct img_rec_hdr *h, uint32_t type, uint32_t flags,
			 uint64_t len, uint64_t csum)
{
	h->type = type;
	h->flags = flags;
	h->len = len;
	h->csum = csum;
	h->hcsum = XXH3_64bits(h, offsetof(struct img_rec_hdr, hcsum));
}

int imgw_begin(struct imgw *w, struct img_stream *s, const uint8_t image_id[16])
{
	struct img_file_hdr fh;
	struct iovec iov = { &fh, sizeof(fh) };
	int ret;

	memset(w, 0, sizeof(*w));
	w->s = s;
	w->chain = XXH3_createState();
	if (!w->chain)
		return -ENOMEM;
	XXH3_64bits_reset(w->chain);

	memset(&fh, 0, sizeof(fh));
	memcpy(fh.magic, IMG_MAGIC, sizeof(fh.magic));
	fh.version = IMG_VERSION;
	fh.hdr_size = sizeof(fh);
	memcpy(fh.image_id, image_id, 16);
	fh.hcsum = XXH3_64bits(&fh, offsetof(struct img_file_hdr, hcsum));
	ret = img_writev(s, &iov, 1);
	if (ret)
		pr_err("%s: write: %s", s->name, strerror(-ret));
	return ret;
}

/* The INDEX entry of a record about to be written at the current position. */
static void index_add(struct imgw *w, const struct img_rec_hdr *h, int32_t pid, uint64_t npages,
		      const struct img_page_run *runs, uint32_t nr_runs)
{
	struct img_index_ent *e;

	if (w->nidx == w->capidx) {
		w->capidx = w->capidx ? 2 * w->capidx : 64;
		w->idx = xrealloc(w->idx, w->capidx * sizeof(*w->idx));
	}
	e = &w->idx[w->nidx++];
	*e = (struct img_index_ent){ .type = h->type, .flags = h->flags, .off = w->s->pos,
		.len = h->len, .csum = h->csum, .pid = pid, .nr_runs = nr_runs, .npages = npages };
	for (uint32_t k = 0; k < nr_runs; k++) {
		uint64_t end = runs[k].vaddr + runs[k].npages * PAGE_SIZE;
		if (!k || runs[k].vaddr < e->vstart)
			e->vstart = runs[k].vaddr;
		if (!k || end > e->vend)
			e->vend = end;
	}
}

static int put_rec(struct imgw *w, uint32_t type, uint32_t flags, const struct iovec *piov,
		   int piovcnt, uint64_t len, uint64_t csum)
{
	struct img_rec_hdr h;
	struct iovec iov[8];
	int ret;

	img_rec_hdr_fill(&h, type, flags, len, csum);
	iov[0].iov_base = &h;
	iov[0].iov_len = sizeof(h);
	memcpy(iov + 1, piov, piovcnt * sizeof(*piov));
	if (type != REC_END && type != REC_INDEX)
		index_add(w, &h, 0, 0, NULL, 0);
	ret = img_writev(w->s, iov, piovcnt + 1);
	if (ret) {
		pr_err("%s: writing %s record: %s", w->s->name, img_rec_name(type), strerror(-ret));
		return ret;
	}
	XXH3_64bits_update(w->chain, &h, sizeof(h));
	w->nr_records++;
	w->payload_bytes += len;
	return 0;
}

int imgw_put(struct imgw *w, uint32_t type, uint32_t flags, const void *payload, size_t len)
{
	struct iovec iov = { (void *)payload, len };
	return put_rec(w, type, flags, &iov, 1, len, XXH3_64bits(payload, len));
}

int imgw_put_pb(struct imgw *w, uint32_t type, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = xmalloc(len);
	int ret;

	protobuf_c_message_pack(msg, buf);
	ret = imgw_put(w, type, 0, buf, len);
	free(buf);
	return ret;
}

/* The record for runs whose pages are the data segments, in order. */
static uint64_t pages_prepare_v(struct imgw_pages_rec *pr, uint32_t type, uint64_t at, int32_t pid,
				const struct img_page_run *runs, uint32_t nr_runs,
				const struct iovec *data, size_t ndata, uint64_t npages)
{
	uint64_t head = sizeof(struct img_rec_hdr) + sizeof(pr->ph) + nr_runs * sizeof(*runs);
	uint64_t dlen = npages * PAGE_SIZE;
	XXH3_state_t st;

	pr->at = at;
	pr->pad = ALIGN_UP(at + head, IMG_ALIGN) - (at + head);
	pr->ph.nr_runs = nr_runs;
	pr->ph.pid = pid;
	pr->ph.data_off = sizeof(pr->ph) + nr_runs * sizeof(*runs) + pr->pad;
	pr->ph.npages = npages;

	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, &pr->ph, sizeof(pr->ph));
	XXH3_64bits_update(&st, runs, nr_runs * sizeof(*runs));
	XXH3_64bits_update(&st, zero_page, pr->pad);
	for (size_t i = 0; i < ndata; i++)
		XXH3_64bits_update(&st, data[i].iov_base, data[i].iov_len);
	img_rec_hdr_fill(&pr->rh, type, 0, pr->ph.data_off + dlen, XXH3_64bits_digest(&st));
	return at + sizeof(struct img_rec_hdr) + pr->ph.data_off + dlen;
}

uint64_t imgw_pages_prepare(struct imgw_pages_rec *pr, uint64_t at, int32_t pid,
			    const struct img_page_run *runs, uint32_t nr_runs, const void *data,
			    uint64_t npages)
{
	struct iovec d = { (void *)data, npages * PAGE_SIZE };
	return pages_prepare_v(pr, REC_PAGES, at, pid, runs, nr_runs, &d, 1, npages);
}

static int put_prepared_v(struct imgw *w, const struct imgw_pages_rec *pr,
			  const struct img_page_run *runs, const struct iovec *data, size_t ndata)
{
	struct iovec small[5], *iov = ndata > 1 ? xmalloc((4 + ndata) * sizeof(*iov)) : small;
	int ret;

	if (pr->at != w->s->pos) {
		pr_err("%s: pages record prepared for byte %llu written at %llu", w->s->name,
		       (unsigned long long)pr->at, (unsigned long long)w->s->pos);
		ret = -EINVAL;
		goto out;
	}
	iov[0] = (struct iovec){ (void *)&pr->rh, sizeof(pr->rh) };
	iov[1] = (struct iovec){ (void *)&pr->ph, sizeof(pr->ph) };
	iov[2] = (struct iovec){ (void *)runs, pr->ph.nr_runs * sizeof(*runs) };
	iov[3] = (struct iovec){ (void *)zero_page, pr->pad };
	memcpy(iov + 4, data, ndata * sizeof(*data));
	index_add(w, &pr->rh, pr->ph.pid, pr->ph.npages, runs, pr->ph.nr_runs);
	ret = img_writev(w->s, iov, (int)(4 + ndata));
	if (ret) {
		pr_err("%s: writing pages record: %s", w->s->name, strerror(-ret));
		goto out;
	}
	XXH3_64bits_update(w->chain, &pr->rh, sizeof(pr->rh));
	w->nr_records++;
	w->payload_bytes += pr->rh.len;
	w->pages += pr->ph.npages;
out:
	if (iov != small)
		free(iov);
	return ret;
}

int imgw_put_prepared(struct imgw *w, const struct imgw_pages_rec *pr,
		      const struct img_page_run *runs, const void *data)
{
	struct iovec d = { (void *)data, pr->ph.npages * PAGE_SIZE };
	return put_prepared_v(w, pr, runs, &d, 1);
}

int imgw_put_pages(struct imgw *w, int32_t pid, const struct img_page_run *runs,
		   uint32_t nr_runs, const void *data, uint64_t npages)
{
	struct imgw_pages_rec pr;

	imgw_pages_prepare(&pr, w->s->pos, pid, runs, nr_runs, data, npages);
	return imgw_put_prepared(w, &pr, runs, data);
}

int imgw_put_obj_pages(struct imgw *w, uint32_t obj, const struct img_page_run *runs,
		       uint32_t nr_runs, const void *data, uint64_t npages)
{
	struct imgw_pages_rec pr;
	struct iovec d = { (void *)data, npages * PAGE_SIZE };

	pages_prepare_v(&pr, REC_OBJ_PAGES, w->s->pos, (int32_t)obj, runs, nr_runs, &d, 1, npages);
	return put_prepared_v(w, &pr, runs, &d, 1);
}

int imgw_put_pages_src(struct imgw *w, uint32_t type, int32_t id, const struct img_page_src *src,
		       uint32_t n)
{
	struct img_page_run *runs = xmalloc((n + 1) * sizeof(*runs));
	struct iovec *d = xmalloc((n + 1) * sizeof(*d));
	struct imgw_pages_rec pr;
	uint64_t npages = 0;
	int ret;

	for (uint32_t i = 0; i < n; i++) {
		runs[i] = (struct img_page_run){ src[i].vaddr, src[i].npages };
		d[i] = (struct iovec){ (void *)src[i].data, src[i].npages * PAGE_SIZE };
		npages += src[i].npages;
	}
	pages_prepare_v(&pr, type, w->s->pos, id, runs, n, d, n, npages);
	ret = put_prepared_v(w, &pr, runs, d, n);
	free(runs);
	free(d);
	return ret;
}

int imgw_end(struct imgw *w)
{
	Rtcr__End end = RTCR__END__INIT;
	uint64_t at = w->s->pos;
	size_t n = w->nidx;
	int ret;

	/* INDEX: the records so far (not itself), so a reader can seek. */
	ret = imgw_put(w, REC_INDEX, RECF_OPTIONAL, w->idx, n * sizeof(*w->idx));
	if (ret)
		return ret;
	end.has_index_off = 1;
	end.index_off = at;
	end.nr_records = w->nr_records;
	end.payload_bytes = w->payload_bytes;
	end.pages = w->pages;
	end.chain_hash = XXH3_64bits_digest(w->chain);
	return imgw_put_pb(w, REC_END, &end.base);
}

int imgw_finish(struct imgw *w)
{
	int ret = imgw_end(w);
	return ret ? ret : img_commit(w->s);
}

void imgw_release(struct imgw *w)
{
	free(w->idx);
	w->idx = NULL;
	w->nidx = w->capidx = 0;
	if (w->chain)
		XXH3_freeState(w->chain);
	w->chain = NULL;
}
