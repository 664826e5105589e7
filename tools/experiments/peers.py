#!/usr/bin/env python3
"""Monte Carlo and k-means on the peers users weigh today: Lithops and Ray, beside Crucial.

Four systems run the same two jobs on the same numbers:
- Crucial: apps/montecarlo/crucial and apps/kmeans/crucial, cloud threads on the local
  Lambda emulator and the embedded DSO server;
- plain: apps/montecarlo/plain and apps/kmeans/plain, Swift threads;
- Lithops (PyPI `lithops`, by the Crucial authors' group): its multiprocessing API on the
  localhost backend, shared state in Redis (a local redis-server this script starts), the
  programs written as the Crucial ones are: Processes, a shared Value as the counter, per
  iteration a Value of partial sums under its lock, a Value for the delta and a Barrier;
- Ray (PyPI `ray`, local): Monte Carlo as tasks returning their counts, k-means as actors
  holding their partition and a driver that reduces their partial sums, Ray's idiom.

Python workers use numpy (one thread each, as the Swift kernels use one OpenBLAS thread).
Every worker generates its own data from the apps' generator (SplitMix64, Box-Muller,
reproduced with numpy in ml.py), so every system draws the same points: Monte Carlo's
counts must be equal, and the k-means objectives must agree within 1e-6 (relative).

Each run is a fresh process timed whole (start-up, data generation, the job, shutdown);
k-means also reports its 10 iterations alone, from the moment every worker holds its data.
Medians of --repeat runs. Exits non-zero when a result is wrong. Run it through
tools/experiments.sh peers.
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from common import append_markdown, pyplot, run_program, save, say
from ml import APP_LINE, kmeans_cost, kmeans_points, splitmix, thread_seed, unit

PI_LINE = re.compile(r"pi = (\S+) from (\S+) points in (\S+) s")
INSIDE_LINE = re.compile(r"inside = (\d+)")
SYSTEMS = ("crucial", "plain", "lithops", "ray")
NAMES = {"crucial": "Crucial cloud threads", "plain": "plain Swift threads",
         "lithops": "Lithops localhost + Redis", "ray": "Ray local"}


# --- the jobs, as the peers' workers run them -------------------------------------------

def inside_circle(seed, points, chunk=1_000_000):
    """Points of apps/montecarlo's thread `seed` inside the quarter circle: its x and y are
    the generator's odd and even draws."""
    inside = 0
    for start in range(0, points, chunk):
        n = min(chunk, points - start)
        u = unit(splitmix(seed, 2 * n, 2 * start))
        x, y = u[0::2], u[1::2]
        inside += int(np.count_nonzero(x * x + y * y <= 1))
    return inside


class Partition:
    """One worker's points and its step of Lloyd's algorithm, as apps/kernels does it:
    distances by one matrix product, the first nearest centre, partial sums and counts,
    and how many points changed cluster."""

    def __init__(self, worker, points, dims, k, seed):
        self.x = kmeans_points(points, dims, k, thread_seed(seed, worker))
        self.norms = (self.x ** 2).sum(1)
        self.membership = np.full(points, -1)
        self.k = k

    def step(self, centres):
        d = self.norms[:, None] - 2 * (self.x @ centres.T) + (centres ** 2).sum(1)[None, :]
        nearest = d.argmin(1)
        changed = int(np.count_nonzero(nearest != self.membership))
        self.membership = nearest
        onehot = np.zeros((len(nearest), self.k))
        onehot[np.arange(len(nearest)), nearest] = 1
        return onehot.T @ self.x, onehot.sum(0), changed

    def cost(self, centres):
        return kmeans_cost(self.x, centres)


def centres_from(sums, counts, old):
    """The new centroids; an empty cluster keeps its old one, as the apps do."""
    new = old.copy()
    filled = counts > 0
    new[filled] = sums[filled] / counts[filled][:, None]
    return new


def lithops_montecarlo_worker(seed, points, counter):
    inside = inside_circle(seed, points)
    with counter.get_lock():
        counter.value += inside


