"""LM throughput: `rnntool train lm` and `rnntool evaluate perplexity` against bare PyTorch loops.

    .venv/bin/python bench/lm_throughput.py                     # 2x512 LSTM, batch 32 x bptt 64
    .venv/bin/python bench/lm_throughput.py --threads 2 --steps 200
    .venv/bin/python bench/lm_throughput.py --hidden 64 --steps 20 --eval-lines 200    # a smoke test

Training: the real command (a subprocess, as a user runs it) against a bare loop (nn.Embedding ->
nn.LSTM -> nn.Linear, Adam, hidden state carried and detached) on the same model size, tokens,
batch and BPTT length. Start-up, tokenization (the token cache is built by an untimed first run) and
the final validation and checkpoint are taken out by running the command for --steps and 2 x --steps
and dividing the extra tokens by the extra wall-clock time. Every measurement is repeated in
--repeat interleaved rounds and the fastest of each is kept (noise on a VM only ever adds time).

Allocator: rnntool tunes glibc's malloc for tensors (rnntool/runtime.py: freed activation memory is
kept for the next step instead of being unmapped and faulted in again). The bare loop is measured
twice: with the same allocator settings (the ratio that isolates the training loop's own overhead)
and with glibc's defaults, as a plain script runs (the speed a user gains by using rnntool).

Scoring: `rnntool evaluate perplexity` (subprocess) on the validation text and on the same text
repeated, so start-up and model loading cancel, against a bare no-grad forward loop on the same lines
in both modes: sentence (length-sorted padded batches of 64) and stream (one sequence, state carried,
segments of 512). Target: every ratio (rnntool / bare) >= 0.95.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
OUT = REPO / "bench" / "out" / "lm_throughput"


def rnntool(args: list[str], env: dict) -> tuple[dict, float, str]:
    """Run `rnntool ARGS --json`; return its JSON, the wall time and the command line."""
    shown = "rnntool " + shlex.join(args)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "rnntool", *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"bench: `{shown}` failed: {r.stderr.strip().splitlines()[-1:]}")
    return json.loads(r.stdout), wall, shown


def per_second(pair: list[tuple[float, float]]) -> float:
    """Extra tokens over extra seconds between a short and a long run (start-up cancels out)."""
    (tokens_a, secs_a), (tokens_b, secs_b) = pair
    if secs_b <= secs_a:
        sys.exit("bench: the longer run was not slower: too little work to measure; raise --steps/--eval-lines")
    return (tokens_b - tokens_a) / (secs_b - secs_a)


# -- bare PyTorch ---------------------------------------------------------------------------------
def bare_model(vocab: int, embed: int, hidden: int, layers: int, dropout: float):
    import torch
    from torch import nn

    class Bare(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(vocab, embed)
            self.drop = nn.Dropout(dropout)
            self.lstm = nn.LSTM(embed, hidden, layers, dropout=dropout, batch_first=True)
            self.out = nn.Linear(hidden, vocab)

        def forward(self, x, state=None):
            h, state = self.lstm(self.drop(self.emb(x)), state)
            return self.out(self.drop(h)), state

    torch.manual_seed(0)
    return Bare()


def bare_train_tokens_per_s(ids, args, vocab: int) -> float:
    import torch
    import torch.nn.functional as F

    model = bare_model(vocab, args.embed, args.hidden, args.layers, args.dropout).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = torch.tensor(ids[: len(ids) // args.batch_size * args.batch_size]).view(args.batch_size, -1)  # (B, L)
    state, pos = None, 0

    def step():
        nonlocal state, pos
        if pos + args.bptt + 1 > data.size(1):
            state, pos = None, 0
        x, y = data[:, pos : pos + args.bptt], data[:, pos + 1 : pos + args.bptt + 1]
        pos += args.bptt
        logits, state = model(x, state)
        state = tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()

    for _ in range(min(5, args.steps)):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    return args.steps * args.batch_size * args.bptt / (time.perf_counter() - t0)


def bare_score_tokens_per_s(model, lines_ids: list[list[int]], mode: str) -> float:
    import torch
    import torch.nn.functional as F

    n_tokens = sum(len(x) + 1 for x in lines_ids)
    t0 = time.perf_counter()
    with torch.no_grad():
        if mode == "sentence":
            order = sorted(range(len(lines_ids)), key=lambda i: len(lines_ids[i]))
            for b in range(0, len(order), 64):
                rows = [lines_ids[i] for i in order[b : b + 64]]
                width = max(len(r) for r in rows) + 1
                x = torch.zeros(len(rows), width, dtype=torch.long)
                y = torch.zeros(len(rows), width, dtype=torch.long)
                for j, r in enumerate(rows):
                    x[j, 0], x[j, 1 : len(r) + 1] = 2, torch.tensor(r, dtype=torch.long)
                    y[j, : len(r)], y[j, len(r)] = torch.tensor(r, dtype=torch.long), 3
                logits, _ = model(x)
                F.cross_entropy(logits.transpose(1, 2), y, ignore_index=0, reduction="none").sum(1).tolist()
        else:
            flat = torch.tensor([t for r in lines_ids for t in (*r, 3)])
            x = torch.cat([torch.tensor([3]), flat[:-1]])[None]
            state = None
            for t in range(0, flat.numel(), 512):
                logits, state = model(x[:, t : t + 512], state)
                F.cross_entropy(logits[0], flat[t : t + 512], reduction="none").tolist()
    return n_tokens / (time.perf_counter() - t0)


def bare_train_with_glibc_defaults(args, tokenizer_path: Path) -> float:
    """The bare loop in a fresh process where glibc's malloc keeps its defaults."""
    cmd = [sys.executable, __file__, "--bare-only", str(tokenizer_path), *_model_args(args)]
    env = {**os.environ, "RNNTOOL_MALLOC": "system", "OMP_NUM_THREADS": str(args.threads)}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench: the bare loop with glibc defaults failed: {r.stderr.strip().splitlines()[-1:]}")
    return float(r.stdout.strip().splitlines()[-1])


