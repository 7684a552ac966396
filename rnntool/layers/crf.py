"""A linear-chain CRF output layer for sequence tagging: scores whole tag paths instead of tokens.

A path y_1..y_L of a sentence of length L scores

    start[y_1] + sum_t emissions[t, y_t] + sum_t transitions[y_{t-1}, y_t] + end[y_L]

and the loss is the negative log-likelihood log Z - score(gold), Z summing over all K^L paths
(the forward algorithm, in log space). Usage, with emissions from a tagger's output projection:

    crf = CRF(len(tags), *bio_transitions(tags, "iob2"))
    loss = crf.nll(emissions, gold, mask).mean()   # emissions (B, T, K), gold (B, T), mask (B, T) bool
    paths = crf.decode(emissions, mask)            # list of B lists of tag ids, each its row's length
    probs = crf.marginals(emissions, mask)         # (B, T, K) posterior per token, 0 on padding

``mask`` is left-aligned (True = real token) with at least one real token per row. Disallowed
transitions (and start / end tags) get a score of -1e4 rather than -inf in every computation, so the
forward algorithm stays finite; such paths still count towards Z, but with negligible weight, and
Viterbi never picks one while an allowed path exists. Everything is computed in float32 (emissions
are cast with ``.float()``), also under bf16 autocast. Batched over rows; loops over time only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rnntool.errors import ConfigError

DISALLOWED = -1e4  # the score of a forbidden transition / start / end: finite, so log Z stays finite
BIO_SCHEMES = ("iob1", "iob2", "iobes")


class CRF(nn.Module):
    def __init__(self, num_tags: int, allowed: torch.Tensor | None = None,
                 allowed_start: torch.Tensor | None = None,
                 allowed_end: torch.Tensor | None = None) -> None:
        """allowed (K, K) bool: may tag j follow tag i; allowed_start / allowed_end (K,) bool: may a
        sentence start / end with the tag. None allows everything (e.g. from ``bio_transitions``)."""
        super().__init__()
        if num_tags < 1:
            raise ConfigError(f"a CRF needs at least one tag (got {num_tags})")
        self.num_tags = num_tags
        k = num_tags
        for name, value, shape in (("allowed", allowed, (k, k)), ("allowed_start", allowed_start, (k,)),
                                   ("allowed_end", allowed_end, (k,))):
            if value is None:
                value = torch.ones(shape, dtype=torch.bool)
            elif tuple(value.shape) != shape:
                raise ConfigError(f"CRF {name} must have shape {shape} for {k} tags (got {tuple(value.shape)})")
            self.register_buffer(name, value.detach().to(torch.bool).clone())
        self.transitions = nn.Parameter(torch.empty(k, k))  # (K, K): score of i -> j
        self.start = nn.Parameter(torch.empty(k))  # (K,)
        self.end = nn.Parameter(torch.empty(k))  # (K,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in (self.transitions, self.start, self.end):
            nn.init.uniform_(p, -0.1, 0.1)

    def _scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The float32 transition / start / end scores with the constraints applied."""
        trans = self.transitions.float().masked_fill(~self.allowed, DISALLOWED)  # (K, K)
        start = self.start.float().masked_fill(~self.allowed_start, DISALLOWED)  # (K,)
        end = self.end.float().masked_fill(~self.allowed_end, DISALLOWED)  # (K,)
        return trans, start, end

    def _check(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if emissions.dim() != 3 or emissions.shape[-1] != self.num_tags:
            raise ConfigError(f"CRF emissions must be (B, T, {self.num_tags}) (got {tuple(emissions.shape)})")
        if tuple(mask.shape) != tuple(emissions.shape[:2]):
            raise ConfigError(f"CRF mask must be (B, T) = {tuple(emissions.shape[:2])} (got {tuple(mask.shape)})")
        return emissions.float()

    def _forward_alphas(self, em: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """em (B, T, K) float32 -> alpha_t (B, K) for every t: log-sum of all prefixes ending in each tag
        (on padded steps the row's last real alpha is carried along)."""
        trans, start, _ = self._scores()
        alpha = start + em[:, 0]  # (B, K)
        alphas = [alpha]
        for t in range(1, em.shape[1]):
            nxt = torch.logsumexp(alpha[:, :, None] + trans + em[:, t, None, :], dim=1)  # (B, K)
            alpha = torch.where(mask[:, t, None], nxt, alpha)
            alphas.append(alpha)
        return alphas

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """emissions (B, T, K), mask (B, T) bool -> log Z (B,) over all paths of each row's length."""
        em = self._check(emissions, mask)
        _, _, end = self._scores()
        alpha = self._forward_alphas(em, mask)[-1]  # (B, K)
        return torch.logsumexp(alpha + end, dim=1)  # (B,)

    def score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """emissions (B, T, K), tags (B, T) (anything on padding), mask (B, T) -> path scores (B,)."""
        em = self._check(emissions, mask)
        trans, start, end = self._scores()
        tags = tags.long().masked_fill(~mask, 0)  # (B, T): padding ids may be out of range
        maskf = mask.float()
        emit = em.gather(2, tags[:, :, None]).squeeze(2)  # (B, T)
        total = start[tags[:, 0]] + (emit * maskf).sum(1)  # (B,)
        total = total + (trans[tags[:, :-1], tags[:, 1:]] * maskf[:, 1:]).sum(1)
        last = tags.gather(1, (mask.long().sum(1) - 1)[:, None]).squeeze(1)  # (B,)
        return total + end[last]

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """-log p(tags | emissions) per sentence (B,): the loss (mean or sum it yourself)."""
        return self.log_partition(emissions, mask) - self.score(emissions, tags, mask)

    forward = nll

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """Viterbi: the best path of each row, as a list of its (true length) tag ids."""
        em = self._check(emissions, mask)
        trans, start, end = self._scores()
        batch, steps, k = em.shape
        best = start + em[:, 0]  # (B, K)
        identity = torch.arange(k, device=em.device).expand(batch, k)  # (B, K)
        backptrs = []
        for t in range(1, steps):
            cand = best[:, :, None] + trans  # (B, K_prev, K)
            top, arg = cand.max(dim=1)  # (B, K)
            # Padded steps keep the score and point each tag back to itself, so backtracking from T-1
            # walks through the padding unchanged to the row's last real step.
            best = torch.where(mask[:, t, None], top + em[:, t], best)
            backptrs.append(torch.where(mask[:, t, None], arg, identity))
        tag = (best + end).argmax(dim=1)  # (B,)
        path = [tag]
        for arg in reversed(backptrs):
            tag = arg.gather(1, tag[:, None]).squeeze(1)  # (B,)
            path.append(tag)
        paths = torch.stack(path[::-1], dim=1).tolist()  # (B, T)
        lengths = mask.long().sum(1).tolist()
        return [row[:n] for row, n in zip(paths, lengths)]

    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Forward-backward: p(y_t = k | emissions) (B, T, K); rows sum to 1 on real tokens, 0 on padding."""
        em = self._check(emissions, mask)
        trans, _, end = self._scores()
        alphas = self._forward_alphas(em, mask)
        log_z = torch.logsumexp(alphas[-1] + end, dim=1)  # (B,)
        beta = end.expand_as(alphas[-1])  # (B, K): at the row's last real step, only the end score
        betas = [beta]
        for t in range(em.shape[1] - 2, -1, -1):
            prev = torch.logsumexp(trans + (em[:, t + 1] + beta)[:, None, :], dim=2)  # (B, K)
            beta = torch.where(mask[:, t + 1, None], prev, end)  # mask left-aligned: t is the last step
            betas.append(beta)
        log_post = torch.stack(alphas, 1) + torch.stack(betas[::-1], 1) - log_z[:, None, None]  # (B, T, K)
        return log_post.exp() * mask[:, :, None]


def _parse_tag(tag: str, scheme: str) -> tuple[str, str]:
    """"B-PER" -> ("B", "PER"), "O" -> ("O", "")."""
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    valid = "BIES" if scheme == "iobes" else "BI"
    if not sep or not kind or len(prefix) != 1 or prefix not in valid:
        raise ConfigError(f"tag {tag!r} is not valid in {scheme}: use 'O' or {'/'.join(valid)}-TYPE, e.g. 'B-PER'")
    return prefix, kind


def bio_transitions(tags: Sequence[str], scheme: str = "iob2") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """allowed (K, K), allowed_start (K,), allowed_end (K,) bool for tag names like "B-PER", "I-PER", "O"
    (and "E-PER", "S-PER" in iobes), in the order of ``tags``; pass them on to ``CRF``.

    - iob2: I-X only after B-X or I-X, never first; anything else goes.
    - iobes: B-X / I-X must go on to I-X / E-X of the same type; E-X / S-X / O only to B-* / S-* / O;
      a sentence starts with B / S / O and ends with E / S / O.
    - iob1: no constraints at all. I-X may start a span (even the sentence), and B-X only separates two
      adjacent spans of the same type, a convention rather than something a path could violate.
    """
    if scheme not in BIO_SCHEMES:
        raise ConfigError(f"unknown tagging scheme {scheme!r}; choose one of {', '.join(BIO_SCHEMES)}")
    parsed = [_parse_tag(tag, scheme) for tag in tags]
    k = len(parsed)
    allowed = torch.ones(k, k, dtype=torch.bool)
    allowed_start = torch.ones(k, dtype=torch.bool)
    allowed_end = torch.ones(k, dtype=torch.bool)
    if scheme == "iob2":
        for j, (pj, kj) in enumerate(parsed):
            if pj == "I":
                allowed_start[j] = False
                for i, (pi, ki) in enumerate(parsed):
                    allowed[i, j] = pi in "BI" and ki == kj
    elif scheme == "iobes":
        for i, (pi, ki) in enumerate(parsed):
            allowed_start[i] = pi in "BSO"
            allowed_end[i] = pi in "ESO"
            for j, (pj, kj) in enumerate(parsed):
                if pi in "BI":
                    allowed[i, j] = pj in "IE" and kj == ki
                else:
                    allowed[i, j] = pj in "BSO"
    return allowed, allowed_start, allowed_end
