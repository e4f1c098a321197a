# File locks (flock, POSIX, OFD) and signal-driven I/O (F_SETOWN_EX,
# F_SETSIG, O_ASYNC) across a checkpoint. Each target also runs without
# a dump (native), as the control.

# The target checks every lock from a fresh child (type, range, holder),
# releases them, and its child blocked in F_SETLKW gets its lock.
test_fdkinds_locks() {
	mkdir -p "$T/d"
	start_ready fd_locks "$T/d"
	local waiter
	waiter=$(cat /proc/$PID/task/$PID/children)
	[ -n "$waiter" ] || fail "no waiter child"
	track_pid "$waiter"
	dump
	assert_gone "$PID"
	assert_gone "$waiter"
	inspect_img
	assert_contains "$T/inspect.txt" "fd 10 .*$T/d/fl .*, flock exclusive lock whole file" "fd 10"
	assert_contains "$T/inspect.txt" "fd 11 .*$T/d/fl2 .*, flock shared lock whole file" "fd 11"
	assert_contains "$T/inspect.txt" "fd 12 .*$T/d/px .*, POSIX write lock bytes 10-29, POSIX read lock bytes 100-EOF" "fd 12"
	assert_contains "$T/inspect.txt" "fd 13 .*$T/d/ofd .*, OFD write lock bytes 5-5, OFD read lock bytes 50-59" "fd 13"
	assert_contains "$T/inspect.txt" "fd 14 .*$T/d/map .*, POSIX write lock bytes 0-4095" "fd 14"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_fdkinds_locks_static() { mkdir -p "$T/d"; cycle fd_locks-static "$T/d"; }
test_fdkinds_locks_native() { mkdir -p "$T/d"; native_settled fd_locks "$T/d"; }

# Someone outside took a lock the image holds: the restore fails, naming
# the file, the lock and its range, and nothing is left running.
test_fdkinds_locks_conflict_flock() {
	mkdir -p "$T/d"
	start_ready fd_locks "$T/d"
	local waiter hold
	waiter=$(cat /proc/$PID/task/$PID/children)
	track_pid "$waiter"
	dump
	flock -x "$T/d/fl" sleep 1000 &
	hold=$!
	track_pid "$hold"
	wait_for_lock "$T/d/fl"
	"$RTCR" restore -D "$T/img" > "$T/r.out" 2>&1 && fail "restore succeeded"
	kill "$hold"
	wait "$hold" 2>/dev/null
	assert_contains "$T/r.out" "fd 10: $T/d/fl: flock exclusive lock on whole file: cannot be taken again: another process holds a conflicting lock" "message"
	assert_gone "$PID"
	assert_gone "$waiter"
}
test_fdkinds_locks_conflict_posix() {
	mkdir -p "$T/d"
	start_ready fd_locks "$T/d"
	local waiter hold
	waiter=$(cat /proc/$PID/task/$PID/children)
	track_pid "$waiter"
	dump
	# A POSIX read lock on byte 15, inside the image's write lock 10-29.
	python3 -c 'import fcntl, os, sys, time
f = open(sys.argv[1], "r")
fcntl.lockf(f, fcntl.LOCK_SH, 1, 15)
print("locked", flush=True)
time.sleep(1000)' "$T/d/px" > "$T/holder.out" &
	hold=$!
	track_pid "$hold"
	wait_for "$T/holder.out" '^locked' 10
	"$RTCR" restore -D "$T/img" > "$T/r.out" 2>&1 && fail "restore succeeded"
	kill "$hold"
	wait "$hold" 2>/dev/null
	assert_contains "$T/r.out" "fd 12: $T/d/px: POSIX write lock on bytes 10-29: cannot be taken again: process $hold holds a conflicting lock" "message"
	assert_gone "$PID"
	assert_gone "$waiter"
}

wait_for_lock() { # file: until /proc/locks shows a lock on it
	local ino i
	ino=$(stat -c %i "$1")
	for ((i = 0; i < 1000; i++)); do
		grep -q ":$ino " /proc/locks && return 0
		sleep 0.01
	done
	fail "no lock on $1"
}

# O_ASYNC + F_SETOWN + F_SETSIG on a pipe, F_SETOWN_EX (thread) on a
# socket: after the restore, data arriving raises the signals.
test_fdkinds_async() {
	start_ready fd_async
	dump
	assert_gone "$PID"
	inspect_img
	assert_contains "$T/inspect.txt" "fd 10 .*pipe.*, async, owner pid $PID, signal SIGRTMIN+2" "fd 10"
	assert_contains "$T/inspect.txt" "fd 12 .*unix.*, async, owner thread $PID" "fd 12"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_fdkinds_async_static() { cycle fd_async-static; }
test_fdkinds_async_native() { native_settled fd_async; }
