#include "image/load.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "arch/x86/scratch_layout.h"
#include "common/util.h"

static int take(void **slot, const char *name, const struct img_rec *rec,
		const ProtobufCMessageDescriptor *d, const void *data)
{
	if (*slot) {
		pr_err("image has two %s records", name);
		return -EINVAL;
	}
	*slot = imgr_unpack(rec, d, data);
	return *slot ? 0 : -EINVAL;
}

int image_proc_index(const struct loaded_image *im, int32_t pid)
{
	for (size_t i = 0; i < im->nprocs; i++)
		if (im->procs[i]->pid == pid)
			return (int)i;
	return -1;
}

/* Records of one process arrive as PROCESS, then its MM and FILES. */
static int add_proc(struct loaded_image *im, const struct img_rec *rec, const void *data)
{
	Rtcr__Process *p = imgr_unpack(rec, &rtcr__process__descriptor, data);
	if (!p)
		return -EINVAL;
	if (image_proc_index(im, p->pid) >= 0) {
		pr_err("image has two process records for pid %d", p->pid);
		rtcr__process__free_unpacked(p, NULL);
		return -EINVAL;
	}
	im->procs = xrealloc(im->procs, (im->nprocs + 1) * sizeof(*im->procs));
	im->mm = xrealloc(im->mm, (im->nprocs + 1) * sizeof(*im->mm));
	im->files = xrealloc(im->files, (im->nprocs + 1) * sizeof(*im->files));
	im->procs[im->nprocs] = p;
	im->mm[im->nprocs] = NULL;
	im->files[im->nprocs] = NULL;
	im->nprocs++;
	return 0;
}

static int add_part(struct loaded_image *im, const struct img_rec *rec, const void *data)
{
	const char *what = rec->type == REC_MM ? "mm" : "files";
	void **slot;

	if (!im->nprocs) {
		pr_err("image lacks its process record (a %s record comes first)", what);
		return -EINVAL;
	}
	slot = rec->type == REC_MM ? (void **)&im->mm[im->nprocs - 1]
				   : (void **)&im->files[im->nprocs - 1];
	return take(slot, what, rec, rec->type == REC_MM ? &rtcr__mm__descriptor
						       : &rtcr__files__descriptor, data);
}

/* The processes form one tree rooted at the inventory's root, listed
 * parents first; live ones have their parts, zombies none. */
static int check_tree(struct loaded_image *im)
{
	if (!im->nprocs || im->procs[0]->pid != im->inv->root_pid) {
		pr_err("%s: the first process record is not the root pid %d", im->src->name,
		       im->inv->root_pid);
		return -EINVAL;
	}
	for (size_t i = 0; i < im->nprocs; i++) {
		Rtcr__Process *p = im->procs[i];
		bool zombie = p->has_zombie && p->zombie;
		if (zombie ? (im->mm[i] || im->files[i]) : (!im->mm[i] || !im->files[i])) {
			pr_err("%s: pid %d %s", im->src->name, p->pid,
			       zombie ? "is a zombie, yet has memory or files" :
			       !im->mm[i] ? "lacks its mm record" : "lacks its files record");
			return -EINVAL;
		}
		if (!zombie && (p->n_threads < 1 || p->n_threads > SCRATCH_MAX_SLOTS ||
				p->threads[0]->tid != p->pid || !p->creds)) {
			pr_err("%s: process record of pid %d holds %zu threads, the first tid %d: "
			       "malformed", im->src->name, p->pid, p->n_threads,
			       p->n_threads ? p->threads[0]->tid : 0);
			return -EINVAL;
		}
		if (zombie && i == 0) {
			pr_err("%s: the root process is a zombie", im->src->name);
			return -EINVAL;
		}
		if (i > 0) {
			int pi = image_proc_index(im, p->ppid);
			if (pi < 0 || (size_t)pi >= i) {
				pr_err("%s: pid %d: its parent %d is not listed before it", im->src->name,
				       p->pid, p->ppid);
				return -EINVAL;
			}
		}
	}
	return 0;
}

const Rtcr__MemObject *image_object(const struct loaded_image *im, uint32_t id)
{
	for (size_t i = 0; im->objects && i < im->objects->n_objects; i++)
		if (im->objects->objects[i]->id == id)
			return im->objects->objects[i];
	return NULL;
}

