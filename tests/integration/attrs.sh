# Process attributes across a checkpoint: cwd, umask, resource limits,
# comm, personality, rseq, prctl flags, parent-death signal, subreaper,
# credentials, interval timers.

status_lines() { # pid regex
	grep -E "$2" "/proc/$1/status"
}

test_cwd() {
	mkdir -p "$T/work dir"
	cycle attrs cwd "$T/work dir"
}

test_cwd_seen_from_outside() {
	mkdir -p "$T/wd"
	start_ready attrs-static cwd "$T/wd"
	dump
	restore_bg
	assert_eq "$T/wd" "$(readlink /proc/$PID/cwd)" "cwd link of the restored process"
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

test_umask() { cycle attrs umask; }

test_rlimits() {
	start_ready attrs rlimits
	cp /proc/$PID/limits "$T/limits.before"
	dump
	restore_bg
	diff "$T/limits.before" /proc/$PID/limits >&2 || fail "/proc/$PID/limits differ"
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}
test_rlimits_static() { cycle attrs-static rlimits; }

test_comm() {
	start_ready attrs comm
	dump
	restore_bg
	assert_eq "rtcr-comm-h2" "$(cat /proc/$PID/comm)" "comm seen from outside"
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

test_personality() { cycle attrs personality; }
test_personality_read_implies_exec() { cycle attrs rie; }

test_rseq() { cycle attrs rseq; }
test_rseq_static() { cycle attrs-static rseq; }

test_no_new_privs() {
	start_ready attrs nnp
	dump
	restore_bg
	assert_eq 1 "$(awk '/^NoNewPrivs/ {print $2}' /proc/$PID/status)" "NoNewPrivs"
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

test_not_dumpable() { cycle attrs dumpable; }

test_pdeathsig() {
	start_ready attrs pdeathsig
	dump
	restore_bg
	touch "$T/go"
	wait_for "$T/out" '^CHECKED'
	assert_not_contains "$T/out" '^FAIL' "target verdict"
	# rtcr restore is the parent: when it dies, the signal comes.
	kill -9 "$RPID"
	wait "$RPID" 2>/dev/null
	wait_for "$T/out" '^PASS'
	local i
	for ((i = 0; i < 200; i++)); do [ -e /proc/$PID ] || break; sleep 0.01; done
	assert_gone "$PID"
}

test_pdeathsig_detach_warns() {
	# With --detach rtcr exits at once: it says it does not keep the signal.
	start_ready attrs pdeathsig
	dump
	"$RTCR" restore -D "$T/img" --detach > "$T/detach.out" 2> "$T/restore.err" ||
		fail "restore --detach: $(cat "$T/restore.err")"
	assert_eq "$PID" "$(cat "$T/detach.out")" "printed pid"
	assert_contains "$T/restore.err" "parent-death signal" "warning"
	assert_running "$PID"
}

test_subreaper() { cycle attrs subreaper; }

# Credentials: the target runs under setpriv; /proc and the target's own
# check must agree before and after.
creds_cycle() { # setpriv options
	# The target (maybe uid 65534) must reach $T/go.
	chmod o+x "$(dirname "$T")" "$T"
	start_ready /usr/bin/setpriv "$@" -- "$TGT/creds"
	status_lines "$PID" '^(Uid|Gid|Groups|Cap|NoNewPrivs)' > "$T/before"
	dump
	restore_bg
	status_lines "$PID" '^(Uid|Gid|Groups|Cap|NoNewPrivs)' > "$T/after"
	diff "$T/before" "$T/after" >&2 || fail "credentials in /proc/$PID/status differ"
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
}

test_creds_nobody() {
	creds_cycle --reuid=65534 --regid=65534 --clear-groups
	assert_contains "$T/out" "^CREDS uid 65534/65534/65534/65534 gid 65534/65534/65534/65534 groups caps eff 0 prm 0" "started as nobody"
}

test_creds_groups() {
	creds_cycle --reuid=65534 --regid=65534 --groups=100,4242,65534
	assert_contains "$T/out" "groups 100,4242,65534 caps" "supplementary groups"
}

test_creds_mixed_ids() {
	creds_cycle --ruid=1000 --euid=65534 --rgid=1001 --egid=65533 --groups=7
	assert_contains "$T/out" "^CREDS uid 1000/65534/" "mixed uids"
}

test_creds_reduced_caps() {
	creds_cycle --inh-caps=-all,+kill,+chown --ambient-caps=+kill \
		--bounding-set=-all,+chown,+kill,+net_bind_service,+setuid,+setgid \
		--securebits=+no_setuid_fixup
	assert_contains "$T/out" "bnd 4e1 amb 20 " "bounding set chown,kill,setgid,setuid,net_bind_service; ambient kill"
}

test_creds_reduced_caps_static() {
	chmod o+x "$(dirname "$T")" "$T"
	start_ready /usr/bin/setpriv --bounding-set=-all,+net_bind_service,+sys_chroot -- "$TGT/creds-static"
	dump
	restore_bg
	finish
	assert_contains "$T/out" '^PASS' "target verdict"
	assert_contains "$T/out" "bnd 40400 " "bounding set"
}

test_itimer_real() { cycle itimer real; }
test_itimer_real_static() { cycle itimer-static real; }
test_itimer_virtual() { cycle itimer virtual; }

# Dumped while the timer has expired and SIGALRM waits, blocked: the
# timer reads 0 then but keeps its interval, re-armed on dequeue.
test_itimer_real_expired_native() {
	start_ready itimer expired
	touch "$T/go"
	wait "$PID" || { cat "$T/out" >&2; fail "itimer expired without a dump failed"; }
}
test_itimer_real_expired() { cycle itimer expired; }
