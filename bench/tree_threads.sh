#!/usr/bin/env bash
# Freeze, dump and restore time against the number of threads of a
# process and the number of processes of a tree, beside a baseline (one
# process, one thread) measured in the same run: the machine is shared,
# so ratios to the baseline and marginal costs are what compare across runs.
#
#   bench/tree_threads.sh            REPS=5, THREADS="8 64", PROCS="8 32"
#   ROOT_MIB=4 CHILD_MIB=1           memory written by the root / each child
#   VERBOSE=1                        also print every rep's figures
#
# Target: build/bench/treethr T P ROOT_MIB CHILD_MIB (a root with T threads
# and ROOT_MIB MiB, P-1 children with CHILD_MIB MiB each); the baseline is
# treethr 1 1, i.e. the first row of both series. Per rep and case:
#   frozen    rtcr dump --stats frozen_ns (seize until the tree is killed)
#   dump      wall time of the rtcr dump process (fork to exit)
#   restore   wall time of rtcr restore --detach (fork to exit: it returns
#             once every process of the tree runs)
# Reps are interleaved across cases (rep 1 of every case, then rep 2...)
# so slow phases of the machine hit every case alike. Images on /dev/shm.
set -u
cd "$(dirname "$0")/.."
make -s build/rtcr build/bench/treethr build/bench/subreaper > /dev/null || exit 1
reps=${REPS:-5}
root_mib=${ROOT_MIB:-4}
child_mib=${CHILD_MIB:-1}
read -ra thr_list <<< "${THREADS:-8 64}"
read -ra proc_list <<< "${PROCS:-8 32}"
W=$(mktemp -d /dev/shm/rtcr-bench-tt.XXXXXX)

# Everything this script started and that may still live: target pids
# (original or restored: same pids) in live, subreapers in srs.
. "$(dirname "$0")/lib.sh"
trap 'cleanup; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM

# Wait until no pid of the list exists (up to 10 s).
pids_gone() {
	local i p left
	for ((i = 0; i < 1000; i++)); do
		left=
		for p in "$@"; do [ -e /proc/$p ] && left="$left $p"; done
		[ -z "$left" ] && return 0
		sleep 0.01
	done
	echo "pids still present:$left" >&2
	return 1
}

cases=("1 1")
for t in "${thr_list[@]}"; do cases+=("$t 1"); done
for p in "${proc_list[@]}"; do cases+=("1 $p"); done
declare -A failed=()
nfailed=0

# One rep of one case: prints "frozen_ns dump_ns restore_ns restore_run_ns"
# on success; on failure describes it on stderr and returns 1.
one_rep() { # threads procs
	local t=$1 np=$2 d=$W/c$1x$2 pids root sr rc i p st
	rm -rf "$d"; mkdir -p "$d/img"
	: > "$d/t.rep"; : > "$d/d.rep"; : > "$d/r.rep"
	build/bench/subreaper "$d/t.rep" build/bench/treethr "$t" "$np" "$root_mib" "$child_mib" \
		< /dev/null > "$d/out" 2>&1 &
	sr=$!; srs+=("$sr")
	if ! wait_line "$d/out" '^READY' 60; then
		echo "target did not get READY: $(cat "$d/out")" >&2; return 1
	fi
	pids=$(sed -n 's/^PIDS //p' "$d/out"); root=${pids%% *}
	live+=($pids)
	timeout -k 5 120 build/bench/subreaper "$d/d.rep" \
		build/rtcr dump -t "$root" -D "$d/img" --stats > "$d/d.out" 2> "$d/d.err"
	rc=$?
	if [ $rc != 0 ] || ! grep -q '^STATS dump' "$d/d.err"; then
		echo "rtcr dump -t $root -D $d/img --stats: exit $rc" >&2; cat "$d/d.err" "$d/d.out" >&2; return 1
	fi
	# The dump killed the tree; the target's subreaper reaps it all.
	wait "$sr" 2>/dev/null
	pids_gone $pids || { echo "dumped tree's pids not freed" >&2; return 1; }
	live=() srs=()

	build/bench/subreaper "$d/r.rep" build/rtcr restore -D "$d/img" --detach --stats \
		< /dev/null > "$d/r.out" 2> "$d/r.err" &
	sr=$!; srs+=("$sr"); live+=($pids)
	if ! wait_line "$d/r.rep" '^EXIT' 120; then
		echo "rtcr restore -D $d/img --detach --stats: no exit after 120 s" >&2
		cat "$d/r.err" >&2; return 1
	fi
	if ! grep -q '^EXIT 0 ' "$d/r.rep" || ! grep -q '^STATS restore' "$d/r.err"; then
		echo "rtcr restore -D $d/img --detach --stats: $(cat "$d/r.rep")" >&2
		cat "$d/r.err" "$d/r.out" >&2; return 1
	fi
	# Whole tree running, untraced, with its threads.
	for p in $pids; do
		st=$(awk '{print $3}' /proc/$p/stat 2>/dev/null)
		case "$st" in
		S|R|D) ;;
		*) echo "restored pid $p: state '${st:-gone}'" >&2; return 1;;
		esac
		[ "$(awk '/^TracerPid/ {print $2}' /proc/$p/status)" = 0 ] ||
			{ echo "restored pid $p still traced" >&2; return 1; }
	done
	i=$(awk '/^Threads/ {print $2}' /proc/$root/status)
	[ "$i" = "$t" ] || { echo "restored root has $i threads, expected $t" >&2; return 1; }

	kill -9 $pids 2>/dev/null
	wait "$sr" 2>/dev/null
	pids_gone $pids || { echo "restored tree's pids not freed" >&2; return 1; }
	live=() srs=()
	printf '%s %s %s %s\n' \
		"$(sed -n 's/^STATS dump.*frozen_ns=\([0-9]*\).*/\1/p' "$d/d.err")" \
		"$(awk '{print $3}' "$d/d.rep")" \
		"$(awk '{print $3}' "$d/r.rep")" \
		"$(sed -n 's/^STATS restore.*total_ns=\([0-9]*\).*/\1/p' "$d/r.err")"
}