/* Every object referred to exists and is of a kind that fits the area. */
static int check_objects(struct loaded_image *im)
{
	for (size_t i = 0; im->objects && i < im->objects->n_objects; i++) {
		const Rtcr__MemObject *o = im->objects->objects[i];
		if (!o->id || image_object(im, o->id) != o ||
		    (o->kind == RTCR__MEM_OBJECT_KIND__OBJ_SYSV_SHM) != !!o->sysv ||
		    (o->kind != RTCR__MEM_OBJECT_KIND__OBJ_SYSV_SHM && !o->name)) {
			pr_err("%s: memory object %u is malformed or listed twice", im->src->name, o->id);
			return -EINVAL;
		}
	}
	for (size_t p = 0; p < im->nprocs; p++)
		for (size_t k = 0; im->mm[p] && k < im->mm[p]->n_vmas; k++) {
			const Rtcr__Vma *v = im->mm[p]->vmas[k];
			const Rtcr__MemObject *o = v->has_object ? image_object(im, v->object) : NULL;
			bool sysv = v->kind == RTCR__VMA_KIND__SYSV_SHM;
			bool file = v->kind == RTCR__VMA_KIND__FILE_PRIVATE ||
				    v->kind == RTCR__VMA_KIND__FILE_SHARED;
			if ((v->has_object || sysv) &&
			    (!o || (sysv != (o->kind == RTCR__MEM_OBJECT_KIND__OBJ_SYSV_SHM)) ||
			     (!sysv && !file))) {
				pr_err("%s: pid %d: area %llx-%llx refers to memory object %u, which the image "
				       "lacks or which does not fit it", im->src->name, im->procs[p]->pid,
				       (unsigned long long)v->start, (unsigned long long)v->end, v->object);
				return -EINVAL;
			}
		}
	for (uint32_t i = 0; i < im->nr_obj_pages_recs; i++)
		if (!image_object(im, im->obj_pages_id[i])) {
			pr_err("%s: object pages record at byte %llu belongs to object %u, which the image "
			       "does not hold", im->src->name, (unsigned long long)im->obj_pages_off[i],
			       im->obj_pages_id[i]);
			return -EINVAL;
		}
	return 0;
}

/* A PAGES or OBJ_PAGES record found at payload offset off. */
static void add_pages_rec(struct loaded_image *im, uint32_t type, uint64_t off, uint64_t len,
			  uint64_t csum, int32_t id, uint64_t npages, uint32_t *cap,
			  const struct img_index_ent *e)
{
	if (type == REC_OBJ_PAGES) {
		uint32_t k = im->nr_obj_pages_recs;
		im->obj_pages_off = xrealloc(im->obj_pages_off, (k + 1) * sizeof(uint64_t));
		im->obj_pages_len = xrealloc(im->obj_pages_len, (k + 1) * sizeof(uint64_t));
		im->obj_pages_csum = xrealloc(im->obj_pages_csum, (k + 1) * sizeof(uint64_t));
		im->obj_pages_id = xrealloc(im->obj_pages_id, (k + 1) * sizeof(uint32_t));
		im->obj_pages_off[k] = off;
		im->obj_pages_len[k] = len;
		im->obj_pages_csum[k] = csum;
		im->obj_pages_id[k] = (uint32_t)id;
		im->nr_obj_pages_recs++;
	} else {
		if (im->nr_pages_recs == *cap) {
			*cap = *cap ? *cap * 2 : 64;
			im->pages_off = xrealloc(im->pages_off, *cap * sizeof(uint64_t));
			im->pages_len = xrealloc(im->pages_len, *cap * sizeof(uint64_t));
			im->pages_csum = xrealloc(im->pages_csum, *cap * sizeof(uint64_t));
			im->pages_pid = xrealloc(im->pages_pid, *cap * sizeof(int32_t));
			im->pages_vstart = xrealloc(im->pages_vstart, *cap * sizeof(uint64_t));
			im->pages_vend = xrealloc(im->pages_vend, *cap * sizeof(uint64_t));
			im->pages_nruns = xrealloc(im->pages_nruns, *cap * sizeof(uint32_t));
		}
		im->pages_nruns[im->nr_pages_recs] = e ? e->nr_runs : 0;
		/* Unknown span (walked): 0..max, never skipped. */
		im->pages_vstart[im->nr_pages_recs] = e ? e->vstart : 0;
		im->pages_vend[im->nr_pages_recs] = e ? e->vend : UINT64_MAX;
		im->pages_pid[im->nr_pages_recs] = id;
		im->pages_off[im->nr_pages_recs] = off;
		im->pages_len[im->nr_pages_recs] = len;
		im->pages_csum[im->nr_pages_recs] = csum;
		im->nr_pages_recs++;
	}
	im->total_pages += npages;
}

