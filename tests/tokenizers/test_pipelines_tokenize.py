"""Real processes and shell pipelines: `tokenize encode | tokenize decode`, `| head -1`, streaming,
concurrent publishes."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, rnntool_cmd, run_cli


def bash(script: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], capture_output=True, timeout=timeout, cwd=REPO)


@pytest.fixture
def text(tmp_path) -> Path:
    lines = ["a b c the cat sat on the mat", "a dog barked", "c", "ünïcödé  text"] * 25
    p = tmp_path / "train.txt"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


@pytest.fixture
def tok(text) -> str:
    r = run_cli("tokenize", "train", text, "--name", "t", "--vocab-size", "290", "-q")
    assert r.returncode == 0, r.stderr
    return "t"


def test_encode_decode_pipeline_gives_back_the_input(tok):
    rn = rnntool_cmd()
    r = bash(f"set -o pipefail; printf 'a b\\nc\\n' | {rn} tokenize encode -m {tok} | {rn} tokenize decode -m {tok}")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"a b\nc\n" and r.stderr == b""
    r = bash(f"set -o pipefail; printf 'x  y\\t\\n\\n\\xc3\\xbc\\n' | {rn} tokenize encode -m {tok} --output-format id"
             f" | {rn} tokenize decode -m {tok} --input-format id")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "x  y\t\n\nü\n".encode()


def test_head_on_a_long_encode_exits_quietly(tok, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("the cat sat on the mat again and again\n" * 200_000, encoding="utf-8")
    r = bash(f"{rnntool_cmd()} tokenize encode -m {tok} {big} | head -1; echo \"rc=${{PIPESTATUS[0]}}\" >&2")
    assert r.stderr.decode() == "rc=0\n"
    assert r.stdout.count(b"\n") == 1


def test_encode_streams_line_by_line(tok):
    """Each output line arrives before the next input line is written (no buffering to EOF)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnntool", "tokenize", "encode", "-m", tok],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ,
    )
    try:
        for line in (b"a b\n", b"\n", b"c\n"):
            proc.stdin.write(line)
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            assert ready, "no output line before the next input line"
            out = proc.stdout.readline()
            assert out.endswith(b"\n") and (out == b"\n") == (line == b"\n")
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()


def test_invalid_utf8_in_a_pipeline(tok):
    rn = rnntool_cmd()
    r = bash(f"printf 'ok\\n\\xff bad\\n' | {rn} tokenize encode -m {tok}")
    assert r.returncode == 1
    err = r.stderr.decode()
    assert err.startswith("rnntool: error: <stdin>:2: invalid UTF-8") and "Traceback" not in err
    r = bash(f"set -o pipefail; printf 'ok\\n\\xff bad\\n' | {rn} tokenize encode -m {tok} --on-bad-utf8 replace"
             f" | {rn} tokenize decode -m {tok}")
    assert r.returncode == 0 and r.stdout.decode() == "ok\n\ufffd bad\n"


def test_unknown_model_and_empty_input_exit_1(tok):
    r = run_cli("tokenize", "encode", "-m", "nope", input="x\n")
    assert r.returncode == 1 and r.stderr.startswith("rnntool: error: no model 'nope'")
    r = run_cli("tokenize", "encode", "-m", tok, input="")
    assert r.returncode == 1 and "input is empty" in r.stderr and "Traceback" not in r.stderr


def test_eight_concurrent_trains_publish_versions_1_to_8(text, registry):
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "rnntool", "tokenize", "train", str(text), "--name", "same",
             "--vocab-size", "290", "--json", "-q"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ,
        )
        for _ in range(8)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err.decode()
        results.append(json.loads(out))
    assert sorted(r["version"] for r in results) == list(range(1, 9))
    assert len({r["sha256"] for r in results}) == 1  # deterministic training

    from rnntool.registry.store import Registry

    reg = Registry.open(registry)
    assert [b.version for b in reg.versions("same")] == list(range(1, 9))
    for v in range(1, 9):
        reg.load(f"same@{v}", kind="tokenizer")  # checksums verified
    v = run_cli("models", "verify", "same", "--json")
    assert v.returncode == 0, v.stderr
    assert not list((registry / ".staging").glob("*/"))  # nothing half-published left behind
