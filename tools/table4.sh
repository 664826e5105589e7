#!/usr/bin/env bash
# Prints the paper's Table 4 for this repository: for each application in apps/, the
# lines of its Crucial port and how many of them differ from the plain threaded version
# (lines a diff of the two shows as added or changed on the Crucial side), and how many
# still differ once every `try` and `await` is taken out of both: the lines that are more
# than the marks Swift requires on a remote call.
#   tools/table4.sh            a table
#   tools/table4.sh --markdown a Markdown table
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A paper=([montecarlo]="44 / 2" [kmeans]="329 / 8" [logreg]="430 / 10" [santa]="255 / 15")
markdown=false
[[ "${1:-}" == "--markdown" ]] && markdown=true
if $markdown; then
  echo "| application | total lines | changed lines | changed | without try/await | paper (total / changed) |"
  echo "| --- | ---: | ---: | ---: | ---: | --- |"
else
  printf "%-14s %12s %14s %9s %18s   %s\n" application "total lines" "changed lines" changed "without try/await" "paper (total / changed)"
fi
# Both versions with `try ` and `await ` removed (not `try?`/`try!`, which a plain program may use).
unmarked() { cat "$@" | sed -E 's/\btry await //g; s/\bawait //g; s/\btry //g'; }
for dir in apps/*/; do
  name=$(basename "$dir")
  [[ -d "$dir/plain" && -d "$dir/crucial" ]] || continue
  total=$(cat "$dir"/crucial/*.swift | wc -l)
  changed=$(diff <(cat "$dir"/plain/*.swift) <(cat "$dir"/crucial/*.swift) | grep -c '^>' || true)
  percent=$(awk -v c="$changed" -v t="$total" 'BEGIN { printf "%.1f%%", 100 * c / t }')
  bare=$(diff <(unmarked "$dir"/plain/*.swift) <(unmarked "$dir"/crucial/*.swift) | grep -c '^>' || true)
  barePercent=$(awk -v c="$bare" -v t="$total" 'BEGIN { printf "%d (%.1f%%)", c, 100 * c / t }')
  if $markdown; then
    echo "| $name | $total | $changed | $percent | $barePercent | ${paper[$name]:-} |"
  else
    printf "%-14s %12d %14d %9s %18s   %s\n" "$name" "$total" "$changed" "$percent" "$barePercent" "${paper[$name]:-}"
  fi
done
