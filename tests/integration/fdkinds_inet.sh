# IPv4/IPv6 sockets across a checkpoint (src/files/inet.c): a TCP server
# whose client is outside the tree (established connection restored in
# repair mode, data in flight both ways), both ends of connections inside
# the tree over 127.0.0.1 and ::1, listeners and bound sockets, UDP
# sockets with datagrams queued; native controls; the refusals, and the
# connection left working by a refused or aborted dump.

# ---- a server with its client outside the tree ----

test_fdkinds_inet_server_native() {
	RPID=
	inet_server 4
	inet_server_finish
}

inet_server_cycle() { # fam
	RPID=
	inet_server "$1"
	dump --tcp-established
	assert_gone "$PID"
	assert_running "$CPID"
	inspect_img
	local lo=127.0.0.1; [ "$1" = 6 ] && lo='\[::1\]'
	assert_contains "$T/inspect.txt" "fd 10 .*tcp $lo:$PORT listening, backlog 8, reuseaddr" "listener"
	assert_contains "$T/inspect.txt" "fd 11 .*tcp $lo:$PORT <- $lo:[0-9]* established, 1000 bytes queued in, [1-9][0-9]* out" "connection"
	sleep 0.3    # the client's kernel sees no socket now: still no reset
	assert_running "$CPID"
	restore_bg
	inet_server_finish
}
test_fdkinds_inet_server_cycle() { inet_server_cycle 4; }
test_fdkinds_inet_server_cycle_v6() { inet_server_cycle 6; }

# ---- refusals ----

test_fdkinds_inet_established_refused() {
	RPID=
	inet_server 4
	mkdir -p "$T/img"
	if "$RTCR" dump -t "$PID" -D "$T/img" > "$T/dump.out" 2>&1; then
		fail "dump without --tcp-established succeeded"
	fi
	assert_contains "$T/dump.out" "fd 11: tcp 127.0.0.1:$PORT <- 127.0.0.1:[0-9]* established: needs --tcp-established" "refusal"
	[ ! -e "$T/img/image.rtcr" ] || fail "an image was left behind"
	assert_running "$PID"
	inet_server_finish
}

# The connection went into repair mode, then the dump failed on another
# fd: it leaves repair mode and the connection goes on.
test_fdkinds_inet_aborted_dump() {
	RPID=
	inet_server 4 netlink
	mkdir -p "$T/img"
	if "$RTCR" dump -t "$PID" -D "$T/img" --tcp-established > "$T/dump.out" 2>&1; then
		fail "dump with a netlink socket succeeded"
	fi
	assert_contains "$T/dump.out" "fd 12: netlink socket: not supported" "refusal"
	assert_running "$PID"
	inet_server_finish
}

# --leave-running: repair mode left, the original goes on.
test_fdkinds_inet_leave_running() {
	RPID=
	inet_server 4
	dump --tcp-established --leave-running
	assert_running "$PID"
	inet_server_finish
}

# ---- both ends inside the tree, IPv4 and IPv6 ----

