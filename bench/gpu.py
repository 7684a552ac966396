"""The GPU path in one short run, for a machine with a CUDA GPU: every kind trained and used on the GPU (fp32
and bf16), the same models' outputs on the GPU against the CPU, and training tokens/s on the GPU against the
CPU of the same machine, side by side.

    python bench/gpu.py --out bench/out/gpu                      # on a GPU machine, about 3 minutes
    python bench/gpu.py --device cpu --precisions fp32 --steps 5 --speed-steps 3 --speed-precisions fp32
                                                                 # a smoke test of the script, anywhere

Stages (--stages, comma-separated; default: kinds,speed):

kinds   demo/make_data.py's data; for each kind `rnntool train lm|classify|tag|translate ... --device DEV
        --precision P --max-steps --steps` for each P of --precisions (fp16: autocast with the loss scale),
        then the trained model used on DEV and on the CPU: `evaluate perplexity` (the two perplexities),
        `classify`, `tag`, `translate` (beam 5, --greedy and --shortlist 20; on a GPU also `--precision fp16`): the share
        of output lines that agree. A model trained on the GPU must load and run on the CPU; the outputs
        may differ where two candidates are within float rounding of each other.
speed   `train translate` with bench/multi30k.py's `best` recipe on Multi30k and `train lm` with
        bench/tinyshakespeare.py's `tuned` recipe on Tiny Shakespeare (both read from ../shared/data), for
        --speed-steps steps on DEV in each of --speed-precisions and for --cpu-steps steps on the CPU (the
        recipe's own precision) with --threads threads (the size of the 2-core machines the CPU figures
        in bench/RESULTS.md come from): training tokens/s as each command reports it (tokens over
        training time, start-up excluded), and the ratio.
decode  a trained translation bundle (--model, e.g. what `multi30k.py --device cuda` wrote) decodes the
        first --lines of Multi30k val with `rnntool translate` on DEV in fp32, bf16 and fp16, beam 5 and
        greedy (and fp16 --early-stop), and on the CPU with --threads threads in fp32 and int8, beam 5:
        sentences/s by the command's own timer (model loaded; the log's "translated N lines in S s") and
        cased sacreBLEU of each output.

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
from recipes import bleu_score, override, translate_seconds
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
    for precision in args.precisions:
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
            if kind not in args.kinds:
                continue
            model = models / f"{kind}-{precision}"
            start = time.perf_counter()
            r = rnntool([*cmd, "-o", model, *p, *steps, *args.train_extra], home, log)
            row = {"kind": kind, "precision": precision, "trained": r.returncode == 0,
                   "train_s": round(time.perf_counter() - start, 1)}
            if r.returncode == 0:
                summary = json.loads(r.stdout)
                row["train_summary"] = {k: v for k, v in summary.items() if k in ("steps", "stop_reason")}
                row.update({k: summary.get("metrics", {}).get(k) for k in ("val_loss", "loss_scale", "overflow_steps")})
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
                        s = rnntool(["translate", "-m", model, d / "test.en", "--device", dev, "--shortlist", "20",
                                     "-q"], home, log)  # its lexical shortlist, on each device
                        outputs[f"{dev}-shortlist"] = s.stdout if s.returncode == 0 else None
                        if dev.startswith("cuda"):  # the model decoding in fp16 on the GPU
                            h = rnntool(["translate", "-m", model, d / "test.en", "--device", dev, "--precision",
                                         "fp16", "-q"], home, log)
                            outputs[f"{dev}-fp16"] = h.stdout if h.returncode == 0 else None
                row["ran_on"] = {k: v is not None for k, v in outputs.items()}
                if kind == "lm":
                    row["compare"] = f"ppl {outputs.get(args.device)} on {args.device}, {outputs.get('cpu')} on cpu"
                elif kind == "translation":
                    row["compare"] = (f"beam 5: {agreement(outputs[args.device] or '', outputs['cpu'] or '')}; greedy: "
                                      f"{agreement(outputs[args.device + '-greedy'] or '', outputs['cpu-greedy'] or '')}")
                    row["compare"] += (f"; --shortlist 20: {agreement(outputs[args.device + '-shortlist'] or '', outputs['cpu-shortlist'] or '')}"
                                       f" (against the whole vocabulary on {args.device}: "
                                       f"{agreement(outputs[args.device + '-shortlist'] or '', outputs[args.device] or '')})")
                    if f"{args.device}-fp16" in outputs:
                        row["compare"] += (f"; fp16 decoding against fp32 on {args.device}: "
                                           f"{agreement(outputs[args.device + '-fp16'] or '', outputs[args.device] or '')}")
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
        row = {"what": what, "recipe_precision": cmd[cmd.index("--precision") + 1] if "--precision" in cmd else "fp32"}
        precisions = dict.fromkeys(row["recipe_precision"] if p == "recipe" else p for p in args.speed_precisions)
        runs = [(f"{args.device} {p}", args.device, p, args.speed_steps, None) for p in precisions]
        if args.cpu_steps:
            runs.append(("cpu", "cpu", row["recipe_precision"], args.cpu_steps, args.threads))
        for label, dev, precision, n, threads in runs:
            out = work / "speed" / f"{what.split()[0]}-{label.replace(' ', '-')}"
            shutil.rmtree(out, ignore_errors=True)
            extra = ["--threads", str(threads)] if threads else []
            r = rnntool([*override(cmd, "--precision", precision), "-o", out / "model", "--device", dev,
                         "--max-steps", str(n), "--json", "-q", *extra], work / "speed-registry", log, threads=threads)
            if r.returncode == 0:
                s = json.loads(r.stdout)
                row[label] = {"tokens_per_s": s["metrics"]["tokens_per_s"], "steps": s["steps"],
                              "precision": precision, "threads": threads, "elapsed": s.get("elapsed"),
                              "val_loss": s["metrics"].get("val_loss"), "overflow_steps": s["metrics"].get("overflow_steps")}
        if "cpu" in row:
            for label, *_ in runs:
                if label != "cpu" and label in row:
                    row[label]["x_cpu"] = round(row[label]["tokens_per_s"] / max(row["cpu"]["tokens_per_s"], 1e-9), 1)
        print(f"  {json.dumps(row)}", flush=True)
        rows.append(row)
    return rows


def decode_stage(args, work: Path, log: Path) -> list[dict]:
    """The same trained bundle decoding the same lines in each number format, beam 5 and greedy."""
    m30k = DATA / "multi30k"
    src, ref = work / "decode.en", work / "decode.de"
    for path, name in ((src, "val.en"), (ref, "val.de")):
        lines = (m30k / name).read_text(encoding="utf-8").splitlines()[:args.lines]
        path.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    n = len(src.read_text(encoding="utf-8").splitlines())
    home = work / "decode-registry"
    runs = [(args.device, p, o) for p in ("fp32", "bf16", "fp16") for o in (["--beam", "5"], ["--greedy"])]
    runs += [(args.device, "fp16", ["--beam", "5", "--early-stop"])]
    runs += [("cpu", p, ["--beam", "5"]) for p in ("fp32", "int8")]
    rows = []
    for dev, precision, options in runs:
        hyp = work / f"decode.{len(rows)}.de"
        threads = args.threads if dev == "cpu" else None
        extra = ["--threads", str(threads)] if threads else []
        r = rnntool(["translate", "-m", args.model, src, "-o", hyp, "--device", dev, "--precision", precision,
                     *options, *extra], home, log, threads=threads)
        row = {"device": dev, "precision": precision, "options": " ".join(options), "threads": threads}
        own = translate_seconds(r.stderr)
        if r.returncode == 0 and own:
            row["sentences_per_s"] = round(n / own, 1)
            b = rnntool(["evaluate", "bleu", "--ref", ref, hyp, "--json", "-q"], home, log)
            if b.returncode == 0:
                row["bleu"] = round(bleu_score(b.stdout), 2)
        print(f"  {json.dumps(row)}", flush=True)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="the device under test (default cuda)")
    ap.add_argument("--stages", default="kinds,speed", help="comma-separated: kinds, speed, decode")
    ap.add_argument("--precisions", default="fp32,bf16,fp16", help="training precisions of the kinds stage")
    ap.add_argument("--kinds", default="lm,classifier,tagger,translation", help="the kinds stage's kinds")
    ap.add_argument("--speed-precisions", default="fp32,bf16,fp16", help="training precisions on --device in the "
                    "speed stage ('recipe': the recipe's own)")
    ap.add_argument("--model", type=Path, default=REPO / "bench" / "out" / "multi30k" / "best-fp16" / "model",
                    help="the translation bundle of the decode stage")
    ap.add_argument("--lines", type=int, default=1014, help="Multi30k val lines the decode stage translates")
    ap.add_argument("--steps", type=int, default=60, help="training steps of each kind in the kinds stage")
    ap.add_argument("--train-extra", default="", help="more `train` options for the kinds stage, e.g. '--ema 0.99'")
    ap.add_argument("--speed-steps", type=int, default=300, help="training steps on --device in the speed stage")
    ap.add_argument("--cpu-steps", type=int, default=30, help="training steps on the CPU in the speed stage")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of the CPU side (default 2)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "gpu", help="work directory")
    args = ap.parse_args(argv)
    args.precisions = [p for p in args.precisions.split(",") if p]
    args.speed_precisions = [p for p in args.speed_precisions.split(",") if p]
    args.kinds = [k for k in args.kinds.split(",") if k]
    args.train_extra = shlex.split(args.train_extra)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if any(s not in ("kinds", "speed", "decode") for s in stages):
        ap.error(f"--stages: choose from kinds, speed, decode (got {args.stages!r})")
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
        (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    if "speed" in stages:
        print("\n[speed]", flush=True)
        results["speed"] = speed_stage(args, args.out, log)
        (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    if "decode" in stages:
        print("\n[decode]", flush=True)
        results["decode"] = decode_stage(args, args.out, log)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    failed = [r for r in results.get("kinds", []) if not r["trained"] or not all(r.get("ran_on", {}).values())]
    print(f"\n{len(failed)} kind/precision runs failed" if failed else "\nevery kind trained and ran on both devices")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
