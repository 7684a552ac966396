"""`rnntool models show NAME` history (key metrics, data, parents, aliases, promotion) and `--plot`."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from importlib.util import find_spec

import pytest

from conftest import invoke
from rnntool.registry.store import Registry
from rnntool.textio import fingerprint_file

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Drawing needs the `plot` extra (part of the `test` extra, so CI always draws).
needs_matplotlib = pytest.mark.skipif(find_spec("matplotlib") is None, reason="pip install 'rnntool[plot]'")


def ok(r):
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
    return r


def error_line(r, code):
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnntool: error: "), r.stderr
    return lines[0]


def png_size(path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    raw = path.read_bytes()
    assert raw[:8] == PNG_SIGNATURE and raw[12:16] == b"IHDR"
    assert raw.endswith(b"IEND\xaeB`\x82")  # complete, not truncated
    return struct.unpack(">II", raw[16:24])


def training_log(steps=(10, 20, 30), kind="lm") -> str:
    lines = [{"type": "train", "step": s - 5, "loss": 6.0 - s / 20} for s in steps]
    for i, s in enumerate(steps):
        rec = {"type": "eval", "step": s, "train_loss": 5.9 - i / 5, "val_loss": 5.5 - i / 10}
        rec.update({"val_ppl": 240.0 - 20 * i, "val_bpc": 5.6 - i / 10} if kind == "lm" else {"val_bleu": 3.0 + i})
        lines.append(rec)
    lines.sort(key=lambda r: r["step"])
    return "".join(json.dumps(r) + "\n" for r in lines)


def publish(name, kind, metrics_list, *, data=None, parents=None, extras=None, log=True):
    """Publish one version per metrics dict (stand-in weights, a real-looking metrics.jsonl)."""
    reg = Registry.open()
    out = []
    for i, metrics in enumerate(metrics_list):
        with reg.staging() as tmp:
            stand_in = "tokenizer.model" if kind == "tokenizer" else "model.safetensors"  # what the kind holds
            (tmp / stand_in).write_bytes(b"weights" * (i + 1))
            if log:
                (tmp / "metrics.jsonl").write_text(training_log(kind=kind))
            out.append(reg.publish(tmp, name=name, kind=kind, metrics=metrics, data=data,
                                   parents=(parents or [None] * len(metrics_list))[i],
                                   extra=(extras or [None] * len(metrics_list))[i]))
    return out


LM_METRICS = [
    {"val_loss": 5.3, "val_ppl": 200.0, "val_bpc": 5.29, "val_nats_per_char": 3.6, "steps": 30, "best_step": 30},
    {"val_loss": 4.9, "val_ppl": 134.3, "val_bpc": 4.81, "val_nats_per_char": 3.3, "steps": 60, "best_step": 30},
    {"val_loss": 5.0, "val_ppl": 148.4, "val_bpc": 4.95, "val_nats_per_char": 3.4, "steps": 60, "best_step": 20},
]
PROMOTED = {"promotion": {"alias": "prod", "promoted": True, "reason": "gain +0.48", "metric": "val_bpc"}}
REJECTED = {"promotion": {"alias": "prod", "promoted": False, "reason": "needs val_bpc lower by at least 0",
                          "metric": "val_bpc"}}


@pytest.fixture
def lm_history(corpus):
    """lm@1..3: v2 warm-started from v1 and promoted to @prod, v3 not promoted; @best on v2 too."""
    bundles = publish("lm", "lm", LM_METRICS, data=[fingerprint_file(corpus)],
                      parents=[{"tokenizer": "spm@1"}, {"tokenizer": "spm@1", "init": "lm@1"},
                               {"tokenizer": "spm@1", "init": "lm@2"}],
                      extras=[None, PROMOTED, REJECTED])
    ok(invoke("models", "alias", "lm@2", "prod"))
    ok(invoke("models", "alias", "lm@2", "best"))
    return bundles


# -- the history view -----------------------------------------------------------------------------
def test_lm_history_shows_key_metrics_data_parents_aliases_promotion(lm_history):
    r = ok(invoke("models", "show", "lm"))
    header, *rows = r.stdout.splitlines()
    assert header.split() == ["VERSION", "KIND", "CREATED", "ALIASES", "DATA", "PARENTS", "PROMOTED", "METRICS"]
    assert [row.split()[0] for row in rows] == ["1", "2", "3"]
    assert "val_ppl=200 val_bpc=5.29" in rows[0] and "val_ppl=134.3 val_bpc=4.81" in rows[1]
    assert "val_nats_per_char" not in r.stdout and "steps=" not in r.stdout  # key metrics only
    assert all("600 lines" in row and "tokenizer=spm@1" in row for row in rows)
    assert "init=lm@1" in rows[1] and "init=lm@2" in rows[2] and "init=" not in rows[0]
    assert "best,prod" in rows[1] and " yes @prod " in rows[1] and " no @prod " in rows[2]
    assert rows[0][header.index("PROMOTED"):].split()[0] == "-"  # v1: no promotion recorded

    doc = json.loads(ok(invoke("models", "show", "lm", "--json")).stdout)
    versions = doc["versions"]
    assert doc["aliases"] == {"best": 2, "prod": 2}
    assert versions[0]["promotion"] is None
    assert versions[1]["promotion"]["promoted"] is True and versions[2]["promotion"]["promoted"] is False
    assert versions[1]["metrics"] == LM_METRICS[1]  # JSON keeps every metric
    assert versions[1]["parents"]["init"] == "lm@1" and versions[1]["data"]["lines"] == 600

    one = ok(invoke("models", "show", "lm@3")).stdout
    assert "promoted: no @prod (needs val_bpc lower by at least 0)" in one


def test_translation_history_shows_bleu_and_loss_without_promotion_column(tmp_path):
    src, tgt = tmp_path / "a.en", tmp_path / "a.de"
    src.write_text("a b\nc d\n")
    tgt.write_text("B A\nD C\nE F\n")
    publish("en-de", "translation",
            [{"val_loss": 4.1, "val_ppl": 60.3, "val_bleu": 12.5, "steps": 10}],
            data=[fingerprint_file(src), fingerprint_file(tgt)],
            parents=[{"src_tokenizer": "en-de-src-tokenizer@1", "tgt_tokenizer": "en-de-tgt-tokenizer@1"}])
    r = ok(invoke("models", "show", "en-de"))
    header, row = r.stdout.splitlines()
    assert "PROMOTED" not in header  # no version was trained with --promote
    assert row.endswith("val_bleu=12.5 val_loss=4.1")
    assert "20 B/5 lines" in row  # both sides of the data
    assert "src_tokenizer=en-de-src-tokenizer@1" in row


def test_history_of_metrics_without_key_names_shows_them_all():
    publish("old", "lm", [{"ppl": 10.0, "custom": 3}], log=False)
    assert ok(invoke("models", "show", "old")).stdout.splitlines()[1].endswith("ppl=10 custom=3")


# -- --plot ---------------------------------------------------------------------------------------
@needs_matplotlib
def test_history_plot_is_a_png_with_versions_and_aliases(lm_history, tmp_path):
    out = tmp_path / "plots" / "history.png"
    r = ok(invoke("models", "show", "lm", "--plot", out))
    assert r.stdout.splitlines()[0].startswith("VERSION")  # the table still goes to stdout
    assert f"wrote {out}" in r.stderr
    width, height = png_size(out)
    assert 500 <= width <= 2000 and 300 <= height <= 2000
    assert sorted(p.name for p in out.parent.iterdir()) == ["history.png"]  # no temp file left behind

    svg = tmp_path / "history.svg"
    ok(invoke("models", "show", "lm", "--plot", svg, "-q"))
    text = svg.read_text()
    assert text.startswith("<?xml") and "</svg>" in text
    for label in ("@best, @prod", "val_ppl", "val_bpc", "version", "promoted", "lm: 3 version(s)"):
        assert label in text, label


@needs_matplotlib
def test_training_curve_of_one_version(lm_history, tmp_path):
    out = tmp_path / "curve.png"
    r = ok(invoke("models", "show", "lm@prod", "--plot", out, "--json"))
    assert json.loads(r.stdout)["ref"] == "lm@2"
    width, height = png_size(out)
    assert 500 <= width <= 2000 and 300 <= height <= 2000
    svg = tmp_path / "curve.svg"
    ok(invoke("models", "show", "lm@2", "--plot", svg))
    text = svg.read_text()
    for label in ("lm@2 (@best, @prod): training curve", "train loss", "validation loss",
                  "best weights (step 30)", "val_bpc", "step"):
        assert label in text, label


@needs_matplotlib
def test_training_curve_of_a_really_trained_model(corpus, tmp_path):
    """The plot reads the metrics.jsonl that `rnntool train lm` writes (not just our stand-in)."""
    ok(invoke("train", "lm", corpus, "--name", "real", "-q", "--embed-dim", "16", "--hidden-dim", "16",
              "--layers", "1", "--vocab-size", "300", "--max-steps", "6", "--eval-every", "3",
              "--batch-size", "4", "--bptt", "8"))
    svg = tmp_path / "real.svg"
    ok(invoke("models", "show", "real@1", "--plot", svg, "-q"))
    assert "validation loss" in svg.read_text() and "val_bpc" in svg.read_text()
    png = tmp_path / "real.png"
    ok(invoke("models", "show", "real", "--plot", png, "-q"))
    assert png_size(png)[0] >= 500


def test_plot_errors_are_one_line(lm_history, tmp_path):
    line = error_line(invoke("models", "show", "lm", "--plot", tmp_path / "h.jpg"), 2)
    assert "--plot needs a file name ending in .png, .svg or .pdf" in line
    publish("spm", "tokenizer", [{}], log=False)
    line = error_line(invoke("models", "show", "spm", "--plot", tmp_path / "t.png"), 1)
    assert "spm has no validation metrics to plot" in line
    line = error_line(invoke("models", "show", "spm@1", "--plot", tmp_path / "t.png"), 1)
    assert "spm@1 (tokenizer) has no training log (metrics.jsonl)" in line
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob(".*.tmp"))


def test_missing_matplotlib_is_a_one_line_error(lm_history, tmp_path, monkeypatch):
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, mod, None)
    for mod in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, mod, None)  # `import` of a None entry raises ImportError
    for ref in ("lm", "lm@2"):
        out = tmp_path / "x.png"
        r = invoke("models", "show", ref, "--plot", out)
        assert error_line(r, 1) == "rnntool: error: matplotlib is not installed; pip install 'rnntool[plot]'"
        assert r.stdout == "" and not out.exists()
    ok(invoke("models", "show", "lm"))  # without --plot nothing needs matplotlib


def test_cli_import_does_not_load_matplotlib():
    code = "import sys, rnntool.cli; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
