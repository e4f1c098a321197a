#!/usr/bin/env bash
# Run every test: builds rtcr (plain and with ASan+UBSan), runs the unit
# tests, the integration suite (real processes checkpointed and restored)
# and a short fuzzing run of the image reader. Last line: N passed, N failed.
set -u
cd "$(dirname "$0")/.."
[ "${1:-}" = --no-deps ] || scripts/deps.sh || exit 1
jobs=$(nproc)
make -s -j"$jobs" > /tmp/rtcr-build.log 2>&1 || { cat /tmp/rtcr-build.log; echo "0 passed, 1 failed"; exit 1; }
make -s -j"$jobs" SAN=1 > /tmp/rtcr-build-san.log 2>&1 || { cat /tmp/rtcr-build-san.log; echo "0 passed, 1 failed"; exit 1; }
exec tests/run.sh
