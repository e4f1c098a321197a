# Helpers for integration tests. Sourced by tests/run.sh, which runs every
# function named test_* in tests/integration/*.sh in its own subshell,
# with a fresh temp dir $T, and kills every process the test registered
# (track_pid) when it ends, whatever the outcome.
#
# A test passes if it returns 0, fails otherwise; "skip REASON" (exit 77)
# marks it skipped. Use the assertion helpers: they print what differed.

: "${BUILD:=build}"
: "${RTCR:=$BUILD/rtcr}"
: "${TGT:=$BUILD/targets}"

_pids_file() { echo "$T/.pids"; }

# Remember a pid so cleanup kills it (also if restored under the same pid).
track_pid() { echo "$1" >> "$(_pids_file)"; }

# Remember a SysV shm segment id so cleanup removes it (after the pids
# holding it are killed).
track_shm() { echo "$1" >> "$T/.shm"; }

cleanup_shm() {
	[ -f "$T/.shm" ] || return 0
	local id
	while read -r id; do
		[ -n "$id" ] && ipcrm -m "$id" 2>/dev/null
	done < "$T/.shm"
	rm -f "$T/.shm"
}

cleanup_pids() {
	local f; f=$(_pids_file)
	[ -f "$f" ] || return 0
	while read -r p; do
		[ -n "$p" ] || continue
		kill -CONT "$p" 2>/dev/null
		kill -9 "$p" 2>/dev/null
	done < "$f"
	# Give the kernel a moment to reap what it can.
	sleep 0.05
	cleanup_shm
	cleanup_netns
}

skip() { echo "SKIP: $*"; exit 77; }

# Install Debian packages when a command is missing, or skip the test.
need_debian() { # command package...
	local c=$1; shift
	command -v "$c" > /dev/null && return 0
	timeout 600 apt-get install -y "$@" > "$T/apt.out" 2>&1 ||
		{ timeout 600 apt-get update -qq > /dev/null 2>&1 &&
		  timeout 600 apt-get install -y "$@" > "$T/apt.out" 2>&1; } ||
		skip "$c is not installed and apt-get install $* failed: $(tail -1 "$T/apt.out")"
	command -v "$c" > /dev/null || skip "$c still missing after apt-get install $*"
}

# Network namespaces made by a test: removed by cleanup, after its pids.
track_netns() { echo "$1" >> "$T/.netns"; }

cleanup_netns() {
	[ -f "$T/.netns" ] || return 0
	local n
	while read -r n; do
		[ -n "$n" ] && ip netns del "$n" 2>/dev/null
	done < "$T/.netns"
	rm -f "$T/.netns"
}
fail() { echo "FAIL: $*" >&2; exit 1; }

