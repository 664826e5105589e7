#!/usr/bin/env python3
"""k-means scale-up T1/Tn with the input growing with n: cloud threads vs plain threads.

Figure 3 of the Crucial paper on this machine: each of n threads clusters its own
`--points` points, so the work grows with n, and scale-up = T1/Tn (1 = perfect). Time is
the iterative phase per iteration, which both versions print. Crucial's cloud threads run
on the local Lambda emulator, i.e. on this machine's cores, not on a data centre's: past
the core count both curves must fall. Each n is checked: both versions reach the same
objective. Run it through tools/experiments.sh scaleup.
"""
import argparse
import re

from common import append_markdown, pyplot, run_program, save, say

LINE = re.compile(r"objective = (\S+) after (\S+) s \((\d+) iterations in (\S+) s\)")


def measure(binary, n, args, env=None):
    out = run_program(binary, ["--threads", str(n), "--points", str(args.points), "--k", str(args.k),
                               "--dims", str(args.dims), "--iterations", str(args.iterations)], env=env)
    match = LINE.search(out)
    if not match:
        raise SystemExit(f"{binary} printed no result line:\n{out[-2000:]}")
    objective, iterations, seconds = float(match.group(1)), int(match.group(3)), float(match.group(4))
    return objective, iterations, seconds / max(1, iterations)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2,4,8", help="numbers of threads (default 1,2,4,8)")
    parser.add_argument("--points", type=int, default=20_000, help="points per thread (default 20000)")
    parser.add_argument("--k", type=int, default=25)
    parser.add_argument("--dims", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--bin", default=".build/release")
    parser.add_argument("--plot", default="docs/experiments-scaleup.png")
    parser.add_argument("--markdown", help="append the table to this Markdown file")
    args = parser.parse_args()
    ns = [int(n) for n in args.threads.split(",") if n.strip()]
    if not ns or min(ns) < 1 or ns[0] != 1:
        parser.error("--threads: a list starting with 1 (T1 is the reference)")

    rows, wrong = [], []
    for n in ns:
        say(f"n = {n}: {n} × {args.points} points, k = {args.k}")
        cloud = measure(f"{args.bin}/kmeans-crucial", n, args)
        plain = measure(f"{args.bin}/kmeans-plain", n, args)
        say(f"   cloud threads {cloud[2] * 1000:.1f} ms/iteration, plain threads {plain[2] * 1000:.1f} ms/iteration")
        if abs(cloud[0] - plain[0]) > 1e-9 * abs(plain[0]):
            wrong.append(f"n = {n}: objective {cloud[0]:.9e} on Crucial, {plain[0]:.9e} plain")
        rows.append((n, cloud[2], plain[2]))

    t1_cloud, t1_plain = rows[0][1], rows[0][2]
    lines = [f"k-means scale-up, {args.points} points × {args.dims} dims per thread, k = {args.k} (time per iteration of the iterative phase)",
             f"{'threads':>8}{'cloud ms/it':>13}{'scale-up':>10}{'plain ms/it':>13}{'scale-up':>10}"]
    for n, cloud, plain in rows:
        lines.append(f"{n:>8}{cloud * 1000:>13.1f}{t1_cloud / cloud:>10.2f}{plain * 1000:>13.1f}{t1_plain / plain:>10.2f}")
    lines.append("paper: 0.94 with 160 cloud threads, 0.9 with 320 (on AWS Lambda); here every thread shares this machine's cores")
    report = "\n".join(lines)
    print(report)

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    ax.plot(ns, [1] * len(ns), "k--", label="perfect")
    ax.plot(ns, [t1_cloud / r[1] for r in rows], "o-", label="Crucial (cloud threads, local emulator)")
    ax.plot(ns, [t1_plain / r[2] for r in rows], "s-", label="plain threads")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("threads (input grows with them)")
    ax.set_ylabel("scale-up T1/Tn")
    ax.set_title("k-means scale-up")
    ax.legend()
    ax.grid(alpha=0.3)
    save(fig, args.plot)
    append_markdown(args.markdown, "k-means scale-up (Figure 3)", report, args.plot)
    if wrong:
        raise SystemExit("WRONG RESULTS:\n" + "\n".join(wrong))


if __name__ == "__main__":
    main()
