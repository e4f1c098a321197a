# Process trees: every descendant with the same pids, parent links,
# process groups, sessions, zombies, stopped members, shared memory and
# pipes between members. Targets: tests/targets/tree*.c (their header
# comments say what they check), and unmodified Debian programs.
#
# A tree target runs under a child subreaper (build/targets/reaper,
# started by tree_start), so that members killed by a dump are reaped at
# once and their pids are free for the restore (init here reaps orphans
# only every couple of seconds). The *_native tests run a target without
# rtcr, as a control: a failure after restore is then rtcr's.

# ---- helpers ----

# Start a program under a child subreaper: its stdout and stderr go to
# $T/out, the reaper's own messages ("EXIT n" when the program ends) to
# $T/reaper.err. Sets REAPER and PID (the tree's root, the reaper's
# child: a shell that execs the program, so the root keeps its pid).
tree_start() { # NAME|/abs/cmd [args]
	local prog=$1 _outfd i; shift
	[ "${prog#/}" != "$prog" ] || prog="$TGT/$prog"
	export RTCR_TRIGGER="$T/go"
	rm -f "$RTCR_TRIGGER"
	: > "$T/out"
	: > "$T/reaper.err"
	exec {_outfd}>>"$T/out"
	( for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
	  exec "$TGT/reaper" /bin/sh -c 'exec "$0" "$@" 2>&1' "$prog" "$@" 2>>"$T/reaper.err" ) \
		< /dev/null >&$_outfd &
	REAPER=$!
	exec {_outfd}>&-
	track_pid "$REAPER"
	PID=
	for ((i = 0; i < 500; i++)); do
		PID=$(cat "/proc/$REAPER/task/$REAPER/children" 2>/dev/null | awk '{print $1}')
		[ -n "$PID" ] && break
		sleep 0.01
	done
	[ -n "$PID" ] || fail "the reaper started no process"
	track_pid "$PID"
}

# Wait for READY (failing with the output if the root ended first), then
# read the "pids ROOT A B..." line: MEMBERS holds them, each tracked.
tree_ready() { # [seconds, default 10]
	local i n=$(( ${1:-10} * 100 ))
	for ((i = 0; i < n; i++)); do
		grep -q '^READY' "$T/out" && break
		if grep -q '^EXIT' "$T/reaper.err"; then
			cat "$T/out" >&2
			grep -q '^SKIP' "$T/out" && skip "$(sed -n 's/^SKIP: //p' "$T/out")"
			fail "the tree's root ended before READY ($(cat "$T/reaper.err"))"
		fi
		sleep 0.01
	done
	grep -q '^READY' "$T/out" || { cat "$T/out" >&2; fail "no READY in ${1:-10} s"; }
	MEMBERS=$(sed -n 's/^pids //p' "$T/out" | head -n1)
	[ -n "$MEMBERS" ] || fail "the target printed no 'pids' line"
	local p
	for p in $MEMBERS; do track_pid "$p"; done
	set -- $MEMBERS
	assert_eq "$PID" "$1" "root pid printed by the target"
}

# Every live descendant of pid (not itself), depth first.
tree_descendants() { # pid
	local c
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		echo "$c"
		tree_descendants "$c"
	done
}

# One line per pid: "pid ppid pgid sid", the root's ppid (rtcr after a
# restore) shown as "-".
tree_ids() { # pid...
	local p s
	for p; do
		s=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || { echo "$p gone"; continue; }
		set -- $s
		if [ "$p" = "$PID" ]; then echo "$p - $3 $4"; else echo "$p $2 $3 $4"; fi
	done
}

stat_field() { # pid field (from 1 = pid)
	sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk -v f="$2" '{print $(f - 2)}'
}

# The dump of the whole tree; then every member's pid must be free again.
tree_dump() { # extra dump args
	dump "$@"
	local p
	for p in $MEMBERS; do
		assert_gone "$p"
		wait_pid_free "$p"
	done
}

