"""Shared fixtures. Every test gets its own registry (RNNTOOL_HOME) and no colour."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

# Two cores are shared by everything: keep each test process on one thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def registry(tmp_path, monkeypatch) -> Path:
    """An empty registry per test, found through $RNNTOOL_HOME like a user's would be."""
    root = tmp_path / "registry"
    monkeypatch.setenv("RNNTOOL_HOME", str(root))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("RNNTOOL_DEBUG", raising=False)
    return root


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def ok(r: CliResult) -> CliResult:
    """Assert a CLI run succeeded without a traceback."""
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
    return r


def fails(r: CliResult, code: int, *fragments: str) -> CliResult:
    """Assert a CLI run exited ``code`` with a one-line ``rnntool: error:`` holding every fragment."""
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    lines = r.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("rnntool: error: "), r.stderr
    for f in fragments:
        assert f in lines[-1], lines[-1]
    return r


def invoke(*args: str, input: str | bytes | None = None, env: dict | None = None) -> CliResult:
    """Run `rnntool ARGS` in-process through main() (the real error boundary), like CliRunner."""
    from rnntool.cli import main

    runner = CliRunner()
    code = 0
    with runner.isolation(input=input, env=env) as (out, err, _):
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr = out.getvalue(), err.getvalue()
    return CliResult(code, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"))


def run_cli(*args: str, input: str | bytes | None = None, env: dict | None = None,
            timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """Run `python -m rnntool ARGS` as a real subprocess (text mode unless input is bytes)."""
    full_env = {**os.environ, **(env or {})}
    text = not isinstance(input, bytes)
    return subprocess.run(
        [sys.executable, "-m", "rnntool", *map(str, args)],
        input=input, capture_output=True, text=text, env=full_env, timeout=timeout, **kw,
    )


def spawn(code: str, *args: str) -> subprocess.Popen:
    """A Python child running ``code`` (dedented) with ``args``; read its stdout to sync with it."""
    import textwrap

    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def kill(proc: subprocess.Popen) -> None:
    import signal

    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def kill_once_checkpointed(args, run_dir: Path, *, marker: str = "checkpoint") -> None:
    """Start `rnntool ARGS` (ARGS naming ``run_dir`` as its run directory), SIGKILL it as soon as
    ``run_dir/marker`` exists (its first checkpoint's pointer by default), and check it was killed
    mid-run rather than finished."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "rnntool", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not (run_dir / marker).exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()  # killed mid-run, not finished


def rnntool_cmd() -> str:
    """A shell word that runs rnntool with this interpreter (for `bash -c` pipelines)."""
    return f"{sys.executable} -m rnntool"


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A small deterministic English-like corpus (about 600 lines)."""
    import random

    rng = random.Random(0)
    subjects = ["the cat", "a dog", "my friend", "the old man", "a child", "the teacher", "she", "he"]
    verbs = ["sees", "likes", "finds", "follows", "paints", "watches", "calls", "helps"]
    objects = ["the ball", "a red house", "the river", "a small bird", "the green tree", "her brother",
               "the city", "a blue car"]
    tails = ["today", "in the morning", "at night", "again", "near the school", "with joy", "", ""]
    lines = []
    for _ in range(600):
        line = f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} {rng.choice(tails)}".strip()
        lines.append(line[0].upper() + line[1:] + ".")
    p = tmp_path / "corpus.txt"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when the benchmark data is not there."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"benchmark data not available: {p}")
    return p


# -- the shared toy setups (tests/support/) as fixtures -------------------------------------------------
@pytest.fixture
def toy_task():
    """``toy_task(seed=0, **kw)``: the toy training task of tests/support/toy_training.py (seeded)."""
    from support.toy_training import make_task

    return make_task


@pytest.fixture
def tiny_lm_bundle(tmp_path, corpus):
    """``tiny_lm_bundle(mode="sentence", steps=30, ...)``: a small LM bundle directory trained on the
    corpus fixture without the training CLI (tests/support/lm_fixtures.py)."""
    from support.lm_fixtures import make_lm_bundle

    return lambda **kw: make_lm_bundle(tmp_path, corpus, **kw)


@pytest.fixture
def one_thread():
    """torch on one thread for this test (modules opt in: ``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