assert_eq() { # expected actual what
	[ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}
assert_ne() {
	[ "$1" != "$2" ] || fail "$3: did not expect '$2'"
}
assert_contains() { # file pattern what
	grep -q -- "$2" "$1" || { echo "--- $1:" >&2; cat "$1" >&2; fail "$3: '$2' not found"; }
}
assert_not_contains() {
	! grep -q -- "$2" "$1" || { echo "--- $1:" >&2; cat "$1" >&2; fail "$3: '$2' found"; }
}

# Wait until FILE contains PATTERN (default 5 s). Fails with the file shown.
wait_for() { # file pattern [seconds]
	local i n=$(( ${3:-5} * 100 ))
	for ((i = 0; i < n; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.01
	done
	echo "--- $1:" >&2; cat "$1" >&2 2>/dev/null
	fail "timed out waiting for '$2' in $1"
}

# Is pid alive, and not stopped or traced?
proc_state() { awk '{print $3}' "/proc/$1/stat" 2>/dev/null; }
assert_running() { # pid
	local st; st=$(proc_state "$1")
	[ -n "$st" ] || fail "pid $1 is gone"
	case "$st" in
	T|t) fail "pid $1 is left stopped or traced (state $st)";;
	Z|X) fail "pid $1 is dead (state $st)";;
	esac
	local tracer; tracer=$(awk '/^TracerPid/ {print $2}' "/proc/$1/status")
	[ "$tracer" = 0 ] || fail "pid $1 is still traced by $tracer"
}
assert_gone() { # pid
	# Z: a zombie; X: dead, being released by its reaper right now.
	local st; st=$(proc_state "$1")
	[ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ] || fail "pid $1 still exists (state $st)"
}

# Start a target program with stdout/stderr to $T/out, closing every fd
# above 2 so it holds only what it opens itself. Sets PID.
# Usage: start NAME [args...]   (NAME in $TGT, or an absolute command)
# With OUT_PIPE=1 its stdout is a pipe to a cat appending to $T/out
# (restored as inherited stdio) instead of the file itself.
start() {
	local prog=$1 _outfd; shift
	[ "${prog#/}" != "$prog" ] || prog="$TGT/$prog"
	export RTCR_TRIGGER="$T/go"
	rm -f "$RTCR_TRIGGER"
	: > "$T/out"
	if [ "${OUT_PIPE:-0}" = 1 ]; then
		exec {_outfd}> >(exec cat >> "$T/out")
		track_pid $!
	else
		exec {_outfd}>>"$T/out"
	fi
	# The subshell closes inherited fds, then execs the target.
	( for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
	  exec "$prog" "$@" ) < "${STDIN:-/dev/null}" >&$_outfd 2>&1 &
	PID=$!
	exec {_outfd}>&-
	track_pid "$PID"
}

# Start and wait for READY. A target that exits 77 ("SKIP: why") before
# READY (e.g. the CPU lacks AVX-512) skips the test.
start_ready() {
	start "$@"
	local i st
	for ((i = 0; i < 500; i++)); do
		grep -q '^READY' "$T/out" && return 0
		st=$(proc_state "$PID")
		if [ -z "$st" ] || [ "$st" = Z ]; then
			wait "$PID"
			[ $? = 77 ] && skip "$(sed -n 's/^SKIP: //p' "$T/out")"
			break
		fi
		sleep 0.01
	done
	wait_for "$T/out" '^READY' 1
}

dump() { # extra args; image in $T/img
	mkdir -p "$T/img"
	"$RTCR" dump -t "$PID" -D "$T/img" "$@" > "$T/dump.out" 2>&1
	local rc=$?
	[ $rc = 0 ] || { cat "$T/dump.out" >&2; fail "rtcr dump exited $rc"; }
	# The dumped process is killed: reap it if it was our child.
	case " $* " in *" --leave-running "*) ;; *) wait "$PID" 2>/dev/null;; esac
	return 0
}

# Restore in the background (rtcr waits for the process): RPID is rtcr's pid.
# Its stdin (which a restored process with inherited stdio reads) is
# $RESTORE_STDIN, default /dev/null.
restore_bg() { # extra args
	"$RTCR" restore -D "$T/img" "$@" < "${RESTORE_STDIN:-/dev/null}" >> "$T/out" 2> "$T/restore.err" &
	RPID=$!
	track_pid "$RPID"
	# Wait until the process exists again and is no longer traced by rtcr.
	local i
	for ((i = 0; i < 500; i++)); do
		if [ -e "/proc/$PID" ] && [ "$(awk '/^TracerPid/ {print $2}' /proc/$PID/status 2>/dev/null)" = 0 ]; then
			return 0
		fi
		# rtcr already returned: finish (or the caller) reports how.
		kill -0 "$RPID" 2>/dev/null || return 0
		sleep 0.01
	done
	cat "$T/restore.err" >&2
	fail "restored process $PID did not appear"
}

# Trigger the target and wait for rtcr restore to return its status.
finish() { # [expected status, default 0]
	touch "$T/go"
	wait "$RPID"
	local rc=$?
	if [ "$rc" = 77 ]; then skip "$(grep SKIP "$T/out")"; fi
	if [ "$rc" != "${1:-0}" ]; then
		echo "--- target output:" >&2; cat "$T/out" >&2
		echo "--- restore stderr:" >&2; cat "$T/restore.err" >&2
		fail "restored process exited $rc, expected ${1:-0}"
	fi
}

