/*
 * The pages one address space still lacks, for the lazy page server:
 * extents of pages at their current addresses, each with the image data
 * it must receive. Placing pages, MADV_DONTNEED and munmap drop ranges;
 * mremap moves them; fork copies the whole set.
 */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "mem/lazy.h"

static void insert_at(struct lazy_pending *p, size_t i, const struct lazy_ext *e)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
	}
	memmove(&p->v[i + 1], &p->v[i], (p->n - i) * sizeof(*p->v));
	p->v[i] = *e;
	p->n++;
	p->pages += e->npages;
}

static void remove_at(struct lazy_pending *p, size_t i)
{
	p->pages -= p->v[i].npages;
	memmove(&p->v[i], &p->v[i + 1], (p->n - i - 1) * sizeof(*p->v));
	p->n--;
}

static uint64_t ext_end(const struct lazy_ext *e)
{
	return e->addr + e->npages * PAGE_SIZE;
}

size_t lazy_pending_lower(const struct lazy_pending *p, uint64_t addr)
{
	size_t lo = 0, hi = p->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ext_end(&p->v[mid]) > addr)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

long lazy_pending_find(const struct lazy_pending *p, uint64_t addr)
{
	size_t i = lazy_pending_lower(p, addr);
	return i < p->n && p->v[i].addr <= addr ? (long)i : -1;
}

/* Extents come in address order (image_resolve_pages()), or anywhere
 * free (mremap): placed in order either way. */
static void add_ext(struct lazy_pending *p, const struct lazy_ext *e)
{
	size_t i = p->n && p->v[p->n - 1].addr < e->addr ? p->n : lazy_pending_lower(p, e->addr);
	if (e->npages)
		insert_at(p, i, e);
}

void lazy_pending_add(struct lazy_pending *p, const struct img_page_src *s)
{
	struct lazy_ext e = { s->vaddr, s->npages, s->data, s->from, s->rec };
	add_ext(p, &e);
}

void lazy_pending_drop(struct lazy_pending *p, uint64_t start, uint64_t end)
{
	size_t i = lazy_pending_lower(p, start);

	while (i < p->n && p->v[i].addr < end) {
		struct lazy_ext *x = &p->v[i];
		uint64_t xe = ext_end(x);
		if (x->addr < start && xe > end) {
			/* The middle goes: the tail becomes an extent of its own. */
			uint64_t skip = (end - x->addr) / PAGE_SIZE;
			struct lazy_ext tail = *x;
			tail.addr = end;
			tail.npages = x->npages - skip;
			tail.data += skip * PAGE_SIZE;
			p->pages -= x->npages;
			x->npages = (start - x->addr) / PAGE_SIZE;
			p->pages += x->npages;
			insert_at(p, i + 1, &tail);
			return;
		}
		if (x->addr < start) {
			uint64_t keep = (start - x->addr) / PAGE_SIZE;
			p->pages -= x->npages - keep;
			x->npages = keep;
			i++;
		} else if (xe > end) {
			uint64_t k = (end - x->addr) / PAGE_SIZE;
			x->addr = end;
			x->data += k * PAGE_SIZE;
			x->npages -= k;
			p->pages -= k;
			return;
		} else {
			remove_at(p, i);
		}
	}
}

void lazy_pending_move(struct lazy_pending *p, uint64_t from, uint64_t to, uint64_t len)
{
	struct lazy_ext *moved = NULL;
	size_t n = 0;

	for (size_t i = lazy_pending_lower(p, from); i < p->n && p->v[i].addr < from + len; i++) {
		struct lazy_ext e = p->v[i];
		uint64_t s = MAX(e.addr, from), end = MIN(ext_end(&e), from + len);
		e.data += (s - e.addr);
		e.addr = s - from + to;
		e.npages = (end - s) / PAGE_SIZE;
		moved = xrealloc(moved, (n + 1) * sizeof(*moved));
		moved[n++] = e;
	}
	lazy_pending_drop(p, from, from + len);
	lazy_pending_drop(p, to, to + len);   /* mremap unmapped it first */
	for (size_t k = 0; k < n; k++)
		add_ext(p, &moved[k]);
	free(moved);
}

void lazy_pending_copy(struct lazy_pending *dst, const struct lazy_pending *src)
{
	dst->n = dst->cap = src->n;
	dst->pages = src->pages;
	dst->v = xmalloc((src->n + 1) * sizeof(*dst->v));
	memcpy(dst->v, src->v, src->n * sizeof(*src->v));
}

void lazy_pending_free(struct lazy_pending *p)
{
	free(p->v);
	memset(p, 0, sizeof(*p));
}
