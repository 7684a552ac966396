"""CRF against brute-force enumeration of all K^L paths on tiny inputs."""

from __future__ import annotations

import itertools

import pytest
import torch

from rnntool.errors import ConfigError
from rnntool.layers.crf import CRF, bio_transitions

LENGTHS = [4, 1, 3, 2]


def make(k: int, seed: int = 0, constraints=None):
    torch.manual_seed(seed)
    crf = CRF(k, *(constraints or ()))
    with torch.no_grad():
        for p in (crf.transitions, crf.start, crf.end):
            p.normal_()
    emissions = torch.randn(len(LENGTHS), max(LENGTHS), k)
    mask = torch.arange(max(LENGTHS))[None, :] < torch.tensor(LENGTHS)[:, None]
    return crf, emissions, mask


def path_score(crf, em_row, path):
    s = crf.start[path[0]] + crf.end[path[-1]] + sum(em_row[t, y] for t, y in enumerate(path))
    return s + sum(crf.transitions[a, b] for a, b in zip(path, path[1:]))


def is_allowed(crf, path):
    return (bool(crf.allowed_start[path[0]]) and bool(crf.allowed_end[path[-1]])
            and all(bool(crf.allowed[a, b]) for a, b in zip(path, path[1:])))


def brute(crf, emissions, b, only_allowed=False):
    """All paths of row b with their (unconstrained) scores: [(path, score)]."""
    k, n = crf.num_tags, LENGTHS[b]
    paths = [p for p in itertools.product(range(k), repeat=n) if not only_allowed or is_allowed(crf, p)]
    with torch.no_grad():
        return [(p, path_score(crf, emissions[b], p)) for p in paths]


def padded_tags(paths):
    tags = torch.full((len(paths), max(LENGTHS)), 99, dtype=torch.long)  # out-of-range padding on purpose
    for b, p in enumerate(paths):
        tags[b, :len(p)] = torch.tensor(p)
    return tags


@pytest.mark.parametrize("k", [3, 4])
def test_log_partition_score_and_nll_match_brute_force(k):
    crf, em, mask = make(k, seed=k)
    log_z = crf.log_partition(em, mask)
    gold = []
    for b in range(len(LENGTHS)):
        scored = brute(crf, em, b)
        expected = torch.logsumexp(torch.stack([s for _, s in scored]), 0)
        torch.testing.assert_close(log_z[b], expected, atol=1e-4, rtol=1e-5)
        gold.append(scored[(7 * b) % len(scored)][0])
    tags = padded_tags(gold)
    with torch.no_grad():
        expected_scores = torch.stack([path_score(crf, em[b], p) for b, p in enumerate(gold)])
    torch.testing.assert_close(crf.score(em, tags, mask), expected_scores, atol=1e-4, rtol=1e-5)
    nll = crf.nll(em, tags, mask)
    assert nll.shape == (len(LENGTHS),) and bool((nll >= 0).all())


@pytest.mark.parametrize("k", [3, 4])
def test_decode_is_brute_force_argmax(k):
    crf, em, mask = make(k, seed=10 + k)
    paths = crf.decode(em, mask)
    for b in range(len(LENGTHS)):
        scored = brute(crf, em, b)
        best = max(scored, key=lambda ps: float(ps[1]))[0]
        assert paths[b] == list(best)


