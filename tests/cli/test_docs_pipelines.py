"""Every ```bash block in docs/pipelines.md runs, as written, under `bash -euo pipefail`.

A session fixture trains the models the doc names (tiny LMs `lm` and `other`, a tiny translation
model `en-de` with versions 1 (alias `prod`) and 2) and writes its files (corpus.txt, test.en,
test.de). Each block then runs in its own copy of that directory and registry, with `rnntool` on
PATH. Adding a block to the doc adds a test; CHECKS adds what a block's output must look like, on
top of the checks every block gets (exit 0, no error or traceback, some output).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import REPO, invoke

DOC = REPO / "docs" / "pipelines.md"
BLOCKS = re.findall(r"^```bash\n(.*?)^```[ \t]*$", DOC.read_text(encoding="utf-8"), flags=re.S | re.M)
CORPUS_LINES = 300
TEST_LINES = 12
LM_OPTIONS = ["-q", "--embed-dim", "16", "--hidden-dim", "16", "--layers", "1", "--dropout", "0",
              "--vocab-size", "300", "--max-steps", "20", "--eval-every", "10", "--batch-size", "4", "--bptt", "8"]
MT_OPTIONS = ["-q", "--layers", "1", "--embed-dim", "8", "--hidden-dim", "16", "--dropout", "0",
              "--batch-tokens", "200", "--lr", "0.01", "--vocab-size", "290", "--max-steps", "6", "--eval-every", "3"]
WORDS = ["cat", "dog", "sees", "likes", "the", "a", "red", "house", "river", "small", "bird", "green", "tree"]


def _sentences(rng: random.Random, n: int) -> list[str]:
    subjects = ["the cat", "a dog", "my friend", "the old man", "she"]
    verbs = ["sees", "likes", "finds", "follows"]
    objects = ["the ball", "a red house", "the river", "a small bird", "the green tree"]
    return [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}." for _ in range(n)]


def _pairs(rng: random.Random, n: int) -> tuple[list[str], list[str]]:
    src = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6))) for _ in range(n)]
    return src, [" ".join(s.split()[::-1]).upper() for s in src]


def _ok(r) -> None:
    assert r.exit_code == 0, r.output


@pytest.fixture(scope="session")
def pipeline_home(tmp_path_factory) -> Path:
    """A directory holding the doc's files and a registry (registry/) with its models."""
    home = tmp_path_factory.mktemp("pipelines")
    reg = home / "registry"
    rng = random.Random(0)
    (home / "corpus.txt").write_text("".join(s + "\n" for s in _sentences(rng, CORPUS_LINES)), encoding="utf-8")
    test_src, test_ref = _pairs(rng, TEST_LINES)
    (home / "test.en").write_text("".join(s + "\n" for s in test_src), encoding="utf-8")
    (home / "test.de").write_text("".join(s + "\n" for s in test_ref), encoding="utf-8")

    train_dir = tmp_path_factory.mktemp("pipelines-train")  # not part of the doc's directory
    src, tgt = _pairs(rng, 80)
    (train_dir / "train.en").write_text("".join(s + "\n" for s in src), encoding="utf-8")
    (train_dir / "train.de").write_text("".join(s + "\n" for s in tgt), encoding="utf-8")

    common = ["--registry", reg]
    _ok(invoke("train", "lm", home / "corpus.txt", "--name", "lm", *common, *LM_OPTIONS))
    _ok(invoke("train", "lm", home / "corpus.txt", "--name", "other", "--seed", "7", *common, *LM_OPTIONS))
    _ok(invoke("train", "translate", "--src", train_dir / "train.en", "--tgt", train_dir / "train.de",
               "--name", "en-de", *common, *MT_OPTIONS))
    _ok(invoke("models", "alias", "en-de@1", "prod", *common, "-q"))
    # A second version (a copy: "newest" vs "prod" only needs two versions, not a second training run).
    _ok(invoke("models", "import", reg / "models" / "en-de" / "1", "--name", "en-de", *common, "-q"))
    shutil.rmtree(reg / "cache", ignore_errors=True)  # token caches: not needed, keep the copies small
    return home


@pytest.fixture
def work(pipeline_home, tmp_path) -> Path:
    """A fresh copy of the doc's directory (blocks may write files or change the registry)."""
    dest = tmp_path / "work"
    shutil.copytree(pipeline_home, dest)
    return dest


def run_block(block: str, work: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "rnntool"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m rnntool "$@"\n')
    wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "RNNTOOL_HOME": str(work / "registry"), "NO_COLOR": "1", "PYTHONPATH": str(REPO),
           "LC_ALL": "C"}  # sort -n and awk read "1.5" the same in every locale
    env.pop("RNNTOOL_DEBUG", None)
    return subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=work, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=180)


def _lines(text: str) -> list[str]:
    """Lines split on \\n only (sampled text may hold other control characters)."""
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


def _numbers(line: str, n: int) -> list[float]:
    fields = line.split("\t")
    return [float(f) for f in fields[:n]]


# -- what each block's output must look like (keyed by a fragment that names the block) -----------
def check_bleu_json(out: str, work: Path) -> None:
    doc = json.loads(out)
    assert 0 <= doc["bleu"]["score"] <= 100 and doc["bleu"]["signature"].startswith("nrefs:1|")
    assert doc["sentences"] == TEST_LINES


