"""LM data memory: the resident set while tokenizing a large corpus into the token cache and while
reading every training batch from it stays flat, far below the corpus size.

    .venv/bin/python bench/lm_memory.py --mb 1024        # a 1 GB corpus (generated under bench/out/)
    .venv/bin/python bench/lm_memory.py --mb 50          # a quick check

The corpus is generated (Tiny Shakespeare lines repeated and shuffled) under bench/out/lm_memory/.
The script prints the peak resident set (VmHWM) after importing everything, after building the token
cache and after one pass over all stream batches (batch 32 x bptt 64), next to the corpus size. Then it
runs `rnntool train lm` for --steps steps of a 1x256 LSTM on Tiny Shakespeare and then on the whole
large corpus (the cache built above is the command's cache: same data and tokenizer fingerprint), and
prints each process's peak resident set: the two should be about the same.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
OUT = REPO / "bench" / "out" / "lm_memory"


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set in MB, from /proc/self/status."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def make_corpus(path: Path, megabytes: int) -> None:
    lines = [line for line in DATA.read_text(encoding="utf-8").splitlines() if line]
    rng = random.Random(0)
    target = megabytes << 20
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        while written < target:
            rng.shuffle(lines)
            block = "\n".join(lines) + "\n"
            f.write(block)
            written += len(block.encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=1024, help="corpus size in MB (default 1024)")
    ap.add_argument("--steps", type=int, default=200, help="training steps of the `train lm` run (default 200)")
    args = ap.parse_args(argv)

    import numpy as np  # noqa: F401  (counted in the baseline)

    from rnntool.kinds.lm.data import StreamBatches, build_token_cache
    from rnntool.registry.store import Registry
    from rnntool.textio import fingerprint_file
    from rnntool.tokenizers.training import train_tokenizer

    OUT.mkdir(parents=True, exist_ok=True)
    corpus = OUT / f"corpus-{args.mb}mb.txt"
    if not corpus.exists() or corpus.stat().st_size < args.mb << 20:
        make_corpus(corpus, args.mb)
    size_mb = corpus.stat().st_size / (1 << 20)
    registry = Registry.open(OUT / "registry")
    with registry.staging() as stage:
        tok = train_tokenizer([DATA], stage / "tokenizer.model", vocab_size=1000)
        tok_ref = registry.publish(stage, name="memory-bench-tokenizer", kind="tokenizer").ref
    print(f"corpus {corpus}: {size_mb:.0f} MB")
    print(f"after imports and tokenizer:   rss {rss_mb()[0]:7.0f} MB  peak {rss_mb()[1]:7.0f} MB")
    sha = fingerprint_file(corpus)["sha256"]
    cache_dir = registry.root / "cache"  # where `rnntool train lm` looks for it
    t0 = time.perf_counter()
    data, hit = build_token_cache([corpus], [sha], tok, cache_dir)
    print(f"token cache ({'hit' if hit else 'built'} in {time.perf_counter() - t0:.0f}s, {data.n_tokens:,} tokens, "
          f"{data.tokens.array.nbytes / (1 << 20):.0f} MB on disk): rss {rss_mb()[0]:7.0f} MB  peak {rss_mb()[1]:7.0f} MB")
    batches = StreamBatches(data, batch_size=32, bptt=64)
    t0 = time.perf_counter()
    for i in range(len(batches)):
        batches.batch(i)
    print(f"all {len(batches):,} stream batches read in {time.perf_counter() - t0:.0f}s: "
          f"rss {rss_mb()[0]:7.0f} MB  peak {rss_mb()[1]:7.0f} MB (corpus {size_mb:.0f} MB)")

    valid = OUT / "valid.txt"
    valid.write_text("".join(line + "\n" for line in DATA.read_text(encoding="utf-8").splitlines()[-200:]),
                     encoding="utf-8")
    env = {**os.environ, "RNNTOOL_HOME": str(registry.root)}
    for text, label in ((DATA, f"{DATA.stat().st_size / (1 << 20):.1f} MB Tiny Shakespeare"),
                        (corpus, f"{size_mb:.0f} MB corpus")):
        cmd = ["rnntool", "train", "lm", str(text), "-t", tok_ref, "--valid", str(valid), "--cell", "lstm",
               "--layers", "1", "--embed-dim", "256", "--hidden-dim", "256", "--batch-size", "32", "--bptt", "64",
               "--max-steps", str(args.steps), "--eval-every", "1000000", "--device", "cpu", "-o",
               str(OUT / "model"), "-q"]
        shutil.rmtree(OUT / "model", ignore_errors=True)
        print(f"$ RNNTOOL_HOME={registry.root} {shlex.join(cmd)}")
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "rnntool", *cmd[1:]], env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            sys.exit(f"bench: train lm failed (exit {proc.returncode})")
        print(f"train lm on the {label} ({args.steps} steps, {time.perf_counter() - t0:.0f}s): "
              f"peak rss {usage.ru_maxrss / 1024:7.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
