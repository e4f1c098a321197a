# Multi-threaded processes: every thread's registers, TLS, scheduling
# attributes, name, signal state and blocking system call survive a
# checkpoint; thread creation and exit racing the freeze; CPython with
# threads; repeated cycles. The targets are tests/targets/thr_*.c (their
# header comments say exactly what they check). The *_native tests run
# a target without rtcr: they pass whatever rtcr does, so a failure
# after restore is rtcr's.

# ---- helpers ----

# Run a target without a dump: start, trigger, expect PASS.
thr_native() { # target [args]
	start_ready "$@"
	sleep 0.2
	touch "$T/go"
	thr_wait_exit "$PID" 10 || fail "$1 without a dump did not finish in 10 s"
	wait "$PID"
	local rc=$?
	[ $rc = 77 ] && skip "$(grep SKIP "$T/out")"
	[ $rc = 0 ] || { cat "$T/out" >&2; fail "$1 without a dump exited $rc"; }
	assert_contains "$T/out" '^PASS' "native verdict"
}

# Wait until pid has ended (or is a zombie), at most N seconds.
thr_wait_exit() { # pid seconds
	local end=$((SECONDS + $2)) st
	while [ $SECONDS -le $end ]; do
		st=$(proc_state "$1")
		[ -z "$st" ] || [ "$st" = Z ] && return 0
		sleep 0.01
	done
	return 1
}

thr_count() { ls "/proc/$1/task" 2>/dev/null | wc -l; }
thr_tids() { ls "/proc/$1/task" 2>/dev/null | sort -n | tr '\n' ' '; }

# One line per thread, as the kernel shows it: tid, name, allowed CPUs,
# nice, real-time priority, policy (0 OTHER, 1 FIFO, 2 RR, 3 BATCH).
thr_sched_attrs() { # pid
	local t s
	for t in $(ls "/proc/$1/task" | sort -n); do
		s=$(sed 's/.*) //' "/proc/$1/task/$t/stat")   # fields from 3 (state) on
		echo "tid $t name '$(cat "/proc/$1/task/$t/comm")'" \
			"cpus $(awk '/^Cpus_allowed_list/ {print $2}' "/proc/$1/task/$t/status")" \
			"$(awk '{print "nice " $17 " rtprio " $38 " policy " $39}' <<< "$s")"
	done
}

# One line per thread: tid, its pending and blocked sets; then the
# process's shared pending set.
thr_sig_sets() { # pid
	local t
	for t in $(ls "/proc/$1/task" | sort -n); do
		echo "tid $t $(grep -E '^Sig(Pnd|Blk)' "/proc/$1/task/$t/status" | tr -s '\t\n' '  ')"
	done
	grep '^ShdPnd' "/proc/$1/status"
}

# lib.sh's dump, but failing (and killing rtcr) if rtcr hangs.
thr_dump_run() { # extra args; image in $T/img
	local d rc st end=$((SECONDS + 10))
	mkdir -p "$T/img"
	"$RTCR" dump -t "$PID" -D "$T/img" "$@" > "$T/dump.out" 2>&1 &
	d=$!
	track_pid "$d"
	# (stderr: bash reports the target "Killed" by the dump when it reaps it.)
	{
		while [ $SECONDS -le $end ]; do
			st=$(proc_state "$d")
			[ -z "$st" ] || [ "$st" = Z ] && break
			sleep 0.01
		done
		st=$(proc_state "$d")
		[ "$(proc_state "$PID")" = Z ] && wait "$PID"
	} 2>/dev/null
	if [ -n "$st" ] && [ "$st" != Z ]; then
		cat "$T/dump.out" >&2
		echo "--- rtcr dump: $(cat /proc/$d/wchan 2>/dev/null); threads of $PID:" >&2
		local t
		for t in $(ls "/proc/$PID/task" 2>/dev/null); do
			echo "  $t state $(awk '{print $3}' /proc/$PID/task/$t/stat 2>/dev/null)" >&2
		done
		kill -9 "$d"
		fail "rtcr dump did not finish within 10 s"
	fi
	wait "$d" 2>/dev/null
	rc=$?
	[ $rc = 0 ] || { cat "$T/dump.out" >&2; fail "rtcr dump exited $rc"; }
	case " $* " in *" --leave-running "*) ;; *) wait "$PID" 2>/dev/null;; esac
	return 0
}

