#!/usr/bin/env bash
# Builds the release benchmark and runs it against redis-server on this machine (installed when missing).
#   tools/bench.sh [crucial-bench run options]      e.g. --duration 5 --markdown docs/BENCHMARKS.md
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/lib/ensure-deps.sh
ensure_deps redis-server redis-tools
echo "==> swift build -c release --product crucial-bench" >&2
swift build -c release --product crucial-bench >&2
exec .build/release/crucial-bench run "$@"
