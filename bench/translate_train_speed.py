"""Training speed of the Multi30k translation recipes, side by side: what bf16, input feeding and
model size cost in target tokens per second.

    .venv/bin/python bench/translate_train_speed.py                 # 200 steps per variant, 2 threads
    .venv/bin/python bench/translate_train_speed.py --steps 100 --repeat 1   # a smoke test

Each variant is `bench/multi30k.py`'s `best` recipe with one change, run as the printed
`rnntool train translate` command for --steps steps on Multi30k train.en->train.de (read in place
from ../shared/data/multi30k/), validating once at the end on the first 50 val pairs. The figure is
the training throughput the run logs in its metrics.jsonl at the last logged step: real target
tokens over training time, validation excluded (the log comes every 100 steps). Rounds are interleaved (every variant once, then
again) and the fastest round of each variant is kept, so a busy moment hurts one round only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from machine import machine_info  # bench/ is on sys.path when run as a script
from multi30k import DATA, RECIPES, data_missing
from recipes import override, run_rnntool

OUT = Path(__file__).resolve().parent / "out" / "translate_train_speed"
# the variant, and what it adds to `best` (a later flag overrides an earlier one)
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "best": ("bf16, no input feeding, 2x512", RECIPES["best"]),
    "best-fp32": ("the same in fp32", override(RECIPES["best"], "--precision", "fp32")),
    "best-input-feeding": ("the same with input feeding", override(RECIPES["best"], "--input-feeding")),
    "fast": ("the same at hidden 256", RECIPES["fast"]),
}
VALID_PAIRS = 50


def run_variant(name: str, args, valid: tuple[Path, Path]) -> float | None:
    out = OUT / name
    shutil.rmtree(out, ignore_errors=True)
    d = args.data
    steps = str(args.steps)
    cmd = ["rnntool", "train", "translate", "--src", str(d / "train.en"), "--tgt", str(d / "train.de"),
           "--valid-src", str(valid[0]), "--valid-tgt", str(valid[1]), "-o", str(out / "model"),
           "--max-steps", steps, "--seed", "1234", "--device", "cpu", "--threads", str(args.threads),
           "--run-dir", str(out / "run"), "--json", *override(VARIANTS[name][1], "--eval-every", steps)]
    if run_rnntool(cmd, out, threads=args.threads) is None:
        return None
    records = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [rec for rec in records if rec.get("type") == "train"]
    return train[-1]["tokens_per_s"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200, help="training steps per variant and round (default 200; "
                    "throughput is logged every 100 steps)")
    ap.add_argument("--repeat", type=int, default=2, help="interleaved rounds (default 2)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--data", type=Path, default=DATA, help="the Multi30k directory (default: the shared one)")
    args = ap.parse_args(argv)
    if data_missing(args.data):
        return 1
    for line in machine_info(args.threads):
        print(line)
    OUT.mkdir(parents=True, exist_ok=True)
    valid = (OUT / "valid.en", OUT / "valid.de")
    for side, path in zip(("en", "de"), valid):
        lines = (args.data / f"val.{side}").read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(lines[:VALID_PAIRS]), encoding="utf-8")
    print(f"data: {args.data} (read in place); {args.steps} steps per run, {args.repeat} interleaved rounds\n")
    best: dict[str, float] = {}
    for round_no in range(1, args.repeat + 1):
        for name in VARIANTS:
            tps = run_variant(name, args, valid)
            if tps is None:
                return 1
            print(f"  round {round_no}: {tps:.0f} target tok/s", flush=True)
            best[name] = max(best.get(name, 0.0), tps)
    print(f"\n{'variant':<20} {'what':<32} {'tok/s':>8} {'vs best':>8}")
    for name, (what, _) in VARIANTS.items():
        print(f"{name:<20} {what:<32} {best[name]:>8.0f} {best[name] / best['best']:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
