# rtcr interrupted or killed at any point of a dump never leaves the
# target stopped, traced or damaged, and never leaves a complete-looking
# image.

cpus_of() { awk '/^Cpus_allowed_list/ {print $2}' "/proc/$1/status"; }

killed_at() { # point [rtcr dump options]
	start_ready counter
	mkdir -p "$T/img"
	local cpus; cpus=$(cpus_of "$PID")
	RTCR_TEST_KILL_AT=$1 "$RTCR" dump -t "$PID" -D "$T/img" "${@:2}" > "$T/dump.out" 2>&1
	local rc=$?
	[ $rc = 137 ] || { cat "$T/dump.out" >&2; fail "rtcr was not killed at '$1' (exit $rc)"; }
	[ ! -e "$T/img/image.rtcr" ] || fail "killed dump left image.rtcr"
	sleep 0.05
	assert_running "$PID"
	# rtcr moves a task it drives to its own CPU: the rollback moves it back.
	assert_eq "$cpus" "$(cpus_of "$PID")" "the target's CPU set after rtcr was killed at '$1'"
	touch "$T/go"
	wait "$PID" || { cat "$T/out" >&2; fail "target broken after rtcr was killed at '$1'"; }
	assert_contains "$T/out" '^PASS' "target verdict"
}

test_killed_after_seize() { killed_at seized; }
test_killed_while_injecting() { killed_at injecting; }
test_killed_after_queries() { killed_at queried; }
# A live dump asks its injected queries in a stop before the freeze
# (dump.c: live_ask()): killed there, the same.
test_killed_while_asking() { killed_at injecting --live --leave-running; }
test_killed_after_asking() { killed_at queried --live --leave-running; }
test_killed_before_commit() { killed_at written; }

# Killed while the main thread waits in its stub after a batch of
# injected calls: the wait times out (2 s) and the thread rolls back to
# its own state and CPU set, and counts on.
test_killed_after_a_batch() {
	start_ready counter
	mkdir -p "$T/img"
	local cpus i; cpus=$(cpus_of "$PID")
	RTCR_TEST_KILL_AT=batch-done "$RTCR" dump -t "$PID" -D "$T/img" > "$T/dump.out" 2>&1
	local rc=$?
	[ $rc = 137 ] || { cat "$T/dump.out" >&2; fail "rtcr was not killed after a batch (exit $rc)"; }
	[ ! -e "$T/img/image.rtcr" ] || fail "killed dump left image.rtcr"
	for ((i = 0; i < 400; i++)); do
		[ "$(cpus_of "$PID")" = "$cpus" ] && break
		sleep 0.01
	done
	assert_eq "$cpus" "$(cpus_of "$PID")" "the target's CPU set 4 s after rtcr was killed"
	assert_running "$PID"
	touch "$T/go"
	wait "$PID" || { cat "$T/out" >&2; fail "target broken after rtcr was killed after a batch"; }
	assert_contains "$T/out" '^PASS' "target verdict"
}

# rtcr kept off the CPU for more than the stub's wait (2 s) after a
# batch: the thread rolled back and ran on; the dump is abandoned and the
# thread keeps the state it ran into (rtcr must not put back the one it
# saved at the freeze: mem_race's loop counter, in a register, would go
# back while its pages hold later values).
test_batch_ran_on() {
	start_ready mem_race
	mkdir -p "$T/img"
	local cpus dpid; cpus=$(cpus_of "$PID")
	RTCR_TEST_PAUSE_AT=batch-done RTCR_TEST_PAUSE_FILE="$T/paused" \
		"$RTCR" dump -t "$PID" -D "$T/img" > "$T/dump.out" 2>&1 &
	dpid=$!
	track_pid "$dpid"
	wait_paused "$dpid" "$T/dump.out" "pause after a batch"
	sleep 2.5
	rm -f "$T/paused"
	if wait "$dpid"; then
		fail "the dump succeeded though the thread ran on"
	fi
	assert_contains "$T/dump.out" "ran on after a batch of injected calls" "message"
	[ ! -e "$T/img/image.rtcr" ] || fail "an image was left"
	assert_running "$PID"
	assert_eq "$cpus" "$(cpus_of "$PID")" "the target's CPU set"
	touch "$T/go"
	wait "$PID" || { cat "$T/out" >&2; fail "target broken after it ran on"; }
	assert_contains "$T/out" '^PASS' "target verdict"
}

test_next_dump_after_killed_dump() {
	# A partial file left by a killed dump never stops the next one.
	start_ready counter
	mkdir -p "$T/img"
	RTCR_TEST_KILL_AT=written "$RTCR" dump -t "$PID" -D "$T/img" > /dev/null 2>&1
	dump
	restore_bg
	finish
}

test_sigterm_during_large_dump() {
	start_ready bigmem 512
	mkdir -p "$T/img"
	"$RTCR" dump -t "$PID" -D "$T/img" > "$T/dump.out" 2>&1 &
	local d=$!
	track_pid "$d"
	sleep 0.05
	kill -TERM $d
	wait $d
	local rc=$?
	if [ $rc = 0 ]; then
		# The dump won the race: that is allowed, but then it is complete.
		"$RTCR" inspect "$T/img" > /dev/null || fail "dump exited 0 but the image is bad"
		skip "dump finished before SIGTERM arrived"
	fi
	[ ! -e "$T/img/image.rtcr" ] || fail "interrupted dump left image.rtcr"
	ls -A "$T/img" > "$T/left"
	[ ! -s "$T/left" ] || fail "interrupted dump left files: $(cat "$T/left")"
	assert_contains "$T/dump.out" "interrupted by SIGTERM" "message"
	assert_running "$PID"
	touch "$T/go"
	wait "$PID" || { cat "$T/out" >&2; fail "target broken after an interrupted dump"; }
}

test_restore_killed_leaves_nothing() {
	# rtcr restore killed mid-way: PTRACE_O_EXITKILL takes the half-built
	# process with it.
	start_ready bigmem 256
	dump
	"$RTCR" restore -D "$T/img" > /dev/null 2>&1 &
	local r=$! i
	track_pid "$r"
	for i in $(seq 200); do [ -e /proc/$PID ] && break; sleep 0.005; done
	kill -9 $r
	wait $r 2>/dev/null
	sleep 0.2
	assert_gone "$PID"
}

test_disk_full() {
	mkdir -p "$T/small"
	mount -t tmpfs -o size=2m tmpfs "$T/small" 2>/dev/null || skip "cannot mount a small tmpfs here"
	start_ready bigmem 64
	"$RTCR" dump -t "$PID" -D "$T/small" > "$T/dump.out" 2>&1
	local rc=$?
	ls -A "$T/small" > "$T/left"
	umount "$T/small"
	[ $rc != 0 ] || fail "dump onto a full disk succeeded"
	assert_contains "$T/dump.out" "No space left on device" "message"
	[ ! -s "$T/left" ] || fail "files left on the full disk: $(cat "$T/left")"
	assert_running "$PID"
	touch "$T/go"
	wait "$PID" || { cat "$T/out" >&2; fail "target broken after a failed dump"; }
}
