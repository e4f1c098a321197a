/*
 * rtcr: checkpoint/restore for Linux processes.
 *
 *   rtcr dump -t PID -D DIR [--leave-running [--track-mem]] [--prev DIR0] [--stats]
 *             [--unix-reconnect] [--tcp-established]
 *   rtcr restore -D DIR [--detach] [--pidns] [--stats]
 *   rtcr inspect DIR [--json]
 *   rtcr check
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "common/log.h"
#include "common/version.h"
#include "dump/dump.h"
#include "restore/restore.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rtcr [-v] COMMAND [options]\n"
		"\n"
		"  dump -t PID -D DIR [--leave-running [--track-mem]] [--prev DIR0] [--stats]\n"
		"       [--unix-reconnect] [--tcp-established]\n"
		"        checkpoint process PID and its descendants into DIR/image.rtcr;\n"
		"        they are killed afterwards unless --leave-running. --track-mem:\n"
		"        track the pages they write from now on; --prev DIR0: store only\n"
		"        the pages written since the dump in DIR0 (which must stay).\n"
		"        --unix-reconnect: a unix stream/seqpacket socket connected to a\n"
		"        listener outside the tree is connected to its path again at\n"
		"        restore (its data in flight is lost). --tcp-established: dump\n"
		"        established TCP connections (repair mode; the peer sees nothing\n"
		"        and the connection resumes at restore)\n"
		"  restore -D DIR [--detach] [--pidns] [--stats]\n"
		"        bring the processes back with their pids; wait for the root and exit\n"
		"        with its status, or with --detach print its pid and return once all\n"
		"        run. --pidns: under the init of a new pid namespace (and a mount\n"
		"        namespace with its /proc), where the saved pids are free; the pid\n"
		"        printed is the root's outside it\n"
		"  inspect DIR [--json]\n"
		"        show what an image holds\n"
		"  check\n"
		"        show which kernel features rtcr needs are available here\n"
		"\n"
		"  -v, --verbose   more messages (repeat for debug, with source locations)\n"
		"  --version       print the version\n");
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

static int cmd_dump(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "tree", required_argument, 0, 't' },
		{ "images-dir", required_argument, 0, 'D' },
		{ "leave-running", no_argument, 0, 'R' },
		{ "stats", no_argument, 0, 's' },
		{ "track-mem", no_argument, 0, 'T' },
		{ "prev", required_argument, 0, 'P' },
		{ "unix-reconnect", no_argument, 0, 'U' },
		{ "tcp-established", no_argument, 0, 'E' },
		{ "verbose", no_argument, 0, 'v' },
		{ 0, 0, 0, 0 },
	};
	struct dump_opts o = { 0 };
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
		case 'P': o.prev = optarg; break;
		case 'U': o.unix_reconnect = true; break;
		case 'E': o.tcp_established = true; break;
		case 'v': log_set_level(log_get_level() + 1); break;
		default: usage(stderr); return 2;
		}
	}
	if (!o.pid || !o.dir || optind != argc) {
		pr_err("dump needs -t PID and -D DIR");
		return 2;
	}
	if (o.track_mem && !o.leave_running) {
		pr_err("--track-mem needs --leave-running (it tracks the process as it goes on)");
		return 2;
	}
	return dump_run(&o) ? 1 : 0;
}

static int cmd_restore(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "images-dir", required_argument, 0, 'D' },
		{ "detach", no_argument, 0, 'd' },
		{ "stats", no_argument, 0, 's' },
		{ "pidns", no_argument, 0, 'p' },
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
		case 'v': log_set_level(log_get_level() + 1); break;
		default: usage(stderr); return 2;
		}
	}
	if (!o.dir || optind != argc) {
		pr_err("restore needs -D DIR");
		return 2;
	}
	ret = restore_run(&o);
	return ret < 0 ? 1 : ret;
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
	if (!strcmp(cmd, "inspect"))
		return cmd_inspect(argc, argv);
	if (!strcmp(cmd, "check"))
		return cmd_check(argc, argv);
	pr_err("unknown command '%s'", cmd);
	usage(stderr);
	return 2;
}
