"""Beam search batched over sentences x beams, in tensor operations (no per-hypothesis Python loop).

The search (as fairseq's): every step extends each of a sentence's K live beams by every token and
takes the 2K best candidates by log-probability. Candidates ending in EOS among the best K are
*finished* and move to a per-sentence pool of the K best finished hypotheses (ranked by the
length-penalised score); the best K candidates that do not end in EOS stay live. A sentence stops
when K hypotheses have finished, or at its length cap, where its live beams join the pool
unfinished. Live beams all have the same length, so ranking them by raw log-probability is the
same as ranking them by the penalised score. Sentences that stop leave the batch
(``model.reorder_state``), so the rest decode faster.

Shapes: B sentences in the batch, A of them still searching, K beams, C = 2K candidates,
V vocabulary, T = max(max_len) steps, S source positions (attention).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnntool.decoding.search import NEG_INF, Hypothesis, _as_row_tensor, _check_lengths, _device_of
from rnntool.errors import ConfigError
from rnntool.runtime import step_kernels

__all__ = ["beam_search", "length_penalty_divisor"]

PAD_ID = 0


def length_penalty_divisor(length: int, alpha: float = 0.0, normalize: bool = False) -> float:
    """What a hypothesis' log-prob is divided by: GNMT ``((5 + L) / 6) ** alpha``, or ``L``."""
    if normalize:
        return float(length)
    if alpha == 0.0:
        return 1.0
    return ((5.0 + length) / 6.0) ** alpha


def _gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """x (A, N, *rest), index (A, M) -> (A, M, *rest): x[a, index[a, m]]."""
    expanded = index.view(*index.shape, *([1] * (x.dim() - 2))).expand(*index.shape, *x.shape[2:])
    return x.gather(1, expanded)


class _Pool:
    """The K best finished hypotheses of each of B sentences, kept sorted by score (best first)."""

    def __init__(self, batch_size: int, beam: int, steps: int, device) -> None:
        shape = (batch_size, beam)
        self.score = torch.full(shape, NEG_INF, device=device)  # (B, K) penalised score
        self.log_prob = torch.full(shape, NEG_INF, device=device)  # (B, K)
        self.length = torch.zeros(shape, dtype=torch.long, device=device)  # (B, K) steps
        self.finished = torch.zeros(shape, dtype=torch.bool, device=device)  # (B, K) ended by EOS
        self.tokens = torch.full((*shape, steps), PAD_ID, dtype=torch.long, device=device)  # (B, K, T)
        self.token_log_probs = torch.zeros((*shape, steps), device=device)  # (B, K, T)
        self.attention: Tensor | None = None  # (B, K, T, S)

    def fields(self) -> list[str]:
        names = ["score", "log_prob", "length", "finished", "tokens", "token_log_probs"]
        return names + (["attention"] if self.attention is not None else [])

    def merge(self, sent: Tensor, new: dict[str, Tensor]) -> None:
        """Merge candidate entries ``new`` (each (A, C, ...); score -inf = not an entry) into rows ``sent``."""
        old_score = self.score[sent]  # (A, K)
        beam = old_score.size(1)
        all_score = torch.cat([old_score, new["score"]], dim=1)  # (A, K + C)
        # stable: on equal scores the earlier (shorter) hypothesis keeps its place
        best = all_score.sort(dim=1, descending=True, stable=True).indices[:, :beam]  # (A, K)
        for name in self.fields():
            merged = torch.cat([getattr(self, name)[sent], new[name]], dim=1)  # (A, K + C, ...)
            getattr(self, name)[sent] = _gather_rows(merged, best)

    def count(self, sent: Tensor) -> Tensor:
        return torch.isfinite(self.score[sent]).sum(dim=1)  # (A,)

    def hypotheses(self, nbest: int) -> list[list[Hypothesis]]:
        score, log_prob = self.score.cpu().tolist(), self.log_prob.cpu().tolist()
        length, finished = self.length.cpu().tolist(), self.finished.cpu().tolist()
        tokens, token_lps = self.tokens.cpu(), self.token_log_probs.cpu()
        attention = self.attention.cpu() if self.attention is not None else None
        out: list[list[Hypothesis]] = []
        for b in range(len(score)):
            hyps = []
            for k in range(len(score[b])):
                if len(hyps) == nbest or score[b][k] == NEG_INF:
                    break
                steps = length[b][k]
                n_tokens = steps - 1 if finished[b][k] else steps
                hyps.append(Hypothesis(
                    tokens=tokens[b, k, :n_tokens].tolist(),
                    score=score[b][k],
                    log_prob=log_prob[b][k],
                    token_log_probs=token_lps[b, k, :steps].tolist(),
                    finished=bool(finished[b][k]),
                    attention=attention[b, k, :steps].clone() if attention is not None else None,
                ))
            out.append(hyps)
        return out


