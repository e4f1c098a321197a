# Regular files, directories and /dev/{null,zero,full,urandom,random} across a checkpoint:
# offsets, access modes, O_APPEND, O_NONBLOCK, FD_CLOEXEC, shared
# descriptions, sparse fd numbers, stdout as a file or a pipe. And the
# refusals: a file changed or gone since the dump stops the restore.

# Like start, but stdout is opened without O_APPEND (its offset matters).
start_trunc() {
	local prog=$1 _outfd; shift
	[ "${prog#/}" != "$prog" ] || prog="$TGT/$prog"
	export RTCR_TRIGGER="$T/go"
	rm -f "$RTCR_TRIGGER"
	exec {_outfd}>"$T/out"
	( for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
	  exec "$prog" "$@" ) < /dev/null >&$_outfd 2>&1 &
	PID=$!
	exec {_outfd}>&-
	track_pid "$PID"
}

# A restore that must fail: exit nonzero, say MESSAGE, leave no process.
restore_must_fail() { # what message...
	local what=$1 rc; shift
	timeout 20 "$RTCR" restore -D "$T/img" > "$T/fail.out" 2> "$T/fail.err"
	rc=$?
	[ $rc != 0 ] || { track_pid "$PID"; fail "$what: restore succeeded"; }
	[ $rc != 124 ] || fail "$what: restore hung"
	local m
	for m in "$@"; do
		assert_contains "$T/fail.err" "$m" "$what: message"
	done
	assert_gone "$PID"
	echo "$what: restore refused (exit $rc): $(cat "$T/fail.err")"
}

test_files_offsets_flags() {
	mkdir "$T/data"
	cycle files "$T/data"
}
test_files_offsets_flags_static() {
	mkdir "$T/data"
	cycle files-static "$T/data"
}
test_files_native() {
	mkdir "$T/data"
	start_ready files "$T/data"
	touch "$T/go"
	wait "$PID" || { cat "$T/out" >&2; fail "files without a dump failed"; }
}

test_files_in_image() {
	mkdir "$T/data"
	start_ready files "$T/data"
	dump
	inspect_img
	assert_contains "$T/inspect.txt" "fd 100 .*$T/data/rw rw offset 17" "fd 100 in the image"
	assert_contains "$T/inspect.txt" "fd 8 .*$T/data/app w,append offset 3" "fd 8 in the image"
	assert_contains "$T/inspect.txt" "fd 20 .*$T/data/nb r,nonblock offset 0" "fd 20 in the image"
	assert_contains "$T/inspect.txt" "fd 41 .*/dev/zero" "fd 41 in the image"
	assert_contains "$T/inspect.txt" "fd 42 .*/dev/full rw" "fd 42 in the image"
	assert_contains "$T/inspect.txt" "fd 43 .*/dev/urandom r,nonblock" "fd 43 in the image"
	assert_contains "$T/inspect.txt" "fd 44 .*/dev/random r" "fd 44 in the image"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

test_files_stdout_pipe() {
	mkdir "$T/data"
	OUT_PIPE=1 cycle files "$T/data" pipe
}

test_files_stdout_offset_without_append() {
	mkdir "$T/data"
	start_trunc files "$T/data"
	wait_for "$T/out" READY
	dump
	restore_bg
	finish
	printf 'some output before READY\nREADY\nPASS\n' > "$T/expected"
	cmp "$T/expected" "$T/out" >&2 || { cat "$T/out" >&2; fail "stdout content"; }
}

test_restore_refuses_grown_file() {
	mkdir "$T/data"
	start_ready files "$T/data"
	dump
	echo "grown after the dump" >> "$T/data/rw"
	# fd 12 is a dup of fd 100: either may be named.
	restore_must_fail "grown file" "fd \(12\|100\)" "$T/data/rw" "size"
	# Back to its size (same file): the restore goes through.
	truncate -s 64 "$T/data/rw"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

test_restore_refuses_deleted_file() {
	mkdir "$T/data"
	start_ready files "$T/data"
	dump
	ln "$T/data/ro" "$T/ro.keep"
	rm "$T/data/ro"
	restore_must_fail "deleted file" "fd 3" "$T/data/ro" "missing"
	# Put the very same file back.
	ln "$T/ro.keep" "$T/data/ro"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

test_restore_refuses_replaced_file() {
	mkdir "$T/data"
	start_ready files "$T/data"
	dump
	# Same name, same size, another file.
	mv "$T/data/wo" "$T/wo.keep"
	cp "$T/wo.keep" "$T/data/wo"
	restore_must_fail "replaced file" "fd 7" "$T/data/wo"
	mv -f "$T/wo.keep" "$T/data/wo"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

test_restore_refuses_deleted_directory() {
	mkdir "$T/data"
	start_ready files "$T/data"
	dump
	mv "$T/data/d" "$T/d.away"
	restore_must_fail "directory gone" "fd 30" "$T/data/d"
	mv "$T/d.away" "$T/data/d"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
