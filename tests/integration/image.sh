# Bad input to restore: a clear message, a nonzero exit, and no process
# left behind (not even for a moment after rtcr returns).

# Restore must fail with a message matching $1; the pid must not exist.
restore_fails() { # pattern
	"$RTCR" restore -D "$T/img" > "$T/r.out" 2>&1
	local rc=$?
	[ $rc != 0 ] || fail "restore of a bad image succeeded"
	assert_contains "$T/r.out" "$1" "error message"
	assert_gone "$PID"
}

dumped_counter() {
	start_ready counter
	dump
	IMG=$T/img/image.rtcr
	SIZE=$(stat -c %s "$IMG")
}

flip_byte() { # offset
	local b; b=$(od -An -tu1 -j "$1" -N1 "$IMG" | tr -d ' ')
	printf "$(printf '\\%03o' $(( (b ^ 0x10) & 255 )))" | dd of="$IMG" bs=1 seek="$1" conv=notrunc 2>/dev/null
}

test_image_truncated_half() {
	dumped_counter
	truncate -s $((SIZE / 2)) "$IMG"
	restore_fails "truncated"
}

test_image_truncated_last_byte() {
	dumped_counter
	truncate -s $((SIZE - 1)) "$IMG"
	restore_fails "image.rtcr"
}

test_image_empty() {
	dumped_counter
	: > "$IMG"
	restore_fails "not an rtcr image"
}

test_image_foreign_file() {
	dumped_counter
	head -c 65536 /dev/urandom > "$IMG"
	restore_fails "not an rtcr image (bad magic)"
	cp /bin/true "$IMG"
	restore_fails "not an rtcr image (bad magic)"
}

test_image_header_corrupted() {
	dumped_counter
	flip_byte 20
	restore_fails "image header is corrupted"
}

test_image_metadata_corrupted() {
	dumped_counter
	# The first record header ends at 96; its payload (the inventory) follows.
	flip_byte 120
	restore_fails "inventory record at byte 96 is corrupted (checksum mismatch)"
}

test_image_record_header_corrupted() {
	dumped_counter
	flip_byte 72
	restore_fails "record header at byte 64 is corrupted"
}

test_image_page_data_corrupted() {
	dumped_counter
	# Deep inside the last pages record: the restore has already started
	# when it finds out; the half-built process must be gone.
	flip_byte $((SIZE - 8192))
	restore_fails "pages record at byte [0-9]* is corrupted (checksum mismatch)"
	assert_contains "$T/r.out" "partly restored process was killed" "cleanup message"
}

test_image_garbage_after_end() {
	dumped_counter
	printf 'trailing' >> "$IMG"
	restore_fails "garbage after the END record"
}

test_image_missing() {
	mkdir -p "$T/img"
	PID=999999
	restore_fails "no image here"
	restore_fails_dir() { "$RTCR" restore -D "$T/nope" > "$T/r.out" 2>&1 && fail "restore from a missing dir succeeded"; }
	restore_fails_dir
	assert_contains "$T/r.out" "nope" "names the directory"
}

test_image_partial_is_not_an_image() {
	# A dump killed before its end leaves only a .partial file.
	start_ready counter
	mkdir -p "$T/img"
	RTCR_TEST_KILL_AT=written "$RTCR" dump -t "$PID" -D "$T/img" > /dev/null 2>&1
	ls "$T/img/.image.rtcr.partial" > /dev/null || fail "expected a .partial file"
	[ ! -e "$T/img/image.rtcr" ] || fail "image.rtcr exists"
	"$RTCR" restore -D "$T/img" > "$T/r.out" 2>&1 && fail "restore of a partial dump succeeded"
	assert_contains "$T/r.out" "no image here" "message"
	assert_running "$PID"
}

test_image_pid_in_use() {
	start_ready counter
	dump --leave-running
	"$RTCR" restore -D "$T/img" > "$T/r.out" 2>&1 && fail "restore over a live pid succeeded"
	assert_contains "$T/r.out" "pid $PID is in use (by 'counter')" "message"
	assert_running "$PID"
	touch "$T/go"
	wait "$PID" || fail "the original process was harmed"
}

test_image_mapped_file_changed() {
	head -c 16384 /dev/urandom > "$T/data"
	start_ready mapper "$T/data"
	dump
	# Same size, new content and mtime: the saved private pages would sit
	# on top of different file pages.
	head -c 16384 /dev/urandom > "$T/data"
	restore_fails "mapped file: $T/data was modified since the dump"
	head -c 100 /dev/urandom >> "$T/data"
	restore_fails "mapped file: $T/data changed size since the dump"
}

test_image_mapped_file_missing() {
	head -c 16384 /dev/urandom > "$T/data"
	start_ready mapper "$T/data"
	dump
	mv "$T/data" "$T/data.moved"
	restore_fails "mapped file: $T/data is missing"
	mv "$T/data.moved" "$T/data"
	restore_bg
	finish
}

test_inspect_text_and_json() {
	start_ready counter
	dump
	"$RTCR" inspect "$T/img" > "$T/i.txt" || fail "inspect failed"
	assert_contains "$T/i.txt" "process    pid $PID (counter)" "process line"
	assert_contains "$T/i.txt" "exe $TGT/counter\|exe .*/counter" "exe"
	assert_contains "$T/i.txt" "\[heap\]" "heap area"
	assert_contains "$T/i.txt" "fd 1 .*file .*out" "stdout handle"
	"$RTCR" inspect --json "$T/img" > "$T/i.json" || fail "inspect --json failed"
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["process"]["pid"] == int(sys.argv[2]), d["process"]["pid"]
assert d["process"]["comm"] == "counter"
assert any(m["kind"] == "vdso" for m in d["memory"])
assert sum(m["pages"] for m in d["memory"]) == d["image"]["pages"]
assert d["handles"][1]["fd"] == 1
' "$T/i.json" "$PID" || fail "inspect --json content"
	# inspect on a damaged image fails as restore does.
	truncate -s 1000 "$T/img/image.rtcr"
	"$RTCR" inspect "$T/img" > "$T/i2.txt" 2>&1 && fail "inspect of a truncated image succeeded"
	assert_contains "$T/i2.txt" "truncated" "message"
}

test_check_command() {
	"$RTCR" check > "$T/c.txt" || { cat "$T/c.txt" >&2; fail "rtcr check reports missing essentials"; }
	assert_contains "$T/c.txt" "clone3 set_tid" "clone3 line"
	assert_contains "$T/c.txt" "PAGEMAP_SCAN" "pagemap line"
}

# The set_tid probe must choose a pid below pid_max even when the kernel's
# last pid is near it (CI once ran there: the probe asked for pid_max+N).
test_check_command_near_pid_max() {
	local max
	max=$(cat /proc/sys/kernel/pid_max)
	echo $((max - 20)) > /proc/sys/kernel/ns_last_pid || skip "ns_last_pid not writable"
	"$RTCR" check > "$T/c.txt" || { cat "$T/c.txt" >&2; fail "rtcr check fails near pid_max"; }
	assert_contains "$T/c.txt" "a chosen pid" "set_tid probe line"
}
