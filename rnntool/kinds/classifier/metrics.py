"""Classification metrics that agree with scikit-learn, with bootstrap intervals (numpy only, no torch).

    classification_report(gold, pred) -> {"accuracy", "macro_f1", "per_class", "confusion_matrix", ...}
    paired_test(gold, pred_a, pred_b, labels) -> {"score_a", "score_b", "delta", "p_value", ...}
    format_report(report, signature=...) -> the plain-text report for a terminal

``gold`` and ``pred`` hold one entry per example: the tuple of its labels (one label in single-label
data; in multi-label data any number, a prediction may be empty). A bare string counts as a one-label
tuple, and repeated labels in one example count once (sets, as sklearn's MultiLabelBinarizer).

Every number equals scikit-learn's on the same data with ``zero_division=0``: ``accuracy_score``
(multi-label: subset accuracy, the exact set match), ``precision_recall_fscore_support`` per class and
macro/micro/weighted averaged over ``labels`` (so a class that no example has counts in the macro
average with 0), and ``confusion_matrix`` (single-label; rows gold, columns predicted). Multi-label
scores are sklearn's on the indicator matrices of MultiLabelBinarizer(classes=labels).

Everything is computed from per-class counts (true positives, predicted, gold) summed over examples, so
a bootstrap resample costs a few ``numpy.bincount`` calls: 1000 resamples of 10k examples take well
under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnntool.errors import BadInput, UsageError
from rnntool.evaluation.bootstrap import DEFAULT_LEVEL, DEFAULT_SAMPLES, DEFAULT_SEED, bootstrap_interval
from rnntool.evaluation.bootstrap import paired_bootstrap as _paired_bootstrap

# The corpus-level numbers a report (and the bootstrap) can be keyed on.
KEYS = ("accuracy", "macro_f1", "micro_f1", "weighted_f1", "macro_precision", "macro_recall",
        "micro_precision", "micro_recall")
REPORT_WIDTH = 100

__all__ = ["KEYS", "classification_report", "format_report", "paired_test"]


# -- encoding -------------------------------------------------------------------------------------
def _as_tuple(entry: Any) -> tuple:
    """One example's labels as a tuple without repeats (a bare string is one label)."""
    if isinstance(entry, str):
        return (entry,)
    return tuple(dict.fromkeys(entry))


def _examples(gold: Sequence, preds: Sequence[Sequence]) -> tuple[list[tuple], list[list[tuple]]]:
    gold_t = [_as_tuple(g) for g in gold]
    preds_t = []
    for pred in preds:
        if len(pred) != len(gold_t):
            raise BadInput(f"{len(gold_t)} gold examples but {len(pred)} predictions; "
                           "give one prediction per example, in the same order")
        preds_t.append([_as_tuple(p) for p in pred])
    if not gold_t:
        raise BadInput("no examples to score; give at least one labelled example")
    return gold_t, preds_t


def _resolve(gold: list[tuple], preds: list[list[tuple]], labels: Sequence | None,
             multi_label: bool | None) -> tuple[list, bool]:
    """The class order and the single/multi-label decision, checked against the data."""
    seen: set = set()
    for rows in (gold, *preds):
        for row in rows:
            seen.update(row)
    if labels is None:
        order = sorted(seen)
    else:
        order = list(labels)
        if len(set(order)) != len(order):
            dupes = sorted({x for x in order if order.count(x) > 1})
            raise UsageError(f"the label list repeats {', '.join(map(repr, dupes))}; give each class once")
        unknown = seen.difference(order)
        if unknown:
            shown = ", ".join(repr(x) for x in sorted(unknown)[:5]) + (", ..." if len(unknown) > 5 else "")
            raise BadInput(f"{len(unknown)} label(s) in the data are not among the {len(order)} classes: {shown}; "
                           "add them to the label list or fix the data")
    if not order:
        raise BadInput("no labels at all in gold or predictions; nothing to score")
    odd = next(((name, i, len(row)) for name, rows in (("gold", gold), *(("predicted", p) for p in preds))
                for i, row in enumerate(rows) if len(row) != 1), None)
    if multi_label is None:
        multi_label = odd is not None
    elif not multi_label and odd is not None:
        name, i, k = odd
        raise BadInput(f"example {i + 1} has {k} {name} labels, but single-label scoring needs exactly one; "
                       "score it as multi-label data")
    return order, bool(multi_label)


