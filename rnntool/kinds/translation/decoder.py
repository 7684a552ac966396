"""The translation decoder: a stacked fused RNN with attention, input feeding, and an output layer
optionally tied to the target embeddings.

One step, for every position t (Luong et al., 2015):

    x_t  = [embed(y_{t-1}); feed_{t-1} (input feeding); summary ("none" only)]
    h_t  = RNN(x_t, state)                       top layer's output
    c_t  = attention(h_t, memory)  or  summary   ("none": the encoder summary at every step)
    a_t  = tanh(W_c [c_t; h_t])                  the attentional vector; feed_t = a_t
    p_t  = softmax(W_out a_t)

Without input feeding nothing in step t depends on step t-1's output, so training runs the RNN and the
attention over all T steps in one fused call each. With input feeding, training loops over steps with
the very same function (T = 1), which is also what ``step`` runs during decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import nn

from rnntool.layers.attention import build_attention
from rnntool.layers.recurrent import RnnState, make_rnn, map_state
from rnntool.tokenizers.sentencepiece import PAD_ID


@dataclass
class DecoderState:
    """Everything one decoding step needs. The per-step tensors (``rnn``, ``feed``) have one row per
    hypothesis (N); the encoder's (``memory``, ``keys``, ``mask``, ``summary``) one row per source (M),
    and hypothesis row ``r`` reads source row ``r // beams`` (N = M * beams). Beam search sets ``beams``
    (``repeat``), so a step's attention runs over each source's memory once for all its beams and
    reordering beams never copies the memory. The RNN state is (L, N, H) like torch's."""

    rnn: RnnState  # (L, N, H) or (h, c)
    feed: torch.Tensor | None  # (N, H) previous attentional vector; None without input feeding
    memory: torch.Tensor  # (M, S, Hm) encoder outputs
    keys: torch.Tensor | None  # (M, S, A) attention keys, precomputed once; None for "none"
    mask: torch.Tensor  # (M, S) bool, True on real source tokens
    summary: torch.Tensor  # (M, Hm) the encoder's final top-layer state
    beams: int = 1  # hypothesis rows per source row
    # A target-vocabulary shortlist (rnntool/kinds/translation/shortlist.py): each source's candidate token ids and
    # their output-layer rows; a step's tokens and log-probs are then positions in its source's list.
    vocab: torch.Tensor | None = None  # (M, V') token ids; positions 0-3 are ids 0-3 (PAD, UNK, BOS, EOS)
    vocab_weight: torch.Tensor | None = None  # (M, V', E) the output layer's rows of those ids
    vocab_bias: torch.Tensor | None = None  # (M, V') their biases, -inf on the padding of shorter rows

    _PER_SOURCE = ("memory", "keys", "mask", "summary", "vocab", "vocab_weight", "vocab_bias")

    def _replace(self, rows, per_source, beams: int) -> "DecoderState":
        """``rows(tensor, dim)`` for the per-hypothesis tensors, ``per_source(tensor)`` for the rest."""
        out = {"beams": beams}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "beams":
                continue
            if value is None:
                out[f.name] = None
            elif f.name == "rnn":
                out[f.name] = map_state(value, lambda h: rows(h, 1))
            elif f.name in self._PER_SOURCE:
                out[f.name] = per_source(value)
            else:
                out[f.name] = rows(value, 0)
        return DecoderState(**out)

    def select(self, index: torch.Tensor) -> "DecoderState":
        """Hypothesis rows ``index`` (N',): beam reordering, dropping finished sentences.

        With ``beams`` > 1 (beam search), each consecutive group of ``beams`` entries of ``index``
        must come from one source, and sources may only be dropped, never reordered: a group's source
        is its first row's, and an index as long as before keeps every source."""
        if self.beams == 1:
            sources = index
        else:
            kept = index.numel() // self.beams
            sources = None if kept == self.memory.size(0) else index[:: self.beams] // self.beams  # (M',)
        return self._replace(lambda t, dim: t.index_select(dim, index),
                             (lambda t: t) if sources is None else (lambda t: t.index_select(0, sources)),
                             self.beams)

    def repeat(self, times: int) -> "DecoderState":
        """Each hypothesis row ``times`` times in a row (the beams of beam search); the memory is not copied."""
        return self._replace(lambda t, dim: t.repeat_interleave(times, dim=dim), lambda t: t, self.beams * times)


