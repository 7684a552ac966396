"""What `rnntool evaluate classification` scores: a model's predictions on labelled examples, or a
predictions file against gold labels; and the signature that says what was measured.

    gold, pred, labels, what = model_predictions("sst2@prod", "dev.tsv")
    gold, pred, labels, what = predictions_against("pred.txt", "gold.txt")
    report = classification_report(gold, pred, labels)          # rnntool.kinds.classifier.metrics

Predictions are `rnntool classify` output: one line per example, its labels space-separated
(``__label__`` prefixes are dropped; an empty line predicts nothing), its ``--prob`` lines (each
label followed by a probability printed as ``0.930000``) or its ``--json`` lines. Gold
labels are a file of the same layout, or labelled data in any format ``train classify`` reads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from rnntool.errors import BadInput
from rnntool.kinds.classifier.data import LABEL_PREFIX, check_known_labels, read_labelled
from rnntool.textio import display_name, fingerprint_file, is_stdin, read_lines

Labels = tuple[str, ...]
PROBABILITY = re.compile(r"[01]\.\d{6}")  # how `classify --prob` prints one


def _strip(token: str) -> str:
    return token[len(LABEL_PREFIX):] if token.startswith(LABEL_PREFIX) else token


def parse_label_line(line: str, where: str) -> Labels:
    """One prediction line: labels separated by spaces, `classify --prob`'s labels and probabilities,
    or a `classify --json` object."""
    line = line.strip()
    if line.startswith("{"):
        try:
            labels = json.loads(line)["labels"]
        except (ValueError, KeyError, TypeError):
            raise BadInput(f"{where}: not a `classify --json` line (no \"labels\" list)") from None
        return tuple(_strip(str(x)) for x in labels)
    tokens = line.split()
    if len(tokens) % 2 == 0 and all(PROBABILITY.fullmatch(t) for t in tokens[1::2]):
        tokens = tokens[::2]  # `classify --prob`: each label followed by its probability (0.930000)
    return tuple(_strip(t) for t in tokens)


def read_label_lines(path, on_bad_utf8: str = "strict") -> list[Labels]:
    name = display_name(path)
    return [parse_label_line(line, f"{name}:{i}")
            for i, line in enumerate(read_lines(path, on_bad_utf8=on_bad_utf8, allow_empty=True), 1)]


def _looks_like_label_lines(path) -> bool:
    """A gold file that holds only labels (no tab, no text after __label__ tokens, one token a line)."""
    for i, line in enumerate(read_lines(path, allow_empty=True, on_bad_utf8="replace")):
        tokens = line.split()
        if "\t" in line or (tokens and not (len(tokens) == 1 or all(t.startswith(LABEL_PREFIX) for t in tokens))):
            return False
        if i >= 100:
            break
    return True


def read_gold(path, *, format: str = "auto", text_column=None, label_column=None, on_bad_utf8: str = "strict"
              ) -> list[Labels]:
    if format == "auto" and not is_stdin(str(path)) and _looks_like_label_lines(path):
        gold = read_label_lines(path, on_bad_utf8)
        for i, labels in enumerate(gold, 1):
            if not labels:
                raise BadInput(f"{display_name(path)}:{i}: no gold label; give one label per line (several: "
                               "space-separated)")
        return gold
    data = read_labelled(path, format=format, text_column=text_column, label_column=label_column,
                         on_bad_utf8=on_bad_utf8, min_classes=1)
    return [e.labels for e in data.examples]


def predictions_against(pred_path, gold_path, **read) -> tuple[list[Labels], list[Labels], list[str], dict]:
    """(gold, predictions, labels, what) for a predictions file scored against gold labels."""
    if is_stdin(str(gold_path)):
        raise BadInput("--ref must be a file; the predictions can come from stdin")
    if not Path(gold_path).is_file():
        raise BadInput(f"{gold_path}: no such file (--ref)")
    gold = read_gold(gold_path, **read)
    pred = read_label_lines(pred_path, read.get("on_bad_utf8", "strict"))
    if len(pred) != len(gold):
        raise BadInput(f"{display_name(pred_path)} has {len(pred)} predictions but {gold_path} has {len(gold)} "
                       "gold examples; they must be line for line")
    labels = sorted({x for g in gold for x in g} | {x for p in pred for x in p})
    what = {"predictions": display_name(pred_path), "gold": str(gold_path),
            "gold_sha256": fingerprint_file(gold_path)["sha256"]}
    return gold, pred, labels, what


def model_predictions(model_ref: str, data_path, *, registry=None, device: str = "auto", format: str = "auto",
                      text_column=None, label_column=None, on_bad_utf8: str = "strict"
                      ) -> tuple[list[Labels], list[Labels], list[str], dict]:
    """(gold, predictions, labels, what) of a classifier on a labelled file (fastText's `test`)."""
    from rnntool.kinds.classifier.predict import open_classifier

    clf = open_classifier(model_ref, registry, device)
    data = read_labelled(data_path, format=format, text_column=text_column, label_column=label_column,
                         on_bad_utf8=on_bad_utf8, min_classes=1)
    check_known_labels(data, clf.labels)
    texts = [e.text for e in data.examples]
    pred = [p.labels for p in clf.stream(texts, batch_size=1024)]
    what = {"model": clf.ref, "data": data.source}
    if not is_stdin(None if data_path is None else str(data_path)):
        what["data_sha256"] = fingerprint_file(data_path)["sha256"]
    return [e.labels for e in data.examples], pred, None, what


def signature(what: dict, report: dict, *, samples: int, seed: int) -> str:
    """What was measured, in one line: ``model:sst2@3|data:dev.tsv#sha:1a2b3c4d|n:872|key:accuracy|...``."""
    from rnntool import __version__

    parts = []
    for k in ("model", "data", "predictions", "gold"):
        if k in what:
            sha = what.get(f"{k}_sha256")
            parts.append(f"{k}:{what[k]}" + (f"#sha:{sha[:8]}" if sha else ""))
    parts += [f"n:{report['examples']}", f"labels:{len(report['labels'])}",
              f"multi:{'yes' if report['multi_label'] else 'no'}", f"key:{report['key']}",
              f"bootstrap:{samples}", f"seed:{seed}", f"version:rnntool-{__version__}"]
    return "|".join(parts)


__all__ = ["model_predictions", "parse_label_line", "predictions_against", "read_gold", "signature"]
