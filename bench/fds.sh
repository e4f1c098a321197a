#!/usr/bin/env bash
# Dump and restore time against the number of fds a process holds, beside
# a baseline (10 fds) measured in the same run: the machine is shared, so
# ratios to the baseline and the marginal cost per fd are what compare
# across runs.
#
#   bench/fds.sh               REPS=5, FDS="1000 8000" (beside the 10-fd baseline)
#   VERBOSE=1                  also print every rep's figures
#
# Target: build/bench/fdholder N DIR: N fds of mixed kinds in groups of
# ten (4 regular files, a pipe with 16 bytes in flight, an eventfd, a
# unix socketpair with 16 bytes queued, an epoll watching 2 of them).
# The top case is 8000, not 10000: restore keeps one carrier fd per open
# file description above the target's highest fd, and its own copy of
# each unix socket above those while it builds them, so N fds of N
# descriptions need about 2.4N fds in rtcr restore; the hard
# RLIMIT_NOFILE here is 20000 and root lacks CAP_SYS_RESOURCE to raise
# it (9900 fails: "placing its socketpair above fd 19808: Too many open
# files").
# Per rep and case:
#   frozen    rtcr dump --stats frozen_ns (seize until the process is killed)
#   dump      wall time of the rtcr dump process (fork to exit)
#   restore   wall time of rtcr restore --detach (fork to exit: it returns
#             once the process runs)
# Reps are interleaved across cases. Images on /dev/shm.
set -u
cd "$(dirname "$0")/.."
make -s build/rtcr build/bench/fdholder build/bench/subreaper > /dev/null || exit 1
reps=${REPS:-5}
read -ra fd_list <<< "${FDS:-1000 8000}"
W=$(mktemp -d /dev/shm/rtcr-bench-fds.XXXXXX)
hard=$(ulimit -Hn)

# Everything this script started that may still live: target pids
# (original or restored: the same pid) in live, subreapers in srs.
. "$(dirname "$0")/lib.sh"
trap 'cleanup; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM

cases=(10 "${fd_list[@]}")
declare -A failed=()
nfailed=0

# One rep of one case: prints "frozen_ns dump_ns restore_ns" on success;
# on failure describes it on stderr and returns 1.
one_rep() { # nfds
	local n=$1 d=$W/c$1 pid sr rc have
	rm -rf "$d"; mkdir -p "$d/img" "$d/files"
	: > "$d/t.rep"; : > "$d/d.rep"; : > "$d/r.rep"
	build/bench/subreaper "$d/t.rep" build/bench/fdholder "$n" "$d/files" < /dev/null > "$d/out" 2>&1 &
	sr=$!; srs+=("$sr")
	if ! wait_line "$d/out" '^READY' 60; then
		echo "target did not get READY: $(cat "$d/out")" >&2; return 1
	fi
	pid=$(sed -n 's/^PIDS //p' "$d/out")
	live+=("$pid")
	have=$(ls /proc/$pid/fd | wc -l)
	timeout -k 5 300 build/bench/subreaper "$d/d.rep" \
		build/rtcr dump -t "$pid" -D "$d/img" --stats > "$d/d.out" 2> "$d/d.err"
	rc=$?
	if [ $rc != 0 ] || ! grep -q '^STATS dump' "$d/d.err"; then
		echo "rtcr dump -t $pid -D $d/img --stats: exit $rc" >&2; cat "$d/d.err" "$d/d.out" >&2; return 1
	fi
	wait "$sr" 2>/dev/null
	pid_gone "$pid" || return 1
	live=() srs=()

	build/bench/subreaper "$d/r.rep" build/rtcr restore -D "$d/img" --detach --stats \
		< /dev/null > "$d/r.out" 2> "$d/r.err" &
	sr=$!; srs+=("$sr"); live+=("$pid")
	if ! wait_line "$d/r.rep" '^EXIT' 300; then
		echo "rtcr restore -D $d/img --detach --stats: no exit after 300 s" >&2
		cat "$d/r.err" >&2; return 1
	fi
	if ! grep -q '^EXIT 0 ' "$d/r.rep"; then
		echo "rtcr restore -D $d/img --detach --stats: $(cat "$d/r.rep")" >&2
		cat "$d/r.err" "$d/r.out" >&2; return 1
	fi
	# Running, untraced, with every fd back.
	case "$(awk '{print $3}' /proc/$pid/stat 2>/dev/null)" in
	S|R) ;;
	*) echo "restored pid $pid: not running" >&2; return 1;;
	esac
	[ "$(awk '/^TracerPid/ {print $2}' /proc/$pid/status)" = 0 ] ||
		{ echo "restored pid $pid still traced" >&2; return 1; }
	[ "$(ls /proc/$pid/fd | wc -l)" = "$have" ] ||
		{ echo "restored pid $pid has $(ls /proc/$pid/fd | wc -l) fds, expected $have" >&2; return 1; }
	kill -9 "$pid" 2>/dev/null
	wait "$sr" 2>/dev/null
	pid_gone "$pid" || return 1
	live=() srs=()
	printf '%s %s %s\n' \
		"$(sed -n 's/^STATS dump.*frozen_ns=\([0-9]*\).*/\1/p' "$d/d.err")" \
		"$(awk '{print $3}' "$d/d.rep")" "$(awk '{print $3}' "$d/r.rep")"
}