class Decoder(nn.Module):
    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, layers: int, cell: str,
                 attention: str, input_feeding: bool, tie_embeddings: bool, dropout: float,
                 memory_dim: int, embedding: nn.Embedding | None = None) -> None:
        super().__init__()
        self.attention_type = attention
        self.input_feeding = input_feeding
        self.hidden_dim = hidden_dim
        # ``embedding``: the encoder's, when both sides share one vocabulary and one table.
        self.embedding = embedding or nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        input_dim = embed_dim + (hidden_dim if input_feeding else 0) + (memory_dim if attention == "none" else 0)
        self.rnn = make_rnn(cell, input_dim, hidden_dim, layers, dropout)
        self.attention = build_attention(attention, hidden_dim, memory_dim)
        self.combine = nn.Linear(memory_dim + hidden_dim, hidden_dim, bias=False)
        self.dropout = nn.Dropout(dropout)
        # Tying needs the output layer's input to be embed_dim wide: project down when it is not.
        self.pre_output = (nn.Linear(hidden_dim, embed_dim, bias=False)
                           if tie_embeddings and embed_dim != hidden_dim else nn.Identity())
        self.output = nn.Linear(embed_dim if tie_embeddings else hidden_dim, vocab_size)
        if tie_embeddings:
            self.output.weight = self.embedding.weight

    # -- one fused call over T steps (T = 1 when input feeding) --------------------------------
    def _run(self, embedded: torch.Tensor, state: DecoderState
             ) -> tuple[torch.Tensor, torch.Tensor | None, RnnState]:
        """embedded (B, T, E) -> attentional vectors (B, T, H), weights (B, T, S) | None, RNN state."""
        batch, steps, _ = embedded.shape
        parts = [embedded]
        if self.input_feeding:
            parts.append(state.feed[:, None, :])  # (B, 1, H): only valid for T = 1
        if self.attention is None:
            rows = state.summary.repeat_interleave(state.beams, dim=0) if state.beams > 1 else state.summary  # (B, Hm)
            summary = rows[:, None, :].expand(batch, steps, -1)  # (B, T, Hm)
            parts.append(summary)
        rnn_in = torch.cat(parts, dim=-1) if len(parts) > 1 else embedded
        out, rnn_state = self.rnn(rnn_in, state.rnn)  # (B, T, H)
        if self.attention is None:
            context, weights = summary, None
        elif state.beams > 1:  # one step (T = 1) of B = M * beams hypotheses: each source's beams as its queries
            grouped = out.reshape(-1, state.beams, out.shape[-1])  # (M, beams, H)
            context, weights = self.attention(grouped, state.memory, state.keys, state.mask)  # (M, beams, Hm)
            context = context.reshape(batch, 1, -1)  # (B, 1, Hm)
            weights = weights.reshape(batch, 1, -1)  # (B, 1, S)
        else:
            context, weights = self.attention(out, state.memory, state.keys, state.mask)  # (B, T, Hm)
        attentional = torch.tanh(self.combine(torch.cat([context, out], dim=-1)))  # (B, T, H)
        return self.dropout(attentional), weights, rnn_state

    def forward(self, tgt_in: torch.Tensor, state: DecoderState) -> torch.Tensor:
        """Teacher forcing: tgt_in (B, T) (BOS + target) -> attentional vectors (B, T, H)."""
        embedded = self.dropout(self.embedding(tgt_in))  # (B, T, E)
        if not self.input_feeding:
            attentional, _, _ = self._run(embedded, state)
            return attentional
        outputs = []
        rnn_state, feed = state.rnn, state.feed
        for t in range(tgt_in.shape[1]):
            step_state = replace(state, rnn=rnn_state, feed=feed)
            attentional, _, rnn_state = self._run(embedded[:, t:t + 1], step_state)  # (B, 1, H)
            feed = attentional[:, 0]
            outputs.append(attentional)
        return torch.cat(outputs, dim=1)  # (B, T, H)

    def logits(self, attentional: torch.Tensor) -> torch.Tensor:
        """(..., H) -> (..., V)."""
        return self.output(self.pre_output(attentional))

    def shortlist_state(self, state: DecoderState, vocab: torch.Tensor) -> DecoderState:
        """``state`` decoding over each source's shortlist ``vocab`` (M, V') of token ids (rnntool/kinds/translation/
        shortlist.py): the output layer's rows of those ids, with -inf biases on the padding of shorter rows
        (PAD ids after position 0).
        Weights stay in the model's float format; an int8 model's are dequantized to bf16 (a step's matrix
        product per source then reads half the bytes)."""
        weight, bias = self._output_rows()
        vocab = vocab.to(weight.device)
        rows = weight.detach()[vocab]  # (M, V', E)
        biases = (bias.detach().to(weight.dtype)[vocab] if bias is not None
                  else torch.zeros(vocab.shape, dtype=weight.dtype, device=weight.device))  # (M, V')
        padding = vocab == PAD_ID
        padding[:, 0] = False  # position 0 is PAD itself, as likely as without a shortlist; the rest pad short rows
        biases = biases.masked_fill(padding, float("-inf"))
        return replace(state, vocab=vocab, vocab_weight=rows, vocab_bias=biases)

    def _output_rows(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The output layer's weight (V, E) and bias (V,) as tensors. An int8 layer's (packed, for inference
        only) are dequantized to bf16 once and kept: per batch it would cost more than decoding a short line."""
        output = self.output
        if not callable(output.weight):  # a plain Linear: its parameters themselves
            return output.weight, output.bias
        cached = getattr(self, "_dequantized_output", None)
        if cached is None or cached[0] is not output:
            bias = output.bias()
            cached = (output, output.weight().dequantize().to(torch.bfloat16), None if bias is None else bias.detach())
            self._dequantized_output = cached
        return cached[1], cached[2]

    def step(self, tokens: torch.Tensor, state: DecoderState
             ) -> tuple[torch.Tensor, DecoderState, torch.Tensor | None]:
        """tokens (N,) -> log-probs (N, V), the next state, attention weights (N, S) | None. With a shortlist
        (``state.vocab``) tokens and log-probs are positions in each source's list: (N,) -> (N, V')."""
        if state.vocab is not None:  # positions in each source's shortlist -> token ids
            source_row = torch.arange(tokens.numel(), device=tokens.device) // state.beams  # (N,)
            tokens = state.vocab[source_row, tokens]  # (N,)
        embedded = self.embedding(tokens)[:, None, :]  # (N, 1, E)
        attentional, weights, rnn_state = self._run(embedded, state)  # (N, 1, H)
        if state.vocab is None:
            logits = self.logits(attentional[:, 0])  # (N, V)
        else:
            pre = self.pre_output(attentional[:, 0]).to(state.vocab_weight.dtype)  # (N, E)
            pre = pre.view(state.vocab.size(0), state.beams, -1)  # (M, beams, E)
            logits = torch.baddbmm(state.vocab_bias.unsqueeze(1), pre, state.vocab_weight.transpose(1, 2))  # (M, beams, V')
            logits = logits.view(tokens.numel(), -1)  # (N, V')
        logprobs = torch.log_softmax(logits.float(), dim=-1)  # (N, V | V')
        feed = attentional[:, 0] if self.input_feeding else None
        new_state = replace(state, rnn=rnn_state, feed=feed)
        return logprobs, new_state, None if weights is None else weights[:, 0]
