"""What the experiments share: running an app, progress output, the Markdown record."""
import os
import subprocess
import sys
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
    command = "tools/experiments.sh " + os.path.basename(sys.argv[0]).removesuffix(".py") + " " + " ".join(sys.argv[1:])
    with open(path, "a") as out:
        out.write(f"\n### {time.strftime('%Y-%m-%d')}: {title}\n\n`{command.strip()}`\n\n```\n{report}\n```\n\n")
        out.write(f"![{title}]({os.path.basename(plot)})\n")


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
