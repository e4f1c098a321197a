#!/usr/bin/env bash
# Incremental checkpoints: cost of arming the dirty-page tracking, frozen
# time / size of incremental dumps against the amount written, the
# target's write slowdown while tracked, and restore through the chain;
# every figure beside a reference measured in the same run (the machine
# is shared: ratios are what compare across runs).
#
#   bench/incremental.sh [MiB ...]     default 64 512 2048; REPS=3
#   PCTS="1 10 50"                     % of pages written before each incremental dump
#   WPCT=10                            % written for the write-slowdown figure (one of PCTS)
#   VERBOSE=1                          print every rep's figures
#   LIVE=1                             the incremental dumps with --live (pre-copy)
#
# Target bench/dirtier.c (N MiB, every byte written; on a trigger file it
# rewrites exactly P % of its pages chosen at random and reports the time
# of the rewrites). Per rep and size, one process:
#   1. plain   rtcr dump --leave-running                  (baseline full dump, not tracked)
#   2. write WPCT % untracked                             (reference write time)
#   3. full    rtcr dump --leave-running --track-mem      (full dump + arming) -> F
#   4. for P in PCTS: write P % (tracked), then
#              rtcr dump --leave-running --prev <previous link>  -> a chain F <- I1 <- I10 <- I50
#   5. kill it; restore F (full image) and, after that one is killed,
#      restore the last link (through the chain); each restored process
#      checks all its pages against its own bookkeeping.
# Dump figures from `rtcr dump --stats` (frozen_ns: seize until the target
# runs again; total_ns: rtcr dump's start to its end; image bytes; pages
# stored; inherited = pages left to the parent). Restore: wall time of
# `rtcr restore --detach` (fork to exit: it returns when the process runs
# with all its pages). Reps are interleaved across sizes. Images in /dev/shm.
set -u
cd "$(dirname "$0")/.."
make -s build/rtcr build/bench/dirtier build/bench/subreaper > /dev/null || exit 1
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(64 512 2048)
reps=${REPS:-3}
read -ra pcts <<< "${PCTS:-1 10 50}"
wpct=${WPCT:-10}
case " ${pcts[*]} " in *" $wpct "*) ;; *) echo "WPCT=$wpct must be one of PCTS=${pcts[*]}" >&2; exit 2;; esac
W=$(mktemp -d /dev/shm/rtcr-bench-incr.XXXXXX)

# What this script started and that may still live: target pids (original
# or restored: same pid) and the subreapers they run under.
. "$(dirname "$0")/lib.sh"
trap 'cleanup; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM

