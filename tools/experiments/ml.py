#!/usr/bin/env python3
"""k-means and logistic regression: Crucial vs Apache Spark MLlib vs plain threads.

Figures 4 and 5 of the Crucial paper on this machine. The three competitors get the same
generated data (the apps' generator, reproduced here with numpy), the same number of
cores, and are timed on their iterative phase only, as the paper does: from a barrier
once every cloud thread holds its data (Crucial, plain) or from a cached, materialised
RDD (Spark) to the end of the last iteration.

- k-means: 10 iterations of Lloyd's algorithm from the same initial centroids (the first
  k points) with Spark's `KMeans.train(initialModel=...)`; all three objectives must agree.
  Spark runs once on a small sample first, untimed, so its JVM is warm.
- logistic regression: 100 iterations of batch gradient descent, Spark's
  `LogisticRegressionWithSGD` (miniBatchFraction 1); every loss must fall below the
  starting loss ln 2 (Spark's step decays as step/sqrt(t), so the losses differ).

Exits non-zero when a result is wrong. Run it through tools/experiments.sh ml.
"""
import argparse
import math
import os
import re
import sys
import time

import numpy as np

from common import append_markdown, pyplot, run_program, save, say

GAMMA = np.uint64(0x9E3779B97F4A7C15)
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)


def splitmix(seed, count, start=0):
    """Calls start..<start+count of the apps' `Random(seed:).next()` (SplitMix64)."""
    with np.errstate(over="ignore"):
        state = np.uint64(seed) + (np.arange(start + 1, start + count + 1, dtype=np.uint64) * GAMMA)
        z = (state ^ (state >> np.uint64(30))) * M1
        z = (z ^ (z >> np.uint64(27))) * M2
        return z ^ (z >> np.uint64(31))


def unit(bits):
    return (bits >> np.uint64(11)).astype(np.float64) / 9007199254740992.0


def gaussians(u):
    """The apps' Box-Muller over pairs of consecutive unit() draws."""
    return np.sqrt(-2 * np.log(np.maximum(u[..., 0::2], 1e-300))) * np.cos(2 * math.pi * u[..., 1::2])


def thread_seed(seed, thread):
    return (seed + thread * 7919) % 2**64


def kmeans_points(count, dims, k, seed):
    means = unit(splitmix(42, k * dims)).reshape(k, dims) * 100
    draws = splitmix(seed, count * (1 + 2 * dims)).reshape(count, 1 + 2 * dims)
    cluster = (draws[:, 0] % np.uint64(k)).astype(np.int64)
    return means[cluster] + gaussians(unit(draws[:, 1:])) * 5


def logreg_points(count, dims, seed):
    truth = gaussians(unit(splitmix(42, 2 * dims)))
    draws = unit(splitmix(seed, count * (2 * dims + 1)).reshape(count, 2 * dims + 1))
    x = gaussians(draws[:, : 2 * dims])
    p = 1 / (1 + np.exp(-(x @ truth)))
    return x, (draws[:, 2 * dims] < p).astype(np.float64)


def kmeans_cost(points, centres):
    d = (points**2).sum(1)[:, None] - 2 * points @ centres.T + (centres**2).sum(1)[None, :]
    return float(np.maximum(d.min(1), 0).sum())


def logistic_loss(x, y, w):
    p = np.clip(1 / (1 + np.exp(-(x @ w))), 1e-12, 1 - 1e-12)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


APP_LINE = re.compile(r"(objective|loss) = (\S+) after (\S+) s \((\d+) iterations in (\S+) s\)")


def run_app(binary, args, timeout):
    """Runs an app; returns (result, iterations, seconds of the iterative phase)."""
    started = time.time()
    out = run_program(binary, args, timeout)
    match = APP_LINE.search(out)
    if not match:
        raise SystemExit(f"{os.path.basename(binary)} printed no result line:\n{out[-2000:]}")
    say(f"   {os.path.basename(binary)}: {match.group(0)} ({time.time() - started:.1f} s in all)")
    return float(match.group(2)), int(match.group(4)), float(match.group(5))


