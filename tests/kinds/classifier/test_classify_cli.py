"""`rnntool train classify`, `classify` and `evaluate classification` as a user runs them: output layouts,
streaming, batched == one-by-one, metrics equal scikit-learn's, transfer from a language model,
promotion, and one-line errors for bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from conftest import fails, invoke, ok, rnntool_cmd
from rnntool.registry.store import Registry

POS = "good great fine lovely superb nice".split()
NEG = "bad awful poor dull terrible weak".split()
FILLER = "the a film movie plot actor was is really quite".split()
TINY = ("--vocab-size", "300", "--embed-dim", "16", "--hidden-dim", "16", "--dropout", "0", "--seed", "1", "-q")


def examples(n: int, seed: int) -> list[tuple[str, str]]:
    """(label, text) pairs: the label is told by one sentiment word among fillers."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.choice(["pos", "neg"])
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 8))]
        words.insert(rng.randrange(len(words) + 1), rng.choice(POS if label == "pos" else NEG))
        out.append((label, " ".join(words)))
    return out


def write_fasttext(path: Path, pairs) -> Path:
    path.write_text("".join(f"__label__{lbl} {text}\n" for lbl, text in pairs), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A small sentiment classifier trained once on fastText lines (a bundle directory)."""
    d = tmp_path_factory.mktemp("clf")
    train = write_fasttext(d / "train.txt", examples(400, 0))
    dev = write_fasttext(d / "dev.txt", examples(120, 1))
    r = invoke("train", "classify", str(train), "--valid", str(dev), "-o", str(d / "model"), "--epochs", "12",
               "--lr", "3e-3", "--registry", str(d / "registry"), *TINY)
    ok(r)
    return {"dir": d, "model": str(d / "model"), "train": train, "dev": dev}


def test_classify_prints_labels_as_trained_and_top_k_probabilities(trained):
    dev_lines = trained["dev"].read_text().splitlines()
    texts = "".join(line.split(" ", 1)[1] + "\n" for line in dev_lines)
    r = ok(invoke("classify", "-m", trained["model"], input=texts))
    labels = r.stdout.splitlines()
    assert len(labels) == len(dev_lines) and set(labels) <= {"__label__pos", "__label__neg"}
    gold = [line.split(" ", 1)[0] for line in dev_lines]
    assert np.mean([a == b for a, b in zip(labels, gold)]) > 0.9  # it learned the task
    assert ok(invoke("classify", "-m", trained["model"], "-k", "1", input=texts)).stdout == r.stdout
    best = [float(line.split()[1]) for line in
            ok(invoke("classify", "-m", trained["model"], "--prob", input=texts)).stdout.splitlines()]
    ranked = sorted(best)  # a threshold halfway between two printed probabilities (6 digits) near the median
    t = next((a + b) / 2 for a, b in zip(ranked[len(ranked) // 2:], ranked[len(ranked) // 2 + 1:]) if b - a > 1e-4)
    sure = ok(invoke("classify", "-m", trained["model"], "--threshold", repr(t), input=texts)).stdout.splitlines()
    # below the threshold: an empty line (one line per input line still), as fastText's predict -t
    assert sure == [label if b >= t else "" for label, b in zip(labels, best)]
    # a labelled fastText file classifies as is: its __label__ tokens are not read as text
    assert ok(invoke("classify", "-m", trained["model"], str(trained["dev"]))).stdout == r.stdout
    probs = ok(invoke("classify", "-m", trained["model"], "-k", "2", "--prob", input=texts)).stdout.splitlines()
    for line, best in zip(probs, labels):
        fields = line.split()
        assert fields[0] == best and {fields[0], fields[2]} == {"__label__pos", "__label__neg"}
        assert float(fields[1]) >= float(fields[3]) and float(fields[1]) + float(fields[3]) == pytest.approx(1, abs=1e-5)


def test_json_has_every_class_probability_summing_to_one(trained):
    r = ok(invoke("classify", "-m", trained["model"], "--json", input="a good film\nthe plot was awful\n\n"))
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 3  # a blank line is answered too: one output line per input line
    for row in rows:
        assert set(row["probs"]) == {"__label__neg", "__label__pos"}
        assert sum(row["probs"].values()) == pytest.approx(1.0, abs=1e-5)
        assert row["labels"] == [max(row["probs"], key=row["probs"].get)]


def test_batched_equals_one_by_one(trained):
    from rnntool.kinds.classifier.predict import open_classifier

    texts = [t for _, t in examples(50, 7)]
    clf = open_classifier(trained["model"])
    batched = list(clf.stream(texts, batch_size=64))
    single = list(clf.stream(texts, batch_size=1))
    assert [p.labels for p in batched] == [p.labels for p in single]
    assert np.allclose(np.stack([p.probs for p in batched]), np.stack([p.probs for p in single]), atol=1e-6)
    cli_batched = ok(invoke("classify", "-m", trained["model"], "--batch-size", "64", input="\n".join(texts) + "\n"))
    cli_single = ok(invoke("classify", "-m", trained["model"], "--batch-size", "1", input="\n".join(texts) + "\n"))
    assert cli_batched.stdout == cli_single.stdout


def test_evaluation_of_a_model_equals_scikit_learn_and_equals_scoring_its_predictions(trained, tmp_path):
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    r = ok(invoke("evaluate", "classification", "-m", trained["model"], str(trained["dev"]), "--json"))
    report = json.loads(r.stdout)
    pred = ok(invoke("classify", "-m", trained["model"], str(trained["dev"]))).stdout.splitlines()
    pred = [p.removeprefix("__label__") for p in pred]
    gold = [line.split(" ", 1)[0].removeprefix("__label__") for line in trained["dev"].read_text().splitlines()]
    assert report["accuracy"] == pytest.approx(accuracy_score(gold, pred), abs=1e-12)
    assert report["macro_f1"] == pytest.approx(f1_score(gold, pred, average="macro"), abs=1e-12)
    assert report["confusion_matrix"]["matrix"] == confusion_matrix(gold, pred, labels=["neg", "pos"]).tolist()
    assert report["interval"]["low"] <= report["accuracy"] <= report["interval"]["high"]
    assert report["signature"].startswith("model:")
    # the same numbers from `classify` output scored against the labelled file (sacrebleu-style --ref)
    (tmp_path / "pred.txt").write_text("".join(f"__label__{p}\n" for p in pred))
    again = json.loads(ok(invoke("evaluate", "classification", str(tmp_path / "pred.txt"), "--ref",
                                 str(trained["dev"]), "--json")).stdout)
    for key in ("accuracy", "macro_f1", "micro_f1", "per_class", "confusion_matrix", "interval"):
        assert again[key] == report[key]
    text = ok(invoke("evaluate", "classification", str(tmp_path / "pred.txt"), "--ref", str(trained["dev"]))).stdout
    assert "confusion matrix" in text and "macro" in text and text.rstrip().splitlines()[-1].startswith("predictions:")


def test_confusion_matrix_plot(trained, tmp_path):
    pytest.importorskip("matplotlib")
    ok(invoke("evaluate", "classification", "-m", trained["model"], str(trained["dev"]), "--plot",
              str(tmp_path / "cm.png"), "-q"))
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tsv_and_tab_data_train_a_model_that_prints_plain_labels(tmp_path):
    pairs = examples(200, 3)
    tsv = tmp_path / "train.tsv"
    tsv.write_text("id\tsentence\tpolarity\n" + "".join(f"{i}\t{t}\t{lbl}\n" for i, (lbl, t) in enumerate(pairs)))
    ok(invoke("train", "classify", str(tsv), "--text-column", "sentence", "--label-column", "polarity",
              "--name", "tsv-clf", "--max-steps", "5", *TINY))
    b = Registry.open().load("tsv-clf", kind="classifier")
    assert b.config["data"]["labels"] == ["neg", "pos"] and b.config["data"]["format"] == "tsv"
    out = ok(invoke("classify", "-m", "tsv-clf", input="a good film\n")).stdout
    assert out.strip() in ("neg", "pos")  # plain labels for plain-label data
    tab = tmp_path / "train.tab"
    tab.write_text("".join(f"{lbl}\t{t}\n" for lbl, t in pairs))
    r = ok(invoke("train", "classify", str(tab), "-o", str(tmp_path / "tab-model"), "--max-steps", "5",
                  "--class-weights", "balanced", "--json", *TINY))
    summary = json.loads(r.stdout)
    assert summary["data"]["labels"] == ["neg", "pos"]
    assert Registry.open().load(summary["path"]).config["data"]["class_weights"] == "balanced"


def test_multi_label_models_use_thresholded_sigmoids(tmp_path):
    lines = []
    for label, text in examples(300, 4):
        extra = " __label__long" if len(text.split()) > 6 else ""
        lines.append(f"__label__{label}{extra} {text}\n")
    (tmp_path / "train.txt").write_text("".join(lines))
    r = ok(invoke("train", "classify", str(tmp_path / "train.txt"), "-o", str(tmp_path / "m"), "--epochs", "3",
                  "--json", *TINY))
    assert json.loads(r.stdout)["data"]["multi_label"] is True
    rows = [json.loads(x) for x in ok(invoke("classify", "-m", str(tmp_path / "m"), "--json",
                                             input="a good film\nbad\n")).stdout.splitlines()]
    for row in rows:
        assert all(0 < p < 1 for p in row["probs"].values())
        assert row["labels"] == [k for k in ["__label__long", "__label__neg", "__label__pos"] if row["probs"][k] >= 0.5]
    every = ok(invoke("classify", "-m", str(tmp_path / "m"), "--threshold", "0", input="x\n")).stdout.split()
    assert every == ["__label__long", "__label__neg", "__label__pos"]


def test_classify_streams_each_line_at_once_and_head_exits_quietly(trained):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "rnntool", "classify", "-m", trained["model"], "--batch-size", "1",
                             "-q"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.stdin.write("a good film\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() in ("__label__pos", "__label__neg")  # before stdin ends
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    r = subprocess.run(["bash", "-c", f"yes 'a good film' | head -3000 | {rnntool_cmd()} classify -m "
                                      f"{trained['model']} -q | head -2"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.splitlines() == ["__label__pos"] * 2 and r.stderr == ""


@pytest.mark.parametrize("content,fragment", [
    ("__label__pos good film\nno label here\n__label__neg bad\n", "train.txt:2: no label"),
    ("__label__pos good film\n__label__neg   \n", "train.txt:2: empty text"),
    ("__label__pos good film\n__label__pos fine\n", "every example has label 'pos'"),
    (b"__label__pos good \xff film\n__label__neg bad\n", "train.txt:1"),
])
def test_bad_training_data_is_one_line_error_with_file_and_line(tmp_path, content, fragment):
    path = tmp_path / "train.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    fails(invoke("train", "classify", str(path), "-o", str(tmp_path / "m"), *TINY), 1, fragment)


def test_unknown_label_at_evaluation_and_usage_errors(trained, tmp_path):
    (tmp_path / "test.txt").write_text("__label__pos a good film\n__label__meh so so\n")
    fails(invoke("evaluate", "classification", "-m", trained["model"], str(tmp_path / "test.txt")), 1,
          "test.txt:2", "'meh'")
    fails(invoke("evaluate", "classification", str(tmp_path / "test.txt")), 2, "-m MODEL")
    fails(invoke("classify", "-m", trained["model"], "-k", "0", input="x\n"), 2, "-k")
    fails(invoke("classify", "-m", trained["model"], "-k", "3", input="x\n"), 2, "knows only 2 labels")
    (tmp_path / "pred.txt").write_text("pos\n")
    fails(invoke("evaluate", "classification", str(tmp_path / "pred.txt"), "--ref", str(trained["dev"])), 1,
          "1 predictions", "120 gold")
    fails(invoke("train", "classify", str(trained["train"]), "-o", str(tmp_path / "m"), "--select", "bleu"), 2)


def test_init_from_a_language_model_transfers_its_layers_and_unfreezes_them_gradually(trained, tmp_path):
    from safetensors.torch import load_file

    texts = tmp_path / "texts.txt"
    texts.write_text("".join(line.split(" ", 1)[1] + "\n" for line in trained["train"].read_text().splitlines()))
    ok(invoke("train", "lm", str(texts), "--name", "lm", "--vocab-size", "300", "--embed-dim", "16",
              "--hidden-dim", "16", "--layers", "1", "--max-steps", "20", "--batch-size", "8", "--bptt", "16", "-q"))
    # frozen for the first 1000 steps: after 6 the encoder is the language model's, the head has moved
    r = invoke("train", "classify", str(trained["train"]), "--init-from", "lm", "--name", "clf",
               "--max-steps", "6", "--unfreeze-every", "1000", "--pretrained-lr-scale", "0.5", "--dropout", "0", "-q")
    ok(r)
    clf, lm = Registry.open().load("clf", kind="classifier"), Registry.open().load("lm", kind="lm")
    assert clf.manifest["parents"]["init"] == "lm@1" and clf.config["model"]["bidirectional"] is False
    cw, lw = load_file(clf.file("model.safetensors")), load_file(lm.file("model.safetensors"))
    assert (cw["encoder.embedding.weight"] == lw["embedding.weight"]).all()
    assert (cw["encoder.rnn.weight_hh_l0"] == lw["rnn.weight_hh_l0"]).all()
    # unfrozen from the start: the encoder moves too
    ok(invoke("train", "classify", str(trained["train"]), "--init-from", "lm@1", "-o", str(tmp_path / "moving"),
              "--max-steps", "6", "-q"))
    moved = load_file(tmp_path / "moving" / "model.safetensors")
    assert not (moved["encoder.rnn.weight_hh_l0"] == lw["rnn.weight_hh_l0"]).all()
    # what does not fit is a clear error
    fails(invoke("train", "classify", str(trained["train"]), "--init-from", "lm", "-o", str(tmp_path / "x"),
                 "--cell", "gru"), 2, "drop --cell gru")
    fails(invoke("train", "classify", str(trained["train"]), "--init-from", "lm", "-o", str(tmp_path / "x"),
                 "--bidirectional"), 2, "unidirectional")
    ok(invoke("tokenize", "train", str(texts), "--name", "other-spm", "--vocab-size", "290", "-q"))
    fails(invoke("train", "classify", str(trained["train"]), "--init-from", "lm", "-o", str(tmp_path / "x"),
                 "-t", "other-spm"), 1, "tokenizer mismatch")


def test_promote_needs_a_significant_gain(trained):
    args = ("train", "classify", str(trained["train"]), "--valid", str(trained["dev"]), "--name", "sent",
            "--promote", "prod", *TINY)
    ok(invoke(*args, "--max-steps", "2"))  # barely trained: the first @prod
    ok(invoke(*args, "--epochs", "12", "--lr", "3e-3"))  # far better: promoted
    reg = Registry.open()
    assert reg.aliases("sent")["prod"] == 2
    ok(invoke(*args, "--epochs", "12", "--lr", "3e-3", "--seed", "2"))  # as good, not significantly better
    third = reg.load("sent@3", kind="classifier").manifest["extra"]["promotion"]
    assert third["promoted"] is False and reg.aliases("sent")["prod"] == 2, third


def test_insignificant_gain_is_refused_by_the_paired_test():
    from rnntool.kinds.classifier.metrics import paired_test
    from rnntool.training.retrain import decide

    gold = [("a",), ("b",)] * 100
    old = [g if i % 10 else (("b",) if g == ("a",) else ("a",)) for i, g in enumerate(gold)]  # 90% right
    new = list(old)
    new[0] = gold[0]  # one more right: 90.5%
    test = paired_test(gold, old, new, ["a", "b"])
    assert test["score_b"] > test["score_a"] and test["p_value"] >= 0.05
    decision = decide("prod", "val_accuracy", higher_is_better=True, new_score=test["score_b"],
                      old_score=test["score_a"], old_ref="m@1", p_value=test["p_value"])
    assert not decision.promoted and "not significant" in decision.reason


def test_pipeline_train_from_stdin_then_classify_then_evaluate(tmp_path, trained):
    cmd = rnntool_cmd()
    script = (f"cat {trained['train']} | {cmd} train classify - --name piped --max-steps 30 --lr 3e-3 {' '.join(TINY)}"
              f" && cut -d' ' -f2- {trained['dev']} | {cmd} classify -m piped@1 -q"
              f" | {cmd} evaluate classification --ref {trained['dev']} --json -q")
    import subprocess

    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    published, report = p.stdout.splitlines()
    assert published.startswith("published piped@1: val accuracy") and json.loads(report)["examples"] == 120


def test_prediction_lines_in_every_classify_layout():
    from rnntool.kinds.classifier.scoring import parse_label_line

    assert parse_label_line("__label__pos", "p:1") == ("pos",)
    assert parse_label_line("1 0.930000", "p:1") == ("1",)  # --prob of a plain-label model
    assert parse_label_line("__label__a 0.600000 __label__b 0.400000", "p:1") == ("a", "b")
    assert parse_label_line("0 1", "p:1") == ("0", "1")  # two plain labels, no probabilities
    assert parse_label_line("", "p:1") == ()
    assert parse_label_line('{"labels": ["__label__x"], "probs": {}}', "p:1") == ("x",)
    with pytest.raises(Exception, match="p:1"):
        parse_label_line('{"label": 1}', "p:1")


def test_a_class_is_never_held_out_whole(tmp_path):
    pairs = examples(60, 9) + [("rare", "only one of these")]
    path = tmp_path / "train.txt"
    for seed in range(3):  # whatever the order, the rare class keeps its one example in training
        random.Random(seed).shuffle(pairs)
        write_fasttext(path, pairs)
        r = ok(invoke("train", "classify", str(path), "-o", str(tmp_path / f"m{seed}"), "--max-steps", "2",
                      "--valid-fraction", "0.5", "--json", *TINY))
        assert json.loads(r.stdout)["data"]["labels"] == ["neg", "pos", "rare"]


def test_unfreezing_moves_each_pretrained_layer_only_from_its_step(trained, tmp_path):
    from safetensors.torch import load_file

    texts = tmp_path / "texts.txt"
    texts.write_text("".join(line.split(" ", 1)[1] + "\n" for line in trained["train"].read_text().splitlines()))
    ok(invoke("train", "lm", str(texts), "-o", str(tmp_path / "lm"), "--vocab-size", "300", "--embed-dim", "16",
              "--hidden-dim", "16", "--layers", "1", "--max-steps", "5", "--batch-size", "8", "--bptt", "16", "-q"))
    # one LSTM layer: it unfreezes at step 3, the embeddings at step 6 (after the last of 6 updates)
    ok(invoke("train", "classify", str(trained["train"]), "--init-from", str(tmp_path / "lm"), "-o",
              str(tmp_path / "clf"), "--max-steps", "6", "--unfreeze-every", "3", "--dropout", "0", "-q"))
    lm, clf = load_file(tmp_path / "lm" / "model.safetensors"), load_file(tmp_path / "clf" / "model.safetensors")
    assert torch_equal(clf["encoder.embedding.weight"], lm["embedding.weight"])
    assert not torch_equal(clf["encoder.rnn.weight_hh_l0"], lm["rnn.weight_hh_l0"])


def test_multi_label_data_cannot_warm_start_a_single_label_classifier(trained, tmp_path):
    (tmp_path / "multi.txt").write_text("".join(f"__label__pos __label__neg {t}\n" for _, t in examples(50, 2)))
    fails(invoke("train", "classify", str(tmp_path / "multi.txt"), "--init-from", trained["model"], "-o",
                 str(tmp_path / "m"), "--max-steps", "2", "-q"), 1, "single-label")


def torch_equal(a, b) -> bool:
    return bool((a == b).all())
