# Process trees: every descendant with the same pids, parent links,
# process groups, sessions, zombies, stopped members, shared memory and
# pipes between members. Targets: tests/targets/tree*.c (their header
# comments say what they check), and unmodified Debian programs.

test_tree_pipe_shm_zombie() { cycle tree; }

# --pidns: the saved pids are taken (the original still runs), so the
# tree comes back under the init of a new pid namespace, with its pids
# there, and a /proc of that namespace.
test_pidns_restore_while_original_runs() {
	OUT_PIPE=1 start_ready tree
	local pid=$PID kids
	kids=$(cat /proc/$pid/task/*/children)
	dump --leave-running
	assert_running "$pid"
	# Without --pidns: a clear error naming the taken pid.
	"$RTCR" restore -D "$T/img" > "$T/r1.out" 2>&1 && fail "restore succeeded with pid $pid taken"
	assert_contains "$T/r1.out" "pid $pid is in use" "error names the taken pid"
	"$RTCR" restore -D "$T/img" --pidns --detach > "$T/detach.out" 2> "$T/restore.err" ||
		fail "restore --pidns failed: $(cat "$T/restore.err")"
	local hpid; hpid=$(head -n1 "$T/detach.out")
	track_pid "$hpid"
	local init; init=$(awk '{print $4}' /proc/$hpid/stat)
	track_pid "$init"
	assert_ne "$pid" "$hpid" "host pid of the restored root"
	assert_eq "$hpid $pid" "$(awk '/^NSpid/ {print $2, $3}' /proc/$hpid/status)" "NSpid of the root"
	assert_eq "1" "$(awk '/^NSpid/ {print $3}' /proc/$init/status)" "init's pid in the namespace"
	# Every child is there with its saved pid inside.
	local k hk seen=""
	for hk in $(cat /proc/$hpid/task/*/children); do
		track_pid "$hk"
		seen="$seen $(awk '/^NSpid/ {print $3}' /proc/$hk/status)"
	done
	assert_eq "$(echo $kids | tr ' ' '\n' | sort -n | tr '\n' ' ')" \
		"$(echo $seen | tr ' ' '\n' | sort -n | tr '\n' ' ')" "children's pids in the namespace"
	# Both trees run to their own verdict: the original into $T/out, the
	# copy into rtcr's stdout (its inherited stdio), after the pid line.
	touch "$T/go"
	wait_for "$T/out" '^PASS'
	wait_for "$T/detach.out" '^PASS'
	assert_not_contains "$T/detach.out" '^FAIL' "restored copy's verdict"
	# The namespace ends with its tree.
	wait_pid_free "$init"
}

# --pidns with threads (their tids in the namespace) and rtcr waiting:
# its exit status is the root's, carried out of the namespace by init.
test_pidns_threads_exit_status() {
	start_ready thr_regs "$T/status"
	sleep 0.2
	local tids; tids=$(ls /proc/$PID/task | sort -n | tr '\n' ' ')
	dump
	assert_gone "$PID"
	"$RTCR" restore -D "$T/img" --pidns < /dev/null >> "$T/out" 2> "$T/restore.err" &
	RPID=$!
	track_pid "$RPID"
	local i init="" hpid=""
	for ((i = 0; i < 500; i++)); do
		[ -z "$hpid" ] || break
		init=$(cat /proc/$RPID/task/*/children 2>/dev/null | awk '{print $1}')
		[ -n "$init" ] && hpid=$(cat /proc/$init/task/*/children 2>/dev/null | awk '{print $1}')
		sleep 0.01
	done
	[ -n "$hpid" ] || { cat "$T/restore.err" >&2; fail "no restored root under the namespace's init"; }
	track_pid "$init"; track_pid "$hpid"
	for ((i = 0; i < 500; i++)); do
		[ "$(awk '/^TracerPid/ {print $2}' /proc/$hpid/status 2>/dev/null)" = 0 ] && break
		sleep 0.01
	done
	local t seen=""
	for t in /proc/$hpid/task/*; do
		seen="$seen$(awk '/^NSpid/ {print $3}' $t/status) "
	done
	assert_eq "$tids" "$(echo $seen | tr ' ' '\n' | sort -n | tr '\n' ' ')" "thread ids in the namespace"
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
