#!/usr/bin/env bash
# Builds the release benchmark and runs it against its peers on this machine.
#   tools/bench.sh [run options]          DSO layer vs redis-server (installed when missing),
#                                         e.g. --duration 5 --markdown docs/BENCHMARKS.md
#   tools/bench.sh lambda [options]       cloud threads on crucial-lambda-emulator: invocation
#                                         overhead (warm, cold) and Monte Carlo π scale-up
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/lib/ensure-deps.sh
ensure_deps redis-server redis-tools
echo "==> swift build -c release (crucial-bench, crucial-server, crucial-lambda-emulator)" >&2
for product in crucial-bench crucial-server crucial-lambda-emulator; do swift build -c release --product "$product" >&2; done
if [[ "${1:-}" == lambda ]]; then shift; exec .build/release/crucial-bench lambda "$@"; fi
exec .build/release/crucial-bench run "$@"
