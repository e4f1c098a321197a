# Unix domain sockets across a checkpoint (src/files/unix.c): socketpairs
# between a parent and its child with data both ways, a listening server
# with an accepted and a waiting connection, named datagram sockets; the
# same targets without a dump as controls; the refusals; --unix-reconnect.

# ---- socketpairs: stream, dgram, seqpacket, shutdown, closed peer ----

test_fdkinds_unix_pair_native() { native_run fd_unix_pair; }
test_fdkinds_unix_pair_cycle() { cycle fd_unix_pair; }
test_fdkinds_unix_pair_cycle_static() { cycle fd_unix_pair-static; }

test_fdkinds_unix_pair_in_image() {
	start_ready fd_unix_pair
	local child; child=$(sed -n 's/^pids [0-9]* //p' "$T/out")
	dump
	inspect_img
	assert_contains "$T/inspect.txt" "fd 10 .*unix stream socketpair with pid $child fd 11, 300 bytes queued in" "fd 10"
	assert_contains "$T/inspect.txt" "fd 12 .*unix dgram socketpair with pid $child fd 13, 3 messages (2101 bytes) queued in, nonblock" "fd 12"
	assert_contains "$T/inspect.txt" "fd 14 .*unix seqpacket @[0-9a-f]\{5\} connected to pid $child fd 15, passcred" "fd 14 (autobound by SO_PASSCRED)"
	assert_contains "$T/inspect.txt" "fd 16 .*unix stream socketpair with pid $child fd 17, shut wr, 4 bytes queued in" "fd 16"
	assert_contains "$T/inspect.txt" "fd 18 .*unix stream connected, its peer closed, shut rdwr, 4 bytes queued in" "fd 18"
	assert_contains "$T/inspect.txt" "fd 13 .*unix dgram socketpair with pid $PID fd 12, 2 messages (7 bytes) queued in" "fd 13"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

# ---- a server: listening, one connection accepted, one waiting ----

test_fdkinds_unix_server_native() { native_run fd_unix_server "$T/srv.sock"; }
test_fdkinds_unix_server_cycle() {
	start_ready fd_unix_server "$T/srv.sock"
	dump
	inspect_img
	assert_contains "$T/inspect.txt" "fd 10 .*unix stream $T/srv.sock listening, backlog 16, 1 waiting" "listener"
	assert_contains "$T/inspect.txt" "fd 11 .*unix stream $T/srv.sock connected to pid [0-9]* fd 20, 12 bytes queued in" "accepted"
	assert_contains "$T/inspect.txt" "fd 21 .*unix stream connecting to pid $PID fd 10 (not accepted yet)" "waiting client"
	# The original's socket file is left behind: restore replaces it.
	[ -S "$T/srv.sock" ] || fail "no stale socket file at $T/srv.sock"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_fdkinds_unix_server_cycle_static() { cycle fd_unix_server-static "$T/srv.sock"; }

# Something else than a socket at the path at restore: refused, by name.
test_fdkinds_unix_server_path_taken() {
	start_ready fd_unix_server "$T/srv.sock"
	dump
	rm -f "$T/srv.sock"
	echo data > "$T/srv.sock"
	timeout 20 "$RTCR" restore -D "$T/img" > "$T/fail.out" 2> "$T/fail.err"
	local rc=$?
	[ $rc != 0 ] || { track_pid "$PID"; fail "restore succeeded"; }
	[ $rc != 124 ] || fail "restore hung"
	assert_contains "$T/fail.err" "fd 10: unix socket: $T/srv.sock exists and is not a socket" "message"
	assert_eq data "$(cat "$T/srv.sock")" "the file at the path"
	assert_gone "$PID"
}

# ---- datagrams with names (abstract and path) ----

test_fdkinds_unix_dgram_native() { native_run fd_unix_dgram "$T"; }
test_fdkinds_unix_dgram_cycle() {
	start_ready fd_unix_dgram "$T"
	dump
	inspect_img
	assert_contains "$T/inspect.txt" "fd 10 .*unix dgram @rtcr-dgram-$PID, 4 messages (1513 bytes) queued in$" "abstract socket"
	assert_contains "$T/inspect.txt" "fd 13 .*unix dgram connected to pid $PID fd 10$" "connected socket"
	assert_contains "$T/inspect.txt" "fd 12 .*unix dgram $T/cli.sock" "path socket"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_fdkinds_unix_dgram_cycle_static() { cycle fd_unix_dgram-static "$T"; }

# ---- refusals ----

test_fdkinds_unix_rights_refused() {
	dump_refused "fd 11: unix dgram socket: a message in flight carries file descriptors (SCM_RIGHTS): not supported" \
		"" fd_unix_dgram rights
}

# An echo server outside the tree, for the client side tests. Sets SRV.
unix_outside_server() {
	local out="$T/srv.out"
	"$TGT/fd_unix_server" listen "$T/echo.sock" > "$out" 2>&1 &
	SRV=$!
	track_pid "$SRV"
	wait_for "$out" '^READY' 5
}

test_fdkinds_unix_outside_refused() {
	unix_outside_server
	dump_refused "fd 10: unix stream socket connected to a process outside the tree (peer ino [0-9]*, path $T/echo.sock): not supported" \
		"" fd_unix_server client "$T/echo.sock"
	assert_contains "$T/dump.out" "--unix-reconnect" "the hint"
}

test_fdkinds_unix_reconnect() {
	unix_outside_server
	start_ready fd_unix_server client "$T/echo.sock"
	dump --unix-reconnect
	inspect_img
	assert_contains "$T/inspect.txt" "fd 10 .*unix stream connected to $T/echo.sock outside the tree: reconnected at restore" "inspect"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
	assert_running "$SRV"
}

# A client from outside the tree waiting in the server's backlog.
test_fdkinds_unix_waiting_outside_refused() {
	start_ready fd_unix_server "$T/srv.sock"
	local srv=$PID
	# Connects, sends, then blocks waiting for an answer that never comes.
	"$TGT/fd_unix_server" client "$T/srv.sock" > "$T/cli.out" 2>&1 &
	track_pid $!
	# Its connection is the second one waiting (ss: Recv-Q of a listener).
	local i
	for ((i = 0; i < 500; i++)); do
		[ "$(ss -xlH | awk -v p="$T/srv.sock" '$5 == p {print $3}')" = 2 ] && break
		sleep 0.01
	done
	[ $i -lt 500 ] || fail "the outside client did not get into the backlog"
	mkdir -p "$T/img"
	if "$RTCR" dump -t "$srv" -D "$T/img" > "$T/dump.out" 2>&1; then
		fail "dump succeeded"
	fi
	assert_contains "$T/dump.out" "fd 10: unix stream socket $T/srv.sock listening: a connection waiting in its backlog from a process outside the tree (client ino [0-9]*): not supported" "message"
	[ ! -e "$T/img/image.rtcr" ] || fail "an image was left behind"
	assert_running "$srv"
}
