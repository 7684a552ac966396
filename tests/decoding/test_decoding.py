"""Decoding invariants on toy step models: greedy, sampling, batched beam search."""

from __future__ import annotations

import itertools

import pytest
import torch

from rnntool.decoding.search import (
    Hypothesis,
    beam_search,
    filter_log_probs,
    greedy,
    greedy_steps,
    hard_alignment,
    length_penalty_divisor,
    sample,
)
from rnntool.errors import ConfigError

BOS, EOS = 2, 3


class TableModel:
    """A random "model": log-probs depend on (prompt, position, previous token) through a fixed table.

    The state of a row is (prompt id, position); attention is a fixed random distribution per
    (prompt, position) over ``src_len`` source positions.
    """

    def __init__(self, vocab=7, prompts=8, positions=12, src_len=5, seed=0, eos_bias=0.0, scale=2.0):
        g = torch.Generator().manual_seed(seed)
        logits = torch.randn(prompts, positions, vocab, vocab, generator=g) * scale  # (P, L, V, V)
        logits[..., EOS] += eos_bias
        self.table = logits.log_softmax(-1)
        self.attn = torch.randn(prompts, positions, src_len, generator=g).softmax(-1)  # (P, L, S)
        self.positions = positions
        self.steps = 0  # model calls
        self.rows = 0  # rows computed over all calls

    def start(self, prompts) -> torch.Tensor:
        prompts = torch.as_tensor(prompts, dtype=torch.long)
        return torch.stack([prompts, torch.zeros_like(prompts)], dim=1)  # (B, 2)

    def step(self, tokens, state):
        self.steps += 1
        self.rows += tokens.numel()
        prompt, pos = state[:, 0], state[:, 1].clamp(max=self.positions - 1)
        log_probs = self.table[prompt, pos, tokens]  # (N, V)
        return log_probs, torch.stack([state[:, 0], state[:, 1] + 1], dim=1), self.attn[prompt, pos]

    def reorder_state(self, state, index):
        return state[index]

    def repeat_state(self, state, times):
        return state.repeat_interleave(times, dim=0)

    def score(self, prompt: int, tokens: list[int], finished: bool) -> float:
        """Log-probability of one output (EOS included when finished), step by step."""
        state, prev, total = self.start([prompt]), torch.tensor([BOS]), 0.0
        for tok in tokens + ([EOS] if finished else []):
            lp, state, _ = self.step(prev, state)
            total += float(lp[0, tok])
            prev = torch.tensor([tok])
        return total


PROMPTS = list(range(8))


def run_beam(model, prompts, **kw):
    kw.setdefault("max_len", 8)
    return beam_search(model, model.start(prompts), len(prompts), BOS, EOS, **kw)


def run_greedy(model, prompts, **kw):
    kw.setdefault("max_len", 8)
    return greedy(model, model.start(prompts), len(prompts), BOS, EOS, **kw)


def exhaustive(model, prompt, max_len, min_len=0, alpha=0.0, normalize=False):
    """Every possible output with its penalised score, best first."""
    words = [v for v in range(model.table.size(-1)) if v != EOS]
    outs = []
    for n in range(min_len, max_len):  # n tokens, then EOS
        for toks in itertools.product(words, repeat=n):
            outs.append((list(toks), True))
    outs += [(list(toks), False) for toks in itertools.product(words, repeat=max_len)]
    scored = []
    for toks, fin in outs:
        lp = model.score(prompt, toks, fin)
        scored.append((lp / length_penalty_divisor(len(toks) + fin, alpha, normalize), toks, fin))
    scored.sort(key=lambda x: -x[0])
    return scored


# -- greedy ---------------------------------------------------------------------------------------


