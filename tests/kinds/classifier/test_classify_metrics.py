"""rnntool.kinds.classifier.metrics: equal to scikit-learn, bootstrap intervals, paired test, text and plot."""

from __future__ import annotations

import json
from importlib.util import find_spec

import numpy as np
import pytest

from rnntool.errors import BadInput, RnnToolError, UsageError
from rnntool.kinds.classifier.metrics import KEYS, classification_report, format_report, paired_test

sklearn_metrics = pytest.importorskip("sklearn.metrics")
from sklearn.preprocessing import MultiLabelBinarizer  # noqa: E402

needs_matplotlib = pytest.mark.skipif(find_spec("matplotlib") is None, reason="pip install 'rnntool[plot]'")
TOL = 1e-12
CLASSES = ["ant", "bee", "cat", "dog", "eel", "fox"]
REPORT_KEYS = {"examples", "multi_label", "labels", "accuracy", "macro_precision", "macro_recall", "macro_f1",
               "micro_precision", "micro_recall", "micro_f1", "weighted_f1", "per_class", "confusion_matrix",
               "key", "interval"}


def single_label(seed: int, n: int = 300, predicted=CLASSES[:4]):
    """Gold over all CLASSES; predictions only ever from ``predicted`` (some classes never predicted)."""
    rng = np.random.default_rng(seed)
    gold = [CLASSES[i] for i in rng.integers(0, len(CLASSES), n)]
    pred = [g if (rng.random() < 0.6 and g in predicted) else predicted[rng.integers(0, len(predicted))]
            for g in gold]
    return [(g,) for g in gold], [(p,) for p in pred]


def multi_label(seed: int, n: int = 300):
    """Random label sets; some gold sets and many predictions empty."""
    rng = np.random.default_rng(seed)

    def draw(p):
        return tuple(c for c in CLASSES[:5] if rng.random() < p)

    gold = [draw(0.35) for _ in range(n)]
    pred = [tuple(c for c in g if rng.random() < 0.7) + draw(0.1) if rng.random() < 0.8 else () for g in gold]
    return gold, pred


def check_against_sklearn(report, y_true, y_pred, names):
    """Every number of the report against sklearn on label arrays or indicator matrices."""
    m = sklearn_metrics
    assert set(report) == REPORT_KEYS
    assert report["labels"] == list(names)
    # sklearn's labels= are the class names for label arrays, column numbers for indicator matrices
    labels = list(range(len(names))) if isinstance(y_true, np.ndarray) and y_true.ndim == 2 else list(names)
    assert report["accuracy"] == pytest.approx(m.accuracy_score(y_true, y_pred), abs=TOL)
    p, r, f, s = m.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    assert [row["label"] for row in report["per_class"]] == list(names)
    assert np.allclose([row["precision"] for row in report["per_class"]], p, rtol=0, atol=TOL)
    assert np.allclose([row["recall"] for row in report["per_class"]], r, rtol=0, atol=TOL)
    assert np.allclose([row["f1"] for row in report["per_class"]], f, rtol=0, atol=TOL)
    assert [row["support"] for row in report["per_class"]] == [int(x) for x in s]
    for average in ("macro", "micro"):
        p, r, f, _ = m.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average,
                                                       zero_division=0)
        assert report[f"{average}_precision"] == pytest.approx(p, abs=TOL)
        assert report[f"{average}_recall"] == pytest.approx(r, abs=TOL)
        assert report[f"{average}_f1"] == pytest.approx(f, abs=TOL)
        assert report[f"{average}_f1"] == pytest.approx(
            m.f1_score(y_true, y_pred, labels=labels, average=average, zero_division=0), abs=TOL)
    assert report["weighted_f1"] == pytest.approx(
        m.f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0), abs=TOL)
    json.dumps(report, allow_nan=False)  # JSON-able, no NaN or infinity


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_single_label_equals_sklearn(seed):
    gold, pred = single_label(seed)
    report = classification_report(gold, pred, samples=200)
    y_true, y_pred = [g[0] for g in gold], [p[0] for p in pred]
    labels = sorted(set(y_true) | set(y_pred))
    assert report["multi_label"] is False and report["examples"] == 300
    check_against_sklearn(report, y_true, y_pred, labels)
    assert report["micro_f1"] == pytest.approx(sklearn_metrics.f1_score(y_true, y_pred, average="micro"), abs=TOL)
    assert {r["label"]: r["precision"] for r in report["per_class"]}["fox"] == 0.0  # never predicted
    cm = report["confusion_matrix"]
    assert cm["labels"] == labels
    assert cm["matrix"] == sklearn_metrics.confusion_matrix(y_true, y_pred, labels=labels).tolist()