# The dump, with the threads it saw from rtcr inspect in the log.
thr_dump() { # [expected thread count]
	local n
	thr_dump_run
	assert_gone "$PID"
	"$RTCR" inspect "$T/img" > "$T/inspect.txt" || fail "rtcr inspect failed"
	grep '^thread' "$T/inspect.txt"
	n=$(grep -c '^thread' "$T/inspect.txt")
	[ -z "${1:-}" ] || assert_eq "$1" "$n" "threads in the image (rtcr inspect)"
}

# Every thread of pid is alive, not stopped and not traced (a thread may
# be gone or exiting meanwhile if ANY_EXITING=1: thr_churn).
thr_assert_threads_running() { # pid
	local t st tr
	assert_running "$1"
	for t in $(ls "/proc/$1/task" 2>/dev/null); do
		st=$(awk '{print $3}' "/proc/$1/task/$t/stat" 2>/dev/null)
		tr=$(awk '/^TracerPid/ {print $2}' "/proc/$1/task/$t/status" 2>/dev/null)
		[ -z "$st" ] && continue
		case "$st" in
		T|t) fail "thread $t of $1 is stopped or traced (state $st)";;
		Z|X) [ "${ANY_EXITING:-0}" = 1 ] || fail "thread $t of $1 is dead (state $st)";;
		esac
		[ -z "$tr" ] || [ "$tr" = 0 ] || fail "thread $t of $1 is traced by $tr"
	done
}

# Fail showing how the restored process ended if it already did; else
# check it is running, untraced, and has not given its verdict yet.
thr_assert_waiting() { # what it waits for
	local st; st=$(proc_state "$PID")
	if [ -z "$st" ] || [ "$st" = Z ]; then
		finish
		fail "the restored process ended before $1"
	fi
	assert_running "$PID"
	assert_not_contains "$T/out" '^\(PASS\|FAIL\)' "target output before $1"
}

# Trigger, then finish (lib.sh) with PASS, but fail (rather than hang)
# if rtcr restore has not returned within N seconds.
thr_finish_within() { # seconds
	local st end=$((SECONDS + $1))
	touch "$T/go"
	while [ $SECONDS -le $end ]; do
		st=$(proc_state "$RPID")
		[ -z "$st" ] || [ "$st" = Z ] && break
		sleep 0.01
	done
	st=$(proc_state "$RPID")
	if [ -n "$st" ] && [ "$st" != Z ]; then
		echo "--- target output:" >&2; cat "$T/out" >&2
		echo "--- threads of $PID:" >&2
		local t
		for t in $(ls "/proc/$PID/task" 2>/dev/null); do
			echo "  $t $(cat /proc/$PID/task/$t/comm 2>/dev/null) state $(awk '{print $3}' /proc/$PID/task/$t/stat 2>/dev/null) syscall $(cut -d' ' -f1 /proc/$PID/task/$t/syscall 2>/dev/null)" >&2
		done
		fail "restored process did not finish within $1 s"
	fi
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

# The status line of thr_regs / thr_churn / the python script: numbers.
thr_status() { head -n1 "$T/status" 2>/dev/null; }

# Wait until every number of the status line is above the one at the
# same place in BEFORE (a status line). At most N seconds.
thr_wait_all_above() { # "before line" seconds what
	local cur end=$((SECONDS + $2))
	while [ $SECONDS -le $end ]; do
		cur=$(thr_status)
		if awk -v a="$1" -v b="$cur" 'BEGIN {
			n = split(a, x, " "); m = split(b, y, " ");
			if (n < 1 || n != m) exit 1
			for (k = 1; k <= n; k++) if (y[k] + 0 <= x[k] + 0) exit 1
			exit 0 }'; then
			echo "$3: '$1' -> '$cur'"
			return 0
		fi
		sleep 0.01
	done
	fail "$3: counters stuck: '$cur', not all above '$1' after $2 s"
}

# ---- 1. eight threads: registers, TLS, counters, names, scheduling ----