def test_greedy_takes_the_argmax_and_scores_match_the_model():
    model = TableModel()
    for prompt, hyp in zip(PROMPTS, run_greedy(model, PROMPTS)):
        assert hyp.length <= 8 and (hyp.finished or len(hyp.tokens) == 8)
        assert hyp.log_prob == pytest.approx(model.score(prompt, hyp.tokens, hyp.finished), abs=1e-5)
        assert hyp.log_prob == pytest.approx(sum(hyp.token_log_probs))
        # each token is the argmax after its prefix
        state, prev = model.start([prompt]), torch.tensor([BOS])
        for tok in hyp.tokens + ([EOS] if hyp.finished else []):
            lp, state, _ = model.step(prev, state)
            assert int(lp.argmax()) == tok
            prev = torch.tensor([tok])


def test_greedy_per_row_max_len_and_min_len():
    model = TableModel(eos_bias=4.0)  # EOS is likely: outputs would be short
    caps = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8])
    hyps = run_greedy(model, PROMPTS, max_len=caps)
    assert all(h.length <= int(c) for h, c in zip(hyps, caps))
    short = run_greedy(model, PROMPTS, max_len=10)
    assert min(len(h.tokens) for h in short) < 3  # the constraint below does something
    for h in run_greedy(model, PROMPTS, max_len=10, min_len=3):
        assert len(h.tokens) >= 3


def test_greedy_steps_stream_the_same_tokens():
    model = TableModel()
    hyps = run_greedy(model, PROMPTS)
    streamed: dict[int, list[int]] = {p: [] for p in PROMPTS}
    for step in greedy_steps(model, model.start(PROMPTS), len(PROMPTS), BOS, EOS, max_len=8):
        for row, tok in zip(step.rows.tolist(), step.tokens.tolist()):
            if tok != EOS:
                streamed[row].append(tok)
    assert [streamed[p] for p in PROMPTS] == [h.tokens for h in hyps]


def test_greedy_bos_can_be_a_tensor_per_row():
    model = TableModel()
    firsts = torch.tensor([4, 5, 6, 4, 5, 6, 4, 5])
    hyps = greedy(model, model.start(PROMPTS), 8, firsts, EOS, max_len=6)
    lp, _, _ = model.step(firsts, model.start(PROMPTS))
    assert [h.token_log_probs[0] for h in hyps] == pytest.approx(lp.max(dim=1).values.tolist())


# -- sampling -------------------------------------------------------------------------------------


def test_filter_log_probs_top_k_and_nucleus():
    lp = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    assert torch.isfinite(filter_log_probs(lp, top_k=2)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_log_probs(lp, top_p=0.75)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_log_probs(lp, top_p=0.9)).tolist() == [[True, True, True, False]]
    assert torch.isfinite(filter_log_probs(lp, top_p=0.1)).tolist() == [[True, False, False, False]]
    # unsorted input: the kept set is still the most likely tokens
    shuffled = lp[:, [2, 0, 3, 1]]
    assert torch.isfinite(filter_log_probs(shuffled, top_p=0.75)).tolist() == [[False, True, False, True]]
    assert torch.isfinite(filter_log_probs(shuffled, top_k=3, top_p=0.9)).tolist() == [[True, True, False, True]]


def test_sample_stays_inside_the_nucleus():
    model = TableModel(vocab=12)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        hyps = sample(model, model.start(PROMPTS), 8, BOS, EOS, max_len=6, top_p=0.5, generator=g)
        for prompt, h in zip(PROMPTS, hyps):
            state, prev = model.start([prompt]), torch.tensor([BOS])
            for tok in h.tokens + ([EOS] if h.finished else []):
                lp, state, _ = model.step(prev, state)
                assert torch.isfinite(filter_log_probs(lp, top_p=0.5)[0, tok])
                prev = torch.tensor([tok])


def test_sample_top_k_1_and_zero_temperature_equal_greedy():
    model = TableModel()
    want = [h.tokens for h in run_greedy(model, PROMPTS)]
    g = torch.Generator().manual_seed(0)
    for kw in ({"top_k": 1}, {"temperature": 0.0}, {"temperature": 1e-4}):
        got = sample(model, model.start(PROMPTS), 8, BOS, EOS, max_len=8, generator=g, **kw)
        assert [h.tokens for h in got] == want, kw


