#!/usr/bin/env bash
# Time the README's quick start on a fresh clone: the setup (venv + pip install) and the default
# grid end to end. Prints one line per figure. Usage: scripts/measure_quickstart.sh [--reuse-venv DIR]
set -euo pipefail
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
since() { local ms=$(( $(now_ms) - $1 )); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone"
cd "$work/clone"
if [ "${1:-}" = "--reuse-venv" ]; then
  ln -s "$2" .venv
  echo "setup: skipped (reusing $2)"
else
  start=$(now_ms)
  python3 -m venv .venv && .venv/bin/pip install -q -e . >/dev/null
  echo "setup: $(since "$start") s (python3 -m venv + pip install -e .)"
fi
start=$(now_ms)
MLFLOW_TRACKING_URI="sqlite:///$work/clone/mlflow.db" .venv/bin/snakemake --cores all >"$work/run.log" 2>&1 \
  || { tail -30 "$work/run.log"; exit 1; }
echo "default grid: $(since "$start") s on $(nproc) cores" \
     "($(find results/cells -name metrics.json | wc -l) cells)"
start=$(now_ms)
.venv/bin/snakemake --cores all -n 2>&1 | grep -q "Nothing to be done"
echo "second run (nothing to do): $(since "$start") s"
cp results/tables/*.md results/plots/*.png "$repo/docs/" 2>/dev/null || true
