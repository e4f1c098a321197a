# Shell jobs on terminals (--shell-job): a job started from an
# interactive bash in one terminal (a tmux pane), dumped, restored by
# rtcr run from a bash in another terminal; it reads what is typed there,
# writes there, keeps the settings it set (echo off) and its foreground;
# ^Z stops it and rtcr, fg continues both; when it ends rtcr gives the
# terminal back with its own settings. And the refusals.

# tmux on a private socket in $T; its server and shells are tracked.
tm() { tmux -S "$T/tmux.sock" -f /dev/null "$@"; }

# A terminal NAME with an interactive bash whose prompt is "PROMPT> ".
term() { # name
	command -v tmux > /dev/null || skip "tmux is not installed"
	tm new-session -d -s "$1" -x 100 -y 30 \
		"env -i PATH=$PATH HOME=$T TERM=screen PS1='PROMPT> ' RTCR_TRIGGER=$T/go bash --norc --noprofile -i" ||
		fail "tmux new-session $1"
	track_pid "$(tm display -p -t "$1" '#{pid}')"
	track_pid "$(tm display -p -t "$1" '#{pane_pid}')"
	term_wait "$1" 'PROMPT> '
}
term_tty() { tm display -p -t "$1" '#{pane_tty}'; }
term_shell() { tm display -p -t "$1" '#{pane_pid}'; }
# Type a line (or keys, with -k) into terminal NAME.
term_type() { # name text
	tm send-keys -t "$1" -l "$2" && tm send-keys -t "$1" Enter
}
# Wait until terminal NAME shows a line matching PATTERN; the screen is
# in $T/screen.NAME.
term_wait() { # name pattern [seconds]
	local i n=$(( ${3:-10} * 20 ))
	for ((i = 0; i < n; i++)); do
		tm capture-pane -p -J -t "$1" -S -200 > "$T/screen.$1"
		grep -q -- "$2" "$T/screen.$1" && return 0
		sleep 0.05
	done
	echo "--- terminal $1:" >&2; cat "$T/screen.$1" >&2
	fail "timed out waiting for '$2' in terminal $1"
}

# "echo" or "-echo": the echo setting of a terminal.
echo_mode() { stty -a -F "$1" | tr ' ;' '\n\n' | grep -x -- '-\?echo'; }
stat_field() { awk -v n="$2" '{ sub(/^.*\) /, ""); print $(n - 2) }' "/proc/$1/stat"; }

# Start tty_job [ARG] as a job of the bash in terminal a; sets PID.
start_job() { # [bg]
	term a
	if [ "${1:-}" = bg ]; then
		term_type a "$TGT/tty_job bg &"
	else
		term_type a "$TGT/tty_job"
	fi
	term_wait a 'READY pid='   # a background job's may follow the prompt
	PID=$(sed -n 's/^.*READY pid=\([0-9]*\).*/\1/p' "$T/screen.a")
	track_pid "$PID"
}

# Dump the job with --shell-job; the shell in a reaps it.
dump_job() {
	mkdir -p "$T/img"
	"$RTCR" dump -t "$PID" -D "$T/img" --shell-job > "$T/dump.out" 2>&1 ||
		{ cat "$T/dump.out" >&2; fail "rtcr dump --shell-job exited $?"; }
	wait_pid_free "$PID"
}

# Restore it from the bash in terminal b, which prints RC=status after;
# waits until the job runs again. RTCR_PID: rtcr restore's pid.
restore_job() {
	term b
	term_type b "$RTCR restore -D $T/img --shell-job; echo RC=\$?"
	local i sh; sh=$(term_shell b)
	for ((i = 0; i < 500; i++)); do
		[ -e "/proc/$PID" ] && [ "$(awk '/^TracerPid/ {print $2}' "/proc/$PID/status" 2>/dev/null)" = 0 ] && break
		sleep 0.01
	done
	[ -e "/proc/$PID" ] || { tm capture-pane -p -t b >&2; fail "the job did not come back"; }
	read -r RTCR_PID _ < "/proc/$sh/task/$sh/children"
	[ -n "$RTCR_PID" ] || fail "rtcr restore is not running"
	track_pid "$RTCR_PID"
}

