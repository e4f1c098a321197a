# Live dumps (--live): memory copied while the process runs, frozen only
# for what it wrote during the last round. Targets: tests/targets/mem_race.c
# (writes as fast as it can and checks the image is one instant of its
# memory), mem_incr.c (drops pages, replaces an area, forks), threads.

# Live-dump the running target into $T/NAME, kill it, restore NAME, trigger.
live_restore_check() { # name
	kill_target
	rm -rf "$T/img"
	ln -s "$1" "$T/img"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

# The pages the freeze of dump NAME copied are fewer than MAX.
freeze_bound() { # name max
	local final; final=$(sed -n 's/.*final_pages=\([0-9]*\).*/\1/p' "$T/$1.out")
	[ -n "$final" ] && [ "$final" -lt "$2" ] ||
		fail "the freeze copied $final pages (bound $2): the writer was not slowed down"
}

# The same, with a looser bound if the writer was throttled (held in
# slices while rtcr copied): what a writer at full speed writes between
# rtcr's last slice and the freeze is not rtcr's to bound, and a stall of
# rtcr on this shared machine (~20 ms) once let it write 8835 pages.
freeze_bound_or_throttled() { # name max max-if-throttled
	local stops; stops=$(sed -n 's/.*throttle_stops=\([0-9]*\).*/\1/p' "$T/$1.out")
	[ -n "$stops" ] || fail "no throttle_stops in the statistics"
	if [ "$stops" -gt 0 ]; then
		freeze_bound "$1" "$3"
	else
		freeze_bound "$1" "$2"
	fi
}

# Every page rewritten continuously while the live dump copies: the
# rounds do not converge, so the writer is throttled (held while rtcr
# copies, in slices) until the freeze copies a fraction of its memory
# (on a busy machine the writer may slow down by itself: then it is not
# throttled, and the bound holds all the same); the image is consistent
# with the registers.
test_live_writer_all_hot() {
	start_ready mem_race 16384
	chain_dump d1 --live
	assert_contains "$T/d1.out" "live .* rounds while it ran" "live statistics"
	# No wait for its idle time if the rounds did not catch up with it,
	# else (a stall slowed it down) ~2 ms of it running ends the wait.
	assert_contains "$T/d1.out" "^  idle time   \(not waited for: it writes too fast\|not found (it kept running): the freeze began after [0-9.]* ms\)" \
		"no long wait for the idle time of a writer"
	freeze_bound_or_throttled d1 8192 12288
	live_restore_check d1
}

# A fast writer that also sleeps: the holds that throttle it interrupt
# its sleeps, which restart through restart_syscall (the number of i386
# madvise): that is not taken for a memory-map call, so the freeze still
# takes the areas from the last round. (Throttled from the second round
# on whatever the machine's speed: a fast rtcr converges on this writer.)
test_live_throttled_sleeper() {
	start_ready mem_race 16384 16384 1
	RTCR_TEST_LIVE_THROTTLE=1 RTCR_TEST_LIVE_FREEZE_PAGES=64 chain_dump d1 --live
	assert_contains "$T/d1.out" "^  throttled .* stops while it ran" "the writer was throttled"
	assert_contains "$T/d1.out" "^  areas *from the last round" "areas taken from the last round"
	freeze_bound d1 8192
	live_restore_check d1
}

# A small hot set: rounds converge, few pages are copied frozen.
test_live_writer_small_hot_set() {
	start_ready mem_race 16384 64 200
	chain_dump d1 --live
	local final; final=$(sed -n 's/.*final_pages=\([0-9]*\).*/\1/p' "$T/d1.out")
	[ -n "$final" ] || fail "no final_pages in the statistics"
	[ "$final" -lt 4096 ] || fail "$final pages copied frozen: pre-copy did nothing"
	live_restore_check d1
}

# A tree: the root and three children, each rewriting its own memory;
# all four are copied live (rounds over the tree, one freeze) and each
# checks its pages after restore.
test_live_tree() {
	# Under a subreaper: the killed children are reaped at once.
	export RTCR_TRIGGER="$T/go"
	: > "$T/out"
	( for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
	  exec "$TGT/reaper" "$TGT/mem_race" 4096 512 100 3 ) < /dev/null >> "$T/out" 2>&1 &
	local reaper=$! kids k
	track_pid $reaper
	wait_for "$T/out" '^READY'
	PID=$(tr -d " " < /proc/$reaper/task/$reaper/children)
	track_pid "$PID"
	kids=$(cat /proc/$PID/task/$PID/children)
	for k in $kids; do track_pid "$k"; done
	assert_eq 3 "$(echo $kids | wc -w)" "children of the target"
	chain_dump d1 --live
	assert_contains "$T/d1.out" "4 processes" "the children are in the image"
	assert_contains "$T/d1.out" "live .* of 4 processes in" "all four copied live"
	kill -9 "$PID" $kids
	for k in "$PID" $kids; do wait_pid_free "$k"; done
	rm -rf "$T/img"
	ln -s d1 "$T/img"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

test_live_writer_static() {
	start_ready mem_race-static 4096 512
	chain_dump d1 --live
	live_restore_check d1
}

# Dump with --live while rtcr pauses between its last copy round and the
# freeze (RTCR_TEST_PAUSE_AT), running COMMAND right then if given.
live_dump_paused() { # name [command...]
	local d="$T/$1" dpid
	mkdir -p "$d"
	RTCR_TEST_PAUSE_AT=live-rounds-done RTCR_TEST_PAUSE_FILE="$T/paused" \
		"$RTCR" dump -t "$PID" -D "$d" --leave-running --live --stats > "$d.out" 2>&1 &
	dpid=$!
	track_pid "$dpid"
	wait_paused "$dpid" "$d.out" "reach the pause point"
	shift
	[ $# = 0 ] || "$@"
	rm -f "$T/paused"
	wait "$dpid" || { cat "$d.out" >&2; fail "rtcr dump exited $?"; }
}

# No memory-map call since the last round read the areas: the freeze
# takes them from that round (no smaps page walk while frozen).
test_live_areas_from_last_round() {
	start_ready live_ops
	live_dump_paused d1
	assert_contains "$T/d1.out" "^  areas *from the last round" "areas taken from the last round"
	live_restore_check d1
}

# Pages dropped and a flag set after the last round read the areas: the
# freeze sees the calls, reads the areas again, and the image has the
# dropped pages as zeros and the flag.
live_ops_change() { # tests/targets/live_ops.c: drop pages, set MADV_DONTFORK
	kill -USR1 "$PID"
	wait_for "$T/out" '^CHANGED'
}
test_live_map_change_after_last_round() {
	start_ready live_ops "$T"
	live_dump_paused d1 live_ops_change
	assert_contains "$T/d1.out" "^  areas *read frozen (it made memory-map calls" \
		"the calls were seen"
	live_restore_check d1
}

# The process execs itself between the last round and the freeze: the
# rounds were of the old program (its tracker went with the exec), so it
# is copied frozen, and the image is the new program.
live_ops_exec() { # tests/targets/live_ops.c: exec itself
	kill -USR2 "$PID"
	wait_for "$T/out" '^EXECD'
}
test_live_exec_after_last_round() {
	start_ready live_ops
	live_dump_paused d1 live_ops_exec
	assert_contains "$T/d1.out" "exec'd since its rounds began: copied frozen" "the exec was seen"
	live_restore_check d1
}

# A mapped file touched by someone else between the last round and the
# freeze (its mtime changes with no call of the process): the freeze
# takes the areas from the last round but stats the files again, so the
# image records the file as it is and restore accepts it.
test_live_mapped_file_touched() {
	start_ready mem_file "$T"
	live_dump_paused d1 touch -d 2020-01-01 "$T/mem_file.priv"
	assert_contains "$T/d1.out" "^  areas *from the last round" "areas taken from the last round"
	live_restore_check d1
}

# Live incremental dumps through drops, a replaced area and a fork.
test_live_incremental_chain() {
	OUT_PIPE=1 start_ready mem_incr 4096 5
	chain_dump d1 --live
	chain_step 1
	chain_dump d2 --live --prev "$T/d1"
	read -r stored inh _ <<< "$(chain_pages "$T/d2")"
	echo "d2: $stored stored, $inh in d1"
	[ "$inh" -ge 3500 ] || fail "d2 leaves only $inh pages to d1: not incremental"
	chain_step 2
	chain_dump d3 --live --prev "$T/d2"
	chain_step 3
	chain_dump d4 --live --prev "$T/d3"
	assert_contains "$T/d4.out" "2 processes" "the forked child is in the image"
	kill_target
	chain_restore_check "$T/d4" 3
}

# A live link in a chain of ordinary ones, and the other way round.
test_live_mixed_chain() {
	OUT_PIPE=1 start_ready mem_incr 2048 10
	chain_dump d1 --track-mem
	chain_step 1
	chain_dump d2 --live --prev "$T/d1"
	read -r _ inh _ <<< "$(chain_pages "$T/d2")"
	[ "$inh" -gt 1000 ] || fail "the live dump after a tracked one is not incremental ($inh)"
	chain_step 2
	chain_dump d3 --prev "$T/d2"
	read -r _ inh _ <<< "$(chain_pages "$T/d3")"
	[ "$inh" -gt 1000 ] || fail "an ordinary dump after a live one is not incremental ($inh)"
	kill_target
	chain_restore_check "$T/d3" 2
}

# Threads keep running during the rounds; their registers come from the freeze.
test_live_threads() {
	start_ready thr_regs "$T/status"
	sleep 0.3
	chain_dump d1 --live
	live_restore_check d1
}

# Periodic live checkpoints of a busy writer; the newest restores.
test_live_periodic() {
	start_ready mem_race 8192 1024 100
	mkdir -p "$T/base"
	"$RTCR" dump -t "$PID" -D "$T/base" --interval 200 --count 3 --live > "$T/periodic.out" 2>&1 ||
		{ cat "$T/periodic.out" >&2; fail "periodic live dumps failed"; }
	assert_contains "$T/periodic.out" "^3 checkpoints" "three checkpoints"
	assert_running "$PID"
	live_restore_check base/latest
}

# Periodic live checkpoints go on from the last one's copies: each copies
# only what was written since, through areas replaced, pages dropped and
# a fork between them (mem_incr's steps, made while rtcr waits before the
# next checkpoint); two links of the chain restore to their own step.
test_live_periodic_goes_on() {
	OUT_PIPE=1 start_ready mem_incr 2048 10
	mkdir -p "$T/base"
	RTCR_TEST_PAUSE_AT=periodic-next RTCR_TEST_PAUSE_FILE="$T/paused" \
		"$RTCR" dump -t "$PID" -D "$T/base" --interval 50 --count 4 --live --stats \
		> "$T/periodic.out" 2>&1 &
	local dpid=$! k
	track_pid "$dpid"
	for k in 1 2 3; do
		wait_paused "$dpid" "$T/periodic.out" "pause before checkpoint $((k + 1))"
		chain_step "$k"
		rm -f "$T/paused"
	done
	wait "$dpid" || { cat "$T/periodic.out" >&2; fail "periodic live dumps failed"; }
	assert_contains "$T/periodic.out" "^4 checkpoints" "four checkpoints"
	[ "$(grep -c 'live_resumed=1' "$T/periodic.out")" = 3 ] ||
		{ cat "$T/periodic.out" >&2; fail "the checkpoints after the first did not go on from the last one's copies"; }
	# Each went on incrementally: the first stores everything, the next
	# ones a part (the fourth also has the child forked at step 3, whole).
	read -r s1 _ _ < <(chain_pages "$T/base/ckpt-000001")
	for k in 2 3; do
		read -r sk ik _ < <(chain_pages "$T/base/ckpt-00000$k")
		[ "$sk" -lt $((s1 / 2)) ] && [ "$ik" -gt 1000 ] ||
			fail "checkpoint $k stored $sk pages and left $ik in its parents (the first stored $s1)"
	done
	assert_running "$PID"
	kill_target
	chain_restore_check "$T/base/ckpt-000003" 2
	# The restored process checked itself and exited; the next one anew.
	wait_pid_free "$PID"
	: > "$T/out"
	chain_restore_check "$T/base/ckpt-000004" 3
}

# A migration's two steps: a live dump that leaves the process running
# (the base, sent ahead), then a live dump with it as the parent that
# kills: frozen for what was written since, the image written from the
# copies before the kill; the chain restores at the step of the kill.
test_live_migration() {
	OUT_PIPE=1 start_ready mem_incr 2048 10
	chain_dump d1 --live
	chain_step 1
	mkdir -p "$T/d2"
	"$RTCR" dump -t "$PID" -D "$T/d2" --live --prev "$T/d1" --stats > "$T/d2.out" 2>&1 ||
		{ cat "$T/d2.out" >&2; fail "the killing live dump failed"; }
	wait "$PID" 2>/dev/null
	assert_gone "$PID"
	assert_contains "$T/d2.out" "^  live  .* rounds while it ran" "copied while it ran"
	assert_contains "$T/d2.out" "frozen in:.* live-pages .* kill " "image written frozen, then killed"
	read -r s2 i2 _ < <(chain_pages "$T/d2")
	[ "$i2" -gt 1000 ] || fail "the killing dump is not incremental ($s2 stored, $i2 inherited)"
	chain_restore_check "$T/d2" 1
}

# The killing live dump takes established TCP connections (repair mode,
# as a dump that kills does): the peer outside sees nothing, the server
# answers it after restore.
test_live_migration_tcp() {
	RPID=
	inet_server 4
	dump --tcp-established --live --stats
	assert_contains "$T/dump.out" "^  live  .* rounds while it ran" "copied while it ran"
	assert_gone "$PID"
	assert_running "$CPID"
	restore_bg
	inet_server_finish
}

# Periodic live checkpoints keep their copies, but not what they read the
# last time: a shared area replaced by another object at the same address
# between two checkpoints is read anew (live_ops: SIGHUP).
test_live_periodic_shared_replaced() {
	start_ready live_ops
	mkdir -p "$T/base"
	RTCR_TEST_PAUSE_AT=periodic-next RTCR_TEST_PAUSE_FILE="$T/paused" \
		"$RTCR" dump -t "$PID" -D "$T/base" --interval 50 --count 2 --live --stats \
		> "$T/periodic.out" 2>&1 &
	local dpid=$!
	track_pid "$dpid"
	wait_paused "$dpid" "$T/periodic.out" "pause before checkpoint 2"
	kill -HUP "$PID"
	wait_for "$T/out" '^REPLACED'
	rm -f "$T/paused"
	wait "$dpid" || { cat "$T/periodic.out" >&2; fail "periodic live dumps failed"; }
	[ "$(grep -c 'live_resumed=1' "$T/periodic.out")" = 1 ] ||
		{ cat "$T/periodic.out" >&2; fail "checkpoint 2 did not go on from checkpoint 1's copies"; }
	live_restore_check base/ckpt-000002
}

# Periodic live checkpoints ask again what only injected calls read
# only if the process made a call that changes it, or had a signal
# delivered (a SA_RESETHAND action goes back to the default then, with no
# call). rtcr pauses after each checkpoint's rounds (and its stop that
# asks, when it has no answers kept); before checkpoint 3's freeze the
# target changes a signal action; before 5, 6, 7, 8's its alternate
# stack, parent-death signal, clear-tid address and break, one each;
# before 9's a delivery resets SIGUSR2's action (its handler leaves by
# siglongjmp: no sigreturn). Checkpoint 1 has the answers of its stop
# before the freeze, 2 and 4 those of the last freeze. Each restores to
# its own state.
test_live_periodic_answers() {
	OUT_PIPE=1 start_ready answers
	mkdir -p "$T/base"
	RTCR_TEST_PAUSE_AT=live-rounds-done RTCR_TEST_PAUSE_FILE="$T/paused" \
		"$RTCR" dump -t "$PID" -D "$T/base" --interval 50 --count 9 --live --stats \
		> "$T/periodic.out" 2>&1 &
	local dpid=$! k c
	track_pid "$dpid"
	for k in 1 2 3 4 5 6 7 8 9; do
		wait_paused "$dpid" "$T/periodic.out" "pause before the freeze of checkpoint $k"
		case $k in
		3) c=1;; 5) c=2;; 6) c=3;; 7) c=4;; 8) c=5;; *) c=;;
		esac
		if [ -n "$c" ]; then
			touch "$T/go.c$c"
			wait_for "$T/out" "^CHANGED $c"
		elif [ $k = 9 ]; then
			kill -USR2 "$PID"
			wait_for "$T/out" '^RESET'
		fi
		rm -f "$T/paused"
	done
	wait "$dpid" || { cat "$T/periodic.out" >&2; fail "periodic live dumps failed"; }
	[ "$(sed -n 's/^STATS dump.* answered=\([0-9]*\).*/\1/p' "$T/periodic.out" | tr '\n' ' ')" = \
	  "1 1 0 1 0 0 0 0 0 " ] ||
		{ cat "$T/periodic.out" >&2; fail "answers reused other than at checkpoints 1, 2 and 4"; }
	assert_contains "$T/periodic.out" "^  asked       nothing frozen: .* of the last checkpoint's freeze" \
		"the reuse is reported"
	rm -f "$T"/go.c*
	kill_target
	for k in 1 2 3 5 6 7 8 9; do
		: > "$T/out"
		chain_restore_check "$T/base/ckpt-00000$k" x
		wait_pid_free "$PID"
	done
}

