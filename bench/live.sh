#!/usr/bin/env bash
# Live dumps (--live) against stop-and-copy dumps of the same running
# process, in the same run: frozen time of a first (full) checkpoint and
# of an incremental one, for several memory sizes.
#
#   bench/live.sh [MiB ...]     default 64 512 2048; REPS=3
#   HOT=1                       % of the pages the target keeps rewriting
#   IMG_DIR=/dev/shm            where the images go (8 GiB: a disk, /var/tmp)
#
# Target: tests/targets/mem_race (MiB of anonymous memory, every page
# written once; then it rewrites the first HOT % of its pages in a loop,
# pausing 100 us every 64 pages: a process with a working set that goes
# on writing during the dump). Per size and rep, one process:
#   1. full         rtcr dump --leave-running           (stop and copy: reference)
#   2. live         rtcr dump --leave-running --live    (first checkpoint, arms tracking)
#   3. live-inc     rtcr dump --leave-running --live --prev <2>
#   4. inc          rtcr dump --leave-running --prev <3>  (incremental, stop and copy)
# Frozen time from `rtcr dump --stats` (seize until the target runs again).
# Images in $IMG_DIR (/dev/shm). Figures: medians, and each mode as a ratio to the
# stop-and-copy full dump of the same process in the same rep.
set -u
cd "$(dirname "$0")/.."
make -s build/rtcr build/targets/mem_race > /dev/null || exit 1
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(64 512 2048)
reps=${REPS:-3}
hot=${HOT:-1}
W=$(mktemp -d "${IMG_DIR:-/dev/shm}/rtcr-bench-live.XXXXXX")
. "$(dirname "$0")/lib.sh"
trap 'cleanup; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM

stat_of() { sed -n "s/^STATS dump.* $2=\([0-9]*\).*/\1/p" "$1"; }

for ((r = 1; r <= reps; r++)); do
	for mib in "${sizes[@]}"; do
		pages=$((mib * 256)); hotp=$((pages * hot / 100)); [ $hotp -gt 0 ] || hotp=1
		d="$W/$mib-$r"; mkdir -p "$d"
		RTCR_TRIGGER="$d/never" build/targets/mem_race $pages $hotp 100 > "$d/out" 2>&1 < /dev/null &
		pid=$!; live+=($pid)
		wait_line "$d/out" '^READY' 120 || { echo "target did not start" >&2; exit 1; }
		sleep 0.5
		prev=
		for mode in full live live-inc inc; do
			mkdir -p "$d/$mode"
			case $mode in
			full) opts=() ;;
			live) opts=(--live) ;;
			live-inc) opts=(--live --prev "$d/live") ;;
			inc) opts=(--prev "$d/live-inc") ;;
			esac
			build/rtcr dump -t $pid -D "$d/$mode" --leave-running --stats "${opts[@]}" > "$d/$mode.out" 2>&1 ||
				{ cat "$d/$mode.out" >&2; exit 1; }
			echo "$mib $mode $(stat_of "$d/$mode.out" frozen_ns) $(stat_of "$d/$mode.out" pages) $(stat_of "$d/$mode.out" final_pages) $(stat_of "$d/$mode.out" total_ns)" >> "$W/res"
			[ $mode = full ] && rm -rf "$d/full"   # no later link needs it
			sleep 0.3
		done
		kill -9 $pid; wait $pid 2>/dev/null
		rm -rf "$d"
	done
done

printf "%-6s %-9s %12s %9s %12s %12s %12s\n" MiB mode frozen_ms x_full stored_pages frozen_pages total_ms
for mib in "${sizes[@]}"; do
	for mode in full live live-inc inc; do
		f=$(awk -v m=$mib -v o=$mode '$1==m && $2==o {print $3/1e6}' "$W/res" | median)
		ratio=$(for ((r = 1; r <= reps; r++)); do
			awk -v m=$mib -v o=$mode -v r=$r '$1==m && $2=="full" {n++; if (n==r) a=$3} $1==m && $2==o {k++; if (k==r) b=$3} END {if (a) print b/a}' "$W/res"
		done | median)
		p=$(awk -v m=$mib -v o=$mode '$1==m && $2==o {print $4}' "$W/res" | median)
		fp=$(awk -v m=$mib -v o=$mode '$1==m && $2==o {print $5}' "$W/res" | median)
		t=$(awk -v m=$mib -v o=$mode '$1==m && $2==o {print $6/1e6}' "$W/res" | median)
		printf "%-6s %-9s %12.2f %9.3f %12s %12s %12.1f\n" $mib $mode $f $ratio $p $fp $t
	done
done