# Wait until FILE has at least N lines matching RE (up to S seconds).
wait_count() { # file re n seconds
	local i
	for ((i = 0; i < $4 * 200; i++)); do
		[ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
		sleep 0.005
	done
	return 1
}
# "frozen_ns total_ns image_bytes pages inherited scan_ns copy_ns" of a STATS dump line
# (dump_one adds other_ns = frozen - scan - copy: seize, /proc reads, injection, arming).
dstats() {
	sed -n 's/^STATS dump.* pages=\([0-9]*\) .*image=\([0-9]*\) frozen_ns=\([0-9]*\) copy_ns=\([0-9]*\) scan_ns=\([0-9]*\) total_ns=\([0-9]*\) inherited=\([0-9]*\).*/\3 \6 \2 \1 \7 \5 \4/p' "$1"
}

# rtcr dump into $d/NAME with the given options; appends "NAME stats..." to $d/res.
dump_one() { # name [rtcr dump options]
	local name=$1 rc; shift
	mkdir -p "$d/$name"
	timeout -k 5 300 build/rtcr dump -t "$pid" -D "$d/$name" --leave-running --stats "$@" \
		> "$d/$name.out" 2> "$d/$name.err"
	rc=$?
	if [ $rc != 0 ] || [ -z "$(dstats "$d/$name.err")" ]; then
		echo "command: build/rtcr dump -t $pid -D $d/$name --leave-running --stats $*" >&2
		echo "exit status $rc; output:" >&2
		cat "$d/$name.err" "$d/$name.out" >&2
		return 1
	fi
	echo "$name $(dstats "$d/$name.err")" | awk '{print $0, $2 - $7 - $8}' >> "$d/res"
}
# Make the target rewrite P % of its pages (step K); appends "LABEL ns pages".
write_step() { # k pct label
	echo "$2" > "$d/ctl.tmp" && mv "$d/ctl.tmp" "$d/ctl.step$1"
	if ! wait_count "$d/report" "^DONE $1 " 1 120; then
		echo "target did not finish step $1 ($2 %): $(cat "$d/report")" >&2; return 1
	fi
	sed -n "s/^DONE $1 pages=\([0-9]*\) ns=\([0-9]*\)/$3 \2 \1/p" "$d/report" >> "$d/res"
}
# Restore image NAME, check the restored process's pages; appends "rNAME wall_ns stats_ns".
restore_one() { # name
	local name=$1 sr nchk
	rm -f "$d"/ctl.step* "$d/ctl.check"
	nchk=$(grep -c '^CHECK' "$d/report")
	: > "$d/r$name.rep"
	build/bench/subreaper "$d/r$name.rep" build/rtcr restore -D "$d/$name" --detach --stats \
		< /dev/null > "$d/r$name.out" 2> "$d/r$name.err" &
	sr=$!; srs+=("$sr"); live+=("$pid")
	if ! wait_count "$d/r$name.rep" '^EXIT' 1 300; then
		echo "command: build/rtcr restore -D $d/$name --detach --stats: no exit after 300 s" >&2
		cat "$d/r$name.err" >&2; return 1
	fi
	if ! grep -q '^EXIT 0 ' "$d/r$name.rep" || ! grep -q '^STATS restore' "$d/r$name.err"; then
		echo "command: build/rtcr restore -D $d/$name --detach --stats" >&2
		echo "$(cat "$d/r$name.rep"); output:" >&2
		cat "$d/r$name.err" "$d/r$name.out" >&2
		echo "(from rtcr inspect $d/$name:)" >&2
		build/rtcr inspect "$d/$name" 2>&1 | grep -E '^parent|^  <-|^thread|\[stack\]' >&2
		return 1
	fi
	touch "$d/ctl.check"
	if ! wait_count "$d/report" '^CHECK' $((nchk + 1)) 120 ||
	   ! grep '^CHECK' "$d/report" | tail -1 | grep -q '^CHECK PASS'; then
		echo "process restored from $d/$name: $(grep '^CHECK' "$d/report" | tail -1)" >&2; return 1
	fi
	wait "$sr" 2>/dev/null
	pid_gone "$pid" || return 1
	cleanup
	echo "r$name $(awk '{print $3}' "$d/r$name.rep") $(sed -n 's/^STATS restore.*total_ns=\([0-9]*\).*/\1/p' "$d/r$name.err")" >> "$d/res"
}

# One rep for one size: results in $W/s$mib/rep$r/res.
one_rep() { # mib rep
	local mib=$1 sr k p prev name
	d=$W/s$1/rep$2
	rm -rf "$d"; mkdir -p "$d"; : > "$d/res"; : > "$d/report"
	build/bench/subreaper "$d/t.rep" build/bench/dirtier "$mib" "$d/report" "$d/ctl" \
		< /dev/null > /dev/null 2>&1 &
	sr=$!; srs+=("$sr")
	wait_count "$d/report" '^READY' 1 120 || { echo "dirtier $mib: not READY: $(cat "$d/report")" >&2; return 1; }
	pid=$(sed -n 's/^READY pid=\([0-9]*\).*/\1/p' "$d/report")
	live+=("$pid")
	dump_one plain || return 1
	rm -rf "$d/plain"                      # not needed again: room in /dev/shm
	write_step 1 "$wpct" wuntracked || return 1
	dump_one full --track-mem || return 1
	prev=full k=1
	for p in "${pcts[@]}"; do
		k=$((k + 1))
		write_step $k "$p" "w$p" || return 1
		[ "$p" = "$wpct" ] && sed -n "s/^w$p /wtracked /p" "$d/res" >> "$d/res"
		dump_one "i$p" --prev "$d/$prev" ${LIVE:+--live} || return 1
		prev=i$p
	done
	kill -9 "$pid"; wait "$sr" 2>/dev/null
	pid_gone "$pid" || return 1
	cleanup
	echo "ok" >> "$d/res"                  # the dump figures of this rep are complete
	# A failed restore is reported, and leaves the dump figures in.
	for name in full "$prev"; do
		if ! restore_one "$name" 2> "$d/rerr"; then
			rfailed+=("$mib MiB, rep $2, restore of $name: $(cat "$d/rerr")")
			echo "FAILED $mib MiB rep $2 restore of $name: $(cat "$d/rerr")" >&2
			cleanup
			pid_gone "$pid" || return 1
		fi
	done
	rm -rf "$d/full" "$d"/i*/
}

declare -A failed=()
nfailed=0 rfailed=()
for ((r = 1; r <= reps; r++)); do
	for mib in "${sizes[@]}"; do
		[ -n "${failed[$mib]:-}" ] && continue
		if one_rep "$mib" "$r" 2> "$W/err"; then
			[ "${VERBOSE:-0}" = 1 ] && { echo "rep $r, $mib MiB:"; cat "$d/res"; } >&2
		else
			failed[$mib]="rep $r: $(cat "$W/err")"
			nfailed=$((nfailed + 1))
			echo "FAILED $mib MiB ${failed[$mib]}" >&2
		fi
		cleanup
		rm -rf "$d"/*/
	done
done

# Values of column K of rows NAME over the successful reps of size MIB.
vals() { # mib name k
	local f
	for f in "$W/s$1"/rep*/res; do
		grep -q '^ok' "$f" && awk -v n="$2" -v k="$3" '$1 == n {print $k}' "$f"
	done
}
st() { # mib name k min|median divisor
	vals "$1" "$2" "$3" | awk -v q="$5" '{printf "%.6f\n", $1 / q}' | { [ "$4" = min ] && minimum || median; }
}
f1() { awk -v a="$1" 'BEGIN {if (a == "nan") print "nan"; else printf "%.1f", a}'; }
f2() { awk -v a="$1" 'BEGIN {if (a == "nan") print "nan"; else printf "%.2f", a}'; }
f3() { awk -v a="$1" 'BEGIN {if (a == "nan") print "nan"; else printf "%.3f", a}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "nan" || b == "nan" || b == 0) print "nan"; else printf "%.3f", a / b}'; }
nok() { local n=0 f; for f in "$W/s$1"/rep*/res; do grep -q '^ok' "$f" && n=$((n + 1)); done; echo $n; }

