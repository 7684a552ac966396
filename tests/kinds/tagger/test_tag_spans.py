"""Span scoring: conlleval's chunk rules (IOB1/IOB2), seqeval's strict IOBES, conlleval's text output."""

from __future__ import annotations

import json
import random
import warnings

import pytest

from rnntool.errors import BadInput, UsageError
from rnntool.kinds.tagger.spans import (
    SCHEMES,
    conlleval_report,
    extract_spans,
    read_conlleval_input,
    span_report,
)

TYPES = ("LOC", "ORG", "PER")


# -- hand-computed spans --------------------------------------------------------------------------
def test_iob2_spans_by_hand():
    tags = ["I-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-ORG", "B-ORG", "B-ORG", "I-ORG", "O"]
    # I at sentence start opens a chunk; a type change inside a run splits it; B after B/I splits it
    assert extract_spans(tags, "iob2") == [("PER", 0, 2), ("LOC", 3, 5), ("ORG", 5, 6), ("ORG", 6, 7),
                                           ("ORG", 7, 9)]


def test_iob1_spans_by_hand():
    tags = ["O", "I-PER", "I-PER", "B-PER", "I-PER", "O", "I-MISC", "O", "I-LOC", "I-ORG", "B-ORG"]
    # IOB1: runs start with I; B only separates two adjacent chunks of the same type; a stray I after O
    assert extract_spans(tags, "iob1") == [("PER", 1, 3), ("PER", 3, 5), ("MISC", 6, 7), ("LOC", 8, 9),
                                           ("ORG", 9, 10), ("ORG", 10, 11)]
    assert extract_spans(tags, "iob1") == extract_spans(tags, "iob2")  # conlleval: the same rules
    assert extract_spans(["B-X-Y", "I-X-Y"], "iob1") == [("X-Y", 0, 2)]  # hyphens in the type


def test_iobes_spans_by_hand():
    tags = ["S-PER", "B-LOC", "I-LOC", "E-LOC", "B-ORG", "E-ORG", "S-ORG",  # 0..6: three valid spans
            "B-PER", "O",            # 7: B not closed by E -> dropped
            "I-PER", "E-PER",        # 9-10: no B -> dropped
            "E-LOC",                 # 11: lone E -> dropped
            "B-MISC", "I-MISC", "E-ORG",  # 12-14: type change before E -> dropped
            "S-MISC",                # 15
            "B-PER", "S-PER",        # 16: B cut short by S -> dropped; 17: S kept
            "B-LOC", "E-LOC", "E-LOC"]   # 18-19 valid, 20 a stray E
    expected = [("PER", 0, 1), ("LOC", 1, 4), ("ORG", 4, 6), ("ORG", 6, 7), ("MISC", 15, 16),
                ("PER", 17, 18), ("LOC", 18, 20)]
    assert extract_spans(tags, "iobes") == expected
    scheme = pytest.importorskip("seqeval.scheme")
    seqeval = [(e.tag, e.start, e.end) for e in scheme.Tokens(tags, scheme.IOBES).entities]
    assert seqeval == expected


def test_bad_tags_and_scheme():
    with pytest.raises(BadInput, match="tag 2 is 'E-PER'"):
        extract_spans(["B-PER", "E-PER"], "iob2")
    for bad in ("PER", "B-", "BB-PER", "U-PER"):
        with pytest.raises(BadInput):
            extract_spans([bad], "iobes")
    with pytest.raises(UsageError):
        extract_spans(["O"], "bilou")
    assert extract_spans([], "iob2") == []


# -- agreement with seqeval -----------------------------------------------------------------------
def _random_corpus(seed: int, prefixes: str) -> tuple[list[list[str]], list[list[str]]]:
    rng = random.Random(seed)
    choices = ["O", "O"] + [f"{p}-{t}" for p in prefixes for t in TYPES]

    def sentence(n):
        return [rng.choice(choices) for _ in range(n)]
    lengths = [rng.randint(0, 12) for _ in range(40)]
    return [sentence(n) for n in lengths], [sentence(n) for n in lengths]


