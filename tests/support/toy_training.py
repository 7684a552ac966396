"""Toy training tasks for the training-loop tests (tests/test_training.py, test_checkpoint.py,
test_ddp.py), and a script that trains one — used by the SIGKILL and torchrun tests:

    python tests/toy_training.py RUN_DIR '{"max_steps": 30, "save_every": 1}' [--resume] [--sleep S]

A tiny LSTM language model over random tokens, with dropout (so resume must restore the RNG), a
hidden state carried across batches within an epoch (task state), shuffling by its own generator,
and optional non-finite losses injected at chosen (epoch, batch) positions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rnntool.errors import RnnToolError  # noqa: E402
from rnntool.training.config import TrainConfig  # noqa: E402
from rnntool.training.trainer import seed_everything, train  # noqa: E402


def toy_config(**kw) -> TrainConfig:
    """A TrainConfig for the toy task: CPU, seed 0, lr 0.01, no epoch limit unless given."""
    return TrainConfig(**{"device": "cpu", "seed": 0, "lr": 0.01, "epochs": None, **kw})


class ToyLM(nn.Module):
    def __init__(self, vocab: int = 12, hidden: int = 16, dropout: float = 0.3) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.rnn = nn.LSTM(hidden, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, vocab)
        self.out.weight = self.embed.weight  # tied: checkpoints must store it once

    def forward(self, x, hidden=None):
        h, hidden = self.rnn(self.drop(self.embed(x)), hidden)  # (B, T, H)
        return self.out(self.drop(h)), hidden  # (B, T, V)


class ToyLMTask:
    """Random token sequences; batches of ``batch_size`` rows, ``seq_len`` tokens each."""

    def __init__(self, *, seed: int = 0, vocab: int = 12, n_rows: int = 48, seq_len: int = 8,
                 batch_size: int = 4, dropout: float = 0.3, nan_at=(), valid_losses=None) -> None:
        g = torch.Generator().manual_seed(seed)
        # a learnable pattern: next token = (token + 1) % vocab, with some noise
        start = torch.randint(0, vocab, (n_rows, 1), generator=g)
        rows = (start + torch.arange(seq_len + 1)) % vocab
        noise = torch.rand(rows.shape, generator=g) < 0.1
        rows[noise] = torch.randint(0, vocab, (int(noise.sum()),), generator=g)
        self.train_rows, self.valid_rows = rows, rows[: batch_size * 2].clone()
        self.seed, self.batch_size = seed, batch_size
        self.model = ToyLM(vocab, 16, dropout)
        self.nan_at = {tuple(x) for x in nan_at}
        self.valid_losses = list(valid_losses) if valid_losses is not None else None  # scripted evals
        self.evals = 0
        self.rank, self.world = 0, 1
        self.hidden = None  # carried across the batches of an epoch (resumable task state)
        self.loss_calls = 0

    def set_shard(self, rank: int, world_size: int) -> None:
        self.rank, self.world = rank, world_size

    def _count(self) -> int:
        return len(self.train_rows) // (self.batch_size * self.world)

    def num_batches(self, epoch: int) -> int:
        return self._count()

    def batches(self, epoch: int):
        self.hidden = None
        order = torch.randperm(len(self.train_rows), generator=torch.Generator().manual_seed(self.seed * 1000 + epoch))
        for i in range(self._count()):
            j = (i * self.world + self.rank) * self.batch_size
            yield {"rows": self.train_rows[order[j: j + self.batch_size]], "where": [epoch, i]}

    def loss(self, model, batch):
        self.loss_calls += 1
        rows = batch["rows"]
        logits, hidden = model(rows[:, :-1], self.hidden)  # (B, T, V)
        self.hidden = tuple(h.detach() for h in hidden)
        nll = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), rows[:, 1:].reshape(-1),
                                          reduction="sum")
        if tuple(batch["where"]) in self.nan_at:
            nll = nll * float("nan")
        return nll, rows[:, 1:].numel()

    def evaluate(self, model):
        self.evals += 1
        if self.valid_losses is not None:
            return {"loss": self.valid_losses[min(self.evals, len(self.valid_losses)) - 1]}
        rows = self.valid_rows
        logits, _ = model(rows[:, :-1])
        nll = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), rows[:, 1:].reshape(-1))
        return {"loss": float(nll)}

    def state_dict(self) -> dict:
        return {"hidden": self.hidden, "loss_calls": self.loss_calls}

    def load_state_dict(self, state: dict) -> None:
        self.hidden = state.get("hidden")
        self.loss_calls = state.get("loss_calls", 0)


def make_task(seed: int = 0, **kw) -> ToyLMTask:
    seed_everything(seed)
    return ToyLMTask(seed=seed, **kw)


class CrashAt:
    """A callback that stops training at ``step`` as a crash would (KeyboardInterrupt mid-run)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, info) -> None:
        if info.step == self.step:
            raise KeyboardInterrupt(f"simulated crash at step {info.step}")


class Sleepy:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_step(self, info) -> None:
        time.sleep(self.seconds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("config", help="TrainConfig fields as JSON")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--sleep", type=float, default=0.0)
    ap.add_argument("--result", help="write the TrainResult as JSON here (rank 0)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = TrainConfig(**{"device": "cpu", "seed": 0, **json.loads(args.config)})
    task = make_task(cfg.seed)
    try:
        result = train(task, cfg, run_dir=Path(args.run_dir), resume=args.resume,
                       callbacks=[Sleepy(args.sleep)] if args.sleep else [], model_config={"toy": 1})
    except RnnToolError as e:
        print(f"toy_training: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    if args.result and result.is_main:
        Path(args.result).write_text(json.dumps(result.to_dict()))
    print(json.dumps({"rank": int(os.environ.get("RANK", 0)), "steps": result.steps,
                      "stop": result.stop_reason, "is_main": result.is_main}), flush=True)


if __name__ == "__main__":
    main()
