# Unmodified programs from Debian: coreutils sleep, a bash loop made of
# builtins only, a python3 loop with in-memory state.

now() { echo "${EPOCHREALTIME/./}"; }   # microseconds

# The counter at the dump. Its writer truncates then rewrites the file:
# if it was dumped in between, the file stays empty until the restore,
# and the value last seen before the dump (BEFORE) stands for it.
dumped_counter() { # file before
	local v; v=$(cat "$1" 2>/dev/null)
	case "$v" in ''|*[!0-9]*) echo "$2";; *) echo "$v";; esac
}

# Read the counter of a running writer (retries over a rewrite).
read_counter() { # file
	local v i
	for ((i = 0; i < 100; i++)); do
		v=$(cat "$1" 2>/dev/null)
		case "$v" in ''|*[!0-9]*) sleep 0.01;; *) echo "$v"; return 0;; esac
	done
	echo "no-number"
}

# Wait until the counter file goes above VALUE (default 5 s).
wait_counter_above() { # file value [seconds]
	local i n=$(( ${3:-5} * 100 )) v
	for ((i = 0; i < n; i++)); do
		v=$(cat "$1" 2>/dev/null)
		case "$v" in ''|*[!0-9]*) ;; *) [ "$v" -gt "$2" ] && return 0;; esac
		sleep 0.01
	done
	fail "counter in $1 stayed at '${v}', not above $2"
}


assert_single_task() { # pid what
	local n; n=$(ls /proc/$1/task | wc -l)
	[ "$n" = 1 ] || fail "$2 has $n threads"
	[ -z "$(cat /proc/$1/task/$1/children)" ] || fail "$2 has children: $(cat /proc/$1/task/$1/children)"
}

test_sleep_resumes_remaining_time() {
	start /bin/sleep 2
	sleep 1.2
	dump
	assert_gone "$PID"
	# About 0.8 s were left: not 0 (a lost sleep), not 2 (started over).
	local t0 t1 dt
	t0=$(now)
	"$RTCR" restore -D "$T/img" > "$T/restore.out" 2> "$T/restore.err" &
	RPID=$!
	track_pid "$RPID"
	wait "$RPID"
	local rc=$?
	t1=$(now)
	dt=$(( (t1 - t0) / 1000 ))
	echo "restored sleep ran ${dt} ms after the restore"
	[ $rc = 0 ] || { cat "$T/restore.err" >&2; fail "restored sleep exited $rc"; }
	[ "$dt" -ge 400 ] || fail "restored sleep ended after $dt ms, ~800 ms were left"
	[ "$dt" -le 1500 ] || fail "restored sleep took $dt ms, only ~800 ms were left"
}



test_sleep_dumped_and_restored_twice() {
	# A long sleep survives two cycles and still answers to SIGTERM.
	start /bin/sleep 100
	sleep 0.2
	dump
	restore_detached
	rm -rf "$T/img"
	dump
	assert_gone "$PID"
	wait_pid_free "$PID"
	restore_detached
	sleep 0.2
	assert_running "$PID"
	assert_eq "sleep" "$(cat /proc/$PID/comm)" "comm"
	kill -TERM "$PID"
	wait_pid_free "$PID"
}

test_bash_builtin_loop() {
	# stdin is a FIFO we keep open, so read -t times out instead of EOF.
	mkfifo "$T/fifo"
	local hold
	exec {hold}<>"$T/fifo"
	STDIN="$T/fifo" start /bin/bash -c \
		'i=0; while :; do i=$((i+1)); echo $i > "$1"; read -t 0.05 || :; done' bash "$T/counter"
	wait_counter_above "$T/counter" 5
	assert_single_task "$PID" "the bash loop"
	local v0 v1 v2 before
	before=$(read_counter "$T/counter")
	dump
	assert_gone "$PID"
	v0=$(dumped_counter "$T/counter" "$before")
	RESTORE_STDIN="$T/fifo" restore_bg
	assert_eq "$(readlink /proc/$RPID/fd/0)" "$(readlink /proc/$PID/fd/0)" "restored bash's stdin"
	wait_counter_above "$T/counter" "$v0"
	v1=$(read_counter "$T/counter")
	# It went on from v0, it did not start over.
	[ "$v1" -gt "$v0" ] || fail "counter $v1 after the restore, was $v0 at the dump"
	[ "$v1" -lt $((v0 + 100)) ] || fail "counter jumped from $v0 to $v1"
	sleep 0.3
	v2=$(read_counter "$T/counter")
	[ "$v2" -gt "$v1" ] || fail "counter stopped at $v2 after the restore"
	assert_running "$PID"
	echo "counter: $v0 at the dump, $v1 then $v2 after the restore"
	exec {hold}>&-
}

test_python_loop_with_state() {
	local py=/usr/bin/python3
	[ -x $py ] || skip "no /usr/bin/python3"
	cat > "$T/loop.py" <<'EOF'
import hashlib, os, sys, time
trig, counter = os.environ["RTCR_TRIGGER"], sys.argv[1]
state = {i: str(i * i) for i in range(50000)}
state["words"] = ["w%d" % i for i in range(5000)]
state["nested"] = {"a": [1, 2, {"b": 3.5}], "c": b"\x00\xff" * 100}
def checksum():
    return hashlib.sha256(repr(sorted((str(k), repr(v)) for k, v in state.items())).encode()).hexdigest()
sum0 = checksum()
print("SUM", sum0)
print("READY", flush=True)
n = 0
while not os.path.exists(trig):
    n += 1
    with open(counter, "w") as f:
        f.write(str(n))
    time.sleep(0.01)
s = checksum()
print("SUM", s)
print("COUNT", n)
if s != sum0:
    print("FAIL: state checksum changed", flush=True)
    sys.exit(1)
print("PASS", flush=True)
EOF
	start_ready $py "$T/loop.py" "$T/counter"
	wait_counter_above "$T/counter" 5
	# Note for the record: python3 here is single-threaded, no children.
	assert_single_task "$PID" "python3"
	local v0 v1 before
	before=$(read_counter "$T/counter")
	dump
	v0=$(dumped_counter "$T/counter" "$before")
	restore_bg
	wait_counter_above "$T/counter" "$v0"
	v1=$(read_counter "$T/counter")
	[ "$v1" -lt $((v0 + 200)) ] || fail "counter jumped from $v0 to $v1: it started over?"
	finish
	assert_contains "$T/out" '^PASS' "python verdict"
	[ "$(grep -c '^SUM' "$T/out")" = 2 ] || fail "expected two SUM lines"
	[ "$(grep '^SUM' "$T/out" | sort -u | wc -l)" = 1 ] || fail "checksums differ"
	local n; n=$(awk '/^COUNT/ {print $2}' "$T/out")
	[ "$n" -ge "$v1" ] || fail "python counted $n at the end, below $v1"
	echo "python counter: $v0 at the dump, $n at the end"
}
