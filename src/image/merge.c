/*
 * rtcr merge: an incremental image and its parents folded into one
 * self-contained image. The metadata are DIR's own (minus the parent
 * reference and the inherited page lists); the pages of each process are
 * the ones DIR stores plus, for every page it inherits, the data of the
 * newest ancestor that holds it, exactly as restore would take them.
 */
#include "image/merge.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

#define REC_MAX_PAGES 1024    /* the dumper's chunk: 4 MiB per PAGES record */
#define REC_MAX_RUNS  1024

struct src_list {
	struct img_page_src *v;
	size_t n, cap;
};

static void src_add(struct src_list *l, uint64_t vaddr, uint64_t npages, const void *data,
		    struct loaded_image *from, uint32_t rec)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = (struct img_page_src){ vaddr, npages, data, from, rec };
}

static int src_cmp(const void *a, const void *b)
{
	const struct img_page_src *x = a, *y = b;
	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

static bool bit_test(const uint64_t *m, uint64_t i) { return m[i / 64] & (1ULL << (i % 64)); }
static void bit_set(uint64_t *m, uint64_t i) { m[i / 64] |= 1ULL << (i % 64); }
static void bit_clear(uint64_t *m, uint64_t i) { m[i / 64] &= ~(1ULL << (i % 64)); }

struct syn_rec {
	struct img_pages_hdr h;
	struct img_page_run run;
};

/*
 * A PAGES record of one run, from its INDEX entry alone: its data starts
 * at the first 4 KiB boundary after its headers and the one run (the
 * writer's layout, imgw_pages_prepare()) and ends with the record. Its
 * header is not read (each one is a page fault: 2048 of them in an 8 GiB
 * image); its checksum, which covers it, is checked before its pages are
 * placed. NULL if the entry does not say exactly that.
 */
static const struct syn_rec *syn_of(struct loaded_image *im, uint32_t r, const void **data)
{
	uint64_t off, dstart, np;
	struct syn_rec *sr;

	if (!im->pages_nruns || im->pages_nruns[r] != 1)
		return NULL;
	off = im->pages_off[r];
	dstart = ALIGN_UP(off + sizeof(struct img_pages_hdr) + sizeof(struct img_page_run), IMG_ALIGN);
	np = im->pages_vend[r] > im->pages_vstart[r] ?
		(im->pages_vend[r] - im->pages_vstart[r]) / PAGE_SIZE : 0;
	if (!np || dstart + np * PAGE_SIZE != off + im->pages_len[r] ||
	    !(*data = img_map(im->src, dstart, np * PAGE_SIZE)))
		return NULL;
	if (!im->syn)
		im->syn = xzalloc((im->nr_pages_recs + 1) * sizeof(struct syn_rec));
	sr = &((struct syn_rec *)im->syn)[r];
	sr->h = (struct img_pages_hdr){ .nr_runs = 1, .pid = im->pages_pid[r],
		.data_off = dstart - off, .npages = np };
	sr->run = (struct img_page_run){ im->pages_vstart[r], np };
	return sr;
}

static int pages_of(struct loaded_image *im, uint32_t r, unsigned flags,
		    const struct img_pages_hdr **ph, const struct img_page_run **runs,
		    const void **data)
{
	const struct syn_rec *sr;

	if ((flags & IMG_RESOLVE_NO_VERIFY) && (sr = syn_of(im, r, data))) {
		*ph = &sr->h;
		*runs = &sr->run;
		return 0;
	}
	if (flags & IMG_RESOLVE_NO_VERIFY)
		return image_pages_raw(im, r, ph, runs, data);
	return image_pages(im, r, ph, runs, data);
}

/* Record r of a holds pages of skipped areas only (known from its span,
 * when the image was loaded through its INDEX). */
static bool rec_skipped(const struct loaded_image *a, uint32_t r, const Rtcr__Mm *mm,
			const bool *skip)
{
	long first, last;

	if (!skip || !a->pages_vstart || a->pages_vend[r] <= a->pages_vstart[r])
		return false;
	first = image_area_index(mm, a->pages_vstart[r]);
	last = image_area_index(mm, a->pages_vend[r] - 1);
	if (first < 0 || last < first)
		return false;
	for (long i = first; i <= last; i++)
		if (!skip[i])
			return false;
	return true;
}

int image_resolve_pages(struct loaded_image *im, size_t pi, unsigned flags,
			struct img_page_src **out, size_t *nout)
{
	return image_resolve_pages_skip(im, pi, flags, NULL, out, nout);
}

int image_resolve_pages_skip(struct loaded_image *im, size_t pi, unsigned flags, const bool *skip,
			     struct img_page_src **out, size_t *nout)
{
	const Rtcr__Mm *mm = im->mm[pi];
	int32_t pid = im->procs[pi]->pid;
	struct src_list l = { 0 };
	uint64_t **need = NULL, missing = 0;
	int ret = 0;

	*out = NULL;
	*nout = 0;
	if (!mm)
		return 0;     /* a zombie */

	/* The pages it inherits (a bitmap only for areas that inherit: an
	 * area can be a huge reservation). */
	need = xzalloc((mm->n_vmas + 1) * sizeof(*need));
	for (size_t i = 0; i < mm->n_vmas && !ret; i++) {
		const Rtcr__Vma *v = mm->vmas[i];
		uint64_t npg = (v->end - v->start) / PAGE_SIZE;
		if (!v->n_inherited || (skip && skip[i]))
			continue;
		need[i] = xzalloc((npg / 64 + 1) * sizeof(uint64_t));
		for (size_t k = 0; k + 1 < v->n_inherited && !ret; k += 2) {
			uint64_t first = (v->inherited[k] - v->start) / PAGE_SIZE;
			if (v->inherited[k] < v->start || (v->inherited[k] & ~PAGE_MASK) ||
			    first > npg || v->inherited[k + 1] > npg - first) {
				pr_err("%s: pid %d: inherited pages at %#llx lie outside their area",
				       im->dir, pid, (unsigned long long)v->inherited[k]);
				ret = -EINVAL;
				break;
			}
			for (uint64_t p = first; p < first + v->inherited[k + 1]; p++) {
				if (bit_test(need[i], p)) {
					pr_err("%s: pid %d: the page at %#llx is inherited twice", im->dir,
					       pid, (unsigned long long)(v->start + p * PAGE_SIZE));
					ret = -EINVAL;
					break;
				}
				bit_set(need[i], p);
			}
			missing += v->inherited[k + 1];
		}
	}

	/* The pages this image stores. */
	for (uint32_t r = 0; r < im->nr_pages_recs && !ret && !(flags & IMG_RESOLVE_INHERITED_ONLY);
	     r++) {
		const struct img_pages_hdr *ph;
		const struct img_page_run *runs;
		const char *data;
		if (im->pages_pid[r] != pid || rec_skipped(im, r, mm, skip))
			continue;
		ret = pages_of(im, r, flags, &ph, &runs, (const void **)&data);
		for (uint32_t k = 0; !ret && k < ph->nr_runs; k++) {
			long vi = image_area_index(mm, runs[k].vaddr);
			const Rtcr__Vma *v = vi >= 0 ? mm->vmas[vi] : NULL;
			uint64_t first;
			if (!v || runs[k].npages > (v->end - runs[k].vaddr) / PAGE_SIZE) {
				pr_err("%s: pid %d: %llu pages at %#llx lie outside any memory area",
				       im->dir, pid, (unsigned long long)runs[k].npages,
				       (unsigned long long)runs[k].vaddr);
				ret = -EINVAL;
				break;
			}
			first = (runs[k].vaddr - v->start) / PAGE_SIZE;
			for (uint64_t p = first; need[vi] && p < first + runs[k].npages; p++)
				if (bit_test(need[vi], p)) {
					pr_err("%s: pid %d: the page at %#llx is both stored and inherited",
					       im->dir, pid, (unsigned long long)(v->start + p * PAGE_SIZE));
					ret = -EINVAL;
					break;
				}
			if (!skip || !skip[vi])
				src_add(&l, runs[k].vaddr, runs[k].npages, data, im, r);
			data += runs[k].npages * PAGE_SIZE;
		}
	}

	/* Where the inherited ones are: the newest ancestor holding each,
	 * taken once. */
	for (struct loaded_image *a = im->parent; a && missing && !ret; a = a->parent) {
		for (uint32_t r = 0; r < a->nr_pages_recs && missing && !ret; r++) {
			const struct img_pages_hdr *ph;
			const struct img_page_run *runs;
			const char *data;
			if (a->pages_pid[r] != pid || rec_skipped(a, r, mm, skip))
				continue;
			ret = pages_of(a, r, flags, &ph, &runs, (const void **)&data);
			for (uint32_t k = 0; !ret && k < ph->nr_runs; k++) {
				const char *src = data;
				data += runs[k].npages * PAGE_SIZE;
				for (uint64_t p = 0; p < runs[k].npages; ) {
					uint64_t addr = runs[k].vaddr + p * PAGE_SIZE, n = 0, pg;
					long vi = image_area_index(mm, addr);
					const Rtcr__Vma *v = vi >= 0 ? mm->vmas[vi] : NULL;
					if (!v || !need[vi]) {
						p++;
						continue;
					}
					/* The run of needed pages from here, within the area. */
					pg = (addr - v->start) / PAGE_SIZE;
					while (p + n < runs[k].npages && addr + n * PAGE_SIZE < v->end &&
					       bit_test(need[vi], pg + n)) {
						bit_clear(need[vi], pg + n);
						n++;
					}
					if (!n) {
						p++;
						continue;
					}
					src_add(&l, addr, n, src + p * PAGE_SIZE, a, r);
					missing -= n;
					p += n;
				}
			}
		}
	}
	if (!ret && missing) {
		uint64_t at = 0;
		for (size_t i = 0; i < mm->n_vmas && !at; i++) {
			uint64_t npg = (mm->vmas[i]->end - mm->vmas[i]->start) / PAGE_SIZE;
			for (uint64_t p = 0; need[i] && p < npg && !at; p++)
				if (bit_test(need[i], p))
					at = mm->vmas[i]->start + p * PAGE_SIZE;
		}
		pr_err("%s: pid %d: %llu pages it inherits (the first at %#llx) are in none of its "
		       "parent images (a broken chain)", im->dir, pid, (unsigned long long)missing,
		       (unsigned long long)at);
		ret = -EINVAL;
	}
	for (size_t i = 0; i < mm->n_vmas; i++)
		free(need[i]);
	free(need);

	/* In address order; neighbours that continue each other in the same
	 * source and area become one run. */
	if (!ret && l.n)
		qsort(l.v, l.n, sizeof(*l.v), src_cmp);
	if (!ret) {
		size_t o = 0;
		for (size_t i = 0; i < l.n && !ret; i++) {
			struct img_page_src *prev = o ? &l.v[o - 1] : NULL;
			uint64_t prev_end = prev ? prev->vaddr + prev->npages * PAGE_SIZE : 0;
			if (prev && prev_end > l.v[i].vaddr) {
				pr_err("%s: pid %d: the page at %#llx is stored twice", im->dir, pid,
				       (unsigned long long)l.v[i].vaddr);
				ret = -EINVAL;
			} else if (prev && prev_end == l.v[i].vaddr &&
				   (const char *)prev->data + prev->npages * PAGE_SIZE == l.v[i].data &&
				   prev->from == l.v[i].from && prev->rec == l.v[i].rec &&
				   image_area_index(mm, prev->vaddr) == image_area_index(mm, l.v[i].vaddr)) {
				prev->npages += l.v[i].npages;
			} else {
				l.v[o++] = l.v[i];
			}
		}
		l.n = o;
	}
	if (ret) {
		free(l.v);
		return ret;
	}
	*out = l.v;
	*nout = l.n;
	return 0;
}

/* PAGES records of one process, cut like the dumper's. */
static int put_proc_pages(struct imgw *w, int32_t pid, const struct img_page_src *s, size_t n)
{
	struct img_page_src rec[REC_MAX_RUNS];
	uint32_t nr = 0;
	uint64_t npages = 0;
	int ret = 0;

	for (size_t i = 0; i < n && !ret; i++) {
		uint64_t done = 0;
		while (done < s[i].npages && !ret) {
			uint64_t take = MIN(s[i].npages - done, REC_MAX_PAGES - npages);
			rec[nr++] = (struct img_page_src){ s[i].vaddr + done * PAGE_SIZE, take,
				(const char *)s[i].data + done * PAGE_SIZE, s[i].from, s[i].rec };
			npages += take;
			done += take;
			if (npages == REC_MAX_PAGES || nr == REC_MAX_RUNS) {
				ret = imgw_put_pages_src(w, REC_PAGES, pid, rec, nr);
				nr = 0;
				npages = 0;
			}
		}
	}
	if (!ret && nr)
		ret = imgw_put_pages_src(w, REC_PAGES, pid, rec, nr);
	return ret;
}

static int write_merged(struct loaded_image *im, const char *outdir, const uint8_t id[16],
			struct img_page_src **src, const size_t *nsrc, struct flatten_result *res)
{
	Rtcr__Inventory *inv = im->inv;
	/* The inventory and the areas are written changed and put back as
	 * they were unpacked (protobuf-c frees what it allocated). */
	ProtobufCBinaryData saved_id = inv->image_id;
	protobuf_c_boolean saved_has_parent = inv->has_parent_id;
	ProtobufCBinaryData saved_parent_id = inv->parent_id;
	char *saved_parent_path = inv->parent_path;
	struct img_stream *sink;
	struct imgw w;
	int ret;

	ret = img_sink_file(outdir, IMG_FILE_NAME, &sink);
	if (ret)
		return ret;
	ret = imgw_begin(&w, sink, id);
	if (!ret) {
		inv->image_id = (ProtobufCBinaryData){ 16, (uint8_t *)id };
		inv->has_parent_id = 0;
		inv->parent_id = (ProtobufCBinaryData){ 0, NULL };
		inv->parent_path = NULL;
		ret = imgw_put_pb(&w, REC_INVENTORY, &inv->base);
		inv->image_id = saved_id;
		inv->has_parent_id = saved_has_parent;
		inv->parent_id = saved_parent_id;
		inv->parent_path = saved_parent_path;
	}
	if (!ret && im->objects)
		ret = imgw_put_pb(&w, REC_OBJECTS, &im->objects->base);
	for (size_t i = 0; i < im->nprocs && !ret; i++) {
		Rtcr__Mm *mm = im->mm[i];
		ret = imgw_put_pb(&w, REC_PROCESS, &im->procs[i]->base);
		if (ret || !mm)
			continue;
		/* Every area now stores all its pages. */
		for (size_t k = 0; k < mm->n_vmas; k++) {
			mm->vmas[k]->pages_stored = 0;
			mm->vmas[k]->n_inherited = 0;      /* the array stays for free_unpacked */
			mm->vmas[k]->has_pages_inherited = 0;
			mm->vmas[k]->pages_inherited = 0;
		}
		for (size_t k = 0; k < nsrc[i]; k++)
			mm->vmas[image_area_index(mm, src[i][k].vaddr)]->pages_stored += src[i][k].npages;
		ret = imgw_put_pb(&w, REC_MM, &mm->base);
		if (!ret)
			ret = imgw_put_pb(&w, REC_FILES, &im->files[i]->base);
	}
	for (size_t i = 0; i < im->nprocs && !ret; i++)
		ret = put_proc_pages(&w, im->procs[i]->pid, src[i], nsrc[i]);
	for (uint32_t r = 0; r < im->nr_obj_pages_recs && !ret; r++) {
		const struct img_pages_hdr *ph;
		const struct img_page_run *runs;
		const void *data;
		ret = image_obj_pages(im, r, &ph, &runs, &data);
		if (!ret)
			ret = imgw_put_obj_pages(&w, im->obj_pages_id[r], runs, ph->nr_runs, data,
						 ph->npages);
	}
	if (!ret)
		ret = imgw_finish(&w);    /* END, fsync, rename into place */
	if (!ret && res) {
		res->pages = w.pages;
		res->bytes = sink->pos;
	}
	imgw_release(&w);
	img_close(sink);                  /* uncommitted: the .partial file goes */
	return ret;
}

static bool same_dir(const char *a, const char *b)
{
	struct stat sa, sb;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

int image_flatten(const char *dir, const char *outdir, unsigned flags, struct flatten_result *res)
{
	struct loaded_image im;
	struct img_page_src **src = NULL;
	size_t *nsrc = NULL;
	uint8_t id[16];
	int ret;

	if (res)
		memset(res, 0, sizeof(*res));
	if (outdir && mkdir(outdir, 0700) < 0 && errno != EEXIST) {
		pr_perror("output directory %s", outdir);
		return -errno;
	}
	if (outdir && same_dir(dir, outdir))
		outdir = NULL;
	ret = image_load(dir, &im);
	if (ret)
		return ret;
	if (!im.inv->has_parent_id && !outdir) {
		if (res) {
			res->self_contained = true;
			res->images = 1;
			res->pages = im.total_pages;
			res->bytes = im.size;
		}
		image_unload(&im);
		return 0;
	}
	ret = image_load_chain(&im);
	if (ret)
		goto out;
	if (res) {
		res->self_contained = !im.inv->has_parent_id;
		for (struct loaded_image *a = &im; a; a = a->parent)
			res->images++;
	}

	src = xzalloc((im.nprocs + 1) * sizeof(*src));
	nsrc = xzalloc((im.nprocs + 1) * sizeof(*nsrc));
	for (size_t i = 0; i < im.nprocs && !ret; i++)
		ret = image_resolve_pages(&im, i, 0, &src[i], &nsrc[i]);
	if (ret)
		goto out;

	if (flags & IMG_FLATTEN_KEEP_ID) {
		memcpy(id, im.image_id, 16);
	} else {
		ssize_t got = getrandom(id, sizeof(id), 0);
		if (got != (ssize_t)sizeof(id)) {
			ret = got < 0 ? -errno : -EIO;
			pr_err("a new image id: getrandom: %s", strerror(-ret));
			goto out;
		}
	}
	ret = write_merged(&im, outdir ? outdir : dir, id, src, nsrc, res);
out:
	for (size_t i = 0; src && i < im.nprocs; i++)
		free(src[i]);
	free(src);
	free(nsrc);
	image_unload(&im);
	return ret;
}
