#!/usr/bin/env bash
# Speed of two versions of rnntool side by side on one machine, interleaved: the code at BASE (a
# temporary git worktree) and the working tree. Used for refactors that must not change speed.
#
#   bench/compare_commits.sh BASE TRANSLATION_MODEL [LM_STEPS]
#   bench/compare_commits.sh 47a56b3 /tmp/bench/m 50
#
# TRANSLATION_MODEL: a translation bundle both versions can load, e.g. trained for 150 s with
#   rnntool train translate --src ../shared/data/multi30k/train.en --tgt ../shared/data/multi30k/train.de \
#     --valid-src ../shared/data/multi30k/val.en --valid-tgt ../shared/data/multi30k/val.de -o /tmp/bench/m \
#     --joint-vocab --vocab-size 4000 --hidden-dim 256 --embed-dim 256 --layers 2 --attention general \
#     --max-time 150s --threads 1 --eval-every 100000
# Run it on a quiet machine: nothing else running.
set -u
base=${1:?usage: bench/compare_commits.sh BASE TRANSLATION_MODEL [LM_STEPS]}
model=${2:?usage: bench/compare_commits.sh BASE TRANSLATION_MODEL [LM_STEPS]}
steps=${3:-50}
here=$(cd "$(dirname "$0")/.." && pwd)
data=$(cd "$here/../shared/data" && pwd)
py="$here/.venv/bin/python"
tree=$(mktemp -d)
trap 'git -C "$here" worktree remove --force "$tree/base" >/dev/null 2>&1; rm -rf "$tree"' EXIT
git -C "$here" worktree add -f "$tree/base" "$base" -q || exit 2
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
side_root() { if [ "$1" = before ]; then echo "$tree/base"; else echo "$here"; fi; }
for round in 1 2; do
  for side in before after; do
    root=$(side_root $side)
    echo "=== translate_throughput, $side ($(git -C "$root" rev-parse --short HEAD)), round $round"
    PYTHONPATH=$root "$py" "$root/bench/translate_throughput.py" -m "$model" --lines 200 --threads 2 \
      --input "$data/multi30k/val.en"
  done
done
for side in before after; do
  root=$(side_root $side)
  echo "=== lm_throughput, $side ($(git -C "$root" rev-parse --short HEAD))"
  PYTHONPATH=$root "$py" "$root/bench/lm_throughput.py" --threads 2 --steps "$steps" --repeat 2 \
    --data "$data/tinyshakespeare/input.txt"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