/* A metadata record's verified payload. */
static int load_meta(struct loaded_image *im, const struct img_rec *rec, const void *data)
{
	switch (rec->type) {
	case REC_INVENTORY:
		return take((void **)&im->inv, "inventory", rec, &rtcr__inventory__descriptor, data);
	case REC_PROCESS:
		return add_proc(im, rec, data);
	case REC_MM:
	case REC_FILES:
		return add_part(im, rec, data);
	case REC_OBJECTS:
		return take((void **)&im->objects, "objects", rec, &rtcr__mem_objects__descriptor,
			    data);
	default:
		return 0;   /* optional record of a newer rtcr, or the index */
	}
}

/*
 * Through the INDEX (image/format.h): metadata records are read where it
 * says, PAGES records are only located; nothing else of the file is
 * touched (a walk reads a header in every PAGES record: 512 of them for
 * 2 GiB). 1 if the index cannot be used (no index, or something does not
 * hold: the walk then says what), 0, or -errno.
 */
static int load_indexed(struct loaded_image *im, uint32_t *cap)
{
	struct img_index_ent *e;
	size_t n;
	int ret = 0;

	if (getenv("RTCR_IMAGE_WALK") || imgr_index(im->src, &e, &n))
		return 1;
	/* Every metadata record's header and payload as the index says,
	 * before anything is taken from them. */
	for (size_t i = 0; i < n; i++) {
		const struct img_rec_hdr *h;
		struct img_rec_hdr want;
		const void *p;
		if (e[i].type == REC_PAGES || e[i].type == REC_OBJ_PAGES)
			continue;
		img_rec_hdr_fill(&want, e[i].type, e[i].flags, e[i].len, e[i].csum);
		h = img_map(im->src, e[i].off, sizeof(*h));
		p = img_map(im->src, e[i].off + sizeof(*h), e[i].len);
		if (!h || !p || memcmp(h, &want, sizeof(want)) || XXH3_64bits(p, e[i].len) != e[i].csum) {
			free(e);
			return 1;
		}
	}
	for (size_t i = 0; i < n && !ret; i++) {
		struct img_rec rec = { .type = e[i].type, .flags = e[i].flags, .len = e[i].len,
				       .csum = e[i].csum, .off = e[i].off + sizeof(struct img_rec_hdr) };
		if (e[i].type == REC_PAGES || e[i].type == REC_OBJ_PAGES)
			add_pages_rec(im, e[i].type, rec.off, rec.len, rec.csum, e[i].pid, e[i].npages,
				      cap, &e[i]);
		else
			ret = load_meta(im, &rec, img_map(im->src, rec.off, rec.len));
	}
	free(e);
	im->indexed = !ret;
	return ret;
}