# A single live dump asks the injected queries in a short stop after its
# rounds, and the freeze takes those answers if nothing that changes them
# was counted since (d1); a signal action changed between that stop and
# the freeze (rtcr paused there) is asked again frozen (d2). Each image
# restores to its own state.
answers_change1() { touch "$T/go.c1"; wait_for "$T/out" '^CHANGED 1'; }
test_live_asked_before_freeze() {
	OUT_PIPE=1 start_ready answers
	live_dump_paused d1
	assert_contains "$T/d1.out" "answered=1" "the freeze took the answers asked before it"
	assert_contains "$T/d1.out" "^  asked       nothing frozen: .* a stop before the freeze" \
		"the stop before the freeze is reported"
	live_dump_paused d2 answers_change1
	assert_contains "$T/d2.out" "answered=0" "the changed answers asked again frozen"
	rm -f "$T"/go.c*
	kill_target
	: > "$T/out"
	chain_restore_check "$T/d1" x
	wait_pid_free "$PID"
	: > "$T/out"
	chain_restore_check "$T/d2" x
}

test_live_refusals() {
	start_ready counter
	mkdir -p "$T/d"
	! "$RTCR" dump -t "$PID" -D "$T/d" --track-mem > "$T/e1" 2>&1 || fail "--track-mem without --leave-running accepted"
	assert_contains "$T/e1" "needs --leave-running" "message"
	! "$RTCR" dump -t "$PID" -D "$T/d" --live --leave-running --tcp-established > "$T/e2" 2>&1 ||
		fail "--live --tcp-established accepted"
	assert_contains "$T/e2" "not supported yet" "message"
	! "$RTCR" dump -t "$PID" -D "$T/d" --leave-running --idle-wait 5 > "$T/e3" 2>&1 ||
		fail "--idle-wait without --live accepted"
	assert_contains "$T/e3" "idle-wait goes with --live" "message"
	! "$RTCR" dump -t "$PID" -D "$T/d" --leave-running --live --idle-wait 5ms > "$T/e4" 2>&1 ||
		fail "--idle-wait 5ms accepted"
	assert_contains "$T/e4" "idle-wait 5ms: not a whole number" "message"
	assert_running "$PID"
	[ ! -e "$T/d/image.rtcr" ] || fail "an image was left"
}

