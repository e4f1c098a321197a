# eventfd, timerfd and signalfd across a checkpoint: counts, flags,
# arming, pending ticks and signals, descriptions shared by dup and fork.
# Each target also runs without a dump (native), as the control.

test_fdkinds_eventfd() { cycle fd_eventfd; }
test_fdkinds_eventfd_static() { cycle fd_eventfd-static; }
test_fdkinds_eventfd_native() { native_settled fd_eventfd; }

test_fdkinds_eventfd_in_image() {
	start_ready fd_eventfd
	dump
	inspect_img
	assert_contains "$T/inspect.txt" "fd 10 .*eventfd count 5 semaphore nonblock" "fd 10"
	assert_contains "$T/inspect.txt" "fd 12 .*eventfd count 1099511627783, cloexec" "fd 12"
	assert_contains "$T/inspect.txt" "fd 13 .*eventfd count 0 nonblock" "fd 13"
	"$RTCR" inspect --json "$T/img" > "$T/inspect.json" 2>&1 || fail "inspect --json"
	assert_contains "$T/inspect.json" '"eventfd"' "json kind"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

# The gap between dump and restore is longer than the 2 s one-shot: a
# relative timer that counted the time away would fire at once, an
# absolute realtime one that did not would fire late.
timerfd_cycle() { # target
	start_ready "$1"
	dump
	assert_gone "$PID"
	inspect_img
	sleep 2.5
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_fdkinds_timerfd() {
	timerfd_cycle fd_timerfd
	assert_contains "$T/inspect.txt" "fd 5 .*timerfd monotonic interval 0.100s next in 0\.[0-9]*s" "fd 5"
	assert_contains "$T/inspect.txt" "fd 7 .*timerfd monotonic disarmed, 1 tick pending, nonblock, cloexec" "fd 7"
	assert_contains "$T/inspect.txt" "fd 8 .*timerfd monotonic interval 0.100s next in .*, [0-9]* ticks pending" "fd 8"
	assert_contains "$T/inspect.txt" "fd 9 .*timerfd realtime next in [0-9.]*s (absolute)" "fd 9"
	assert_contains "$T/inspect.txt" "fd 10 .*timerfd boottime disarmed" "fd 10"
}
test_fdkinds_timerfd_static() { timerfd_cycle fd_timerfd-static; }
test_fdkinds_timerfd_native() { native_settled fd_timerfd; }

# SIGUSR1 is sent to the restored process; SIGTERM and SIGRTMIN+3 were
# pending (blocked) at the dump.
test_fdkinds_signalfd() {
	start_ready fd_signalfd
	dump
	assert_gone "$PID"
	inspect_img
	assert_contains "$T/inspect.txt" "fd 7 .*signalfd mask SIGUSR1,SIGTERM,SIGRTMIN+3 nonblock" "fd 7"
	assert_contains "$T/inspect.txt" "fd 8 .*signalfd mask SIGUSR2, cloexec" "fd 8"
	restore_bg
	kill -USR1 "$PID"
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_fdkinds_signalfd_static() {
	start_ready fd_signalfd-static
	dump
	restore_bg
	kill -USR1 "$PID"
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_fdkinds_signalfd_native() { NATIVE_SIG=USR1 native_settled fd_signalfd; }

# All three in a parent and its child, one description each.
test_fdkinds_event_tree() {
	cycle fd_event_tree
	"$RTCR" inspect "$T/img" > "$T/inspect.txt" 2>&1 || fail "inspect"
	[ "$(grep -c 'fd 20 .*eventfd count 4 semaphore' "$T/inspect.txt")" = 2 ] ||
		{ cat "$T/inspect.txt" >&2; fail "eventfd not in both processes"; }
}
test_fdkinds_event_tree_static() { cycle fd_event_tree-static; }
test_fdkinds_event_tree_native() { native_settled fd_event_tree; }
