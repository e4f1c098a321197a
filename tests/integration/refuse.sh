# A dump that cannot be restored correctly must fail at dump time, naming
# the object, and the target must keep running untouched.

refuse_case() { # kind expected-message-pattern [holder args]
	start_ready holder "$1" "${@:3}"
	mkdir -p "$T/img"
	if "$RTCR" dump -t "$PID" -D "$T/img" > "$T/dump.out" 2>&1; then
		fail "dump of a process holding $1 succeeded"
	fi
	assert_contains "$T/dump.out" "$2" "refusal message"
	[ ! -e "$T/img/image.rtcr" ] || fail "an image was left behind"
	ls -A "$T/img" > "$T/leftover"
	[ ! -s "$T/leftover" ] || fail "files left in the image dir: $(cat "$T/leftover")"
	assert_running "$PID"
	# It kept running while rtcr looked at it, and still does.
	sleep 0.1
	touch "$T/go"
	wait "$PID"
	local rc=$?
	[ $rc = 77 ] && skip "$(grep SKIP "$T/out")"
	[ $rc = 0 ] || { cat "$T/out" >&2; fail "target exited $rc after the refused dump"; }
	assert_contains "$T/out" '^PASS' "target verdict"
}

# A pipe with an end outside the checkpointed processes (here: the test's).
test_refuse_pipe() {
	local pfd
	exec {pfd}< <(exec sleep 1000)
	track_pid $!
	refuse_case pipe "fd 5: pipe:\[[0-9]*\] (its other end is outside the checkpointed processes): not supported" \
		"/proc/$BASHPID/fd/$pfd"
}
# pidfds of processes of the tree are restored now (fdkinds_misc.sh).
test_refuse_pidfd() { refuse_case pidfd "fd 3: pidfd of process [0-9]*, outside the checkpointed processes: not supported"; }
# Unix sockets are restored now (fdkinds_unix.sh); other families are not.
test_refuse_socket() { refuse_case netlink "fd 3: netlink socket: not supported"; }
# Signal-driven I/O is restored (fdkinds_locks.sh), but not towards a
# process outside the tree; leases are not restored.
test_refuse_async_outside() {
	local other
	( trap '' IO; exec sleep 1000 ) &
	other=$!
	track_pid "$other"
	refuse_case async_outside "fd 3: socket:\[[0-9]*\]: signals (F_SETOWN) go to process $other, outside the checkpointed processes: not supported" "$other"
	kill "$other"
}
test_refuse_lease() { refuse_case lease "fd 3: /tmp/rtcr-holder-lease-.*: lease: not supported"; }
test_refuse_io_uring() { refuse_case io_uring "fd 3: io_uring: not supported"; }
# memfd mappings, SysV segments and deleted mapped files are restored
# now (shm.sh); a SysV segment another process outside the tree has
# attached too cannot be, as it would no longer be shared with it.
test_refuse_sysv_shared_outside() {
	refuse_case sysv_outside "System V shared memory segment [0-9]* (key 0): attached 2 times, 1 of them by the checkpointed processes: a segment shared with processes outside the tree: not supported"
}
# Files deleted while open are restored now (fdkinds_misc.sh), up to 64 MiB
# and if no other name links them.
test_refuse_deleted_file() {
	refuse_case deleted_file "fd 3: /tmp/rtcr-holder-.* (deleted): file deleted while open, 65 MiB: above the 64 MiB rtcr stores in the image: not supported"
}
test_refuse_deleted_linked() {
	refuse_case deleted_linked "fd 3: /tmp/rtcr-holder-.* (deleted): file deleted while open but still linked under another name (1 links): not supported"
}
test_refuse_shared_fd_table() {
	refuse_case clone_files "pid [0-9]* shares its fd table (clone(CLONE_FILES)) with pid [0-9]*: not supported"
}

test_refuse_bad_arguments() {
	start_ready holder none
	"$RTCR" dump -t "$PID" -D "$T/no-such-dir" > "$T/o1" 2>&1 && fail "dump into a missing dir succeeded"
	assert_contains "$T/o1" "no-such-dir" "missing dir message"
	"$RTCR" dump -t 999999 -D "$T" > "$T/o2" 2>&1 && fail "dump of a missing pid succeeded"
	assert_contains "$T/o2" "pid 999999: no such process" "missing pid message"
	"$RTCR" dump -t abc -D "$T" > "$T/o3" 2>&1 && fail "dump with a bad pid succeeded"
	assert_contains "$T/o3" "invalid pid" "bad pid message"
	"$RTCR" dump -t "$$" -D "$T" > "$T/o4" 2>&1 && fail "dump of the test shell (with children) succeeded"
	assert_running "$PID"
	touch "$T/go"
	wait "$PID" || fail "target failed after refused dumps"
}
