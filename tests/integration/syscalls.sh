# A process checkpointed while blocked in a system call resumes it
# correctly after restore. The targets (tests/targets/sc_*.c) block right
# after READY; each test dumps while the call is blocked, checks that
# rtcr inspect names the call, restores, ends the wait (trigger file,
# input on stdin, or a signal) and expects PASS.
#
# Calls the kernel restarts after a stop (read, select, pause, futex
# without timeout, absolute clock_nanosleep...) must resume without any
# visible error; relative sleeps and waits with a timeout come back with
# EINTR and the time left, which the targets handle like any program.

# Dump the blocked target, check inspect names the call, restore (with
# restore_bg).
sc_dump_restore() { # syscall-name (as rtcr inspect prints it)
	sleep 0.2
	assert_running "$PID"
	dump
	assert_gone "$PID"
	"$RTCR" inspect "$T/img" > "$T/inspect.txt" || fail "rtcr inspect failed"
	assert_contains "$T/inspect.txt" "^thread .*in syscall" "thread state in rtcr inspect"
	assert_contains "$T/inspect.txt" "^thread .*($1)" "syscall name in rtcr inspect"
	restore_bg
}


# Fail showing how the restored process ended if it already did.
sc_assert_waiting() { # what it waits for
	local st; st=$(proc_state "$PID")
	if [ -z "$st" ] || [ "$st" = Z ]; then
		finish
		fail "the restored process ended before $1"
	fi
	assert_running "$PID"
	assert_not_contains "$T/out" '^PASS' "target output before $1"
}

# Send a signal to the restored process, then finish (lib.sh), but fail
# (rather than hang) if it does not end within 5 s.
sc_signal_finish() { # signal
	# Let the restored process get back into its call first: a signal
	# handled before the call is re-entered would be lost to it, for any
	# program (the same race as "check a flag, then pause()").
	sleep 0.1
	assert_running "$PID"
	kill -s "$1" "$PID" || fail "kill -s $1 $PID failed"
	sc_finish_within 5
}

