/*
 * Credentials: user and group ids (real, effective, saved, filesystem),
 * supplementary groups, the five capability sets and securebits.
 * Restored as far as the restoring rtcr may grant them; anything beyond
 * that is refused before the process is created.
 */
#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/util.h"
#include "arch/x86/regs.h"
#include "task/task.h"

/* They are passed to setgroups() through the injection data area. */
#define CREDS_MAX_GROUPS (SCRATCH_DATA_LEN / 4)

int creds_dump(struct inject *in, pid_t pid, const long *securebits, Rtcr__Creds **out)
{
	Rtcr__Creds *c = xzalloc(sizeof(*c));
	struct proc_status ps;
	uint64_t *ids = NULL, *groups = NULL;
	long sb;
	int ret, n;

	rtcr__creds__init(c);
	ret = proc_status_read(pid, &ps);
	if (ret) {
		free(c);
		return ret;
	}
	if (proc_status_nums(&ps, "Uid", &ids) != 4)
		goto bad;
	c->uid = ids[0]; c->euid = ids[1]; c->suid = ids[2]; c->fsuid = ids[3];
	free(ids);
	if (proc_status_nums(&ps, "Gid", &ids) != 4)
		goto bad;
	c->gid = ids[0]; c->egid = ids[1]; c->sgid = ids[2]; c->fsgid = ids[3];
	n = proc_status_nums(&ps, "Groups", &groups);
	c->groups = xzalloc((n ? n : 1) * sizeof(*c->groups));
	for (int i = 0; i < n; i++)
		c->groups[i] = groups[i];
	c->n_groups = n;
	free(groups);
	groups = NULL;
	free(ids);
	ids = NULL;
	if (proc_status_u64(&ps, "CapInh", &c->cap_inh, 16) ||
	    proc_status_u64(&ps, "CapPrm", &c->cap_prm, 16) ||
	    proc_status_u64(&ps, "CapEff", &c->cap_eff, 16) ||
	    proc_status_u64(&ps, "CapBnd", &c->cap_bnd, 16) ||
	    proc_status_u64(&ps, "CapAmb", &c->cap_amb, 16))
		goto bad;
	proc_status_free(&ps);
	if (securebits)
		sb = *securebits;
	else if ((ret = inject_syscall(in, __NR_prctl, PR_GET_SECUREBITS, 0, 0, 0, 0, 0, &sb)))
		goto err;
	if (sb < 0) {
		pr_err("pid %d: PR_GET_SECUREBITS: %s", pid, strerror((int)-sb));
		ret = (int)sb;
		goto err;
	}
	c->securebits = sb;
	*out = c;
	return 0;
bad:
	pr_err("pid %d: cannot parse credentials in /proc/%d/status", pid, pid);
	proc_status_free(&ps);
	ret = -EINVAL;
err:
	free(ids);
	free(groups);
	free(c->groups);
	free(c);
	return ret;
}

static uint64_t my_caps(const char *key)
{
	struct proc_status ps;
	uint64_t v = 0;
	if (!proc_status_read(getpid(), &ps)) {
		proc_status_u64(&ps, key, &v, 16);
		proc_status_free(&ps);
	}
	return v;
}

static const char *cap_name(int cap)
{
	static const char *names[] = {
		"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid",
		"setuid", "setpcap", "linux_immutable", "net_bind_service", "net_broadcast",
		"net_admin", "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio",
		"sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
		"sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write",
		"audit_control", "setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm",
		"block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
	};
	static char buf[16];
	if (cap >= 0 && cap < (int)ARRAY_SIZE(names))
		return names[cap];
	snprintf(buf, sizeof(buf), "%d", cap);
	return buf;
}

int creds_check(const Rtcr__Creds *c)
{
	if (c->n_groups > CREDS_MAX_GROUPS) {
		pr_err("credentials: the process is in %zu supplementary groups; rtcr restores at "
		       "most %d", c->n_groups, CREDS_MAX_GROUPS);
		return -E2BIG;
	}
	uint64_t have = my_caps("CapBnd") & my_caps("CapPrm");
	uint64_t need = c->cap_prm | c->cap_inh | c->cap_bnd;
	/* Inheritable and bounding bits beyond ours cannot be added. */
	uint64_t missing = need & ~have;

	if (missing) {
		int cap = __builtin_ctzll(missing);
		pr_err("credentials: the process holds capability cap_%s, which this rtcr cannot "
		       "grant (it does not have it)", cap_name(cap));
		return -EPERM;
	}
	return 0;
}

bool creds_equal(const Rtcr__Creds *a, const Rtcr__Creds *b)
{
	if (a->uid != b->uid || a->euid != b->euid || a->suid != b->suid || a->fsuid != b->fsuid ||
	    a->gid != b->gid || a->egid != b->egid || a->sgid != b->sgid || a->fsgid != b->fsgid ||
	    a->cap_inh != b->cap_inh || a->cap_prm != b->cap_prm || a->cap_eff != b->cap_eff ||
	    a->cap_bnd != b->cap_bnd || a->cap_amb != b->cap_amb || a->securebits != b->securebits ||
	    a->n_groups != b->n_groups)
		return false;
	for (size_t i = 0; i < a->n_groups; i++)
		if (a->groups[i] != b->groups[i])
			return false;
	return true;
}