# thr_regs: dump while the 8 workers spin or sleep in their register
# loops; after restore every one must keep counting (status line), then
# check its registers, TLS, tid, name, affinity, nice and policy.
thr_regs_cycle() { # target [restore args]
	start_ready "$1" "$T/status"
	shift
	sleep 0.3
	assert_eq 9 "$(thr_count "$PID")" "threads before the dump"
	local tids; tids=$(thr_tids "$PID")
	thr_dump 9
	local c0; c0=$(thr_status)
	restore_bg "$@"
	thr_assert_threads_running "$PID"
	assert_eq "$tids" "$(thr_tids "$PID")" "thread ids after the restore"
	thr_wait_all_above "$c0" 10 "poll counts of the 8 threads, at the dump -> after restore"
	local c1; c1=$(thr_status)
	thr_wait_all_above "$c1" 10 "poll counts of the 8 threads, still going"
	thr_finish_within 10
}
test_threads_regs_tls() { thr_regs_cycle thr_regs; }
# Lazy: rtcr builds the tree on one CPU, the page server on the others;
# every thread gets its own CPU set back (the target checks it).
test_threads_regs_lazy() { thr_regs_cycle thr_regs --lazy; }
test_threads_regs_tls_static() { thr_regs_cycle thr_regs-static; }
test_threads_regs_native() { thr_native thr_regs "$T/status"; }

# The same process seen from outside: every thread keeps its tid, name,
# affinity, nice, policy and real-time priority.
test_threads_sched_attrs_in_proc() {
	start_ready thr_regs "$T/status"
	sleep 0.2
	thr_sched_attrs "$PID" > "$T/attrs.before"
	cat "$T/attrs.before"
	thr_dump 9
	restore_bg
	thr_sched_attrs "$PID" > "$T/attrs.after"
	diff -u "$T/attrs.before" "$T/attrs.after" >&2 ||
		fail "per-thread tid/name/affinity/nice/policy differ after the restore"
	thr_finish_within 10
}

# ---- 2. threads blocked in synchronization and system calls ----

# thr_block MODE: stdin is a FIFO the test holds open; after the restore
# it is rtcr restore's stdin, another FIFO, which gets the reader's input.
thr_block_case() { # target mode
	local w0 w1
	mkfifo "$T/stdin0" "$T/stdin1" || fail "mkfifo"
	exec {w0}<>"$T/stdin0" {w1}<>"$T/stdin1"
	STDIN="$T/stdin0" start_ready "$1" "$2"
	local n; n=$(thr_count "$PID")
	# nanosleep: late enough that a sleep restarted from the start shows.
	case "$2" in nanosleep|all) sleep 0.8;; *) sleep 0.2;; esac
	assert_running "$PID"
	thr_dump "$n"
	if [ "$2" = all ]; then
		assert_contains "$T/inspect.txt" '^thread .*(futex)' "a thread in futex (rtcr inspect)"
		assert_contains "$T/inspect.txt" '^thread .*(read)' "a thread in read (rtcr inspect)"
		assert_contains "$T/inspect.txt" '^thread .*(nanosleep)' "a thread in nanosleep (rtcr inspect)"
	fi
	RESTORE_STDIN="$T/stdin1" restore_bg
	sleep 0.3
	thr_assert_waiting "the trigger"
	thr_assert_threads_running "$PID"
	assert_eq "$n" "$(thr_count "$PID")" "threads after the restore"
	case "$2" in read|all) echo "rtcr-input-threads" >&$w1;; esac
	thr_finish_within 10
	exec {w0}>&- {w1}>&-
}
test_threads_blocked_mutex() { thr_block_case thr_block mutex; }
test_threads_blocked_cond() { thr_block_case thr_block cond; }
test_threads_blocked_robust_mutex_owner_dies() { thr_block_case thr_block robust; }
test_threads_blocked_barrier() { thr_block_case thr_block barrier; }
test_threads_blocked_nanosleep() { thr_block_case thr_block nanosleep; }
test_threads_blocked_read_stdin() { thr_block_case thr_block read; }
test_threads_blocked_join() { thr_block_case thr_block join; }
test_threads_blocked_all() { thr_block_case thr_block all; }
test_threads_blocked_all_static() { thr_block_case thr_block-static all; }

test_threads_blocked_native() {
	local w0
	mkfifo "$T/stdin0" || fail "mkfifo"
	exec {w0}<>"$T/stdin0"
	STDIN="$T/stdin0" start_ready thr_block all
	sleep 0.2
	echo "rtcr-input-threads" >&$w0
	touch "$T/go"
	thr_wait_exit "$PID" 10 || fail "thr_block without a dump did not finish in 10 s"
	wait "$PID"
	local rc=$?
	[ $rc = 0 ] || { cat "$T/out" >&2; fail "thr_block without a dump exited $rc"; }
	assert_contains "$T/out" '^PASS' "native verdict"
	exec {w0}>&-
}

