#!/usr/bin/env bash
# Regenerates the committed protoc-c code from Protocol/crucial.proto.
#   tools/regen-proto.sh          write Sources/CCrucialProto/{crucial.pb-c.c,include/crucial.pb-c.h}
#   tools/regen-proto.sh --check  exit 1 if the committed code differs from a fresh generation
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
command -v protoc-c >/dev/null || { echo "protoc-c missing: apt-get install protobuf-c-compiler" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$root/Protocol" && protoc-c --c_out="$tmp" crucial.proto)
# The header lives in include/ so SwiftPM exports it; the .c file includes it by name.
if [[ "${1:-}" == "--check" ]]; then
  diff -u "$root/Sources/CCrucialProto/crucial.pb-c.c" "$tmp/crucial.pb-c.c" &&
  diff -u "$root/Sources/CCrucialProto/include/crucial.pb-c.h" "$tmp/crucial.pb-c.h" ||
    { echo "generated protocol code is stale: run tools/regen-proto.sh" >&2; exit 1; }
  echo "generated protocol code is up to date"
else
  cp "$tmp/crucial.pb-c.c" "$root/Sources/CCrucialProto/crucial.pb-c.c"
  cp "$tmp/crucial.pb-c.h" "$root/Sources/CCrucialProto/include/crucial.pb-c.h"
  echo "regenerated Sources/CCrucialProto from Protocol/crucial.proto"
fi