names=(plain full); for p in "${pcts[@]}"; do names+=("i$p"); done
printf '\nrtcr %s, %s, %s CPUs, load %s, REPS=%s, written %% before each incremental: %s\n' \
	"$(git rev-parse --short HEAD 2>/dev/null)" "$(date +%F)" "$(nproc)" \
	"$(cut -d' ' -f1-3 /proc/loadavg)" "$reps" "${pcts[*]}"
echo
echo "Dumps (ms; image MiB; pages stored / inherited from the parent, median). x ref = median / median of the reference: plain for full+track, full+track for incrementals."
echo
echo "| MiB | dump | frozen ms min / med | total ms min / med | image MiB | pages stored / inherited | x ref frozen / total / image | frozen = scan + copy + other, ms (med) |"
echo "|---|---|---|---|---|---|---|---|"
for mib in "${sizes[@]}"; do
	n=$(nok "$mib")
	if [ "$n" = 0 ]; then echo "| $mib | FAILED | | | | | | |"; continue; fi
	tag=$mib; [ "$n" -lt "$reps" ] && tag="$mib ($n of $reps reps)"
	for name in "${names[@]}"; do
		case $name in
		plain) label="full, plain (baseline)"; ref=;;
		full) label="full --track-mem"; ref=plain;;
		*) label="incremental after ${name#i} % written"; ref=full;;
		esac
		fmn=$(st "$mib" "$name" 2 min 1e6); fmd=$(st "$mib" "$name" 2 median 1e6)
		tmn=$(st "$mib" "$name" 3 min 1e6); tmd=$(st "$mib" "$name" 3 median 1e6)
		img=$(st "$mib" "$name" 4 median 1048576)
		pg=$(st "$mib" "$name" 5 median 1); inh=$(st "$mib" "$name" 6 median 1)
		scan=$(st "$mib" "$name" 7 median 1e6); copy=$(st "$mib" "$name" 8 median 1e6)
		other=$(st "$mib" "$name" 9 median 1e6)
		if [ -n "$ref" ]; then
			x="$(f2 "$(ratio "$fmd" "$(st "$mib" "$ref" 2 median 1e6)")") / $(f2 "$(ratio "$tmd" "$(st "$mib" "$ref" 3 median 1e6)")") / $(f3 "$(ratio "$img" "$(st "$mib" "$ref" 4 median 1048576)")")"
		else
			x="ref"
		fi
		printf '| %s | %s | %s / %s | %s / %s | %s | %.0f / %.0f | %s | %s + %s + %s |\n' "$tag" "$label" \
			"$(f1 "$fmn")" "$(f1 "$fmd")" "$(f1 "$tmn")" "$(f1 "$tmd")" "$(f1 "$img")" "$pg" "$inh" "$x" \
			"$(f1 "$scan")" "$(f1 "$copy")" "$(f1 "$other")"
	done
