#!/usr/bin/env bash
# The experiments of §6 of the Crucial paper on this machine (benchmarks, not tests): each
# prints a table, draws a PNG and exits non-zero when a run's result is wrong.
#   tools/experiments.sh ml [options]            k-means (k=25, 200) and logistic regression: Crucial
#                                                vs Spark MLlib (pyspark, local) vs plain threads (Fig. 4, 5)
#   tools/experiments.sh scaleup [options]       k-means scale-up T1/Tn, cloud vs plain threads (Fig. 3)
#   tools/experiments.sh santa [options]         Santa Claus: plain vs shared objects vs cloud threads (Fig. 7c)
#   tools/experiments.sh mapsync [options]       synchronising a map phase of 100 cloud threads (Fig. 6)
#   tools/experiments.sh barrier [options]       barrier wait vs number of cloud threads (Fig. 7a)
#   tools/experiments.sh orchestration [options] chain and fan-out/fan-in of n no-op cloud threads
#   tools/experiments.sh rf [options]            random forest: plain threads, cloud threads, scikit-learn
#   tools/experiments.sh peers [options]         Monte Carlo and k-means: Crucial, plain threads, Lithops, Ray
#   tools/experiments.sh all [--markdown FILE]   every one of them, with default sizes
# Options: each command's --help. Python packages (pyspark, numpy, matplotlib, scikit-learn, lithops,
# ray, redis) go to .build/pyenv.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/lib/ensure-deps.sh
command=${1:-}
[[ -n "$command" ]] && shift
case "$command" in
  ml|scaleup|santa|mapsync|barrier|orchestration|rf|peers|all) ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

ensure_deps python3-venv redis-server gnuplot-nox
if [[ "$command" == ml || "$command" == all ]]; then
  ensure_deps openjdk-17-jre-headless libopenblas0
fi
python=.build/pyenv/bin/python
if ! "$python" -c "import numpy, matplotlib, pyspark, sklearn, lithops, ray, redis" 2>/dev/null; then
  echo "==> pip install pyspark numpy matplotlib scikit-learn lithops ray redis (into .build/pyenv)" >&2
  python3 -m venv .build/pyenv >&2
  .build/pyenv/bin/pip install -q pyspark numpy matplotlib scikit-learn lithops ray redis >&2
fi

echo "==> swift build -c release (the apps, crucial-bench, crucial-server, crucial-lambda-emulator)" >&2
for product in montecarlo-plain montecarlo-crucial kmeans-plain kmeans-crucial logreg-plain logreg-crucial santa-plain santa-crucial randomforest-plain randomforest-crucial \
               crucial-bench crucial-server crucial-lambda-emulator; do
  swift build -c release --product "$product" >&2
done

run() {
  local name=$1; shift
  case "$name" in
    ml|scaleup|santa|rf|peers) "$python" "tools/experiments/$name.py" "$@" ;;
    mapsync|barrier|orchestration) .build/release/crucial-bench "$name" "$@" ;;
  esac
}

if [[ "$command" == all ]]; then
  status=0
  for name in ml scaleup santa mapsync barrier orchestration rf peers; do
    echo "==> experiment $name" >&2
    run "$name" "$@" || { echo "==> experiment $name FAILED" >&2; status=1; }
  done
  exit $status
fi
run "$command" "$@"
