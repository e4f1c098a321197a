# The network side of a checkpoint (src/files/netlock.c): the network lock
# that keeps a dumped connection silent until its restore (no reset, no
# byte lost while its peer keeps sending), its removal when a dump fails,
# is killed, or is never restored (rtcr unlock), and a server restored in
# another network namespace with the same address. Every test works in
# network namespaces of its own (named with $$), so its nftables tables
# are its own too.

netns_new() { # name
	ip netns add "$1" || fail "ip netns add $1"
	track_netns "$1"
	ip -n "$1" link set lo up || fail "lo up in $1"
}

in_ns() { nsenter --net="/run/netns/$1" "${@:2}"; }

# The lock tables in a namespace, one per line.
lock_tables() { in_ns "$1" nft list tables 2>/dev/null | awk '$3 ~ /^rtcr_lock_/ {print $3}'; }

# An echo server (python3, checkpointed) on 127.0.0.1:7777 in netns $NS,
# and a client there that sends without pause until $T/go2 exists, then
# checks every byte came back. Sets PID, CPID. "netlink": the server
# also holds a netlink socket (which rtcr refuses).
echo_pair() {
	need_debian nft nftables
	need_debian nsenter util-linux
	NS=rtcr-lk$$
	netns_new "$NS"
	cat > "$T/echo.py" <<'PY'
import os, socket, sys
held = open(os.path.join(os.path.dirname(__file__), "held"), "a")
if sys.argv[1:] == ["netlink"]:
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 7777))
l.listen(1)
print("READY", flush=True)
c, _ = l.accept()
while True:
    b = c.recv(65536)
    if not b:
        break
    c.sendall(b)
PY
	cat > "$T/client.py" <<'PY'
import os, socket, sys, threading, time
go = sys.argv[1]
for i in range(500):
    try:
        s = socket.create_connection(("127.0.0.1", 7777))
        break
    except ConnectionRefusedError:
        time.sleep(0.01)
sent = bytearray()
got = bytearray()
err = []
def reader():
    try:
        while True:
            b = s.recv(65536)
            if not b:
                err.append("EOF from the server")
                return
            got.extend(b)
    except Exception as e:
        err.append(repr(e))
t = threading.Thread(target=reader, daemon=True)
t.start()
print("READY", flush=True)
n = 0
try:
    while not os.path.exists(go) and not err:
        chunk = (b"%08d" % n) * 64
        s.sendall(chunk)
        sent.extend(chunk)
        n += 1
        time.sleep(0.002)
except Exception as e:
    err.append(repr(e))
deadline = time.time() + 20
while len(got) < len(sent) and not err and time.time() < deadline:
    time.sleep(0.01)
print("SENT %d CHUNKS %d GOT %d" % (len(sent), n, len(got)), flush=True)
if err:
    print("FAIL: " + err[0], flush=True)
    sys.exit(1)
if bytes(got) != bytes(sent):
    print("FAIL: the echo differs from what was sent", flush=True)
    sys.exit(1)
print("PASS", flush=True)
PY
	start "$(command -v nsenter)" --net="/run/netns/$NS" python3 "$T/echo.py" "$@"
	wait_for "$T/out" '^READY' 5
	in_ns "$NS" python3 "$T/client.py" "$T/go2" > "$T/cli.out" 2>&1 &
	CPID=$!
	track_pid "$CPID"
	wait_for "$T/cli.out" '^READY' 10
	sleep 0.3    # bytes flowing both ways
}

# Dump $PID with its connections from outside its namespace NS (rtcr
# works in it), check the image names NS; inspect in $T/inspect.txt.
dump_from_outside() { # ns
	mkdir -p "$T/img"
	"$RTCR" dump -t "$PID" -D "$T/img" --tcp-established > "$T/dump.out" 2>&1 ||
		{ cat "$T/dump.out" >&2; fail "dump failed"; }
	wait "$PID" 2>/dev/null
	assert_gone "$PID"
	inspect_img
	assert_contains "$T/inspect.txt" "^netns *$1, inode" "the namespace recorded"
}

