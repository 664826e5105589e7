#!/usr/bin/env bash
# Runs the whole test suite N times in a row (default 20) with two busy loops beside it, as
# a loaded CI machine would: a test that flakes under load fails a run here. Stops the busy
# loops however it ends; prints one line per run and the failed tests' names.
#   tools/stress-tests.sh [RUNS] [--no-load]
# Needs the build tools/test.sh makes (swift build --build-tests).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20}"
load=2
[[ " $* " == *" --no-load "* ]] && load=0
hogs=()
cleanup() { for p in "${hogs[@]:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
for _ in $(seq 1 "$load"); do ( while :; do :; done ) & hogs+=($!); done
logs=$(mktemp -d)
passed=0
for run in $(seq 1 "$runs"); do
  start=$(date +%s)
  if swift test --skip-build > "$logs/run-$run.log" 2>&1; then status=passed; passed=$((passed + 1)); else status=FAILED; fi
  summary=$(grep -E "^(✔|✘) Test run with" "$logs/run-$run.log" | tail -1 || true)
  echo "run $run/$runs: $status in $(( $(date +%s) - start )) s with $load busy loops: ${summary:-no summary (see $logs/run-$run.log)}"
  grep -E "^✘ Test .* (failed|recorded an issue)" "$logs/run-$run.log" | sed 's/^/    /' | cut -c1-300 | head -20 || true
done
echo "$passed of $runs runs passed; logs in $logs"
[[ "$passed" == "$runs" ]]
