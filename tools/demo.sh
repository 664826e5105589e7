#!/usr/bin/env bash
# Runs the Monte Carlo π estimator of the Crucial paper (Listing 1): cloud threads on a local
# Lambda emulator sharing an AtomicLong on a local crucial-server.
#   tools/demo.sh [--release] [crucial-demo options]   (see: tools/demo.sh --help)
# It builds what tools/test.sh builds (a debug build with the tests), so whichever of the two
# runs first builds for both. --release builds and runs the optimised demo instead (a second,
# longer build: several minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/lib/ensure-deps.sh
ensure_deps
release=false
args=()
for a in "$@"; do
  if [[ "$a" == --release ]]; then release=true; else args+=("$a"); fi
done
if $release; then
  echo "==> swift build -c release (crucial-server, crucial-lambda-emulator, crucial-demo)" >&2
  for product in crucial-server crucial-lambda-emulator crucial-demo; do swift build -c release --product "$product" >&2; done
  exec .build/release/crucial-demo ${args[@]+"${args[@]}"}
fi
echo "==> swift build --build-tests (shared with tools/test.sh; the first build takes a few minutes)" >&2
swift build --build-tests >&2
exec .build/debug/crucial-demo ${args[@]+"${args[@]}"}