# ---- 3. thread-directed signal state ----

# thr_sig: per-thread blocked masks, signals pending for one thread
# only, a sigaltstack per thread. From outside too: every thread's
# SigPnd/SigBlk and the process's ShdPnd are what they were.
thr_sig_cycle() { # target
	start_ready "$1"
	sleep 0.1
	thr_sig_sets "$PID" > "$T/sigs.before"
	cat "$T/sigs.before"
	thr_dump 5
	restore_bg
	thr_assert_threads_running "$PID"
	thr_sig_sets "$PID" > "$T/sigs.after"
	diff -u "$T/sigs.before" "$T/sigs.after" >&2 ||
		fail "per-thread pending/blocked sets differ after the restore"
	thr_finish_within 10
}
test_threads_signals() { thr_sig_cycle thr_sig; }
test_threads_signals_static() { thr_sig_cycle thr_sig-static; }
test_threads_signals_native() { thr_native thr_sig; }

# ---- 4. threads created and exiting while the process is frozen ----

# thr_churn keeps creating and joining short-lived threads; the dump
# freezes it in the middle of that. After the restore it goes on (its
# count of created threads grows) and its bookkeeping holds.
thr_churn_cycle() { # target
	start_ready "$1" "$T/status"
	thr_wait_all_above "100 100" 10 "created/joined before the dump"
	thr_dump
	local c0; c0=$(thr_status)
	echo "at the dump: created/joined $c0"
	restore_bg
	ANY_EXITING=1 thr_assert_threads_running "$PID"
	thr_wait_all_above "$c0" 10 "created/joined, at the dump -> after restore"
	local c1; c1=$(thr_status)
	thr_wait_all_above "$c1" 10 "created/joined, still going"
	thr_finish_within 10
	local final; final=$(awk '/^count/ {print $2}' "$T/out")
	[ "${final:-0}" -gt "${c1%% *}" ] || fail "final count '$final' not above $c1"
}
test_threads_churn_during_dump() { thr_churn_cycle thr_churn; }
test_threads_churn_during_dump_static() { thr_churn_cycle thr_churn-static; }
test_threads_churn_native() { thr_native thr_churn "$T/status"; }

# Five dumps with --leave-running in a row: each freeze races thread
# creation and exit, and the process must come out of each unharmed
# (not stopped, not traced, still churning, consistent at the end). The
# last image then restores and passes too.
test_threads_churn_leave_running() {
	OUT_PIPE=1 start_ready thr_churn "$T/status"
	thr_wait_all_above "100 100" 10 "created/joined before the dumps"
	local k c
	for k in 1 2 3 4 5; do
		rm -rf "$T/img"
		thr_dump_run --leave-running
		ANY_EXITING=1 thr_assert_threads_running "$PID"
		c=$(thr_status)
		thr_wait_all_above "$c" 10 "dump $k: created/joined go on"
	done
	touch "$T/go"
	wait_for "$T/out" '^\(PASS\|FAIL\)' 10
	assert_not_contains "$T/out" '^FAIL' "the original's verdict"
	wait "$PID" 2>/dev/null
	wait_pid_free "$PID"
	rm -f "$T/go"
	: > "$T/out"
	restore_bg
	c=$(thr_status)
	thr_wait_all_above "$c" 10 "created/joined after restoring the last image"
	thr_finish_within 10
}

# ---- 5. CPython with threads ----

