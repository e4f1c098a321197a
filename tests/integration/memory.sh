# Memory: every kind of mapping comes back with its data, its layout and
# its attributes. The targets (tests/targets/mem_*.c) check their own
# memory and compare /proc/self/maps with a copy taken before READY.




# Private anonymous memory (full, sparse, untouched, zero-page, PROT_NONE,
# read-only) and deep stack data.
test_mem_anon_dynamic() { cycle mem_anon; }
test_mem_anon_static() { cycle mem_anon-static; }

# The image holds only the pages with data: not the holes of the sparse
# area, the untouched one or the zero pages (1024 + 64 + 40 + 64 + 64 of
# the target's own; allow some for libc, stack and heap).
test_mem_anon_image_is_sparse() {
	start_ready mem_anon
	dump
	local pages
	pages=$("$RTCR" inspect "$T/img" | awk '/^memory/ {print $4}')
	[ -n "$pages" ] || fail "no page count in rtcr inspect output"
	[ "$pages" -ge 1256 ] || fail "image stores $pages pages, fewer than the 1256 written"
	[ "$pages" -le 1600 ] || fail "image stores $pages pages: holes or zero pages were stored"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

# malloc'ed data, sbrk'ed data, and brk()/sbrk() growing on after restore.
test_mem_heap_brk_dynamic() { cycle mem_heap; }
test_mem_heap_brk_static() { cycle mem_heap-static; }

# MAP_SHARED|MAP_ANONYMOUS: data, holes, read-only, still shared (fork).
test_mem_shared_anon_dynamic() { cycle mem_shared; }
test_mem_shared_anon_static() { cycle mem_shared-static; }

# Private and shared file mappings of files the process wrote.
_mem_file() {
	start_ready "$1" "$T"
	local before_priv before_shr
	before_priv=$(sha256sum < "$T/mem_file.priv")
	dump
	# The dump must not change the files (the shared one holds the
	# process's writes already: they are in the page cache).
	before_shr=$(sha256sum < "$T/mem_file.shared")
	assert_eq "$before_priv" "$(sha256sum < "$T/mem_file.priv")" "private-mapped file after dump"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
	assert_eq "$before_priv" "$(sha256sum < "$T/mem_file.priv")" \
		"private-mapped file after restore (copy-on-write data leaked into it?)"
	assert_ne "$before_shr" "$(sha256sum < "$T/mem_file.shared")" \
		"shared-mapped file: the write through the mapping after restore is missing"
}
test_mem_file_dynamic() { _mem_file mem_file; }
test_mem_file_static() { _mem_file mem_file-static; }

# madvise state: DONTFORK, HUGEPAGE, NOHUGEPAGE, DONTDUMP, WIPEONFORK.
test_mem_madvise_dynamic() { cycle mem_madvise; }
test_mem_madvise_static() { cycle mem_madvise-static; }

# mlock / mlock2(MLOCK_ONFAULT).
test_mem_mlock_dynamic() { cycle mem_mlock; }
test_mem_mlock_static() { cycle mem_mlock-static; }

# mseal()ed areas stay sealed.
test_mem_sealed_dynamic() { cycle mem_seal; }
test_mem_sealed_static() { cycle mem_seal-static; }

# PR_SET_VMA_ANON_NAME names (skips where the kernel lacks them).
test_mem_vma_name_dynamic() { cycle mem_vmaname; }
test_mem_vma_name_static() { cycle mem_vmaname-static; }

# 256 MiB, every page written: many 4 MiB chunks through the page copier
# at dump and at restore.
test_mem_big_256m() {
	start_ready mem_big 256
	dump --stats
	local pages
	pages=$(sed -n 's/^STATS dump .* pages=\([0-9]*\) .*/\1/p' "$T/dump.out")
	[ -n "$pages" ] || { cat "$T/dump.out" >&2; fail "no STATS line from rtcr dump --stats"; }
	[ "$pages" -ge 65536 ] || fail "dump stored $pages pages, fewer than the 65536 written"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_mem_big_256m_static() { cycle mem_big-static 256; }

# The mm layout (/proc/self/stat bounds, auxv, cmdline, environ) and a
# stack that still grows down.
test_mem_layout_dynamic() { cycle mem_layout arg-one "arg two"; }
test_mem_layout_static() { cycle mem_layout-static arg-one "arg two"; }
