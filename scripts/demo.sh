#!/usr/bin/env bash
# The main job: build rtcr, start a sample program, checkpoint it, kill
# it, restore it, and watch it go on from where it was.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
echo "== building rtcr"
make -s -j"$(nproc)" build/rtcr > /dev/null
gcc -O2 -o build/ticker demo/ticker.c

img=$(mktemp -d /tmp/rtcr-demo.XXXXXX)
trap 'kill -9 "${pid:-0}" 2>/dev/null; rm -rf "$img"' EXIT

echo "== starting a sample program (64 MiB of memory, one line every 300 ms)"
# (started with only stdin, stdout and stderr open, as from a login shell)
( for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
  exec build/ticker ) &
pid=$!
sleep 2
# Run from a terminal, the program's stdio is that terminal: a shell job.
sj=
if [ -t 0 ] || [ -t 1 ] || [ -t 2 ]; then sj=--shell-job; fi

echo "== rtcr dump -t $pid -D $img $sj  (the process is killed after the dump)"
build/rtcr dump -t "$pid" -D "$img" --stats $sj
{ wait "$pid"; } 2>/dev/null || true
if kill -0 "$pid" 2>/dev/null; then echo "the process is still there?"; exit 1; fi
echo "== pid $pid is gone; the image holds:"
build/rtcr inspect "$img" | sed -n '1,12p'
sleep 1

echo "== rtcr restore -D $img --detach $sj  (same pid, same memory, same next instruction)"
# rtcr prints the pid; the process writes to this terminal again, as
# its stdout is connected to rtcr restore's.
build/rtcr restore -D "$img" --detach --stats $sj
sleep 2
echo "== it went on counting from where it was checkpointed; stopping it"
kill "$pid"
pid=
echo "== demo done"
