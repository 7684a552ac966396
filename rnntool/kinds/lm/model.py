"""RNN language model: embedding → stacked fused RNN/GRU/LSTM → projection to the vocabulary.

    config = LMConfig(vocab_size=1000, cell="lstm", layers=2, embed_dim=512, hidden_dim=512)
    model = RNNLM(config)
    logits, state = model(tokens)                       # tokens (B, T) -> logits (B, T, V)
    save_lm(model, path); model = load_lm(config.to_dict(), path)   # path: a bundle's WEIGHTS_FILE

The model is also a *step model* for rnntool.decoding.search:

    state, last = model.prompt_state(prompt_ids)        # (N, T) prompt -> state before its last token
    logprobs, state, _ = model.step(last, state)        # tokens (N,) -> log-probs (N, V)
    state = model.reorder_state(state, index)           # pick/repeat rows (beams, samples)
    state = model.repeat_state(state, k)                # each row k times in a row (beam search)

The state is the fused RNN's hidden state: ``h`` (L, N, H) for rnn-tanh/rnn-relu/gru, and
``(h, c)`` for lstm. Weight tying reuses the embedding matrix in the output projection (no shared
parameters in the state dict, so safetensors saves it as is).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from rnntool.errors import ConfigError, CorruptBundle
from rnntool.kinds.catalog import WEIGHTS_FILE
from rnntool.layers.cross_entropy import linear_cross_entropy
from rnntool.layers.recurrent import CELLS, RnnState, make_rnn, map_state
from rnntool.layers.weights import model_device
from rnntool.tokenizers.sentencepiece import PAD_ID

if TYPE_CHECKING:  # pragma: no cover
    from rnntool.registry.bundle import Bundle
    from rnntool.tokenizers.sentencepiece import Tokenizer

State = RnnState


@dataclass
class LMConfig:
    vocab_size: int
    cell: str = "lstm"
    layers: int = 2
    embed_dim: int = 256
    hidden_dim: int = 256
    embed_dropout: float = 0.1  # on the embeddings
    hidden_dropout: float = 0.2  # between recurrent layers
    output_dropout: float = 0.2  # on the last layer's output, before the projection
    tie_embeddings: bool = False
    weight_drop: float = 0.0  # DropConnect on the recurrent (hidden-to-hidden) weights, as in AWD-LSTM
    locked_dropout: bool = False  # the three dropouts keep one mask per sequence for every time step (AWD-LSTM)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.cell not in CELLS:
            raise ConfigError(f"unknown cell '{self.cell}'; choose one of {', '.join(CELLS)}")
        for name in ("vocab_size", "layers", "embed_dim", "hidden_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
        for name in ("embed_dropout", "hidden_dropout", "output_dropout", "weight_drop"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{name.replace('_', '-')} must be in [0, 1), got {value!r}")
        if not isinstance(self.locked_dropout, bool):
            raise ConfigError(f"locked-dropout must be true or false, got {self.locked_dropout!r}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for name in ("weight_drop", "locked_dropout"):
            if not d[name]:  # off: the config reads as before the setting existed (older readers, retrain keys)
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LMConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise CorruptBundle(
                f"language model config has unknown settings {unknown}; "
                "the bundle was written by a newer rnntool — upgrade rnntool"
            )
        try:
            return cls(**d)
        except TypeError as e:
            raise CorruptBundle(f"language model config is incomplete ({e}); re-train or re-publish the model")


class RNNLM(nn.Module):
    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim)
        self.embed_dropout = nn.Dropout(config.embed_dropout)
        self.rnn = make_rnn(config.cell, config.embed_dim, config.hidden_dim, config.layers,
                            config.hidden_dropout)  # (B, T, E) -> (B, T, H)
        self.hidden_dropout = nn.Dropout(config.hidden_dropout)  # between layers, when locked_dropout runs them apart
        self._single_layers: dict[int, nn.Module] = {}  # input width -> a one-layer RNN (not a submodule)
        self.output_dropout = nn.Dropout(config.output_dropout)
        if config.tie_embeddings:
            self.output_bias = nn.Parameter(torch.zeros(config.vocab_size))
            if config.embed_dim != config.hidden_dim:  # tying needs embed_dim-wide inputs: project down (H -> E)
                self.pre_output = nn.Linear(config.hidden_dim, config.embed_dim, bias=False)
        else:
            self.output = nn.Linear(config.hidden_dim, config.vocab_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        if not self.config.tie_embeddings:
            nn.init.uniform_(self.output.weight, -0.1, 0.1)
            nn.init.zeros_(self.output.bias)

    # -- training / scoring ----------------------------------------------------------------------
    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """Hidden states (..., H) -> logits (..., V)."""
        if not self.config.tie_embeddings:
            return self.output(self.output_inputs(hidden))  # the module: also when int8 quantized
        weight, bias = self.output_layer()
        return F.linear(self.output_inputs(hidden), weight, bias)

    def output_inputs(self, hidden: torch.Tensor) -> torch.Tensor:
        """Hidden states (..., H) -> the output layer's inputs (..., E or H): dropout, then the
        projection down to embed_dim when tied embeddings need it."""
        hidden = self._dropout(hidden, self.output_dropout)
        if self.config.tie_embeddings and self.config.embed_dim != self.config.hidden_dim:
            hidden = self.pre_output(hidden)  # (..., E)
        return hidden

    def output_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The output layer's weight (V, E or H) and bias (V,)."""
        if self.config.tie_embeddings:
            return self.embedding.weight, self.output_bias
        return self.output.weight, self.output.bias

    def encode(self, tokens: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """tokens (B, T) -> last-layer hidden states (B, T, H), state after the last step."""
        embedded = self._dropout(self.embedding(tokens), self.embed_dropout)  # (B, T, E)
        if self.training and self.config.locked_dropout and self.config.layers > 1 and self.rnn.dropout > 0:
            hidden, state = self._layer_by_layer(embedded, state)  # (B, T, H)
        elif self.training and self.config.weight_drop > 0:
            hidden, state = self._weight_dropped_rnn(embedded, state)  # (B, T, H)
        else:
            hidden, state = self.rnn(embedded, state)  # (B, T, H)
        return hidden, state

    def _dropout(self, x: torch.Tensor, dropout: nn.Dropout) -> torch.Tensor:
        """``dropout`` on x (B, ..., D); with locked_dropout in training, one mask per row for all its steps
        (variational dropout, Gal & Ghahramani 2016, as AWD-LSTM's LockedDropout)."""
        if not (self.training and self.config.locked_dropout and dropout.p > 0):
            return dropout(x)
        keep = 1.0 - dropout.p
        mask = x.new_empty(x.size(0), *[1] * (x.dim() - 2), x.size(-1)).bernoulli_(keep).div_(keep)  # (B, 1, D)
        return x * mask

    def _recurrent_weights(self) -> dict[str, torch.Tensor]:
        """The weights the RNN runs with in training: weight_hh of every layer through a fresh dropout mask
        with --weight-drop (one mask for all time steps and rows of this call: DropConnect, Merity et al.
        2017), nothing replaced without it."""
        p = self.config.weight_drop
        if p == 0:
            return {}
        return {f"weight_hh_l{k}": F.dropout(getattr(self.rnn, f"weight_hh_l{k}"), p, training=True)
                for k in range(self.config.layers)}  # each (G*H, H)

    def _weight_dropped_rnn(self, embedded: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """The fused RNN with --weight-drop's masks (the parameters themselves untouched)."""
        from torch.func import functional_call

        return functional_call(self.rnn, self._recurrent_weights(), (embedded, state))

    def _layer_by_layer(self, embedded: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """The stacked RNN one fused layer at a time, so that the dropout between layers can be locked:
        the same parameters (and --weight-drop masks) as the fused call, a single-layer module of the same
        cell run on each layer's weights."""
        from torch.func import functional_call

        weights = dict(self.rnn.named_parameters())
        weights.update(self._recurrent_weights())
        if state is None:
            state = self.initial_state(embedded.size(0), embedded.device)
        x, last = embedded, []  # x (B, T, E) then (B, T, H)
        for k in range(self.config.layers):
            if k > 0:
                x = self._dropout(x, self.hidden_dropout)
            layer = self._single_layer(k)
            own = {name.removesuffix(f"_l{k}") + "_l0": w for name, w in weights.items() if name.endswith(f"_l{k}")}
            x, layer_state = functional_call(layer, own, (x, map_state(state, lambda s: s[k:k + 1])))
            last.append(layer_state)
        if isinstance(state, tuple):
            return x, tuple(torch.cat(parts) for parts in zip(*last))  # (L, B, H) each
        return x, torch.cat(last)  # (L, B, H)

    def _single_layer(self, k: int) -> nn.Module:
        """A one-layer RNN of the same cell with layer k's input width, its own parameters never used (not
        a submodule: the state dict stays the fused RNN's). Made on the meta device, so its initialisation
        draws nothing from the random generator (a resumed run draws its masks as the uninterrupted one)."""
        width = self.config.embed_dim if k == 0 else self.config.hidden_dim
        if width not in self._single_layers:
            with torch.random.fork_rng(devices=[]), torch.device("meta"):
                self._single_layers[width] = make_rnn(self.config.cell, width, self.config.hidden_dim, 1, 0.0)
        return self._single_layers[width]

    def forward(self, tokens: torch.Tensor, state: State | None = None, targets: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, State]:
        """tokens (B, T) -> logits (B, T, V), state. With ``targets`` (B, T): the cross-entropy summed
        over the targets that are not PAD, (), with the output layer fused into it so that the (B, T, V)
        logits are never whole (rnntool/layers/cross_entropy.py), and the state."""
        hidden, state = self.encode(tokens, state)  # (B, T, H)
        if targets is None:
            return self.project(hidden), state
        inputs = self.output_inputs(hidden)  # (B, T, E)
        weight, bias = self.output_layer()
        return linear_cross_entropy(inputs.reshape(-1, inputs.shape[-1]), weight, bias, targets.reshape(-1),
                                    ignore_index=PAD_ID), state

    # -- step-model interface (rnntool.decoding.search) -------------------------------------------------
    def step(self, tokens: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State, None]:
        """tokens (N,) -> log-probs (N, V) of the next token, new state, no attention."""
        logits, state = self(tokens.unsqueeze(1), state)  # (N, 1, V)
        return torch.log_softmax(logits.squeeze(1).float(), dim=-1), state, None

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """Zeros: the state before the first token (explicit, so decoding can reorder it)."""
        device = device if device is not None else model_device(self)
        dtype = self.embedding.weight.dtype  # bf16/fp16 when the model runs in one (rnntool/layers/precision.py)
        zeros = lambda: torch.zeros(self.config.layers, batch_size, self.config.hidden_dim, device=device,  # noqa: E731
                                    dtype=dtype)
        return (zeros(), zeros()) if self.config.cell == "lstm" else zeros()  # (L, N, H)

    def prompt_state(self, prompt: torch.Tensor) -> tuple[State, torch.Tensor]:
        """prompt (N, T), T ≥ 1 (starting with BOS or EOS) -> state after all but the last token,
        and the last tokens (N,): the ``state`` and ``bos`` that rnntool.decoding.search starts from."""
        state = self.initial_state(prompt.size(0), prompt.device)
        if prompt.size(1) > 1:
            _, state = self.encode(prompt[:, :-1], state)
        return state, prompt[:, -1]

    @staticmethod
    def reorder_state(state: State, index: torch.Tensor) -> State:
        """Select/repeat rows of the state: index (M,) into the batch dimension (dim 1)."""
        return map_state(state, lambda s: s.index_select(1, index))

    @staticmethod
    def repeat_state(state: State, times: int) -> State:
        """Each row ``times`` times in a row (beam search's beams)."""
        return map_state(state, lambda s: s.repeat_interleave(times, dim=1))


def detach_state(state: State | None) -> State | None:
    """Cut the graph between BPTT segments, keeping the values (repackage_hidden)."""
    return None if state is None else map_state(state, torch.Tensor.detach)


def move_state(state: State | None, device: torch.device | str) -> State | None:
    """The state on ``device`` (no copy when it is there already)."""
    return None if state is None else map_state(state, lambda s: s.to(device))


def state_tensors(state: State | None) -> dict[str, torch.Tensor]:
    """A carried state as named tensors (for checkpoints): {} or {"h": …} or {"h": …, "c": …}."""
    if state is None:
        return {}
    if isinstance(state, tuple):
        return {"h": state[0].detach().cpu().contiguous(), "c": state[1].detach().cpu().contiguous()}
    return {"h": state.detach().cpu().contiguous()}


def state_from_tensors(tensors: dict[str, torch.Tensor]) -> State | None:
    if not tensors:
        return None
    return (tensors["h"], tensors["c"]) if "c" in tensors else tensors["h"]


LM_WEIGHTS_METADATA = {"format": "rnntool-lm"}  # in every language model's weight file


def save_lm(model: RNNLM, path: str | os.PathLike) -> None:
    """The model's weights as safetensors (rnntool.layers.weights.save_weights)."""
    from rnntool.layers.weights import save_weights

    save_weights(model, path, metadata=LM_WEIGHTS_METADATA)


def load_lm(config: dict | LMConfig, path: str | os.PathLike, device: str | torch.device = "cpu") -> RNNLM:
    """Rebuild the model from its config dict and load its safetensors weights (eval mode)."""
    from rnntool.layers.weights import build_model, load_weights

    cfg = config if isinstance(config, LMConfig) else LMConfig.from_dict(config)
    model = build_model(lambda: RNNLM(cfg), weights=path)  # shapes checked before anything is allocated
    return load_weights(model, path, device).eval()


@dataclass
class LoadedLM:
    model: RNNLM
    tokenizer: "Tokenizer"
    bundle: "Bundle"

    @property
    def mode(self) -> str:
        """The data mode the model was trained in (``stream`` or ``sentence``)."""
        return (self.bundle.config.get("data") or {}).get("mode", "sentence")

    @property
    def start_id(self) -> int:
        """What text starts after: <eos> in stream mode (the previous line ended), else <bos>."""
        from rnntool.tokenizers.sentencepiece import BOS_ID, EOS_ID

        return EOS_ID if self.mode == "stream" else BOS_ID


def open_lm(ref: str, registry: str | os.PathLike | None = None, device: str = "auto",
            precision: str = "fp32") -> LoadedLM:
    """Load a language-model bundle (a registry reference or a bundle directory), verified, to run in
    ``precision`` (rnntool/layers/precision.py)."""
    from rnntool.layers.precision import for_inference
    from rnntool.registry.store import Registry
    from rnntool.runtime import prepare_device

    where = prepare_device(device)
    lm = lm_from_bundle(Registry.open(registry).load(ref, kind="lm"), where)
    lm.model = for_inference(lm.model, precision, where)
    return lm


def lm_from_bundle(bundle: "Bundle", device) -> LoadedLM:
    """A loaded, verified ``lm`` bundle -> the model (eval mode, on ``device``) and its tokenizer."""
    from rnntool.tokenizers.sentencepiece import Tokenizer

    if "model" not in bundle.config:
        raise CorruptBundle(f"{bundle.ref}: the manifest has no model config; re-publish the model")
    model = load_lm(bundle.config["model"], bundle.file(WEIGHTS_FILE), device)
    tokenizer = Tokenizer.from_bundle(bundle)
    if tokenizer.vocab_size != model.config.vocab_size:
        raise CorruptBundle(
            f"{bundle.ref}: the tokenizer has {tokenizer.vocab_size} pieces but the model "
            f"{model.config.vocab_size}; re-publish the model with its own tokenizer"
        )
    return LoadedLM(model, tokenizer, bundle)


def open_ensemble(refs: list[str], registry: str | os.PathLike | None = None, device: str = "auto",
                  precision: str = "fp32") -> LoadedLM:
    """Several language models as one (`generate -m A -m B`): the same tokenizer and data mode, the mean of
    their next-token distributions (rnntool/decoding/ensemble.py). One reference: ``open_lm``'s model."""
    from rnntool.decoding.ensemble import Ensemble
    from rnntool.errors import UsageError

    lms = [open_lm(ref, registry, device, precision) for ref in refs]
    if len(lms) == 1:
        return lms[0]
    first = lms[0]
    for lm in lms[1:]:
        if lm.tokenizer.sha256 != first.tokenizer.sha256 or lm.mode != first.mode:
            raise UsageError(f"{lm.bundle.ref} and {first.bundle.ref} differ in their tokenizer or data mode; an "
                             "ensemble needs models trained with the same tokenizer (-t) and --mode")
    return LoadedLM(Ensemble([lm.model for lm in lms]), first.tokenizer, first.bundle)
