#!/usr/bin/env bash
# Fuzz the model loader (tests/fuzz/fuzz_loader.c) with libFuzzer under ASan + UBSan.
#
#   scripts/fuzz/run.sh [SECONDS]      build, replay tests/fuzz/corpus, fuzz SECONDS (default 60)
#   scripts/fuzz/run.sh --replay       build and replay the saved corpus only
#   scripts/fuzz/run.sh --merge        minimize the saved corpus + new finds into tests/fuzz/corpus
#
# Environment: CC (a clang; default: the newest clang on PATH), FUZZ_BUILD_DIR (default
# build/fuzz, git-ignored), FUZZ_MAX_LEN (32768), FUZZ_RSS_MB (1024), FUZZ_MALLOC_MB (64),
# FUZZ_TIMEOUT (10 s per input), FUZZ_JOBS (unset: one process in the foreground).
#
# Exit status: 0 when the replay and the run found nothing; 1 on a crash, leak, timeout,
# out-of-memory or sanitizer report (the input is left in $FUZZ_BUILD_DIR/artifacts/ and the
# reproduction command is printed); 2 when the build tools are missing.
#
# Memory bound (why -malloc_limit_mb / -rss_limit_mb): inputs are at most FUZZ_MAX_LEN
# (32 KiB). By design the engine keeps a loaded model within ~512x its weight bytes (weights
# are repacked into 16-lane blocks; a binary layer with one input and one output channel
# turns each weight bit into 16 32-bit words), i.e. <= 16 MiB here, and the harness only
# builds a context when all its buffers fit in 4 Mi floats per image (<= 32 MiB for a batch
# of 2). So no single allocation legitimately exceeds 64 MiB: a larger one is an allocation
# the file does not justify and libFuzzer reports it as a crash (-malloc_limit_mb).
# -rss_limit_mb=1024 bounds the whole process (ASan's quarantine and shadow included). Total
# model memory is checked per input by the harness itself (memory_bytes <= 640 x file size
# + 64 KiB; XNOR_FUZZ_MEM_RATIO overrides).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

mode=fuzz
secs=60
case "${1:-}" in
    --replay) mode=replay ;;
    --merge) mode=merge ;;
    "") ;;
    *[!0-9]*) echo "usage: $0 [SECONDS|--replay|--merge]" >&2; exit 2 ;;
    *) secs=$1 ;;
esac

BUILD=$(realpath -m "${FUZZ_BUILD_DIR:-$ROOT/build/fuzz}")
CORPUS=$ROOT/tests/fuzz/corpus
MAX_LEN=${FUZZ_MAX_LEN:-32768}
RSS_MB=${FUZZ_RSS_MB:-1024}
MALLOC_MB=${FUZZ_MALLOC_MB:-64}
TIMEOUT=${FUZZ_TIMEOUT:-10}
mkdir -p "$BUILD/artifacts" "$BUILD/corpus" "$CORPUS"

# ---------------------------------------------------------------- toolchain
CC=${CC:-}
if [ -z "$CC" ]; then
    for c in clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14; do
        if command -v "$c" >/dev/null; then CC=$c; break; fi
    done
fi
if [ -z "$CC" ] || ! "$CC" --version 2>/dev/null | grep -qi clang; then
    echo "fuzz: no clang found (Debian: apt-get install -y clang libclang-rt-14-dev)" >&2
    exit 2
fi

# ---------------------------------------------------------------- build
BIN=$BUILD/fuzz_loader
SRCS=$(find engine/src -name '*.c' | sort)
CFLAGS=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
        -O1 -g -std=c11 -ffp-contract=off -fno-strict-aliasing -pthread -D_GNU_SOURCE -Iengine/include)
# Rebuild when the sources, flags or compiler change (a content hash, taken before compiling, so an
# edit made while the compiler runs still triggers the next rebuild).
# shellcheck disable=SC2086
STAMP=$( (echo "$CC ${CFLAGS[*]}"; "$CC" --version | head -1;
          cat tests/fuzz/fuzz_loader.c $SRCS $(find engine/src engine/include -name '*.h' | sort)) | sha256sum | cut -c1-16)
