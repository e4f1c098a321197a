#!/usr/bin/env bash
# A real-time periodic task checkpointed on a schedule: how late its
# wakes are while rtcr checkpoints it, against the same task alone in the
# same run, and against a plain stop-and-copy full dump every second.
#
#   bench/periodic_rt.sh               REPS=1 MIB=1024 PAGES=16 PERIOD_US=1000 SECS=10
#                                      INTERVAL=100 KEEP=3 FULL_EVERY_MS=1000 POLICY=fifo|other
#   CASES="base incr incrnk full"     the cases run, in this order (base is the reference);
#                                      also: live (= incrnk with --live), livenow (= live
#                                      with --idle-wait 0: each freeze at once, not in
#                                      the task's idle time)
#   VERBOSE=1                          print every rep's raw lines
#
# Target bench/rttask.c: MIB MiB of touched anonymous memory, a wake every
# PERIOD_US (clock_nanosleep TIMER_ABSTIME, CLOCK_MONOTONIC; SCHED_FIFO 50
# if allowed, else SCHED_OTHER: the policy used is printed), PAGES random
# whole pages written after each wake; it records each wake's lateness
# (actual - intended) in a histogram over a window of SECS s of ticks.
# Per rep, one fresh task per case, cases in this order:
#   base   the task alone for SECS s;
#   incr   rtcr dump --interval INTERVAL --keep KEEP --stats running; the
#          window starts once the first checkpoint (full, arming the
#          dirty tracking) is written, so it holds incremental ones only
#          (the first one's frozen time is reported apart);
#   incrnk the same without --keep (no merge: the chain grows, one
#          image per checkpoint);
#   full   rtcr dump --leave-running --stats (plain full dump, stop and
#          copy) every FULL_EVERY_MS, the first 0.5 s into the window; a
#          dump longer than the period starts the next at once.
# Images in /dev/shm. Frozen times from rtcr's --stats (frozen_ns: seize
# until the task runs again; scan/copy, other = frozen - scan - copy).
# Every process started here is killed by pid on exit.
set -u
cd "$(dirname "$0")/.."
make -s build/rtcr build/bench/rttask > /dev/null || exit 1
reps=${REPS:-1} mib=${MIB:-1024} pages=${PAGES:-16} period_us=${PERIOD_US:-1000}
secs=${SECS:-10} interval=${INTERVAL:-100} keep=${KEEP:-3} full_every=${FULL_EVERY_MS:-1000}
policy=${POLICY:-fifo}
ticks=$((secs * 1000000 / period_us))
W=$(mktemp -d /dev/shm/rtcr-bench-rt.XXXXXX)

tasks=() rtcrs=() loops=()
. "$(dirname "$0")/lib.sh"   # median; its own cleanup below
cleanup() {
	local p i
	for p in "${loops[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	for p in "${rtcrs[@]}"; do kill -INT "$p" 2>/dev/null; done
	for p in "${rtcrs[@]}"; do
		for ((i = 0; i < 500 && $(kill -0 "$p" 2>/dev/null && echo 1 || echo 0); i++)); do sleep 0.01; done
		kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null
	done
	for p in "${tasks[@]}"; do
		kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null
		rm -f /run/rtcr/track/"$p"-*      # rtcr's tracker state of our dead task
	done
	tasks=() rtcrs=() loops=()
}
trap 'cleanup; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM

wait_count() { # file re n seconds
	local i
	for ((i = 0; i < $4 * 100; i++)); do
		[ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
		sleep 0.01
	done
	return 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Start a fresh task in $d; sets pid.
start_task() {
	: > "$d/report"
	build/bench/rttask "$mib" "$d/report" "$d/ctl" "$pages" "$period_us" "$policy" \
		< /dev/null > /dev/null 2>&1 &
	pid=$!; tasks+=("$pid")
	wait_count "$d/report" '^READY' 1 120 || { echo "rttask: not READY: $(cat "$d/report")" >&2; return 1; }
	sed -n 's/^READY .*policy=\([a-z]*\).*/\1/p' "$d/report" > "$W/policy"
}
# Run the measurement window (window 1 of the task); waits for its end.
window() {
	echo "$ticks" > "$d/ctl.tmp" && mv "$d/ctl.tmp" "$d/ctl.run1"
	wait_count "$d/report" '^HIST 1 ' 1 $((secs * 3 + 60)) || { echo "no histogram: $(cat "$d/report")" >&2; return 1; }
}
# "frozen_ns scan_ns copy_ns pages inherited image" per STATS dump line of FILE
dstats() {
	sed -n 's/^STATS dump.* pages=\([0-9]*\) .*image=\([0-9]*\) frozen_ns=\([0-9]*\) copy_ns=\([0-9]*\) scan_ns=\([0-9]*\) total_ns=[0-9]* inherited=\([0-9]*\).*/\3 \5 \4 \1 \6 \2/p' "$1"
}

case_base() {
	start_task || return 1
	window || return 1
}

case_incr() { case_incr_keep --keep "$keep"; }
case_incrnk() { case_incr_keep; }
case_live() { case_incr_keep --live; }
case_livenow() { case_incr_keep --live --idle-wait 0; }
case_incr_keep() { # [--keep N]
	local r n0 n1
	start_task || return 1
	mkdir -p "$d/ck"
	build/rtcr dump -t "$pid" -D "$d/ck" --interval "$interval" "$@" --stats \
		< /dev/null > "$d/rtcr.out" 2> "$d/rtcr.err" &
	r=$!; rtcrs+=("$r")
	if ! wait_count "$d/rtcr.out" 'ckpt-000001: frozen' 1 120; then
		echo "rtcr dump --interval: no first checkpoint:" >&2; cat "$d/rtcr.err" "$d/rtcr.out" >&2; return 1
	fi
	n0=$(grep -c '^STATS dump' "$d/rtcr.err")
	window || return 1
	n1=$(grep -c '^STATS dump' "$d/rtcr.err")
	kill -INT "$r"; wait "$r"
	echo "$n0 $n1 $?" > "$d/ckrange"     # STATS lines n0+1..n1: ended inside the window
	rtcrs=()
	grep -q 'periods missed' "$d/rtcr.out" || { echo "rtcr dump --interval did not end cleanly:" >&2; cat "$d/rtcr.err" >&2; return 1; }
}

case_full() {
	local t0 i l
	start_task || return 1
	(
		t0=$(($(now_ms) + 500)) i=0
		while [ ! -e "$d/stop" ]; do
			l=$((t0 + i * full_every - $(now_ms)))
			[ $l -gt 0 ] && sleep "$(awk -v l=$l 'BEGIN {printf "%.3f", l / 1000}')"
			mkdir -p "$d/f$i"
			build/rtcr dump -t "$pid" -D "$d/f$i" --leave-running --stats < /dev/null \
				> /dev/null 2>> "$d/full.err" || echo "FAILED dump $i" >> "$d/full.err"
			rm -rf "$d/f$i"
			i=$((i + 1))
		done
	) &
	loops+=("$!")
	window || return 1
	touch "$d/stop"; wait "${loops[-1]}"    # the dump under way, if any, ends first
	loops=()
	grep -q FAILED "$d/full.err" && { echo "a full dump failed:" >&2; cat "$d/full.err" >&2; return 1; }
	return 0
}

read -ra cases <<< "${CASES:-base incr incrnk full}"
nfail=0
for ((rp = 1; rp <= reps; rp++)); do
	for c in "${cases[@]}"; do
		d=$W/rep$rp/$c; mkdir -p "$d"
		if ! "case_$c" 2> "$W/err"; then
			echo "FAILED rep $rp case $c: $(cat "$W/err")" >&2
			nfail=$((nfail + 1))
			echo FAILED > "$d/failed"
		fi
		cleanup
		rm -rf "$d/ck"
		[ "${VERBOSE:-0}" = 1 ] && { echo "rep $rp $c:"; cut -c1-400 "$d/report"; } >&2
	done
done

# --- report ---------------------------------------------------------------
hv() { # file key: value of key= in its HIST 1 line
	sed -n 's/^HIST 1 .*[ ]'"$2"'=\([0-9]*\).*/\1/p' "$1" 2>/dev/null
}
mmm() { sort -g | awk '{a[NR]=$1} END {if (NR) printf "%.1f / %.1f / %.1f", a[1], a[int((NR+1)/2)], a[NR]; else print "nan"}'; }
okreps() { local r; for ((r = 1; r <= reps; r++)); do [ -e "$W/rep$r/$1/failed" ] || [ ! -s "$W/rep$r/$1/report" ] || echo $r; done; }
buckets=("<10us" "<50us" "<100us" "<500us" "<1ms" "<2ms" "<5ms" "<10ms" "<50ms" "<100ms" ">=100ms")

printf '\nrtcr %s, %s, %s CPUs, load %s, REPS=%s; task: %s MiB, period %s us, %s pages written per period, policy %s; window %s s (%s ticks)\n' \
	"$(git rev-parse --short HEAD 2>/dev/null)" "$(date +%F)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
	"$reps" "$mib" "$period_us" "$pages" "$(cat "$W/policy" 2>/dev/null)" "$secs" "$ticks"
echo "cases: base = task alone; incr = rtcr dump --interval $interval --keep $keep, incrnk = the same without --keep, live = incrnk with --live, livenow = live with --idle-wait 0 (windows after the first, full, checkpoint); full = rtcr dump --leave-running every $full_every ms"
echo
echo "Lateness histogram (wakes per bucket, summed over the reps), max lateness (ms, min / median / max over reps), missed periods (late wakes + ticks skipped, summed):"
echo
printf '| case |'; for b in "${buckets[@]}"; do printf ' %s |' "$b"; done; printf ' max ms | mean us | missed (late wakes + skipped) | work us/period: mean of those < 1 ms, max (med) |\n'
printf '|---|'; for b in "${buckets[@]}"; do printf -- '---|'; done; printf -- '---|---|---|---|\n'
for c in "${cases[@]}"; do
	rs=$(okreps "$c")
	[ -z "$rs" ] && { echo "| $c | FAILED |"; continue; }
	printf '| %s |' "$c"
	for b in "${buckets[@]}"; do
		s=0; for r in $rs; do v=$(hv "$W/rep$r/$c/report" "b$b"); s=$((s + ${v:-0})); done
		printf ' %s |' "$s"
	done
	mx=$(for r in $rs; do hv "$W/rep$r/$c/report" max_ns; done | awk '{print $1 / 1e6}' | mmm)
	mean=$(for r in $rs; do f=$W/rep$r/$c/report; echo "$(hv "$f" sum_ns) $(hv "$f" wakes)"; done | awk '{s += $1; n += $2} END {printf "%.1f", s / n / 1e3}')
	lw=0 sk=0; for r in $rs; do f=$W/rep$r/$c/report; lw=$((lw + $(hv "$f" late_wakes))); sk=$((sk + $(hv "$f" skipped))); done
	wk=$(for r in $rs; do f=$W/rep$r/$c/report; echo "$(hv "$f" work_short_sum_ns) $(hv "$f" work_short) $(hv "$f" work_max_ns)"; done |
		awk '{printf "%.1f %.1f\n", $1 / $2 / 1e3, $3 / 1e3}')
	printf ' %s | %s | %s (%s + %s) | %s, %s |\n' "$mx" "$mean" $((lw + sk)) "$lw" "$sk" \
		"$(echo "$wk" | awk '{print $1}' | median)" "$(echo "$wk" | awk '{print $2}' | median)"
done
echo
echo "Worst added lateness per rep (max of the case - max of base in the same rep), ms:"
for c in "${cases[@]:1}"; do
	printf '  %s:' "$c"
	for ((r = 1; r <= reps; r++)); do
		a=$(hv "$W/rep$r/$c/report" max_ns); b=$(hv "$W/rep$r/base/report" max_ns)
		[ -n "$a" ] && [ -n "$b" ] && printf ' %.2f' "$(awk -v a="$a" -v b="$b" 'BEGIN {print (a - b) / 1e6}')"
	done
	echo
done
echo
echo "Frozen times rtcr printed (ms, min / median / max over the dumps of all reps):"
fr() { awk '{print $'"$1"' / 1e6}'; }
inwin() { # STATS lines of case $1 that ended inside the window, all reps
	local r f n0 n1
	for r in $(okreps "$1"); do
		f=$W/rep$r/$1; read -r n0 n1 _ < "$f/ckrange"
		dstats "$f/rtcr.err" | sed -n "$((n0 + 1)),${n1}p"
	done
}
first() { local r; for r in $(okreps "$1"); do dstats "$W/rep$r/$1/rtcr.err" | head -1; done; }
fulls() { local r; for r in $(okreps full); do dstats "$W/rep$r/full/full.err"; done; }
for c in incr incrnk live livenow; do
	case " ${cases[*]} " in *" $c "*) ;; *) continue;; esac
	n=$(inwin $c | wc -l)
	echo "  $c, incremental checkpoints in the window ($n, expected ~$((secs * 1000 / interval)) per rep x $reps): frozen $(inwin $c | fr 1 | mmm);" \
		"scan $(inwin $c | fr 2 | mmm); copy $(inwin $c | fr 3 | mmm); other $(inwin $c | awk '{print ($1 - $2 - $3) / 1e6}' | mmm);" \
		"pages stored $(inwin $c | awk '{print $4}' | mmm | sed 's/\.0//g'), image MiB $(inwin $c | awk '{print $6 / 1048576}' | mmm)"
	echo "  $c, first checkpoint (full, arming; before the window): frozen $(first $c | fr 1 | mmm)"
	for r in $(okreps $c); do
		echo "  $c rep $r: rtcr: $(tail -1 "$W/rep$r/$c/rtcr.out" | sed 's| in /dev/shm.*latest),|,|')"
	done
done
[ -n "$(okreps full)" ] && echo "  full, plain full dumps in the window ($(fulls | wc -l)): frozen $(fulls | fr 1 | mmm); copy $(fulls | fr 3 | mmm)"
echo
echo "Wakes >= 1 ms late (ms since the window's start : lateness ms), rep 1:"
for c in "${cases[@]}"; do
	printf '  %s: %s\n' "$c" "$(sed -n 's/^BIG1 //p' "$W/rep1/$c/report" 2>/dev/null | cut -c1-600)"
done
[ $nfail = 0 ]