def lithops_kmeans_worker(worker, a, sums, deltas, barrier, cost, seconds):
    part = Partition(worker, a["points"], a["dims"], a["k"], a["seed"])
    centres = kmeans_points(a["k"], a["dims"], a["k"], a["seed"])
    barrier.wait()  # every worker holds its data: the iterative phase starts
    start = time.time()
    for i in range(a["iterations"]):
        partial, counts, changed = part.step(centres)
        with sums[i].get_lock():
            sums[i].value = sums[i].value + np.column_stack([partial, counts])
        with deltas[i].get_lock():
            deltas[i].value += changed
        barrier.wait()
        total = sums[i].value
        centres = centres_from(total[:, :-1], total[:, -1], centres)
        if deltas[i].value == 0:
            break
    if worker == 0:
        seconds.value = (i + 1, time.time() - start)
    with cost.get_lock():
        cost.value += part.cost(centres)


def job_lithops(a):
    import lithops.multiprocessing as mp

    if a["job"] == "montecarlo":
        counter = mp.Value("l", 0)
        workers = [mp.Process(target=lithops_montecarlo_worker, args=(t + 1, a["points"], counter))
                   for t in range(a["workers"])]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return counter.value
    sums = [mp.Value("d", 0) for _ in range(a["iterations"])]
    deltas = [mp.Value("l", 0) for _ in range(a["iterations"])]
    cost, seconds = mp.Value("d", 0.0), mp.Value("d")
    barrier = mp.Barrier(a["workers"])
    workers = [mp.Process(target=lithops_kmeans_worker, args=(t, a, sums, deltas, barrier, cost, seconds))
               for t in range(a["workers"])]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if seconds.value == 0:
        raise SystemExit("a Lithops worker failed")
    iterations, phase = seconds.value
    return cost.value, iterations, phase


def job_ray(a, temp):
    import ray

    ray.init(num_cpus=a["workers"], include_dashboard=False, log_to_driver=False, _temp_dir=temp)
    try:
        if a["job"] == "montecarlo":
            count = ray.remote(inside_circle)
            return sum(ray.get([count.remote(t + 1, a["points"]) for t in range(a["workers"])]))
        Actor = ray.remote(Partition)
        parts = [Actor.remote(t, a["points"], a["dims"], a["k"], a["seed"]) for t in range(a["workers"])]
        centres = kmeans_points(a["k"], a["dims"], a["k"], a["seed"])
        ray.get([p.cost.remote(centres[:1]) for p in parts])  # every actor holds its data
        start = time.time()
        for i in range(a["iterations"]):
            steps = ray.get([p.step.remote(centres) for p in parts])
            counts = sum(s[1] for s in steps)
            centres = centres_from(sum(s[0] for s in steps), counts, centres)
            if sum(s[2] for s in steps) == 0:
                break
        phase = time.time() - start
        return sum(ray.get([p.cost.remote(centres) for p in parts])), i + 1, phase
    finally:
        ray.shutdown()


def run_job(a):
    """The child process: one system, one job; prints the apps' result line."""
    started = time.time()
    temp = tempfile.mkdtemp(prefix="r")  # short: Ray's socket paths must fit in 107 bytes
    try:
        result = job_lithops(a) if a["system"] == "lithops" else job_ray(a, temp)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    elapsed = time.time() - started
    if a["job"] == "montecarlo":
        total = a["workers"] * a["points"]
        print(f"inside = {result}")
        print(f"pi = {4 * result / total:.9f} from {total:.0f} points in {elapsed:.2f} s")
    else:
        cost, iterations, phase = result
        print(f"objective = {cost:.6e} after {elapsed:.2f} s ({iterations} iterations in {phase:.3f} s)")


# --- the driver --------------------------------------------------------------------------

class Redis:
    """A redis-server for Lithops' shared state on a free loopback port, with no
    persistence, in a temporary folder removed on exit."""

    def __enter__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.folder = tempfile.mkdtemp(prefix="peers-redis-")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise SystemExit("redis-server did not start")

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


def lithops_config(folder, redis_port, workers):
    path = os.path.join(folder, f"lithops-{workers}.yaml")
    with open(path, "w") as out:
        # data_cleaner off: no cleaner process outliving the run; its files go with TMPDIR.
        out.write(f"lithops:\n  backend: localhost\n  storage: localhost\n  log_level: WARNING\n  data_cleaner: false\n"
                  f"localhost:\n  worker_processes: {workers}\n  runtime: {sys.executable}\n"
                  f"redis:\n  host: 127.0.0.1\n  port: {redis_port}\n")
    return path


