# The basic cycle on simple targets, and the command-line contract.

test_counter_dynamic() { cycle counter; }
test_counter_static() { cycle counter-static; }

test_restore_keeps_pid_and_exit_status() {
	start_ready counter
	local pid=$PID
	dump
	restore_bg
	assert_eq "$pid" "$(cat /proc/$pid/stat | awk '{print $1}')" "restored pid"
	finish 0
}

test_detach_prints_pid() {
	start_ready counter
	dump
	"$RTCR" restore -D "$T/img" --detach > "$T/detach.out" 2> "$T/restore.err" || fail "restore --detach failed: $(cat "$T/restore.err")"
	assert_eq "$PID" "$(cat "$T/detach.out")" "printed pid"
	assert_running "$PID"
	touch "$T/go"
	wait_for "$T/out" '^PASS'
}

test_leave_running() {
	# stdout through a pipe: the original keeps writing after the dump,
	# and a regular file that grew would (rightly) stop the restore.
	OUT_PIPE=1 start_ready counter
	dump --leave-running
	assert_running "$PID"
	# The original goes on counting and passes its own check...
	touch "$T/go"
	wait_for "$T/out" '^PASS'
	wait "$PID" 2>/dev/null
	# ...and the image restores the state it had at the dump.
	rm -f "$T/go"
	restore_bg
	finish
}

test_sleep_from_debian() {
	start /bin/sleep 1000
	sleep 0.2
	dump
	assert_gone "$PID"
	"$RTCR" restore -D "$T/img" --detach > /dev/null 2> "$T/restore.err" || fail "$(cat "$T/restore.err")"
	assert_running "$PID"
	assert_eq "sleep" "$(cat /proc/$PID/comm)" "comm"
	assert_eq "/usr/bin/sleep" "$(readlink /proc/$PID/exe)" "exe link"
	tr '\0' ' ' < /proc/$PID/cmdline > "$T/cmdline"
	assert_contains "$T/cmdline" "sleep 1000" "cmdline"
	# sleep must still be sleeping, not exiting from a bad resume.
	sleep 0.3
	assert_running "$PID"
}