# restore_bg, then wait until every member exists and none is traced.
tree_restore() {
	restore_bg
	local i p ok
	for ((i = 0; i < 500; i++)); do
		ok=1
		for p in $MEMBERS; do
			[ "$(awk '/^TracerPid/ {print $2}' "/proc/$p/status" 2>/dev/null)" = 0 ] || { ok=0; break; }
		done
		[ $ok = 1 ] && return 0
		kill -0 "$RPID" 2>/dev/null || break
		sleep 0.01
	done
	echo "--- restore stderr:" >&2; cat "$T/restore.err" >&2
	echo "--- target output:" >&2; cat "$T/out" >&2
	fail "the restored tree ($MEMBERS) did not appear untraced"
}

# Run a tree target without rtcr: it must pass.
tree_native() { # target [args]
	tree_start "$@"
	tree_ready
	# Members that count until the trigger expect to have counted a bit.
	sleep 0.2
	touch "$T/go"
	wait_for "$T/reaper.err" '^EXIT' 20
	assert_contains "$T/reaper.err" '^EXIT 0' "the root's exit status"
	assert_contains "$T/out" '^PASS' "native verdict"
}

# What each member is doing, for failure messages.
tree_show() { # pid...
	local p
	for p; do
		echo "  $p state $(proc_state "$p") wchan $(cat /proc/$p/wchan 2>/dev/null)" \
			"syscall $(cut -d' ' -f1 /proc/$p/syscall 2>/dev/null)" \
			"fds $(ls -l /proc/$p/fd 2>/dev/null | awk 'NR > 1 {printf "%s=%s ", $9, $11}')"
	done
}

# lib.sh's finish, but failing (not hanging) if rtcr restore has not
# returned within N seconds, with what every member was doing.
tree_finish() { # seconds [expected status, default 0]
	local end=$((SECONDS + $1)) st
	touch "$T/go"
	while [ $SECONDS -le $end ]; do
		st=$(proc_state "$RPID")
		[ -z "$st" ] || [ "$st" = Z ] && break
		sleep 0.01
	done
	st=$(proc_state "$RPID")
	if [ -n "$st" ] && [ "$st" != Z ]; then
		echo "--- target output:" >&2; cat "$T/out" >&2
		echo "--- members, and rtcr restore ($RPID):" >&2
		tree_show $MEMBERS "$RPID" >&2
		fail "the restored tree did not finish within $1 s"
	fi
	finish "${2:-0}"
	assert_contains "$T/out" '^PASS' "target verdict"
}

# Every member of the list is alive, neither stopped nor traced.
tree_assert_running() { # pid...
	local p
	for p; do assert_running "$p"; done
}

# State of each member: R and S (running or sleeping) shown as "run".
tree_states() { # pid...
	local p
	for p; do
		case "$(proc_state "$p")" in
		R|S) echo "$p run";;
		*) echo "$p $(proc_state "$p")";;
		esac
	done
}

# ---- tests ----

test_tree_pipe_shm_zombie() { cycle tree; }

test_tree_pipeline_native() { tree_native tree_pipeline; }

# Three levels connected by full pipes, a session and a process group.
test_tree_pipeline() {
	tree_start tree_pipeline
	tree_ready
	local before after p
	before=$(tree_ids $MEMBERS)
	echo "before:"; echo "$before"
	set -- $MEMBERS
	# From outside too: the child leads its session, the grandchild its
	# group in that session.
	assert_eq "$2 $2" "$(stat_field "$2" 5) $(stat_field "$2" 6)" "child's pgid and sid"
	assert_eq "$3 $2" "$(stat_field "$3" 5) $(stat_field "$3" 6)" "grandchild's pgid and sid"
	tree_dump
	tree_restore
	after=$(tree_ids $MEMBERS)
	echo "after:"; echo "$after"
	assert_eq "$before" "$after" "pid ppid pgid sid of every member"
	tree_assert_running $MEMBERS
	# The in-flight bytes were saved: pipe B was (nearly) full.
	"$RTCR" inspect "$T/img" > "$T/inspect.txt" || fail "rtcr inspect"
	grep 'bytes in flight' "$T/inspect.txt"
	# The grandchild keeps its pipe full; the child forwards in chunks, so
	# its pipe may be short of full by a chunk when frozen.
	awk '/bytes in flight/ {n++; if ($2 < 16384) bad = 1} END {exit !(n == 2 && !bad)}' "$T/inspect.txt" ||
		fail "expected 2 pipes in the image, both well filled (16 KiB+ in flight)"
	tree_finish 20
}