# The whole cycle for a self-checking target: start, dump, restore, check.
cycle() { # target [args]
	start_ready "$@"
	dump
	assert_gone "$PID"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

# rtcr restore --detach under a child subreaper (build/targets/reaper), so
# the restored process is reaped as soon as a later dump kills it and its
# pid is free for the next restore (init here reaps orphans only every
# couple of seconds). Checks the printed pid and exit status.
restore_detached() {
	: > "$T/detach.out"
	: > "$T/detach.err"
	"$TGT/reaper" "$RTCR" restore -D "$T/img" --detach > "$T/detach.out" 2> "$T/detach.err" &
	track_pid $!
	wait_for "$T/detach.err" '^EXIT' 20
	assert_contains "$T/detach.err" '^EXIT 0' "rtcr restore --detach status"
	assert_eq "$PID" "$(cat "$T/detach.out")" "printed pid"
	assert_running "$PID"
}

# rtcr (pid DPID, run with RTCR_TEST_PAUSE_FILE=$T/paused) waiting at
# its pause point; else fail, showing OUT, with "rtcr did not WHAT".
wait_paused() { # dpid out what
	local i
	for ((i = 0; i < 1000; i++)); do
		[ -e "$T/paused" ] && return 0
		kill -0 "$1" 2>/dev/null || break
		sleep 0.01
	done
	[ -e "$T/paused" ] || { cat "$2" >&2; fail "rtcr did not $3"; }
}

wait_pid_free() { # pid
	local i
	for ((i = 0; i < 500; i++)); do
		[ -e "/proc/$1" ] || return 0
		sleep 0.01
	done
	fail "pid $1 still exists (state $(proc_state "$1")) 5 s after its dump"
}

# The target run without a dump, as the control of a checkpoint test:
# triggered at once, it must pass.
native_run() { # target args...
	start_ready "$@"
	touch "$T/go"
	wait "$PID" || { cat "$T/out" >&2; fail "$1 without a dump failed"; }
	assert_contains "$T/out" '^PASS' "target verdict"
}

# The same, triggered after 0.3 s (timers, signals and leases settle), and
# sent signal $NATIVE_SIG first if set.
native_settled() { # target [args]
	start_ready "$@"
	sleep 0.3
	[ "${NATIVE_SIG:-}" ] && kill "-$NATIVE_SIG" "$PID"
	touch "$T/go"
	wait "$PID"
	local rc=$?
	[ $rc = 0 ] || { cat "$T/out" >&2; fail "$1 without a dump exited $rc"; }
	assert_contains "$T/out" '^PASS' "native verdict"
}

# A dump (with DUMP_ARGS) that must fail naming MESSAGE, leaving the
# target running and still working (its check after the trigger passes),
# with no image behind.
dump_refused() { # message dump-args target args...
	local msg=$1 dargs=$2; shift 2
	start_ready "$@"
	mkdir -p "$T/img"
	if "$RTCR" dump -t "$PID" -D "$T/img" $dargs > "$T/dump.out" 2>&1; then
		fail "dump of $* succeeded"
	fi
	assert_contains "$T/dump.out" "$msg" "refusal message"
	[ ! -e "$T/img/image.rtcr" ] || fail "an image was left behind"
	assert_running "$PID"
	touch "$T/go"
	wait "$PID"
	local rc=$?
	[ $rc = 0 ] || { cat "$T/out" >&2; fail "target exited $rc after the refused dump"; }
	assert_contains "$T/out" '^PASS' "target verdict"
}

# rtcr inspect of $T/img into $T/inspect.txt (its output shown if it fails).
inspect_img() {
	"$RTCR" inspect "$T/img" > "$T/inspect.txt" 2>&1 || fail "inspect: $(cat "$T/inspect.txt")"
}

# Kill the target (SIGKILL), reap it, and wait until its pid is free for a restore.
kill_target() {
	kill -9 "$PID"; wait "$PID" 2>/dev/null
	wait_pid_free "$PID"
}

# ---- TCP server and outside client (fdkinds_inet.sh, netns.sh) ----

# The server target (fd_inet_tcp server FAM [extra]) and its client,
# started outside the tree with its own trigger $T/go2. Sets PID, CPID.
# With INET_NS set, both run in that network namespace.
inet_server() { # fam [extra]
	need_debian nft nftables   # the network lock of --tcp-established
	local ns=()
	[ -z "${INET_NS:-}" ] || ns=(nsenter --net="/run/netns/$INET_NS")
	if [ -n "${INET_NS:-}" ]; then
		start "$(command -v nsenter)" --net="/run/netns/$INET_NS" "$TGT/fd_inet_tcp" server "$@"
	else
		start fd_inet_tcp server "$@"
	fi
	wait_for "$T/out" '^PORT' 5
	PORT=$(sed -n 's/^PORT //p' "$T/out")
	: > "$T/cli.out"
	RTCR_TRIGGER="$T/go2" "${ns[@]}" "$TGT/fd_inet_tcp" client "$1" "$PORT" > "$T/cli.out" 2>&1 &
	CPID=$!
	track_pid "$CPID"
	wait_for "$T/out" '^READY' 10
	wait_for "$T/cli.out" '^READY' 5
}

# Both triggers; both sides must pass. RPID: rtcr restore, or empty.
inet_server_finish() {
	touch "$T/go" "$T/go2"
	wait "$CPID"
	local crc=$?
	if [ -n "${RPID:-}" ]; then
		wait "$RPID"
	else
		wait "$PID"
	fi
	local rc=$?
	[ $crc = 0 ] || { cat "$T/cli.out" >&2; cat "$T/out" >&2; cat "$T/restore.err" >&2 2>/dev/null; fail "the outside client failed (exit $crc)"; }
	[ $rc = 0 ] || { cat "$T/out" >&2; cat "$T/restore.err" >&2 2>/dev/null; fail "the server failed (exit $rc)"; }
	assert_contains "$T/cli.out" '^PASS' "client verdict"
	assert_contains "$T/out" '^PASS' "server verdict"
	# The client got every byte the server had written before the dump.
	assert_eq "$(sed -n 's/^SENT //p' "$T/out")" "$(sed -n 's/^GOT //p' "$T/cli.out")" "pattern bytes"
}

# ---- redis-server from Debian, 100k keys, a client connection open
# across the checkpoint (fdkinds_inet.sh, netns.sh) ----

# redis-cli against the server; in netns $REDIS_NS if set.
redis_cli() {
	local ns=()
	[ -z "${REDIS_NS:-}" ] || ns=(nsenter --net="/run/netns/$REDIS_NS")
	"${ns[@]}" redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" "$@"
}

# Start redis on ADDR:PORT (with a command prefix, e.g. nsenter into its
# netns), 100k keys, and a client (in $REDIS_NS if set) whose connection
# stays open: it checks its key and the dataset after $T/go2. Sets PID,
# CPID, REDIS_HOST, REDIS_PORT.
redis_up() { # addr port [prefix...]
	need_debian redis-server redis-server redis-tools
	need_debian redis-cli redis-server redis-tools
	need_debian nft nftables
	REDIS_HOST=$1 REDIS_PORT=$2
	shift 2
	local cmd=("$@" "$(command -v redis-server)")
	start "${cmd[@]}" --port "$REDIS_PORT" \
		--bind "$REDIS_HOST" --save '' --appendonly no --protected-mode no \
		--enable-debug-command yes --dir "$T"
	local i ns=()
	for ((i = 0; i < 500; i++)); do
		[ "$(redis_cli PING 2>/dev/null)" = PONG ] && break
		sleep 0.01
	done
	[ "$(redis_cli PING)" = PONG ] || { cat "$T/out" >&2; fail "redis did not start"; }
	assert_eq OK "$(redis_cli DEBUG POPULATE 100000)" "DEBUG POPULATE"
	[ -z "${REDIS_NS:-}" ] || ns=(nsenter --net="/run/netns/$REDIS_NS")
	"${ns[@]}" python3 - "$REDIS_HOST" "$REDIS_PORT" "$T/go2" > "$T/cli.out" 2>&1 <<'PY' &
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
f = s.makefile("rb")
def cmd(*a):
    s.sendall(b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a))
    return f.readline().rstrip(b"\r\n")
def bulk(*a):
    h = cmd(*a)
    assert h.startswith(b"$"), h
    return f.read(int(h[1:]) + 2)[:-2]
assert cmd(b"SET", b"conn-key", b"before") == b"+OK"
print("READY", flush=True)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.01)
v = bulk(b"GET", b"conn-key")
assert v == b"before", v
assert cmd(b"SET", b"conn-key", b"after") == b"+OK"
assert bulk(b"GET", b"key:4242") == b"value:4242"
assert cmd(b"DBSIZE") == b":100001"
assert cmd(b"PING") == b"+PONG"
print("PASS", flush=True)
PY
	CPID=$!
	track_pid "$CPID"
	wait_for "$T/cli.out" '^READY' 10
}