def measure(system, job, workers, args, context, timeout=1800):
    """One run: (whole seconds, result, iterations, iterative-phase seconds)."""
    if job == "montecarlo":
        options = ["--threads", str(workers), "--iterations", str(args.mc_points)]
    else:
        options = ["--threads", str(workers), "--points", str(args.points), "--k", str(args.k), "--dims",
                   str(args.dims), "--iterations", str(args.iterations), "--seed", str(args.seed)]
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if system in ("crucial", "plain"):
        command, args_ = f"{args.bin}/{job}-{system}", options
    else:
        command, args_ = sys.executable, [os.path.abspath(__file__), "--job", system, job] + options
        env["PYTHONPATH"] = os.path.dirname(os.path.abspath(__file__))
        env["TMPDIR"] = context["tmp"]  # Lithops' and Ray's files, removed with the run's folder
        if system == "lithops":
            env["LITHOPS_CONFIG_FILE"] = lithops_config(context["folder"], context["redis"], workers)
    started = time.time()
    out = run_program(command, args_, timeout, env)
    whole = time.time() - started
    if job == "montecarlo":
        match = PI_LINE.search(out)
        if not match:
            raise SystemExit(f"{system} Monte Carlo printed no result:\n{out[-2000:]}")
        inside = INSIDE_LINE.search(out)
        # The apps print π to 9 places: 4·inside/total recovers the count exactly.
        count = int(inside.group(1)) if inside else round(float(match.group(1)) * float(match.group(2)) / 4)
        say(f"   {system}: {count} inside of {float(match.group(2)):.0f}, {whole:.3f} s")
        return whole, count, None, None
    match = APP_LINE.search(out)
    if not match:
        raise SystemExit(f"{system} k-means printed no result:\n{out[-2000:]}")
    say(f"   {system}: {match.group(0)}, {whole:.3f} s whole")
    return whole, float(match.group(2)), int(match.group(4)), float(match.group(5))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mc-workers", default="2,8", help="Monte Carlo worker counts (default 2,8)")
    parser.add_argument("--mc-points", type=int, default=10_000_000, help="Monte Carlo points per worker (default 10^7)")
    parser.add_argument("--threads", type=int, default=2, help="k-means workers (default 2)")
    parser.add_argument("--points", type=int, default=50_000, help="k-means points per worker (default 50000)")
    parser.add_argument("--k", type=int, default=25)
    parser.add_argument("--dims", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, the median reported (default 3)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="a subset of " + ",".join(SYSTEMS))
    parser.add_argument("--bin", default=".build/release", help="where the apps are built")
    parser.add_argument("--plot", default="docs/experiments-peers.png")
    parser.add_argument("--markdown", help="append the table to this Markdown file")
    parser.add_argument("--job", nargs=2, metavar=("SYSTEM", "JOB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        run_job({"system": args.job[0], "job": args.job[1], "workers": args.threads,
                 "points": args.iterations if args.job[1] == "montecarlo" else args.points,
                 "k": args.k, "dims": args.dims, "iterations": args.iterations, "seed": args.seed})
        return
    systems = [s for s in args.systems.split(",") if s]
    mc_workers = [int(w) for w in args.mc_workers.split(",") if w]
    if any(s not in SYSTEMS for s in systems) or not systems:
        parser.error(f"--systems: a subset of {','.join(SYSTEMS)}")
    if args.repeat < 1 or args.mc_points < 1 or min(mc_workers + [args.threads]) < 1 or args.points < args.k:
        parser.error("--repeat, --mc-points and the worker counts ≥ 1, --points ≥ --k")

    jobs = [("montecarlo", w) for w in mc_workers] + [("kmeans", args.threads)]
    runs = {(job, w, s): [] for job, w in jobs for s in systems}
    folder = tempfile.mkdtemp(prefix="peers-")
    redis = Redis().__enter__() if "lithops" in systems else None
    try:
        context = {"folder": folder, "redis": redis.port if redis else None, "tmp": os.path.join(folder, "t")}
        os.mkdir(context["tmp"])
        for r in range(args.repeat):
            for job, workers in jobs:
                say(f"run {r + 1}/{args.repeat}: {job}, {workers} workers")
                for system in systems:  # interleaved, so load on the machine falls on every system alike
                    runs[(job, workers, system)].append(measure(system, job, workers, args, context))
    finally:
        if redis:
            redis.__exit__()
        shutil.rmtree(folder, ignore_errors=True)

    failures = check(runs, jobs, systems, args)
    rows = []
    for job, workers in jobs:
        whole = {s: statistics.median(m[0] for m in runs[(job, workers, s)]) for s in systems}
        if job == "montecarlo":
            rows.append((f"Monte Carlo, {workers} workers", whole))
        else:
            rows.append(("k-means", whole))
            rows.append((f"k-means, the {args.iterations} iterations only",
                         {s: statistics.median(m[3] for m in runs[(job, workers, s)]) for s in systems}))
    report = table(rows, systems, args)
    print(report)
    plot(rows, systems, args.plot)
    append_markdown(args.markdown, "Monte Carlo and k-means: Crucial, plain threads, Lithops, Ray", report, args.plot)
    if failures:
        print("\n".join(["WRONG RESULTS:"] + failures), file=sys.stderr)
        sys.exit(1)


