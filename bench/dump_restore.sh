#!/usr/bin/env bash
# Dump throughput, frozen time and restore time for processes with N MiB
# of touched memory, each beside memcpy and process_vm_readv bandwidth
# measured in the same run (this machine is shared: only ratios are stable).
#
#   bench/dump_restore.sh [sizes in MiB...]      default: 64 512 2048
# Images go to a tmpfs (/dev/shm), like the CRIU figures in ANCHORS.md.
set -u
cd "$(dirname "$0")/.."
make -s build/rtcr build/targets/bigmem build/bench/membw > /dev/null || exit 1
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(64 512 2048)
reps=${REPS:-3}
img=$(mktemp -d /dev/shm/rtcr-bench.XXXXXX)
pid=
trap 'kill -9 $pid 2>/dev/null; rm -rf "$img"' EXIT
export RTCR_TRIGGER=$img/never

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
minimum() { sort -n | head -1; }

printf '%-6s | %-26s | %-24s | %-28s | %s\n' "MiB" "dump GiB/s (x pvr)" "frozen ms (min/med)" "restore ms (min/med) GiB/s" "refs GiB/s: memcpy pvr touch"
for mib in "${sizes[@]}"; do
	refs=$(build/bench/membw "$mib" 3)
	pvr=$(sed 's/.*pvr=\([0-9.]*\).*/\1/' <<< "$refs")
	: > "$img/dump.tsv"; : > "$img/rest.tsv"
	for ((r = 0; r < reps; r++)); do
		( for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
		  exec build/targets/bigmem "$mib" ) > "$img/out" 2>&1 &
		pid=$!
		for ((i = 0; i < 3000; i++)); do grep -q READY "$img/out" 2>/dev/null && break; sleep 0.01; done
		rm -f "$img/image.rtcr"
		build/rtcr dump -t "$pid" -D "$img" --stats 2> "$img/d.err" || { cat "$img/d.err"; exit 1; }
		{ wait $pid; } 2>/dev/null
		grep '^STATS dump' "$img/d.err" | sed 's/.*bytes=\([0-9]*\).*frozen_ns=\([0-9]*\).*total_ns=\([0-9]*\).*/\1 \2 \3/' >> "$img/dump.tsv"
		build/rtcr restore -D "$img" --detach --stats > /dev/null 2> "$img/r.err" || { cat "$img/r.err"; exit 1; }
		grep '^STATS restore' "$img/r.err" | sed 's/.*total_ns=\([0-9]*\).*/\1/' >> "$img/rest.tsv"
		kill -9 $pid 2>/dev/null
		for ((i = 0; i < 500; i++)); do [ -e /proc/$pid ] || break; sleep 0.01; done
	done
	bytes=$(awk '{print $1; exit}' "$img/dump.tsv")
	dump_best=$(awk '{print $3}' "$img/dump.tsv" | minimum)
	gibs=$(awk -v b="$bytes" -v t="$dump_best" 'BEGIN {printf "%.2f", b / (t / 1e9) / 2^30}')
	ratio=$(awk -v g="$gibs" -v p="$pvr" 'BEGIN {printf "%.2f", g / p}')
	fmin=$(awk '{print $2 / 1e6}' "$img/dump.tsv" | minimum)
	fmed=$(awk '{print $2 / 1e6}' "$img/dump.tsv" | median)
	rmin=$(awk '{print $1 / 1e6}' "$img/rest.tsv" | minimum)
	rmed=$(awk '{print $1 / 1e6}' "$img/rest.tsv" | median)
	rgib=$(awk -v b="$bytes" -v t="$rmin" 'BEGIN {printf "%.2f", b / (t / 1e3) / 2^30}')
	printf '%-6s | %6s (%sx pvr)%8s | %8.1f / %-13.1f | %8.1f / %-8.1f %6s     | %s\n' "$mib" "$gibs" "$ratio" "" \
		"$fmin" "$fmed" "$rmin" "$rmed" "$rgib" "$(tr '=' ' ' <<< "$refs" | awk '{print $2, $4, $6}')"
done