# A stopped child whose stop its parent already collected.
tree_stopped_check_cont() { # child pid
	wait_for "$T/out" '^\(waiting for SIGCONT\|FAIL\)' 10
	assert_not_contains "$T/out" '^FAIL' "the root's check before SIGCONT"
	assert_eq T "$(proc_state "$1")" "the child's state before SIGCONT"
	kill -CONT "$1"
}

test_tree_stopped_native() {
	tree_start tree_stopped
	tree_ready
	set -- $MEMBERS
	assert_eq T "$(proc_state "$2")" "the child's state"
	touch "$T/go"
	tree_stopped_check_cont "$2"
	wait_for "$T/reaper.err" '^EXIT' 10
	assert_contains "$T/out" '^PASS' "native verdict"
}

test_tree_stopped() {
	tree_start tree_stopped
	tree_ready
	set -- $MEMBERS
	assert_eq T "$(proc_state "$2")" "the child's state before the dump"
	local before; before=$(tree_ids $MEMBERS)
	tree_dump
	"$RTCR" inspect "$T/img" > "$T/inspect.txt"
	tree_restore
	assert_eq "$before" "$(tree_ids $MEMBERS)" "pid ppid pgid sid"
	assert_running "$1"
	assert_eq T "$(proc_state "$2")" "the child's state after the restore"
	assert_eq 0 "$(awk '/^TracerPid/ {print $2}' "/proc/$2/status")" "the child's tracer"
	# Still stopped a moment later (not a transient stop of the restore).
	sleep 0.2
	assert_eq T "$(proc_state "$2")" "the child's state 0.2 s after the restore"
	touch "$T/go"
	tree_stopped_check_cont "$2"
	tree_finish 10
}

test_tree_zombie_signaled_native() { tree_native tree_zombie_sig; }

test_tree_zombie_signaled() {
	tree_start tree_zombie_sig
	tree_ready
	set -- $MEMBERS
	assert_eq "Z Z" "$(proc_state "$2") $(proc_state "$3")" "zombies before the dump"
	local before; before=$(tree_ids $MEMBERS)
	tree_dump
	tree_restore
	assert_eq "$before" "$(tree_ids $MEMBERS)" "pid ppid pgid sid"
	assert_eq "Z Z" "$(proc_state "$2") $(proc_state "$3")" "zombies after the restore"
	# The wait status the zombies hold for their parent (stat field 52).
	assert_eq "$(kill -l TERM) $(kill -l USR1)" \
		"$(stat_field "$2" 52) $(stat_field "$3" 52)" "zombies' exit codes (the signal)"
	tree_assert_running "$1" "$4"
	tree_finish 10
}

test_tree_shm_native() { tree_native tree_shm; }

# The inode of the area at addr in pid's maps (shared anonymous memory
# shows as /dev/zero (deleted) with its shmem inode).
map_inode() { # pid addr
	awk -v a="$2-" 'index($1, a) == 1 {print $5 " " $6 " " $7}' "/proc/$1/maps"
}

test_tree_shm() {
	tree_start tree_shm
	tree_ready
	set -- $MEMBERS
	local s1 s2 before
	read -r _ s1 s2 <<< "$(grep '^shm' "$T/out")"
	before=$(tree_ids $MEMBERS)
	tree_dump
	tree_restore
	assert_eq "$before" "$(tree_ids $MEMBERS)" "pid ppid pgid sid"
	# One shmem object per area, the same in every process mapping it.
	local i1 i2
	i1=$(map_inode "$1" "$s1")
	i2=$(map_inode "$2" "$s2")
	echo "S1 $s1: $i1; S2 $s2: $i2"
	[ -n "$i1" ] && [ -n "$i2" ] || fail "S1 or S2 not mapped after the restore"
	assert_eq "$i1" "$(map_inode "$2" "$s1")" "S1 in the child"
	assert_eq "$i1" "$(map_inode "$3" "$s1")" "S1 in the grandchild"
	assert_eq "$i2" "$(map_inode "$3" "$s2")" "S2 in the grandchild"
	assert_ne "$i1" "$i2" "S2's object"
	assert_eq "" "$(map_inode "$1" "$s2")" "S2 in the root (which never had it)"
	tree_assert_running $MEMBERS
	tree_finish 20
}