test_fdkinds_inet_pair_native() { native_run fd_inet_pair; }
test_fdkinds_inet_pair_cycle() {
	need_debian nft nftables
	start_ready fd_inet_pair
	dump --tcp-established
	inspect_img
	assert_contains "$T/inspect.txt" "fd 11 .*tcp 127.0.0.1:[0-9]* <- 127.0.0.1:[0-9]* established, [1-9][0-9]* bytes queued in, [1-9][0-9]* out" "accepted v4"
	assert_contains "$T/inspect.txt" "fd 13 .*tcp \[::1\]:[0-9]* <- \[::1\]:[0-9]* established, 2 bytes queued in, 0 out" "accepted v6"
	assert_contains "$T/inspect.txt" "fd 20 .*tcp 127.0.0.1:[0-9]* -> 127.0.0.1:[0-9]* established" "connected v4"
	assert_contains "$T/inspect.txt" "fd 21 .*tcp \[::1\]:[0-9]* -> \[::1\]:[0-9]* established, 2 bytes queued in, 0 out" "connected v6"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_fdkinds_inet_pair_cycle_static() {
	need_debian nft nftables
	start_ready fd_inet_pair-static
	dump --tcp-established
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_fdkinds_inet_pair_refused() {
	start_ready fd_inet_pair
	mkdir -p "$T/img"
	if "$RTCR" dump -t "$PID" -D "$T/img" > "$T/dump.out" 2>&1; then
		fail "dump without --tcp-established succeeded"
	fi
	assert_contains "$T/dump.out" "pid $PID: fd 11: tcp 127.0.0.1:[0-9]* <- 127.0.0.1:[0-9]* established: needs --tcp-established" "refusal"
	assert_running "$PID"
	touch "$T/go"
	wait "$PID" || { cat "$T/out" >&2; fail "target failed after the refused dump"; }
	assert_contains "$T/out" '^PASS' "target verdict"
}

# ---- listeners and bound sockets; a new connection after restore ----

test_fdkinds_inet_listen_native() { native_run fd_inet_tcp listen; }
test_fdkinds_inet_listen_cycle() {
	start_ready fd_inet_tcp listen
	local ports; ports=($(sed -n 's/^PORTS //p' "$T/out"))
	dump
	inspect_img
	assert_contains "$T/inspect.txt" "fd 10 .*tcp 127.0.0.1:${ports[0]} listening, backlog 7, reuseaddr, nodelay, nonblock" "v4 listener"
	assert_contains "$T/inspect.txt" "fd 11 .*tcp \[::\]:${ports[1]} listening, backlog 5, v6only" "v6 listener"
	assert_contains "$T/inspect.txt" "fd 12 .*tcp 127.0.0.1:${ports[2]} bound" "bound"
	assert_contains "$T/inspect.txt" "fd 13 .*tcp \[::\]:0 unbound" "unbound"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_fdkinds_inet_listen_cycle_static() { cycle fd_inet_tcp-static listen; }

# A connection waiting in a listener's queue cannot be put back there.
test_fdkinds_inet_backlog_refused() {
	start_ready fd_inet_tcp listen
	local ports; ports=($(sed -n 's/^PORTS //p' "$T/out"))
	python3 -c "
import socket, time, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
print('CONNECTED', flush=True)
time.sleep(30)" "${ports[0]}" > "$T/py.out" 2>&1 &
	track_pid $!
	wait_for "$T/py.out" CONNECTED 5
	mkdir -p "$T/img"
	if "$RTCR" dump -t "$PID" -D "$T/img" --tcp-established > "$T/dump.out" 2>&1; then
		fail "dump of a listener with a waiting connection succeeded"
	fi
	assert_contains "$T/dump.out" "fd 10: tcp 127.0.0.1:${ports[0]} listening: 1 connection waiting to be accepted: not supported" "refusal"
	assert_running "$PID"
}

# ---- UDP ----

test_fdkinds_inet_udp_native() { native_run fd_inet_udp; }
test_fdkinds_inet_udp_cycle() {
	start_ready fd_inet_udp
	dump
	inspect_img
	assert_contains "$T/inspect.txt" "fd 10 .*udp 127.0.0.1:[0-9]*, 4 datagrams queued (30023 bytes), nonblock" "fd 10"
	assert_contains "$T/inspect.txt" "fd 11 .*udp \[::1\]:[0-9]*, 1 datagram queued (3 bytes)" "fd 11"
	assert_contains "$T/inspect.txt" "fd 12 .*udp 127.0.0.1:[0-9]* -> 127.0.0.1:[0-9]*, 1 datagram queued (12 bytes)" "fd 12"
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_fdkinds_inet_udp_cycle_static() { cycle fd_inet_udp-static; }


# ---- a real server: redis, 100k keys, a client connection open across ----

test_fdkinds_inet_redis() {
	local port digest
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	redis_up 127.0.0.1 "$port"
	digest=$(redis_cli DEBUG DIGEST)
	mkdir -p "$T/img"
	if ! "$RTCR" dump -t "$PID" -D "$T/img" --tcp-established > "$T/dump.out" 2>&1; then
		cat "$T/dump.out" >&2
		fail "dump of redis-server failed"
	fi
	wait "$PID" 2>/dev/null
	assert_gone "$PID"
	inspect_img
	assert_contains "$T/inspect.txt" "tcp 127.0.0.1:$port listening, backlog 511" "redis listener"
	assert_contains "$T/inspect.txt" "tcp 127.0.0.1:$port <- 127.0.0.1:[0-9]* established, 0 bytes queued in, 0 out" "client connection"
	assert_running "$CPID"
	restore_bg
	redis_check "$digest"
}

# rtcr killed (SIGKILL) while the connection is in repair mode: see
# netns.sh (test_netns_lock_dump_killed).
