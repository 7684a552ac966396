"""A registry people can trust when it is shared: planted links are never followed, a bundle holds
only its kind's files, a broken version is never silently skipped, a hung lock holder is named and
given up on, gc racing a reader says so, run directories are cleaned, and old tarfile modules work."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import time
from pathlib import Path

import pytest

from conftest import fails, invoke, kill, ok, run_cli, spawn
from rnntool.registry.bundle import manifest_digest
from rnntool.errors import ModelNotFound, RegistryError, RnnToolError
from rnntool.registry.store import Bundle, Registry
from rnntool.registry.staging import host_tag

KIND_FILES = {
    "tokenizer": {"tokenizer.model": b"spm"},
    "lm": {"model.safetensors": b"weights", "tokenizer.model": b"spm"},
    "translation": {"model.safetensors": b"weights", "tokenizer.src.model": b"s", "tokenizer.tgt.model": b"t"},
}


def publish(name: str = "foo", kind: str = "lm", n: int = 1) -> list[Bundle]:
    reg = Registry.open()
    out = []
    for i in range(n):
        with reg.staging() as tmp:
            for rel, data in KIND_FILES[kind].items():
                (tmp / rel).write_bytes(data + str(i).encode())
            out.append(reg.publish(tmp, name=name, kind=kind))
    return out


def edit_manifest(bundle_dir: Path, edit) -> None:
    """Change a manifest and re-seal it (what a careful forger, or a buggy tool, would do)."""
    path = bundle_dir / "manifest.json"
    m = json.loads(path.read_text())
    edit(m)
    m["manifest_sha256"] = manifest_digest(m)
    path.write_text(json.dumps(m))


def add_listed_file(bundle_dir: Path, rel: str, data: bytes) -> None:
    (bundle_dir / rel).write_bytes(data)
    edit_manifest(bundle_dir, lambda m: m["files"].__setitem__(
        rel, {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}))


@pytest.fixture
def victim(tmp_path) -> Path:
    p = tmp_path / "victim.txt"
    p.write_text("precious\n")
    return p


def plant(link: Path, target: Path) -> Path:
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)
    elif os.path.lexists(link):
        link.unlink()
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return link


LOCK_HOLDER = """
    import sys, time
    from rnntool.registry.locking import FileLock
    with FileLock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(120)