@pytest.mark.parametrize("seed", [4, 5])
def test_explicit_labels_with_a_class_absent_from_both(seed):
    gold, pred = single_label(seed)
    labels = ["fox", "eel", "zebra", "dog", "cat", "bee", "ant"]  # zebra: in neither gold nor predictions
    report = classification_report(gold, pred, labels, key="macro_f1", samples=200)
    y_true, y_pred = [g[0] for g in gold], [p[0] for p in pred]
    check_against_sklearn(report, y_true, y_pred, labels)
    zebra = report["per_class"][2]
    assert zebra == {"label": "zebra", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["confusion_matrix"]["matrix"] == sklearn_metrics.confusion_matrix(
        y_true, y_pred, labels=labels).tolist()
    assert report["confusion_matrix"]["matrix"][2] == [0] * 7


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multi_label_equals_sklearn_on_indicator_matrices(seed):
    gold, pred = multi_label(seed)
    assert any(not p for p in pred) and any(not g for g in gold)
    labels = CLASSES  # "fox" is in no example
    report = classification_report(gold, pred, labels, samples=200)
    binarize = MultiLabelBinarizer(classes=labels)
    y_true, y_pred = binarize.fit_transform(gold), binarize.transform(pred)
    assert report["multi_label"] is True and report["confusion_matrix"] is None
    check_against_sklearn(report, y_true, y_pred, labels)
    # default labels: the sorted union; multi-label detected from the data
    auto = classification_report(gold, pred, samples=0)
    assert auto["multi_label"] is True and auto["labels"] == sorted({x for row in gold + pred for x in row})
    assert auto["interval"] is None


def test_single_label_data_scored_as_multi_label():
    gold, pred = single_label(6, n=100)
    single = classification_report(gold, pred, samples=0)
    multi = classification_report(gold, pred, multi_label=True, samples=0)
    assert multi["multi_label"] is True and multi["confusion_matrix"] is None
    for key in KEYS:
        assert multi[key] == pytest.approx(single[key], abs=TOL)


def test_bare_strings_and_repeated_labels():
    assert classification_report(["a", "b"], ["a", "a"], samples=0)["accuracy"] == 0.5
    report = classification_report([("a", "a")], [("a",)], samples=0)  # a set: the repeat counts once
    assert report["multi_label"] is False and report["accuracy"] == 1.0


@pytest.mark.parametrize("key", ["accuracy", "macro_f1", "micro_f1"])
def test_interval_contains_estimate_and_repeats(key):
    gold, pred = single_label(7, n=500)
    report = classification_report(gold, pred, key=key, seed=3)
    interval = report["interval"]
    assert report["key"] == key
    assert set(interval) == {"level", "low", "high", "samples", "seed"}
    assert interval["level"] == 0.95 and interval["samples"] == 1000 and interval["seed"] == 3
    assert interval["low"] < report[key] < interval["high"]
    assert classification_report(gold, pred, key=key, seed=3)["interval"] == interval
    assert classification_report(gold, pred, key=key, seed=4)["interval"] != interval


def test_interval_of_accuracy_is_the_bootstrap_of_per_example_correctness():
    from rnntool.evaluation.bootstrap import bootstrap_interval

    gold, pred = single_label(8, n=200)
    correct = np.array([g == p for g, p in zip(gold, pred)], dtype=float)
    expected = bootstrap_interval(lambda idx: correct[idx].mean(), 200, samples=300, seed=11)
    interval = classification_report(gold, pred, samples=300, seed=11)["interval"]
    assert (interval["low"], interval["high"]) == pytest.approx(expected, abs=TOL)


def test_paired_test():
    gold, weak = single_label(9, n=400)
    same = paired_test(gold, weak, weak, samples=300)
    assert same["p_value"] == 1.0 and same["delta"] == 0.0 and same["key"] == "accuracy"
    rng = np.random.default_rng(10)
    strong = [g if rng.random() < 0.9 else w for g, w in zip(gold, weak)]
    better = paired_test(gold, weak, strong, CLASSES, key="macro_f1", samples=300)
    assert better["p_value"] < 0.05 and better["delta"] > 0
    assert better["score_a"] == pytest.approx(classification_report(gold, weak, CLASSES, samples=0)["macro_f1"])
    assert better["score_b"] == pytest.approx(classification_report(gold, strong, CLASSES, samples=0)["macro_f1"])
    assert set(better) == {"score_a", "score_b", "delta", "p_value", "samples", "seed", "key", "examples"}
    assert paired_test(gold, weak, strong, CLASSES, key="macro_f1", samples=300) == better


def test_bad_input():
    with pytest.raises(BadInput, match="2 gold examples but 1 predictions"):
        classification_report(["a", "b"], ["a"])
    with pytest.raises(BadInput, match="no examples"):
        classification_report([], [])
    with pytest.raises(BadInput, match="not among"):
        classification_report(["a", "b"], ["a", "c"], ["a", "b"])
    with pytest.raises(BadInput, match="exactly one"):
        classification_report([("a", "b")], [("a",)], multi_label=False)
    with pytest.raises(UsageError, match="repeats"):
        classification_report(["a"], ["a"], ["a", "a"])
    with pytest.raises(UsageError, match="unknown metric"):
        classification_report(["a"], ["a"], key="auc")
    with pytest.raises(BadInput):
        paired_test(["a", "b"], ["a", "b"], ["a"])


def test_format_report_fits_100_columns():
    labels = ["negative", "neutral", "positive", "a_rather_long_label_name_indeed", "e", "f", "g", "h"]
    rng = np.random.default_rng(11)
    gold = [labels[i] for i in rng.integers(0, 8, 20000)]
    pred = [g if rng.random() < 0.99 else labels[rng.integers(0, 8)] for g in gold]  # counts of 5 digits
    report = classification_report(gold, pred, key="macro_f1", samples=50)
    text = format_report(report, signature="classify|model:sentiment@3|labels:8|seed:12345")
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100, text
    assert lines[-1] == "classify|model:sentiment@3|labels:8|seed:12345"
    assert "95% CI" in lines[0] and f"{report['accuracy']:.4f}" in lines[0]
    assert f"{report['macro_f1']:.4f}" in lines[0]
    for label in labels:
        assert label[:12] in text  # long names are cut, but still recognisable
    assert "a_rather_long_label_name_indeed" in text  # in full in the per-class table
    assert "confusion matrix" in text and "gold" in text
    assert str(report["confusion_matrix"]["matrix"][0][0]) in text


def test_format_report_multi_label_and_no_interval():
    gold, pred = multi_label(12)
    text = format_report(classification_report(gold, pred, samples=0))
    assert text.startswith("subset accuracy ") and "confusion matrix" not in text and "CI" not in text
    for label in CLASSES[:5]:
        assert label in text
    assert max(len(line) for line in text.splitlines()) <= 100


@needs_matplotlib
def test_plot_confusion_matrix(tmp_path):
    from rnntool.cli.plotting import plot_confusion_matrix

    gold, pred = single_label(13, n=200)
    report = classification_report(gold, pred, samples=0)
    dest = tmp_path / "cm.png"
    assert plot_confusion_matrix(report, dest) == dest
    raw = dest.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw.endswith(b"IEND\xaeB`\x82")
    assert [p.name for p in tmp_path.iterdir()] == ["cm.png"]  # no temporary file left behind
    svg = tmp_path / "cm.svg"
    plot_confusion_matrix(report, svg)
    assert "predicted" in svg.read_text(encoding="utf-8") and "gold" in svg.read_text(encoding="utf-8")
    with pytest.raises(UsageError):
        plot_confusion_matrix(report, tmp_path / "cm.txt")
    with pytest.raises(RnnToolError, match="multi-label"):
        plot_confusion_matrix(classification_report(*multi_label(14), samples=0), tmp_path / "m.png")
