#!/usr/bin/env bash
# Builds the release benchmark and runs it against its peers on this machine.
#   tools/bench.sh [run options]          DSO layer vs redis-server (installed when missing) and
#                                         redis-benchmark, servers pinned to core 0 and the load to
#                                         core 1 (--no-pin: unpinned), e.g. --duration 5
#                                         --markdown docs/BENCHMARKS.md
#   tools/bench.sh lambda [options]       cloud threads on crucial-lambda-emulator: invocation
#                                         overhead (warm, cold) and Monte Carlo π scale-up
#   tools/bench.sh codec [options]        argument/state format: binary vs JSON sizes and times
#   tools/bench.sh shared [options]       user-defined objects: complex method vs Redis Lua, and
#                                         the k-means update shipped vs fetched-merged-written-back
#   tools/bench.sh cluster [options]      3-member clusters on etcd: 1 KB latency rf=1 vs rf=2 (and
#                                         Redis), with data dirs under each fsync policy (and Redis
#                                         AOF), Figure 8's timeline across a crash and a join (PNG)
#   tools/bench.sh failover [options]     per-key unavailability: a member SIGKILLed, SIGSTOPped,
#                                         etcd paused; with the failure detector and the lease alone
#   tools/bench.sh orchestration [opts]   a chain and a fan-out/fan-in of n no-op cloud threads (PNG)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/lib/ensure-deps.sh
ensure_deps redis-server redis-tools
[[ "${1:-}" == cluster ]] && ensure_deps etcd-server gnuplot-nox
[[ "${1:-}" == failover ]] && ensure_deps etcd-server
[[ "${1:-}" == orchestration ]] && ensure_deps gnuplot-nox
echo "==> swift build -c release (crucial-bench, crucial-server, crucial-lambda-emulator)" >&2
for product in crucial-bench crucial-server crucial-lambda-emulator; do swift build -c release --product "$product" >&2; done
case "${1:-}" in
  lambda|codec|shared|cluster|failover|orchestration) exec .build/release/crucial-bench "$@" ;;
esac
exec .build/release/crucial-bench run "$@"
