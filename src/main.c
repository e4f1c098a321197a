/*
 * rtcr: checkpoint/restore for Linux processes.
 *
 *   rtcr dump -t PID -D DIR [--leave-running [--track-mem]] [--live [--idle-wait MS]]
 *             [--prev DIR0] [--stats] [--unix-reconnect] [--tcp-established] [--shell-job]
 *   rtcr dump -t PID -D BASE --interval MS [--keep N] [--count K] [--live [--idle-wait MS]]
 *             [--shell-job] [--stats]
 *   rtcr restore -D DIR [--detach] [--pidns] [--shell-job] [--netns NAME|PATH] [--lazy] [--stats]
 *   rtcr unlock -D DIR [--netns NAME|PATH]
 *   rtcr merge -D DIR [-o OUTDIR] [--keep-id] [--quiet]
 *   rtcr inspect DIR [--json]
 *   rtcr check
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cmd/cmd.h"
#include "common/log.h"
#include "common/util.h"
#include "common/version.h"
#include "dump/dump.h"
#include "image/merge.h"
#include "restore/restore.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rtcr [-v] COMMAND [options]\n"
		"\n"
		"  dump -t PID -D DIR [--leave-running [--track-mem]] [--live [--idle-wait MS]]\n"
		"       [--prev DIR0] [--stats] [--unix-reconnect] [--tcp-established] [--shell-job]\n"
		"        checkpoint process PID and its descendants into DIR/image.rtcr;\n"
		"        they are killed afterwards unless --leave-running. --track-mem:\n"
		"        track the pages they write from now on; --prev DIR0: store only\n"
		"        the pages written since the dump in DIR0 (which must stay).\n"
		"        --unix-reconnect: a unix stream/seqpacket socket connected to a\n"
		"        listener outside the tree is connected to its path again at\n"
		"        restore (its data in flight is lost). --tcp-established: dump\n"
		"        established TCP connections (repair mode; the peer sees nothing\n"
		"        and the connection resumes at restore; their segments are dropped\n"
		"        until then by a network lock, an nftables table). A process in\n"
		"        another network namespace is dumped from inside it. --live: copy\n"
		"        the memory while the process runs and freeze it only for the pages\n"
		"        it wrote meanwhile (with --leave-running: implies --track-mem, the\n"
		"        image is written after the release; without: the image is written\n"
		"        frozen, then the process killed: a migration's last step, short\n"
		"        with --prev of a live --leave-running dump). --idle-wait MS: a live\n"
		"        dump waits at most MS ms (default 20; 0: not at all) for the\n"
		"        process's idle time, every thread asleep just after running, to\n"
		"        freeze it then: a periodic task loses no work to the freeze\n"
		"        --shell-job: a job started from an interactive shell: its fds on\n"
		"        its controlling terminal are saved with the terminal's settings\n"
		"        (restore it with restore --shell-job, in a terminal)\n"
		"  dump -t PID -D BASE --interval MS [--keep N] [--count K] [--live [--idle-wait MS]]\n"
		"       [--shell-job] [--stats]\n"
		"        checkpoint every MS ms, incrementally, leaving it running, into\n"
		"        BASE/ckpt-NNNNNN (BASE/latest: the newest); keep the newest N\n"
		"        restorable (older ones are merged into them, then removed; the\n"
		"        merges run beside the checkpoints: meanwhile a few more exist)\n"
		"  restore -D DIR [--detach] [--pidns] [--shell-job] [--netns NAME|PATH] [--lazy]\n"
		"       [--stats]\n"
		"        bring the processes back with their pids; wait for the root and exit\n"
		"        with its status, or with --detach print its pid and return once all\n"
		"        run. --pidns: under the init of a new pid namespace (and a mount\n"
		"        namespace with its /proc), where the saved pids are free; the pid\n"
		"        printed is the root's outside it. --shell-job: attach a job dumped\n"
		"        with --shell-job to rtcr's terminal (its fds, its process group,\n"
		"        the foreground and settings if it had them; ^Z stops rtcr too).\n"
		"        --netns: in that network namespace\n"
		"        (/run/netns/NAME, or a path such as /proc/PID/ns/net) instead of\n"
		"        rtcr's; the addresses the sockets had must exist there.\n"
		"        --lazy: the processes run before their memory is back; private\n"
		"        anonymous pages come on first touch and in the background from a\n"
		"        page server (it outlives --detach), which reports on stderr when the\n"
		"        last page arrived; DIR must stay until then\n"
		"  unlock -D DIR [--netns NAME|PATH]\n"
		"        remove the network lock of an image that will not be restored: its\n"
		"        connections are given up\n"
		"  merge -D DIR [-o OUTDIR] [--keep-id] [--quiet]\n"
		"        fold DIR's incremental image and its parents into one self-contained\n"
		"        image, over DIR's (its parents are then no longer needed by it) or in\n"
		"        OUTDIR. --keep-id: the result keeps DIR's image id, so images made\n"
		"        with --prev DIR, and the next dump --prev DIR, still link to it.\n"
		"        --quiet: no line when it succeeds\n"
		"  inspect DIR [--json]\n"
		"        show what an image holds\n"
		"  check\n"
		"        show which kernel features rtcr needs are available here\n"
		"\n"
		"  -v, --verbose   more messages (repeat for debug, with source locations)\n"
		"  --version       print the version\n");
}

static int parse_uint_min(const char *s, const char *what, unsigned *v, unsigned long min)
{
	char *end;
	unsigned long x = strtoul(s, &end, 10);
	if (!*s || *end || s[0] == '-' || x < min || x > 1000000000UL) {
		pr_err("%s %s: not a %s number", what, s, min ? "positive" : "whole");
		return -1;
	}
	*v = (unsigned)x;
	return 0;
}

static int parse_uint(const char *s, const char *what, unsigned *v)
{
	return parse_uint_min(s, what, v, 1);
}

static int parse_pid(const char *s, int *pid)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v <= 0 || v > (1 << 22)) {
		pr_err("invalid pid '%s'", s);
		return -EINVAL;
	}
	*pid = (int)v;
	return 0;
}

/* A live dump counts each thread's calls with up to 7 perf events
 * (mem/mapwatch.h), beside the image files and /proc: the soft limit of
 * open files goes up to the hard one. */
