# Incremental checkpoints: dirty-page tracking with userfaultfd
# write-protect + PAGEMAP_SCAN, images that store only what was written
# since their parent, restore through the chain, and every way the chain
# or the tracking can be lost. Target: tests/targets/mem_incr.c.

# Helpers: chain_dump, chain_pages, chain_step, chain_restore_check (tests/lib.sh).

test_incr_chain_of_three() {
	OUT_PIPE=1 start_ready mem_incr 4096 5
	chain_dump d1 --track-mem
	local full; full=$(chain_pages "$T/d1" | awk '{print $1}')
	[ "$full" -ge 4096 ] || fail "the first image holds $full pages, fewer than the area"
	chain_step 1
	chain_dump d2 --prev "$T/d1"
	read -r stored inh _ <<< "$(chain_pages "$T/d2")"
	echo "d1: $full pages; d2: $stored stored, $inh in d1"
	[ "$stored" -lt $((full / 4)) ] || fail "d2 stores $stored of $full pages: not incremental"
	[ "$inh" -ge 3500 ] || fail "d2 leaves only $inh pages to d1"
	assert_contains "$T/d2.out" "incremental: " "dump statistics"
	"$RTCR" inspect "$T/d2" > "$T/inspect2.txt" || fail "inspect d2"
	assert_contains "$T/inspect2.txt" "^parent     ../d1: incremental image" "inspect shows the parent"
	chain_step 2
	chain_dump d3 --prev "$T/d2"
	read -r stored inh _ <<< "$(chain_pages "$T/d3")"
	echo "d3: $stored stored, $inh in the chain"
	[ "$stored" -lt $((full / 4)) ] || fail "d3 stores $stored of $full pages: not incremental"
	kill_target
	chain_restore_check "$T/d3" 2
}

# A child forked after tracking began inherits the tracker's fd: it is
# rtcr's, not the child's handle; the child's memory is stored whole.
test_incr_child_forked_after_tracking() {
	OUT_PIPE=1 start_ready mem_incr 1024 5
	chain_dump d1 --track-mem
	chain_step 1
	chain_step 2
	chain_step 3
	chain_dump d2 --prev "$T/d1"
	"$RTCR" inspect "$T/d2" > "$T/i2.txt"
	assert_contains "$T/i2.txt" "^tree       2 processes" "the child is in the image"
	read -r stored inh _ <<< "$(chain_pages "$T/d2")"
	[ "$inh" -gt 0 ] || fail "the parent's dump is not incremental"
	chain_dump d3 --prev "$T/d2"
	kill_target
	chain_restore_check "$T/d3" 3
}

# Half the pages written at random: thousands of scan regions, more than
# one PAGEMAP_SCAN call returns (this kernel then reports a stale
# walk_end; following it stored pages twice, and restore failed).
test_incr_many_regions() {
	OUT_PIPE=1 start_ready mem_incr 32768 50
	chain_dump d1 --track-mem
	chain_step 1
	chain_dump d2 --prev "$T/d1"
	read -r stored inh _ <<< "$(chain_pages "$T/d2")"
	echo "d2: $stored stored, $inh in d1"
	[ "$inh" -gt 8000 ] || fail "d2 leaves only $inh pages to d1"
	kill_target
	chain_restore_check "$T/d2" 1
}

# The chain restores at any link: here the middle one.
test_incr_restore_middle_link() {
	OUT_PIPE=1 start_ready mem_incr 2048 10
	chain_dump d1 --track-mem
	chain_step 1
	chain_dump d2 --prev "$T/d1"
	chain_step 2
	kill_target
	chain_restore_check "$T/d2" 1
}

# After a restore the new process is tracked from its next --track-mem.
test_incr_after_restore() {
	OUT_PIPE=1 start_ready mem_incr 1024 20
	chain_dump d1 --track-mem
	chain_step 1
	chain_dump d2 --prev "$T/d1"
	kill_target
	"$TGT/reaper" "$RTCR" restore -D "$T/d2" --detach > "$T/detach.out" 2> "$T/detach.err" &
	track_pid $!
	wait_for "$T/detach.err" '^EXIT' 20
	assert_running "$PID"
	# The restored process has no tracker: --prev d2 falls back to full.
	chain_dump d3 --prev "$T/d2"
	assert_contains "$T/d3.out" "all its memory is stored: its memory is not tracked" "fallback message"
	read -r stored inh _ <<< "$(chain_pages "$T/d3")"
	assert_eq 0 "$inh" "pages left to the parent by a full fallback"
	chain_dump d4 --track-mem
	# (Its stdout is now rtcr restore's: detach.out.)
	chain_step 2 "$T/detach.out"
	chain_dump d5 --prev "$T/d4"
	read -r stored inh _ <<< "$(chain_pages "$T/d5")"
	[ "$inh" -gt 0 ] || fail "d5 is not incremental after re-arming"
	kill -9 "$PID"
	wait_pid_free "$PID"
	chain_restore_check "$T/d5" 2 "$T/detach.out"
}

