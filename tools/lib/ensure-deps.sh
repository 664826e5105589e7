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

# Installs a PyPI package with pip when `command` (a program it provides) is missing.
#   ensure_pip moto_server 'moto[server]'
ensure_pip() {
  local command=$1 package=$2
  command -v "$command" >/dev/null && return 0
  echo "==> pip install $package" >&2
  python3 -m pip install -q "$package" >&2
}