# After the restore: the same dataset, the open connection works, a new
# one too.
redis_check() { # digest at the dump
	assert_eq "$1" "$(redis_cli DEBUG DIGEST)" "dataset digest after restore"
	assert_eq 100001 "$(redis_cli DBSIZE)" "keys"
	assert_eq value:99999 "$(redis_cli GET key:99999)" "a key"
	touch "$T/go2"
	wait "$CPID" || { cat "$T/cli.out" >&2; fail "the open connection failed after restore"; }
	assert_contains "$T/cli.out" '^PASS' "client verdict"
	assert_eq OK "$(redis_cli SET new-key 1)" "a new connection"
}

# ---- Incremental chains (tests/targets/mem_incr.c; incremental.sh, merge.sh) ----

# Dump the running target into $T/NAME, leaving it running; extra args.
chain_dump() { # name [args]
	local d="$T/$1"; shift
	mkdir -p "$d"
	"$RTCR" dump -t "$PID" -D "$d" --leave-running --stats "$@" > "$d.out" 2>&1 ||
		{ cat "$d.out" >&2; fail "rtcr dump into $d exited $?"; }
}

# "STORED INHERITED PARENT_PATH" of the image in DIR ("-": no parent).
chain_pages() { "$RTCR" inspect --json "$1" | python3 -c '
import json, sys
j = json.load(sys.stdin)
procs = j.get("processes") or [j]
inh = sum(v.get("pages_inherited", 0) for p in procs for v in p["memory"])
print(j["image"]["pages"], inh, j["image"].get("parent_path", "-"))'; }

# Make the target take step K and wait until it says so.
chain_step() { # k [file the target prints to, default $T/out]
	touch "$T/go.step$1"
	wait_for "${2:-$T/out}" "^STEP $1\$"
}

# Restore DIR (with $RESTORE_ARGS) and check the target is at step K.
chain_restore_check() { # dir k [file the target prints to, default $T/out]
	rm -f "$T/go" "$T"/go.step*
	"$RTCR" restore -D "$1" ${RESTORE_ARGS:-} < /dev/null >> "$T/out" 2> "$T/restore.err" &
	RPID=$!
	track_pid "$RPID"
	local i
	for ((i = 0; i < 500; i++)); do
		[ "$(awk '/^TracerPid/ {print $2}' /proc/$PID/status 2>/dev/null)" = 0 ] && break
		kill -0 "$RPID" 2>/dev/null || break
		sleep 0.01
	done
	echo "$2" > "$T/go.tmp" && mv "$T/go.tmp" "$T/go"
	wait "$RPID"
	local rc=$?
	[ $rc = 0 ] || { cat "$T/restore.err" "$T/out" >&2; fail "restore of $1 exited $rc"; }
	assert_contains "${3:-$T/out}" '^PASS' "target verdict"
}
