# Memory objects rtcr re-creates at restore: System V shared memory
# segments, memfds and deleted files that are still mapped, each shared by
# a parent and its child (tests/targets/mem_sysv.c, mem_memfd.c,
# mem_deleted.c check themselves). Every segment a test makes is removed
# by id at the end (track_shm), whatever happens.

# The target prints "SHMID A B": remember both for cleanup.
_track_target_shm() {
	wait_for "$T/out" '^SHMID' 2
	local ids; ids=$(sed -n 's/^SHMID //p' "$T/out")
	for id in $ids; do track_shm "$id"; done
	SHM_A=${ids%% *}
	SHM_B=${ids##* }
}

_shm_exists() { ipcs -m | awk '{print $2}' | grep -qx "$1"; }

_sysv_cycle() { # target
	start "$1"
	_track_target_shm
	wait_for "$T/out" '^READY' 5
	dump
	assert_gone "$PID"
	# The segments moved into the image: A (not marked for deletion) was
	# removed by the dump, B went with its last attachment.
	! _shm_exists "$SHM_A" || fail "segment $SHM_A still exists after the dump killed the tree"
	! _shm_exists "$SHM_B" || fail "segment $SHM_B (marked for deletion) outlived its processes"
	"$RTCR" inspect "$T/img" > "$T/inspect.out" || fail "rtcr inspect failed"
	assert_contains "$T/inspect.out" "System V shared memory segment $SHM_A" "inspect lists segment A"
	assert_contains "$T/inspect.out" "marked for deletion" "inspect shows B's SHM_DEST"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
	# The target removed A itself; B went with the processes.
	! _shm_exists "$SHM_A" || fail "segment $SHM_A left behind"
	! _shm_exists "$SHM_B" || fail "segment $SHM_B left behind"
}
test_shm_sysv_tree_dynamic() { _sysv_cycle mem_sysv; }
test_shm_sysv_tree_static() { _sysv_cycle mem_sysv-static; }

# The segment id is still in use at restore: the original was left
# running (so the dump kept its segments), then killed, which frees its
# pids but not segment A (never marked for deletion). A clear error
# naming the segment, nonzero exit, no process and no segment made.
test_shm_sysv_id_in_use() {
	start mem_sysv
	_track_target_shm
	wait_for "$T/out" '^READY' 5
	dump --leave-running
	assert_running "$PID"
	local kid; kid=$(cat /proc/$PID/task/$PID/children)
	kill -9 "$PID" $kid
	wait "$PID" 2>/dev/null
	wait_pid_free "$PID"
	for k in $kid; do wait_pid_free "$k"; done
	_shm_exists "$SHM_A" || fail "segment $SHM_A is gone with its processes"
	local before; before=$(ipcs -m | wc -l)
	if "$RTCR" restore -D "$T/img" > "$T/restore.out" 2>&1; then
		fail "restore succeeded while segment $SHM_A exists"
	fi
	assert_contains "$T/restore.out" "System V shared memory segment $SHM_A (key 0x[0-9a-f]*): id $SHM_A is in use on this host" \
		"error names the segment"
	assert_eq "$before" "$(ipcs -m | wc -l)" "number of segments after the failed restore"
	assert_gone "$PID"
	for k in $kid; do assert_gone "$k"; done
}

# The key is in use by another segment (the id is free): the restore
# fails naming the key, and leaves nothing.
test_shm_sysv_key_in_use() {
	start mem_sysv
	_track_target_shm
	wait_for "$T/out" '^READY' 5
	dump
	local key; key=$(sed -n 's/.*segment '"$SHM_A"' (key \(0x[0-9a-f]*\)).*/\1/p' <("$RTCR" inspect "$T/img"))
	[ -n "$key" ] || fail "no key for segment $SHM_A in inspect"
	local other; other=$(python3 -c "import sys
import ctypes; libc=ctypes.CDLL(None); print(libc.shmget(int(sys.argv[1],16), 4096, 0o1600))" "$key")
	[ "$other" -ge 0 ] 2>/dev/null || fail "could not make a segment with key $key"
	track_shm "$other"
	if "$RTCR" restore -D "$T/img" > "$T/restore.out" 2>&1; then
		fail "restore succeeded while key $key is taken"
	fi
	assert_contains "$T/restore.out" "key $key is in use" "error names the key"
	assert_gone "$PID"
	! _shm_exists "$SHM_A" || fail "the failed restore left segment $SHM_A"
}

_memfd_cycle() {
	start_ready "$1"
	dump
	"$RTCR" inspect "$T/img" > "$T/inspect.out" || fail "rtcr inspect failed"
	assert_contains "$T/inspect.out" "memfd:rtcr-memfd" "inspect lists the memfd"
	# Three memfds, each stored once although two processes map them.
	assert_eq 3 "$(grep -c 'memfd:rtcr-' "$T/inspect.out" | head -1)" "objects in inspect"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_shm_memfd_tree_dynamic() { _memfd_cycle mem_memfd; }
test_shm_memfd_tree_static() { _memfd_cycle mem_memfd-static; }

test_shm_deleted_file_dynamic() { cycle mem_deleted "$T"; }
test_shm_deleted_file_static() { cycle mem_deleted-static "$T"; }

# The deleted file's directory is gone at restore: refused by name.
test_shm_deleted_file_dir_missing() {
	mkdir -p "$T/d"
	start_ready mem_deleted "$T/d"
	dump
	rmdir "$T/d"
	if "$RTCR" restore -D "$T/img" > "$T/restore.out" 2>&1; then
		fail "restore succeeded without the deleted file's directory"
	fi
	assert_contains "$T/restore.out" "deleted file $T/d/mem_deleted.dat (mapped by the process): its directory $T/d does not exist here" \
		"error names the path"
	assert_gone "$PID"
}
