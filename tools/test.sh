#!/usr/bin/env bash
# Builds everything and runs the whole test suite (unit + integration tests with real server processes).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/lib/ensure-deps.sh
ensure_deps zip unzip binutils etcd-server openssl python3-venv  # zip/unzip/readelf for the Lambda packaging tests; etcd for cluster tests; openssl makes the TLS tests' certificates
ensure_pip moto_server 'moto[server]'              # moto's STS for the AWS credentials tests
ensure_venv .build/aws-clients boto3 awscli awslambdaric  # AWS's own clients against the Lambda emulator
echo "==> swift build --build-tests" >&2
swift build --build-tests
echo "==> swift test" >&2
swift test --skip-build
# The documentation is part of the product: its DocC build must have no warning.
tools/docs.sh
