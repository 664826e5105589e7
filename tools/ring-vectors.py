#!/usr/bin/env python3
"""The hash ring of docs/PROTOCOL.md ("Placement"), written from that text alone: prints its
test vectors, which HashRingTests checks the Swift implementation against.
    python3 tools/ring-vectors.py"""
import bisect

M = (1 << 64) - 1
OFFSET = 0xCBF29CE484222325


def fnv(data: bytes, h: int = OFFSET) -> int:
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & M
    return h


def mix(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & M
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)


def position(type_name: str, key: str) -> int:
    return mix(fnv(key.encode(), fnv(b"\0", fnv(type_name.encode()))))


def replicas(members: list[str], type_name: str, key: str, rf: int, virtual_nodes: int = 128) -> list[str]:
    ids = sorted(set(members))
    points = sorted((mix(fnv(f"{m}#{v}".encode())), m) for m in ids for v in range(virtual_nodes))
    i = bisect.bisect_left([p for p, _ in points], position(type_name, key)) % len(points)
    chosen: list[str] = []
    while len(chosen) < min(rf, len(ids)):
        if points[i][1] not in chosen:
            chosen.append(points[i][1])
        i = (i + 1) % len(points)
    return chosen


if __name__ == "__main__":
    print(f"AtomicLong/hits at 0x{position('AtomicLong', 'hits'):016X}; a#0 at 0x{mix(fnv(b'a#0')):016X}")
    print("| object | members a, b, c; rf 2 | members a, b, c, d; rf 3 |")
    print("| --- | --- | --- |")
    for t, k in [("AtomicLong", "hits"), ("SharedMap", "users"), ("AtomicLong", "counter:1"), ("AtomicLong", "counter:2"), ("CyclicBarrier", "b")]:
        print(f"| `{t}` `{k}` | {', '.join(replicas(['a', 'b', 'c'], t, k, 2))} | {', '.join(replicas(['a', 'b', 'c', 'd'], t, k, 3))} |")