def test_sample_with_a_seed_repeats_and_differs_across_seeds():
    model = TableModel(vocab=20, scale=0.5)

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return [h.tokens for h in sample(model, model.start(PROMPTS), 8, BOS, EOS, max_len=10, generator=g)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_sample_respects_min_len_and_rejects_bad_settings():
    model = TableModel(eos_bias=5.0)
    g = torch.Generator().manual_seed(0)
    for h in sample(model, model.start(PROMPTS), 8, BOS, EOS, max_len=9, min_len=4, generator=g):
        assert len(h.tokens) >= 4
    for kw in ({"temperature": -1.0}, {"top_p": 0.0}, {"top_k": -2}):
        with pytest.raises(ConfigError):
            sample(model, model.start(PROMPTS), 8, BOS, EOS, max_len=5, **kw)


# -- beam search ----------------------------------------------------------------------------------


@pytest.mark.parametrize("eos_bias", [-1.0, 1.0])
def test_beam_1_equals_greedy(eos_bias):
    model = TableModel(eos_bias=eos_bias)
    caps = torch.tensor([3, 8, 8, 5, 8, 2, 8, 7])
    want = run_greedy(model, PROMPTS, max_len=caps, min_len=1)
    got = run_beam(model, PROMPTS, beam=1, max_len=caps, min_len=1)
    assert [g[0].tokens for g in got] == [w.tokens for w in want]
    assert [g[0].finished for g in got] == [w.finished for w in want]
    assert [g[0].log_prob for g in got] == pytest.approx([w.log_prob for w in want], abs=1e-5)


def test_nbest_lists_are_sorted_distinct_and_scored_by_the_model():
    model = TableModel()
    results = run_beam(model, PROMPTS, beam=6, nbest=6, length_penalty=0.6)
    for prompt, nbest in zip(PROMPTS, results):
        assert len(nbest) == 6
        scores = [h.score for h in nbest]
        assert scores == sorted(scores, reverse=True)
        assert len({(tuple(h.tokens), h.finished) for h in nbest}) == len(nbest)
        for h in nbest:
            assert h.log_prob == pytest.approx(model.score(prompt, h.tokens, h.finished), abs=1e-4)
            assert h.log_prob == pytest.approx(sum(h.token_log_probs), abs=1e-4)
            assert h.score == pytest.approx(h.log_prob / length_penalty_divisor(h.length, 0.6))


@pytest.mark.parametrize("kw", [{}, {"length_penalty": 1.0}, {"normalize": True}, {"min_len": 2}])
def test_batched_equals_one_by_one(kw):
    model = TableModel()
    caps = torch.tensor([4, 8, 8, 6, 8, 3, 8, 7])
    batched = run_beam(model, PROMPTS, beam=4, nbest=3, max_len=caps, keep_attention=True, **kw)
    for i, prompt in enumerate(PROMPTS):
        alone = run_beam(model, [prompt], beam=4, nbest=3, max_len=caps[i:i + 1], keep_attention=True, **kw)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in batched[i]]
        assert [h.score for h in alone] == [h.score for h in batched[i]]
        assert all(torch.equal(a.attention, b.attention) for a, b in zip(alone, batched[i]))


def test_beam_finds_outputs_at_least_as_likely_as_greedy():
    # Not a theorem (a wider beam can prune greedy's path), but on these models it always holds.
    model = TableModel(vocab=9, prompts=8)
    greedy_lp = [h.log_prob for h in run_greedy(model, PROMPTS, max_len=10)]
    beam_lp = [n[0].log_prob for n in run_beam(model, PROMPTS, beam=5, max_len=10)]
    assert all(b >= g - 1e-6 for b, g in zip(beam_lp, greedy_lp))
    assert sum(beam_lp) > sum(greedy_lp)


