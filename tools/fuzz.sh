#!/usr/bin/env bash
# Fuzzes what crucial-server does with bytes from the network (tools/fuzz/main.swift) with
# libFuzzer and AddressSanitizer, for a bounded time, and reports the executions.
#   tools/fuzz.sh [SECONDS]        default 600; stops by itself
#   tools/fuzz.sh 60 -jobs=2       more libFuzzer flags after the time
# The seed corpus is tools/fuzz/corpus (never changed here); what the fuzzer learns goes to
# .build-fuzz/corpus. A crash leaves its input in .build-fuzz/crash-*: copy it into
# tools/fuzz/regressions/ (the tests replay every file there) and fix the cause.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: tools/fuzz.sh [SECONDS] [libFuzzer flags]" >&2; exit 2; }
source tools/lib/ensure-deps.sh
ensure_deps
# Swift code is instrumented; C code (libprotobuf-c, a system library, BoringSSL) is not.
echo "==> swift build crucial-fuzz with -sanitize=fuzzer,address (own scratch path .build-fuzz; the first build takes 20 minutes on 2 cores)" >&2
# -Xswiftc rather than --sanitize: SwiftPM then still links every executable with its own
# main (<module>_main), which wins over libFuzzer's, so the macro plugin it builds and runs
# still works; crucial-fuzz hands its main to libFuzzer's driver. lld: gold stops with an
# internal error on the sanitized objects. libFuzzer's unused main names the fuzz callback,
# which only crucial-fuzz has: other executables leave it unresolved. The plugin runs under
# ASan: no leak report.
export ASAN_OPTIONS=detect_leaks=0
swift build -c debug --scratch-path .build-fuzz --product crucial-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DCRUCIAL_FUZZING -Xswiftc -use-ld=lld \
  -Xlinker --unresolved-symbols=ignore-all >&2
unset ASAN_OPTIONS
binary=.build-fuzz/debug/crucial-fuzz
mkdir -p .build-fuzz/corpus
log=.build-fuzz/fuzz.log
echo "==> fuzzing for ${seconds}s (log: $log)" >&2
status=0
# -rss_limit_mb: a server must not need gigabytes for one frame either.
# Swift's own crash backtracer would run inside the sanitizer: leave crashes to libFuzzer.
SWIFT_BACKTRACE=enable=no "$binary" .build-fuzz/corpus tools/fuzz/corpus tools/fuzz/regressions \
  -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -artifact_prefix=.build-fuzz/ "$@" 2>"$log" || status=$?
grep -E "^#[0-9]+ +(INITED|DONE)|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb|cov:" "$log" | tail -6 >&2 || true
executions=$(grep -oE "stat::number_of_executed_units: [0-9]+" "$log" | awk '{print $2}' | tail -1)
if [[ $status -ne 0 ]]; then
  grep -E "ERROR|Fatal error|SUMMARY|Test unit written" "$log" | head -10 >&2
  echo "crucial-fuzz: FOUND A CRASH after ${executions:-?} executions (status $status); see $log" >&2
  exit 1
fi
echo "crucial-fuzz: ${executions:-?} executions in ${seconds}s, no crash" >&2
