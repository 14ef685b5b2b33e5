#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ (a separate Swift package) with
# -sanitize=fuzzer,address (C code also with UBSan) and runs each for N seconds
# on a scratch copy of its committed seed corpus (Fuzz/corpus/<target>/).
#
#   scripts/fuzz.sh [--seconds N] [--release] [target...] run (default: 60 s, every target)
#   scripts/fuzz.sh --regenerate-corpus                   rewrite Fuzz/corpus/ with the encoder
#   scripts/fuzz.sh --list                                list the targets
#
# The test command runs `scripts/fuzz.sh --seconds 20` (two minutes of fuzzing
# for all six targets); the long run is e.g. `scripts/fuzz.sh --seconds 3600`.
# Exits non-zero when any target crashes, leaks, times out, exceeds the memory
# limits or fails a check, and prints where the input that did it was saved.
# Scratch: .build-fuzz/ (builds, and run/<target>/{corpus,artifacts,log.txt}).
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(FuzzFrameDecoder FuzzFrame FuzzSessions FuzzPrompts FuzzStatus FuzzWorkers)
seconds=60
configuration=debug
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a number}"; shift 2 ;;
    --seconds=*) seconds="${1#--seconds=}"; shift ;;
    --release) configuration=release; shift ;;
    --list) printf '%s\n' "${all_targets[@]}"; exit 0 ;;
    --regenerate-corpus)
      swift build --package-path Fuzz --scratch-path .build-fuzz/corpus-tool --product FuzzCorpus
      .build-fuzz/corpus-tool/debug/FuzzCorpus Fuzz/corpus
      exit 0 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "fuzz: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ "$seconds" =~ ^[0-9]+$ ]] && ((seconds > 0)) || { echo "fuzz: --seconds needs a positive number" >&2; exit 2; }
((${#targets[@]})) || targets=("${all_targets[@]}")
for target in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $target "* ]] || { echo "fuzz: unknown target $target (--list)" >&2; exit 2; }
done

# Debug by default: with this toolchain an -O build keeps libFuzzer's coverage
# counters only in C code (about 1,100 instead of 11,900 for FuzzFrame), so the
# fuzzer would run fast but nearly blind. --release trades guidance for speed.
scratch=.build-fuzz/fuzzer
# UBSan is for the C code (the committed protoc-c output): swiftc has no UBSan
# mode, and the ASan runtime carries the UBSan handlers. The system
# libprotobuf-c.so itself is not instrumented (see docs/SECURITY.md, "Fuzzing").
build_flags=(
  --package-path Fuzz --scratch-path "$scratch" -c "$configuration"
  --sanitize=fuzzer --sanitize=address
  -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined
)
for target in "${targets[@]}"; do
  echo "fuzz: building $target ($configuration, fuzzer + address sanitizer)"
  mkdir -p .build-fuzz
  build_status=0
  swift build "${build_flags[@]}" --product "$target" >.build-fuzz/build.log 2>&1 || build_status=$?
  # gold warns once per ASan register helper it cannot export; that is noise.
  grep -v -e 'Cannot export local symbol' -e '^\[[0-9]*/[0-9]*\] ' .build-fuzz/build.log || true
  ((build_status == 0)) || { echo "fuzz: building $target failed" >&2; exit 1; }
done
bin="$(swift build "${build_flags[@]}" --show-bin-path)"

# -max_len: frames under test are small; a length prefix can still claim 4 GiB.
# -malloc_limit_mb=1: any single allocation of 1 MiB or more fails the run. No
#   legitimate allocation for a 4 KiB input comes near it, while a decoder that
#   reserved memory for a claimed length (up to 4 MiB by default, 4 GiB with the
#   largest maximum) before the bytes exist would trip it at once.
# -timeout: one input may take at most 10 s (a hang is a failure).
fuzz_flags=(
  -max_len=4096 -malloc_limit_mb=1 -rss_limit_mb=2048 -timeout=10
  -max_total_time="$seconds" -print_final_stats=1 -print_pcs=0
)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:handle_abort=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

failed=()
summary=()
for target in "${targets[@]}"; do
  run=".build-fuzz/run/$target"
  rm -rf "$run"
  mkdir -p "$run/artifacts"
  # A scratch copy: what the fuzzer adds never lands in the committed corpus.
  cp -R "Fuzz/corpus/$target" "$run/corpus"
  echo "fuzz: running $target for ${seconds}s (log: $run/log.txt)"
  status=0
  "$bin/$target" "${fuzz_flags[@]}" -artifact_prefix="$run/artifacts/" "$run/corpus" >"$run/log.txt" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run/log.txt" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$run/log.txt" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$run/log.txt" | tail -1 | cut -d' ' -f2)
  corpus=$(find "$run/corpus" -type f | wc -l)
  line=$(printf '%-17s execs=%-9s cov=%-6s ft=%-6s corpus=%s' "$target" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corpus")
  if ((status != 0)); then
    failed+=("$target")
    line+="  FAILED (exit $status)"
    echo "fuzz: $target FAILED (exit $status); last lines of $run/log.txt:" >&2
    tail -n 40 "$run/log.txt" >&2
    for artifact in "$run"/artifacts/*; do
      [[ -e "$artifact" ]] || continue
      echo "fuzz: input saved at $artifact (replay: $bin/$target $artifact)" >&2
    done
  fi
  summary+=("$line")
  echo "fuzz: $line"
done

printf '\nfuzz: summary (%ss per target, %s build)\n' "$seconds" "$configuration"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no crash, leak, timeout or failed check"
