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

int image_load(const char *dir, struct loaded_image *im)
{
	struct imgr r;
	struct img_rec rec;
	char *path = xasprintf("%s/%s", dir, IMG_FILE_NAME);
	uint32_t cap = 0;
	int ret;

	memset(im, 0, sizeof(*im));
	ret = img_source_file(path, &im->src);
	if (ret) {
		if (ret == -ENOENT)
			pr_err("%s: no image here (missing, or the dump did not finish)", dir);
		free(path);
		return ret;
	}
	free(path);
	im->size = im->src->size;
	ret = imgr_begin(&r, im->src);
	if (ret)
		goto out;
	memcpy(im->image_id, r.image_id, 16);
	while ((ret = imgr_next(&r, &rec)) > 0) {
		const void *data;
		if (rec.type == REC_PAGES) {
			/* Located now, verified when restore copies it. */
			const struct img_pages_hdr *ph = img_map(im->src, rec.off, sizeof(*ph));
			uint64_t n;
			int32_t pid = ph ? ph->pid : 0;
			ret = imgr_skip_pages(&r, &rec, &n);
			if (ret)
				break;
			if (im->nr_pages_recs == cap) {
				cap = cap ? cap * 2 : 64;
				im->pages_off = xrealloc(im->pages_off, cap * sizeof(uint64_t));
				im->pages_len = xrealloc(im->pages_len, cap * sizeof(uint64_t));
				im->pages_csum = xrealloc(im->pages_csum, cap * sizeof(uint64_t));
				im->pages_pid = xrealloc(im->pages_pid, cap * sizeof(int32_t));
			}
			im->pages_pid[im->nr_pages_recs] = pid;
			im->pages_off[im->nr_pages_recs] = rec.off;
			im->pages_len[im->nr_pages_recs] = rec.len;
			im->pages_csum[im->nr_pages_recs] = rec.csum;
			im->nr_pages_recs++;
			im->total_pages += n;
			continue;
		}
		ret = imgr_payload(&r, &rec, &data);
		if (ret)
			break;
		switch (rec.type) {
		case REC_INVENTORY:
			ret = take((void **)&im->inv, "inventory", &rec, &rtcr__inventory__descriptor, data);
			break;
		case REC_PROCESS:
			ret = add_proc(im, &rec, data);
			break;
		case REC_MM:
		case REC_FILES:
			ret = add_part(im, &rec, data);
			break;
		default:
			break;   /* optional record of a newer rtcr */
		}
		if (ret)
			break;
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
	}
out:
	imgr_release(&r);
	if (ret)
		image_unload(im);
	return ret;
}

int image_pages(struct loaded_image *im, uint32_t i, const struct img_pages_hdr **hdr,
		const struct img_page_run **runs, const void **data)
{
	const void *p = img_map(im->src, im->pages_off[i], im->pages_len[i]);

	if (!p || XXH3_64bits(p, im->pages_len[i]) != im->pages_csum[i]) {
		pr_err("%s: pages record at byte %llu is corrupted (checksum mismatch)", im->src->name,
		       (unsigned long long)im->pages_off[i]);
		return -EINVAL;
	}
	if (img_pages_parse(p, im->pages_len[i], hdr, runs, data)) {
		pr_err("%s: pages record at byte %llu is malformed", im->src->name,
		       (unsigned long long)im->pages_off[i]);
		return -EINVAL;
	}
	return 0;
}

void image_unload(struct loaded_image *im)
{
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
	free(im->pages_off);
	free(im->pages_len);
	free(im->pages_csum);
	img_close(im->src);
	memset(im, 0, sizeof(*im));
}
