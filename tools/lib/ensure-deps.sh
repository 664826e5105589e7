#!/usr/bin/env bash
# Installs what building and testing Crucial needs, when it is missing (Debian/Ubuntu, as root or with sudo).
#   source tools/lib/ensure-deps.sh; ensure_deps [extra-debian-package ...]
ensure_deps() {
  local want=(libprotobuf-c-dev protobuf-c-compiler pkg-config libopenblas-dev "$@") missing=()
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

# ensure_venv DIR PACKAGE...: a virtual environment at DIR holding the packages (pip from
# the package registry), made or completed when one is missing.
#   ensure_venv .build/aws-clients boto3 awscli awslambdaric
ensure_venv() {
  local dir=$1; shift
  local missing=0
  [[ -x "$dir/bin/python" ]] || { echo "==> python3 -m venv $dir" >&2; python3 -m venv "$dir" >&2; missing=1; }
  if ((missing)) || ! "$dir/bin/python" -m pip show -q "$@" >/dev/null 2>&1; then
    echo "==> pip install $* (into $dir)" >&2
    "$dir/bin/pip" install -q "$@" >&2
  fi
}
