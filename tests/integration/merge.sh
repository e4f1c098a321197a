# rtcr merge: an incremental chain folded into one self-contained image,
# in place or into another directory; a full image is left alone; a broken
# chain is refused with the image untouched. Target: tests/targets/mem_incr.c.
# Helpers: chain_dump, chain_pages, chain_step, chain_restore_check (tests/lib.sh).

# The image id in the file header.
mg_id() { od -An -tx1 -j16 -N16 "$1/image.rtcr" | tr -d ' \n'; }

# d1 (full, tracking), d2 after step 1, d3 after step 2.
mg_chain_of_three() { # pages
	OUT_PIPE=1 start_ready mem_incr "$1" 5
	chain_dump d1 --track-mem
	chain_step 1
	chain_dump d2 --prev "$T/d1"
	chain_step 2
	chain_dump d3 --prev "$T/d2"
}

test_merge_chain_in_place() {
	mg_chain_of_three 4096
	local stored inh parent
	read -r stored inh parent <<< "$(chain_pages "$T/d3")"
	[ "$inh" -gt 3000 ] || fail "d3 inherits only $inh pages: not a real chain"
	local id; id=$(mg_id "$T/d3")
	"$RTCR" merge -D "$T/d3" > "$T/m.out" 2>&1 || { cat "$T/m.out" >&2; fail "merge exited $?"; }
	cat "$T/m.out"
	assert_contains "$T/m.out" "3 images merged" "merge summary"
	[ ! -e "$T/d3/.image.rtcr.partial" ] || fail "a .partial file was left behind"
	local s2 i2 p2
	read -r s2 i2 p2 <<< "$(chain_pages "$T/d3")"
	assert_eq - "$p2" "parent of the merged image"
	assert_eq 0 "$i2" "pages the merged image inherits"
	assert_eq $((stored + inh)) "$s2" "pages of the merged image (stored + inherited before)"
	assert_ne "$id" "$(mg_id "$T/d3")" "image id after the merge"
	"$RTCR" inspect "$T/d3" > "$T/inspect.txt" || fail "inspect of the merged image"
	assert_not_contains "$T/inspect.txt" "^parent" "inspect shows no parent"
	rm -rf "$T/d1" "$T/d2"
	kill_target
	chain_restore_check "$T/d3" 2
}

test_merge_into_other_dir() {
	mg_chain_of_three 2048
	cp "$T/d3/image.rtcr" "$T/d3.before"
	local stored inh parent
	read -r stored inh parent <<< "$(chain_pages "$T/d3")"
	"$RTCR" merge -D "$T/d3" -o "$T/m" > "$T/m.out" 2>&1 ||
		{ cat "$T/m.out" >&2; fail "merge -o exited $?"; }
	cmp "$T/d3/image.rtcr" "$T/d3.before" || fail "merge -o changed the source image"
	local s2 i2 p2
	read -r s2 i2 p2 <<< "$(chain_pages "$T/m")"
	assert_eq - "$p2" "parent of the merged image"
	assert_eq $((stored + inh)) "$s2" "pages of the merged image"
	mv "$T/d1" "$T/d1.gone"; mv "$T/d2" "$T/d2.gone"; mv "$T/d3" "$T/d3.gone"
	kill_target
	chain_restore_check "$T/m" 2
}

