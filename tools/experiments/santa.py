#!/usr/bin/env python3
"""The Santa Claus problem: plain threads vs shared objects vs cloud threads.

Figure 7c of the Crucial paper on this machine: apps/santa/plain (actor semaphores and
threads in one process), apps/santa/crucial with its participants as threads of one
process but every semaphore and counter in the DSO layer (CRUCIAL_INVOKER=in-process),
and apps/santa/crucial as written, each participant a cloud thread on the local Lambda
emulator: once as the app starts it (its own server and emulator, so 20 cold starts per
run), once against a server and emulator kept running (warm, after one untimed run). Each run checks its own invariants (every delivery with 9 reindeer, groups of
exactly 3 elves, no violation) and fails otherwise. Run it through tools/experiments.sh santa.
"""
import argparse
import re
import statistics

import os

from common import Service, append_markdown, pyplot, run_program, save, say

LINE = re.compile(r"deliveries = (\d+), elf groups = (\d+), violations = (\d+) in (\S+) s")


def measure(name, binary, env, args):
    """Runs one solution `--repeats` times; returns (name, mean s, stdev s)."""
    times = []
    for _ in range(args.repeats):
        out = run_program(f"{args.bin}/{binary}", ["--deliveries", str(args.deliveries), "--elves", str(args.elves), "--pause", str(args.pause)], env=env)
        match = LINE.search(out)
        if not match or int(match.group(1)) != args.deliveries or int(match.group(3)) != 0:
            raise SystemExit(f"{name}: wrong result:\n{out[-2000:]}")
        times.append(float(match.group(4)))
    say(f"{name}: {', '.join(f'{t:.2f}' for t in times)} s")
    return name, statistics.mean(times), statistics.stdev(times) if len(times) > 1 else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=15)
    parser.add_argument("--elves", type=int, default=10)
    parser.add_argument("--pause", type=int, default=20, help="most ms of vacation or toy-making per round (default 20)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each solution; the mean is reported (default 5)")
    parser.add_argument("--bin", default=".build/release")
    parser.add_argument("--plot", default="docs/experiments-santa.png")
    parser.add_argument("--markdown", help="append the table to this Markdown file")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    solutions = [
        ("plain (threads, local objects)", "santa-plain", None),
        ("shared objects (threads, DSO)", "santa-crucial", {"CRUCIAL_INVOKER": "in-process"}),
        ("cloud threads (emulator, DSO)", "santa-crucial", None),
    ]
    rows = []
    with Service(f"{args.bin}/crucial-server", ["--port", "0", "--log-level", "warning"]) as server, Service(
        f"{args.bin}/crucial-lambda-emulator",
        ["--port", "0", "--function", f"crucial={os.path.abspath(args.bin)}/santa-crucial", "--concurrency", str(args.elves + 10), "--log-level", "warning"],
    ) as emulator:
        warm = {"CRUCIAL_SERVERS": server.address, "CRUCIAL_LAMBDA_ENDPOINT": f"http://{emulator.address}"}
        solutions.append(("cloud threads, warm (emulator, DSO)", "santa-crucial", warm))
        run_program(f"{args.bin}/santa-crucial", ["--deliveries", "1", "--elves", str(args.elves), "--helps", "3"], env=warm)
        for name, binary, env in solutions:
            rows.append(measure(name, binary, env, args))
    base = rows[0][1]
    lines = [f"Santa Claus problem, {args.deliveries} deliveries, {args.elves} elves, 9 reindeer, up to {args.pause} ms of vacation or toy-making per round (mean of {args.repeats} runs)",
             f"{'solution':<38}{'seconds':>9}{'stdev':>8}{'vs plain':>10}"]
    for name, mean, stdev in rows:
        lines.append(f"{name:<38}{mean:>9.3f}{stdev:>8.3f}{(mean / max(base, 1e-9) - 1) * 100:>+9.1f}%")
    lines.append("paper: shared objects +8 % over plain Java threads; cloud threads about the same as shared objects")
    report = "\n".join(lines)
    print(report)

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.2))
    ax.bar(range(len(rows)), [r[1] for r in rows], yerr=[r[2] for r in rows], capsize=6, color=["#888", "#4a7", "#47a", "#a74"])
    ax.set_xticks(range(len(rows)), [r[0].replace(' (', '\n(') for r in rows])
    ax.set_ylabel("completion time (s)")
    ax.set_title(f"Santa Claus problem ({args.deliveries} deliveries)")
    ax.grid(axis="y", alpha=0.3)
    save(fig, args.plot)
    append_markdown(args.markdown, "Santa Claus problem (Figure 7c)", report, args.plot)


if __name__ == "__main__":
    main()
