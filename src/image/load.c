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
			uint64_t n;
			ret = imgr_skip_pages(&r, &rec, &n);
			if (ret)
				break;
			if (im->nr_pages_recs == cap) {
				cap = cap ? cap * 2 : 64;
				im->pages_off = xrealloc(im->pages_off, cap * sizeof(uint64_t));
				im->pages_len = xrealloc(im->pages_len, cap * sizeof(uint64_t));
				im->pages_csum = xrealloc(im->pages_csum, cap * sizeof(uint64_t));
			}
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
			ret = take((void **)&im->proc, "process", &rec, &rtcr__process__descriptor, data);
			break;
		case REC_MM:
			ret = take((void **)&im->mm, "mm", &rec, &rtcr__mm__descriptor, data);
			break;
		case REC_FILES:
			ret = take((void **)&im->files, "files", &rec, &rtcr__files__descriptor, data);
			break;
		default:
			break;   /* optional record of a newer rtcr */
		}
		if (ret)
			break;
	}
	if (ret == 0) {
		if (!im->inv || !im->proc || !im->mm || !im->files) {
			pr_err("%s: image lacks its %s record", im->src->name,
			       !im->inv ? "inventory" : !im->proc ? "process" : !im->mm ? "mm" : "files");
			ret = -EINVAL;
		} else if (im->inv->image_id.len != 16 ||
			   memcmp(im->inv->image_id.data, im->image_id, 16)) {
			pr_err("%s: inventory does not belong to this image (id mismatch)", im->src->name);
			ret = -EINVAL;
		} else if (im->proc->n_threads < 1 || im->proc->n_threads > SCRATCH_MAX_SLOTS ||
			   im->proc->threads[0]->tid != im->proc->pid || !im->proc->creds) {
			pr_err("%s: process record holds %zu threads, the first tid %d for pid %d: "
			       "malformed", im->src->name, im->proc->n_threads,
			       im->proc->n_threads ? im->proc->threads[0]->tid : 0, im->proc->pid);
			ret = -EINVAL;
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
	if (im->proc)
		rtcr__process__free_unpacked(im->proc, NULL);
	if (im->mm)
		rtcr__mm__free_unpacked(im->mm, NULL);
	if (im->files)
		rtcr__files__free_unpacked(im->files, NULL);
	free(im->pages_off);
	free(im->pages_len);
	free(im->pages_csum);
	img_close(im->src);
	memset(im, 0, sizeof(*im));
}
