#!/usr/bin/env python3
"""Random forest: apps/randomforest (plain threads, cloud threads) vs scikit-learn.

The journal version of the Crucial paper ports Smile's random forest. Here the same forest
(CART trees, Gini impurity, bootstrap samples, a random subset of features per split, the
same depth, leaf size, features per split and number of trees) is trained by
apps/randomforest/plain with N threads, by apps/randomforest/crucial with N cloud threads
on the local Lambda emulator, and by scikit-learn's RandomForestClassifier with n_jobs=N,
on the same data: the generator of apps/randomforest, reproduced below with the same
random numbers (SplitMix64, Box-Muller) and checked against the app's own dump. The run
fails when the two Swift versions grow different forests, or when an accuracy on the
held-out split is more than 1 point from scikit-learn's. Run it through
tools/experiments.sh rf.
"""
import argparse
import csv
import math
import os
import re
import statistics
import tempfile
import time

import numpy as np

from common import append_markdown, pyplot, run_program, save, say

MASK = (1 << 64) - 1
TRAINED = re.compile(r"trained (\d+) trees in (\S+) s")
RESULT = re.compile(r"accuracy = (\S+), oob error = (\S+), forest (\S+)")


class Random:
    """apps/randomforest's SplitMix64."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def unit(self):
        return (self.next() >> 11) / 9007199254740992.0

    def gaussian(self):
        r = math.sqrt(-2 * math.log(max(self.unit(), 1e-300)))
        return r * math.cos(2 * math.pi * self.unit())


def generate(samples, test_samples, informative, redundant, noise, classes, seed):
    """The data set of apps/randomforest (Dataset.generate), number for number."""
    rng = Random(seed)
    centres = [[-1.0 if rng.unit() < 0.5 else 1.0 for _ in range(informative)] for _ in range(classes)]
    mix = [[rng.unit() * 2 - 1 for _ in range(informative)] for _ in range(redundant)]
    x, y = [], []
    for i in range(samples + test_samples):
        cls = i % classes
        inf = [c + rng.gaussian() * 1.5 for c in centres[cls]]
        red = []
        for w in mix:
            s = 0.0
            for a, b in zip(w, inf):
                s = s + a * b
            red.append(s)
        nse = [rng.gaussian() for _ in range(noise)]
        x.append(inf + red + nse)
        y.append(int(rng.next() % classes) if rng.unit() < 0.05 else cls)
    return np.array(x), np.array(y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="threads, cloud threads and n_jobs (default: the cores)")
    parser.add_argument("--trees", type=int, default=64)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--test-samples", type=int, default=5000)
    parser.add_argument("--informative", type=int, default=10)
    parser.add_argument("--redundant", type=int, default=5)
    parser.add_argument("--noise", type=int, default=5)
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--max-depth", type=int, default=12)
    parser.add_argument("--min-leaf", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each system; the median is reported (default 3)")
    parser.add_argument("--bin", default=".build/release")
    parser.add_argument("--plot", default="docs/experiments-rf.png")
    parser.add_argument("--markdown", help="append the table to this Markdown file")
    args = parser.parse_args()
    features = args.informative + args.redundant + args.noise
    per_split = max(1, int(math.sqrt(features)))
    common = ["--trees", str(args.trees), "--samples", str(args.samples), "--test-samples", str(args.test_samples),
              "--informative", str(args.informative), "--redundant", str(args.redundant), "--noise", str(args.noise),
              "--classes", str(args.classes), "--max-depth", str(args.max_depth), "--min-leaf", str(args.min_leaf),
              "--features-per-split", str(per_split), "--seed", str(args.seed)]

    # The same data: numpy's reproduction against the app's own dump.
    started = time.time()
    x, y = generate(args.samples, args.test_samples, args.informative, args.redundant, args.noise, args.classes, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "data.csv")
        run_program(f"{args.bin}/randomforest-plain", common + ["--dump-data", dump])
        with open(dump) as f:
            rows = [[float(v) for v in row] for row in csv.reader(f)]
    theirs = np.array(rows)
    if theirs.shape != (x.shape[0], x.shape[1] + 1) or not np.array_equal(theirs[:, :-1], x) or not np.array_equal(theirs[:, -1].astype(int), y):
        raise SystemExit("the numpy generator and apps/randomforest's differ: the systems would not see the same data")
    say(f"data: {x.shape[0]} rows x {x.shape[1]} features, identical in numpy and Swift ({time.time() - started:.1f} s)")

    from sklearn.ensemble import RandomForestClassifier

    train, test = slice(0, args.samples), slice(args.samples, args.samples + args.test_samples)
    results = {}

    def swift(name, binary, env=None):
        times, accuracy, oob, forest = [], None, None, None
        for _ in range(args.repeats):
            out = run_program(f"{args.bin}/{binary}", common + ["--threads", str(args.threads)], env=env)
            t, r = TRAINED.search(out), RESULT.search(out)
            if not t or not r or int(t.group(1)) != args.trees:
                raise SystemExit(f"{name}: no result:\n{out[-2000:]}")
            times.append(float(t.group(2)))
            accuracy, oob, forest = float(r.group(1)), float(r.group(2)), r.group(3)
        say(f"{name}: {', '.join(f'{s:.2f}' for s in times)} s, accuracy {accuracy:.4f}, oob error {oob:.4f}")
        results[name] = (statistics.median(times), accuracy, oob, forest)

    swift("plain Swift threads", "randomforest-plain")
    swift("Crucial cloud threads", "randomforest-crucial")
    times = []
    for _ in range(args.repeats):
        model = RandomForestClassifier(n_estimators=args.trees, max_depth=args.max_depth, min_samples_leaf=args.min_leaf,
                                       max_features=per_split, bootstrap=True, oob_score=True, n_jobs=args.threads,
                                       random_state=args.seed)
        start = time.perf_counter()
        model.fit(x[train], y[train])
        times.append(time.perf_counter() - start)
    accuracy = float((model.predict(x[test]) == y[test]).mean())
    say(f"scikit-learn: {', '.join(f'{s:.2f}' for s in times)} s, accuracy {accuracy:.4f}, oob error {1 - model.oob_score_:.4f}")
    results["scikit-learn"] = (statistics.median(times), accuracy, 1 - model.oob_score_, "-")

    if results["plain Swift threads"][3] != results["Crucial cloud threads"][3]:
        raise SystemExit("the plain and Crucial versions grew different forests on the same seed")
    reference = results["scikit-learn"][1]
    lines = [f"Random forest, {args.trees} trees, depth <= {args.max_depth}, leaves >= {args.min_leaf}, {per_split} of {features} features per split, "
             f"{args.samples} training rows, {args.test_samples} held out, {args.threads} threads (median of {args.repeats} runs)",
             f"{'system':<26}{'training s':>12}{'vs sklearn':>12}{'accuracy':>10}{'oob error':>11}"]
    base = results["scikit-learn"][0]
    failed = []
    for name, (seconds, acc, oob, _) in results.items():
        lines.append(f"{name:<26}{seconds:>12.3f}{seconds / base:>11.2f}x{acc:>10.4f}{oob:>11.4f}")
        if abs(acc - reference) > 0.01:
            failed.append(f"{name}: accuracy {acc:.4f} is more than 1 point from scikit-learn's {reference:.4f}")
    lines.append("training s: the forest's growth (the Swift versions include the data's generation by each thread)")
    report = "\n".join(lines)
    print(report)

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    names = list(results)
    ax.bar(range(len(names)), [results[n][0] for n in names], color=["#888", "#47a", "#a74"])
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("training time (s)")
    ax.set_title(f"Random forest, {args.trees} trees, {args.threads} threads")
    ax.grid(axis="y", alpha=0.3)
    save(fig, args.plot)
    if args.markdown:
        append_markdown(args.markdown, "Random forest (tools/experiments.sh rf)", report, args.plot)
    if failed:
        raise SystemExit("\n".join(failed))


if __name__ == "__main__":
    main()