if [ ! -x "$BIN" ] || [ "$(cat "$BIN.stamp" 2>/dev/null)" != "$STAMP" ]; then
    echo "== fuzz: building $BIN with $CC"
    # shellcheck disable=SC2086
    if ! "$CC" "${CFLAGS[@]}" -o "$BIN.tmp" tests/fuzz/fuzz_loader.c $SRCS -lm 2> "$BUILD/build.log"; then
        cat "$BUILD/build.log" >&2
        if grep -q "libclang_rt.fuzzer\|cannot find.*fuzzer" "$BUILD/build.log"; then
            echo "fuzz: the libFuzzer runtime is missing (Debian: apt-get install -y libclang-rt-14-dev)" >&2
            exit 2
        fi
        exit 1
    fi
    mv "$BIN.tmp" "$BIN"
    echo "$STAMP" > "$BIN.stamp"
fi

# ---------------------------------------------------------------- seeds and dictionary
SEEDS=$BUILD/seeds
DICT=$BUILD/loader.dict
if [ ! -f "$DICT" ] || [ -z "$(ls -A "$SEEDS" 2>/dev/null)" ] || [ scripts/fuzz/make_corpus.py -nt "$DICT" ] || [ engine/format.py -nt "$DICT" ]; then
    PY=${PYTHON:-python3}
    "$PY" scripts/fuzz/make_corpus.py "$SEEDS" --dict "$DICT"
