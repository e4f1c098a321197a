# Repeated cycles: dump, restore --detach, dump the restored process,
# restore again... The state changes between cycles and must be intact
# at the end.



status_count() { awk '{print $1; exit}' "$T/status"; }

wait_count_above() { # value
	local i v
	for ((i = 0; i < 500; i++)); do
		v=$(status_count)
		[ -n "$v" ] && [ "$v" -gt "$1" ] && return 0
		sleep 0.01
	done
	fail "count stayed at '$v', not above $1"
}

three_cycles() { # target
	start_ready "$1" "$T/status"
	local k prev=0 v
	for k in 1 2 3; do
		wait_count_above "$prev"
		sleep 0.2   # let it rewrite a few hundred pages
		rm -rf "$T/img"
		dump
		assert_gone "$PID"
		wait_pid_free "$PID"
		v=$(status_count)
		[ "$v" -ge "$prev" ] || fail "cycle $k: count $v at the dump, below $prev"
		restore_detached
		# It goes on from where it was.
		wait_count_above "$v"
		local now; now=$(status_count)
		[ "$now" -lt $((v + 400)) ] || fail "cycle $k: count jumped from $v to $now"
		echo "cycle $k: count $v at the dump, $now after the restore"
		prev=$v
	done
	touch "$T/go"
	wait_for "$T/out" '^\(PASS\|FAIL\)' 10
	assert_not_contains "$T/out" '^FAIL' "target verdict"
	local final; final=$(awk '/^count/ {print $2}' "$T/out")
	[ "$final" -ge "$prev" ] || fail "final count $final below $prev"
	# The last restored process exits by itself; its reaper reaps it.
	local i
	for ((i = 0; i < 300; i++)); do [ -e /proc/$PID ] || break; sleep 0.01; done
	assert_gone "$PID"
}

test_three_cycles_dynamic() { three_cycles cycler; }
test_three_cycles_static() { three_cycles cycler-static; }

test_three_cycles_sigpend_state() {
	# Pending signals and the blocked mask survive three generations.
	start_ready sigpend
	local k
	for k in 1 2 3; do
		rm -rf "$T/img"
		dump
		wait_pid_free "$PID"
		restore_detached
	done
	touch "$T/go"
	wait_for "$T/out" '^\(PASS\|FAIL\)' 10
	assert_not_contains "$T/out" '^FAIL' "target verdict"
}

test_three_cycles_leave_running_then_restore() {
	# --leave-running three times in a row on the same process: each
	# image restores, the original keeps going and passes too.
	OUT_PIPE=1 start_ready cycler "$T/status"
	local k
	for k in 1 2 3; do
		rm -rf "$T/img.$k"
		mkdir -p "$T/img.$k"
		"$RTCR" dump -t "$PID" -D "$T/img.$k" --leave-running > "$T/dump.out" 2>&1 ||
			{ cat "$T/dump.out" >&2; fail "dump $k"; }
		assert_running "$PID"
		sleep 0.1
	done
	touch "$T/go"
	wait_for "$T/out" '^\(PASS\|FAIL\)' 10
	assert_not_contains "$T/out" '^FAIL' "original's verdict"
	wait "$PID" 2>/dev/null
	wait_pid_free "$PID"
	# The status file was rewritten after the dumps, at the same size:
	# each image restores, and its process passes its own check.
	rm -f "$T/go"
	for k in 1 2 3; do
		"$RTCR" restore -D "$T/img.$k" > "$T/restore.$k.out" 2> "$T/restore.err" &
		RPID=$!
		track_pid "$RPID"
		local i
		for ((i = 0; i < 500; i++)); do [ -e /proc/$PID ] && break; sleep 0.01; done
		sleep 0.1
		touch "$T/go"
		wait "$RPID" || { cat "$T/restore.err" "$T/restore.$k.out" >&2; fail "image $k: restored process failed"; }
		rm -f "$T/go"
		wait_pid_free "$PID"
	done
}
