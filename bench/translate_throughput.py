"""Translation throughput: greedy vs beam search, one sentence at a time vs batched, in one run.

    .venv/bin/python bench/translate_throughput.py -m en-de@prod --lines 500
    .venv/bin/python bench/translate_throughput.py -m runs/en-de --input ../shared/data/multi30k/val.en \
        --beam 5 --batch-size 64 --device cpu --threads 2

Every configuration translates the same lines with the same loaded model through the code path of
`rnntool translate` (rnntool.kinds.translation.translate); model loading and interpreter start-up are not timed. It
prints the machine, the equivalent `rnntool translate` command of each row, sentences/s, and the
ratio to greedy decoding with --batch-size 1. Each configuration is run once after one warm-up batch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from machine import machine_info  # bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_INPUT = REPO.parent / "shared" / "data" / "multi30k" / "val.en"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model", required=True, help="translation model: NAME[@VERSION|@ALIAS] or a bundle dir")
    ap.add_argument("--input", default=str(DEFAULT_INPUT), help="source text, one sentence per line")
    ap.add_argument("--lines", type=int, default=200, help="translate the first N lines")
    ap.add_argument("--beam", type=int, default=5, help="beam size of the beam rows")
    ap.add_argument("--batch-size", type=int, default=32, help="lines per batch in the batched rows")
    ap.add_argument("--batch-tokens", type=int, default=4096, help="padded source subwords per model batch")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--precision", default="fp32", help="fp32, bf16, fp16 (GPU) or int8 (CPU): translate --precision")
    ap.add_argument("--early-stop", action="store_true", help="beam rows with translate --early-stop")
    ap.add_argument("--shortlist", type=int, default=0, help="translate --shortlist K (the model's lexical table)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--registry", default=None, help="registry directory (default: $RNNTOOL_HOME)")
    args = ap.parse_args(argv)

    import torch

    from rnntool.textio import read_lines
    from rnntool.kinds.translation.translate import DecodeSettings, open_translator

    if args.threads:
        torch.set_num_threads(args.threads)
    lines = [line for _, line in zip(range(args.lines), read_lines(args.input))]
    translator = open_translator(args.model, args.registry, args.device, precision=args.precision,
                                 shortlist=args.shortlist)
    for line in machine_info(torch.get_num_threads(), str(translator.device)):
        print(line)
    print(f"model: {translator.ref}; input: {args.input}, {len(lines)} lines")
    print()

    configs = [("greedy", 1), ("greedy", args.batch_size), (f"beam {args.beam}", 1), (f"beam {args.beam}", args.batch_size)]
    rows = []
    for how, batch_size in configs:
        greedy = how == "greedy"
        translator.settings = DecodeSettings(beam=1 if greedy else args.beam, greedy=greedy,
                                             length_penalty=0.0 if greedy else 0.6,
                                             early_stop=args.early_stop and not greedy).validate()
        list(translator.stream(lines[:batch_size], batch_size, args.batch_tokens))  # warm-up
        if translator.device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        outputs = list(translator.stream(lines, batch_size, args.batch_tokens))
        if translator.device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        flags = "--greedy" if greedy else f"--beam {args.beam}" + (" --early-stop" if args.early_stop else "")
        flags += f" --precision {args.precision}" + (f" --shortlist {args.shortlist}" if args.shortlist else "")
        command = (f"rnntool translate -m {args.model} {flags} --batch-size {batch_size} "
                   f"--batch-tokens {args.batch_tokens} --device {args.device} {args.input}")
        rows.append((how, batch_size, len(outputs) / elapsed, elapsed, command))

    base = rows[0][2]
    print(f"{'decoding':<10} {'batch':>5} {'sent/s':>9} {'seconds':>8} {'x greedy-1':>10}")
    for how, batch_size, rate, elapsed, _ in rows:
        print(f"{how:<10} {batch_size:>5} {rate:>9.1f} {elapsed:>8.2f} {rate / base:>10.2f}")
    greedy_b, beam_1, beam_b = rows[1][2], rows[2][2], rows[3][2]
    print()
    print(f"batching speed-up: greedy x{greedy_b / base:.2f}, beam x{beam_b / beam_1:.2f}; "
          f"beam {args.beam} costs x{base / beam_1:.2f} (batch 1) and x{greedy_b / beam_b:.2f} (batched) of greedy")
    print()
    print("commands (the CLI also pays start-up and model loading):")
    for *_, command in rows:
        print(f"  {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