# ---- unmodified Debian programs ----

# Wait until pid has N descendants; DESC holds them (each tracked).
tree_wait_descendants() { # pid n
	local i
	for ((i = 0; i < 500; i++)); do
		DESC=$(tree_descendants "$1" | tr '\n' ' ')
		[ "$(wc -w <<< "$DESC")" -ge "$2" ] && break
		sleep 0.01
	done
	local p; for p in $DESC; do track_pid "$p"; done
	[ "$(wc -w <<< "$DESC")" -ge "$2" ] || fail "$1 has descendants '$DESC', expected $2"
}

test_tree_debian_sh_pipeline_sha1() {
	# dash runs the loop, cat and sha1sum as its children; the loop forks a
	# sleep every line. The dump comes in the middle of the 400 lines.
	local script='i=0; while [ $i -lt 400 ]; do echo $i; i=$((i+1)); sleep 0.005; done | cat | sha1sum'
	tree_start /bin/sh -c "$script"
	tree_wait_descendants "$PID" 3
	sleep 0.5
	local loop; loop=$(cat /proc/"$PID"/task/*/children | awk '{print $1}')
	MEMBERS="$PID $(tree_descendants "$PID" | tr '\n' ' ')"
	echo "tree: $MEMBERS"
	local p; for p in $MEMBERS; do track_pid "$p"; done
	tree_dump
	"$RTCR" inspect "$T/img" > "$T/inspect.txt" || fail "rtcr inspect"
	sed -n '/^tree/,/^process/p' "$T/inspect.txt"
	grep -q ' sha1sum$' "$T/inspect.txt" || fail "sha1sum not in the image: the pipeline had ended"
	local saved; saved=$(sed -n '/^tree/,/^process/p' "$T/inspect.txt" | awk '/^  / {print $1}' | sort -n | tr '\n' ' ')
	# The members without a short-lived sleep, which may be gone at the end.
	MEMBERS=$(sed -n '/^tree/,/^process/p' "$T/inspect.txt" | awk '/^  / && $2 != "sleep" {print $1}' | tr '\n' ' ')
	restore_bg
	local end=$((SECONDS + 20)) st
	while [ $SECONDS -le $end ] && kill -0 "$RPID" 2>/dev/null; do sleep 0.05; done
	if kill -0 "$RPID" 2>/dev/null; then
		echo "--- restored tree ($saved):" >&2; tree_show $saved "$RPID" >&2
		echo "--- restore stderr:" >&2; cat "$T/restore.err" >&2
		fail "the restored pipeline did not finish in 20 s"
	fi
	wait "$RPID"
	st=$?
	[ $st = 0 ] || { cat "$T/restore.err" >&2; fail "rtcr restore exited $st"; }
	local want; want=$(seq 0 399 | sha1sum)
	echo "out: $(cat "$T/out")"
	assert_eq "$want" "$(grep -- ' -$' "$T/out")" "sha1 of the 400 lines"
}

test_tree_debian_yes_cat() {
	tree_start /bin/sh -c 'yes | cat > /dev/null'
	tree_wait_descendants "$PID" 2
	MEMBERS="$PID $DESC"
	local p before
	before=$(tree_ids $MEMBERS)
	echo "before:"; echo "$before"
	tree_dump
	tree_restore
	assert_eq "$before" "$(tree_ids $MEMBERS)" "pid ppid pgid sid"
	assert_eq "$(tree_descendants "$PID" | sort | tr '\n' ' ')" "$(tr ' ' '\n' <<< "$DESC" | grep . | sort | tr '\n' ' ')" \
		"the root's descendants"
	tree_assert_running $MEMBERS
	# yes and cat make progress: their CPU time (utime + stime) grows.
	local t0 t1
	t0=$(for p in $DESC; do echo $(( $(stat_field "$p" 14) + $(stat_field "$p" 15) )); done)
	sleep 0.5
	t1=$(for p in $DESC; do echo $(( $(stat_field "$p" 14) + $(stat_field "$p" 15) )); done)
	echo "cpu ticks: $(echo $t0) -> $(echo $t1)"
	paste <(echo "$t0") <(echo "$t1") | while read -r a b; do [ "$b" -gt "$a" ] || exit 1; done ||
		fail "a member's CPU time did not advance ($(echo $t0) -> $(echo $t1))"
	tree_assert_running $MEMBERS
	kill -9 $MEMBERS
	wait "$RPID" 2>/dev/null
	return 0
}

# ---- repeated cycles ----

test_tree_ring_native() { tree_native tree_ring "$T/status"; }

ring_count() { awk '{print $1; exit}' "$T/status"; }

ring_wait_above() { # value
	local i v
	for ((i = 0; i < 500; i++)); do
		v=$(ring_count)
		[ -n "$v" ] && [ "$v" -gt "$1" ] && return 0
		sleep 0.01
	done
	fail "round count stayed at '$v', not above $1"
}

test_tree_three_cycles() {
	tree_start tree_ring "$T/status"
	tree_ready
	local k v prev=0 before
	before=$(tree_ids $MEMBERS)
	for k in 1 2 3; do
		ring_wait_above "$prev"
		rm -rf "$T/img"
		tree_dump
		v=$(ring_count)
		restore_detached
		assert_eq "$before" "$(tree_ids $MEMBERS)" "cycle $k: pid ppid pgid sid"
		tree_assert_running $MEMBERS
		ring_wait_above "$v"
		echo "cycle $k: $v rounds at the dump, $(ring_count) after the restore"
		prev=$v
	done
	touch "$T/go"
	wait_for "$T/out" '^\(PASS\|FAIL\)' 10
	assert_not_contains "$T/out" '^FAIL' "target verdict"
	local final; final=$(awk '/^count/ {print $2}' "$T/out")
	[ "$final" -gt "$prev" ] || fail "final count $final not above $prev"
}

# ---- refused dumps: every member left as it was ----

tree_refuse() { # expected message pattern, tree_hold args
	local pat=$1; shift
	tree_start tree_hold "$@"
	tree_ready
	local before states sigs p
	before=$(tree_ids $MEMBERS)
	sigs=$(for p in $MEMBERS; do grep -E '^(SigPnd|ShdPnd|SigBlk)' /proc/$p/status; done)
	mkdir -p "$T/img"
	if "$RTCR" dump -t "$PID" -D "$T/img" > "$T/dump.out" 2>&1; then
		fail "the dump succeeded"
	fi
	cat "$T/dump.out"
	assert_contains "$T/dump.out" "$pat" "refusal message"
	ls -A "$T/img" > "$T/leftover"
	[ ! -s "$T/leftover" ] || fail "files left in the image dir: $(cat "$T/leftover")"
	tree_assert_running $MEMBERS
	assert_eq "$before" "$(tree_ids $MEMBERS)" "pid ppid pgid sid"
	assert_eq "$sigs" "$(for p in $MEMBERS; do grep -E '^(SigPnd|ShdPnd|SigBlk)' /proc/$p/status; done)" \
		"pending and blocked signals"
	sleep 0.1
	tree_assert_running $MEMBERS
	touch "$T/go"
	wait_for "$T/reaper.err" '^EXIT' 10
	assert_contains "$T/out" '^PASS' "the tree's verdict after the refused dump"
	assert_contains "$T/reaper.err" '^EXIT 0' "the root's exit status"
}

test_tree_refuse_outside_pipe_in_grandchild() {
	local pfd
	exec {pfd}< <(exec sleep 1000)
	track_pid $!
	# The grandchild's pid is known only from its READY line: check the
	# message names some member, then that it is the grandchild.
	tree_refuse "fd 5: pipe:\[[0-9]*\] (its other end is outside" pipe grandchild "/proc/$BASHPID/fd/$pfd"
	set -- $MEMBERS
	assert_contains "$T/dump.out" "$3" "the grandchild's pid in the message"
}

test_tree_refuse_io_uring_in_child() {
	tree_refuse "fd [0-9]*: io_uring: not supported" io_uring child
	set -- $MEMBERS
	assert_contains "$T/dump.out" "$2" "the child's pid in the message"
}

test_tree_refuse_userfaultfd_in_grandchild() {
	tree_refuse "fd [0-9]*: .*userfaultfd.*: not supported" userfaultfd grandchild
	set -- $MEMBERS
	assert_contains "$T/dump.out" "$3" "the grandchild's pid in the message"
}

test_tree_refuse_orphan_in_dead_session() {
	# Refused after the injection phase (the tree ids are checked last):
	# the cure must leave every member as it was.
	tree_refuse "in session [0-9]*, neither its parent's nor its own" orphan_session -
	set -- $MEMBERS
	assert_contains "$T/dump.out" "pid $2 " "the orphan's pid in the message"
}

test_tree_hold_native() { tree_native tree_hold none -; }

# ---- restore refused: a member's pid in use ----

test_tree_restore_pid_taken() {
	tree_start tree_hold none -
	tree_ready
	set -- $MEMBERS
	local root=$1 child=$2 gc=$3 i
	dump --leave-running
	tree_assert_running $MEMBERS
	# Every pid is taken: the root's is named.
	"$RTCR" restore -D "$T/img" > "$T/r1.out" 2>&1 && fail "restore over the running tree succeeded"
	cat "$T/r1.out"
	assert_contains "$T/r1.out" "pid $root is in use" "message for the root's pid"
	tree_assert_running $MEMBERS
	# Only the root goes: its pid is free, its child's and grandchild's not.
	local before
	kill -9 "$root"
	wait_pid_free "$root"
	for ((i = 0; i < 500; i++)); do [ "$(stat_field "$child" 4)" = "$REAPER" ] && break; sleep 0.01; done
	assert_eq "$REAPER" "$(stat_field "$child" 4)" "the orphaned child's parent"
	before=$(tree_ids "$child" "$gc")
	"$RTCR" restore -D "$T/img" > "$T/r2.out" 2>&1 &
	local r=$!
	track_pid $r
	for ((i = 0; i < 1000; i++)); do kill -0 $r 2>/dev/null || break; sleep 0.01; done
	kill -0 $r 2>/dev/null && { tree_show "$root" "$r" >&2; fail "rtcr restore still running after 10 s"; }
	wait $r && fail "restore with the child's pid in use succeeded"
	cat "$T/r2.out"
	assert_contains "$T/r2.out" "pid $child is in use" "message naming the child's pid"
	# No half-restored process: the root's pid is not back, and the
	# originals are untouched (now the reaper's children).
	[ ! -e "/proc/$root" ] || fail "pid $root exists after the failed restore (state $(proc_state "$root"))"
	tree_assert_running "$child" "$gc"
	assert_eq "$before" "$(tree_ids "$child" "$gc")" "the originals' pid ppid pgid sid"
	assert_eq "$REAPER" "$(stat_field "$child" 4)" "the orphaned child's parent"
}

# ---- subreaper and orphans ----

test_tree_subreaper_orphan_native() { tree_native tree_reaper; }

test_tree_subreaper_orphan() {
	tree_start tree_reaper
	tree_ready
	set -- $MEMBERS
	assert_eq "$1" "$(stat_field "$3" 4)" "the orphan's parent before the dump"
	assert_eq Z "$(proc_state "$2")" "the exited child"
	local before; before=$(tree_ids $MEMBERS)
	tree_dump
	tree_restore
	assert_eq "$before" "$(tree_ids $MEMBERS)" "pid ppid pgid sid"
	assert_eq "$1" "$(stat_field "$3" 4)" "the orphan's parent after the restore"
	assert_eq Z "$(proc_state "$2")" "the exited child after the restore"
	tree_assert_running "$1" "$3"
	tree_finish 10
}

# ---- other credentials ----

test_tree_creds_native() { tree_native tree_creds; }

tree_creds_of() { # pid...
	local p
	for p; do echo "$p $(grep -E '^(Uid|Gid|Groups)' /proc/$p/status | tr -s '\t\n' '  ')"; done
}

test_tree_creds() {
	tree_start tree_creds
	tree_ready
	local before creds
	before=$(tree_ids $MEMBERS)
	creds=$(tree_creds_of $MEMBERS)
	echo "$creds"
	set -- $MEMBERS
	grep -q "^$2 Uid: 1000 1001 1002 1001 Gid: 1000 1001 1002 1001 Groups: 1000 2000" <<< "$creds" ||
		fail "the child's credentials before the dump"
	tree_dump
	tree_restore
	assert_eq "$before" "$(tree_ids $MEMBERS)" "pid ppid pgid sid"
	assert_eq "$creds" "$(tree_creds_of $MEMBERS)" "Uid/Gid/Groups of every member"
	tree_assert_running $MEMBERS
	tree_finish 10
}

# --pidns: the saved pids are taken (the original still runs), so the
# tree comes back under the init of a new pid namespace, with its pids
# there, and a /proc of that namespace.
test_pidns_restore_while_original_runs() {
	OUT_PIPE=1 start_ready tree
	local pid=$PID kids
	kids=$(cat /proc/$pid/task/*/children)
	dump --leave-running
	assert_running "$pid"
	# Without --pidns: a clear error naming the taken pid.
	"$RTCR" restore -D "$T/img" > "$T/r1.out" 2>&1 && fail "restore succeeded with pid $pid taken"
	assert_contains "$T/r1.out" "pid $pid is in use" "error names the taken pid"
	"$RTCR" restore -D "$T/img" --pidns --detach > "$T/detach.out" 2> "$T/restore.err" ||
		fail "restore --pidns failed: $(cat "$T/restore.err")"
	local hpid; hpid=$(head -n1 "$T/detach.out")
	track_pid "$hpid"
	local init; init=$(awk '{print $4}' /proc/$hpid/stat)
	track_pid "$init"
	assert_ne "$pid" "$hpid" "host pid of the restored root"
	assert_eq "$hpid $pid" "$(awk '/^NSpid/ {print $2, $3}' /proc/$hpid/status)" "NSpid of the root"
	assert_eq "1" "$(awk '/^NSpid/ {print $3}' /proc/$init/status)" "init's pid in the namespace"
	# Every child is there with its saved pid inside.
	local k hk seen=""
	for hk in $(cat /proc/$hpid/task/*/children); do
		track_pid "$hk"
		seen="$seen $(awk '/^NSpid/ {print $3}' /proc/$hk/status)"
	done
	assert_eq "$(echo $kids | tr ' ' '\n' | sort -n | tr '\n' ' ')" \
		"$(echo $seen | tr ' ' '\n' | sort -n | tr '\n' ' ')" "children's pids in the namespace"
	# Both trees run to their own verdict: the original into $T/out, the
	# copy into rtcr's stdout (its inherited stdio), after the pid line.
	touch "$T/go"
	wait_for "$T/out" '^PASS'
	wait_for "$T/detach.out" '^PASS'
	assert_not_contains "$T/detach.out" '^FAIL' "restored copy's verdict"
	# The namespace ends with its tree.
	wait_pid_free "$init"
}

# --pidns with threads (their tids in the namespace) and rtcr waiting:
# its exit status is the root's, carried out of the namespace by init.
test_pidns_threads_exit_status() {
	start_ready thr_regs "$T/status"
	sleep 0.2
	local tids; tids=$(ls /proc/$PID/task | sort -n | tr '\n' ' ')
	dump
	assert_gone "$PID"
	"$RTCR" restore -D "$T/img" --pidns < /dev/null >> "$T/out" 2> "$T/restore.err" &
	RPID=$!
	track_pid "$RPID"
	local i init="" hpid=""
	for ((i = 0; i < 500; i++)); do
		[ -z "$hpid" ] || break
		init=$(cat /proc/$RPID/task/*/children 2>/dev/null | awk '{print $1}')
		[ -n "$init" ] && hpid=$(cat /proc/$init/task/*/children 2>/dev/null | awk '{print $1}')
		sleep 0.01
	done
	[ -n "$hpid" ] || { cat "$T/restore.err" >&2; fail "no restored root under the namespace's init"; }
	track_pid "$init"; track_pid "$hpid"
	for ((i = 0; i < 500; i++)); do
		[ "$(awk '/^TracerPid/ {print $2}' /proc/$hpid/status 2>/dev/null)" = 0 ] && break
		sleep 0.01
	done
	local t seen=""
	for t in /proc/$hpid/task/*; do
		seen="$seen$(awk '/^NSpid/ {print $3}' $t/status) "
	done
	assert_eq "$tids" "$(echo $seen | tr ' ' '\n' | sort -n | tr '\n' ' ')" "thread ids in the namespace"
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
