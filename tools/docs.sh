#!/usr/bin/env bash
# Builds the DocC documentation of the libraries an application uses (swift-docc-plugin),
# refusing any warning: Crucial (the umbrella and CrucialProgram), CrucialClient (its catalog: getting started, shared objects, @Shared,
# cloud threads, clusters, operations), CrucialShared, CrucialLambda, CrucialTesting, CrucialServerCore and CrucialServer.
#   tools/docs.sh                     the archives, under .build/plugins/Swift-DocC/outputs
#   tools/docs.sh --static DIR        a static website in DIR (open DIR/documentation/crucialclient/index.html through a web server)
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(--target Crucial --target CrucialClient --target CrucialShared --target CrucialLambda --target CrucialTesting --target CrucialServerCore --target CrucialServer)
if [[ "${1:-}" == --static ]]; then
  [[ -n "${2:-}" ]] || { echo "usage: tools/docs.sh --static DIR" >&2; exit 2; }
  exec swift package --disable-sandbox --allow-writing-to-directory "$2" generate-documentation "${targets[@]}" \
    --warnings-as-errors --enable-experimental-combined-documentation --transform-for-static-hosting --output-path "$2"
fi
echo "==> swift package generate-documentation (warnings are errors)" >&2
swift package --disable-sandbox generate-documentation "${targets[@]}" --warnings-as-errors