def _model_args(args) -> list[str]:
    return ["--data", str(args.data), "--threads", str(args.threads), "--steps", str(args.steps),
            "--embed", str(args.embed), "--hidden", str(args.hidden), "--layers", str(args.layers),
            "--dropout", str(args.dropout), "--batch-size", str(args.batch_size), "--bptt", str(args.bptt)]


def corpus_ids(tok, lines: list[str]) -> list[int]:
    return [t for line in tok.encode_batch(lines) for t in (*line, 3)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help="training text (default: the shared tinyshakespeare)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads everywhere (default 2)")
    ap.add_argument("--steps", type=int, default=100, help="timed training steps")
    ap.add_argument("--vocab", type=int, default=1000)
    ap.add_argument("--embed", type=int, default=512)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--bptt", type=int, default=64)
    ap.add_argument("--eval-lines", type=int, default=2000, help="validation lines scored")
    ap.add_argument("--repeat", type=int, default=3,
                    help="interleaved rounds; each figure is the fastest of its rounds (default 3)")
    ap.add_argument("--bare-only", type=Path, metavar="TOKENIZER", help=argparse.SUPPRESS)  # internal
    args = ap.parse_args(argv)
    if not args.data.is_file():
        sys.exit(f"bench: {args.data} not found")

    import torch

    from rnntool.registry.store import Registry
    from rnntool.runtime import tune_allocator
    from rnntool.tokenizers.sentencepiece import Tokenizer
    from rnntool.tokenizers.training import train_tokenizer

    tune_allocator()  # the bare loops get the allocator settings rnntool's commands use
    torch.set_num_threads(args.threads)
    if args.bare_only:
        tok = Tokenizer.load(args.bare_only)
        lines = args.data.read_text(encoding="utf-8").splitlines()
        print(bare_train_tokens_per_s(corpus_ids(tok, lines), args, tok.vocab_size))
        return 0
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    env = {**os.environ, "RNNTOOL_HOME": str(OUT / "registry"), "OMP_NUM_THREADS": str(args.threads)}
    reg = Registry.open(OUT / "registry")
    lines = args.data.read_text(encoding="utf-8").splitlines()
    valid_lines = lines[-args.eval_lines :]
    valid = OUT / "valid.txt"
    valid.write_text("\n".join(valid_lines) + "\n", encoding="utf-8")
    valid_x5 = OUT / "valid-x5.txt"
    valid_x5.write_text("\n".join(valid_lines * 5) + "\n", encoding="utf-8")
    small_valid = OUT / "valid-small.txt"
    small_valid.write_text("\n".join(valid_lines[:20]) + "\n", encoding="utf-8")
    with reg.staging() as stage:
        tok = train_tokenizer([args.data], stage / "tokenizer.model", vocab_size=args.vocab)
        tok_ref = reg.publish(stage, name="bench-tokenizer", kind="tokenizer").ref
    tok_path = reg.load(tok_ref).file("tokenizer.model")

    for line in machine_info(args.threads):
        print(line)
    print(f"data: {args.data}; model: {args.layers}x{args.hidden} LSTM, embed {args.embed}, vocab {args.vocab}, "
          f"dropout {args.dropout}; batch {args.batch_size} x bptt {args.bptt}\n")

    # -- training ---------------------------------------------------------------------------------
    common = [str(args.data), "-t", tok_ref, "--valid", str(small_valid), "--mode", "stream", "--cell", "lstm",
              "--layers", str(args.layers), "--embed-dim", str(args.embed), "--hidden-dim", str(args.hidden),
              "--no-tie-embeddings",  # as the bare loop's nn.Linear output layer
              "--dropout", str(args.dropout), "--batch-size", str(args.batch_size), "--bptt", str(args.bptt),
              "--optimizer", "adam", "--lr", "1e-3", "--clip", "0", "--threads", str(args.threads), "--device", "cpu",
              "--eval-every", "1000000", "--json", "-q", "--name", "bench-lm"]
    rnntool(["train", "lm", *common, "--max-steps", "1"], env)  # builds the token cache: not timed
    train_ids = corpus_ids(tok, lines)
    runs: dict[int, list[tuple[float, float]]] = {args.steps: [], 2 * args.steps: []}
    bare_runs, plain_runs = [], []
    for round_ in range(args.repeat):  # interleaved rounds, so a slow spell hits every column alike
        for steps in runs:
            out, wall, shown = rnntool(["train", "lm", *common, "--max-steps", str(steps)], env)
            runs[steps].append((out["metrics"]["train_tokens"], wall))
            if round_ == 0:
                print(f"$ OMP_NUM_THREADS={args.threads} {shown}")
        bare_runs.append(bare_train_tokens_per_s(train_ids, args, tok.vocab_size))
        plain_runs.append(bare_train_with_glibc_defaults(args, tok_path))
    tool_tps = per_second([min(r, key=lambda run: run[1]) for r in runs.values()])
    bare_tps, plain_tps = max(bare_runs), max(plain_runs)
    print(f"train  rnntool {tool_tps:9.0f} tok/s   bare loop {bare_tps:9.0f} tok/s   ratio {tool_tps / bare_tps:.3f}")
    print(f"       rnntool {tool_tps:9.0f} tok/s   bare loop with glibc malloc defaults {plain_tps:9.0f} tok/s   "
          f"ratio {tool_tps / plain_tps:.3f}\n")

    # -- scoring ------------------------------------------------------------------------------------
    bare = bare_model(tok.vocab_size, args.embed, args.hidden, args.layers, args.dropout).eval()
    ids = tok.encode_batch(valid_lines)
    for mode in ("sentence", "stream"):
        measured: dict[Path, list[tuple[float, float]]] = {valid: [], valid_x5: []}
        refs = []
        rnntool(["evaluate", "perplexity", "-m", "bench-lm", str(small_valid), "--mode", mode, "--json"], env)  # warm-up
        bare_score_tokens_per_s(bare, ids[:50], mode)  # warm-up
        for round_ in range(args.repeat):
            for path in measured:
                out, wall, shown = rnntool(["evaluate", "perplexity", "-m", "bench-lm", str(path), "--mode", mode,
                                            "--device", "cpu", "--json"], env)
                measured[path].append((out["tokens"], wall))
                if round_ == 0:
                    print(f"$ OMP_NUM_THREADS={args.threads} {shown}")
            refs.append(bare_score_tokens_per_s(bare, ids, mode))
        tool = per_second([min(r, key=lambda run: run[1]) for r in measured.values()])
        ref = max(refs)
        print(f"score {mode:8s} rnntool {tool:9.0f} tok/s   bare loop {ref:9.0f} tok/s   ratio {tool / ref:.3f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