@dataclass(frozen=True)
class _Counts:
    """Per-example counts as (example, class) pairs; sums over any weighting of the examples."""

    n: int
    classes: int
    exact: np.ndarray  # (n,) 1.0 where the predicted set equals the gold set
    gold_ex: np.ndarray
    gold_cls: np.ndarray
    pred_ex: np.ndarray
    pred_cls: np.ndarray
    tp_ex: np.ndarray
    tp_cls: np.ndarray
    single: tuple[np.ndarray, np.ndarray] | None  # (gold, predicted) class index per example

    def sums(self, weights: np.ndarray | None = None) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
        """(examples, exact matches, tp, predicted, gold) per class, each example counted ``weights`` times."""
        k = self.classes
        if weights is None:
            return (float(self.n), float(self.exact.sum()),
                    np.bincount(self.tp_cls, minlength=k).astype(np.float64),
                    np.bincount(self.pred_cls, minlength=k).astype(np.float64),
                    np.bincount(self.gold_cls, minlength=k).astype(np.float64))
        return (float(weights.sum()), float(weights @ self.exact),
                np.bincount(self.tp_cls, weights=weights[self.tp_ex], minlength=k),
                np.bincount(self.pred_cls, weights=weights[self.pred_ex], minlength=k),
                np.bincount(self.gold_cls, weights=weights[self.gold_ex], minlength=k))

    def statistic(self, key: str):
        """``idx -> the key metric on examples idx`` for the bootstrap."""
        def stat(idx: np.ndarray) -> float:
            return _scores(*self.sums(np.bincount(idx, minlength=self.n).astype(np.float64)))[key]
        return stat


def _encode(gold: list[tuple], pred: list[tuple], order: list, multi_label: bool) -> _Counts:
    index = {label: i for i, label in enumerate(order)}
    n = len(gold)
    if not multi_label:
        g = np.fromiter((index[row[0]] for row in gold), dtype=np.intp, count=n)
        p = np.fromiter((index[row[0]] for row in pred), dtype=np.intp, count=n)
        hit = g == p
        every = np.arange(n)
        return _Counts(n, len(order), hit.astype(np.float64), every, g, every, p,
                       np.flatnonzero(hit), g[hit], (g, p))
    pairs: dict[str, tuple[list[int], list[int]]] = {"gold": ([], []), "pred": ([], []), "tp": ([], [])}
    exact = np.zeros(n, dtype=np.float64)
    for i, (grow, prow) in enumerate(zip(gold, pred)):
        gset, pset = set(grow), set(prow)
        exact[i] = gset == pset
        for name, row in (("gold", grow), ("pred", prow), ("tp", [x for x in grow if x in pset])):
            pairs[name][0].extend([i] * len(row))
            pairs[name][1].extend(index[x] for x in row)
    arrays = {name: (np.asarray(ex, dtype=np.intp), np.asarray(cls, dtype=np.intp))
              for name, (ex, cls) in pairs.items()}
    return _Counts(n, len(order), exact, *arrays["gold"], *arrays["pred"], *arrays["tp"], None)