test_tty_foreground_job() {
	start_job
	term_wait a '^STATE echo=0 icanon=1 fg=1 nb9=1'
	assert_eq "-echo" "$(echo_mode "$(term_tty a)")" "terminal a after the job turned echo off"
	dump_job
	inspect_img
	assert_contains "$T/inspect.txt" "fd 0 .*tty .*/dev/pts/[0-9]* rw: shell job terminal, 100x30, foreground, echo off" "fd 0 in the image"
	assert_contains "$T/inspect.txt" "fd 9 .*tty .*rw,nonblock" "fd 9 in the image"

	restore_job
	local tb; tb=$(term_tty b)
	assert_eq "-echo" "$(echo_mode "$tb")" "terminal b with the restored job"
	assert_eq "$PID $PID" "$(stat_field "$PID" 5) $(stat_field "$PID" 8)" "the job's pgid and its terminal's foreground group"
	assert_eq "$(term_shell b)" "$(stat_field "$PID" 6)" "the job's session (the shell in b)"
	term_type b "hello"
	term_wait b '^GOT hello echo=0 icanon=1 fg=1 nb9=1 size=30x100$'
	assert_contains "$T/screen.b" '^VIA9 hello$' "written through fd 9"
	assert_not_contains "$T/screen.b" '^hello$' "echo of what was typed"
	term_type b "quit"
	term_wait b '^RC=0$'
	assert_contains "$T/screen.b" '^BYE$' "the job's end"
	# rtcr gave the terminal back with its own settings (echo on): a
	# command of the shell sees them.
	term_type b "stty -a | tr ' ;' '\n\n' | grep -x -- '-\?echo' | sed 's/^/MODE /'"
	term_wait b '^MODE echo$'
	assert_gone "$RTCR_PID"
}

test_tty_stop_and_fg() {
	start_job
	dump_job
	restore_job
	term_type b "one"
	term_wait b '^GOT one echo=0 icanon=1 fg=1'
	# ^Z stops the job; rtcr stops too and the shell takes the terminal.
	tm send-keys -t b C-z
	term_wait b 'Stopped'
	term_wait b 'PROMPT> '
	assert_eq "T T" "$(proc_state "$PID") $(proc_state "$RTCR_PID")" "job and rtcr stopped"
	assert_eq "$(term_shell b)" "$(stat_field "$PID" 8)" "foreground group while stopped (the shell)"
	term_type b "fg"
	sleep 0.3
	assert_eq "$PID" "$(stat_field "$PID" 8)" "foreground group after fg"
	term_type b "two"
	term_wait b '^GOT two echo=0 icanon=1 fg=1'
	term_type b "quit"
	term_wait b '^BYE$'
	for ((i = 0; i < 200; i++)); do [ -e "/proc/$RTCR_PID" ] || break; sleep 0.01; done
	assert_gone "$RTCR_PID"
}

test_tty_background_job() {
	start_job bg
	dump_job
	"$RTCR" inspect "$T/img" > "$T/inspect.txt" 2>&1
	assert_contains "$T/inspect.txt" "fd 1 .*shell job terminal, 100x30, background" "fd 1 in the image"
	restore_job
	assert_ne "$PID" "$(stat_field "$PID" 8)" "foreground group (the job stays in the background)"
	assert_eq "$PID" "$(stat_field "$PID" 5)" "the job's pgid"
	touch "$T/go"
	term_wait b '^BG fg=0$'
	term_wait b '^RC=0$'
}

test_tty_refused_without_shell_job() {
	start_job
	mkdir -p "$T/img"
	! "$RTCR" dump -t "$PID" -D "$T/img" > "$T/dump.out" 2>&1 || fail "dump without --shell-job succeeded"
	assert_contains "$T/dump.out" "fd 0: /dev/pts/[0-9]* is the terminal of session $(term_shell a) (led by pid $(term_shell a) 'bash', outside" "refusal"
	assert_contains "$T/dump.out" "dump it with --shell-job" "refusal's advice"
	assert_running "$PID"
	[ ! -e "$T/img/image.rtcr" ] || fail "an image was left"
	term_type a "still"
	term_wait a '^GOT still echo=0 icanon=1 fg=1'
}

test_tty_restore_needs_a_terminal() {
	start_job
	dump_job
	# --shell-job with no terminal on stdin, stdout, stderr.
	! "$RTCR" restore -D "$T/img" --shell-job < /dev/null > "$T/r1.out" 2>&1 ||
		{ track_pid "$PID"; fail "restore --shell-job without a terminal succeeded"; }
	assert_contains "$T/r1.out" "none of rtcr restore's stdin, stdout, stderr is its controlling terminal" "message"
	assert_gone "$PID"
	# A shell job's image without --shell-job.
	! "$RTCR" restore -D "$T/img" < /dev/null > "$T/r2.out" 2>&1 ||
		{ track_pid "$PID"; fail "restore without --shell-job succeeded"; }
	assert_contains "$T/r2.out" "fd 0: on /dev/pts/[0-9]*, the terminal of a shell job: restore it with --shell-job" "message"
	assert_gone "$PID"
}

test_tty_pty_pair_refused() {
	start_ready tty_job pty
	mkdir -p "$T/img"
	! "$RTCR" dump -t "$PID" -D "$T/img" --shell-job > "$T/dump.out" 2>&1 || fail "dump of a pty pair succeeded"
	assert_contains "$T/dump.out" "fd 7: pty master (/dev/ptmx): not supported" "refusal"
	assert_running "$PID"
	touch "$T/go"
	wait "$PID" || fail "the target failed after the refused dump"
}