int image_load(const char *dir, struct loaded_image *im)
{
	struct imgr r;
	struct img_rec rec;
	char *path = xasprintf("%s/%s", dir, IMG_FILE_NAME);
	uint32_t cap = 0;
	int ret;

	memset(im, 0, sizeof(*im));
	im->dir = xstrdup(dir);
	ret = img_source_file(path, &im->src);
	if (ret) {
		if (ret == -ENOENT)
			pr_err("%s: no image here (missing, or the dump did not finish)", dir);
		free(path);
		free(im->dir);
		im->dir = NULL;
		return ret;
	}
	free(path);
	im->size = im->src->size;
	ret = imgr_begin(&r, im->src);
	if (ret)
		goto out;
	memcpy(im->image_id, r.image_id, 16);
	ret = load_indexed(im, &cap);
	if (ret < 0)
		goto out;
	while (ret == 1 && (ret = imgr_next(&r, &rec)) > 0) {
		const void *data;
		if (rec.type == REC_PAGES || rec.type == REC_OBJ_PAGES) {
			/* Located now, verified when restore copies it. */
			const struct img_pages_hdr *ph = img_map(im->src, rec.off, sizeof(*ph));
			int32_t id = ph ? ph->pid : 0;
			uint64_t n;
			ret = imgr_skip_pages(&r, &rec, &n);
			if (ret)
				break;
			add_pages_rec(im, rec.type, rec.off, rec.len, rec.csum, id, n, &cap, NULL);
			ret = 1;
			continue;
		}
		ret = imgr_payload(&r, &rec, &data);
		if (ret)
			break;
		ret = load_meta(im, &rec, data);
		if (ret)
			break;
		ret = 1;
	}
	if (ret == 0) {
		if (!im->inv || !im->nprocs) {
			pr_err("%s: image lacks its %s record", im->src->name,
			       !im->inv ? "inventory" : "process");
			ret = -EINVAL;
		} else if (im->inv->image_id.len != 16 ||
			   memcmp(im->inv->image_id.data, im->image_id, 16)) {
			pr_err("%s: inventory does not belong to this image (id mismatch)", im->src->name);
			ret = -EINVAL;
		} else {
			ret = check_tree(im);
		}
		for (uint32_t i = 0; !ret && i < im->nr_pages_recs; i++) {
			int pi = image_proc_index(im, im->pages_pid[i]);
			if (pi < 0 || !im->mm[pi]) {
				pr_err("%s: pages record at byte %llu belongs to pid %d, which the image "
				       "does not hold alive", im->src->name,
				       (unsigned long long)im->pages_off[i], im->pages_pid[i]);
				ret = -EINVAL;
			}
		}
		if (!ret)
			ret = check_objects(im);
	}
out:
	imgr_release(&r);
	if (ret)
		image_unload(im);
	return ret;
}

static int pages_at(struct loaded_image *im, const char *what, uint64_t off, uint64_t len,
		    uint64_t csum, const struct img_pages_hdr **hdr, const struct img_page_run **runs,
		    const void **data)
{
	const struct img_rec_hdr *h = off >= sizeof(*h) ? img_map(im->src, off - sizeof(*h), sizeof(*h))
						       : NULL;
	const void *p = img_map(im->src, off, len);

	/* Its header too: a load through the INDEX did not read it. */
	if (!h || h->hcsum != XXH3_64bits(h, offsetof(struct img_rec_hdr, hcsum)) || h->len != len ||
	    h->csum != csum) {
		pr_err("%s: record header at byte %llu is corrupted", im->src->name,
		       (unsigned long long)(off - sizeof(*h)));
		return -EINVAL;
	}
	if (!p || XXH3_64bits(p, len) != csum) {
		pr_err("%s: %s record at byte %llu is corrupted (checksum mismatch)", im->src->name,
		       what, (unsigned long long)off);
		return -EINVAL;
	}
	if (img_pages_parse(p, len, hdr, runs, data)) {
		pr_err("%s: %s record at byte %llu is malformed", im->src->name, what,
		       (unsigned long long)off);
		return -EINVAL;
	}
	return 0;
}

int image_pages(struct loaded_image *im, uint32_t i, const struct img_pages_hdr **hdr,
		const struct img_page_run **runs, const void **data)
{
	int ret = pages_at(im, "pages", im->pages_off[i], im->pages_len[i], im->pages_csum[i], hdr,
			   runs, data);
	uint64_t lo = UINT64_MAX, hi = 0, off = im->pages_off[i];

	if (ret || !im->pages_nruns || !im->pages_nruns[i])
		return ret;
	/* Loaded through the INDEX: the record is what its entry said (the
	 * owner, the runs, their span; one run: where its data starts), or
	 * pages found from the entry alone would differ from the record's. */
	for (uint32_t k = 0; k < (*hdr)->nr_runs; k++) {
		lo = MIN(lo, (*runs)[k].vaddr);
		hi = MAX(hi, (*runs)[k].vaddr + (*runs)[k].npages * PAGE_SIZE);
	}
	if ((*hdr)->pid != im->pages_pid[i] || (*hdr)->nr_runs != im->pages_nruns[i] ||
	    lo != im->pages_vstart[i] || hi != im->pages_vend[i] ||
	    ((*hdr)->nr_runs == 1 &&
	     off + (*hdr)->data_off != ALIGN_UP(off + sizeof(**hdr) + sizeof(**runs), IMG_ALIGN))) {
		pr_err("%s: pages record at byte %llu does not match the image's index",
		       im->src->name, (unsigned long long)off);
		return -EINVAL;
	}
	return 0;
}