sc_finish_within() { # seconds
	local i
	touch "$T/go"
	for ((i = 0; i < $1 * 100; i++)); do
		kill -0 "$RPID" 2>/dev/null || break
		[ "$(proc_state "$RPID")" = Z ] && break
		sleep 0.01
	done
	if [ "$(proc_state "$RPID")" != "" ] && [ "$(proc_state "$RPID")" != Z ]; then
		echo "--- target output:" >&2; cat "$T/out" >&2
		echo "--- /proc/$PID/stack or wchan: $(cat /proc/$PID/wchan 2>/dev/null)" >&2
		fail "restored process did not finish within $1 s"
	fi
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

# ---- sleeps ----

sc_sleep() { # target mode inspect-name
	start_ready "$1" "$2" 2000
	sc_dump_restore "$3"
	sc_finish_within 10
}
test_sc_nanosleep() { sc_sleep sc_sleep nanosleep nanosleep; }
test_sc_nanosleep_static() { sc_sleep sc_sleep-static nanosleep nanosleep; }
test_sc_clock_nanosleep_rel() { sc_sleep sc_sleep clock_nanosleep clock_nanosleep; }
test_sc_clock_nanosleep_abs() { sc_sleep sc_sleep abs clock_nanosleep; }
test_sc_clock_nanosleep_abs_static() { sc_sleep sc_sleep-static abs clock_nanosleep; }
test_sc_glibc_sleep() { sc_sleep sc_sleep sleep clock_nanosleep; }

# The absolute sleep restarts: inspect says so.
test_sc_clock_nanosleep_abs_restarts() {
	start_ready sc_sleep abs 2000
	sc_dump_restore clock_nanosleep
	assert_contains "$T/inspect.txt" "restarts on resume" "restart state in rtcr inspect"
	sc_finish_within 10
}

# ---- reads on a stdin pipe ----

# The target's stdin is a FIFO with a writer kept open by the test (so it
# blocks); the restored process gets rtcr restore's stdin, another FIFO
# the test writes to after restore.
sc_read() { # target mode inspect-name
	local w0 w1
	mkfifo "$T/stdin0" "$T/stdin1" || fail "mkfifo"
	exec {w0}<>"$T/stdin0" {w1}<>"$T/stdin1"
	STDIN="$T/stdin0" start_ready "$1" "$2" 4242
	RESTORE_STDIN="$T/stdin1" sc_dump_restore "$3"
	sleep 0.1
	sc_assert_waiting "the input came"
	echo "rtcr-input-4242" >&$w1
	sc_finish_within 5
	exec {w0}>&- {w1}>&-
}
test_sc_read_pipe() { sc_read sc_read read read; }
test_sc_read_pipe_static() { sc_read sc_read-static read read; }
test_sc_select() { sc_read sc_read select select; }
test_sc_pselect6() { sc_read sc_read pselect pselect6; }
test_sc_poll_timeout() { sc_read sc_read poll poll; }
test_sc_poll_infinite() { sc_read sc_read pollinf poll; }
test_sc_ppoll() { sc_read sc_read ppoll ppoll; }
test_sc_ppoll_static() { sc_read sc_read-static ppoll ppoll; }

# ---- waiting for signals ----

sc_signal() { # target mode inspect-name signal
	start_ready "$1" "$2"
	sc_dump_restore "$3"
	sleep 0.1
	sc_assert_waiting "the signal"
	sc_signal_finish "$4"
}
test_sc_pause() { sc_signal sc_signal pause pause USR1; }
test_sc_pause_static() { sc_signal sc_signal-static pause pause USR1; }
test_sc_sigsuspend() { sc_signal sc_signal sigsuspend rt_sigsuspend USR1; }
test_sc_ppoll_sigmask() { sc_signal sc_signal ppoll ppoll USR1; }
test_sc_pselect6_sigmask() { sc_signal sc_signal pselect pselect6 USR1; }
test_sc_sigwaitinfo() { sc_signal sc_signal sigwaitinfo rt_sigtimedwait USR2; }
test_sc_sigtimedwait() { sc_signal sc_signal sigtimedwait rt_sigtimedwait USR2; }
test_sc_sigtimedwait_static() { sc_signal sc_signal-static sigtimedwait rt_sigtimedwait USR2; }

# ---- futex ----

test_sc_futex_wait() { sc_signal sc_futex wait futex USR1; }
test_sc_futex_wait_static() { sc_signal sc_futex-static wait futex USR1; }
test_sc_futex_wait_timeout() { sc_signal sc_futex timeout futex USR1; }
test_sc_futex_wait_bitset_abs() { sc_signal sc_futex bitset futex USR1; }

# ---- epoll: blocked in epoll_wait on stdin ----
# (the interest list itself: tests/integration/fdkinds_poll.sh)

test_sc_epoll_wait() { sc_read sc_epoll wait epoll_wait; }
test_sc_epoll_wait_static() { sc_read sc_epoll-static wait epoll_wait; }
test_sc_epoll_pwait() { sc_read sc_epoll pwait epoll_pwait; }

# ---- dump --leave-running: the original goes on in its call too ----

test_sc_nanosleep_leave_running() {
	OUT_PIPE=1 start_ready sc_sleep nanosleep 2000
	sleep 0.2
	dump --leave-running
	assert_running "$PID"
	touch "$T/go"
	wait_for "$T/out" '^PASS' 10
	wait "$PID"
	assert_eq 0 "$?" "the original's exit status"
	# and the image restores it inside the sleep
	rm -f "$T/go"
	: > "$T/out"
	"$RTCR" inspect "$T/img" > "$T/inspect.txt" || fail "rtcr inspect failed"
	assert_contains "$T/inspect.txt" "^thread .*in syscall.*(nanosleep)" "syscall state"
	restore_bg
	sc_finish_within 10
}

test_sc_read_leave_running() {
	local w0 w1
	mkfifo "$T/stdin0" "$T/stdin1" || fail "mkfifo"
	exec {w0}<>"$T/stdin0" {w1}<>"$T/stdin1"
	OUT_PIPE=1 STDIN="$T/stdin0" start_ready sc_read read 4242
	sleep 0.2
	dump --leave-running
	assert_running "$PID"
	sleep 0.1
	assert_running "$PID"
	assert_not_contains "$T/out" '^PASS' "the original's output before its input came"
	echo "rtcr-input-4242" >&$w0
	wait_for "$T/out" '^PASS' 5
	wait "$PID"
	assert_eq 0 "$?" "the original's exit status"
	: > "$T/out"
	RESTORE_STDIN="$T/stdin1" restore_bg
	sleep 0.1
	sc_assert_waiting "the input came"
	echo "rtcr-input-4242" >&$w1
	sc_finish_within 5
	exec {w0}>&- {w1}>&-
}