def check_paired_bootstrap(out: str, work: Path) -> None:
    assert "BLEU" in out and "p = " in out and "significant at" in out
    for f in ("prod.de", "latest.de"):
        assert len(_lines((work / f).read_text())) == TEST_LINES


def check_generate_scores(out: str, work: Path) -> None:
    rows = [_numbers(line, 3) for line in _lines(out)]
    assert len(rows) == 5 and all(len(r) == 3 and r[0] < 0 and r[1] >= 1 and r[2] > 1 for r in rows)
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)


def check_scores_with_text(out: str, work: Path) -> None:
    samples = _lines((work / "samples.txt").read_text())
    assert len(samples) == 20
    lines = _lines(out)
    assert len(lines) == 3
    scores = [float(line.split("\t")[0]) for line in lines]
    assert scores == sorted(scores)
    assert all(line.split("\t", 3)[3] in samples for line in lines)  # the text beside its score


def check_filtered_corpus(out: str, work: Path) -> None:
    corpus = set(_lines((work / "corpus.txt").read_text()))
    clean = _lines((work / "corpus.clean.txt").read_text())
    assert int(out.strip()) == len(clean) and 0 < len(clean) <= CORPUS_LINES
    assert all(line in corpus for line in clean)  # whole sentences, no score columns left


def check_model_ranking(out: str, work: Path) -> None:
    rows = [line.split("\t") for line in _lines(out)]
    assert sorted(r[0] for r in rows) == ["lm", "other"]
    bpc = [float(r[1]) for r in rows]
    assert bpc == sorted(bpc) and all(b > 0 for b in bpc)


def check_token_counts(out: str, work: Path) -> None:
    total, per_line = _lines(out)
    assert int(total.strip()) > sum(len(s.split()) for s in _lines((work / "corpus.txt").read_text())) / 2
    assert re.fullmatch(r"\d+\.\d tokens/line", per_line)


def check_nbest_json(out: str, work: Path) -> None:
    records = [json.loads(line) for line in _lines(out)]
    assert len(records) == 3 * TEST_LINES
    assert sorted({r["line"] for r in records}) == list(range(TEST_LINES))
    assert all(isinstance(r["text"], str) and isinstance(r["score"], float) for r in records)


def check_best_per_line(out: str, work: Path) -> None:
    rows = [line.split("\t") for line in _lines(out)]
    assert [int(r[0]) for r in rows] == list(range(TEST_LINES))
    assert all(float(r[1]) <= 0 for r in rows)


def check_bundle_files(out: str, work: Path) -> None:
    lines = _lines(out)
    assert {"manifest.json", "model.safetensors", "metrics.jsonl"} <= set(lines)
    assert json.loads(lines[-1])["type"] == "eval"


def check_export(out: str, work: Path) -> None:
    assert "ok" in out and "en-de@1" in out
    with tarfile.open(work / "en-de-prod.tar.gz") as tar:
        assert any(name.endswith("manifest.json") for name in tar.getnames())


def check_head(out: str, work: Path) -> None:
    assert len(_lines(out)) == 5  # 2 translations, 3 samples (in seconds: the generator stopped)


CHECKS = {
    "evaluate bleu --ref test.de --json": check_bleu_json,
    "--paired-bootstrap prod.de": check_paired_bootstrap,
    "generate -m lm -n 100 --max-tokens 30 |": check_generate_scores,
    "paste - samples.txt": check_scores_with_text,
    "corpus.clean.txt": check_filtered_corpus,
    "for model in lm other": check_model_ranking,
    "tokenize encode -m lm corpus.txt | wc -w": check_token_counts,
    "printf \"{\\\"line\\\"": check_nbest_json,
    "!seen[$1]++": check_best_per_line,
    "models path en-de@prod)": check_bundle_files,
    "models export en-de@prod": check_export,
    "| head -n 2": check_head,
}


def _block_id(i: int, block: str) -> str:
    first = next((line for line in block.splitlines() if line.strip() and not line.startswith("#")), "")
    return f"{i}:{re.sub(r'[^A-Za-z0-9@._-]+', '-', first)[:50]}"


def test_doc_has_pipelines_and_every_check_matches_a_block():
    assert len(BLOCKS) >= 8
    for fragment in CHECKS:
        matching = [b for b in BLOCKS if fragment in b]
        assert len(matching) == 1, f"CHECKS key {fragment!r} matches {len(matching)} blocks of {DOC.name}"


@pytest.mark.parametrize("block", BLOCKS, ids=[_block_id(i, b) for i, b in enumerate(BLOCKS, 1)])
def test_pipeline_block_runs_as_written(block, work, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in work.iterdir() if p.is_file()}
    r = run_block(block, work, tmp_path)
    assert r.returncode == 0, f"exit {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
    assert "Traceback" not in r.stderr and "rnntool: error" not in r.stderr, r.stderr
    assert "Broken pipe" not in r.stderr and "BrokenPipeError" not in r.stderr, r.stderr
    new_files = [p for p in work.iterdir() if p.is_file() and before.get(p) != p.stat().st_mtime_ns]
    assert r.stdout.strip() or any(p.stat().st_size for p in new_files), "the block produced nothing"
    for fragment, check in CHECKS.items():
        if fragment in block:
            check(r.stdout, work)
