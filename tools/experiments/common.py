"""What the experiments share: running an app, progress output, the Markdown record."""
import os
import subprocess
import sys
import threading
import time


def say(message):
    print(f"==> {message}", file=sys.stderr, flush=True)


def run_program(binary, args, timeout=3600, env=None):
    """Runs one of the built apps and returns its standard output; exits on failure."""
    environment = dict(os.environ, **(env or {}))
    try:
        proc = subprocess.run([binary] + args, capture_output=True, text=True, timeout=timeout, env=environment)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"{os.path.basename(binary)} {' '.join(args)} did not finish in {timeout} s")
    if proc.returncode != 0:
        raise SystemExit(
            f"{os.path.basename(binary)} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout


def append_markdown(path, title, report, plot):
    """Appends a dated run (title, the command that made it, its table and plot) to `path`."""
    if not path:
        return
    args, skip = [], False
    for arg in sys.argv[1:]:  # the command that made it, less where its record went
        if skip or arg.startswith("--markdown"):
            skip = arg == "--markdown" and not skip
            continue
        args.append(arg)
    command = "tools/experiments.sh " + os.path.basename(sys.argv[0]).removesuffix(".py") + " " + " ".join(args)
    with open(path, "a") as out:
        out.write(f"\n### {time.strftime('%Y-%m-%d')}: {title}\n\n`{command.strip()}`\n\n```\n{report}\n```\n\n")
        out.write(f"![{title}]({os.path.basename(plot)})\n")


def save(fig, path):
    """Writes a matplotlib figure as the experiment's PNG."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    say(f"plot: {path}")


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class Service:
    """A server started for an experiment (crucial-server, crucial-lambda-emulator) that
    prints "... listening on HOST:PORT" when ready; stopped on exit from the `with`."""

    def __init__(self, binary, args):
        self.process = subprocess.Popen([binary] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 30
        self.address = None
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if " listening on " in line:
                self.address = line.rsplit(" listening on ", 1)[1].strip()
                break
        if not self.address:
            self.process.kill()
            raise SystemExit(f"{os.path.basename(binary)} did not start")
        # Keep reading what it (and, for the emulator, its functions) prints, or a full
        # pipe would block them.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
