#!/usr/bin/env bash
# Live migration in steps (docs/design.md, "A live dump that kills"),
# against a stop-and-copy migration of the same kind of process, in the
# same run: the downtime of each (frozen time of the killing dump, plus
# the restore until the process runs; the copy between hosts is not
# measured: one host).
#
#   bench/migrate.sh [MiB ...]   default 512 2048; REPS=3; HOT=1; IMG_DIR=/dev/shm
#
# Target: tests/targets/mem_race (MiB of anonymous memory, every page
# written once; then it rewrites the first HOT % of its pages in a loop,
# pausing 100 us every 64 pages). Per size and rep:
#   live: one process;
#     1. base   rtcr dump --leave-running --live            (it runs on)
#     2. mid    rtcr dump --leave-running --live --prev base (what it wrote during 1)
#     3. final  rtcr dump --live --prev mid                  (kills: the downtime)
#     4. rtcr restore --lazy --detach -D final               (until it runs)
#   stop and copy: a second, identical process;
#     1. rtcr dump                                           (kills: the downtime)
#     2. rtcr restore --lazy --detach
# Figures: medians of frozen and restore times, and the live downtime as a
# ratio to the stop-and-copy one of the same rep.
set -u
cd "$(dirname "$0")/.."
make -s build/rtcr build/targets/mem_race > /dev/null || exit 1
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(512 2048)
reps=${REPS:-3}
hot=${HOT:-1}
W=$(mktemp -d "${IMG_DIR:-/dev/shm}/rtcr-bench-migrate.XXXXXX")
. "$(dirname "$0")/lib.sh"
trap 'cleanup; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM

stat_of() { sed -n "s/^STATS $3.* $2=\([0-9]*\).*/\1/p" "$1" | tail -1; }

# Start a target in $d; sets pid.
start_target() {
	RTCR_TRIGGER="$d/never" build/targets/mem_race $pages $hotp 100 > "$d/out" 2>&1 < /dev/null &
	pid=$!; live+=($pid)
	wait_line "$d/out" '^READY' 120 || { echo "target did not start" >&2; exit 1; }
	sleep 0.5
}

# rtcr dump into $d/NAME with ARGS; appends "mib mode frozen_ns pages" to res.
dump_step() { # name mode args...
	local name=$1 mode=$2; shift 2
	mkdir -p "$d/$name"
	build/rtcr dump -t $pid -D "$d/$name" --stats "$@" > "$d/$name.out" 2>&1 ||
		{ cat "$d/$name.out" >&2; exit 1; }
	echo "$mib $mode $(stat_of "$d/$name.out" frozen_ns dump) $(stat_of "$d/$name.out" pages dump)" >> "$W/res"
}

# Restore $d/NAME lazily, detached; appends "mib mode total_ns" to res;
# then kills the restored process (its page server ends with it).
restore_step() { # name mode
	build/rtcr restore -D "$d/$1" --lazy --detach --stats > "$d/$1.rst" 2>&1 ||
		{ cat "$d/$1.rst" >&2; exit 1; }
	echo "$mib $2 $(stat_of "$d/$1.rst" total_ns restore) 0" >> "$W/res"
	kill -9 $pid 2>/dev/null
	pid_gone $pid
}

for ((r = 1; r <= reps; r++)); do
	for mib in "${sizes[@]}"; do
		pages=$((mib * 256)); hotp=$((pages * hot / 100)); [ $hotp -gt 0 ] || hotp=1
		d="$W/$mib-$r"; mkdir -p "$d"
		start_target
		dump_step base live-base --leave-running --live
		dump_step mid live-mid --leave-running --live --prev "$d/base"
		dump_step final live-final --live --prev "$d/mid"
		{ wait $pid; } 2>/dev/null
		pid_gone $pid
		restore_step final live-restore
		rm -rf "$d"; mkdir -p "$d"
		start_target
		dump_step full sc-final
		{ wait $pid; } 2>/dev/null
		pid_gone $pid
		restore_step full sc-restore
		rm -rf "$d"
	done
done

med() { awk -v m=$1 -v o=$2 '$1==m && $2==o {print $'$3'}' "$W/res" | median; }
printf "%-6s %-13s %12s %12s\n" MiB step ms pages
for mib in "${sizes[@]}"; do
	for mode in live-base live-mid live-final live-restore sc-final sc-restore; do
		printf "%-6s %-13s %12.2f %12s\n" $mib $mode "$(awk -v m=$mib -v o=$mode \
			'$1==m && $2==o {print $3/1e6}' "$W/res" | median)" "$(med $mib $mode 4)"
	done
	ratio=$(for ((r = 1; r <= reps; r++)); do
		awk -v m=$mib -v r=$r '$1==m { k[$2]++; if (k[$2]==r) v[$2]=$3 }
			END { l = v["live-final"] + v["live-restore"]; s = v["sc-final"] + v["sc-restore"];
			      if (s) print l / s }' "$W/res"
	done | median)
	echo "$mib MiB: downtime (killing dump frozen + restore until running), live / stop and copy = $ratio"
done
