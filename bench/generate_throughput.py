"""`rnntool generate` tokens/s: sampling, greedy and beam search, in each number format, side by side in one run.

    .venv/bin/python bench/generate_throughput.py -m bench/out/tinyshakespeare/tuned/model --threads 2
    .venv/bin/python bench/generate_throughput.py -m news --precisions fp32,int8 --tokens 300

Every row generates from the same loaded model through `rnntool generate`'s code path
(rnntool.kinds.lm.generate.generate) with a fixed seed: --samples outputs of up to --tokens tokens each
from an empty prompt (sampling: one output after another, as `generate -n N` prints them; beam search:
one output). It prints the machine, the equivalent command of each row, tokens/s (tokens generated over
the time, model loading and start-up not timed) and the ratio to fp32 sampling. One warm-up output first.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from machine import machine_info  # bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model", required=True, help="language model: NAME[@VERSION|@ALIAS] or a bundle dir")
    ap.add_argument("--tokens", type=int, default=200, help="most tokens per output (default 200)")
    ap.add_argument("--samples", type=int, default=8, help="outputs per row (default 8)")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--precisions", default="fp32,bf16,int8", help="number formats, comma-separated")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--registry", default=None)
    args = ap.parse_args(argv)

    import torch

    from rnntool.kinds.lm.generate import GenerateSettings, Sample, generate
    from rnntool.kinds.lm.model import open_lm

    if args.threads:
        torch.set_num_threads(args.threads)
    for line in machine_info(torch.get_num_threads(), args.device):
        print(line)
    print(f"model: {args.model}; {args.samples} outputs of up to {args.tokens} tokens per row\n")
    modes = [("sampling", dict(num_samples=args.samples)), ("greedy", dict(greedy=True)),
             (f"beam {args.beam}", dict(beam=args.beam))]
    rows = []
    for precision in args.precisions.split(","):
        lm = open_lm(args.model, args.registry, args.device, precision)
        lines = 0 if lm.mode == "stream" else 1  # a stream-mode model goes on across line ends
        for how, extra in modes:
            extra = {**extra, "lines": 1 if "beam" in extra else lines}  # beam search gives whole outputs
            settings = GenerateSettings(max_tokens=args.tokens, **extra).validate()
            list(generate(lm, "", GenerateSettings(max_tokens=20, **extra).validate(),
                          generator=torch.Generator().manual_seed(0)))  # warm-up
            runs = args.samples if how == "greedy" else 1  # greedy gives one output per prompt
            started, tokens = time.perf_counter(), 0
            for _ in range(runs):
                for event in generate(lm, "", settings, generator=torch.Generator().manual_seed(1)):
                    if isinstance(event, Sample):
                        tokens += len(event.token_ids)
            elapsed = time.perf_counter() - started
            flags = {"sampling": f"-n {args.samples}", "greedy": "--greedy"}.get(how, f"--beam {args.beam}")
            rows.append((precision, how, tokens, elapsed,
                         f"rnntool generate -m {args.model} {flags} --max-tokens {args.tokens} --lines {extra['lines']} "
                         f"--precision {precision} --seed 1 < /dev/null"))
    base = rows[0][2] / rows[0][3]
    print(f"{'precision':<9} {'decoding':<9} {'tokens':>7} {'seconds':>8} {'tokens/s':>9} {'x fp32 sampling':>15}")
    for precision, how, tokens, elapsed, _ in rows:
        rate = tokens / elapsed
        print(f"{precision:<9} {how:<9} {tokens:>7} {elapsed:>8.2f} {rate:>9.1f} {rate / base:>15.2f}")
    print("\ncommands (the CLI also pays start-up and model loading):")
    for *_, command in rows:
        print(f"  {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