echo_pair_finish() {
	touch "$T/go2"
	wait "$CPID"
	local rc=$?
	[ $rc = 0 ] || { cat "$T/cli.out" "$T/restore.err" >&2 2>/dev/null; fail "the client failed (exit $rc)"; }
	assert_contains "$T/cli.out" '^PASS' "client verdict"
	grep '^SENT' "$T/cli.out"
}

# The client sends all along the dump, the kill, a second without the
# server and the restore: its retransmissions are dropped by the lock
# instead of being answered with a reset, and every byte comes back.
test_netns_lock_client_keeps_sending() {
	echo_pair
	mkdir -p "$T/img"
	# --leave-running: locked only while the dump runs.
	"$RTCR" dump -t "$PID" -D "$T/img" --tcp-established --leave-running > "$T/dump.out" 2>&1 ||
		{ cat "$T/dump.out" >&2; fail "dump --leave-running failed"; }
	assert_eq "" "$(lock_tables "$NS")" "tables left by --leave-running"
	"$RTCR" inspect "$T/img" > "$T/inspect.txt" 2>&1
	assert_not_contains "$T/inspect.txt" "^net lock" "a lock recorded by --leave-running"
	assert_running "$PID"
	rm -rf "$T/img"
	dump_from_outside "$NS"
	assert_contains "$T/inspect.txt" "^net lock *nft table inet rtcr_lock_[0-9a-f]*, 1 connection" "the lock recorded"
	assert_contains "$T/inspect.txt" "tcp 127.0.0.1:7777 <- 127.0.0.1:[0-9]*" "the locked connection"
	local table; table=$(sed -n 's/^net lock *nft table inet \(rtcr_lock_[0-9a-f]*\),.*/\1/p' "$T/inspect.txt")
	assert_eq "$table" "$(lock_tables "$NS")" "the lock in the namespace"
	sleep 1      # the client's segments meet no socket, only the lock
	assert_running "$CPID"
	restore_bg --netns "$NS"
	assert_eq "" "$(lock_tables "$NS")" "tables left after the restore"
	sleep 0.5    # the connection goes on after the restore
	echo_pair_finish
}

# A dump that fails after the lock was taken, or is left running: no
# lock left, the connection goes on.
test_netns_lock_removed_on_failure() {
	echo_pair netlink
	mkdir -p "$T/img"
	if "$RTCR" dump -t "$PID" -D "$T/img" --tcp-established > "$T/dump.out" 2>&1; then
		fail "dump with a netlink socket succeeded"
	fi
	assert_contains "$T/dump.out" "netlink socket: not supported" "refusal"
	assert_eq "" "$(lock_tables "$NS")" "tables left by the refused dump"
	assert_running "$PID"
	echo_pair_finish
}

# rtcr killed (SIGKILL) after the lock was taken and the connection went
# into repair mode: its guardian takes the connection out of repair mode
# and removes the lock; the server goes on with its client.
test_netns_lock_dump_killed() {
	need_debian nsenter util-linux
	INET_NS=rtcr-lk$$
	netns_new "$INET_NS"
	RPID=
	inet_server 4
	mkdir -p "$T/img"
	RTCR_TEST_KILL_AT=written "$RTCR" dump -t "$PID" -D "$T/img" --tcp-established > "$T/dump.out" 2>&1 &
	local d=$! i
	track_pid "$d"
	wait "$d"
	[ $? = 137 ] || { cat "$T/dump.out" >&2; fail "rtcr was not killed at 'written'"; }
	[ ! -e "$T/img/image.rtcr" ] || fail "an image was left behind"
	for ((i = 0; i < 200; i++)); do
		[ -z "$(lock_tables "$INET_NS")" ] && break
		sleep 0.02
	done
	assert_eq "" "$(lock_tables "$INET_NS")" "tables left by the killed dump"
	for ((i = 0; i < 200; i++)); do
		[ "$(awk '/^TracerPid/ {print $2}' /proc/$PID/status)" = 0 ] && break
		sleep 0.01
	done
	assert_running "$PID"
	inet_server_finish
}

