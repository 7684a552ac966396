"""The GPU path in one short run, for a machine with a CUDA GPU: every kind trained and used on the GPU (fp32
and bf16), the same models' outputs on the GPU against the CPU, and training tokens/s on the GPU against the
CPU of the same machine, side by side.

    python bench/gpu.py --out bench/out/gpu                      # on a GPU machine, about 3 minutes
    python bench/gpu.py --device cpu --steps 5 --speed-steps 3   # a smoke test of the script, anywhere

Stages (--stages, comma-separated; default: kinds,speed):

kinds   demo/make_data.py's data; for each kind `rnntool train lm|classify|tag|translate ... --device DEV
        --precision fp32|bf16 --max-steps --steps`, then the trained model used on DEV and on the CPU:
        `evaluate perplexity` (the two perplexities), `classify`, `tag`, `translate` (beam 5 and --greedy):
        the share of output lines that agree. A model trained on the GPU must load and run on the CPU; the
        outputs may differ where two candidates are within float rounding of each other.
speed   `train translate` with bench/multi30k.py's `best` recipe on Multi30k and `train lm` with
        bench/tinyshakespeare.py's `tuned` recipe on Tiny Shakespeare (both read from ../shared/data), for
        --speed-steps steps on DEV and for --cpu-steps steps on the CPU with --threads threads (the size of
        the 2-core machines the CPU figures in bench/RESULTS.md come from): training tokens/s as each
        command reports it (tokens over training time, start-up excluded), and the ratio.

The quality runs and decoding speed use the recipe scripts themselves with --device cuda (what a lent
machine's 15 minutes held; results in bench/RESULTS.md, "The GPU path"):
    python bench/multi30k.py --recipe best --max-time 2m --device cuda --threads 2 --json
    python bench/tinyshakespeare.py --recipe tuned --max-time 60s --device cuda

On a lent machine with the checkout but not rnntool's dependencies installed, the missing pure-Python
wheels travel in an ignored folder and the shared data is linked where the scripts look for it:
    pip install --no-index --no-deps --target /tmp/site .whl/*.whl; export PYTHONPATH=/tmp/site:$PWD
    mkdir -p ../shared && ln -sfn $PWD/.gpudata ../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from machine import machine_info  # bench/ is on sys.path when run as a script
from multi30k import RECIPES as MT_RECIPES
from recipes import override
from tinyshakespeare import RECIPES as LM_RECIPES
from tinyshakespeare import valid_fraction_at_90_percent

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"


def rnntool(args: list[str], home: Path, log: Path, stdin: str | None = None, threads: int | None = None
            ) -> subprocess.CompletedProcess:
    """Run ``rnntool ARGS`` (printed first) with the registry ``home``; stderr appended to ``log``."""
    print(f"$ rnntool {shlex.join(str(a) for a in args)}", flush=True)
    env = {**os.environ, "RNNTOOL_HOME": str(home)}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    r = subprocess.run([sys.executable, "-m", "rnntool", *map(str, args)], env=env, capture_output=True, text=True,
                       input=stdin)
    with log.open("a", encoding="utf-8") as f:
        f.write(f"$ rnntool {shlex.join(str(a) for a in args)}\n{r.stderr}\n")
    if r.returncode != 0:
        tail = r.stderr.strip().splitlines()[-3:] or ["(no message)"]
        print(f"  FAILED (exit {r.returncode}): " + " | ".join(tail), flush=True)
    return r


def agreement(a: str, b: str) -> str:
    la, lb = a.splitlines(), b.splitlines()
    same = sum(x == y for x, y in zip(la, lb))
    return f"{same}/{max(len(la), len(lb))} lines agree"


def kinds_stage(args, work: Path, log: Path) -> list[dict]:
    d = work / "demo-data"
    subprocess.run([sys.executable, str(REPO / "demo" / "make_data.py"), str(d)], check=True, capture_output=True)
    home, models = work / "registry", work / "models"
    steps = ["--max-steps", str(args.steps), "-q", "--json"]
    test_sentences = "".join(line.split("\t", 1)[1] + "\n"
                             for line in (d / "clf.test.tsv").read_text(encoding="utf-8").splitlines()[1:])
    rows = []
    for precision in ("fp32", "bf16"):
        p = ["--device", args.device, "--precision", precision]
        trainings = {
            "lm": ["train", "lm", d / "lm.train.txt", "--valid", d / "lm.valid.txt", "--vocab-size", "400",
                   "--layers", "1", "--embed-dim", "128", "--hidden-dim", "256", "--batch-size", "32", "--bptt", "32"],
            "classifier": ["train", "classify", d / "clf.train.tsv", "--valid", d / "clf.valid.tsv",
                           "--vocab-size", "400", "--pooling", "max"],
            "tagger": ["train", "tag", d / "tag.train.conll", "--valid", d / "tag.valid.conll", "--crf",
                       "--select", "span-f1", "--layers", "1"],
            "translation": ["train", "translate", "--src", d / "train.en", "--tgt", d / "train.de", "--valid-src",
                            d / "valid.en", "--valid-tgt", d / "valid.de", "--vocab-size", "600", "--joint-vocab",
                            "--cell", "gru", "--layers", "1", "--embed-dim", "128", "--hidden-dim", "256",
                            "--attention", "general", "--batch-tokens", "2000"],
        }
        for kind, cmd in trainings.items():
            model = models / f"{kind}-{precision}"
            start = time.perf_counter()
            r = rnntool([*cmd, "-o", model, *p, *steps], home, log)
            row = {"kind": kind, "precision": precision, "trained": r.returncode == 0,
                   "train_s": round(time.perf_counter() - start, 1)}
            if r.returncode == 0:
                row["train_summary"] = {k: v for k, v in json.loads(r.stdout).items() if k in ("steps", "stop_reason")}
                outputs = {}
                for dev in (args.device, "cpu"):
                    if kind == "lm":
                        q = rnntool(["evaluate", "perplexity", "-m", model, d / "lm.valid.txt", "--json", "-q",
                                     "--device", dev], home, log)
                        outputs[dev] = json.loads(q.stdout).get("perplexity") if q.returncode == 0 else None
                        g = rnntool(["generate", "-m", model, "--prompt", "The cat", "-n", "2", "--seed", "1",
                                     "--max-tokens", "12", "--device", dev, "-q"], home, log)
                        row[f"generate_{dev}_ok"] = g.returncode == 0
                    elif kind == "classifier":
                        q = rnntool(["classify", "-m", model, "--device", dev, "-q"], home, log, stdin=test_sentences)
                        outputs[dev] = q.stdout if q.returncode == 0 else None
                    elif kind == "tagger":
                        q = rnntool(["tag", "-m", model, d / "tag.test.conll", "--device", dev, "-q"], home, log)
                        outputs[dev] = q.stdout if q.returncode == 0 else None
                    else:
                        q = rnntool(["translate", "-m", model, d / "test.en", "--device", dev, "-q"], home, log)
                        g = rnntool(["translate", "-m", model, d / "test.en", "--greedy", "--device", dev, "-q"],
                                    home, log)
                        outputs[dev] = q.stdout if q.returncode == 0 else None
                        outputs[f"{dev}-greedy"] = g.stdout if g.returncode == 0 else None
                row["ran_on"] = {k: v is not None for k, v in outputs.items()}
                if kind == "lm":
                    row["compare"] = f"ppl {outputs.get(args.device)} on {args.device}, {outputs.get('cpu')} on cpu"
                elif kind == "translation":
                    row["compare"] = (f"beam 5: {agreement(outputs[args.device] or '', outputs['cpu'] or '')}; greedy: "
                                      f"{agreement(outputs[args.device + '-greedy'] or '', outputs['cpu-greedy'] or '')}")
                else:
                    row["compare"] = agreement(outputs[args.device] or "", outputs["cpu"] or "")
            print(f"  {kind} {precision}: {json.dumps(row)}", flush=True)
            rows.append(row)
    return rows


def speed_stage(args, work: Path, log: Path) -> list[dict]:
    m30k, ts = DATA / "multi30k", DATA / "tinyshakespeare" / "input.txt"
    valid = work / "val50"
    valid.mkdir(parents=True, exist_ok=True)
    for lang in ("en", "de"):  # a small validation set: the figure is training speed
        lines = (m30k / f"val.{lang}").read_text(encoding="utf-8").splitlines()[:50]
        (valid / f"val.{lang}").write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    fraction, _, _ = valid_fraction_at_90_percent(ts)
    big_eval = ["--eval-every", "100000"]
    jobs = {
        "Multi30k train translate (best recipe)": ["train", "translate", "--src", m30k / "train.en", "--tgt",
                                                   m30k / "train.de", "--valid-src", valid / "val.en", "--valid-tgt",
                                                   valid / "val.de", *override(MT_RECIPES["best"], *big_eval)],
        "Tiny Shakespeare train lm (tuned recipe)": ["train", "lm", ts, "--valid-fraction", f"{fraction:.6f}",
                                                     *override(LM_RECIPES["tuned"], *big_eval)],
    }
    rows = []
    for what, cmd in jobs.items():
        row = {"what": what}
        for dev, n, threads in ((args.device, args.speed_steps, None), ("cpu", args.cpu_steps, args.threads)):
            out = work / "speed" / f"{what.split()[0]}-{dev}"
            shutil.rmtree(out, ignore_errors=True)
            extra = ["--threads", str(threads)] if threads else []
            r = rnntool([*cmd, "-o", out / "model", "--device", dev, "--max-steps", str(n), "--json", "-q", *extra],
                        work / "speed-registry", log, threads=threads)
            if r.returncode == 0:
                s = json.loads(r.stdout)
                row[dev] = {"tokens_per_s": s["metrics"]["tokens_per_s"], "steps": s["steps"],
                            "threads": threads, "elapsed": s.get("elapsed")}
        if args.device in row and "cpu" in row:
            row["ratio"] = round(row[args.device]["tokens_per_s"] / max(row["cpu"]["tokens_per_s"], 1e-9), 1)
        print(f"  {json.dumps(row)}", flush=True)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="the device under test (default cuda)")
    ap.add_argument("--stages", default="kinds,speed", help="comma-separated: kinds, speed")
    ap.add_argument("--steps", type=int, default=60, help="training steps of each kind in the kinds stage")
    ap.add_argument("--speed-steps", type=int, default=300, help="training steps on --device in the speed stage")
    ap.add_argument("--cpu-steps", type=int, default=30, help="training steps on the CPU in the speed stage")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of the CPU side (default 2)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "gpu", help="work directory")
    args = ap.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if any(s not in ("kinds", "speed") for s in stages):
        ap.error(f"--stages: choose from kinds, speed (got {args.stages!r})")
    for line in machine_info(args.threads, args.device):
        print(line)
    print(f"$ python bench/gpu.py {shlex.join(argv if argv is not None else sys.argv[1:])}\n", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "stderr.log"
    log.write_text("")
    results = {}
    if "kinds" in stages:
        print("[kinds]", flush=True)
        results["kinds"] = kinds_stage(args, args.out, log)
    if "speed" in stages:
        print("\n[speed]", flush=True)
        results["speed"] = speed_stage(args, args.out, log)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    failed = [r for r in results.get("kinds", []) if not r["trained"] or not all(r.get("ran_on", {}).values())]
    print(f"\n{len(failed)} kind/precision runs failed" if failed else "\nevery kind trained and ran on both devices")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
