# Signal state across a checkpoint: actions and their flags, ignored
# signals, the blocked mask, pending signals (standard, real-time with
# values, thread-directed), the alternate signal stack, SIGCHLD's flags.

# Run a target without dumping it: checks the target's own expectations
# about the kernel, so that a failure after restore means rtcr.
native() { # target [args]
	start_ready "$@"
	touch "$T/go"
	wait "$PID"
	local rc=$?
	[ $rc = 77 ] && skip "$(grep SKIP "$T/out")"
	[ $rc = 0 ] || { cat "$T/out" >&2; fail "$1 without a dump exited $rc"; }
	assert_contains "$T/out" '^PASS' "native verdict"
}

test_sigactions_flags_and_masks() { cycle sigact; }
test_sigactions_flags_and_masks_static() { cycle sigact-static; }
test_sigactions_native() { native sigact; }

test_sigactions_in_image() {
	# What the image records, as rtcr inspect --json shows it.
	start_ready sigact
	dump
	"$RTCR" inspect "$T/img" --json > "$T/inspect.json" 2> "$T/inspect.err" ||
		fail "inspect: $(cat "$T/inspect.err")"
	python3 - "$T/inspect.json" > "$T/check.out" 2>&1 <<'EOF' || { cat "$T/check.out" >&2; fail "image contents"; }
import json, sys
d = json.load(open(sys.argv[1]))
acts = {a["signal"]: a for a in d["process"]["sigactions"]}
def flags(s): return int(acts[s]["flags"], 16)
assert int(acts[3]["handler"], 16) == 1, "SIGQUIT not ignored"
assert flags(1) & 0x40000000, "SIGHUP: SA_NODEFER"
assert flags(15) & 0x80000000, "SIGTERM: SA_RESETHAND"
assert flags(23) & 0x08000000, "SIGURG: SA_ONSTACK"
assert flags(12) & 0x4, "SIGUSR2: SA_SIGINFO"
assert flags(10) & 0x10000000, "SIGUSR1: SA_RESTART"
assert int(acts[10]["mask"], 16) == (1 << 11) | (1 << 37), "SIGUSR1 mask %s" % acts[10]["mask"]
assert 9 not in acts and 19 not in acts
blocked = int(d["process"]["threads"][0]["blocked"], 16)
assert blocked == (1 << 29) | (1 << 23) | (1 << 39) | (1 << 63), "blocked %#x" % blocked
EOF
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

test_pending_signals() { cycle sigpend; }
test_pending_signals_static() { cycle sigpend-static; }
test_pending_signals_native() { native sigpend; }

test_pending_signals_visible_while_restored() {
	# Before the trigger, /proc shows the restored process's pending sets:
	# SIGUSR2 (12) and SIGRTMIN+5 (39) thread-directed, the rest shared.
	start_ready sigpend
	local shd pnd blk
	shd=$(awk '/^ShdPnd/ {print $2}' /proc/$PID/status)
	pnd=$(awk '/^SigPnd/ {print $2}' /proc/$PID/status)
	blk=$(awk '/^SigBlk/ {print $2}' /proc/$PID/status)
	dump
	restore_bg
	assert_eq "$shd" "$(awk '/^ShdPnd/ {print $2}' /proc/$PID/status)" "shared pending set"
	assert_eq "$pnd" "$(awk '/^SigPnd/ {print $2}' /proc/$PID/status)" "thread pending set"
	assert_eq "$blk" "$(awk '/^SigBlk/ {print $2}' /proc/$PID/status)" "blocked set"
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

test_altstack() { cycle altstack basic; }
test_altstack_static() { cycle altstack-static basic; }
test_altstack_autodisarm() { cycle altstack autodisarm; }
test_altstack_dumped_inside_handler() { cycle altstack inhandler; }
test_altstack_dumped_inside_handler_static() { cycle altstack-static inhandler; }
test_altstack_native() { native altstack inhandler; }

test_sigchld_nocldwait() { cycle sigchld nocldwait; }
test_sigchld_nocldstop_handler() { cycle sigchld handler; }
test_sigchld_native() { native sigchld handler; }
test_sigchld_pending_from_kernel() { cycle sigchld pending; }
test_sigchld_pending_native() { native sigchld pending; }

test_signal_sets_in_proc_after_restore() {
	# SigIgn/SigCgt/SigBlk as the kernel reports them, before and after.
	start_ready sigact
	grep -E '^Sig(Ign|Cgt|Blk)' /proc/$PID/status > "$T/before"
	dump
	restore_bg
	grep -E '^Sig(Ign|Cgt|Blk)' /proc/$PID/status > "$T/after"
	diff "$T/before" "$T/after" >&2 || fail "signal sets in /proc/$PID/status differ"
	finish
}

# Restore's batches of injected calls end in int3: the program's own
# SIGTRAP handler must survive them.
test_sigtrap_handler() { cycle sigtrap; }
test_sigtrap_handler_static() { cycle sigtrap-static; }