fi
if [ -z "$(ls -A "$CORPUS" 2>/dev/null)" ]; then
    echo "== fuzz: $CORPUS is empty, seeding it"
    cp "$SEEDS"/* "$CORPUS"/
fi

# Known, reported-but-unfixed crashers (tests/fuzz/known_crashes.txt) stay out of the fuzzing
# inputs: libFuzzer executes every input at start-up and would stop on them.
KNOWN_LIST=$ROOT/tests/fuzz/known_crashes.txt
known_c() { [ -f "$KNOWN_LIST" ] && awk '!/^#/ && NF >= 2 && $2 ~ /(^|,)c(,|$)/ {print $1}' "$KNOWN_LIST" || true; }
known_all() { [ -f "$KNOWN_LIST" ] && awk '!/^#/ && NF >= 1 {print $1}' "$KNOWN_LIST" || true; }
INPUTS=$BUILD/inputs
rm -rf "$INPUTS"
mkdir -p "$INPUTS"
cp "$SEEDS"/* "$CORPUS"/* "$INPUTS"/ 2>/dev/null || true
for f in $(known_all); do rm -f "$INPUTS/$f"; done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
COMMON=(-max_len="$MAX_LEN" -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$MALLOC_MB" -timeout="$TIMEOUT"
        -dict="$DICT" -artifact_prefix="$BUILD/artifacts/" -print_final_stats=1)

report_crash() {
    echo "== fuzz: FAILED. Inputs left in $BUILD/artifacts/:" >&2
    ls -l "$BUILD/artifacts/" >&2 || true
    echo "   reproduce: $BIN <file>   then save it as tests/fuzz/corpus/crash-<what>.bin (and, until the" >&2
    echo "   engine is fixed, list it in tests/fuzz/known_crashes.txt); tests/fuzz/test_corpus_replay.py" >&2
    echo "   replays it through the Python binding" >&2
}

# ---------------------------------------------------------------- replay the saved corpus
n_in=$(find "$INPUTS" -type f | wc -l)
echo "== fuzz: replaying $n_in saved inputs and seeds (tests/fuzz/corpus + make_corpus.py)"
if ! "$BIN" "${COMMON[@]}" -runs=0 "$INPUTS" > "$BUILD/replay.log" 2>&1; then
    tail -60 "$BUILD/replay.log" >&2
    report_crash
    exit 1
fi
grep -E "INITED|DONE" "$BUILD/replay.log" | tail -2 || true
fixed=0
for f in $(known_c); do
    path=$CORPUS/$f
    [ -f "$path" ] || path=$SEEDS/$f
    if [ ! -f "$path" ]; then
        echo "fuzz: known_crashes.txt lists $f, which is neither in tests/fuzz/corpus nor a seed" >&2
        fixed=1
        continue
    fi
    if "$BIN" "${COMMON[@]}" -runs=1 "$path" > "$BUILD/known.log" 2>&1; then
        echo "== fuzz: known crasher $f NO LONGER FAILS: the bug is fixed, delete its line in tests/fuzz/known_crashes.txt" >&2
        fixed=1
    else
        echo "   known (reported, unfixed): $f: $(grep -m1 -E 'runtime error|contract violation|ERROR: AddressSanitizer' "$BUILD/known.log" | cut -c1-160)"
    fi
done
[ $fixed = 0 ] || exit 1

if [ $mode = replay ]; then
    echo "== fuzz: replay OK"
    exit 0
fi

if [ $mode = merge ]; then
    # Minimize: keep every seed_*, crash-* and regress-* file, add the inputs from the saved
    # corpus and the last runs' work corpus that bring new coverage (libFuzzer -merge=1 copies
    # into the first directory only what adds coverage over what is already there).
    NEW=$BUILD/corpus.merged
    rm -rf "$NEW"
    mkdir -p "$NEW"
    find "$CORPUS" -maxdepth 1 -type f \( -name 'seed_*' -o -name 'crash-*' -o -name 'regress-*' \) -exec cp {} "$NEW"/ \;
    cp "$SEEDS"/* "$NEW"/
    STAGE=$BUILD/merge.stage
    rm -rf "$STAGE"
    mkdir -p "$STAGE"
    for f in $(known_all); do mv "$NEW/$f" "$STAGE/" 2>/dev/null || true; done
    "$BIN" "${COMMON[@]}" -merge=1 "$NEW" "$INPUTS" "$BUILD/corpus" > "$BUILD/merge.log" 2>&1 || {
        tail -40 "$BUILD/merge.log" >&2
        exit 1
    }
    mv "$STAGE"/* "$NEW"/ 2>/dev/null || true
    rm -f "$CORPUS"/*
    cp "$NEW"/* "$CORPUS"/
    echo "== fuzz: merged into tests/fuzz/corpus: $(find "$CORPUS" -type f | wc -l) files, $(du -sk "$CORPUS" | cut -f1) KiB"
    exit 0
fi

# ---------------------------------------------------------------- fuzz
echo "== fuzz: running for ${secs}s (new inputs go to $BUILD/corpus)"
JOBS=()
if [ -n "${FUZZ_JOBS:-}" ]; then JOBS=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS"); fi
set +e
# (in $BUILD: with FUZZ_JOBS, libFuzzer writes fuzz-N.log files into the working directory)
(cd "$BUILD" && "$BIN" "${COMMON[@]}" "${JOBS[@]}" -max_total_time="$secs" "$BUILD/corpus" "$INPUTS") \
    > "$BUILD/fuzz.log" 2>&1
rc=$?
set -e
grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::|^Done [0-9]+ runs" "$BUILD/fuzz.log" | awk '!seen[$0]++' | tail -8 || true
if [ $rc -ne 0 ]; then
    grep -E "ERROR|SUMMARY|contract violation|runtime error|out-of-memory|timeout|deadly" "$BUILD/fuzz.log" | head -20 >&2
    echo "   full log: $BUILD/fuzz.log" >&2
    report_crash
    exit 1
fi
echo "== fuzz: OK (${secs}s, no crash). New inputs in $BUILD/corpus; 'scripts/fuzz/run.sh --merge' folds them into tests/fuzz/corpus."
