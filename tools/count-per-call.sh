#!/bin/bash
# Allocations, locks and system calls per call, on the client and on the server, counted
# exactly with perf's uprobes during the sequential 1 KB put phase of `crucial-bench run`.
# Needs root (perf probe) and a release build: swift build -c release --product crucial-bench.
#
#   tools/count-per-call.sh [path/to/crucial-bench]
#
# The probes slow every call about tenfold: the figures are counts, not times.
set -euo pipefail
bench=$(realpath "${1:-.build/release/crucial-bench}")
[ -x "$bench" ] || { echo "no $bench: swift build -c release --product crucial-bench" >&2; exit 1; }
command -v perf > /dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 1; }
libc=$(ldconfig -p | awk '/libc.so.6 .*x86-64/ && !found {print $NF; found = 1}')
symbol() { nm "$bench" | awk -v re="$1" '$3 ~ re && !found {print $1; found = 1}'; }
serve=$(symbol 'RequestDispatcherC5serve33.*InvokeV_AHtF$')
invoke=$(symbol '13CrucialClientAAC6invoke___6create8readOnly0A4Core5ValueOAF9ObjectRefV_SSSayAHGAF6CreateVSgSbtYaKF$')
[ -n "$serve" ] && [ -n "$invoke" ] || { echo "the call symbols are not in $bench" >&2; exit 1; }
work=$(mktemp -d)
cleanup() {
    # The benchmark's peers (its crucial server, redis-server) are its children: they go first.
    for pid in $(pgrep -f "$bench run" 2> /dev/null); do pkill -9 -P "$pid" 2> /dev/null || true; kill "$pid" 2> /dev/null || true; done
    pkill -f "$bench serve" 2> /dev/null || true
    perf probe -q -d 'probe_count:*' 2> /dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
perf probe -q -x "$libc" -a probe_count:count_malloc=malloc -a probe_count:count_lock=pthread_mutex_lock 2> /dev/null
perf probe -q -x "$bench" -a "probe_count:count_serve=0x$serve" -a "probe_count:count_invoke=0x$invoke" 2> /dev/null
events="probe_count:count_malloc,probe_count:count_lock,syscalls:sys_enter_futex,raw_syscalls:sys_enter"
"$bench" run --duration 1 --latency-ops 20000 > "$work/bench.log" 2>&1 &
for _ in $(seq 1 300); do grep -q "latency:" "$work/bench.log" && break; sleep 0.1; done
sleep 0.6  # past the warm-up
server=$(pgrep -f "$bench serve" | head -1)
client=$(pgrep -f "$bench run" | head -1)
perf stat -x, -e "$events,probe_count:count_serve" -p "$server" -o "$work/server" -- sleep 2 &
perf stat -x, -e "$events,probe_count:count_invoke" -p "$client" -o "$work/client" -- sleep 2
wait "$!" 2> /dev/null || true
for side in client server; do
    awk -F, -v side="$side" '
        /count_malloc/ {m=$1} /count_lock/ {l=$1} /sys_enter_futex/ {f=$1} /raw_syscalls/ {s=$1} /count_serve|count_invoke/ {n=$1}
        END { if (n == 0) { print side ": no calls counted"; exit 1 }
              printf "%s: %d calls; per call: %.1f malloc, %.1f pthread_mutex_lock, %.1f futex, %.1f system calls\n", side, n, m/n, l/n, f/n, s/n }' "$work/$side"
done
