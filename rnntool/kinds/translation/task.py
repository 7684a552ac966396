"""Translation as a task for the one training loop (rnntool.training.trainer): batches, loss, validation.

    task = TranslationTask(model, train_data, batch_tokens=4096, seed=1, label_smoothing=0.1,
                           valid_data=valid, valid_refs=refs, detokenize=tgt_tok.decode)
    result = train(task, train_cfg, run_dir=..., callbacks=[...])

Validation reports ``loss`` (nats per target token, without label smoothing), ``ppl`` and, when
references and a detokenizer are given, ``bleu``: the validation sources decoded as `rnntool translate
--greedy` decodes them (rnntool.kinds.translation.translate.decode), detokenized and scored with cased
sacreBLEU against the raw reference lines.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from rnntool.errors import BadInput
from rnntool.kinds.translation.data import Batch, ParallelData
from rnntool.kinds.translation.model import Seq2Seq
from rnntool.kinds.translation.translate import DecodeSettings, Translator, decode
from rnntool.layers.weights import model_device

EVAL_BATCH_TOKENS = 8192
DECODE_BATCH_SENTENCES = 128
GREEDY = DecodeSettings(beam=1, greedy=True)  # `rnntool translate --greedy` (the same output as --beam 1)


def greedy_translate(model: Seq2Seq, sources: Sequence[Sequence[int]],
                     batch_sentences: int = DECODE_BATCH_SENTENCES) -> list[list[int]]:
    """Greedy translations (target ids, no BOS/EOS) of source id lists, in input order, decoded as
    `rnntool translate --greedy` decodes, in length-sorted batches of at most ``batch_sentences``
    sentences (``Translator.plan_batches``: little work goes to padding)."""
    device = model_device(model)
    out: list[list[int]] = [[] for _ in sources]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for rows in Translator.plan_batches([len(s) for s in sources], None, batch_sentences):
                for i, hyps in zip(rows, decode(model, [sources[i] for i in rows], GREEDY, device)):
                    out[i] = hyps[0].tokens
    finally:
        model.train(was_training)
    return out


class TranslationTask:
    """The TrainTask protocol of rnntool.training.trainer for a Seq2Seq model."""

    def __init__(self, model: Seq2Seq, train_data: ParallelData, *, batch_tokens: int, seed: int,
                 label_smoothing: float = 0.0, valid_data: ParallelData | None = None,
                 valid_refs: list[str] | None = None,
                 detokenize: Callable[[list[int]], str] | None = None,
                 resample: Callable[[int], ParallelData] | None = None) -> None:
        """``resample(epoch)``: that epoch's training pairs in freshly sampled segmentations (subword
        regularisation, ``SampledSegmentations.for_epoch``); without it every epoch uses ``train_data``."""
        self.model = model
        self.train_data = train_data
        self.resample = resample
        self.batch_tokens = batch_tokens
        self.seed = seed
        self.label_smoothing = label_smoothing
        self.valid_data = valid_data
        self.valid_refs = valid_refs
        self.detokenize = detokenize
        self.rank, self.world_size = 0, 1
        self._epoch_cache: tuple[int, ParallelData, list[np.ndarray]] | None = None

    @property
    def has_validation(self) -> bool:
        """False without validation pairs: ``evaluate`` then reports NaN, which is no divergence."""
        return self.valid_data is not None

    @property
    def chance_loss(self) -> float:
        """nats/token of a uniform guess over the target vocabulary (far above it: the run diverged)."""
        return math.log(self.model.cfg.tgt_vocab_size)

    # -- batches ---------------------------------------------------------------------------------
    def set_shard(self, rank: int, world_size: int) -> None:
        self.rank, self.world_size = rank, world_size
        self._epoch_cache = None
        if self.num_batches(0) == 0:
            raise BadInput(f"{len(self.train_data)} sentence pairs make fewer batches than the {world_size} "
                           "processes; lower --batch-tokens or give more data")

    def _epoch(self, epoch: int) -> tuple[ParallelData, list[np.ndarray]]:
        """The pairs of ``epoch`` and this rank's batches of them (index arrays); every rank gets the
        same number."""
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            data = self.train_data if self.resample is None else self.resample(epoch)
            batches = data.epoch_batches(epoch, self.batch_tokens, self.seed)
            usable = len(batches) - len(batches) % self.world_size if len(batches) >= self.world_size else 0
            self._epoch_cache = (epoch, data, batches[self.rank:usable:self.world_size])
        return self._epoch_cache[1:]

    def num_batches(self, epoch: int) -> int:
        return len(self._epoch(epoch)[1])

    def batches(self, epoch: int) -> Iterator["LazyBatch"]:
        data, batches = self._epoch(epoch)
        for indices in batches:
            yield LazyBatch(data, indices)

    def loss(self, model, batch: Batch) -> tuple[torch.Tensor, int]:
        nll_sum = model(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out, self.label_smoothing)
        return nll_sum, batch.n_tokens

    # -- validation ------------------------------------------------------------------------------
    def evaluate(self, model: Seq2Seq) -> dict[str, float]:
        if self.valid_data is None:
            return {"loss": float("nan")}
        device = model_device(model)
        total, tokens = 0.0, 0
        for indices in self.valid_data.batches(EVAL_BATCH_TOKENS):
            batch = self.valid_data.collate(indices).to(device)
            total += float(model(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out))
            tokens += batch.n_tokens
        loss = total / max(tokens, 1)
        metrics = {"loss": loss, "ppl": math.exp(min(loss, 50.0))}
        if self.valid_refs is not None and self.detokenize is not None:
            metrics["bleu"] = self.bleu(model)
        return metrics

    def bleu(self, model: Seq2Seq) -> float:
        from rnntool.kinds.translation.bleu import corpus_bleu

        sources = [self.valid_data.source(i).tolist() for i in range(len(self.valid_data))]
        hyps = [self.detokenize(ids) for ids in greedy_translate(model, sources)]
        return float(corpus_bleu(hyps, self.valid_refs))

    def state_dict(self) -> dict:
        return {}  # batches are a pure function of (seed, epoch): nothing else to resume

    def load_state_dict(self, state: dict) -> None:
        pass


class LazyBatch:
    """A batch collated only when the loop moves it to the device: skipping on resume is free."""

    def __init__(self, data: ParallelData, indices: np.ndarray) -> None:
        self.data = data
        self.indices = indices

    def to(self, device) -> Batch:
        return self.data.collate(self.indices).to(device)
