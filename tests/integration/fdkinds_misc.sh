# POSIX timers, memfds held as fds, files deleted while open, FIFOs and
# pidfds across a checkpoint. Each target also runs without a dump
# (native), as the control.

misc_native() { # target [args]
	start_ready "$@"
	sleep 0.3
	touch "$T/go"
	wait "$PID"
	local rc=$?
	[ $rc = 0 ] || { cat "$T/out" >&2; fail "$1 without a dump exited $rc"; }
	assert_contains "$T/out" '^PASS' "native verdict"
}

misc_inspect() {
	"$RTCR" inspect "$T/img" > "$T/inspect.txt" 2>&1 || fail "inspect: $(cat "$T/inspect.txt")"
}

# The gap between dump and restore (1 s) is not counted by the timers.
test_fdkinds_posix_timer() {
	start_ready posix_timer
	dump
	assert_gone "$PID"
	misc_inspect
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
test_fdkinds_posix_timer_native() { misc_native posix_timer; }
