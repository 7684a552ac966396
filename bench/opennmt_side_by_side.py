"""rnntool against OpenNMT-py 3.5.1, side by side on this machine in one run (issue 15): the same RNN
(2-layer LSTM 256, bidirectional encoder, general attention, input feeding, Adam 1e-3, 1024-token
batches), trained for the same wall-clock budget on Multi30k en->de, then both decoders on the same
source file: sentences/s by each tool's own timer and by wall time with start-up, and cased sacreBLEU of
each output (`rnntool evaluate bleu`, the same scorer for both).

    .venv/bin/python bench/opennmt_side_by_side.py                       # 4 minutes of training each, beam 5
    .venv/bin/python bench/opennmt_side_by_side.py --minutes 30 --test test2016.en --ref test2016.de

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

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "multi30k"
PEER = REPO.parent / "shared" / "peers" / "opennmt"
OUT = REPO / "bench" / "out" / "peers"


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
    data = json.loads(out)
    return float(data["bleu"]["score"] if "bleu" in data else data["score"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=4.0, help="training budget of each tool (default 4)")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--lines", type=int, default=1000, help="decode the first N lines of val.en (default 1000)")
    ap.add_argument("--test", type=Path, default=None, help="decode this source file instead")
    ap.add_argument("--ref", type=Path, default=None, help="its references (with --test)")
    ap.add_argument("--peer-dir", type=Path, default=OUT / "opennmt")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    for line in machine_info(args.threads):
        print(line)
    print(f"$ python bench/opennmt_side_by_side.py {shlex.join(argv if argv is not None else sys.argv[1:])}\n",
          flush=True)
    work = OUT / "side_by_side"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
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

    # -- training, one after the other -----------------------------------------------------------------
    out, _ = sh(["bash", str(PEER / "train.sh"), str(args.peer_dir), str(seconds), "1024"], work / "onmt_train.log", env)
    checkpoint = out.strip().splitlines()[-1]
    model = work / "rnntool-model"
    sh([sys.executable, "-m", "rnntool", "train", "translate", "--src", str(DATA / "train.en"), "--tgt",
        str(DATA / "train.de"), "--valid-src", str(DATA / "val.en"), "--valid-tgt", str(DATA / "val.de"),
        "-o", str(model), "--max-time", f"{seconds}s", "--threads", str(args.threads), "--seed", "1",
        *RECIPES["opennmt"]], work / "rnntool_train.log", {**env, "RNNTOOL_HOME": str(work / "registry")})

    # -- decoding the same file ------------------------------------------------------------------------
    rows = []
    for beam in sorted({args.beam, 1}, reverse=True):
        hyp = work / f"onmt.beam{beam}.de"
        out, wall = sh(["bash", str(PEER / "translate.sh"), str(args.peer_dir), checkpoint, str(src), str(hyp),
                        str(beam)], work / f"onmt_translate{beam}.log", env)
        own = re.search(r"Total translation time \(s\): ([\d.]+)", out)
        rows.append({"tool": "OpenNMT-py 3.5.1", "beam": beam, "own_s": float(own.group(1)) if own else None,
                     "wall_s": wall, "bleu": bleu(hyp, ref, work / f"onmt_bleu{beam}.log"),
                     "words": sum(len(line.split()) for line in hyp.read_text(encoding="utf-8").splitlines())})
        hyp = work / f"rnntool.beam{beam}.de"
        decode = ["--greedy"] if beam == 1 else ["--beam", str(beam)]
        out, wall = sh([sys.executable, "-m", "rnntool", "translate", "-m", str(model), str(src), "-o", str(hyp),
                        *decode], work / f"rnntool_translate{beam}.log", {**env, "RNNTOOL_HOME": str(work / "registry")})
        logged = (work / f"rnntool_translate{beam}.log").read_text()
        own = re.search(r"translated \d+ lines in ([\d.]+)s", logged)
        rows.append({"tool": "rnntool", "beam": beam, "own_s": float(own.group(1)) if own else None, "wall_s": wall,
                     "bleu": bleu(hyp, ref, work / f"rnntool_bleu{beam}.log"),
                     "words": sum(len(line.split()) for line in hyp.read_text(encoding="utf-8").splitlines())})
    print(f"\ndecoding {n} lines ({src}); training {args.minutes:g} minutes each\n")
    print("| tool | beam | sentences/s (own timer) | sentences/s (wall, with start-up) | BLEU | words out |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        own = f"{n / r['own_s']:.1f}" if r["own_s"] else "-"
        print(f"| {r['tool']} | {r['beam']} | {own} | {n / r['wall_s']:.1f} | {r['bleu']:.2f} | {r['words']} |")
    for beam in sorted({args.beam, 1}, reverse=True):
        ours = next(r for r in rows if r["tool"] == "rnntool" and r["beam"] == beam)
        theirs = next(r for r in rows if r["tool"] != "rnntool" and r["beam"] == beam)
        if ours["own_s"] and theirs["own_s"]:
            print(f"beam {beam}: rnntool / OpenNMT-py sentences/s, own timers: {theirs['own_s'] / ours['own_s']:.2f}x; "
                  f"wall: {theirs['wall_s'] / ours['wall_s']:.2f}x")
    (work / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
