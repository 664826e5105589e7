#!/usr/bin/env bash
# Builds the release benchmark and runs it against its peers on this machine.
#   tools/bench.sh [run options]          DSO layer vs redis-server (installed when missing),
#                                         e.g. --duration 5 --markdown docs/BENCHMARKS.md
#   tools/bench.sh lambda [options]       cloud threads on crucial-lambda-emulator: invocation
#                                         overhead (warm, cold) and Monte Carlo π scale-up
#   tools/bench.sh codec [options]        argument/state format: binary vs JSON sizes and times
#   tools/bench.sh shared [options]       user-defined objects: complex method vs Redis Lua, and
#                                         the k-means update shipped vs fetched-merged-written-back
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/lib/ensure-deps.sh
ensure_deps redis-server redis-tools
echo "==> swift build -c release (crucial-bench, crucial-server, crucial-lambda-emulator)" >&2
for product in crucial-bench crucial-server crucial-lambda-emulator; do swift build -c release --product "$product" >&2; done
case "${1:-}" in
  lambda|codec|shared) exec .build/release/crucial-bench "$@" ;;
esac
exec .build/release/crucial-bench run "$@"
