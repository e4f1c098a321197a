/*
 * System V shared memory, shared with a child:
 *   A  key KEY, 3 pages + 100 bytes, mode 0644 (IPC_SET), attached twice:
 *      read-write (its middle page then mprotect'ed read-only) and
 *      SHM_RDONLY
 *   B  IPC_PRIVATE, 1 MiB, pages 0, 100 and 127 written, the attachment's
 *      upper half unmapped, then IPC_RMID while attached (SHM_DEST)
 * A forked child shares both. Prints "SHMID A B" before READY.
 * After restore: same ids, key, size, mode, owner, SHM_DEST state and
 * attach counts; contents; same maps; the read-only attachment has no
 * VM_MAYWRITE; the child's writes to both segments are seen by the
 * parent (one segment, not copies); shmdt() works and lowers the count.
 * Removes A at the end.
 */
#include <sys/shm.h>
#include <sys/wait.h>

#include <signal.h>
#include <sys/prctl.h>

#include "memcheck.h"

#define ASZ (3 * PG + 100)
#define BSZ (1UL << 20)

static struct mapsnap before;

static struct shmid_ds stat_of(int id)
{
	struct shmid_ds ds;
	if (shmctl(id, IPC_STAT, &ds) < 0)
		fail("IPC_STAT %d: %s", id, strerror(errno));
	return ds;
}

int main(void)
{
	key_t key = 0x7c000000 | (getpid() & 0xffffff);
	struct shmid_ds ds, da0, db0;
	char *pa, *pa2, *pb;
	volatile int *flag, *answer;
	pid_t child;
	int a, b, st;

	stdout_warm();
	a = shmget(key, ASZ, 0600 | IPC_CREAT | IPC_EXCL);
	b = shmget(IPC_PRIVATE, BSZ, 0600 | IPC_CREAT);
	CHECK(a >= 0 && b >= 0, "shmget: %s", strerror(errno));
	printf("SHMID %d %d\n", a, b);
	fflush(stdout);
	ds = stat_of(a);
	ds.shm_perm.mode = 0644;
	CHECK(shmctl(a, IPC_SET, &ds) == 0, "IPC_SET: %s", strerror(errno));

	pa = shmat(a, NULL, 0);
	pa2 = shmat(a, NULL, SHM_RDONLY);
	pb = shmat(b, NULL, 0);
	CHECK(pa != (void *)-1 && pa2 != (void *)-1 && pb != (void *)-1, "shmat: %s", strerror(errno));
	fill(pa, 3 * PG, 1);
	memset(pa + 3 * PG, 0x5a, 100);
	CHECK(mprotect(pa + PG, PG, PROT_READ) == 0, "mprotect: %s", strerror(errno));
	fill(pb, PG, 10);
	fill(pb + 100 * PG, PG, 11);
	fill(pb + 127 * PG, PG, 12);
	CHECK(munmap(pb + BSZ / 2, BSZ / 2) == 0, "munmap: %s", strerror(errno));
	CHECK(shmctl(b, IPC_RMID, NULL) == 0, "IPC_RMID: %s", strerror(errno));
	flag = (volatile int *)(pb + PG);
	answer = (volatile int *)(pb + PG + 64);

	fflush(stdout);
	child = fork();
	CHECK(child >= 0, "fork: %s", strerror(errno));
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive a failed test */
		while (*flag != 1)
			tick();
		fill(pa + 2 * PG, PG, 77);   /* writable in the child too */
		*answer = 0x1234;
		_exit(0);
	}
	da0 = stat_of(a);
	db0 = stat_of(b);

	stack_reserve();
	maps_take(&before);
	ready();
	trigger_wait();

	maps_check(&before);
	check_fill("segment A, first attachment", pa, 3 * PG, 1);
	check_fill("segment A, read-only attachment", pa2, 3 * PG, 1);
	for (int i = 0; i < 100; i++)
		CHECK(pa[3 * PG + i] == 0x5a, "segment A: byte %d of its last page is %#x", i,
		      pa[3 * PG + i]);
	check_fill("segment B page 0", pb, PG, 10);
	check_fill("segment B page 100", pb + 100 * PG, PG, 11);
	check_fill("segment B page 127", pb + 127 * PG, PG, 12);
	check_zero("segment B page 50", pb + 50 * PG, PG);
	CHECK(!has_vmflag(vmflags_of(pa2), "mw"), "the SHM_RDONLY attachment is writable-capable");
	CHECK(has_vmflag(vmflags_of(pa), "mw"), "the read-write attachment lost VM_MAYWRITE");

	ds = stat_of(a);
	CHECK(ds.shm_perm.__key == key, "A: key %#x, was %#x", ds.shm_perm.__key, key);
	CHECK(ds.shm_segsz == ASZ, "A: size %zu", (size_t)ds.shm_segsz);
	CHECK((ds.shm_perm.mode & 0777) == 0644, "A: mode %o", ds.shm_perm.mode & 0777);
	CHECK(ds.shm_perm.uid == da0.shm_perm.uid && ds.shm_perm.gid == da0.shm_perm.gid,
	      "A: owner %u:%u", ds.shm_perm.uid, ds.shm_perm.gid);
	CHECK(!(ds.shm_perm.mode & SHM_DEST), "A: marked for deletion");
	CHECK(ds.shm_nattch == da0.shm_nattch, "A: attached %lu times, was %lu",
	      (unsigned long)ds.shm_nattch, (unsigned long)da0.shm_nattch);
	ds = stat_of(b);
	CHECK(ds.shm_perm.mode & SHM_DEST, "B: no longer marked for deletion");
	CHECK(ds.shm_perm.__key == IPC_PRIVATE, "B: key %#x", ds.shm_perm.__key);
	CHECK(ds.shm_segsz == BSZ, "B: size %zu", (size_t)ds.shm_segsz);
	CHECK(ds.shm_nattch == db0.shm_nattch, "B: attached %lu times, was %lu",
	      (unsigned long)ds.shm_nattch, (unsigned long)db0.shm_nattch);

	/* One segment for parent and child. */
	*flag = 1;
	CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "child failed");
	CHECK(*answer == 0x1234, "the child's write to segment B is not seen");
	check_fill("segment A page written by the child", pa + 2 * PG, PG, 77);
	check_fill("the same seen through the read-only attachment", pa2 + 2 * PG, PG, 77);

	/* Real attachments: shmdt works and is counted. */
	da0 = stat_of(a);
	CHECK(shmdt(pa2) == 0, "shmdt: %s", strerror(errno));
	ds = stat_of(a);
	CHECK(ds.shm_nattch == da0.shm_nattch - 1, "A: shmdt left %lu attachments of %lu",
	      (unsigned long)ds.shm_nattch, (unsigned long)da0.shm_nattch);
	CHECK(shmctl(a, IPC_RMID, NULL) == 0, "IPC_RMID A: %s", strerror(errno));
	pass();
}