class Spark:
    def __init__(self, cores, memory):
        from pyspark.sql import SparkSession

        self.session = (
            SparkSession.builder.master(f"local[{cores}]")
            .appName("crucial-experiments")
            .config("spark.driver.memory", memory)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", str(cores))
            .getOrCreate()
        )
        self.session.sparkContext.setLogLevel("ERROR")
        self.cores = cores

    def cached(self, rows):
        """A Java RDD of MLlib rows, cached and materialised: loading is not timed."""
        from pyspark.mllib.common import _py2java

        sc = self.session.sparkContext
        # MLlib's Python entry points persist their input at MEMORY_AND_DISK themselves.
        rdd = _py2java(sc, sc.parallelize(rows, self.cores)).persist(sc._jvm.org.apache.spark.storage.StorageLevel.MEMORY_AND_DISK())
        rdd.count()
        return rdd

    def kmeans(self, points, initial, iterations):
        from pyspark.mllib.common import callJavaFunc, callMLlibFunc
        from pyspark.mllib.linalg import DenseVector

        data = self.cached([DenseVector(p) for p in points])
        start = time.time()
        model = callMLlibFunc(
            "trainKMeansModel", data, len(initial), iterations, "random", 1, 2, 1e-9,
            [DenseVector(c) for c in initial], "euclidean")
        seconds = time.time() - start
        centres = np.array([c.toArray() for c in callJavaFunc(self.session.sparkContext, model.clusterCenters)])
        data.unpersist()
        return centres, seconds

    def logreg(self, x, y, iterations, step):
        from pyspark.mllib.common import callMLlibFunc
        from pyspark.mllib.linalg import DenseVector
        from pyspark.mllib.regression import LabeledPoint

        data = self.cached([LabeledPoint(label, DenseVector(row)) for row, label in zip(x, y)])
        start = time.time()
        weights = callMLlibFunc(
            "trainLogisticRegressionModelWithSGD", data, iterations, float(step), 1.0,
            DenseVector(np.zeros(x.shape[1])), 0.0, None, False, False, 0.0)[0]
        seconds = time.time() - start
        data.unpersist()
        return np.array(weights.toArray()), seconds

    def stop(self):
        self.session.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="threads, cloud threads and Spark cores (default 2)")
    parser.add_argument("--points", type=int, default=50_000, help="points per thread (default 50000)")
    parser.add_argument("--dims", type=int, default=100)
    parser.add_argument("--ks", default="25,200", help="k-means cluster counts (default 25,200)")
    parser.add_argument("--kmeans-iterations", type=int, default=10)
    parser.add_argument("--logreg-iterations", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1.0, help="gradient step, ours and Spark's initial one")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bin", default=".build/release", help="where the apps are built")
    parser.add_argument("--plot", default="docs/experiments-ml.png")
    parser.add_argument("--markdown", help="append the table to this Markdown file")
    parser.add_argument("--memory", default="6g", help="Spark driver memory")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",") if k.strip()]
    if args.threads < 1 or args.points < max(ks + [1]) or args.dims < 1:
        parser.error("--threads ≥ 1, --points ≥ the largest k, --dims ≥ 1")

    common = ["--threads", str(args.threads), "--dims", str(args.dims), "--points", str(args.points), "--seed", str(args.seed)]
    timeout = 3600
    rows, failures = [], []
    spark = Spark(args.threads, args.memory)
    try:
        say("Spark warm-up (untimed): 2 k-means and 5 gradient-descent iterations on a small sample, so the JVM is warm")
        sample = kmeans_points(2000, args.dims, ks[0], args.seed)
        spark.kmeans(sample, sample[: ks[0]], 2)
        spark.logreg(*logreg_points(2000, args.dims, args.seed), 5, args.rate)
        for k in ks:
            say(f"k-means k={k}: {args.threads} × {args.points} points × {args.dims} dims, {args.kmeans_iterations} iterations")
            km = common + ["--k", str(k), "--iterations", str(args.kmeans_iterations)]
            crucial = run_app(f"{args.bin}/kmeans-crucial", km, timeout)
            plain = run_app(f"{args.bin}/kmeans-plain", km, timeout)
            points = np.concatenate([kmeans_points(args.points, args.dims, k, thread_seed(args.seed, t)) for t in range(args.threads)])
            initial = kmeans_points(k, args.dims, k, args.seed)
            centres, spark_seconds = spark.kmeans(points, initial, args.kmeans_iterations)
            spark_cost = kmeans_cost(points, centres)
            say(f"   Spark MLlib: objective = {spark_cost:.6e}, {spark_seconds:.3f} s")
            for name, value in (("crucial", crucial[0]), ("plain", plain[0])):
                if abs(value - spark_cost) > 1e-6 * spark_cost:
                    failures.append(f"k-means k={k}: {name} objective {value:.9e} ≠ Spark's {spark_cost:.9e}")
            if crucial[1] != plain[1]:
                failures.append(f"k-means k={k}: {crucial[1]} iterations on Crucial, {plain[1]} plain")
            rows.append((f"k-means k={k}", crucial[2], spark_seconds, plain[2], f"objective {crucial[0]:.6e} (Spark {spark_cost:.6e})"))
            del points

        say(f"logistic regression: {args.threads} × {args.points} points × {args.dims} features, {args.logreg_iterations} iterations")
        lr = common + ["--iterations", str(args.logreg_iterations), "--rate", str(args.rate)]
        crucial = run_app(f"{args.bin}/logreg-crucial", lr, timeout)
        plain = run_app(f"{args.bin}/logreg-plain", lr, timeout)
        parts = [logreg_points(args.points, args.dims, thread_seed(args.seed, t)) for t in range(args.threads)]
        x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        weights, spark_seconds = spark.logreg(x, y, args.logreg_iterations, args.rate)
        spark_loss = logistic_loss(x, y, weights)
        say(f"   Spark MLlib: loss = {spark_loss:.6f}, {spark_seconds:.3f} s")
        for name, value in (("crucial", crucial[0]), ("plain", plain[0]), ("Spark", spark_loss)):
            if not value < math.log(2):
                failures.append(f"logistic regression: {name}'s loss {value:.6f} did not fall below ln 2")
        if abs(crucial[0] - plain[0]) > 1e-9 * abs(plain[0]):
            failures.append(f"logistic regression: Crucial's loss {crucial[0]:.9f} ≠ plain {plain[0]:.9f}")
        rows.append(("logistic regression", crucial[2], spark_seconds, plain[2], f"loss {crucial[0]:.6f} (Spark {spark_loss:.6f})"))
    finally:
        spark.stop()

    date = time.strftime("%Y-%m-%d")
    table = [
        f"Iterative phase, {args.threads} cores, {args.threads} × {args.points} points × {args.dims} dims ({date})",
        f"{'workload':<22}{'Crucial s':>11}{'Spark s':>10}{'plain s':>10}{'Spark/Crucial':>15}{'Crucial faster':>16}{'plain/Crucial':>15}   result",
    ]
    for name, c, s, p, result in rows:
        table.append(f"{name:<22}{c:>11.3f}{s:>10.3f}{p:>10.3f}{s / c:>14.2f}×{(1 - c / s) * 100:>15.0f}%{p / c:>14.2f}×   {result}")
    table.append("paper (80 Lambdas vs 80 EMR cores): k-means k=25 Crucial 40 % faster, k=200 ≈ on par, logistic regression 18 % faster")
    report = "\n".join(table)
    print(report)
    plot(rows, args.plot, args.threads)
    append_markdown(args.markdown, "k-means and logistic regression vs Spark MLlib", report, args.plot)
    if failures:
        print("\n".join(["WRONG RESULTS:"] + failures), file=sys.stderr)
        sys.exit(1)


def plot(rows, path, cores):
    plt = pyplot()
    names = [r[0] for r in rows]
    xs = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for i, (label, column) in enumerate((("Crucial (cloud threads)", 1), ("Spark MLlib (local)", 2), ("plain threads", 3))):
        ax.bar(xs + (i - 1) * 0.27, [r[column] for r in rows], 0.27, label=label)
    ax.set_xticks(xs, names)
    ax.set_ylabel("iterative phase (s)")
    ax.set_title(f"k-means (10 iterations) and logistic regression (100), {cores} cores")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    save(fig, path)


if __name__ == "__main__":
    main()
