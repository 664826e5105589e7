#!/usr/bin/env bash
# Builds a Crucial executable as an AWS Lambda `bootstrap` for the provided.al2023 runtime
# and zips it: a thin wrapper over the package's command plugin, which any package that
# depends on Crucial runs the same way (`swift package crucial-lambda-zip --help`):
#
#   tools/package-lambda.sh [--product crucial-demo] [--output .build/lambda/crucial-demo.zip]
#                           [--function-name crucial] [--dynamic-glibc]
#   tools/package-lambda.sh --binary PATH [--no-check] ...   zip an already built binary
#   tools/package-lambda.sh --check PATH                      only check a binary
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/lib/ensure-deps.sh
ensure_deps zip binutils pkg-config
args=("$@")
# This repository's default product: the demo.
if [[ " $* " != *" --product "* && " $* " != *" --binary "* && " $* " != *" --check "* && " $* " != *" --help "* ]]; then
  args=(--product crucial-demo "${args[@]}")
fi
exec swift package --allow-writing-to-package-directory crucial-lambda-zip "${args[@]}"
