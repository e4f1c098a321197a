# Registers held across the checkpoint by the hand-written assembly loops
# of tests/targets/regs_*.c (see regloop.h). Each register target runs in
# two modes:
#   spin   nearly always in user space: the dump catches it there
#   sleep  nearly always inside nanosleep: the dump catches it in the
#          system call (which returns EINTR after restore)
# and in both builds (glibc-dynamic, static).


# The full cycle; the thread state the dump saw goes to the log.
regs_cycle() { # target [mode]
	start_ready "$@"
	sleep 0.1
	dump
	assert_gone "$PID"
	"$RTCR" inspect "$T/img" > "$T/inspect.txt" || fail "rtcr inspect failed"
	grep '^thread' "$T/inspect.txt"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

# test_regs_KIND_MODE (dynamic) and test_regs_KIND_MODE_static, for every
# register kind and mode.
for _k in gpr sse avx avx512 x87; do
	for _m in spin sleep; do
		eval "test_regs_${_k}_${_m}() { regs_cycle regs_${_k} ${_m}; }"
		eval "test_regs_${_k}_${_m}_static() { regs_cycle regs_${_k}-static ${_m}; }"
	done
done
unset _k _m

# fs_base (TLS) and gs_base.
test_regs_fs_gs_base() { regs_cycle regs_tls; }
test_regs_fs_gs_base_static() { regs_cycle regs_tls-static; }

# The image keeps the registers as the dump saw them: the restored
# process is the same after a second dump and restore of it.
test_regs_gpr_twice() {
	start_ready regs_gpr sleep
	sleep 0.1
	dump
	restore_bg
	sleep 0.2
	rm -rf "$T/img"
	"$RTCR" dump -t "$PID" -D "$(mkdir -p "$T/img"; echo "$T/img")" > "$T/dump2.out" 2>&1 ||
		{ cat "$T/dump2.out" >&2; fail "second dump failed"; }
	wait "$RPID"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