bool creds_same_as_self(const Rtcr__Creds *c)
{
	gid_t groups[256];
	uid_t r, e, s;
	gid_t rg, eg, sg;
	int n = getgroups(ARRAY_SIZE(groups), groups);

	if (getresuid(&r, &e, &s) || getresgid(&rg, &eg, &sg))
		return false;
	if (c->uid != r || c->euid != e || c->suid != s || c->fsuid != e ||
	    c->gid != rg || c->egid != eg || c->sgid != sg || c->fsgid != eg)
		return false;
	if (n < 0 || (size_t)n != c->n_groups)
		return false;
	for (int i = 0; i < n; i++)
		if (groups[i] != c->groups[i])
			return false;
	return c->cap_inh == my_caps("CapInh") && c->cap_prm == my_caps("CapPrm") &&
	       c->cap_eff == my_caps("CapEff") && c->cap_bnd == my_caps("CapBnd") &&
	       c->cap_amb == my_caps("CapAmb") && c->securebits == (uint32_t)prctl(PR_GET_SECUREBITS);
}

int creds_restore_inj(struct inject *in, const Rtcr__Creds *c)
{
	struct {
		struct __user_cap_header_struct h;
		struct __user_cap_data_struct d[2];
	} caps;
	uint64_t data = inject_data(in);
	uint32_t groups[CREDS_MAX_GROUPS];
	int ret;

	if (c->n_groups > ARRAY_SIZE(groups))
		return -E2BIG;   /* refused by creds_check() already */
	for (size_t i = 0; i < c->n_groups; i++)
		groups[i] = c->groups[i];
	ret = inject_write(in, data, groups, c->n_groups * sizeof(uint32_t));
	if (ret)
		return ret;
	ret = inject_call(in, "credentials: setgroups", __NR_setgroups, c->n_groups, data, 0, 0, 0, 0, NULL);
	/* Keep capabilities across the uid change; the final securebits
	 * come last. */
	if (!ret)
		ret = inject_call(in, "credentials: PR_SET_SECUREBITS", __NR_prctl, PR_SET_SECUREBITS,
			   (c->securebits & ~(SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
					      SECBIT_NOROOT_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED)) |
			   SECBIT_KEEP_CAPS, 0, 0, 0, 0, NULL);
	for (int cap = 0; cap <= 63 && !ret; cap++) {
		long r;
		if (c->cap_bnd & (1ULL << cap))
			continue;
		ret = inject_syscall(in, __NR_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0, 0, &r);
		if (!ret && r == -EINVAL)
			break;   /* past the last capability this kernel knows */
		if (!ret && r < 0) {
			pr_err("credentials: dropping cap_%s from the bounding set: %s", cap_name(cap),
			       strerror((int)-r));
			ret = (int)r;
		}
	}
	if (!ret)
		ret = inject_call(in, "credentials: setresgid", __NR_setresgid, c->gid, c->egid, c->sgid, 0, 0, 0, NULL);
	if (!ret)
		ret = inject_call(in, "credentials: setresuid", __NR_setresuid, c->uid, c->euid, c->suid, 0, 0, 0, NULL);
	/* setfsuid/setfsgid return the previous value, never an error. */
	if (!ret)
		ret = inject_call(in, "credentials: setfsgid", __NR_setfsgid, c->fsgid, 0, 0, 0, 0, 0, NULL);
	if (!ret)
		ret = inject_call(in, "credentials: setfsuid", __NR_setfsuid, c->fsuid, 0, 0, 0, 0, 0, NULL);
	if (ret)
		return ret;
	memset(&caps, 0, sizeof(caps));
	caps.h.version = _LINUX_CAPABILITY_VERSION_3;
	caps.h.pid = 0;
	caps.d[0].effective = (uint32_t)c->cap_eff;
	caps.d[1].effective = (uint32_t)(c->cap_eff >> 32);
	caps.d[0].permitted = (uint32_t)c->cap_prm;
	caps.d[1].permitted = (uint32_t)(c->cap_prm >> 32);
	caps.d[0].inheritable = (uint32_t)c->cap_inh;
	caps.d[1].inheritable = (uint32_t)(c->cap_inh >> 32);
	ret = inject_write(in, data, &caps, sizeof(caps));
	if (!ret)
		ret = inject_call(in, "credentials: capset", __NR_capset, data, data + sizeof(caps.h), 0, 0, 0, 0, NULL);
	if (!ret)
		ret = inject_call(in, "credentials: clearing ambient capabilities", __NR_prctl, PR_CAP_AMBIENT,
			   PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0, NULL);
	for (int cap = 0; cap <= 63 && !ret; cap++)
		if (c->cap_amb & (1ULL << cap))
			ret = inject_call(in, "credentials: raising an ambient capability", __NR_prctl, PR_CAP_AMBIENT,
				   PR_CAP_AMBIENT_RAISE, cap, 0, 0, 0, NULL);
	if (!ret && !(c->securebits & SECBIT_KEEP_CAPS))
		ret = inject_call(in, "credentials: PR_SET_KEEPCAPS", __NR_prctl, PR_SET_KEEPCAPS, 0, 0, 0, 0, 0, NULL);
	if (!ret && (c->securebits & (SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
				      SECBIT_NOROOT_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED))) {
		long r;
		ret = inject_syscall(in, __NR_prctl, PR_SET_SECUREBITS, c->securebits, 0, 0, 0, 0, &r);
		if (!ret && r)
			pr_warn("credentials: securebits locks %#x not restored: %s", c->securebits,
				strerror((int)-r));
	}
	return ret;
}
