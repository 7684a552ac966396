"""Issue #5: cron cycles on growing data, through the documented retrain script, and the lock."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, invoke

SCRIPT = REPO / "docs" / "cron" / "retrain-lm.sh"
TINY = "--vocab-size 300 --layers 1 --embed-dim 16 --hidden-dim 32 --batch-size 8 --bptt 16 --dropout 0"


def _lines(n: int, seed: int) -> str:
    rng = random.Random(seed)
    words = ["the cat", "a dog", "sees", "likes", "the ball", "a tree", "today", "again"]
    return "".join(" ".join(rng.choice(words) for _ in range(5)) + ".\n" for _ in range(n))


@pytest.fixture
def cron_env(tmp_path, registry):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "rnntool"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m rnntool \"$@\"\n")
    wrapper.chmod(0o755)
    data, valid = tmp_path / "all.txt", tmp_path / "valid.txt"
    data.write_text(_lines(300, 1), encoding="utf-8")
    valid.write_text(_lines(60, 2), encoding="utf-8")
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "RNNTOOL_HOME": str(registry),
           "DATA": str(data), "VALID": str(valid), "NAME": "corpus-lm", "KEEP": "1",
           "LOG": str(tmp_path / "cron.log")}
    return env


def _cycle(env: dict, steps: int) -> subprocess.CompletedProcess:
    env = {**env, "MAX_TIME": "5m", "TRAIN_ARGS": f"{TINY} --max-steps {steps} --eval-every {steps}"}
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)


def _show(env) -> dict:
    r = invoke("models", "show", "corpus-lm", "--json", env={"RNNTOOL_HOME": env["RNNTOOL_HOME"]})
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _versions(registry: Path) -> list[int]:
    return sorted(int(p.name) for p in (registry / "models" / "corpus-lm").iterdir() if p.name.isdigit())


def _prod(registry: Path) -> int:
    return int((registry / "models" / "corpus-lm" / "aliases" / "prod").read_text().strip())


def test_cron_cycles_on_growing_data(cron_env, registry):
    # cycle 1: first version, promoted unopposed
    r = _cycle(cron_env, steps=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("published corpus-lm@1") and "promoted to @prod" in r.stdout, r.stdout
    assert r.stderr == ""  # -q: the cron mail is the one summary line
    assert _prod(registry) == 1

    # cycle 2: nothing changed -> skipped, no new version
    r = _cycle(cron_env, steps=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "skipped: data and settings unchanged since corpus-lm@1"
    assert _versions(registry) == [1]

    # cycle 3: data grew, but a 2-step run is worse: v2 published, prod stays on v1
    data = Path(cron_env["DATA"])
    data.write_text(data.read_text() + _lines(100, 3), encoding="utf-8")
    r = _cycle(cron_env, steps=2)
    assert r.returncode == 0, r.stderr
    assert "published corpus-lm@2" in r.stdout and "not promoted to @prod" in r.stdout, r.stdout
    assert _prod(registry) == 1
    # gc --keep 1 keeps the newest (v2) and the aliased v1
    assert _versions(registry) == [1, 2]
    manifest = json.loads((registry / "models/corpus-lm/2/manifest.json").read_text())
    promo = manifest["extra"]["promotion"]
    assert promo["promoted"] is False and promo["new_score"] > promo["old_score"]

    # cycle 4: more data and a longer run beat v1: prod moves; gc drops v2 (not aliased, not newest)
    data.write_text(data.read_text() + _lines(100, 4), encoding="utf-8")
    r = _cycle(cron_env, steps=150)
    assert r.returncode == 0, r.stderr
    assert "published corpus-lm@3" in r.stdout and "; promoted to @prod" in r.stdout, r.stdout
    assert _prod(registry) == 3
    assert _versions(registry) == [3]

    history = _show(cron_env)  # what `models show --json` says agrees with the registry
    assert history["aliases"] == {"prod": 3}
    assert [v["version"] for v in history["versions"]] == [3]
    assert history["versions"][0]["promotion"]["promoted"] is True
    log = Path(cron_env["LOG"]).read_text()
    assert "skipped: data and settings unchanged" in log and "\x1b[" not in log


def _wait_until_held(lock: Path, holder: subprocess.Popen) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:  # the holder writes its pid into the lock file once it holds it
        text = lock.read_text(errors="replace").replace(" ", "") if lock.exists() else ""
        if f'"pid":{holder.pid}' in text:
            return
        assert holder.poll() is None, holder.communicate()[1]
        time.sleep(0.1)
    raise AssertionError(f"{lock} was never taken by pid {holder.pid}")


def test_wait_queues_behind_the_running_holder(tmp_path, registry):
    data = tmp_path / "d.txt"
    data.write_text(_lines(400, 5), encoding="utf-8")
    base = [sys.executable, "-m", "rnntool", "train", "lm", str(data), "--name", "n", *TINY.split(),
            "--valid-fraction", "0.1", "--json"]
    holder = subprocess.Popen([*base, "-q", "--max-time", "15s", "--eval-every", "100000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_until_held(registry / "locks" / "n@train.lock", holder)
        waiter = subprocess.run([*base, "--max-steps", "1", "--wait"], capture_output=True, text=True, timeout=300)
        out, err = holder.communicate(timeout=300)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert holder.returncode == 0, err
    assert waiter.returncode == 0, waiter.stderr
    # a 1-step run that had not waited would have published first, as n@1
    assert json.loads(out)["ref"] == "n@1" and json.loads(waiter.stdout)["ref"] == "n@2"
    assert f"--wait: a training run for 'n' is in progress (pid {holder.pid}" in waiter.stderr


def test_overlapping_runs_exit_75_and_a_killed_holder_leaves_no_lock(tmp_path, registry):
    data = tmp_path / "d.txt"
    data.write_text(_lines(400, 5), encoding="utf-8")
    base = [sys.executable, "-m", "rnntool", "train", "lm", str(data), "--name", "n", *TINY.split(),
            "--valid-fraction", "0.1"]
    holder = subprocess.Popen([*base, "--max-time", "5m", "--eval-every", "100000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = registry / "locks" / "n@train.lock"
        _wait_until_held(lock, holder)
        second = subprocess.run([*base, "--max-steps", "1"], capture_output=True, text=True, timeout=120)
        assert second.returncode == 75, (second.returncode, second.stderr)
        last = second.stderr.strip().splitlines()[-1]
        assert last.startswith("rnntool: error:") and f"pid {holder.pid}" in last, second.stderr
        assert "Traceback" not in second.stderr
        assert lock.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    third = subprocess.run([*base, "--max-steps", "2", "--json"], capture_output=True, text=True, timeout=120)
    assert third.returncode == 0, third.stderr
    assert json.loads(third.stdout)["status"] == "published"
    # the refused run and the finished one leave no scaffolding; the killed one keeps its checkpoint
    runs = [p for p in (registry / "runs").iterdir()]
    assert len(runs) == 1, runs


def test_if_changed_and_promote_need_a_name(tmp_path):
    data = tmp_path / "d.txt"
    data.write_text(_lines(50, 6), encoding="utf-8")
    r = invoke("train", "lm", str(data), "-o", str(tmp_path / "out"), "--if-changed", *TINY.split())
    assert r.exit_code in (1, 2)
    assert "need --name" in r.stderr and "Traceback" not in r.output


def test_warm_start_with_another_tokenizer_is_an_error(tmp_path):
    data = tmp_path / "d.txt"
    data.write_text(_lines(200, 7), encoding="utf-8")
    common = [str(data), "--valid-fraction", "0.1", *TINY.split(), "--max-steps", "2", "-q"]
    assert invoke("train", "lm", *common, "--name", "base").exit_code == 0
    assert invoke("tokenize", "train", str(data), "--name", "other-tok", "--vocab-size", "320", "-q").exit_code == 0
    r = invoke("train", "lm", *common, "--name", "warm", "--init-from", "base", "-t", "other-tok")
    assert r.exit_code == 1 and "tokenizer mismatch" in r.stderr, r.stderr
    r = invoke("train", "lm", *common, "--name", "warm", "--init-from", "base@1", "--json")
    assert r.exit_code == 0, r.stderr
    manifest = json.loads((Path(os.environ["RNNTOOL_HOME"]) / "models/warm/1/manifest.json").read_text())
    assert manifest["parents"]["init"] == "base@1"


def test_warm_start_says_when_it_overrides_the_architecture(tmp_path):
    data = tmp_path / "d.txt"
    data.write_text(_lines(200, 8), encoding="utf-8")
    common = [str(data), "--valid-fraction", "0.1", "--max-steps", "1"]
    assert invoke("train", "lm", *common, *TINY.split(), "--name", "base", "-q").exit_code == 0
    same = invoke("train", "lm", *common, *TINY.split(), "--name", "warm", "--init-from", "base")
    assert same.exit_code == 0, same.stderr
    assert "using its architecture" not in same.stderr  # nothing was overridden
    other = invoke("train", "lm", *common, *TINY.split(), "--hidden-dim", "48", "--name", "warm", "--init-from", "base")
    assert other.exit_code == 0, other.stderr
    assert "warm start from base@1: using its architecture (lstm, 1x32); ignoring --hidden-dim 48" in other.stderr


def test_translation_promotion_uses_the_paired_bootstrap(tmp_path, registry):
    """--promote for translation: first version promoted; an unchanged run skipped; a clearly worse
    one published but not promoted, with the bootstrap p-value stored in its manifest."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_data", REPO / "demo" / "make_data.py")
    make_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_data)
    rng = random.Random(0)
    pairs = [make_data.sentence(rng) for _ in range(700)]
    for name, rows in (("train", pairs[:600]), ("valid", pairs[600:])):
        (tmp_path / f"{name}.en").write_text("".join(en + "\n" for en, _ in rows), encoding="utf-8")
        (tmp_path / f"{name}.de").write_text("".join(de + "\n" for _, de in rows), encoding="utf-8")
    common = ["train", "translate", "--src", tmp_path / "train.en", "--tgt", tmp_path / "train.de",
              "--valid-src", tmp_path / "valid.en", "--valid-tgt", tmp_path / "valid.de", "--name", "ende",
              "--vocab-size", "400", "--joint-vocab", "--layers", "1", "--embed-dim", "32", "--hidden-dim", "64",
              "--batch-tokens", "1500", "--promote", "prod", "-q", "--json"]
    first = invoke(*common, "--max-steps", "120", "--eval-every", "120")
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["promotion"]["promoted"] is True
    skipped = invoke(*common, "--max-steps", "120", "--eval-every", "120", "--if-changed")
    assert skipped.exit_code == 0, skipped.stderr
    assert json.loads(skipped.stdout)["status"] == "skipped"
    worse = invoke(*common, "--max-steps", "2", "--eval-every", "2")
    assert worse.exit_code == 0, worse.stderr
    promo = json.loads(worse.stdout)["promotion"]
    assert promo["promoted"] is False and promo["metric"] == "bleu" and promo["p_value"] is not None
    assert promo["new_score"] < promo["old_score"]
    assert _prod_of(registry, "ende") == 1
    manifest = json.loads((registry / "models/ende/2/manifest.json").read_text())
    assert manifest["extra"]["promotion"] == promo


def _prod_of(registry: Path, name: str) -> int:
    return int((registry / "models" / name / "aliases" / "prod").read_text().strip())
