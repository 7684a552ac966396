"""`rnntool evaluate bleu`'s sacreBLEU options against sacreBLEU's own command line on the same files:
--tokenize, --lowercase, chrF++, --confidence, --sentence and TER (the peer's numbers, to 4 decimals, and
its signatures)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import invoke

from rnntool.kinds.translation.bleu import TOKENIZERS

HYPS = ["The cat sat on the mat.", "A dog, barking loudly!", "Über den Fluss – schnell.", "中文测试句子。",
        "It's 3.5 km (roughly) away...", "NO ONE knows; perhaps tomorrow?", "e-mail me at x@y.org", "Hello , world"]
REFS = ["The cat is on the mat.", "A dog barks loudly!", "Über dem Fluss, schnell.", "中文的测试句子。",
        "It is 3.5 km away.", "No one knows, perhaps tomorrow.", "email me at x@y.org", "Hello, world!"]


@pytest.fixture
def files(tmp_path):
    hyp, ref = tmp_path / "hyp.txt", tmp_path / "ref.txt"
    hyp.write_text("".join(h + "\n" for h in HYPS), encoding="utf-8")
    ref.write_text("".join(r + "\n" for r in REFS), encoding="utf-8")
    return hyp, ref


def sacrebleu(ref, hyp, *args) -> list[dict]:
    r = subprocess.run([sys.executable, "-m", "sacrebleu", str(ref), "-i", str(hyp), "-w", "4", "-f", "json", *args],
                       capture_output=True, text=True, encoding="utf-8")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    return out if isinstance(out, list) else [out]


def ours(hyp, ref, *args) -> dict:
    r = invoke("evaluate", "bleu", hyp, "--ref", ref, "--json", *args)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("tokenize", TOKENIZERS)
@pytest.mark.parametrize("lowercase", [False, True])
def test_bleu_tokenizers_and_lowercase_equal_sacrebleus(files, tokenize, lowercase):
    hyp, ref = files
    mine = ours(hyp, ref, "--tokenize", tokenize, *(["--lowercase"] if lowercase else []))["bleu"]
    (theirs,) = sacrebleu(ref, hyp, "-m", "bleu", "-tok", tokenize, *(["-lc"] if lowercase else []))
    assert round(mine["score"], 4) == theirs["score"]
    assert mine["signature"] == theirs["signature"]


@pytest.mark.parametrize("lowercase", [False, True])
def test_chrf_plus_plus_and_ter_equal_sacrebleus(files, lowercase):
    hyp, ref = files
    mine = ours(hyp, ref, "--metrics", "chrf,chrf++,ter", *(["--lowercase"] if lowercase else []))
    lc = ["--chrf-lowercase"] if lowercase else []
    (chrf,) = sacrebleu(ref, hyp, "-m", "chrf", *lc)
    (chrfpp,) = sacrebleu(ref, hyp, "-m", "chrf", "-cw", "2", *lc)
    (ter,) = sacrebleu(ref, hyp, "-m", "ter", *([] if lowercase else ["--ter-case-sensitive"]))
    for name, theirs in (("chrf", chrf), ("chrf++", chrfpp), ("ter", ter)):
        assert round(mine[name]["score"], 4) == theirs["score"], name
        assert mine[name]["signature"] == theirs["signature"], name
    assert mine["chrf++"]["name"] == "chrF2++" and mine["chrf++"]["score"] != mine["chrf"]["score"]


def test_confidence_intervals_equal_sacrebleus(files):
    hyp, ref = files
    mine = ours(hyp, ref, "--metrics", "bleu,chrf", "--confidence", "--samples", "200", "--seed", "7")
    # sacreBLEU's command line seeds its bootstrap from $SACREBLEU_SEED (default 12345): run it with ours
    env = {**os.environ, "SACREBLEU_SEED": "7"}
    r = subprocess.run([sys.executable, "-m", "sacrebleu", str(ref), "-i", str(hyp), "-w", "4", "-f", "json", "-m",
                        "bleu", "chrf", "--confidence", "-cin", "200"], capture_output=True, text=True, env=env)
    theirs = {d["name"]: d for d in json.loads(r.stdout)}
    for name, key in (("BLEU", "bleu"), ("chrF2", "chrf")):
        assert round(mine[key]["mean"], 4) == theirs[name]["confidence_mean"]
        assert round(mine[key]["ci"], 4) == theirs[name]["confidence_var"]  # sacreBLEU's name for the ± part
        assert mine[key]["signature"] == theirs[name]["signature"]
    text = invoke("evaluate", "bleu", hyp, "--ref", ref, "--confidence", "--samples", "200").stdout
    assert re.search(r"BLEU\|nrefs:1\|bs:200\|seed:12345\|.* = [\d.]+ \(μ = [\d.]+ ± [\d.]+\)", text), text


def test_sentence_scores_equal_sacrebleus_sentence_level(files):
    hyp, ref = files
    r = invoke("evaluate", "bleu", hyp, "--ref", ref, "--sentence", "--metrics", "bleu,chrf")
    assert r.exit_code == 0, r.stderr
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert len(rows) == len(HYPS) and "BLEU|nrefs:1" in r.stderr  # the corpus scores go to stderr
    for col, metric in enumerate(("bleu", "chrf")):
        out = subprocess.run([sys.executable, "-m", "sacrebleu", str(ref), "-i", str(hyp), "-w", "2", "-sl", "-m",
                              metric], capture_output=True, text=True, encoding="utf-8").stdout
        theirs = [float(line.split(" = ")[1].split()[0]) for line in out.splitlines()]
        assert [float(row[col]) for row in rows] == theirs, metric


def test_score_only_prints_the_numbers(files):
    hyp, ref = files
    r = invoke("evaluate", "bleu", hyp, "--ref", ref, "--metrics", "bleu,chrf++", "--score-only")
    scores = ours(hyp, ref, "--metrics", "bleu,chrf++")
    assert r.stdout.splitlines() == [f"{scores['bleu']['score']:.2f}", f"{scores['chrf++']['score']:.2f}"]
    bad = invoke("evaluate", "bleu", hyp, "--ref", ref, "--tokenize", "spm")
    assert bad.exit_code == 2 and "--tokenize" in bad.stderr
