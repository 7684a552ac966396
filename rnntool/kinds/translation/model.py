"""The RNN encoder-decoder translation model: config, bridge, teacher-forced loss, step interface.

    model = Seq2Seq(Seq2SeqConfig(src_vocab_size=8000, tgt_vocab_size=8000, attention="general"))
    loss_sum = model(src, src_lengths, tgt_in, tgt_out)                      # training, all steps fused
    state = model.encode(src, src_lengths)                                   # decoding (rnntool/decoding/search.py)
    logprobs, state, attention = model.step(tokens, state)
    state = model.reorder_state(state, index)
    state = model.repeat_state(state, k)                                     # beam search: k rows per source

Sequences follow one convention: source = pieces + EOS; decoder input = BOS + pieces; decoder output
= pieces + EOS; PAD (0) fills batches. ``source_batch`` builds the source tensors for a list of lines.
A bundle stores the config as ``manifest.config["model"]`` and the weights as ``WEIGHTS_FILE``
(rnntool.layers.weights.save_weights); ``load_translation`` rebuilds the model from those (no pickles).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from rnntool.layers.attention import ATTENTION_TYPES
from rnntool.kinds.translation.decoder import Decoder, DecoderState
from rnntool.layers.cross_entropy import linear_cross_entropy
from rnntool.layers.encoder import Encoder
from rnntool.layers.names import BRIDGE_TYPES, CELLS
from rnntool.errors import ConfigError, CorruptBundle
from rnntool.kinds.catalog import WEIGHTS_FILE
from rnntool.layers.weights import load_weights
from rnntool.tokenizers.sentencepiece import EOS_ID, PAD_ID, SIDE_FILES, Tokenizer



@dataclass
class Seq2SeqConfig:
    src_vocab_size: int
    tgt_vocab_size: int
    cell: str = "lstm"
    layers: int = 2
    embed_dim: int = 256
    hidden_dim: int = 256
    bidirectional: bool = True
    attention: str = "general"
    bridge: str = "linear"
    input_feeding: bool = True
    tie_embeddings: bool = True
    share_embeddings: bool = False  # one table for source and target (joint vocabulary only)
    dropout: float = 0.2

    def __post_init__(self) -> None:
        choices = {"cell": CELLS, "attention": ATTENTION_TYPES, "bridge": BRIDGE_TYPES}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ConfigError(f"--{name} must be one of {', '.join(valid)} (got {getattr(self, name)!r})")
        for name in ("src_vocab_size", "tgt_vocab_size", "layers", "embed_dim", "hidden_dim"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1) (got {self.dropout})")
        if self.bidirectional and self.hidden_dim % 2:
            raise ConfigError(f"--hidden-dim must be even with --bidirectional (each direction gets half; "
                              f"got {self.hidden_dim})")
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ConfigError("shared embeddings need one vocabulary for both sides; use --joint-vocab")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Seq2SeqConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise CorruptBundle(f"translation model config has unknown keys {unknown}; "
                                "upgrade rnntool to load this model")
        return cls(**d)


class Seq2Seq(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.src_vocab_size, cfg.embed_dim, cfg.hidden_dim, cfg.layers, cfg.cell,
                               cfg.bidirectional, cfg.dropout)
        self.decoder = Decoder(cfg.tgt_vocab_size, cfg.embed_dim, cfg.hidden_dim, cfg.layers, cfg.cell,
                               cfg.attention, cfg.input_feeding, cfg.tie_embeddings, cfg.dropout,
                               memory_dim=self.encoder.output_dim,
                               embedding=self.encoder.embedding if cfg.share_embeddings else None)
        states = 2 if cfg.cell == "lstm" else 1  # (h, c) for lstm
        self.bridge = (nn.ModuleList(nn.Linear(self.encoder.output_dim, cfg.hidden_dim) for _ in range(states))
                       if cfg.bridge == "linear" else None)

    # -- encoding --------------------------------------------------------------------------------
    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> DecoderState:
        """src (B, S), src_lengths (B,) -> the decoder's initial state."""
        memory, final = self.encoder(src, src_lengths)  # (B, S, Hm), (L, B, Hm) [pair for lstm]
        batch = src.shape[0]
        summary = (final[0] if isinstance(final, tuple) else final)[-1]  # (B, Hm) top layer
        if self.bridge is None:
            zeros = memory.new_zeros(self.cfg.layers, batch, self.cfg.hidden_dim)  # (L, B, H)
            rnn_state = (zeros, zeros.clone()) if isinstance(final, tuple) else zeros
        elif isinstance(final, tuple):
            rnn_state = tuple(torch.tanh(proj(s)) for proj, s in zip(self.bridge, final))
        else:
            rnn_state = torch.tanh(self.bridge[0](final))  # (L, B, H)
        attention = self.decoder.attention
        return DecoderState(
            rnn=rnn_state,
            feed=memory.new_zeros(batch, self.cfg.hidden_dim) if self.cfg.input_feeding else None,
            memory=memory,
            keys=None if attention is None else attention.prepare(memory),
            mask=torch.arange(src.shape[1], device=src.device)[None, :] < src_lengths[:, None].to(src.device),
            summary=summary,
        )

    # -- training --------------------------------------------------------------------------------
    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor,
                tgt_out: torch.Tensor | None = None, label_smoothing: float = 0.0) -> torch.Tensor:
        """Teacher forcing over all steps at once. Without ``tgt_out``: logits (B, T, V). With it: the
        cross-entropy summed over the real (non-PAD) target tokens, projecting only those (cheaper), and
        fused with the output layer so that the (N, V) logits are never whole (rnntool/layers/cross_entropy.py)."""
        attentional = self.decoder(tgt_in, self.encode(src, src_lengths))  # (B, T, H)
        if tgt_out is None:
            return self.decoder.logits(attentional)
        real = tgt_out != PAD_ID  # (B, T)
        output = self.decoder.output
        return linear_cross_entropy(self.decoder.pre_output(attentional[real]), output.weight, output.bias,
                                    tgt_out[real], label_smoothing=label_smoothing)  # (N, E) -> ()

    # -- decoding (the step-model interface of rnntool/decoding/search.py) -------------------------------------
    def step(self, tokens: torch.Tensor, state: DecoderState
             ) -> tuple[torch.Tensor, DecoderState, torch.Tensor | None]:
        """tokens (N,) -> log-probs (N, V), new state, attention weights (N, S) or None."""
        return self.decoder.step(tokens, state)

    def reorder_state(self, state: DecoderState, index: torch.Tensor) -> DecoderState:
        return state.select(index)

    def shortlist_state(self, state: DecoderState, vocab: torch.Tensor) -> DecoderState:
        """Decode over each source's shortlist ``vocab`` (M, V'): a step's tokens and log-probs are then
        positions in it (rnntool/kinds/translation/shortlist.py)."""
        return self.decoder.shortlist_state(state, vocab)

    def repeat_state(self, state: DecoderState, times: int) -> DecoderState:
        return state.repeat(times)