# -- scores from counts ---------------------------------------------------------------------------
def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (sklearn's zero_division=0)."""
    out = np.zeros(np.shape(num), dtype=np.float64)
    np.divide(num, den, out=out, where=np.asarray(den) != 0)
    return out


def _scores(total: float, exact: float, tp: np.ndarray, pp: np.ndarray, gp: np.ndarray) -> dict[str, Any]:
    """Accuracy, per-class and averaged precision/recall/F1 (sklearn's formulas) from summed counts."""
    precision = _divide(tp, pp)
    recall = _divide(tp, gp)
    f1 = _divide(2.0 * tp, gp + pp)  # sklearn: (1 + b^2) tp / (b^2 (tp + fn) + (tp + fp))
    tp_all, pp_all, gp_all = tp.sum(), pp.sum(), gp.sum()
    weight = gp.sum()
    return {
        "accuracy": exact / total if total else 0.0,
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "micro_precision": float(_divide(tp_all, pp_all)),
        "micro_recall": float(_divide(tp_all, gp_all)),
        "micro_f1": float(_divide(2.0 * tp_all, gp_all + pp_all)),
        # sklearn's np.average(f1, weights=support); with no support at all it averages unweighted
        "weighted_f1": float((f1 * gp).sum() / weight) if weight else float(f1.mean()),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def _check_key(key: str) -> None:
    if key not in KEYS:
        raise UsageError(f"unknown metric {key!r} to bootstrap; choose from {', '.join(KEYS)}")


# -- public API -----------------------------------------------------------------------------------
def classification_report(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]],
                          labels: Sequence[str] | None = None, *, multi_label: bool | None = None,
                          key: str = "accuracy", samples: int = DEFAULT_SAMPLES,
                          seed: int | None = DEFAULT_SEED) -> dict[str, Any]:
    """Scores of ``pred`` against ``gold``, as a JSON-able dict (no NaN or infinity).

    ``labels`` is the class order (default: the sorted union of gold and predicted labels); every label in
    the data must be in it, and classes no example has score 0. ``multi_label`` defaults to whether any
    gold or predicted example has other than exactly one label.

    Returns ``{"examples", "multi_label", "labels", "accuracy", "macro_precision", "macro_recall",
    "macro_f1", "micro_precision", "micro_recall", "micro_f1", "weighted_f1", "per_class": [{"label",
    "precision", "recall", "f1", "support"}, ...] (labels order), "confusion_matrix": {"labels",
    "matrix"} (rows gold, columns predicted; None for multi-label), "key", "interval": {"level", "low",
    "high", "samples", "seed"}}``: the interval is the 95% percentile bootstrap interval of the ``key``
    metric (one of KEYS); ``samples=0`` skips the bootstrap (``"interval": None``).
    """
    _check_key(key)
    if samples < 0:
        raise UsageError(f"the number of bootstrap samples must be at least 0, got {samples}")
    gold_t, (pred_t,) = _examples(gold, [pred])
    order, multi = _resolve(gold_t, [pred_t], labels, multi_label)
    counts = _encode(gold_t, pred_t, order, multi)
    total, exact, tp, pp, gp = counts.sums()
    scores = _scores(total, exact, tp, pp, gp)
    matrix = None
    if counts.single is not None:
        g, p = counts.single
        k = len(order)
        cells = np.bincount(g * k + p, minlength=k * k).reshape(k, k)
        matrix = {"labels": list(order), "matrix": cells.tolist()}
    interval = None
    if samples:
        low, high = bootstrap_interval(counts.statistic(key), counts.n, samples=samples, seed=seed,
                                       level=DEFAULT_LEVEL)
        interval = {"level": DEFAULT_LEVEL, "low": low, "high": high, "samples": samples, "seed": seed}
    return {
        "examples": counts.n,
        "multi_label": multi,
        "labels": list(order),
        **{name: float(scores[name]) for name in ("accuracy", "macro_precision", "macro_recall", "macro_f1",
                                                   "micro_precision", "micro_recall", "micro_f1", "weighted_f1")},
        "per_class": [
            {"label": label, "precision": float(scores["precision"][i]), "recall": float(scores["recall"][i]),
             "f1": float(scores["f1"][i]), "support": int(gp[i])}
            for i, label in enumerate(order)
        ],
        "confusion_matrix": matrix,
        "key": key,
        "interval": interval,
    }


def paired_test(gold: Sequence[Sequence[str]], pred_a: Sequence[Sequence[str]], pred_b: Sequence[Sequence[str]],
                labels: Sequence[str] | None = None, *, multi_label: bool | None = None, key: str = "accuracy",
                samples: int = DEFAULT_SAMPLES, seed: int | None = DEFAULT_SEED) -> dict[str, Any]:
    """Paired bootstrap test of system B against baseline A on the ``key`` metric (sacreBLEU's p-value).

    Both systems are scored over the same classes (default: the sorted union of all three label sets)
    and the same resamples. Returns ``rnntool.evaluation.bootstrap.paired_bootstrap``'s dict
    (``score_a``, ``score_b``, ``delta`` = b - a, ``p_value``, ``samples``, ``seed``) plus ``key`` and
    ``examples``. The test is two-sided; ``delta``'s sign says which system is better.
    """
    _check_key(key)
    gold_t, (a_t, b_t) = _examples(gold, [pred_a, pred_b])
    order, multi = _resolve(gold_t, [a_t, b_t], labels, multi_label)
    counts_a = _encode(gold_t, a_t, order, multi)
    counts_b = _encode(gold_t, b_t, order, multi)
    result = _paired_bootstrap(counts_a.statistic(key), counts_b.statistic(key), len(gold_t),
                               samples=samples, seed=seed)
    return {**result, "key": key, "examples": len(gold_t)}


