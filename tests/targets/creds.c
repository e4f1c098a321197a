/*
 * Credentials: whatever the process was started with (the test runs it
 * under setpriv), read before READY and compared after the trigger:
 * real/effective/saved/fs uids and gids, supplementary groups, the
 * effective, permitted, inheritable, bounding and ambient capability
 * sets, securebits. Prints them before READY ("CREDS ...") for the log.
 */
#include "target.h"

#include <grp.h>
#include <linux/capability.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>

struct creds {
	uid_t r, e, s, fs;
	gid_t rg, eg, sg, fsg;
	int ngroups;
	gid_t groups[64];
	unsigned long long eff, prm, inh, bnd, amb;
	int securebits;
};

static void get(struct creds *c)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	memset(c, 0, sizeof(*c));
	getresuid(&c->r, &c->e, &c->s);
	getresgid(&c->rg, &c->eg, &c->sg);
	c->fs = setfsuid(-1);
	c->fsg = setfsgid(-1);
	c->ngroups = getgroups(64, c->groups);
	if (syscall(SYS_capget, &h, d))
		fail("capget: %s", strerror(errno));
	c->eff = d[0].effective | (unsigned long long)d[1].effective << 32;
	c->prm = d[0].permitted | (unsigned long long)d[1].permitted << 32;
	c->inh = d[0].inheritable | (unsigned long long)d[1].inheritable << 32;
	for (int cap = 0; cap < 64; cap++) {
		int b = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (b < 0)
			break;
		if (b)
			c->bnd |= 1ULL << cap;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1)
			c->amb |= 1ULL << cap;
	}
	c->securebits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
}

static void show(const char *tag, const struct creds *c)
{
	printf("%s uid %d/%d/%d/%d gid %d/%d/%d/%d groups", tag, c->r, c->e, c->s, c->fs, c->rg,
	       c->eg, c->sg, c->fsg);
	for (int i = 0; i < c->ngroups; i++)
		printf("%s%d", i ? "," : " ", c->groups[i]);
	printf(" caps eff %llx prm %llx inh %llx bnd %llx amb %llx securebits %#x\n", c->eff, c->prm,
	       c->inh, c->bnd, c->amb, c->securebits);
}

int main(void)
{
	struct creds a, b;

	get(&a);
	show("CREDS", &a);
	ready();
	trigger_wait();
	get(&b);
	if (memcmp(&a, &b, sizeof(a))) {
		show("AFTER", &b);
		fail("credentials changed");
	}
	pass();
}