def _block_repeats(log_probs: Tensor, history: Tensor, n: int, beam: int) -> Tensor:
    """log_probs (A*K, V) with -inf for each token that would end an n-gram already in its beam's
    ``history`` (A, K, t) of tokens; ``t >= n - 1``."""
    A, K, t = history.shape
    V = log_probs.size(-1)
    lp = log_probs.view(A, K, V)
    if n == 1:
        banned = torch.zeros((A, K, V), dtype=torch.int32, device=lp.device)
        banned.scatter_add_(2, history, torch.ones_like(history, dtype=torch.int32))
    else:
        if t < n:  # no complete n-gram yet
            return log_probs
        windows = history.unfold(2, n, 1)  # (A, K, t - n + 1, n)
        prefix = history[:, :, t - n + 1:]  # (A, K, n - 1): the n-gram the next token would complete
        match = (windows[..., :-1] == prefix.unsqueeze(2)).all(dim=-1)  # (A, K, W)
        banned = torch.zeros((A, K, V), dtype=torch.int32, device=lp.device)
        banned.scatter_add_(2, windows[..., -1], match.to(torch.int32))
    return lp.masked_fill(banned > 0, NEG_INF).view(A * K, V)


def beam_search(
    model,
    state,
    batch_size: int,
    bos,
    eos: int,
    max_len,
    min_len: int = 0,
    *,
    beam: int = 5,
    length_penalty: float = 0.0,
    normalize: bool = False,
    nbest: int = 1,
    keep_attention: bool = False,
    device=None,
    no_repeat_ngram: int = 0,
    coverage_penalty: float = 0.0,
    source_mask: Tensor | None = None,
    early_stop: bool = False,
) -> list[list[Hypothesis]]:
    """Beam search for a batch of ``batch_size`` inputs; per input its n-best list, best first.

    model, state, bos, eos, max_len, min_len, device: as ``decoding.greedy`` (max_len counts steps,
    EOS included; an int or a (B,) LongTensor). beam: K live hypotheses per input. length_penalty:
    GNMT alpha, finished hypotheses are ranked by ``log_prob / ((5 + L) / 6) ** alpha``; normalize:
    rank by ``log_prob / L`` instead (L = steps, EOS included). nbest: how many hypotheses to return
    per input (<= beam; fewer when fewer exist). keep_attention: record each hypothesis' attention
    rows (for alignments; costs memory). ``beam=1`` gives exactly greedy decoding's tokens.
    no_repeat_ngram: N > 0 forbids any token that would repeat an N-gram the hypothesis already holds
    (fairseq's --no-repeat-ngram-size). coverage_penalty: beta > 0 adds GNMT's coverage penalty to a
    finished hypothesis' score, ``beta * sum_i log(min(sum_t a_ti, 1))`` over the source positions i
    (Wu et al., 2016): translations that leave source words unattended rank lower. Needs attention;
    source_mask (B, S), True on real source positions, keeps padding out of the sum (without it, a
    position that got no attention at all counts as padding).
    early_stop: a sentence also stops as soon as its best candidate of a step ends in EOS and ``nbest``
    hypotheses have finished (OpenNMT-py's rule), instead of waiting for K. With the length penalty a
    longer hypothesis could still have ranked higher; ranking by log-prob alone (no length penalty,
    normalisation or coverage penalty) with nbest 1 it cannot (every extension only lowers a score), so
    there the rule is always applied: the same output, fewer steps.
    """
    if beam < 1:
        raise ConfigError(f"beam size must be >= 1, got {beam}")
    if not 1 <= nbest <= beam:
        raise ConfigError(f"nbest must be between 1 and the beam size {beam}, got {nbest}")
    if normalize and length_penalty:
        raise ConfigError("choose either a GNMT length penalty or normalisation by length, not both")
    if no_repeat_ngram < 0 or coverage_penalty < 0:
        raise ConfigError("the n-gram size and the coverage penalty must be >= 0")
    _check_lengths(max_len, min_len)
    early_stop = early_stop or (nbest == 1 and not (length_penalty or normalize or coverage_penalty))  # exact there
    K, B = beam, batch_size
    C = 2 * K  # candidates kept per sentence and step
    device = _device_of(bos, device)
    row_max_len = _as_row_tensor(max_len, B, device, "max_len")  # (A,)
    T = int(row_max_len.max())
    pool = _Pool(B, K, T, device)

    sent = torch.arange(B, device=device)  # (A,) original index of each sentence still searching
    if hasattr(model, "repeat_state"):
        state = model.repeat_state(state, K)  # B rows -> B*K rows, each input's K beams together
    else:  # a step model without it: each row's index K times
        state = model.reorder_state(state, torch.arange(B, device=device).repeat_interleave(K))
    inputs = _as_row_tensor(bos, B, device, "bos").repeat_interleave(K)  # (A*K,)
    alive_score = torch.full((B, K), NEG_INF, device=device)  # (A, K) raw log-prob sums
    alive_score[:, 0] = 0.0  # at first only one live beam per sentence
    alive_tokens = torch.full((B, K, T), PAD_ID, dtype=torch.long, device=device)  # (A, K, T)
    alive_lps = torch.zeros((B, K, T), device=device)  # (A, K, T)
    alive_attn: Tensor | None = None  # (A, K, T, S)
    alive_cov: Tensor | None = None  # (A, K, S) attention summed over the steps so far (coverage_penalty)

    with torch.no_grad():
        for t in range(T):
            A = sent.numel()
            with step_kernels(inputs.numel()):
                log_probs, state, attention = model.step(inputs, state)  # (A*K, V), state, (A*K, S)
            V = log_probs.size(-1)
            if V < 2:
                raise ConfigError("beam search needs a vocabulary of at least 2 tokens")
            log_probs = log_probs.float()
            if t < min_len:
                log_probs = log_probs.clone()
                log_probs[:, eos] = NEG_INF
            if no_repeat_ngram and t >= no_repeat_ngram - 1:
                log_probs = _block_repeats(log_probs.clone(), alive_tokens[:, :, :t], no_repeat_ngram, K)
            # In two stages, the same C best of a sentence's K*V candidates: each of them is among the C best
            # tokens of its own beam (fewer than C candidates rank above it). Cheaper than one top-k over K*V.
            row_lp, row_token = log_probs.topk(min(C, V), dim=1)  # (A*K, W), W = min(C, V); K*W >= C as V >= 2
            W = row_lp.size(1)
            cand_all = (alive_score.unsqueeze(2) + row_lp.view(A, K, W)).view(A, K * W)  # (A, K*W)
            cand_score, pick = cand_all.topk(C, dim=1)  # (A, C), best first
            parent = pick // W  # (A, C) beam each candidate extends
            token = row_token.view(A, K * W).gather(1, pick)  # (A, C)
            token_lp = row_lp.view(A, K * W).gather(1, pick)  # (A, C)

            cand_tokens = _gather_rows(alive_tokens, parent)  # (A, C, T)
            cand_tokens[:, :, t] = token
            cand_lps = _gather_rows(alive_lps, parent)  # (A, C, T)
            cand_lps[:, :, t] = token_lp
            cand_attn = None
            if keep_attention and attention is not None:
                S = attention.size(-1)
                if alive_attn is None:
                    alive_attn = torch.zeros((A, K, T, S), device=device)
                    pool.attention = torch.zeros((B, K, T, S), device=device)
                cand_attn = _gather_rows(alive_attn, parent)  # (A, C, T, S)
                cand_attn[:, :, t] = _gather_rows(attention.float().view(A, K, S), parent)

            is_eos = token == eos  # (A, C)
            rank = torch.arange(C, device=device).expand(A, C)
            finishes = is_eos & (rank < K) & torch.isfinite(cand_score)  # (A, C) EOS among the best K
            alive_pos = torch.where(is_eos, rank + C, rank).argsort(dim=1)[:, :K]  # (A, K) best K non-EOS
            next_score = cand_score.gather(1, alive_pos)  # (A, K)

            cand_cov = None
            if coverage_penalty:
                if attention is None:
                    raise ConfigError("the coverage penalty needs a model with attention (this one has none)")
                step_attn = _gather_rows(attention.float().view(A, K, -1), parent)  # (A, C, S)
                cand_cov = step_attn if alive_cov is None else _gather_rows(alive_cov, parent) + step_attn

            steps = t + 1
            capped = row_max_len <= steps  # (A,)
            at_cap = torch.zeros_like(finishes).scatter(1, alive_pos, capped.unsqueeze(1).expand(A, K))
            entry = (finishes | at_cap) & torch.isfinite(cand_score)  # (A, C)
            divisor = length_penalty_divisor(steps, length_penalty, normalize)
            ranked = cand_score / divisor
            if cand_cov is not None:  # padding counts as covered; a real word that got nothing, as all but
                real = (source_mask[sent].unsqueeze(1) if source_mask is not None else cand_cov > 0)  # (A, 1|C, S)
                covered = torch.where(real, cand_cov.clamp(min=1e-9, max=1.0), torch.ones_like(cand_cov))
                ranked = ranked + coverage_penalty * covered.log().sum(dim=2)  # (A, C)
            new = {
                "score": torch.where(entry, ranked, NEG_INF),
                "log_prob": cand_score,
                "length": torch.full_like(token, steps),
                "finished": is_eos,
                "tokens": cand_tokens,
                "token_log_probs": cand_lps,
            }
            if pool.attention is not None:
                new["attention"] = cand_attn
            pool.merge(sent, new)

            finished = pool.count(sent)  # (A,)
            done = capped | (finished >= K) | ~torch.isfinite(next_score).any(dim=1)  # (A,)
            if early_stop:  # the step's best candidate ended in EOS
                done = done | (finishes[:, 0] & (finished >= nbest))
            keep = (~done).nonzero().squeeze(1)  # (A',)
            if keep.numel() == 0:
                break
            # the state rows of the kept beams, in their new order: sentence a, beam parent
            parent_rows = torch.arange(A, device=device).unsqueeze(1) * K + parent.gather(1, alive_pos)  # (A, K)
            state = model.reorder_state(state, parent_rows[keep].reshape(-1))
            inputs = token.gather(1, alive_pos)[keep].reshape(-1)  # (A'*K,)
            alive_score = next_score[keep]
            alive_tokens = _gather_rows(cand_tokens, alive_pos)[keep]
            alive_lps = _gather_rows(cand_lps, alive_pos)[keep]
            if cand_attn is not None:
                alive_attn = _gather_rows(cand_attn, alive_pos)[keep]
            if cand_cov is not None:
                alive_cov = _gather_rows(cand_cov, alive_pos)[keep]
            sent, row_max_len = sent[keep], row_max_len[keep]

    return pool.hypotheses(nbest)