def source_batch(sequences: list[list[int]], device: str | torch.device = "cpu",
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids per sentence (EOS is appended here) -> src (B, S) padded with PAD, lengths (B,)."""
    lengths = torch.tensor([len(s) + 1 for s in sequences], dtype=torch.long)
    src = torch.full((len(sequences), int(lengths.max()) if sequences else 0), PAD_ID, dtype=torch.long)
    for i, ids in enumerate(sequences):
        src[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        src[i, len(ids)] = EOS_ID
    return src.to(device), lengths.to(device)


# -- bundles -------------------------------------------------------------------------------------
def load_translation(bundle, device: str | torch.device = "cpu"):
    """A registry bundle of kind "translation" -> (model in eval mode, src tokenizer, tgt tokenizer)."""
    try:
        cfg = Seq2SeqConfig.from_dict(dict(bundle.manifest["config"]["model"]))
    except (KeyError, TypeError) as e:
        raise CorruptBundle(f"{bundle.path}: manifest has no usable model config ({e}); "
                            "re-publish the model") from None
    from rnntool.layers.weights import build_model

    model = build_model(lambda: Seq2Seq(cfg), weights=bundle.file(WEIGHTS_FILE))  # checked before allocating
    load_weights(model, bundle.file(WEIGHTS_FILE), device).eval()
    src_tokenizer, tgt_tokenizer = (Tokenizer.load(bundle.file(SIDE_FILES[side])) for side in ("src", "tgt"))
    return model, src_tokenizer, tgt_tokenizer