static void raise_nofile(void)
{
	struct rlimit r;

	if (!getrlimit(RLIMIT_NOFILE, &r) && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &r))
			pr_debug("raising the open-file limit: %s", strerror(errno));
	}
}

static int cmd_dump(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "tree", required_argument, 0, 't' },
		{ "images-dir", required_argument, 0, 'D' },
		{ "leave-running", no_argument, 0, 'R' },
		{ "stats", no_argument, 0, 's' },
		{ "track-mem", no_argument, 0, 'T' },
		{ "interval", required_argument, 0, 'I' },
		{ "keep", required_argument, 0, 'K' },
		{ "count", required_argument, 0, 'C' },
		{ "prev", required_argument, 0, 'P' },
		{ "unix-reconnect", no_argument, 0, 'U' },
		{ "tcp-established", no_argument, 0, 'E' },
		{ "live", no_argument, 0, 'L' },
		{ "shell-job", no_argument, 0, 'j' },
		{ "idle-wait", required_argument, 0, 'W' },
		{ "verbose", no_argument, 0, 'v' },
		{ 0, 0, 0, 0 },
	};
	struct dump_opts o = { .idle_wait_ms = DUMP_IDLE_WAIT_MS };
	unsigned interval = 0, keep = 0, count = 0;
	bool idle_wait = false;
	int c;

	while ((c = getopt_long(argc, argv, "t:D:Rsv", lo, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_pid(optarg, &o.pid))
				return 2;
			break;
		case 'D': o.dir = optarg; break;
		case 'R': o.leave_running = true; break;
		case 's': o.stats = true; break;
		case 'T': o.track_mem = true; break;
		case 'I':
			if (parse_uint(optarg, "--interval", &interval))
				return 2;
			break;
		case 'K':
			if (parse_uint(optarg, "--keep", &keep))
				return 2;
			break;
		case 'C':
			if (parse_uint(optarg, "--count", &count))
				return 2;
			break;
		case 'P': o.prev = optarg; break;
		case 'U': o.unix_reconnect = true; break;
		case 'E': o.tcp_established = true; break;
		case 'L': o.live = true; break;
		case 'j': o.shell_job = true; break;
		case 'W':
			if (parse_uint_min(optarg, "--idle-wait", &o.idle_wait_ms, 0))
				return 2;
			idle_wait = true;
			break;
		case 'v': log_set_level(log_get_level() + 1); break;
		default: usage(stderr); return 2;
		}
	}
	if (!o.pid || !o.dir || optind != argc) {
		pr_err("dump needs -t PID and -D DIR");
		return 2;
	}
	if (idle_wait && !o.live) {
		pr_err("--idle-wait goes with --live (a dump without it pauses the process throughout)");
		return 2;
	}
	raise_nofile();
	if (interval) {
		struct periodic_opts po = { .pid = o.pid, .base = o.dir, .interval_ms = interval,
					    .keep = keep, .count = count, .stats = o.stats,
					    .live = o.live, .shell_job = o.shell_job,
					    .idle_wait_ms = o.idle_wait_ms };
		if (o.prev || o.unix_reconnect) {
			pr_err("--interval makes its own chain: --prev and --unix-reconnect do not apply");
			return 2;
		}
		if (o.tcp_established) {
			/* Not passed on: say so rather than refuse each dump later. */
			pr_err("--interval with --tcp-established: not supported yet");
			return 2;
		}
		return periodic_run(&po) ? 1 : 0;
	}
	if (keep || count) {
		pr_err("--keep and --count go with --interval");
		return 2;
	}
	if (o.track_mem && !o.leave_running) {
		pr_err("--track-mem needs --leave-running (it tracks the process as it goes on)");
		return 2;
	}
	return dump_run(&o, NULL) ? 1 : 0;
}