"""


def hold_lock(path: Path):
    proc = spawn(LOCK_HOLDER, path)
    assert proc.stdout.readline().strip() == "locked", proc.stderr.read()
    return proc


# -- 1. links planted in a shared registry --------------------------------------------------------
def test_a_planted_publish_lock_link_is_refused_not_followed(registry, victim):
    publish()
    lock = plant(registry / "locks" / "foo@publish.lock", victim)
    fails(invoke("models", "alias", "foo@1", "prod"), 1, str(lock), "a symbolic link", "remove it")
    assert victim.read_text() == "precious\n"
    assert not (registry / "models" / "foo" / "aliases" / "prod").exists()


def test_a_planted_training_lock_link_is_refused_not_followed(registry, victim):
    lock = plant(registry / "locks" / "foo@train.lock", victim)
    with pytest.raises(RegistryError, match=f"{lock} is a symbolic link"):
        Registry.open().training_lock("foo")
    assert victim.read_text() == "precious\n"


def test_gc_unlinks_planted_staging_links_without_following_them(registry, victim):
    publish()
    staging = registry / ".staging"
    planted = [plant(staging / f"{host_tag()}-999999-deadbeef.lock", victim),
               plant(staging / "otherhost-1-cafe.lock", victim),
               plant(staging / f"{host_tag()}-999998-beef", victim)]
    ok(invoke("models", "gc"))
    assert victim.read_text() == "precious\n"
    assert not any(os.path.lexists(p) for p in planted)


@pytest.mark.parametrize("planted, args", [
    ("models/foo/aliases/prod", ["models", "alias", "foo@1", "prod"]),
    ("models/foo/.last-version", ["models", "import", "EXPORT"]),
])
def test_planted_registry_file_links_are_refused(registry, victim, tmp_path, planted, args):
    publish()
    archive = tmp_path / "foo.tar.gz"
    ok(invoke("models", "export", "foo@1", archive))
    link = plant(registry / planted, victim)
    fails(invoke(*[archive if a == "EXPORT" else a for a in args]), 1, str(link), "a symbolic link", "remove it")
    assert victim.read_text() == "precious\n" and link.is_symlink()
    assert [b.ref for b in Registry.open().list()] == ["foo@1"]


@pytest.mark.parametrize("linked, args", [
    ("locks", ["models", "alias", "foo@1", "prod"]),
    ("models/foo/aliases", ["models", "alias", "foo@1", "prod"]),
    (".staging", ["models", "rm", "foo@1"]),
])
def test_linked_registry_directories_are_refused(registry, tmp_path, linked, args):
    publish()
    ok(invoke("models", "alias", "foo@1", "old"))
    ok(invoke("models", "alias", "--rm", "foo", "old"))  # every directory exists now
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = plant(registry / linked, elsewhere)
    fails(invoke(*args), 1, str(link), "a symbolic link, not a directory", "remove it")
    assert list(elsewhere.iterdir()) == []
    assert (registry / "models" / "foo" / "1" / "manifest.json").exists()


def test_the_registry_root_itself_may_be_a_link(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    monkeypatch.setenv("RNNTOOL_HOME", str(tmp_path / "link"))
    publish(n=2)
    ok(invoke("models", "alias", "foo@1", "prod"))
    assert ok(invoke("models", "gc", "--keep", "0")).stdout == "foo@2\n"
    assert (real / "models" / "foo" / "aliases" / "prod").read_text() == "1\n"


def test_atomic_write_never_writes_through_a_link_swapped_in_for_its_temp_file(tmp_path, victim, monkeypatch):
    import tempfile

    from rnntool.textio import atomic_write_text

    real_mkstemp = tempfile.mkstemp

    def racing_mkstemp(*args, **kw):  # another member of the group swaps the temp file for a link
        fd, name = real_mkstemp(*args, **kw)
        os.unlink(name)
        os.symlink(victim, name)
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", racing_mkstemp)
    with pytest.raises(RnnToolError, match="replaced"):
        atomic_write_text(tmp_path / "alias", "3\n")
    assert victim.read_text() == "precious\n" and not (tmp_path / "alias").exists()


# -- 3. a bundle holds its kind's files; a name holds one kind; versions are not links --------------
def test_a_listed_file_its_kind_never_writes_fails_verify_load_and_import(registry, tmp_path):
    [b] = publish()
    add_listed_file(b.path, "evil.py", b"import os")
    fails(invoke("models", "verify", "foo@1"), 1, str(b.path / "evil.py"), "language model bundles hold")
    fails(invoke("models", "export", "foo@1", tmp_path / "x.tar.gz"), 1, "evil.py")  # every load
    [t] = publish("spm", kind="tokenizer")
    add_listed_file(t.path, "model.safetensors", b"w")
    fails(invoke("models", "verify", "spm"), 1, "model.safetensors", "tokenizer bundles hold")
    shutil.copytree(t.path, tmp_path / "crafted")
    fails(invoke("models", "import", tmp_path / "crafted", "--name", "copy"), 1, "model.safetensors")
    with Registry.open().staging() as tmp:
        (tmp / "tokenizer.model").write_bytes(b"spm")
        (tmp / "notes.txt").write_bytes(b"hi")
        with pytest.raises(RegistryError, match="notes.txt.*tokenizer bundles hold tokenizer.model"):
            Registry.open().publish(tmp, name="tok", kind="tokenizer")


def test_a_linked_version_directory_is_refused_and_can_be_removed(registry, tmp_path):
    publish(n=2)
    outside = tmp_path / "outside"
    shutil.move(registry / "models" / "foo" / "2", outside)
    link = plant(registry / "models" / "foo" / "2", outside)
    r = fails(invoke("models", "verify"), 1, str(link), "a symbolic link")
    assert "FAILED  foo@2" in r.stdout
    fails(invoke("models", "path", "foo"), 1, "foo@2", "symbolic link")
    fails(invoke("models", "path", "foo@2"), 1, "foo@2", "symbolic link")
    assert ok(invoke("models", "rm", "foo@2")).stdout == "foo@2\n"
    assert not os.path.lexists(link) and (outside / "manifest.json").exists()
    assert ok(invoke("models", "path", "foo")).stdout.strip().endswith("/foo/1")


def test_one_name_holds_one_kind(registry, tmp_path):
    publish("sym", kind="tokenizer")
    reg = Registry.open()
    msg = "'sym' holds tokenizers; a name holds one kind of model; choose another --name"
    with pytest.raises(RegistryError, match=msg):
        publish("sym", kind="lm")
    with pytest.raises(RegistryError, match=msg):
        reg.check_name_kind("sym", "lm")
    reg.check_name_kind("sym", "tokenizer")
    reg.check_name_kind("new", "lm")
    publish("other", kind="lm")
    ok(invoke("models", "export", "other@1", tmp_path / "other.tar.gz"))
    fails(invoke("models", "import", tmp_path / "other.tar.gz", "--name", "sym"), 1, msg)
    assert [b.ref for b in reg.list("sym")] == ["sym@1"]
    # a registry that got mixed before this rule: verify says so
    shutil.move(registry / "models" / "other" / "1", registry / "models" / "sym" / "2")
    edit_manifest(registry / "models" / "sym" / "2", lambda m: m.update(name="sym", version=2))
    r = fails(invoke("models", "verify", "sym"), 1, "several kinds")
    assert "tokenizer" in r.stderr and "lm" in r.stderr


# -- 7. a broken version is corruption, never a silent rollback ------------------------------------
@pytest.mark.parametrize("damage", [
    lambda m: m.unlink(),
    lambda m: m.write_text('{"format": "rnn'),
])
def test_a_broken_newest_version_is_never_silently_skipped(registry, damage):
    publish(n=2)
    damage(registry / "models" / "foo" / "2" / "manifest.json")
    fails(invoke("models", "path", "foo"), 1, "foo@2", "rnntool models rm foo@2")
    fails(invoke("models", "path", "foo@2"), 1, "foo@2", "rnntool models rm foo@2")
    r = fails(invoke("models", "verify", "foo"), 1, "foo@2")
    assert r.stdout.splitlines()[0] == "ok      foo@1" and "FAILED  foo@2" in r.stdout
    for args in [("models", "list"), ("models", "show", "foo")]:
        r = ok(invoke(*args))
        assert "foo@1" in r.stdout or "1 " in r.stdout
        assert "rnntool: warning: foo@2" in r.stderr and "rnntool models rm foo@2" in r.stderr
    assert ok(invoke("models", "rm", "foo@2")).stdout == "foo@2\n"
    assert ok(invoke("models", "path", "foo")).stdout.strip().endswith("/foo/1")
    assert "warning" not in ok(invoke("models", "verify")).stderr


def test_an_empty_version_directory_is_broken_too(registry):
    (registry / "models" / "ghost" / "1").mkdir(parents=True)
    fails(invoke("models", "path", "ghost"), 1, "ghost@1", "rnntool models rm ghost@1")
    fails(invoke("models", "verify"), 1, "ghost@1")
    ok(invoke("models", "rm", "ghost@1"))
    fails(invoke("models", "path", "ghost"), 1, "no model 'ghost'")


# -- 8. a hung lock holder is named, and given up on ------------------------------------------------
@pytest.mark.parametrize("args", [["models", "alias", "foo@1", "prod"], ["models", "gc", "foo"]])
def test_a_hung_lock_holder_is_named_and_given_up_on(registry, args):
    publish()
    holder = hold_lock(registry / "locks" / "foo@publish.lock")
    try:
        t0 = time.monotonic()
        r = run_cli(*args, env={"RNNTOOL_LOCK_TIMEOUT": "2"}, timeout=30)
        took = time.monotonic() - t0
    finally:
        kill(holder)
    assert r.returncode == 75, r.stderr
    lines = r.stderr.strip().splitlines()
    assert any("waiting for" in line and f"pid {holder.pid}" in line for line in lines[:-1]), r.stderr
    assert lines[-1].startswith("rnntool: error: ") and f"pid {holder.pid}" in lines[-1]
    assert "RNNTOOL_LOCK_TIMEOUT" in lines[-1] and 2 <= took < 25
    assert not (registry / "models" / "foo" / "aliases" / "prod").exists()


def test_a_bad_lock_timeout_is_a_usage_error(registry):
    publish()
    fails(invoke("models", "alias", "foo@1", "prod", env={"RNNTOOL_LOCK_TIMEOUT": "soon"}), 2,
          "RNNTOOL_LOCK_TIMEOUT")


# -- 9. gc racing a reader; run directories ---------------------------------------------------------
def test_a_version_removed_while_being_read_is_reported_as_removed(registry, tmp_path, monkeypatch):
    publish(n=2)
    real_problems = Bundle.problems

    def removed_midway(self):  # `models gc` renames the version away while we read it
        if self.path.exists():
            os.rename(self.path, tmp_path / f"gone-{self.version}")
        return real_problems(self)

    monkeypatch.setattr(Bundle, "problems", removed_midway)
    msg = "foo@1 was removed (by 'models gc' or 'models rm') while it was being read; run again"
    fails(invoke("models", "export", "foo@1", tmp_path / "x.tar.gz"), 1, msg)
    with pytest.raises(ModelNotFound, match="foo@2 was removed"):
        Registry.open().load("foo@2")


def make_run(registry: Path, name: str, *, published=False, checkpoint=False, age_days=0.0) -> Path:
    d = registry / "runs" / name
    d.mkdir(parents=True)
    (d / "metrics.jsonl").write_bytes(b"x" * 1000)
    if published:
        (d / "published.json").write_text('{"ref": "foo@1"}\n')
    if checkpoint:
        (d / "ckpt-000000010").mkdir()
        (d / "ckpt-000000010" / "model.safetensors").write_bytes(b"w" * 500)
        (d / "checkpoint").write_text("ckpt-000000010\n")
    if age_days:
        t = time.time() - age_days * 86400
        for p in [*d.rglob("*"), d]:
            os.utime(p, (t, t))
    return d


def test_gc_runs_removes_finished_and_abandoned_run_directories(registry):
    publish()
    done = make_run(registry, "lm-done", published=True, checkpoint=True)
    empty = make_run(registry, "lm-empty", age_days=0.1)  # no checkpoint, and not brand new
    starting = make_run(registry, "lm-starting")  # no checkpoint yet, and may not hold its lock yet
    old = make_run(registry, "lm-old", checkpoint=True, age_days=8)
    resumable = make_run(registry, "lm-resumable", checkpoint=True, age_days=2)
    busy = make_run(registry, "lm-busy", published=True)
    holder = hold_lock(busy / "run.lock")
    try:
        ok(invoke("models", "gc"))
        assert all(d.exists() for d in [done, empty, old, resumable, busy])  # without --runs: as before
        r = ok(invoke("models", "gc", "--runs", "--dry-run"))
        assert sorted(line.split()[0] for line in r.stdout.splitlines()) == [str(done), str(empty), str(old)]
        assert "1.0 KB" in r.stdout and "would remove 0 version(s) and 3 run director" in r.stderr
        assert all(d.exists() for d in [done, empty, old])
        doc = json.loads(ok(invoke("models", "gc", "--runs", "--json")).stdout)
        assert sorted(d["path"] for d in doc) == [str(done), str(empty), str(old)]
        assert all(d["bytes"] >= 1000 for d in doc)
        assert not any(d.exists() for d in [done, empty, old])
        assert resumable.exists() and busy.exists() and starting.exists()
        assert ok(invoke("models", "gc", "--runs", "--runs-older-than", "1d")).stdout.split()[0] == str(resumable)
        assert busy.exists()
    finally:
        kill(holder)
    assert ok(invoke("models", "gc", "--runs")).stdout.split()[0] == str(busy)
    fails(invoke("models", "gc", "--runs", "--runs-older-than", "soon"), 2, "--runs-older-than")


# -- 13. Python before 3.11.4 has no tarfile filters ------------------------------------------------
def test_import_works_where_tarfile_has_no_data_filter(registry, tmp_path, monkeypatch):
    publish()
    archive = tmp_path / "foo.tar.gz"
    ok(invoke("models", "export", "foo@1", archive))
    real_extractall = tarfile.TarFile.extractall

    def extractall_of_3_11_2(self, path=".", members=None, *, numeric_owner=False):
        return real_extractall(self, path, members, numeric_owner=numeric_owner)

    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    monkeypatch.setattr(tarfile.TarFile, "extractall", extractall_of_3_11_2)
    assert ok(invoke("models", "import", archive)).stdout == "foo@2\n"
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        tar.addfile(info)
    fails(invoke("models", "import", evil), 1, "refusing member '../escaped.txt'")
    assert not (tmp_path / "escaped.txt").exists()
