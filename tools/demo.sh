#!/usr/bin/env bash
# Runs the Monte Carlo π estimator of the Crucial paper (Listing 1): cloud threads on a local
# Lambda emulator sharing an AtomicLong on a local crucial-server.
# Extra arguments go to crucial-demo (see: tools/demo.sh --help).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/lib/ensure-deps.sh
ensure_deps
echo "==> swift build -c release (the first build takes several minutes)" >&2
swift build -c release --product crucial-server >&2
swift build -c release --product crucial-lambda-emulator >&2
swift build -c release --product crucial-demo >&2
exec .build/release/crucial-demo "$@"