def _assert_matches_seqeval(report, gold, pred, **kwargs):
    metrics = pytest.importorskip("seqeval.metrics")  # a test oracle: pip install seqeval (see README)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert report["precision"] == pytest.approx(metrics.precision_score(gold, pred, **kwargs), abs=1e-12)
        assert report["recall"] == pytest.approx(metrics.recall_score(gold, pred, **kwargs), abs=1e-12)
        assert report["f1"] == pytest.approx(metrics.f1_score(gold, pred, **kwargs), abs=1e-12)
        table = metrics.classification_report(gold, pred, output_dict=True, **kwargs)
    mine = {row["type"]: row for row in report["per_type"]}
    theirs = {k: v for k, v in table.items() if not k.endswith(" avg")}
    assert set(mine) == set(theirs)
    for kind, row in mine.items():
        assert row["precision"] == pytest.approx(theirs[kind]["precision"], abs=1e-12)
        assert row["recall"] == pytest.approx(theirs[kind]["recall"], abs=1e-12)
        assert row["f1"] == pytest.approx(theirs[kind]["f1-score"], abs=1e-12)
        assert row["support"] == theirs[kind]["support"]
    assert report["found_gold"] == sum(r["support"] for r in mine.values())


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("scheme", ["iob1", "iob2"])
def test_iob_matches_seqeval_default_mode(seed, scheme):
    gold, pred = _random_corpus(seed, "BI")
    _assert_matches_seqeval(span_report(gold, pred, scheme=scheme, samples=0), gold, pred)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_iobes_matches_seqeval_strict_mode(seed):
    gold, pred = _random_corpus(seed, "BIES")
    report = span_report(gold, pred, scheme="iobes", samples=0)
    assert report["found_pred"] > 0 and report["correct"] > 0
    _assert_matches_seqeval(report, gold, pred, mode="strict", scheme=pytest.importorskip("seqeval.scheme").IOBES)


# -- report ---------------------------------------------------------------------------------------
GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "O"]]
PRED = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "B-MISC"]]


def test_report_counts_and_json():
    report = span_report(GOLD, PRED, samples=200)
    assert (report["sentences"], report["tokens"]) == (2, 7)
    assert report["token_accuracy"] == 5 / 7
    assert (report["found_gold"], report["found_pred"], report["correct"]) == (3, 4, 2)
    assert report["precision"] == 0.5 and report["recall"] == 2 / 3
    assert [r["type"] for r in report["per_type"]] == ["LOC", "MISC", "ORG", "PER"]
    assert report["per_type"][1] == {"type": "MISC", "precision": 0.0, "recall": 0.0, "f1": 0.0,
                                     "support": 0, "predicted": 1, "correct": 0}
    assert report["scheme"] == "iob2"
    json.dumps(report, allow_nan=False)


def test_conlleval_text_from_its_printf_formats():
    # conlleval.pl: printf("%17s: ", type); "precision: %6.2f%%; "; "recall: %6.2f%%; "; "FB1: %6.2f  %d\n"
    expected = (
        "processed 7 tokens with 3 phrases; found: 4 phrases; correct: 2.\n"
        "accuracy:  71.43%; precision:  50.00%; recall:  66.67%; FB1:  57.14\n"
        "              LOC: precision:   0.00%; recall:   0.00%; FB1:   0.00  0\n"
        "             MISC: precision:   0.00%; recall:   0.00%; FB1:   0.00  1\n"
        "              ORG: precision:  50.00%; recall: 100.00%; FB1:  66.67  2\n"
        "              PER: precision: 100.00%; recall: 100.00%; FB1: 100.00  1\n"
    )
    assert conlleval_report(span_report(GOLD, PRED, samples=0)) == expected


def test_bootstrap_interval_contains_f1_and_is_reproducible():
    gold, pred = _random_corpus(7, "BI")
    report = span_report(gold, pred, samples=300, seed=3)
    interval = report["interval"]
    assert interval["low"] <= report["f1"] <= interval["high"]
    assert interval["low"] < interval["high"]
    assert (interval["level"], interval["samples"], interval["seed"]) == (0.95, 300, 3)
    assert span_report(gold, pred, samples=300, seed=3)["interval"] == interval
    assert span_report(gold, pred, samples=0)["interval"] is None
    with pytest.raises(UsageError):
        span_report(gold, pred, samples=-1)


def test_mismatched_input_names_the_sentence():
    with pytest.raises(BadInput, match="sentence 2 has 3 gold tags but 2 predicted"):
        span_report(GOLD, [PRED[0], ["B-ORG", "O"]])
    with pytest.raises(BadInput, match="2 gold sentences but 1"):
        span_report(GOLD, PRED[:1])
    with pytest.raises(BadInput, match=r"sentence 1 \(predicted\): tag 1"):
        span_report([["O"]], [["S-PER"]], scheme="iob1")
    with pytest.raises(BadInput):
        span_report([], [])


# -- conlleval input ------------------------------------------------------------------------------
def test_read_conlleval_input_round_trip():
    lines = ["-DOCSTART- -X- O O", ""]
    for s, (g, p) in enumerate(zip(GOLD, PRED)):
        lines += [f"w{s}{i} NN {gt} {pt}\n" for i, (gt, pt) in enumerate(zip(g, p))] + ["\n", "\n"]
    gold, pred = read_conlleval_input(lines)
    assert (gold, pred) == (GOLD, PRED)
    assert read_conlleval_input(lines[:-2]) == (GOLD, PRED)  # no trailing blank line


def test_read_conlleval_input_errors():
    with pytest.raises(BadInput, match="^line 2: 3 columns, but line 1 has 4"):
        read_conlleval_input(["a NN O O", "b O O"])
    with pytest.raises(BadInput, match="^line 1: one column"):
        read_conlleval_input(["a"])


def test_schemes():
    assert SCHEMES == ("iob1", "iob2", "iobes")
