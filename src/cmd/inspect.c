/*
 * rtcr inspect DIR [--json]: what an image holds, in words or in JSON.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "arch/x86/regs.h"
#include "cmd/cmd.h"
#include "common/util.h"
#include "files/files.h"
#include "image/load.h"
#include "mem/memobj.h"
#include "mem/vma.h"
#include "task/task.h"

static const char *syscall_name(long nr)
{
	switch (nr) {
	case __NR_read: return "read";
	case __NR_write: return "write";
	case __NR_poll: return "poll";
	case __NR_select: return "select";
	case __NR_pselect6: return "pselect6";
	case __NR_ppoll: return "ppoll";
	case __NR_nanosleep: return "nanosleep";
	case __NR_clock_nanosleep: return "clock_nanosleep";
	case __NR_pause: return "pause";
	case __NR_wait4: return "wait4";
	case __NR_waitid: return "waitid";
	case __NR_futex: return "futex";
	case __NR_epoll_wait: return "epoll_wait";
	case __NR_epoll_pwait: return "epoll_pwait";
	case __NR_rt_sigsuspend: return "rt_sigsuspend";
	case __NR_rt_sigtimedwait: return "rt_sigtimedwait";
	case __NR_accept: return "accept";
	case __NR_accept4: return "accept4";
	case __NR_recvfrom: return "recvfrom";
	case __NR_readv: return "readv";
	}
	return NULL;
}

static const char *prot_str(uint32_t p, char *b)
{
	b[0] = p & PROT_READ ? 'r' : '-';
	b[1] = p & PROT_WRITE ? 'w' : '-';
	b[2] = p & PROT_EXEC ? 'x' : '-';
	b[3] = 0;
	return b;
}

static void thread_state(const Rtcr__Thread *t, char *buf, size_t len)
{
	struct user_regs_struct r;
	const char *name;
	char tmp[96];

	regs_from_image(t->regs, &r);
	regs_syscall_state(&r, tmp, sizeof(tmp));
	name = (long)r.orig_rax >= 0 ? syscall_name((long)r.orig_rax) : NULL;
	if (name)
		snprintf(buf, len, "%s (%s)", tmp, name);
	else
		snprintf(buf, len, "%s", tmp);
}

static uint64_t proc_pages(const struct loaded_image *im, int i)
{
	uint64_t n = 0;
	for (size_t k = 0; im->mm[i] && k < im->mm[i]->n_vmas; k++)
		n += im->mm[i]->vmas[k]->pages_stored;
	return n;
}

static void print_process(const struct loaded_image *im, int idx)
{
	const Rtcr__Process *p = im->procs[idx];
	const Rtcr__Mm *mm = im->mm[idx];
	const Rtcr__Files *files = im->files[idx];
	uint64_t pages = proc_pages(im, idx);
	char b2[64];

	if (p->has_zombie && p->zombie) {
		int st = p->exit_status;
		printf("process    pid %d (%s), ppid %d, pgid %d, sid %d: zombie, %s %d\n", p->pid,
		       p->comm, p->ppid, p->pgid, p->sid, WIFSIGNALED(st) ? "killed by signal" : "exited",
		       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		return;
	}
	printf("process    pid %d (%s), ppid %d, pgid %d, sid %d%s\n", p->pid, p->comm, p->ppid,
	       p->pgid, p->sid, p->stopped ? ", stopped" : "");
	if (mm->exe)
		printf("           exe %s\n", mm->exe->path);
	printf("           cwd %s, root %s, umask %03o, personality %#x\n", p->cwd, p->root,
	       p->umask, p->personality);
	printf("           uid %u/%u/%u/%u gid %u/%u/%u/%u, %zu groups, caps eff %#llx bnd %#llx\n",
	       p->creds->uid, p->creds->euid, p->creds->suid, p->creds->fsuid, p->creds->gid,
	       p->creds->egid, p->creds->sgid, p->creds->fsgid, p->creds->n_groups,
	       (unsigned long long)p->creds->cap_eff, (unsigned long long)p->creds->cap_bnd);
	printf("           dumpable %d, no_new_privs %d, pdeathsig %s, subreaper %d\n", p->dumpable,
	       p->no_new_privs, p->pdeathsig ? sig_name(p->pdeathsig) : "none", p->child_subreaper);
	for (size_t i = 0; i < p->n_itimers; i++)
		printf("           itimer %s: %.3f s left, interval %.3f s\n",
		       p->itimers[i]->which == 0 ? "real" : p->itimers[i]->which == 1 ? "virtual" : "prof",
		       p->itimers[i]->value_us / 1e6, p->itimers[i]->interval_us / 1e6);
	for (size_t i = 0; i < p->n_posix_timers; i++) {
		char tb[256];
		timers_describe(p->posix_timers[i], tb, sizeof(tb));
		printf("           %s\n", tb);
	}
	for (size_t i = 0; i < p->n_threads; i++) {
		const Rtcr__Thread *t = p->threads[i];
		char st[160];
		thread_state(t, st, sizeof(st));
		printf("thread     tid %d (%s): rip %#llx rsp %#llx, %s\n", t->tid, t->comm,
		       (unsigned long long)t->regs->rip, (unsigned long long)t->regs->rsp, st);
		printf("           xstate %zu bytes, fs_base %#llx, blocked %#llx, %zu pending\n",
		       t->xstate.len, (unsigned long long)t->regs->fs_base,
		       (unsigned long long)t->blocked, t->n_pending);
		if (t->altstack)
			printf("           altstack %#llx size %llu\n", (unsigned long long)t->altstack->sp,
			       (unsigned long long)t->altstack->size);
		if (t->rseq)
			printf("           rseq %#llx len %u\n", (unsigned long long)t->rseq->ptr,
			       t->rseq->len);
	}
	printf("signals    %zu actions set, %zu pending for the process\n", p->n_sigactions,
	       p->n_shared_pending);
	for (size_t i = 0; i < p->n_sigactions; i++) {
		const Rtcr__SigAction *a = p->sigactions[i];
		const char *h = a->handler == 0 ? "default" : a->handler == 1 ? "ignore" : NULL;
		if (h)
			printf("  %-10s %s, flags %#llx\n", sig_name(a->sig), h, (unsigned long long)a->flags);
		else
			printf("  %-10s handler %#llx, flags %#llx, mask %#llx\n", sig_name(a->sig),
			       (unsigned long long)a->handler, (unsigned long long)a->flags,
			       (unsigned long long)a->mask);
	}
	printf("memory     %zu areas, %llu pages stored (%s)\n", mm->n_vmas,
	       (unsigned long long)pages, fmt_bytes(b2, sizeof(b2), pages * PAGE_SIZE));
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Rtcr__Vma *v = mm->vmas[i];
		char pb[4];
		char ob[32] = "";
		if (v->has_object)
			snprintf(ob, sizeof(ob), "object %u", v->object);
		char ib[40] = "";
		if (v->pages_inherited)
			snprintf(ib, sizeof(ib), " (+%llu in parent)", (unsigned long long)v->pages_inherited);
		printf("  %012llx-%012llx %s %-12s %7llu pages%s %s%s%s\n", (unsigned long long)v->start,
		       (unsigned long long)v->end, prot_str(v->prot, pb), vma_kind_name(v->kind),
		       (unsigned long long)v->pages_stored, ib, v->file ? v->file->path : "", ob,
		       v->start <= mm->start_brk && v->end >= mm->brk && v->kind == RTCR__VMA_KIND__ANON_PRIVATE
		       ? "[heap]" : v->start <= mm->start_stack && v->end > mm->start_stack ? "[stack]" : "");
	}
	printf("handles    %zu fds\n", files->n_fds);
	for (size_t i = 0; i < files->n_fds; i++) {
		char d[512];
		files_describe(files->fds[i], d, sizeof(d));
		printf("  fd %-4d %s%s\n", files->fds[i]->fd, d, files->fds[i]->cloexec ? ", cloexec" : "");
	}
	for (size_t i = 0; i < files->n_pipes; i++)
		printf("  pipe:[%llu] %zu bytes in flight, capacity %u\n",
		       (unsigned long long)files->pipes[i]->id, files->pipes[i]->data.len,
		       files->pipes[i]->capacity);
}

static void print_text(const struct loaded_image *im)
{
	const Rtcr__Inventory *inv = im->inv;
	char b1[64], tbuf[64];
	time_t tt = inv->dump_time_ns / 1000000000ULL;
	struct tm tm;

	localtime_r(&tt, &tm);
	strftime(tbuf, sizeof(tbuf), "%Y-%m-%d %H:%M:%S", &tm);
	printf("image      %s (%s), format %u, written by rtcr %s\n", im->src->name,
	       fmt_bytes(b1, sizeof(b1), im->size), inv->format_version, inv->tool_version);
	printf("dumped     %s on %s, kernel %s%s\n", tbuf, inv->hostname ? inv->hostname : "?",
	       inv->kernel_release, inv->leave_running ? ", left running" : "");
	printf("cpu        %s, XCR0 %#llx, xsave %u bytes\n", inv->cpu->vendor,
	       (unsigned long long)inv->cpu->xfeatures, inv->cpu->xsave_size);
	if (inv->netns)
		printf("netns      %s%s%llu\n", inv->netns->name ? inv->netns->name : "",
		       inv->netns->name ? ", inode " : "inode ", (unsigned long long)inv->netns->ino);
	if (inv->net_lock) {
		printf("net lock   nft table inet %s, %zu connection%s (removed by restore or rtcr unlock)\n",
		       inv->net_lock->table, inv->net_lock->n_connections,
		       inv->net_lock->n_connections == 1 ? "" : "s");
		for (size_t i = 0; i < inv->net_lock->n_connections; i++)
			printf("  %s\n", inv->net_lock->connections[i]);
	}
	if (inv->has_parent_id) {
		uint64_t inh = 0;
		for (size_t i = 0; i < im->nprocs; i++)
			for (size_t k = 0; im->mm[i] && k < im->mm[i]->n_vmas; k++)
				inh += im->mm[i]->vmas[k]->pages_inherited;
		printf("parent     %s: incremental image, %llu pages here, %llu unchanged pages in "
		       "the chain\n", inv->parent_path ? inv->parent_path : "?",
		       (unsigned long long)im->total_pages, (unsigned long long)inh);
		for (const struct loaded_image *a = im->parent; a; a = a->parent)
			printf("  <- %s: %llu pages%s\n", a->dir, (unsigned long long)a->total_pages,
			       a->inv->has_parent_id ? "" : " (full image)");
		if (!im->parent)
			printf("  <- (not loaded: see the error above)\n");
	}
	if (im->nprocs > 1) {
		printf("tree       %zu processes\n", im->nprocs);
		for (size_t i = 0; i < im->nprocs; i++) {
			const Rtcr__Process *p = im->procs[i];
			int depth = 0;
			for (int a = image_proc_index(im, p->ppid); i && a >= 0;
			     a = a ? image_proc_index(im, im->procs[a]->ppid) : -1)
				depth++;
			printf("  %*s%d %s%s\n", depth * 2, "", p->pid, p->comm,
			       p->has_zombie && p->zombie ? " (zombie)" : "");
		}
	}
	for (size_t i = 0; im->objects && i < im->objects->n_objects; i++) {
		const Rtcr__MemObject *o = im->objects->objects[i];
		char d[300];
		printf("%s %u: %s, %s, %llu pages stored", i ? "          " : "objects   ", o->id,
		       memobj_describe(o, d, sizeof(d)), fmt_bytes(b1, sizeof(b1), o->size),
		       (unsigned long long)o->pages_stored);
		if (o->sysv)
			printf(", mode %o, owner %u:%u%s%s", o->sysv->mode, o->sysv->uid, o->sysv->gid,
			       o->sysv->destroyed ? ", marked for deletion" : "",
			       o->sysv->locked ? ", locked" : "");
		if (o->has_seals && o->seals)
			printf(", seals %#x", o->seals);
		printf("\n");
	}
	for (size_t i = 0; i < im->nprocs; i++) {
		if (i)
			printf("\n");
		print_process(im, (int)i);
	}
}

static json_object *jhex(uint64_t v)
{
	char b[24];
	snprintf(b, sizeof(b), "0x%llx", (unsigned long long)v);
	return json_object_new_string(b);
}

/* One process as three JSON objects: itself, its memory, its handles. */
static void json_proc(const struct loaded_image *im, int idx, json_object **po, json_object **mo,
		      json_object **ho)
{
	const Rtcr__Process *p = im->procs[idx];
	const Rtcr__Mm *mm = im->mm[idx];
	const Rtcr__Files *files = im->files[idx];
	json_object *o, *a;

	o = json_object_new_object();
	json_object_object_add(o, "pid", json_object_new_int(p->pid));
	json_object_object_add(o, "ppid", json_object_new_int(p->ppid));
	json_object_object_add(o, "pgid", json_object_new_int(p->pgid));
	json_object_object_add(o, "sid", json_object_new_int(p->sid));
	json_object_object_add(o, "comm", json_object_new_string(p->comm));
	*po = o;
	*mo = json_object_new_array();
	*ho = json_object_new_array();
	if (p->has_zombie && p->zombie) {
		json_object_object_add(o, "zombie", json_object_new_boolean(1));
		json_object_object_add(o, "exit_status", json_object_new_int(p->exit_status));
		return;
	}
	json_object_object_add(o, "exe", mm->exe ? json_object_new_string(mm->exe->path) : NULL);
	json_object_object_add(o, "cwd", json_object_new_string(p->cwd));
	json_object_object_add(o, "root", json_object_new_string(p->root));
	json_object_object_add(o, "umask", json_object_new_int(p->umask));
	json_object_object_add(o, "uid", json_object_new_int(p->creds->uid));
	json_object_object_add(o, "gid", json_object_new_int(p->creds->gid));
	json_object_object_add(o, "stopped", json_object_new_boolean(p->stopped));
	a = json_object_new_array();
	for (size_t i = 0; i < p->n_rlimits; i++) {
		json_object *l = json_object_new_object();
		json_object_object_add(l, "resource", json_object_new_int(p->rlimits[i]->resource));
		json_object_object_add(l, "cur", jhex(p->rlimits[i]->cur));
		json_object_object_add(l, "max", jhex(p->rlimits[i]->max));
		json_object_array_add(a, l);
	}
	json_object_object_add(o, "rlimits", a);
	a = json_object_new_array();
	for (size_t i = 0; i < p->n_sigactions; i++) {
		json_object *s = json_object_new_object();
		json_object_object_add(s, "signal", json_object_new_int(p->sigactions[i]->sig));
		json_object_object_add(s, "handler", jhex(p->sigactions[i]->handler));
		json_object_object_add(s, "flags", jhex(p->sigactions[i]->flags));
		json_object_object_add(s, "mask", jhex(p->sigactions[i]->mask));
		json_object_array_add(a, s);
	}
	json_object_object_add(o, "sigactions", a);
	a = json_object_new_array();
	for (size_t i = 0; i < p->n_threads; i++) {
		const Rtcr__Thread *t = p->threads[i];
		json_object *j = json_object_new_object();
		char st[160];
		thread_state(t, st, sizeof(st));
		json_object_object_add(j, "tid", json_object_new_int(t->tid));
		json_object_object_add(j, "comm", json_object_new_string(t->comm));
		json_object_object_add(j, "rip", jhex(t->regs->rip));
		json_object_object_add(j, "rsp", jhex(t->regs->rsp));
		json_object_object_add(j, "fs_base", jhex(t->regs->fs_base));
		json_object_object_add(j, "state", json_object_new_string(st));
		json_object_object_add(j, "xstate_bytes", json_object_new_int(t->xstate.len));
		json_object_object_add(j, "blocked", jhex(t->blocked));
		json_object_object_add(j, "pending", json_object_new_int(t->n_pending));
		json_object_array_add(a, j);
	}
	json_object_object_add(o, "threads", a);

	a = *mo;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Rtcr__Vma *v = mm->vmas[i];
		json_object *j = json_object_new_object();
		char pb[4];
		json_object_object_add(j, "start", jhex(v->start));
		json_object_object_add(j, "end", jhex(v->end));
		json_object_object_add(j, "prot", json_object_new_string(prot_str(v->prot, pb)));
		json_object_object_add(j, "kind", json_object_new_string(vma_kind_name(v->kind)));
		json_object_object_add(j, "pages", json_object_new_int64(v->pages_stored));
		json_object_object_add(j, "pages_inherited", json_object_new_int64(v->pages_inherited));
		if (v->file)
			json_object_object_add(j, "file", json_object_new_string(v->file->path));
		if (v->has_object)
			json_object_object_add(j, "object", json_object_new_int(v->object));
		json_object_array_add(a, j);
	}

	a = *ho;
	for (size_t i = 0; i < files->n_fds; i++) {
		const Rtcr__Fd *e = files->fds[i];
		json_object *j = json_object_new_object();
		char d[512];
		files_describe(e, d, sizeof(d));
		json_object_object_add(j, "fd", json_object_new_int(e->fd));
		json_object_object_add(j, "kind", json_object_new_string(fd_ops_by_kind(e->kind) ?
			fd_ops_by_kind(e->kind)->name : "?"));
		json_object_object_add(j, "cloexec", json_object_new_boolean(e->cloexec));
		json_object_object_add(j, "description", json_object_new_string(d));
		if (e->reg) {
			json_object_object_add(j, "path", json_object_new_string(e->reg->file->path));
			json_object_object_add(j, "flags", json_object_new_int(e->reg->flags));
			json_object_object_add(j, "pos", json_object_new_int64(e->reg->pos));
		}
		json_object_array_add(a, j);
	}
}