int image_pages_raw(struct loaded_image *im, uint32_t i, const struct img_pages_hdr **hdr,
		    const struct img_page_run **runs, const void **data)
{
	const void *p = img_map(im->src, im->pages_off[i], im->pages_len[i]);

	if (!p || img_pages_parse(p, im->pages_len[i], hdr, runs, data)) {
		pr_err("%s: pages record at byte %llu is malformed", im->src->name,
		       (unsigned long long)im->pages_off[i]);
		return -EINVAL;
	}
	return 0;
}

int image_pages_check(struct loaded_image *im, uint32_t i)
{
	const struct img_pages_hdr *ph;
	const struct img_page_run *runs;
	const void *data;
	int ret;

	if (!im->pages_ok)
		im->pages_ok = xzalloc(im->nr_pages_recs + 1);
	if (im->pages_ok[i])
		return 0;
	ret = image_pages(im, i, &ph, &runs, &data);
	if (!ret)
		im->pages_ok[i] = 1;
	return ret;
}

int image_obj_pages(struct loaded_image *im, uint32_t i, const struct img_pages_hdr **hdr,
		    const struct img_page_run **runs, const void **data)
{
	return pages_at(im, "object pages", im->obj_pages_off[i], im->obj_pages_len[i],
			im->obj_pages_csum[i], hdr, runs, data);
}

long image_area_index(const Rtcr__Mm *mm, uint64_t addr)
{
	size_t lo = 0, hi = mm->n_vmas;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (addr < mm->vmas[mid]->start)
			hi = mid;
		else if (addr >= mm->vmas[mid]->end)
			lo = mid + 1;
		else
			return (long)mid;
	}
	return -1;
}

int image_load_chain(struct loaded_image *im)
{
	struct loaded_image *cur = im;

	for (int depth = 0; cur->inv->has_parent_id; depth++) {
		const Rtcr__Inventory *inv = cur->inv;
		char *pdir;
		int ret;

		if (depth == 1000) {
			pr_err("%s: a chain of more than 1000 parent images (a loop?)", im->dir);
			return -ELOOP;
		}
		if (!inv->parent_path || inv->parent_id.len != 16) {
			pr_err("%s: incremental image without a usable parent reference", cur->dir);
			return -EINVAL;
		}
		pdir = inv->parent_path[0] == '/' ? xstrdup(inv->parent_path) :
			xasprintf("%s/%s", cur->dir, inv->parent_path);
		cur->parent = xzalloc(sizeof(*cur->parent));
		ret = image_load(pdir, cur->parent);
		if (ret) {
			pr_err("%s: its parent image %s cannot be used (the chain is broken)", cur->dir,
			       pdir);
			free(cur->parent);
			cur->parent = NULL;
			free(pdir);
			return ret;
		}
		if (memcmp(cur->parent->image_id, inv->parent_id.data, 16)) {
			pr_err("%s: the image in its parent directory %s is not the one it was made "
			       "from (another dump was written there since)", cur->dir, pdir);
			image_unload(cur->parent);
			free(cur->parent);
			cur->parent = NULL;
			free(pdir);
			return -EINVAL;
		}
		free(pdir);
		cur = cur->parent;
	}
	return 0;
}

void image_unload(struct loaded_image *im)
{
	if (im->parent) {
		image_unload(im->parent);
		free(im->parent);
	}
	free(im->dir);
	if (im->inv)
		rtcr__inventory__free_unpacked(im->inv, NULL);
	for (size_t i = 0; i < im->nprocs; i++) {
		rtcr__process__free_unpacked(im->procs[i], NULL);
		if (im->mm[i])
			rtcr__mm__free_unpacked(im->mm[i], NULL);
		if (im->files[i])
			rtcr__files__free_unpacked(im->files[i], NULL);
	}
	free(im->procs);
	free(im->mm);
	free(im->files);
	free(im->pages_pid);
	free(im->pages_vstart);
	free(im->pages_vend);
	free(im->pages_nruns);
	free(im->syn);
	free(im->pages_off);
	free(im->pages_len);
	free(im->pages_csum);
	free(im->pages_ok);
	if (im->objects)
		rtcr__mem_objects__free_unpacked(im->objects, NULL);
	free(im->obj_pages_off);
	free(im->obj_pages_len);
	free(im->obj_pages_csum);
	free(im->obj_pages_id);
	img_close(im->src);
	memset(im, 0, sizeof(*im));
}