# Without --track-mem at the first dump there is nothing to be relative
# to: the dump says so and stores everything (and is still restorable).
test_incr_fallback_without_tracking() {
	OUT_PIPE=1 start_ready mem_incr 1024 5
	chain_dump d1
	chain_step 1
	chain_dump d2 --prev "$T/d1"
	assert_contains "$T/d2.out" "pid $PID: all its memory is stored: its memory is not tracked" \
		"fallback message"
	read -r stored inh _ <<< "$(chain_pages "$T/d2")"
	assert_eq 0 "$inh" "pages left to the parent"
	# A dump that was never finished resets nothing it can be trusted
	# for: the state names an image that does not exist.
	kill_target
	chain_restore_check "$T/d2" 1
}

# An incremental dump against an older link than the last one: the bits
# were reset by the later dump, so the dump must not trust them.
test_incr_stale_parent_falls_back() {
	OUT_PIPE=1 start_ready mem_incr 1024 5
	chain_dump d1 --track-mem
	chain_step 1
	chain_dump d2 --prev "$T/d1"
	chain_step 2
	chain_dump d3 --prev "$T/d1"
	assert_contains "$T/d3.out" "relative to another image" "fallback message"
	read -r stored inh _ <<< "$(chain_pages "$T/d3")"
	assert_eq 0 "$inh" "pages left to a stale parent"
	kill_target
	chain_restore_check "$T/d3" 2
}

test_incr_missing_parent_at_restore() {
	OUT_PIPE=1 start_ready mem_incr 512 5
	chain_dump d1 --track-mem
	chain_step 1
	chain_dump d2 --prev "$T/d1"
	kill_target
	mv "$T/d1" "$T/d1.moved"
	"$RTCR" restore -D "$T/d2" > "$T/r.out" 2>&1 && fail "restore without its parent succeeded"
	assert_contains "$T/r.out" "its parent image .*d1 cannot be used" "error names the parent"
	assert_gone "$PID"
}

test_incr_replaced_parent_at_restore() {
	OUT_PIPE=1 start_ready mem_incr 512 5
	chain_dump d1 --track-mem
	chain_step 1
	chain_dump d2 --prev "$T/d1"
	chain_dump d1 --track-mem          # another image where the parent was
	kill_target
	"$RTCR" restore -D "$T/d2" > "$T/r.out" 2>&1 && fail "restore with a replaced parent succeeded"
	assert_contains "$T/r.out" "is not the one it was made from" "error says the parent changed"
	assert_gone "$PID"
}

test_incr_bad_prev_arguments() {
	OUT_PIPE=1 start_ready mem_incr 256 5
	mkdir -p "$T/d2"
	"$RTCR" dump -t "$PID" -D "$T/d2" --leave-running --prev "$T/nothing" > "$T/r.out" 2>&1 &&
		fail "--prev of a missing image succeeded"
	assert_contains "$T/r.out" "prev .*nothing: no usable parent image there" "missing --prev"
	assert_running "$PID"
	# An image of another process.
	OUT_PIPE=0 start_ready mem_incr 256 5
	local other=$PID
	chain_dump d1 --track-mem
	OUT_PIPE=1 start_ready mem_incr 256 5
	"$RTCR" dump -t "$PID" -D "$T/d2" --leave-running --prev "$T/d1" > "$T/r.out" 2>&1 &&
		fail "--prev of another process's image succeeded"
	assert_contains "$T/r.out" "is an image of pid $other, not of pid $PID" "wrong --prev"
	"$RTCR" dump -t "$PID" -D "$T/d2" --track-mem > "$T/r.out" 2>&1 &&
		fail "--track-mem without --leave-running succeeded"
	assert_running "$PID"
}

# ---- periodic checkpoints ----

