# Lazy restore (rtcr restore --lazy): the process runs before its memory
# is back; pages come on first touch (userfaultfd) and in the background
# from the lazy page server. Targets: mem_big, lazy_ops (what a process
# does to memory not filled yet), mem_incr (chains, a child).
#
# RTCR_TEST_LAZY_BG_DELAY_MS holds the server's background fill back for
# that long after the process runs, so the ranges a target works on are
# still missing: the targets check (mincore) and say so, and the tests
# require it, so a run where they were filled already fails instead of
# passing without testing anything.

# The server and its sentinel (rtcr restore's child and grandchild) are
# tracked too: cleanup must leave nothing behind.
_track_server() { # parent pid
	local c s
	for c in $(cat /proc/$1/task/$1/children 2>/dev/null); do
		[ "$c" = "$PID" ] && continue
		track_pid "$c"
		SERVER=$c
		for s in $(cat /proc/$c/task/$c/children 2>/dev/null); do track_pid "$s"; done
	done
}

_last_page() { # file
	wait_for "$1" "rtcr restore: lazy: last page in" 60
}

test_lazy_mem_big() {
	start_ready mem_big 256
	dump
	restore_bg --lazy --stats
	_track_server "$RPID"
	assert_running "$PID"
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
	assert_contains "$T/restore.err" "rtcr restore: lazy: last page in .* after the process ran" "report"
	local lazy
	lazy=$(sed -n 's/^STATS lazy .* pages=\([0-9]*\) .*/\1/p' "$T/restore.err")
	[ "${lazy:-0}" -ge 65536 ] || fail "the server placed ${lazy:-no} pages, fewer than the 65536 written"
	assert_contains "$T/restore.err" "[0-9]\{5\} left to the lazy page server" \
		"pages left to the server"
}

_lazy_ops() {
	start_ready "$1" 64
	dump
	RTCR_TEST_LAZY_BG_DELAY_MS=4000 restore_bg --lazy
	_track_server "$RPID"
	assert_running "$PID"
	touch "$T/go"
	wait_for "$T/out" '^CHECKED\|^FAIL' 30
	assert_not_contains "$T/out" '^FAIL' "target verdict"
	local n; n=$(grep -c '^UNFILLED .* yes' "$T/out")
	[ "$n" = 7 ] || { cat "$T/out" >&2; fail "only $n of 7 regions were still missing when used"; }
	_last_page "$T/restore.err"
	touch "$T/go.2"
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
	assert_contains "$T/restore.err" "[1-9][0-9]* by [1-9][0-9]* faults" "pages served by faults"
}
test_lazy_ops_dynamic() { _lazy_ops lazy_ops; }
test_lazy_ops_static() { _lazy_ops lazy_ops-static; }

# A chain of incremental images, restored lazily at its last link, where
# the process has a child (a tree of two, each served on its own uffd).
test_lazy_incremental_chain_tree() {
	OUT_PIPE=1 start_ready mem_incr 4096 5
	chain_dump d1 --track-mem
	chain_step 1
	chain_dump d2 --prev "$T/d1"
	chain_step 2
	chain_step 3
	chain_dump d3 --prev "$T/d2"
	"$RTCR" inspect "$T/d3" > "$T/i3.txt"
	assert_contains "$T/i3.txt" "^tree       2 processes" "the child is in the image"
	kill_target
	local before; before=$(find "$T/d1" "$T/d2" "$T/d3" -type f -exec sha256sum {} + | sort)
	RESTORE_ARGS=--lazy chain_restore_check "$T/d3" 3
	assert_contains "$T/restore.err" "rtcr restore: lazy: last page in .* after the processes ran" "report"
	assert_eq "$before" "$(find "$T/d1" "$T/d2" "$T/d3" -type f -exec sha256sum {} + | sort)" \
		"the image directories after a lazy restore"
}

# --detach: rtcr restore returns while the server still fills; the
# server reports later, and the process finds all its memory.
test_lazy_detach() {
	start_ready mem_big 64
	dump
	: > "$T/detach.out"; : > "$T/detach.err"
	RTCR_TEST_LAZY_BG_DELAY_MS=3000 "$TGT/reaper" "$RTCR" restore -D "$T/img" --detach --lazy \
		> "$T/detach.out" 2> "$T/detach.err" &
	local reaper=$!
	track_pid $reaper
	wait_for "$T/detach.err" '^EXIT' 20
	_track_server $reaper
	assert_contains "$T/detach.err" '^EXIT 0' "rtcr restore --detach status"
	assert_eq "$PID" "$(cat "$T/detach.out")" "printed pid"
	assert_running "$PID"
	assert_not_contains "$T/detach.err" "last page" "the server's report before it finished"
	[ -n "${SERVER:-}" ] && [ -e "/proc/$SERVER" ] || fail "no lazy page server after rtcr restore --detach returned"
	touch "$T/go"
	wait_for "$T/out" '^PASS\|^FAIL' 30
	assert_contains "$T/out" '^PASS' "target verdict"
	_last_page "$T/detach.err"
}

# The server dies before all pages are in: the process must not go on
# with zero pages where its data was; the sentinel kills it.
test_lazy_server_killed() {
	start_ready mem_big 64
	dump
	RTCR_TEST_LAZY_BG_DELAY_MS=60000 restore_bg --lazy
	_track_server "$RPID"
	[ -n "${SERVER:-}" ] || fail "no lazy page server"
	assert_running "$PID"
	kill -9 "$SERVER"
	touch "$T/go"
	wait "$RPID"
	local rc=$?
	assert_eq 137 "$rc" "rtcr restore's status (the process killed by SIGKILL)"
	assert_not_contains "$T/out" '^PASS\|^FAIL' "the target's verdict (it must not run on)"
	assert_contains "$T/restore.err" "the lazy page server died before all pages arrived" "message"
	assert_gone "$PID"
}

# Damaged images fail before anything runs, and leave nothing behind.
test_lazy_truncated_image() {
	start_ready mem_big 64
	dump
	local size; size=$(stat -c %s "$T/img/image.rtcr")
	truncate -s $((size - 1000000)) "$T/img/image.rtcr"
	"$RTCR" restore -D "$T/img" --lazy > "$T/r.out" 2> "$T/r.err" && fail "restore of a truncated image succeeded"
	assert_contains "$T/r.err" "truncated\|corrupted" "error message"
	assert_gone "$PID"
	assert_not_contains "$T/r.err" "lazy: last page" "a server's report"
}

test_lazy_broken_chain() {
	OUT_PIPE=1 start_ready mem_incr 1024 5
	chain_dump d1 --track-mem
	chain_step 1
	chain_dump d2 --prev "$T/d1"
	kill_target
	mv "$T/d1" "$T/d1.away"
	"$RTCR" restore -D "$T/d2" --lazy > "$T/r.out" 2> "$T/r.err" && fail "restore without its parent image succeeded"
	assert_contains "$T/r.err" "d1" "error names the parent"
	assert_gone "$PID"
}