# An image never restored: rtcr unlock removes its lock (a failed restore
# keeps it, so that the next one can still succeed).
test_netns_unlock() {
	echo_pair
	dump --tcp-established
	[ -n "$(lock_tables "$NS")" ] || fail "no lock after the dump"
	# A restore that fails before the sockets exist keeps the lock.
	rm "$T/held"
	timeout 20 "$RTCR" restore -D "$T/img" --netns "$NS" > /dev/null 2> "$T/restore.err" < /dev/null &&
		fail "restore succeeded without a file the server held"
	assert_contains "$T/restore.err" "network lock (nft table inet rtcr_lock_[0-9a-f]*) stays" "the failed restore says"
	[ -n "$(lock_tables "$NS")" ] || fail "the failed restore removed the lock"
	"$RTCR" unlock -D "$T/img" > "$T/unlock.out" 2>&1 || { cat "$T/unlock.out" >&2; fail "rtcr unlock failed"; }
	assert_contains "$T/unlock.out" "network lock rtcr_lock_[0-9a-f]* removed: the 1 connection" "unlock"
	assert_eq "" "$(lock_tables "$NS")" "tables left by rtcr unlock"
	# The client's next segment meets no socket and no lock: a reset.
	touch "$T/go2"
	wait "$CPID" && fail "the client's connection survived an unlocked, unrestored dump"
	assert_contains "$T/cli.out" "ConnectionResetError\|EOF from the server\|BrokenPipe" "the client sees the connection end"
}

# A veth pair between two namespaces, with an address at each end.
veth() { # ns1 if1 addr1 ns2 if2 addr2
	ip link add "$2" netns "$1" type veth peer name "$5" netns "$4" || fail "veth $2-$5"
	ip -n "$1" addr add "$3/24" dev "$2" && ip -n "$1" link set "$2" up &&
		ip -n "$4" addr add "$6/24" dev "$5" && ip -n "$4" link set "$5" up || fail "veth addresses"
}

# redis-server in netns A (10.77.0.1) with a client connected from netns
# C; dumped from outside; A torn down; restored in a new netns B with
# the same address on a new veth to C: the client's open connection goes
# on and the dataset is whole.
test_netns_redis_restored_in_another_netns() {
	need_debian nsenter util-linux
	local A=rtcr-a$$ B=rtcr-b$$ C=rtcr-c$$ REDIS_NS digest i
	netns_new "$A"
	netns_new "$C"
	veth "$A" va$$ 10.77.0.1 "$C" vc$$ 10.77.0.2
	REDIS_NS=$C
	redis_up 10.77.0.1 6379 "$(command -v nsenter)" --net="/run/netns/$A"
	digest=$(redis_cli DEBUG DIGEST)
	dump_from_outside "$A"
	assert_contains "$T/inspect.txt" "tcp 10.77.0.1:6379 <- 10.77.0.2:[0-9]* established" "client connection"
	# A goes, with its end of the veth (and the lock in it).
	ip netns del "$A"
	for ((i = 0; i < 500; i++)); do
		ip -n "$C" link show vc$$ > /dev/null 2>&1 || break
		sleep 0.01
	done
	netns_new "$B"
	veth "$B" vb$$ 10.77.0.1 "$C" vd$$ 10.77.0.2
	assert_running "$CPID"
	restore_bg --netns "$B"
	kill -0 "$RPID" 2> /dev/null || { cat "$T/restore.err" >&2; fail "restore in $B failed"; }
	assert_eq "$(readlink /run/netns/$B 2>/dev/null || stat -L -c net:[%i] /run/netns/$B)" \
		"$(readlink /proc/$PID/ns/net)" "the restored server's network namespace"
	redis_check "$digest"
}