# Periodic checkpointing drops the oldest link: the middle image merged in
# place with --keep-id stays the parent of the newest one.
test_merge_middle_link_keep_id() {
	mg_chain_of_three 1024
	local id; id=$(mg_id "$T/d2")
	"$RTCR" merge -D "$T/d2" -o "$T/d2new" > "$T/m.out" 2>&1 || { cat "$T/m.out" >&2; fail "merge -o"; }
	# Without --keep-id the merged image is another image: d3 would no
	# longer find its parent in it.
	assert_ne "$id" "$(mg_id "$T/d2new")" "id of a merge without --keep-id"
	"$RTCR" merge -D "$T/d2" --keep-id > "$T/m.out" 2>&1 || { cat "$T/m.out" >&2; fail "merge --keep-id"; }
	assert_eq "$id" "$(mg_id "$T/d2")" "id kept"
	rm -rf "$T/d1"
	# The process goes on: its next dump relative to the merged d3 is
	# still incremental (the tracker knows the id).
	"$RTCR" merge -D "$T/d3" --keep-id > "$T/m.out" 2>&1 || { cat "$T/m.out" >&2; fail "merge d3"; }
	rm -rf "$T/d2" "$T/d2new"
	chain_step 3
	chain_dump d4 --prev "$T/d3"
	assert_not_contains "$T/d4.out" "pid $PID: all its memory is stored" "d4 is incremental for the target (its child, forked at step 3, was not tracked yet)"
	local stored inh parent
	read -r stored inh parent <<< "$(chain_pages "$T/d4")"
	[ "$inh" -gt 0 ] || fail "d4 inherits nothing"
	kill_target
	chain_restore_check "$T/d4" 3
}

test_merge_full_image_is_noop() {
	OUT_PIPE=1 start_ready mem_incr 512 5
	chain_dump d1
	cp "$T/d1/image.rtcr" "$T/d1.before"
	"$RTCR" merge -D "$T/d1" > "$T/m.out" 2>&1 || { cat "$T/m.out" >&2; fail "merge of a full image exited $?"; }
	assert_contains "$T/m.out" "already self-contained" "message"
	cmp "$T/d1/image.rtcr" "$T/d1.before" || fail "merge changed a full image"
	# With -o: a copy, self-contained as well.
	"$RTCR" merge -D "$T/d1" -o "$T/copy" > "$T/m.out" 2>&1 || { cat "$T/m.out" >&2; fail "merge -o"; }
	local s1 i1 p1 s2 i2 p2
	read -r s1 i1 p1 <<< "$(chain_pages "$T/d1")"
	read -r s2 i2 p2 <<< "$(chain_pages "$T/copy")"
	assert_eq "$s1" "$s2" "pages of the copy"
	assert_eq - "$p2" "parent of the copy"
	mv "$T/d1" "$T/d1.gone"
	kill_target
	chain_restore_check "$T/copy" 0
}

test_merge_broken_chain() {
	OUT_PIPE=1 start_ready mem_incr 512 5
	chain_dump d1 --track-mem
	chain_step 1
	chain_dump d2 --prev "$T/d1"
	cp "$T/d2/image.rtcr" "$T/d2.before"
	mv "$T/d1" "$T/d1.moved"
	"$RTCR" merge -D "$T/d2" > "$T/m.out" 2>&1 && fail "merge without the parent succeeded"
	assert_contains "$T/m.out" "its parent image .*d1 cannot be used" "error names the parent"
	assert_contains "$T/m.out" "unchanged" "error says the image is unchanged"
	cmp "$T/d2/image.rtcr" "$T/d2.before" || fail "a failed merge changed the image"
	[ ! -e "$T/d2/.image.rtcr.partial" ] || fail "a .partial file was left behind"
	"$RTCR" merge -D "$T/d2" -o "$T/m" > "$T/m.out" 2>&1 && fail "merge -o without the parent succeeded"
	[ ! -e "$T/m/image.rtcr" ] || fail "a failed merge -o wrote an image"
	# Another image where the parent was.
	mv "$T/d1.moved" "$T/d1"
	chain_dump d1
	"$RTCR" merge -D "$T/d2" > "$T/m.out" 2>&1 && fail "merge with a replaced parent succeeded"
	assert_contains "$T/m.out" "is not the one it was made from" "error says the parent changed"
	cmp "$T/d2/image.rtcr" "$T/d2.before" || fail "a failed merge changed the image"
	"$RTCR" merge -D "$T/nothing" > "$T/m.out" 2>&1 && fail "merge of a missing image succeeded"
	assert_contains "$T/m.out" "no image here" "missing image"
}
