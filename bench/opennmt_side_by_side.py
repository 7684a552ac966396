"""rnntool against OpenNMT-py 3.5.1, side by side on this machine in one run (issue 15): the same RNN
(2-layer LSTM 256, bidirectional encoder, general attention, input feeding, Adam 1e-3, 1024-token
batches), trained for the same wall-clock budget on Multi30k en->de, then both decoders on the same
source file: sentences/s by each tool's own timer and by wall time with start-up, and cased sacreBLEU of
each output (`rnntool evaluate bleu`, the same scorer for both).

    .venv/bin/python bench/opennmt_side_by_side.py                       # 4 minutes of training each, beam 5
    .venv/bin/python bench/opennmt_side_by_side.py --minutes 30 --best      # and rnntool's `best` recipe
    .venv/bin/python bench/opennmt_side_by_side.py --decode-only             # decode again with the last models
    .venv/bin/python bench/opennmt_side_by_side.py --minutes 30 --reuse-peer --keep-best --recipe opennmt-uniform
            # OpenNMT-py's and rnntool's `best` models of the last run kept, rnntool's copy of the peer's
            # recipe trained anew (here with the peer's initialisation, --init-range 0.1); all decoded again

OpenNMT-py is installed and run with the scripts in ../shared/peers/opennmt/ (its own virtualenv under
--peer-dir, outside the tracked files; its SentencePiece BPE-8k joint model). rnntool trains
bench/multi30k.py's "opennmt" recipe (the same model and batch). Both read ../shared/data/multi30k in
place; the decode file is val.en (first --lines lines) unless --test is given. Training runs one after
the other, never at once; 2 threads each (OpenNMT-py: torch's default on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from machine import machine_info  # bench/ is on sys.path when run as a script
from multi30k import RECIPES
from recipes import bleu_score, translate_seconds

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "multi30k"
PEER = REPO.parent / "shared" / "peers" / "opennmt"
OUT = REPO / "bench" / "out" / "peers"
SHORTLIST = ["--shortlist", "20"]  # `rnntool translate --shortlist 20` (and 100 frequent target subwords)


def sh(cmd: list[str], log: Path, env: dict | None = None) -> tuple[str, float]:
    print(f"$ {shlex.join(cmd)}", flush=True)
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - start
    log.write_text(r.stdout + r.stderr)
    if r.returncode != 0:
        raise SystemExit(f"failed (exit {r.returncode}); see {log}")
    return r.stdout, seconds


def bleu(hyp: Path, ref: Path, log: Path) -> float:
    out, _ = sh([sys.executable, "-m", "rnntool", "evaluate", "bleu", "--ref", str(ref), str(hyp), "--json", "-q"], log)
    return bleu_score(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=4.0, help="training budget of each tool (default 4)")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--lines", type=int, default=1000, help="decode the first N lines of val.en (default 1000)")
    ap.add_argument("--test", type=Path, default=None, help="decode this source file instead")
    ap.add_argument("--ref", type=Path, default=None, help="its references (with --test)")
    ap.add_argument("--peer-dir", type=Path, default=OUT / "opennmt")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--best", action="store_true",
                    help="also train bench/multi30k.py's `best` recipe for the same time (quality against the peer)")
    ap.add_argument("--decode-only", action="store_true",
                    help="reuse the models of the last run (bench/out/peers/side_by_side) and only decode")
    ap.add_argument("--reuse-peer", action="store_true",
                    help="keep OpenNMT-py's model (and training log) of the last run; train rnntool's anew")
    ap.add_argument("--recipe", default="opennmt", help="rnntool's copy of the peer's recipe (bench/multi30k.py)")
    ap.add_argument("--best-recipe", default="best", help="the recipe --best trains (bench/multi30k.py)")
    ap.add_argument("--keep-best", action="store_true",
                    help="decode the last run's `best` model again instead of training one (with --reuse-peer)")
    args = ap.parse_args(argv)
    for line in machine_info(args.threads):
        print(line)
    print(f"$ python bench/opennmt_side_by_side.py {shlex.join(argv if argv is not None else sys.argv[1:])}\n",
          flush=True)
    work = OUT / "side_by_side"
    kept = (work / "checkpoint.txt").read_text() if args.reuse_peer else None
    best_model = work / "rnntool-best"
    if args.keep_best and best_model.is_dir() and not args.decode_only:
        shutil.move(best_model, OUT / "rnntool-best.kept")
    if not args.decode_only:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    if (OUT / "rnntool-best.kept").is_dir():
        shutil.move(OUT / "rnntool-best.kept", best_model)
        print(f"rnntool `best`: the last run's model, {best_model} (--keep-best)", flush=True)
    if args.test is not None:
        src, ref = args.test, args.ref
    else:
        src, ref = work / "src.en", work / "ref.de"
        src.write_text("".join((DATA / "val.en").read_text(encoding="utf-8").splitlines(True)[:args.lines]),
                       encoding="utf-8")
        ref.write_text("".join((DATA / "val.de").read_text(encoding="utf-8").splitlines(True)[:args.lines]),
                       encoding="utf-8")
    n = len(src.read_text(encoding="utf-8").splitlines())
    if not (args.peer_dir / "venv" / "bin" / "onmt_train").exists():
        sh(["bash", str(PEER / "install.sh"), str(args.peer_dir)], work / "install.log")
    seconds = int(args.minutes * 60)
    env = {"OMP_NUM_THREADS": str(args.threads)}
    rnntool_env = {**env, "RNNTOOL_HOME": str(work / "registry")}
    model = work / "rnntool-model"

    # -- training, one after the other -----------------------------------------------------------------
    if args.decode_only:
        checkpoint = (work / "checkpoint.txt").read_text().strip()
    else:
        if kept is not None:
            checkpoint = kept.strip()
            print(f"OpenNMT-py: the last run's model, {checkpoint} (--reuse-peer)", flush=True)
        else:
            out, _ = sh(["bash", str(PEER / "train.sh"), str(args.peer_dir), str(seconds), "1024"],
                        work / "onmt_train.log", env)
            checkpoint = out.strip().splitlines()[-1]
        (work / "checkpoint.txt").write_text(checkpoint + "\n")
        for recipe, bundle, log in [(args.recipe, model, "rnntool_train.log")] + (
                [(args.best_recipe, work / "rnntool-best", "rnntool_best_train.log")] if args.best else []):
            sh([sys.executable, "-m", "rnntool", "train", "translate", "--src", str(DATA / "train.en"), "--tgt",
                str(DATA / "train.de"), "--valid-src", str(DATA / "val.en"), "--valid-tgt", str(DATA / "val.de"),
                "-o", str(bundle), "--max-time", f"{seconds}s", "--threads", str(args.threads), "--seed", "1",
                *RECIPES[recipe]], work / log, rnntool_env)
    training_speed(Path(checkpoint).parent / "train.log", work / "rnntool_train.log")

    # -- decoding the same file ------------------------------------------------------------------------
    beam = args.beam
    # OpenNMT-py: its own script (batches of 30 sentences), and the same run with batches of 4,096 tokens
    # (its translator sorts by length within them, as rnntool's reading ahead does): the peer at its best too.
    big_batch = work / "translate_big_batch.sh"
    big_batch.write_text((PEER / "translate.sh").read_text().replace(
        "-batch_size 30 -batch_type sents", "-batch_size 4096 -batch_type tokens"))
    onmt = [("OpenNMT-py, batch 30 (its script)", PEER / "translate.sh"), ("OpenNMT-py, batch 4096 tokens", big_batch)]
    # rnntool: `rnntool translate` as a user runs it on a file (1,000 lines read ahead, 4,096-token batches),
    # the same with 32-line batches, and the faster settings: int8, bf16, --early-stop
    ours = [("fp32", ["--beam", str(beam)]), ("fp32, --batch-size 32", ["--beam", str(beam), "--batch-size", "32"]),
            ("int8", ["--beam", str(beam), "--precision", "int8"]),
            ("int8, --early-stop", ["--beam", str(beam), "--precision", "int8", "--early-stop"]),
            ("fp32, --early-stop", ["--beam", str(beam), "--early-stop"]),
            ("bf16", ["--beam", str(beam), "--precision", "bf16"]),
            ("fp32 greedy", ["--greedy"]), ("int8 greedy", ["--greedy", "--precision", "int8"]),
            # a target-vocabulary shortlist: 100 frequent target subwords + 20 per source subword
            ("fp32, --shortlist 20", ["--beam", str(beam), *SHORTLIST]),
            ("int8, --shortlist 20", ["--beam", str(beam), "--precision", "int8", *SHORTLIST]),
            ("int8, --shortlist 20 --early-stop", ["--beam", str(beam), "--precision", "int8", "--early-stop", *SHORTLIST]),
            ("int8 greedy, --shortlist 20", ["--greedy", "--precision", "int8", *SHORTLIST])]
    rows = []
    for label, script in onmt:
        for b in (beam, 1):
            hyp = work / f"onmt.{len(rows)}.de"
            out, wall = sh(["bash", str(script), str(args.peer_dir), checkpoint, str(src), str(hyp), str(b)],
                           work / f"onmt_translate{len(rows)}.log", env)
            own = re.search(r"Total translation time \(s\): ([\d.]+)", out)
            rows.append(row(f"{label}", b, float(own.group(1)) if own else None, wall, hyp, ref, work))
    print(f"rnntool rows: the `{args.recipe}` recipe" + (f", and `{args.best_recipe}`" if args.best else ""), flush=True)
    runs = [(f"rnntool {label}", with_table(model, "rnntool-model", rnntool_env, work) if "--shortlist" in options
             else str(model), options) for label, options in ours]
    if (args.best or args.keep_best) and best_model.is_dir():  # quality: rnntool's own recipe against the peer's
        best_ref = with_table(best_model, "rnntool-best", rnntool_env, work)
        runs += [(f"rnntool `{args.best_recipe}` recipe (2x512, no input feeding) {label}", best_ref,
                  ["--beam", str(beam), *options])
                 for label, options in [("fp32", []), ("int8", ["--precision", "int8"]),
                                        ("int8, --early-stop", ["--precision", "int8", "--early-stop"]),
                                        ("int8, --shortlist 20", ["--precision", "int8", *SHORTLIST])]]
    for label, bundle, options in runs:
        hyp = work / f"rnntool.{len(rows)}.de"
        log = work / f"rnntool_translate{len(rows)}.log"
        _, wall = sh([sys.executable, "-m", "rnntool", "translate", "-m", str(bundle), str(src), "-o", str(hyp),
                      "--threads", str(args.threads), *options], log, rnntool_env)
        rows.append(row(label, 1 if "--greedy" in options else beam, translate_seconds(log.read_text()),
                        wall, hyp, ref, work))
    print(f"\ndecoding {n} lines ({src}); training {args.minutes:g} minutes each\n")
    print("| tool | beam | sentences/s (own timer) | sentences/s (wall, with start-up) | BLEU | words out |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        own = f"{n / r['own_s']:.1f}" if r["own_s"] else "-"
        print(f"| {r['tool']} | {r['beam']} | {own} | {n / r['wall_s']:.1f} | {r['bleu']:.2f} | {r['words']} |")
    print()
    base = {b: next(r for r in rows if r["tool"] == "rnntool fp32" and r["beam"] == b) for b in (beam,)}
    for r in rows:
        if not r["tool"].startswith("rnntool") or not r["own_s"] or "best" in r["tool"]:
            continue
        for peer in [p for p in rows if p["tool"].startswith("OpenNMT") and p["beam"] == r["beam"] and p["own_s"]]:
            print(f"{r['tool']} (beam {r['beam']}) / {peer['tool']}: {peer['own_s'] / r['own_s']:.2f}x by own "
                  f"timers, {peer['wall_s'] / r['wall_s']:.2f}x by wall time")
        if r["beam"] == beam and r is not base[beam]:
            print(f"  BLEU against rnntool fp32 beam {beam} (today's decoder): {r['bleu'] - base[beam]['bleu']:+.2f}")
    (work / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def with_table(bundle: Path, name: str, env: dict, work: Path) -> str:
    """A model to translate with --shortlist: the bundle itself when it has a lexical table (rnntool trains
    one into every translation model), else the bundle published with one built from the training data
    (`rnntool models shortlist`, for models trained before tables existed)."""
    if (bundle / "shortlist.safetensors").exists():
        return str(bundle)
    out, _ = sh([sys.executable, "-m", "rnntool", "models", "shortlist", str(bundle), "--src", str(DATA / "train.en"),
                 "--tgt", str(DATA / "train.de"), "--name", f"{name}-shortlist"], work / f"{name}_shortlist.log", env)
    return out.strip()


def row(tool: str, beam: int, own_s: float | None, wall_s: float, hyp: Path, ref: Path, work: Path) -> dict:
    return {"tool": tool, "beam": beam, "own_s": own_s, "wall_s": wall_s,
            "bleu": bleu(hyp, ref, work / f"{hyp.name}.bleu.log"),
            "words": sum(len(line.split()) for line in hyp.read_text(encoding="utf-8").splitlines())}


def training_speed(onmt_log: Path, rnntool_log: Path) -> None:
    """Target tokens/s of both trainings, each by its own log: OpenNMT-py's per-report figures averaged
    (real target tokens), rnntool's summary (real target tokens over training time)."""
    reports = [float(m.group(1)) for m in re.finditer(r"\d+/ *(\d+) tok/s", onmt_log.read_text())] \
        if onmt_log.exists() else []
    summary = re.search(r"\((\d+) steps, (\d+) tok/s", rnntool_log.read_text()) if rnntool_log.exists() else None
    steps = re.findall(r"Step (\d+)/", onmt_log.read_text()) if onmt_log.exists() else []
    if not reports or not summary:
        print("training speed: a log is missing")
        return
    onmt_tps = sum(reports) / len(reports)
    ours = float(summary.group(2))
    print(f"\ntraining, target tokens/s: OpenNMT-py {onmt_tps:,.0f} (mean of its {len(reports)} reports, "
          f"{steps[-1] if steps else '?'} steps), rnntool {ours:,.0f} ({summary.group(1)} steps): "
          f"rnntool / OpenNMT-py = {ours / onmt_tps:.2f}x\n")


if __name__ == "__main__":
    sys.exit(main())