def check(runs, jobs, systems, args):
    """Every run's result: Monte Carlo counts equal (to numpy's count when Crucial is not
    run), k-means objectives within 1e-6 of each other and of numpy's on the same data."""
    failures = []
    for job, workers in jobs:
        results = [(s, m[1]) for s in systems for m in runs[(job, workers, s)]]
        if job == "montecarlo":
            expected = sum(inside_circle(t + 1, args.mc_points) for t in range(workers))
            failures += [f"Monte Carlo, {workers} workers: {s} counted {c}, numpy {expected}" for s, c in results if c != expected]
        else:
            points = np.concatenate([kmeans_points(args.points, args.dims, args.k, thread_seed(args.seed, t))
                                     for t in range(workers)])
            expected = reference_kmeans(points, args)
            failures += [f"k-means: {s}'s objective {c:.9e}, numpy's {expected:.9e}" for s, c in results
                         if abs(c - expected) > 1e-6 * expected]
    return failures


def reference_kmeans(points, args):
    """Lloyd's algorithm on all the points in one numpy process: the objective every system must reach."""
    part = Partition.__new__(Partition)
    part.x, part.norms, part.membership, part.k = points, (points ** 2).sum(1), np.full(len(points), -1), args.k
    centres = kmeans_points(args.k, args.dims, args.k, args.seed)
    for _ in range(args.iterations):
        sums, counts, changed = part.step(centres)
        centres = centres_from(sums, counts, centres)
        if changed == 0:
            break
    return part.cost(centres)


def table(rows, systems, args):
    date = time.strftime("%Y-%m-%d")
    lines = [f"Medians of {args.repeat}, seconds, whole process unless said ({date}); Monte Carlo {args.mc_points:,} points "
             f"per worker; k-means k {args.k}, {args.dims} dims, {args.threads} workers × {args.points:,} points, "
             f"{args.iterations} iterations",
             f"{'job':<32}" + "".join(f"{NAMES[s]:>27}" for s in systems)]
    for name, values in rows:
        lines.append(f"{name:<32}" + "".join(f"{values[s]:>27.3f}" for s in systems))
    if "crucial" in systems:
        lines.append("")
        lines.append("ratio to Crucial (> 1: Crucial is faster)")
        for name, values in rows:
            lines.append(f"{name:<32}" + "".join(f"{values[s] / values['crucial']:>26.2f}×" for s in systems))
    return "\n".join(lines)


def plot(rows, systems, path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    xs = np.arange(len(rows))
    width = 0.8 / len(systems)
    for i, s in enumerate(systems):
        ax.bar(xs + (i - (len(systems) - 1) / 2) * width, [v[s] for _, v in rows], width, label=NAMES[s])
    ax.set_xticks(xs, [name.replace(", ", ",\n", 1) for name, _ in rows])
    ax.set_yscale("log")
    ax.set_ylabel("seconds (log scale)")
    ax.set_title("Monte Carlo and k-means: Crucial, plain threads, Lithops, Ray (medians)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    save(fig, path)


if __name__ == "__main__":
    main()