@pytest.mark.parametrize("k", [3, 4])
def test_marginals_match_brute_force(k):
    crf, em, mask = make(k, seed=20 + k)
    marg = crf.marginals(em, mask)
    assert marg.shape == em.shape
    for b, n in enumerate(LENGTHS):
        scored = brute(crf, em, b)
        probs = torch.softmax(torch.stack([s for _, s in scored]), 0)
        expected = torch.zeros(max(LENGTHS), k)
        for (p, _), pr in zip(scored, probs):
            for t, y in enumerate(p):
                expected[t, y] += pr
        torch.testing.assert_close(marg[b], expected, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(marg[b, :n].sum(-1), torch.ones(n))
        assert bool((marg[b, n:] == 0).all())


@pytest.mark.parametrize("tags,scheme", [
    (["O", "B-PER", "I-PER", "B-LOC"], "iob2"),
    (["O", "B-PER", "I-PER", "I-LOC"], "iob2"),
    (["B-X", "I-X", "E-X", "S-X"], "iobes"),
    (["O", "B-X", "E-X", "S-X"], "iobes"),
])
def test_constrained_decode_and_partition(tags, scheme):
    for seed in range(3):
        crf, em, mask = make(len(tags), seed=seed, constraints=bio_transitions(tags, scheme))
        paths = crf.decode(em, mask)
        log_z = crf.log_partition(em, mask)
        for b in range(len(LENGTHS)):
            scored = brute(crf, em, b, only_allowed=True)
            assert is_allowed(crf, paths[b])
            assert paths[b] == list(max(scored, key=lambda ps: float(ps[1]))[0])
            expected = torch.logsumexp(torch.stack([s for _, s in scored]), 0)
            torch.testing.assert_close(log_z[b], expected, atol=1e-3, rtol=1e-4)
        marg = crf.marginals(em, mask)
        torch.testing.assert_close(marg.sum(-1), mask.float())


def test_bio_transitions_tables():
    allowed, start, end = bio_transitions(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], "iob2")
    assert start.tolist() == [True, True, False, True, False]
    assert end.all()
    assert allowed[:, 2].tolist() == [False, True, True, False, False]  # -> I-PER
    assert allowed[:, 4].tolist() == [False, False, False, True, True]  # -> I-LOC
    assert allowed[:, [0, 1, 3]].all()

    allowed, start, end = bio_transitions(["O", "B-A", "I-A", "E-A", "S-A", "B-C", "E-C"], "iobes")
    assert start.tolist() == [True, True, False, False, True, True, False]
    assert end.tolist() == [True, False, False, True, True, False, True]
    assert allowed[1].tolist() == [False, False, True, True, False, False, False]  # B-A -> I-A / E-A
    assert allowed[5].tolist() == [False] * 6 + [True]  # B-C -> E-C only
    assert allowed[3].tolist() == [True, True, False, False, True, True, False]  # E-A -> O / B / S

    allowed, start, end = bio_transitions(["O", "I-PER", "B-PER"], "iob1")
    assert allowed.all() and start.all() and end.all()


@pytest.mark.parametrize("tags,scheme", [
    (["O", "X-PER"], "iob2"), (["O", "E-PER"], "iob2"), (["PER"], "iob2"), (["B-"], "iob2"),
    (["O", "B-PER"], "bilou"),
])
def test_bio_transitions_rejects_bad_input(tags, scheme):
    with pytest.raises(ConfigError):
        bio_transitions(tags, scheme)


def test_bad_shapes_are_config_errors():
    with pytest.raises(ConfigError):
        CRF(3, torch.ones(2, 2, dtype=torch.bool))
    crf = CRF(3)
    with pytest.raises(ConfigError):
        crf.log_partition(torch.zeros(1, 2, 4), torch.ones(1, 2, dtype=torch.bool))


def test_padding_batched_equals_one_by_one():
    crf, em, mask = make(4, seed=5, constraints=bio_transitions(["O", "B-A", "I-A", "B-B"], "iob2"))
    tags = padded_tags([[0] * n for n in LENGTHS])
    log_z, nll, marg = crf.log_partition(em, mask), crf.nll(em, tags, mask), crf.marginals(em, mask)
    paths = crf.decode(em, mask)
    for b, n in enumerate(LENGTHS):
        e1, m1, t1 = em[b:b + 1, :n], mask[b:b + 1, :n], tags[b:b + 1, :n]
        torch.testing.assert_close(crf.log_partition(e1, m1)[0], log_z[b])
        torch.testing.assert_close(crf.nll(e1, t1, m1)[0], nll[b])
        torch.testing.assert_close(crf.marginals(e1, m1)[0], marg[b, :n])
        assert crf.decode(e1, m1)[0] == paths[b]
    # Garbage in the padding changes nothing.
    noisy = torch.where(mask[:, :, None], em, torch.full_like(em, 1e3))
    torch.testing.assert_close(crf.log_partition(noisy, mask), log_z)
    torch.testing.assert_close(crf.marginals(noisy, mask), marg)
    assert crf.decode(noisy, mask) == paths


def test_gradients_flow():
    crf, em, mask = make(4, seed=7, constraints=bio_transitions(["O", "B-A", "I-A", "B-B"], "iob2"))
    em.requires_grad_(True)
    crf.nll(em, padded_tags([[1] * n for n in LENGTHS]), mask).sum().backward()
    for grad in (crf.transitions.grad, crf.start.grad, crf.end.grad, em.grad):
        assert grad is not None and bool(torch.isfinite(grad).all())
    assert crf.transitions.grad.abs().sum() > 0
    assert bool((em.grad[~mask] == 0).all())  # padding gets no gradient


def test_bf16_emissions_computed_in_float32():
    crf, em, mask = make(3, seed=9)
    out = crf.log_partition(em.bfloat16(), mask)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, crf.log_partition(em.bfloat16().float(), mask))
