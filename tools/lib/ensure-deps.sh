#!/usr/bin/env bash
# Installs what building and testing Crucial needs, when it is missing (Debian/Ubuntu, as root or with sudo).
#   source tools/lib/ensure-deps.sh; ensure_deps [extra-debian-package ...]
ensure_deps() {
  local want=(libprotobuf-c-dev protobuf-c-compiler pkg-config "$@") missing=()
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "==> installing ${missing[*]}" >&2
    local sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
  fi
  command -v swift >/dev/null || { echo "swift is not on PATH (Swift 6 toolchain required)" >&2; return 1; }
}