# A handle rtcr refuses, found at the freeze, after the rounds: the final
# round's walk of 80 MiB was begun on the spare CPU (live_final_begin())
# when the refusal came; the dump fails naming the fd, waits for the walk
# and lets go. The process runs on, its memory intact, and a second live
# dump refuses the same way.
test_live_refused_at_freeze() {
	HOLDER_MIB=80 start_ready holder io_uring
	local k
	for k in 1 2; do
		mkdir -p "$T/d$k"
		! "$RTCR" -v -v dump -t "$PID" -D "$T/d$k" --live --leave-running > "$T/d$k.out" 2>&1 ||
			fail "a live dump of a process holding an io_uring succeeded"
		assert_contains "$T/d$k.out" "fd 3: io_uring: not supported" "refusal message"
		# (The walk begins with the areas, before the fds are read.)
		assert_contains "$T/d$k.out" "live round 0" "copy rounds before the freeze"
		assert_contains "$T/d$k.out" "areas from the last round" "areas found at the freeze"
		[ ! -e "$T/d$k/image.rtcr" ] || fail "an image was left behind"
		assert_running "$PID"
	done
	touch "$T/go"
	wait "$PID" || { cat "$T/out" >&2; fail "target broken after the refused live dumps"; }
	assert_contains "$T/out" '^PASS' "target verdict"
}

