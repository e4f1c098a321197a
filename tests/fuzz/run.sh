#!/bin/sh
# Build and run the image-reader fuzzer.
#
#   tests/fuzz/run.sh [SECONDS]           default 20
#
# The corpus grows in build/fuzz/corpus (kept between runs); seeds are
# regenerated in build/fuzz/seeds; a crashing input is saved as
# build/fuzz/artifacts/crash-* (or leak-*, oom-*, timeout-*). Exits
# nonzero if the fuzzer found anything. Extra libFuzzer options can be
# passed in FUZZ_ARGS (e.g. FUZZ_ARGS="-jobs=2 -workers=2").
set -eu

cd "$(dirname "$0")/../.."
SECS=${1:-20}
OUT=${FUZZ_OUT:-build/fuzz}

tests/fuzz/build.sh "$OUT"
rm -rf "$OUT/seeds"
mkdir -p "$OUT/seeds" "$OUT/corpus" "$OUT/artifacts"
"$OUT/gen_seeds" "$OUT/seeds"

printf '"RTCR-IMG"\n"\\x01\\x00\\x00\\x00@\\x00\\x00\\x00"\n"\\xff\\x00\\x00\\x00"\n"\\x10\\x00\\x00\\x00"\n"\\x01\\x00\\x00\\x00"\n' \
	> "$OUT/image.dict"

set +e
# shellcheck disable=SC2086
"$OUT/fuzz_image" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
	-dict="$OUT/image.dict" -artifact_prefix="$OUT/artifacts/" -print_final_stats=1 \
	${FUZZ_ARGS:-} "$OUT/corpus" "$OUT/seeds"
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
	echo "fuzz_image: FAILED (exit $rc); inputs in $OUT/artifacts/" >&2
	exit "$rc"
fi
echo "fuzz_image: no crash in ${SECS}s"
