"""Language modelling as a task for the one training loop (rnntool.training.trainer).

    task = LMTask(model, train_corpus, valid_corpus, mode="stream", batch_size=32, bptt=64, seed=1)
    result = train(task, train_cfg, run_dir=..., callbacks=[...])

In stream mode the hidden state is carried from one BPTT segment to the next (detached) and reset
at the start of every epoch; it is part of the task's ``state_dict`` so a resumed run continues
with exactly the state an uninterrupted run would have had. Batches are lazy (``LMBatch``): the
loop can skip them on resume without reading any tokens.
"""

from __future__ import annotations

import math

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from rnntool.runtime import to_device
from rnntool.kinds.lm.model import RNNLM, State, detach_state, move_state, state_from_tensors, state_tensors
from rnntool.kinds.lm.data import Corpus, SentenceBatches, StreamBatches, check_mode
from rnntool.kinds.lm.scoring import score_corpus

EVAL_BATCH_SIZE = 64  # sentences per forward pass in sentence-mode validation


@dataclass
class LMTensors:
    inputs: torch.Tensor  # (B, T)
    targets: torch.Tensor  # (B, T), PAD where nothing is predicted
    n_targets: int
    reset: bool  # start from a zero state (first segment of an epoch; every sentence batch)


class LMBatch:
    """A batch not read yet: ``to(device)`` reads its tokens (so skipping batches costs nothing)."""

    def __init__(self, source: StreamBatches | SentenceBatches, key, reset: bool) -> None:
        self.source, self.key, self.reset = source, key, reset

    def to(self, device) -> LMTensors:
        batch = self.source.batch(self.key)
        n_targets = batch.targets.size if isinstance(self.source, StreamBatches) else batch.n_targets
        return LMTensors(
            to_device(torch.from_numpy(batch.inputs), device),
            to_device(torch.from_numpy(batch.targets), device),
            int(n_targets),
            self.reset,
        )


class LMTask:
    """The TrainTask protocol of rnntool.training.trainer for an ``RNNLM``."""

    def __init__(
        self,
        model: RNNLM,
        train_corpus: Corpus,
        valid_corpus: Corpus,
        *,
        mode: str,
        batch_size: int,
        bptt: int,
        seed: int,
    ) -> None:
        self.model = model
        self.train_corpus = train_corpus
        self.valid_corpus = valid_corpus
        self.mode = check_mode(mode)
        self.batch_size = batch_size
        self.bptt = bptt
        self.seed = seed
        self.carried: State | None = None  # stream mode: state after the last segment
        self.set_shard(0, 1)

    @property
    def chance_loss(self) -> float:
        """nats/token of a uniform guess over the vocabulary (far above it: the run diverged)."""
        return math.log(self.model.config.vocab_size)

    def set_shard(self, rank: int, world_size: int) -> None:
        if self.mode == "stream":
            self.source = StreamBatches(self.train_corpus, self.batch_size, self.bptt, rank=rank, world_size=world_size)
        else:
            self.source = SentenceBatches(self.train_corpus, self.batch_size, seed=self.seed, rank=rank,
                                          world_size=world_size)

    def num_batches(self, epoch: int) -> int:
        return len(self.source)

    def batches(self, epoch: int) -> Iterator[LMBatch]:
        if isinstance(self.source, StreamBatches):
            for i in range(len(self.source)):
                yield LMBatch(self.source, i, reset=i == 0)
        else:
            for group in self.source.line_groups(epoch):
                yield LMBatch(self.source, group, reset=True)

    def loss(self, model: torch.nn.Module, batch: LMTensors) -> tuple[torch.Tensor, int]:
        state = None if batch.reset else move_state(self.carried, batch.inputs.device)
        nll, new_state = model(batch.inputs, state, batch.targets)  # (), fused with the output layer
        if self.mode == "stream":
            self.carried = detach_state(new_state)
        return nll, batch.n_targets

    def evaluate(self, model: RNNLM) -> dict[str, float]:
        s = score_corpus(model, self.valid_corpus, self.mode, batch_size=EVAL_BATCH_SIZE)
        return {
            "loss": s["nats_per_token"],
            "ppl": s["perplexity"],
            "bpc": s["bits_per_character"],
            "nats_per_char": s["nats_per_character"],
        }

    def state_dict(self) -> dict:
        return {"carried": state_tensors(self.carried)} if self.mode == "stream" else {}

    def load_state_dict(self, state: dict) -> None:
        self.carried = state_from_tensors(state.get("carried") or {})


def corpus_summary(corpus: Corpus) -> dict:
    return {"lines": corpus.n_lines, "tokens": corpus.n_tokens, "characters": corpus.n_chars}


__all__ = ["LMBatch", "LMTask", "LMTensors", "corpus_summary"]