# The freeze of a live dump waits for the process's idle time: a
# periodic process (counter: counts, sleeps 1 ms) is frozen as it goes to
# sleep (the image restores); with --idle-wait 0, at once; a process
# that never sleeps (a Debian python3 in a busy loop) after ~2 ms of
# running, well before the bound.
test_live_idle_time() {
	start_ready counter
	chain_dump d1 --live
	# (Found going to sleep; or, should a stall of the machine hide its
	# runs from the polls, asleep for 2 ms: both are its idle time.)
	assert_contains "$T/d1.out" "^  idle time   the freeze began \(as its threads went to sleep\|while its threads slept\)" \
		"the periodic process frozen in its idle time"
	assert_contains "$T/d1.out" "^STATS .* idle_found=1 " "statistics"
	chain_dump d2 --live --idle-wait 0
	! grep -q "idle time" "$T/d2.out" || fail "--idle-wait 0 waited"
	assert_contains "$T/d2.out" "^STATS .* idle_found=0 idle_wait_ns=0\$" "statistics"
	live_restore_check d1
	rm -f "$T/go"
	start "$(command -v python3)" -c 'while True: pass'
	sleep 0.2
	chain_dump d3 --live --idle-wait 1000
	assert_contains "$T/d3.out" "^  idle time   not found (it kept running): the freeze began after [0-9.]* ms" \
		"the busy process frozen after ~2 ms of it running"
	assert_running "$PID"
}

# A live incremental chain restored lazily.
test_live_chain_restored_lazily() {
	OUT_PIPE=1 start_ready mem_incr 2048 10
	chain_dump d1 --live
	chain_step 1
	chain_dump d2 --live --prev "$T/d1"
	kill_target
	RESTORE_ARGS=--lazy chain_restore_check "$T/d2" 1
}