# -- text -----------------------------------------------------------------------------------------
def _fit(text: Any, width: int) -> str:
    """``text`` cut to ``width`` columns, a ``~`` marking the cut."""
    text = str(text)
    return text if len(text) <= width else text[: max(width - 1, 1)] + "~"


def _metric_name(key: str, multi_label: bool) -> str:
    if key == "accuracy":
        return "subset accuracy" if multi_label else "accuracy"
    average, metric = key.split("_")
    return f"{average} {'F1' if metric == 'f1' else metric}"


def _interval_text(report: dict[str, Any]) -> str:
    """``accuracy 0.8530  95% CI [0.8310, 0.8750] (1000 resamples, seed 12345)``, the key metric too."""
    key = report.get("key", "accuracy")
    multi = bool(report.get("multi_label"))
    head = f"{_metric_name(key, multi)} {report[key]:.4f}"
    if key != "accuracy":
        head = f"{_metric_name('accuracy', multi)} {report['accuracy']:.4f}  {head}"
    interval = report.get("interval")
    if not interval:
        return head
    level = round(100 * interval["level"])
    return (f"{head}  {level}% CI [{interval['low']:.4f}, {interval['high']:.4f}] "
            f"({interval['samples']} resamples, seed {interval['seed']})")


def _matrix_lines(matrix: dict[str, Any]) -> list[str]:
    names = [str(x) for x in matrix["labels"]]
    cells = matrix["matrix"]
    corner = "gold \\ pred"
    row_w = min(max(len(corner), *(len(x) for x in names)), 16)
    digits = max(len(str(c)) for row in cells for c in row)
    col_w = max(digits, min(max(len(x) for x in names), 10))
    room = REPORT_WIDTH - row_w
    if len(names) * (col_w + 2) > room:  # many classes: cut the column labels shorter
        col_w = max(digits, 3, room // len(names) - 2)
    lines = [f"{_fit(corner, row_w):<{row_w}}" + "".join(f"  {_fit(x, col_w):>{col_w}}" for x in names)]
    for name, row in zip(names, cells):
        lines.append(f"{_fit(name, row_w):<{row_w}}" + "".join(f"  {c:>{col_w}}" for c in row))
    return lines


def format_report(report: dict[str, Any], *, signature: str | None = None) -> str:
    """``classification_report``'s dict as plain text for a terminal (fits 100 columns up to ~8 classes).

    A header line with accuracy (and the key metric) and its bootstrap interval, the averaged F1 scores,
    a per-class table (4 decimals, like sklearn's), the confusion matrix (gold rows, predicted columns;
    long labels cut, marked ``~``), and ``signature`` as the last line if given.
    """
    kind = "multi-label" if report.get("multi_label") else "single-label"
    lines = [
        _interval_text(report),
        f"macro F1 {report['macro_f1']:.4f}  micro F1 {report['micro_f1']:.4f}  "
        f"weighted F1 {report['weighted_f1']:.4f}  ({report['examples']} examples, {kind}, "
        f"{len(report['labels'])} classes)",
        "",
    ]
    rows = report["per_class"]
    label_w = max(12, min(max(len(str(r["label"])) for r in rows), 40))
    lines.append(f"{'label':<{label_w}}  {'precision':>9}  {'recall':>9}  {'f1':>9}  {'support':>9}")
    for r in rows:
        lines.append(f"{_fit(r['label'], label_w):<{label_w}}  {r['precision']:>9.4f}  {r['recall']:>9.4f}  "
                     f"{r['f1']:>9.4f}  {r['support']:>9d}")
    support = sum(r["support"] for r in rows)
    for name in ("macro", "micro"):
        lines.append(f"{name + ' avg':<{label_w}}  {report[name + '_precision']:>9.4f}  "
                     f"{report[name + '_recall']:>9.4f}  {report[name + '_f1']:>9.4f}  {support:>9d}")
    lines.append(f"{'weighted avg':<{label_w}}  {'':>9}  {'':>9}  {report['weighted_f1']:>9.4f}  {support:>9d}")
    matrix = report.get("confusion_matrix")
    if matrix:
        lines += ["", "confusion matrix (rows: gold, columns: predicted)", *_matrix_lines(matrix)]
    if signature:
        lines += ["", signature]
    return "\n".join(lines) + "\n"