thr_py_script() {
	cat > "$T/threads.py" <<'EOF'
import os, sys, threading, time
trig, status = os.environ["RTCR_TRIGGER"], sys.argv[1]
N = 4
lock = threading.Lock()
shared = {"total": 0}
for i in range(N):
    shared[i] = 0
stop = False
local_counts = [0] * N
ids = [None] * N
errors = []

def work(i):
    ids[i] = threading.get_native_id()
    n = 0
    while not stop:
        with lock:
            shared[i] += 1
            shared["total"] += 1
        n += 1
        local_counts[i] = n
        time.sleep(0.001)
    if threading.get_native_id() != ids[i]:
        errors.append("worker %d: native id %d, was %d" % (i, threading.get_native_id(), ids[i]))
    if threading.current_thread().name != "worker-%d" % i:
        errors.append("worker %d: name %s" % (i, threading.current_thread().name))

threads = [threading.Thread(target=work, args=(i,), name="worker-%d" % i) for i in range(N)]
for t in threads:
    t.start()
while min(local_counts) < 1:
    time.sleep(0.01)
print("native ids", ids)
fd = os.open(status, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
def write_status():
    with lock:
        counts = [shared[i] for i in range(N)]
    os.pwrite(fd, (" ".join(map(str, counts))).ljust(79).encode() + b"\n", 0)
write_status()
print("READY", flush=True)
while not os.path.exists(trig):
    write_status()
    time.sleep(0.01)
stop = True
for t in threads:
    t.join(10)
    if t.is_alive():
        print("FAIL: %s still running 10 s after the stop" % t.name, flush=True)
        os._exit(1)
counts = [shared[i] for i in range(N)]
print("COUNTS", counts, "TOTAL", shared["total"])
if sum(counts) != shared["total"]:
    errors.append("sum of counts %d != total %d" % (sum(counts), shared["total"]))
for i in range(N):
    if counts[i] != local_counts[i]:
        errors.append("worker %d: shared count %d, its own %d" % (i, counts[i], local_counts[i]))
    if counts[i] < 1:
        errors.append("worker %d never counted" % i)
if threading.active_count() != 1:
    errors.append("%d threads still active" % threading.active_count())
if errors:
    print("FAIL: " + "; ".join(errors), flush=True)
    sys.exit(1)
print("PASS", flush=True)
EOF
}

test_threads_python() {
	local py=/usr/bin/python3
	[ -x $py ] || skip "no /usr/bin/python3"
	thr_py_script
	start_ready $py "$T/threads.py" "$T/status"
	sleep 0.2
	assert_eq 5 "$(thr_count "$PID")" "python threads before the dump"
	thr_dump 5
	local c0; c0=$(thr_status)
	restore_bg
	thr_assert_threads_running "$PID"
	assert_eq 5 "$(thr_count "$PID")" "python threads after the restore"
	thr_wait_all_above "$c0" 10 "per-worker counts, at the dump -> after restore"
	local c1; c1=$(thr_status)
	thr_wait_all_above "$c1" 10 "per-worker counts, still going"
	thr_finish_within 10
	# They went on from where they were, not from zero.
	local total; total=$(sed -n 's/^COUNTS.*TOTAL \([0-9]*\).*/\1/p' "$T/out")
	local s1; s1=$(awk '{s = 0; for (k = 1; k <= NF; k++) s += $k; print s}' <<< "$c1")
	[ "${total:-0}" -ge "$s1" ] || fail "final total '$total' below $s1 seen after the restore"
}

test_threads_python_native() {
	local py=/usr/bin/python3
	[ -x $py ] || skip "no /usr/bin/python3"
	thr_py_script
	thr_native $py "$T/threads.py" "$T/status"
}

# ---- 6. repeated cycles ----

# Dump, restore --detach, dump the restored process... three times; the
# 8 threads keep their tids and keep counting, and pass at the end.
thr_three_cycles() { # target
	start_ready "$1" "$T/status"
	sleep 0.2
	local tids; tids=$(thr_tids "$PID")
	local k c
	for k in 1 2 3; do
		c=$(thr_status)
		thr_wait_all_above "$c" 10 "cycle $k: counting before the dump"
		rm -rf "$T/img"
		thr_dump 9
		wait_pid_free "$PID"
		c=$(thr_status)
		restore_detached
		thr_assert_threads_running "$PID"
		assert_eq "$tids" "$(thr_tids "$PID")" "cycle $k: thread ids"
		thr_wait_all_above "$c" 10 "cycle $k: at the dump -> after restore"
	done
	touch "$T/go"
	wait_for "$T/out" '^\(PASS\|FAIL\)' 10
	assert_not_contains "$T/out" '^FAIL' "target verdict"
	thr_wait_exit "$PID" 5 || fail "the restored process did not exit after PASS"
}
test_threads_three_cycles() { thr_three_cycles thr_regs; }
test_threads_three_cycles_static() { thr_three_cycles thr_regs-static; }