for ((r = 1; r <= reps; r++)); do
	for c in "${cases[@]}"; do
		set -- $c
		[ -n "${failed[$c]:-}" ] && continue
		# Not in a subshell: the EXIT trap must see the pids it started.
		if one_rep "$1" "$2" > "$W/rep" 2> "$W/err"; then
			out=$(cat "$W/rep")
			echo "$out" >> "$W/res.$1x$2"
			[ "${VERBOSE:-0}" = 1 ] && echo "rep $r threads=$1 procs=$2: frozen/dump/restore/restore-internal ns: $out" >&2
		else
			failed[$c]="rep $r: $(cat "$W/err")"
			nfailed=$((nfailed + 1))
			echo "FAILED threads=$1 procs=$2 ${failed[$c]}" >&2
		fi
		cleanup
	done
done

# Figures in ms: column k of the results, min or median.
fig() { # case-file column min|median
	[ -s "$1" ] || { echo nan; return; }
	awk -v k="$2" '{printf "%.1f\n", $k / 1e6}' "$1" | { [ "$3" = min ] && minimum || median; }
}
base=$W/res.1x1
printf '\nrtcr %s, %s, %s CPUs, load %s, REPS=%s, root %s MiB, child %s MiB\n\n' \
	"$(git rev-parse --short HEAD 2>/dev/null)" "$(date +%F)" "$(nproc)" \
	"$(cut -d' ' -f1-3 /proc/loadavg)" "$reps" "$root_mib" "$child_mib"
echo "| threads | processes | frozen ms min / med | dump ms min / med | restore ms min / med | x baseline (med) frozen / dump / restore | marginal ms per thread or process (med) frozen / dump / restore |"
echo "|---|---|---|---|---|---|---|"
for c in "${cases[@]}"; do
	set -- $c
	f=$W/res.$1x$2
	if [ -n "${failed[$c]:-}" ] && [ ! -s "$f" ]; then
		echo "| $1 | $2 | FAILED | | | | |"; continue
	fi
	row="| $1 | $2 |"
	k=$(wc -l < "$f")
	[ "$k" -lt "$reps" ] && row="| $1 | $2 ($k of $reps reps) |"
	ratios= slopes=
	n=$(( $1 > $2 ? $1 : $2 ))
	for k in 1 2 3; do
		mn=$(fig "$f" $k min); md=$(fig "$f" $k median); bm=$(fig "$base" $k median)
		row="$row $mn / $md |"
		ratios="$ratios$(awk -v a="$md" -v b="$bm" 'BEGIN {printf "%.2f", a / b}')"
		if [ "$n" -gt 1 ]; then
			slopes="$slopes$(awk -v a="$md" -v b="$bm" -v n="$n" 'BEGIN {printf "%.2f", (a - b) / (n - 1)}')"
		else
			slopes="${slopes}-"
		fi
		[ $k -lt 3 ] && { ratios="$ratios / "; slopes="$slopes / "; }
	done
	[ "$1x$2" = 1x1 ] && ratios="baseline"
	echo "$row $ratios | $slopes |"
done
if [ $nfailed -gt 0 ]; then
	echo
	for c in "${!failed[@]}"; do
		set -- $c
		printf 'FAILED threads=%s processes=%s, %s\n' "$1" "$2" "${failed[$c]}"
	done
fi
# Cross-check: rtcr restore's own "until running" (from its start, after exec).
echo
printf 'rtcr restore --stats until running, ms median:'
for c in "${cases[@]}"; do set -- $c; printf ' %sx%s=%s' "$1" "$2" "$(fig "$W/res.$1x$2" 4 median)"; done
echo
[ $nfailed = 0 ]