def test_larger_length_penalty_never_shortens_outputs():
    model = TableModel(vocab=9, eos_bias=1.0)
    previous = None
    for alpha in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0):
        lengths = [n[0].length for n in run_beam(model, PROMPTS, beam=4, max_len=12, length_penalty=alpha)]
        if previous is not None:
            assert all(now >= before for now, before in zip(lengths, previous)), alpha
        previous = lengths
    first = [n[0].length for n in run_beam(model, PROMPTS, beam=4, max_len=12)]
    assert sum(previous) > sum(first)  # the penalty does something on this model


def test_min_len_respected_by_beam_search():
    model = TableModel(eos_bias=4.0)
    for nbest in run_beam(model, PROMPTS, beam=3, nbest=3, max_len=9, min_len=4):
        assert nbest and all(len(h.tokens) >= 4 for h in nbest)


@pytest.mark.parametrize("kw", [{}, {"min_len": 1}, {"length_penalty": 1.0}, {"normalize": True}])
def test_wide_beam_equals_exhaustive_search(kw):
    model = TableModel(vocab=5, prompts=2)
    max_len = 3
    min_len = kw.get("min_len", 0)
    alpha, normalize = kw.get("length_penalty", 0.0), kw.get("normalize", False)
    results = run_beam(model, [0, 1], beam=85, nbest=85, max_len=max_len, **kw)
    for prompt, nbest in zip([0, 1], results):
        want = exhaustive(model, prompt, max_len, min_len, alpha, normalize)
        assert [(h.tokens, h.finished) for h in nbest] == [(toks, fin) for _, toks, fin in want]
        assert [h.score for h in nbest] == pytest.approx([s for s, _, _ in want], abs=1e-4)


def test_narrow_beam_top1_matches_exhaustive_on_easy_models():
    model = TableModel(vocab=5, prompts=4, scale=4.0)
    for prompt, nbest in zip(range(4), run_beam(model, list(range(4)), beam=8, max_len=4)):
        best = exhaustive(model, prompt, 4)[0]
        assert nbest[0].tokens == best[1] and nbest[0].score == pytest.approx(best[0], abs=1e-4)


def test_attention_rows_and_hard_alignment():
    model = TableModel(src_len=5)
    for prompt, nbest in zip(PROMPTS, run_beam(model, PROMPTS, beam=3, keep_attention=True)):
        h = nbest[0]
        assert h.attention.shape == (h.length, 5)
        pairs = h.alignment(src_len=4, src_offset=1)
        assert [j for _, j in sorted(pairs, key=lambda p: p[1])] == list(range(len(h.tokens)))
        assert all(0 <= i < 4 for i, _ in pairs)
        for i, j in pairs:  # the source position with the largest weight among the real ones
            assert int(h.attention[j, 1:5].argmax()) == i
    assert run_beam(model, PROMPTS, beam=3)[0][0].attention is None  # not kept unless asked
    assert run_greedy(model, PROMPTS)[0].attention is None
    greedy_hyps = run_greedy(model, PROMPTS, keep_attention=True)
    beam_1 = run_beam(model, PROMPTS, beam=1, keep_attention=True)
    assert all(torch.equal(g.attention, b[0].attention) for g, b in zip(greedy_hyps, beam_1))
    assert hard_alignment(None, 3, 4) == []


def test_beam_search_rejects_bad_settings():
    model = TableModel()
    for kw in ({"beam": 0}, {"beam": 2, "nbest": 3}, {"length_penalty": 1.0, "normalize": True},
               {"max_len": 0}, {"min_len": -1}):
        with pytest.raises(ConfigError):
            run_beam(model, PROMPTS, **kw)


