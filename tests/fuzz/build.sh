#!/bin/sh
# Build the image-reader fuzzer (libFuzzer + ASan + UBSan) and the seed
# generator, without the Makefile.
#
#   tests/fuzz/build.sh [OUTDIR]          default OUTDIR: build/fuzz
#
# Environment: CLANG (default clang), PROTO_DIR (generated protobuf-c
# sources; default build/proto, as made by `make`; if it lacks the .c or
# .h files they are generated here with protoc-c).
set -eu

cd "$(dirname "$0")/../.."
OUT=${1:-build/fuzz}
CLANG=${CLANG:-clang}
PROTO_DIR=${PROTO_DIR:-build/proto}
mkdir -p "$OUT"

have_proto=1
for p in proto/*.proto; do
	b=$(basename "$p" .proto)
	if [ ! -f "$PROTO_DIR/$b.pb-c.c" ] || [ ! -f "$PROTO_DIR/$b.pb-c.h" ]; then
		have_proto=0
	fi
done
if [ "$have_proto" = 0 ]; then
	# `make` removes the generated headers as intermediate files on a
	# fresh build; generate our own copy.
	PROTO_DIR=$OUT/proto
	mkdir -p "$PROTO_DIR"
	protoc-c --proto_path=proto --c_out="$PROTO_DIR" proto/*.proto
fi

SRCS="src/image/reader.c src/image/stream.c src/image/writer.c src/common/log.c src/common/util.c"
PB_SRCS=$(ls "$PROTO_DIR"/*.pb-c.c)
CFLAGS="-std=gnu11 -D_GNU_SOURCE -I src -I $PROTO_DIR -g -O1 -fno-omit-frame-pointer"
LIBS="-lprotobuf-c -lxxhash"

# shellcheck disable=SC2086
$CLANG $CFLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-o "$OUT/fuzz_image" tests/fuzz/fuzz_image.c $SRCS $PB_SRCS $LIBS
# shellcheck disable=SC2086
$CLANG $CFLAGS -Wno-unused-function -o "$OUT/gen_seeds" tests/fuzz/gen_seeds.c $SRCS $PB_SRCS $LIBS
echo "built $OUT/fuzz_image and $OUT/gen_seeds"