static int cmd_restore(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "images-dir", required_argument, 0, 'D' },
		{ "detach", no_argument, 0, 'd' },
		{ "stats", no_argument, 0, 's' },
		{ "pidns", no_argument, 0, 'p' },
		{ "shell-job", no_argument, 0, 'j' },
		{ "netns", required_argument, 0, 'N' },
		{ "lazy", no_argument, 0, 'L' },
		{ "verbose", no_argument, 0, 'v' },
		{ 0, 0, 0, 0 },
	};
	struct restore_opts o = { 0 };
	int c, ret;

	while ((c = getopt_long(argc, argv, "D:dsv", lo, NULL)) != -1) {
		switch (c) {
		case 'D': o.dir = optarg; break;
		case 'd': o.detach = true; break;
		case 's': o.stats = true; break;
		case 'p': o.pidns = true; break;
		case 'j': o.shell_job = true; break;
		case 'N': o.netns = optarg; break;
		case 'L': o.lazy = true; break;
		case 'v': log_set_level(log_get_level() + 1); break;
		default: usage(stderr); return 2;
		}
	}
	if (!o.dir || optind != argc) {
		pr_err("restore needs -D DIR");
		return 2;
	}
	if (o.shell_job && o.pidns) {
		pr_err("--shell-job with --pidns: not supported yet");
		return 2;
	}
	ret = restore_run(&o);
	return ret < 0 ? 1 : ret;
}

static int cmd_unlock(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "images-dir", required_argument, 0, 'D' },
		{ "netns", required_argument, 0, 'N' },
		{ "verbose", no_argument, 0, 'v' },
		{ 0, 0, 0, 0 },
	};
	const char *dir = NULL, *netns = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "D:v", lo, NULL)) != -1) {
		switch (c) {
		case 'D': dir = optarg; break;
		case 'N': netns = optarg; break;
		case 'v': log_set_level(log_get_level() + 1); break;
		default: usage(stderr); return 2;
		}
	}
	if (!dir || optind != argc) {
		pr_err("unlock needs -D DIR");
		return 2;
	}
	return restore_unlock(dir, netns) ? 1 : 0;
}

static int cmd_merge(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "images-dir", required_argument, 0, 'D' },
		{ "output", required_argument, 0, 'o' },
		{ "keep-id", no_argument, 0, 'K' },
		{ "quiet", no_argument, 0, 'q' },
		{ "verbose", no_argument, 0, 'v' },
		{ 0, 0, 0, 0 },
	};
	struct flatten_result res;
	const char *dir = NULL, *out = NULL;
	unsigned flags = 0;
	bool quiet = false;
	char size[32];
	int c;

	while ((c = getopt_long(argc, argv, "D:o:v", lo, NULL)) != -1) {
		switch (c) {
		case 'D': dir = optarg; break;
		case 'o': out = optarg; break;
		case 'K': flags |= IMG_FLATTEN_KEEP_ID; break;
		case 'q': quiet = true; break;
		case 'v': log_set_level(log_get_level() + 1); break;
		default: usage(stderr); return 2;
		}
	}
	if (!dir || optind != argc) {
		pr_err("merge needs -D DIR");
		return 2;
	}
	if (image_flatten(dir, out, flags, &res)) {
		pr_err("merge of %s failed; %s is unchanged", dir, out ? out : dir);
		return 1;
	}
	fmt_bytes(size, sizeof(size), res.bytes);
	if (quiet)
		return 0;
	if (res.self_contained && res.images == 1 && !out)
		fprintf(stderr, "rtcr merge: %s is already self-contained (no parent): left as it is\n",
			dir);
	else
		fprintf(stderr, "rtcr merge: %s: %u image%s merged into %s: %llu pages, image %s\n",
			dir, res.images, res.images == 1 ? "" : "s", out ? out : dir,
			(unsigned long long)res.pages, size);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd;
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (argv[i][1] == 'v' && strspn(argv[i] + 1, "v") == strlen(argv[i] + 1)) {
			log_set_level(log_get_level() + (int)strlen(argv[i] + 1));
		} else if (!strcmp(argv[i], "--verbose")) {
			log_set_level(log_get_level() + 1);
		} else if (!strcmp(argv[i], "--version")) {
			printf("rtcr %s\n", RTCR_VERSION);
			return 0;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[i];
	argc -= i;
	argv += i;
	optind = 1;
	if (!strcmp(cmd, "dump"))
		return cmd_dump(argc, argv);
	if (!strcmp(cmd, "restore"))
		return cmd_restore(argc, argv);
	if (!strcmp(cmd, "merge"))
		return cmd_merge(argc, argv);
	if (!strcmp(cmd, "unlock"))
		return cmd_unlock(argc, argv);
	if (!strcmp(cmd, "inspect"))
		return cmd_inspect(argc, argv);
	if (!strcmp(cmd, "check"))
		return cmd_check(argc, argv);
	pr_err("unknown command '%s'", cmd);
	usage(stderr);
	return 2;
}