for ((r = 1; r <= reps; r++)); do
	for c in "${cases[@]}"; do
		[ -n "${failed[$c]:-}" ] && continue
		if one_rep "$c" > "$W/rep" 2> "$W/err"; then
			out=$(cat "$W/rep")
			echo "$out" >> "$W/res.$c"
			[ "${VERBOSE:-0}" = 1 ] && echo "rep $r fds=$c: frozen/dump/restore ns: $out" >&2
		else
			failed[$c]="rep $r: $(cat "$W/err")"
			nfailed=$((nfailed + 1))
			echo "FAILED fds=$c ${failed[$c]}" >&2
		fi
		cleanup
	done
done

fig() { # case-file column min|median  (ms)
	[ -s "$1" ] || { echo nan; return; }
	awk -v k="$2" '{printf "%.1f\n", $k / 1e6}' "$1" | { [ "$3" = min ] && minimum || median; }
}
base=$W/res.10
printf '\nrtcr %s, %s, %s CPUs, load %s, REPS=%s, hard RLIMIT_NOFILE %s\n\n' \
	"$(git rev-parse --short HEAD 2>/dev/null)" "$(date +%F)" "$(nproc)" \
	"$(cut -d' ' -f1-3 /proc/loadavg)" "$reps" "$hard"
echo "| fds | frozen ms min / med | dump ms min / med | restore ms min / med | x baseline (med) frozen / dump / restore | marginal µs per fd (med) frozen / dump / restore |"
echo "|---|---|---|---|---|---|"
for c in "${cases[@]}"; do
	f=$W/res.$c
	if [ ! -s "$f" ]; then echo "| $c | FAILED | | | | |"; continue; fi
	row="| $c |"
	k=$(wc -l < "$f")
	[ "$k" -lt "$reps" ] && row="| $c ($k of $reps reps) |"
	ratios= slopes=
	for k in 1 2 3; do
		mn=$(fig "$f" $k min); md=$(fig "$f" $k median); bm=$(fig "$base" $k median)
		row="$row $mn / $md |"
		ratios="$ratios$(awk -v a="$md" -v b="$bm" 'BEGIN {printf "%.2f", a / b}')"
		if [ "$c" -gt 10 ]; then
			slopes="$slopes$(awk -v a="$md" -v b="$bm" -v n="$c" 'BEGIN {printf "%.1f", (a - b) * 1000 / (n - 10)}')"
		else
			slopes="${slopes}-"
		fi
		[ $k -lt 3 ] && { ratios="$ratios / "; slopes="$slopes / "; }
	done
	[ "$c" = 10 ] && ratios="baseline"
	echo "$row $ratios | $slopes |"
done
if [ $nfailed -gt 0 ]; then
	echo
	for c in "${!failed[@]}"; do printf 'FAILED fds=%s, %s\n' "$c" "${failed[$c]}"; done
fi
[ $nfailed = 0 ]
