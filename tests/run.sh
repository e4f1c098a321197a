#!/usr/bin/env bash
# Run the test suite: unit tests, integration tests, and the same under
# the sanitizer build. The last line is "N passed, N failed".
#
#   tests/run.sh [-k PATTERN] [--no-san] [--no-unit]
# BUILD=dir selects the build to test (default build/).
set -u
cd "$(dirname "$0")/.."

pattern=""; san=1; unit=1
B=${BUILD:-build}
while [ $# -gt 0 ]; do
	case "$1" in
	-k) pattern=$2; shift;;
	--no-san) san=0;;
	--no-unit) unit=0;;
	*) echo "usage: $0 [-k PATTERN] [--no-san] [--no-unit]"; exit 2;;
	esac
	shift
done

passed=0; failed=0; skipped=0; failures=()
TMPROOT=$(mktemp -d /tmp/rtcr-tests.XXXXXX)
trap 'rm -rf "$TMPROOT"' EXIT

record() { # name rc seconds log
	case "$2" in
	0) passed=$((passed + 1)); printf 'PASS  %-52s %5.1fs\n' "$1" "$3";;
	77) skipped=$((skipped + 1)); printf 'SKIP  %-52s %s\n' "$1" "$(grep -m1 -h 'SKIP' "$4" 2>/dev/null | sed 's/^.*SKIP: *//')";;
	*) failed=$((failed + 1)); failures+=("$1"); printf 'FAIL  %-52s %5.1fs\n' "$1" "$3"
	   sed 's/^/      | /' "$4" | tail -n 40;;
	esac
}

run_unit() { # build dir, label
	local b=$1 label=$2 t
	for t in "$b"/tests/unit/*; do
		[ -x "$t" ] || continue
		local name; name=$(basename "$t")
		local log="$TMPROOT/unit-$label-$name.log"
		CMOCKA_MESSAGE_OUTPUT=TAP "$t" > "$log" 2>&1
		local rc=$?
		# One line per cmocka test case.
		while read -r line; do
			case "$line" in
			"ok "*) record "unit$label: $name: ${line#ok [0-9]* - }" 0 0 /dev/null;;
			"not ok "*) echo "$line" > "$log.case"; grep -v '^ok' "$log" >> "$log.case"
			            record "unit$label: $name: ${line#not ok [0-9]* - }" 1 0 "$log.case";;
			esac
		done < <(grep -E '^(not )?ok ' "$log")
		if [ $rc != 0 ] && ! grep -q '^not ok' "$log"; then
			record "unit$label: $name (crashed, exit $rc)" 1 0 "$log"
		fi
	done
}

run_integration() { # build dir, label, [file filter]
	local b=$1 label=$2 only=${3:-}
	local f fn
	for f in tests/integration/*.sh; do
		[ -n "$only" ] && ! grep -qE "$only" <<< "$(basename "$f")" && continue
		for fn in $(bash -c "source tests/lib.sh; source '$f'; declare -F" | awk '{print $3}' | grep '^test_'); do
			local name="$(basename "$f" .sh):$fn$label"
			[ -n "$pattern" ] && ! grep -qE "$pattern" <<< "$name" && continue
			local T="$TMPROOT/$(basename "$f" .sh)-$fn$(tr -c 'a-z0-9\n' '_' <<< "$label")"
			mkdir -p "$T"
			local start=$SECONDS
			( export T BUILD=$b RTCR=$b/rtcr TGT=$B/targets
			  source tests/lib.sh
			  source "$f"
			  trap cleanup_pids EXIT
			  set +e
			  "$fn" ) > "$T/log" 2>&1 &
			local tp=$!
			# A test gets at most 120 s. (The watchdog kills its own sleep
			# when told to stop, so no process holds our stdout open.)
			( sleep 120 & sp=$!; trap 'kill $sp; exit' TERM; wait $sp; kill -TERM $tp 2>/dev/null ) &
			local wd=$!
			wait $tp; local rc=$?
			kill $wd 2>/dev/null; wait $wd 2>/dev/null
			[ $rc = 143 ] && echo "timed out after 120 s" >> "$T/log"
			record "$name" "$rc" "$((SECONDS - start))" "$T/log"
		done
	done
}

if [ $unit = 1 ]; then run_unit "$B" ""; fi
run_integration "$B" ""
if [ $san = 1 ] && [ -x build-san/rtcr ]; then
	[ $unit = 1 ] && run_unit build-san " [asan+ubsan]"
	# The hosted code under ASan/UBSan, on the tests that exercise most of it
	# (and live dumps: their threads and rounds).
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_integration build-san " [asan+ubsan]" 'basic|image|files|live'
fi

# A short fuzzing run of the image reader (libFuzzer, ASan, UBSan).
if [ $unit = 1 ] && [ -z "$pattern" ] && command -v clang > /dev/null; then
	log="$TMPROOT/fuzz.log"; start=$SECONDS
	tests/fuzz/run.sh "${FUZZ_SECONDS:-30}" > "$log" 2>&1
	record "fuzz: image reader, ${FUZZ_SECONDS:-30} s" $? $((SECONDS - start)) "$log"
fi

if [ ${#failures[@]} -gt 0 ]; then
	echo; echo "failed:"; printf '  %s\n' "${failures[@]}"
fi
echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ $failed = 0 ]