def test_finished_sentences_leave_the_batch():
    # sentence 0 never ends before its cap; the others end at once and stop costing model rows
    model = TableModel(positions=30)
    model.table[0, :, :, EOS] = -30.0
    model.table[1:, :, :, EOS] = -1e-3
    for search in (lambda: run_greedy(model, PROMPTS, max_len=30), lambda: run_beam(model, PROMPTS, beam=2, max_len=30)):
        model.steps = model.rows = 0
        search()
        assert model.steps == 30
        assert model.rows < 3 * 2 * 30  # not 8 sentences x 2 beams x 30 steps


def test_hypothesis_fields():
    h = Hypothesis(tokens=[5, 6], score=-1.5, log_prob=-1.5, token_log_probs=[-0.5, -0.5, -0.5], finished=True)
    assert h.length == 3 and h.alignment(3) == []


# -- n-gram blocking and the coverage penalty ----------------------------------------------------


def _repeats(tokens: list[int], n: int) -> bool:
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) != len(set(grams))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_equals_exhaustive_search_over_outputs_without_repeats(n):
    model = TableModel(vocab=5, prompts=2, scale=1.0)
    max_len = 4
    results = run_beam(model, [0, 1], beam=400, nbest=400, max_len=max_len, no_repeat_ngram=n)
    for prompt, nbest in zip([0, 1], results):
        want = [w for w in exhaustive(model, prompt, max_len) if not _repeats(w[1], n)]
        assert [(h.tokens, h.finished) for h in nbest] == [(toks, fin) for _, toks, fin in want]
        assert [h.score for h in nbest] == pytest.approx([s for s, _, _ in want], abs=1e-4)
    # never a repeat with blocking, on longer outputs too
    for hyps in run_beam(TableModel(), PROMPTS, beam=4, max_len=8, no_repeat_ngram=2):
        assert not _repeats(hyps[0].tokens, 2)


def test_coverage_penalty_equals_exhaustive_search_with_gnmt_scores():
    model = TableModel(vocab=5, prompts=2, src_len=4)
    max_len, beta, alpha = 3, 0.7, 0.6
    results = run_beam(model, [0, 1], beam=85, nbest=85, max_len=max_len, length_penalty=alpha,
                       coverage_penalty=beta)
    for prompt, nbest in zip([0, 1], results):
        want = []
        for _, toks, fin in exhaustive(model, prompt, max_len):
            steps = len(toks) + fin
            coverage = model.attn[prompt, :steps].sum(0).clamp(max=1.0)  # the attention each source word got
            score = model.score(prompt, toks, fin) / length_penalty_divisor(steps, alpha)
            want.append((score + beta * float(coverage.log().sum()), toks, fin))
        want.sort(key=lambda w: -w[0])
        assert [h.score for h in nbest] == pytest.approx([s for s, _, _ in want], abs=1e-4)
        assert [(h.tokens, h.finished) for h in nbest] == [(toks, fin) for _, toks, fin in want]
    assert [h.tokens for h in run_beam(model, [0, 1], beam=3, coverage_penalty=0.0)[0]] == \
        [h.tokens for h in run_beam(model, [0, 1], beam=3)[0]]
    with pytest.raises(ConfigError):
        run_beam(model, [0, 1], no_repeat_ngram=-1)


# -- ensembles ------------------------------------------------------------------------------------


def test_an_ensemble_decodes_with_the_mean_of_its_members_distributions():
    from rnntool.decoding.ensemble import Ensemble

    a, b = TableModel(seed=1, src_len=5), TableModel(seed=2, src_len=5)
    both = Ensemble([a, b])
    states = [a.start(PROMPTS), b.start(PROMPTS)]
    tokens = torch.full((len(PROMPTS),), BOS)
    lp, new_states, attention = both.step(tokens, states)
    pa, _, att_a = a.step(tokens, states[0])
    pb, _, att_b = b.step(tokens, states[1])
    torch.testing.assert_close(lp.exp(), (pa.exp() + pb.exp()) / 2)
    torch.testing.assert_close(attention, (att_a + att_b) / 2)
    assert [s.tolist() for s in new_states] == [s.tolist() for s in both.reorder_state(new_states, torch.arange(8))]
    # a model with itself is the model: the same search, the same scores
    solo = run_beam(a, PROMPTS, beam=3, nbest=2)
    twice = beam_search(Ensemble([a, a]), [a.start(PROMPTS), a.start(PROMPTS)], len(PROMPTS), BOS, EOS,
                        max_len=8, beam=3, nbest=2)
    assert [[h.tokens for h in n] for n in solo] == [[h.tokens for h in n] for n in twice]
    assert [h.score for n in solo for h in n] == pytest.approx([h.score for n in twice for h in n], abs=1e-5)