static void print_json(const struct loaded_image *im)
{
	json_object *root = json_object_new_object(), *o, *procs = json_object_new_array();

	o = json_object_new_object();
	json_object_object_add(o, "path", json_object_new_string(im->src->name));
	json_object_object_add(o, "bytes", json_object_new_int64(im->size));
	json_object_object_add(o, "format_version", json_object_new_int(im->inv->format_version));
	json_object_object_add(o, "tool_version", json_object_new_string(im->inv->tool_version));
	json_object_object_add(o, "kernel", json_object_new_string(im->inv->kernel_release));
	json_object_object_add(o, "dump_time_ns", json_object_new_int64(im->inv->dump_time_ns));
	json_object_object_add(o, "pages", json_object_new_int64(im->total_pages));
	json_object_object_add(o, "page_records", json_object_new_int(im->nr_pages_recs));
	if (im->inv->has_parent_id) {
		char h[33];
		for (int i = 0; i < 16 && im->inv->parent_id.len == 16; i++)
			snprintf(h + 2 * i, 3, "%02x", im->inv->parent_id.data[i]);
		json_object_object_add(o, "parent_path", json_object_new_string(
			im->inv->parent_path ? im->inv->parent_path : ""));
		json_object_object_add(o, "parent_id", json_object_new_string(
			im->inv->parent_id.len == 16 ? h : ""));
	}
	if (im->inv->netns) {
		json_object *n = json_object_new_object();
		json_object_object_add(n, "inode", json_object_new_int64((int64_t)im->inv->netns->ino));
		if (im->inv->netns->name)
			json_object_object_add(n, "name", json_object_new_string(im->inv->netns->name));
		json_object_object_add(o, "netns", n);
	}
	if (im->inv->net_lock) {
		json_object *n = json_object_new_object(), *a = json_object_new_array();
		json_object_object_add(n, "table", json_object_new_string(im->inv->net_lock->table));
		for (size_t i = 0; i < im->inv->net_lock->n_connections; i++)
			json_object_array_add(a, json_object_new_string(im->inv->net_lock->connections[i]));
		json_object_object_add(n, "connections", a);
		json_object_object_add(o, "net_lock", n);
	}
	json_object_object_add(root, "image", o);
	for (size_t i = 0; i < im->nprocs; i++) {
		json_object *po, *mo, *ho, *e = json_object_new_object();
		json_proc(im, (int)i, &po, &mo, &ho);
		json_object_object_add(e, "process", po);
		json_object_object_add(e, "memory", mo);
		json_object_object_add(e, "handles", ho);
		json_object_array_add(procs, e);
		if (i == 0) {
			/* The root also at the top, for the common one-process case. */
			json_object_object_add(root, "process", json_object_get(po));
			json_object_object_add(root, "memory", json_object_get(mo));
			json_object_object_add(root, "handles", json_object_get(ho));
		}
	}
	json_object_object_add(root, "processes", procs);
	printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
						      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
}

int cmd_inspect(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, 0, 'j' },
		{ 0, 0, 0, 0 },
	};
	struct loaded_image im;
	bool json = false;
	int c;

	while ((c = getopt_long(argc, argv, "j", lo, NULL)) != -1) {
		if (c != 'j') {
			fprintf(stderr, "usage: rtcr inspect DIR [--json]\n");
			return 2;
		}
		json = true;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: rtcr inspect DIR [--json]\n");
		return 2;
	}
	if (image_load(argv[optind], &im))
		return 1;
	if (im.inv->has_parent_id && image_load_chain(&im)) {
		/* Shown as not loaded; the error says why. */
	}
	if (json)
		print_json(&im);
	else
		print_text(&im);
	image_unload(&im);
	return 0;
}