# Every 150 ms, keeping the newest 3: each dump is incremental, the
# oldest kept one is self-contained (merged), BASE/latest restores.
test_periodic_keep_three() {
	OUT_PIPE=1 start_ready mem_incr 2048 5
	mkdir -p "$T/base"
	"$RTCR" dump -t "$PID" -D "$T/base" --interval 150 --keep 3 --count 8 > "$T/periodic.out" 2>&1 &
	local rpid=$!
	track_pid "$rpid"
	# Step 1 once a few checkpoints exist; the later ones hold it.
	wait_for "$T/periodic.out" "ckpt-000002:" 10
	chain_step 1
	wait "$rpid"
	local rc=$?
	cat "$T/periodic.out"
	[ $rc = 0 ] || fail "periodic dump exited $rc"
	assert_contains "$T/periodic.out" "^8 checkpoints of pid $PID" "summary line"
	assert_running "$PID"
	assert_eq "ckpt-000006 ckpt-000007 ckpt-000008" "$(cd "$T/base" && ls -d ckpt-* | tr '\n' ' ' | sed 's/ $//')" \
		"checkpoints kept"
	assert_eq "ckpt-000008" "$(readlink "$T/base/latest")" "latest"
	"$RTCR" inspect "$T/base/ckpt-000006" > "$T/i6.txt"
	assert_not_contains "$T/i6.txt" "^parent" "the oldest kept checkpoint is self-contained"
	"$RTCR" inspect "$T/base/ckpt-000008" > "$T/i8.txt"
	assert_contains "$T/i8.txt" "^parent     ../ckpt-000007: incremental image" "the newest is incremental"
	# After the first, every checkpoint stored far less than the area.
	awk '/^.*ckpt-00000[2-8]: frozen/ {if ($(NF-8) + 0 > 1024) bad = 1} END {exit bad}' "$T/periodic.out" ||
		fail "an incremental checkpoint stored more than half the area"
	kill_target
	chain_restore_check "$T/base/latest" 1
}

# The merges that keep N run in processes of their own beside the
# checkpoints; SIGINT ends the run after the merge under way (and a last
# one): exactly N remain, the oldest self-contained, each directory with
# only its image, no merge process left, and the newest restores.
test_periodic_keep_sigint() {
	OUT_PIPE=1 start_ready mem_incr 2048 5
	mkdir -p "$T/base"
	"$RTCR" dump -t "$PID" -D "$T/base" --interval 30 --keep 2 > "$T/periodic.out" 2>&1 &
	local rpid=$!
	track_pid "$rpid"
	wait_for "$T/periodic.out" "ckpt-000002:" 10
	chain_step 1
	wait_for "$T/periodic.out" "ckpt-000008:" 10
	kill -INT "$rpid"
	wait "$rpid"
	local rc=$?
	cat "$T/periodic.out"
	[ $rc = 0 ] || fail "periodic dump exited $rc after SIGINT"
	local dirs; dirs=$(cd "$T/base" && ls -d ckpt-*)
	assert_eq 2 "$(echo "$dirs" | wc -l)" "checkpoints kept ($(echo $dirs))"
	"$RTCR" inspect "$T/base/$(echo "$dirs" | head -1)" > "$T/old.txt"
	assert_not_contains "$T/old.txt" "^parent" "the oldest kept checkpoint is self-contained"
	assert_eq "image.rtcr image.rtcr" "$(cd "$T/base" && ls ckpt-*/ | grep -v '^ckpt\|^$' | tr '\n' ' ' | sed 's/ $//')" \
		"the files of the kept checkpoints"
	! pgrep -f "rtcr merge -D $T/base" > /dev/null || fail "a merge process is left"
	assert_running "$PID"
	kill_target
	chain_restore_check "$T/base/latest" 1
}

# SIGINT stops it cleanly: the process runs on, untraced, and the
# checkpoints made stay restorable.
test_periodic_sigint() {
	OUT_PIPE=1 start_ready mem_incr 512 5
	mkdir -p "$T/base"
	"$RTCR" dump -t "$PID" -D "$T/base" --interval 50 > "$T/periodic.out" 2>&1 &
	local rpid=$!
	track_pid "$rpid"
	wait_for "$T/periodic.out" "ckpt-000003:" 10
	kill -INT "$rpid"
	wait "$rpid"
	local rc=$?
	cat "$T/periodic.out"
	[ $rc = 0 ] || fail "periodic dump exited $rc after SIGINT"
	assert_running "$PID"
	kill_target
	chain_restore_check "$T/base/latest" 0
}
