# POSIX timers, memfds held as fds, files deleted while open, FIFOs and
# pidfds across a checkpoint. Each target also runs without a dump
# (native), as the control.

# The gap between dump and restore (1 s) is not counted by the timers.
test_fdkinds_posix_timer() {
	start_ready posix_timer
	dump
	assert_gone "$PID"
	inspect_img
	assert_contains "$T/inspect.txt" "POSIX timer 1: monotonic, SIGUSR1, value 0xdeadbeefcafe, interval 0.050s" "timer A"
	assert_contains "$T/inspect.txt" "POSIX timer 2: monotonic, no signal, next in 29\.[0-9]*s" "timer B"
	assert_contains "$T/inspect.txt" "POSIX timer 3: boottime, SIGRTMIN+2 to thread $PID, value 0x1092, next in 0\.[0-9]*s" "timer C"
	assert_contains "$T/inspect.txt" "POSIX timer 4: realtime, SIGUSR2, value 0, disarmed" "timer D"
	sleep 1
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_fdkinds_posix_timer_static() { cycle posix_timer-static; }
test_fdkinds_posix_timer_native() { native_settled posix_timer; }

# memfds held as fds: one object with the mapping of it, one for an fd
# alone; both stored once in the image's objects.
test_fdkinds_memfd() {
	start_ready fd_memfd
	dump
	assert_gone "$PID"
	inspect_img
	assert_contains "$T/inspect.txt" "fd 10 .*memfd shared rw offset 5 (object [0-9]*)" "fd 10"
	assert_contains "$T/inspect.txt" "fd 11 .*memfd shared r offset 0 (object [0-9]*), cloexec" "fd 11"
	assert_contains "$T/inspect.txt" "fd 12 .*memfd alone rw,append offset 1234 (object [0-9]*)" "fd 12"
	local o10 o11 o12
	o10=$(sed -n 's/.*fd 10 .*(object \([0-9]*\)).*/\1/p' "$T/inspect.txt")
	o11=$(sed -n 's/.*fd 11 .*(object \([0-9]*\)).*/\1/p' "$T/inspect.txt")
	o12=$(sed -n 's/.*fd 12 .*(object \([0-9]*\)).*/\1/p' "$T/inspect.txt")
	assert_eq "$o10" "$o11" "fd 10 and 11 object"
	assert_ne "$o10" "$o12" "fd 12 object"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_fdkinds_memfd_static() { cycle fd_memfd-static; }
test_fdkinds_memfd_native() { native_settled fd_memfd; }
# Restored twice from one image: each restore makes its own objects.
test_fdkinds_memfd_twice() {
	OUT_PIPE=1 start_ready fd_memfd
	dump
	restore_bg
	finish
	rm -f "$T/go"
	restore_bg
	finish
	[ "$(grep -c '^PASS' "$T/out")" = 2 ] || { cat "$T/out" >&2; fail "not two PASS verdicts"; }
}

test_fdkinds_deleted() {
	mkdir -p "$T/d"
	start_ready fd_deleted "$T/d"
	dump
	assert_gone "$PID"
	inspect_img
	assert_contains "$T/inspect.txt" "fd 10 .*deleted $T/d/del-a rw offset 7 (object [0-9]*)" "fd 10"
	assert_contains "$T/inspect.txt" "fd 11 .*deleted $T/d/del-a w,append offset 0 (object [0-9]*)" "fd 11"
	assert_contains "$T/inspect.txt" "fd 12 .*deleted $T/d/del-b r offset 4096 (object [0-9]*)" "fd 12"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
	[ -z "$(ls -A "$T/d")" ] || fail "files left in the directory: $(ls -A "$T/d")"
}
test_fdkinds_deleted_static() { mkdir -p "$T/d"; cycle fd_deleted-static "$T/d"; }
test_fdkinds_deleted_native() { mkdir -p "$T/d"; native_settled fd_deleted "$T/d"; }
# The directory is gone at restore: refused before anything is made.
test_fdkinds_deleted_no_dir() {
	mkdir -p "$T/d"
	start_ready fd_deleted "$T/d"
	dump
	rmdir "$T/d"
	"$RTCR" restore -D "$T/img" > "$T/r.out" 2>&1 && fail "restore without the directory succeeded"
	assert_contains "$T/r.out" "deleted file $T/d/del-[ab].*its directory $T/d does not exist here" "message"
	assert_gone "$PID"
}

test_fdkinds_fifo() {
	mkdir -p "$T/d"
	start_ready fd_fifo "$T/d"
	dump
	assert_gone "$PID"
	inspect_img
	assert_contains "$T/inspect.txt" "fd 10 .*fifo $T/d/f1 r,nonblock, 10 bytes in flight" "fd 10"
	assert_contains "$T/inspect.txt" "fd 11 .*fifo $T/d/f1 w" "fd 11"
	assert_contains "$T/inspect.txt" "fd 12 .*fifo $T/d/f2 rw, 5 bytes in flight" "fd 12"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_fdkinds_fifo_static() { mkdir -p "$T/d"; cycle fd_fifo-static "$T/d"; }
test_fdkinds_fifo_native() { mkdir -p "$T/d"; native_settled fd_fifo "$T/d"; }
# Someone outside kept the FIFO open, with bytes in it: refused at restore.
test_fdkinds_fifo_kept_outside() {
	mkdir -p "$T/d"
	start_ready fd_fifo "$T/d"
	local hold
	exec {hold}<>"$T/d/f2"
	dump
	"$RTCR" restore -D "$T/img" > "$T/r.out" 2>&1 && fail "restore succeeded"
	assert_contains "$T/r.out" "FIFO $T/d/f2 already holds 5 bytes: a process outside the image keeps it open" "message"
	exec {hold}>&-
	assert_gone "$PID"
}

test_fdkinds_pidfd() {
	start_ready fd_pidfd
	dump
	assert_gone "$PID"
	inspect_img
	assert_contains "$T/inspect.txt" "fd 10 .*pidfd of pid [0-9]* nonblock" "fd 10"
	assert_contains "$T/inspect.txt" "fd 11 .*pidfd of pid $PID, cloexec" "fd 11"
	assert_contains "$T/inspect.txt" "fd 12 .*pidfd of pid $PID" "fd 12 (child)"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_fdkinds_pidfd_static() { cycle fd_pidfd-static; }
test_fdkinds_pidfd_native() { native_settled fd_pidfd; }
