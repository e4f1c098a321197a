#!/usr/bin/env bash
# Lazy restore: time until the process runs again, and until all its
# pages are in, for processes with N MiB of touched memory; beside an
# eager (normal) restore of the same image in the same run, the reference.
#
#   bench/lazy.sh [sizes in MiB...]      default: 64 512 2048
#   LAZY_BENCH_8G=1 bench/lazy.sh        adds 8192 (needs ~17 GiB free)
#   REPS=3                               runs per size (min and median)
#
# Per run: rtcr restore --stats (eager), then rtcr restore --lazy --stats
# of the same image (in /dev/shm), each waiting for its process, which is
# killed once measured. Reported: "until running" (rtcr restore's start
# until the process runs, its STATS total_ns) for both, and for lazy the
# time until the last page arrived (the server's STATS lazy last_page_ns,
# counted from the resume, plus the time until running).
set -u
cd "$(dirname "$0")/.."
make -s build/rtcr build/targets/bigmem > /dev/null || exit 1
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(64 512 2048)
[ "${LAZY_BENCH_8G:-0}" = 1 ] && [ $# = 0 ] && sizes+=(8192)
reps=${REPS:-3}
W=$(mktemp -d /dev/shm/rtcr-bench-lazy.XXXXXX)
source bench/lib.sh
trap 'cleanup; rm -rf "$W"' EXIT
export RTCR_TRIGGER=$W/never

# One restore of $W/img with args; sets RUN_NS (until running) and, with
# --lazy, LAST_NS (until the last page, from rtcr restore's start).
restore_once() {
	: > "$W/r.err"
	build/rtcr restore -D "$W/img" --stats "$@" > /dev/null 2> "$W/r.err" &
	local r=$!
	# rtcr, and the restored process (its pid is the dumped one's) with its
	# page server under it, are killed on any exit.
	live+=("$r" "$pid")
	wait_line "$W/r.err" '^STATS restore' 60 || { cat "$W/r.err"; exit 1; }
	RUN_NS=$(sed -n 's/^STATS restore .*total_ns=\([0-9]*\).*/\1/p' "$W/r.err")
	LAST_NS=
	if [ "$*" = --lazy ]; then
		wait_line "$W/r.err" '^STATS lazy' 120 || { cat "$W/r.err"; exit 1; }
		LAST_NS=$(( RUN_NS + $(sed -n 's/^STATS lazy .*last_page_ns=\([0-9]*\).*/\1/p' "$W/r.err") ))
	fi
	kill -9 "$pid"
	wait "$r" 2>/dev/null
	live=()
}

printf '%-6s | %-22s | %-22s | %-24s | %s\n' MiB "eager: running ms" "lazy: running ms" \
	"lazy: all pages in ms" "lazy all-in / eager"
for mib in "${sizes[@]}"; do
	: > "$W/e.tsv"; : > "$W/l.tsv"; : > "$W/a.tsv"
	rm -rf "$W/img"; mkdir -p "$W/img"
	( for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
	  exec build/targets/bigmem "$mib" ) > "$W/out" 2>&1 &
	pid=$!
	live+=("$pid")
	wait_line "$W/out" READY 120 || { echo "bigmem $mib did not start"; exit 1; }
	build/rtcr dump -t "$pid" -D "$W/img" 2> "$W/d.err" || { cat "$W/d.err"; exit 1; }
	{ wait "$pid"; } 2>/dev/null
	live=()
	for ((r = 0; r < reps; r++)); do
		restore_once
		echo "$RUN_NS" >> "$W/e.tsv"
		restore_once --lazy
		echo "$RUN_NS" >> "$W/l.tsv"
		echo "$LAST_NS" >> "$W/a.tsv"
	done
	ms() { awk '{print $1 / 1e6}' "$1" | "$2"; }
	printf '%-6s | %8.1f / %-11.1f | %8.2f / %-11.2f | %8.1f / %-13.1f | %.2f\n' "$mib" \
		"$(ms "$W/e.tsv" minimum)" "$(ms "$W/e.tsv" median)" \
		"$(ms "$W/l.tsv" minimum)" "$(ms "$W/l.tsv" median)" \
		"$(ms "$W/a.tsv" minimum)" "$(ms "$W/a.tsv" median)" \
		"$(awk -v a="$(ms "$W/a.tsv" median)" -v e="$(ms "$W/e.tsv" median)" 'BEGIN {print a / e}')"
	rm -rf "$W/img"
done