done
echo
echo "Target rewriting $wpct % of its pages (whole pages, random, address order), ms; tracked = after the --track-mem dump and the ${pcts[0]} % link (every page write-protected)."
echo
echo "| MiB | pages | untracked min / med | tracked min / med | x untracked (med) | extra us per page (med) |"
echo "|---|---|---|---|---|---|"
for mib in "${sizes[@]}"; do
	[ "$(nok "$mib")" = 0 ] && { echo "| $mib | FAILED | | | | |"; continue; }
	pg=$(st "$mib" wtracked 3 median 1)
	umn=$(st "$mib" wuntracked 2 min 1e6); umd=$(st "$mib" wuntracked 2 median 1e6)
	tmn=$(st "$mib" wtracked 2 min 1e6); tmd=$(st "$mib" wtracked 2 median 1e6)
	extra=$(awk -v t="$tmd" -v u="$umd" -v n="$pg" 'BEGIN {printf "%.2f", (t - u) * 1000 / n}')
	printf '| %s | %.0f | %s / %s | %s / %s | %s | %s |\n' "$mib" "$pg" "$(f2 "$umn")" "$(f2 "$umd")" \
		"$(f2 "$tmn")" "$(f2 "$tmd")" "$(f2 "$(ratio "$tmd" "$umd")")" "$extra"
done
last=i${pcts[-1]}
echo
echo "Restore (rtcr restore --detach wall ms, until the process runs with all its pages): the full image vs the last link ($last, through a chain of $(( ${#pcts[@]} + 1 )) images)."
echo
echo "| MiB | full min / med | last link min / med | x full (med) |"
echo "|---|---|---|---|"
for mib in "${sizes[@]}"; do
	[ "$(nok "$mib")" = 0 ] && { echo "| $mib | FAILED | | |"; continue; }
	fmn=$(st "$mib" rfull 2 min 1e6); fmd=$(st "$mib" rfull 2 median 1e6)
	lmn=$(st "$mib" "r$last" 2 min 1e6); lmd=$(st "$mib" "r$last" 2 median 1e6)
	nf=$(vals "$mib" rfull 2 | wc -l); nl=$(vals "$mib" "r$last" 2 | wc -l)
	printf '| %s | %s / %s (%s of %s ok) | %s / %s (%s of %s ok) | %s |\n' "$mib" "$(f1 "$fmn")" "$(f1 "$fmd")" \
		"$nf" "$(nok "$mib")" "$(f1 "$lmn")" "$(f1 "$lmd")" "$nl" "$(nok "$mib")" "$(f2 "$(ratio "$lmd" "$fmd")")"
done
if printf '%s\n' "${sizes[@]}" | grep -qx 2048 && [ "$(nok 2048)" != 0 ]; then
	echo
	printf 'Versus CRIU 4.2 at 2 GiB (ANCHORS.md: 715 ms frozen per checkpoint, full every time; no incremental on this kernel), frozen median / 715 ms:'
	for name in plain full "${names[@]:2}"; do
		printf ' %s %s' "$name" "$(f2 "$(ratio "$(st 2048 "$name" 2 median 1e6)" 715)")"
	done
	echo
fi
if [ $nfailed -gt 0 ] || [ ${#rfailed[@]} -gt 0 ]; then
	echo
	for mib in "${!failed[@]}"; do printf 'FAILED %s MiB, %s\n' "$mib" "${failed[$mib]}"; done
	for m in "${rfailed[@]}"; do printf 'FAILED %s\n' "$m"; done
fi
[ $nfailed = 0 ] && [ ${#rfailed[@]} = 0 ]