def test_coverage_penalty_with_a_source_mask_charges_an_unattended_word_and_not_padding():
    import math

    model = TableModel(vocab=5, prompts=2, src_len=4)
    model.attn[..., 3] = 0.0  # position 3 never gets any attention
    model.attn = model.attn / model.attn.sum(-1, keepdim=True)
    real = torch.ones(2, 4, dtype=torch.bool)
    padded = real.clone()
    padded[:, 3] = False
    as_word = run_beam(model, [0, 1], beam=3, nbest=3, coverage_penalty=1.0, source_mask=real)
    as_pad = run_beam(model, [0, 1], beam=3, nbest=3, coverage_penalty=1.0, source_mask=padded)
    for word, pad in zip(as_word, as_pad):
        assert [h.tokens for h in word] == [h.tokens for h in pad]  # the same constant for every hypothesis
        assert [h.score for h in word] == pytest.approx([h.score + math.log(1e-9) for h in pad], abs=1e-3)


# -- early stopping ---------------------------------------------------------------------------------


@pytest.mark.parametrize("eos_bias", [-1.0, 0.0, 1.5])
def test_exact_early_stop_gives_the_same_best_hypothesis_in_fewer_steps(eos_bias):
    """Ranking by log-prob alone with nbest 1, a sentence stops once its best candidate ends: nothing live can
    overtake it later (each extension only lowers a score). The same outputs as waiting for K, fewer rows."""
    caps = torch.tensor([3, 8, 8, 5, 8, 2, 8, 7])
    model = TableModel(vocab=9, eos_bias=eos_bias)
    fast = run_beam(model, PROMPTS, beam=4, max_len=caps)
    fast_rows = model.rows
    model.rows = 0
    slow = run_beam(model, PROMPTS, beam=4, max_len=caps, length_penalty=1e-12)  # waits for K finished
    assert [h[0].tokens for h in fast] == [h[0].tokens for h in slow]
    assert [h[0].finished for h in fast] == [h[0].finished for h in slow]
    assert [h[0].log_prob for h in fast] == pytest.approx([h[0].log_prob for h in slow], abs=1e-5)
    assert fast_rows <= model.rows
    if eos_bias > 0:  # outputs end early on this model: stopping sooner saves steps
        assert fast_rows < model.rows


def test_early_stop_with_a_length_penalty_stops_at_the_first_best_eos():
    """--early-stop (OpenNMT-py's rule) with a length penalty: fewer steps; each output is a finished
    hypothesis, scored by the model, and beam 1 is still greedy."""
    model = TableModel(vocab=9)
    full = run_beam(model, PROMPTS, beam=4, max_len=10, length_penalty=0.6)
    full_rows, model.rows = model.rows, 0
    early = run_beam(model, PROMPTS, beam=4, max_len=10, length_penalty=0.6, early_stop=True)
    assert model.rows < full_rows
    for prompt, nbest in zip(PROMPTS, early):
        h = nbest[0]
        assert h.log_prob == pytest.approx(model.score(prompt, h.tokens, h.finished), abs=1e-4)
    greedy_out = run_greedy(model, PROMPTS, max_len=10)
    beam1 = run_beam(model, PROMPTS, beam=1, max_len=10, length_penalty=0.6, early_stop=True)
    assert [g[0].tokens for g in beam1] == [w.tokens for w in greedy_out]
