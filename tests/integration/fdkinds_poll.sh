# epoll and inotify instances across a checkpoint (src/files/epoll.c,
# src/files/inotify.c): the interest list rebuilt inside the restored
# process on its own fd numbers, inotify watches with their wd numbers;
# native controls run the same checks without a dump; and the refusals.

# ---- epoll ----

test_fdkinds_epoll_native() { native_run fd_epoll; }
test_fdkinds_epoll_cycle() { cycle fd_epoll; }
test_fdkinds_epoll_cycle_static() { cycle fd_epoll-static; }

# An epoll shared by a parent and its child: rebuilt once, in the parent.
test_fdkinds_epoll_tree_native() { native_run fd_epoll tree; }
test_fdkinds_epoll_tree_cycle() { cycle fd_epoll tree; }

test_fdkinds_epoll_in_image() {
	start_ready fd_epoll
	dump
	inspect_img
	assert_contains "$T/inspect.txt" "fd 10 .*epoll 7 items: .*fd 20 (in) data 0xa1a1a1a1a1a1a1a1.*, cloexec" "outer epoll"
	assert_contains "$T/inspect.txt" "fd 10 .*fd 24 (oneshot,disarmed) data 0xc3c3c3c300000000" "fired one-shot item"
	assert_contains "$T/inspect.txt" "fd 10 .*fd 22 (in,et) data 0xb2" "edge-triggered item"
	assert_contains "$T/inspect.txt" "fd 11 .*epoll 7 items" "the dup"
	assert_contains "$T/inspect.txt" "fd 12 .*epoll 1 item: fd 28 (in) data 0xe5e5, nonblock" "inner epoll"
	"$RTCR" inspect --json "$T/img" > "$T/inspect.json" 2>&1 || fail "inspect --json"
	assert_contains "$T/inspect.json" '"kind": *"epoll"' "json kind"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

# The original goes on after --leave-running, and the image restores too.
test_fdkinds_epoll_leave_running() {
	OUT_PIPE=1 start_ready fd_epoll
	dump --leave-running
	assert_running "$PID"
	touch "$T/go"
	wait_for "$T/out" '^PASS' 10
	wait "$PID" || { cat "$T/out" >&2; fail "the original failed after the dump"; }
	rm -f "$T/go"
	: > "$T/out"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

test_fdkinds_epoll_stale_refused() {
	dump_refused "fd 7: epoll: item for fd 9 whose file is no longer at that fd: not supported" "" fd_epoll stale
}
test_fdkinds_epoll_reused_refused() {
	dump_refused "fd 7: epoll: item for fd 9 whose file is no longer at that fd: not supported" "" fd_epoll reused
}

# ---- inotify ----

test_fdkinds_inotify_native() { mkdir "$T/data"; native_run fd_inotify "$T/data"; }
test_fdkinds_inotify_cycle() { mkdir "$T/data"; cycle fd_inotify "$T/data"; }
test_fdkinds_inotify_cycle_static() { mkdir "$T/data"; cycle fd_inotify-static "$T/data"; }

test_fdkinds_inotify_in_image() {
	mkdir "$T/data"
	start_ready fd_inotify "$T/data"
	dump
	inspect_img
	assert_contains "$T/inspect.txt" "fd 15 .*inotify 4 watches: wd 1 $T/data/w (create,delete), wd 3 $T/data/w/f2 (modify,oneshot), wd 4 $T/data/w/f3 (modify,close_write), wd 10 $T/data/w/f4 (attrib,excl_unlink), nonblock, cloexec" "fd 15"
	assert_contains "$T/inspect.txt" "fd 16 .*inotify 1 watch: wd 1 $T/data (all)$" "fd 16"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

test_fdkinds_inotify_leave_running() {
	mkdir "$T/data"
	OUT_PIPE=1 start_ready fd_inotify "$T/data"
	dump --leave-running
	assert_running "$PID"
	touch "$T/go"
	wait_for "$T/out" '^PASS' 10
	wait "$PID" || { cat "$T/out" >&2; fail "the original failed after the dump"; }
	# The original's run changed the files: back to the dumped state.
	rm -f "$T/go" "$T/data/top" "$T/data/w/new1"
	chmod 644 "$T/data/w/f4"
	: > "$T/out"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

test_fdkinds_inotify_pending_refused() {
	mkdir "$T/data"
	dump_refused "fd 15: inotify: [0-9]* bytes of events not read yet: not supported" "" \
		fd_inotify "$T/data" pending
}

# A watched file replaced between dump and restore (same boot: its inode
# changed): the restore stops, naming it.
test_fdkinds_inotify_restore_refuses_replaced() {
	mkdir "$T/data"
	start_ready fd_inotify "$T/data"
	dump
	touch "$T/data/w/f3.new"
	mv "$T/data/w/f3.new" "$T/data/w/f3"
	timeout 20 "$RTCR" restore -D "$T/img" > "$T/fail.out" 2> "$T/fail.err"
	local rc=$?
	[ $rc != 0 ] || { track_pid "$PID"; fail "restore succeeded"; }
	[ $rc != 124 ] || fail "restore hung"
	assert_contains "$T/fail.err" "fd 15: inotify: watch 4: $T/data/w/f3 is a different file than at dump time" "message"
	assert_gone "$PID"
}
