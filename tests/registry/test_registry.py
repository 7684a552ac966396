"""The registry core: references, atomic concurrent publishing, integrity, locks, import/export."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import time
from importlib import metadata
from pathlib import Path

import pytest

from conftest import kill, spawn
from rnntool.errors import CorruptBundle, InvalidName, LockHeld, ModelNotFound, RegistryError, UsageError, WrongKind
from rnntool.registry.locking import FileLock, try_lock
from rnntool.registry.store import Bundle, ModelRef, Registry, write_bundle
from rnntool.textio import fingerprint_file


def publish(reg: Registry, name: str = "foo", kind: str = "lm", payload: bytes = b"weights", **kw) -> Bundle:
    with reg.staging() as tmp:
        (tmp / "model.safetensors").write_bytes(payload)
        (tmp / "tokenizer.model").write_bytes(b"spm-" + payload[:8])
        return reg.publish(tmp, name=name, kind=kind, **kw)


# -- references and names -----------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("foo", ModelRef("foo")),
    ("foo@latest", ModelRef("foo")),
    ("en-de.v2_x@3", ModelRef("en-de.v2_x", version=3)),
    ("foo@prod", ModelRef("foo", alias="prod")),
])
def test_parse_refs(text, expected):
    assert ModelRef.parse(text) == expected


@pytest.mark.parametrize("text", ["../x", "a/b", "", "Foo", "-x", ".x", "foo@0", "foo@01", "foo@../x", "foo@a@b",
                                  "foo@", "x" * 101])
def test_bad_refs_are_invalid_name_exit_2(text):
    with pytest.raises(InvalidName) as e:
        ModelRef.parse(text)
    assert e.value.exit_code == 2


def test_nothing_escapes_the_root(registry):
    reg = Registry.open()
    with pytest.raises(InvalidName):
        publish(reg, name="../evil")
    with pytest.raises(InvalidName):
        reg.resolve("../x")
    publish(reg)
    for alias in ["../x", "a/b", ".hidden", "latest", "3"]:
        with pytest.raises(InvalidName):
            reg.set_alias("foo@1", alias)
    assert not (registry.parent / "evil").exists() and not (registry.parent / "x").exists()


def test_root_precedence(tmp_path, monkeypatch, registry):
    assert Registry.open().root == registry  # $RNNTOOL_HOME
    assert Registry.open(tmp_path / "explicit").root == tmp_path / "explicit"
    monkeypatch.delenv("RNNTOOL_HOME")
    from platformdirs import user_data_dir

    assert Registry.open().root == Path(user_data_dir("rnntool", appauthor=False))


# -- publish, resolve, load ---------------------------------------------------------------------
def test_publish_records_a_complete_manifest(registry, corpus):
    reg = Registry.open()
    b = publish(reg, config={"model": {"hidden": 8}}, metrics={"ppl": 12.5}, data=[fingerprint_file(corpus)],
                parents={"tokenizer": "spm@1"}, command="rnntool train lm corpus.txt")
    assert (b.ref, b.version, b.path) == ("foo@1", 1, registry / "models" / "foo" / "1")
    m = json.loads((b.path / "manifest.json").read_text())
    assert m["schema_version"] == 1 and m["kind"] == "lm" and m["name"] == "foo" and m["version"] == 1
    assert m["created"] and m["rnntool_version"]
    assert m["torch_version"] == metadata.version("torch")
    assert m["config"] == {"model": {"hidden": 8}} and m["metrics"] == {"ppl": 12.5}
    assert m["parents"] == {"tokenizer": "spm@1"} and m["command"] == "rnntool train lm corpus.txt"
    assert m["data"][0]["sha256"] == fingerprint_file(corpus)["sha256"] and m["data"][0]["lines"] == 600
    assert set(m["files"]) == {"model.safetensors", "tokenizer.model"}
    assert b.file("model.safetensors").read_bytes() == b"weights"
    with pytest.raises(RegistryError, match="no file 'nope.bin'"):
        b.file("nope.bin")
    assert publish(reg).version == 2
    assert reg.latest("foo").version == 2 and reg.resolve("foo").version == 2
    assert reg.load("foo@1", kind="lm").version == 1
    with pytest.raises(WrongKind, match="language model, not a tokenizer"):
        reg.load("foo", kind="tokenizer")


def test_registry_never_imports_torch(registry):
    code = """
        import sys
        from rnntool.registry.store import Registry
        reg = Registry.open()
        with reg.staging() as tmp:
            (tmp / "tokenizer.model").write_text("spm")
            reg.publish(tmp, name="t", kind="tokenizer")
        reg.load("t")
        assert "torch" not in sys.modules
    """
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_unknown_model_suggests_a_name(registry):
    reg = Registry.open()
    with pytest.raises(ModelNotFound, match="registry is empty"):
        reg.resolve("shakespeare")
    publish(reg, name="shakespeare")
    with pytest.raises(ModelNotFound, match="did you mean 'shakespeare'.*rnntool models list"):
        reg.resolve("shakespear")
    with pytest.raises(ModelNotFound, match="no version 7"):
        reg.resolve("shakespeare@7")
    with pytest.raises(ModelNotFound, match="no alias 'prod'"):
        reg.resolve("shakespeare@prod")


def test_version_numbers_are_never_reused(registry):
    reg = Registry.open()
    publish(reg)
    publish(reg)
    reg.remove("foo@2")
    assert publish(reg).version == 3


def test_aliases_move_and_protect_versions(registry):
    reg = Registry.open()
    for _ in range(3):
        publish(reg)
    reg.set_alias("foo@1", "prod")
    assert reg.resolve("foo@prod").version == 1
    reg.set_alias("foo@2", "prod")  # aliases move
    assert reg.resolve("foo@prod").version == 2 and reg.aliases("foo") == {"prod": 2}
    with pytest.raises(RegistryError, match="aliased.*--force"):
        reg.remove("foo@2")
    assert [b.version for b in reg.remove("foo@prod", force=True)] == [2]
    assert reg.aliases("foo") == {}
    assert [b.version for b in reg.versions("foo")] == [1, 3]


def test_gc_keeps_newest_k_and_aliased(registry):
    reg = Registry.open()
    for _ in range(6):
        publish(reg)
    reg.set_alias("foo@2", "prod")
    assert [b.version for b in reg.gc("foo", keep=2, dry_run=True)] == [1, 3, 4]
    assert len(reg.versions("foo")) == 6
    assert [b.version for b in reg.gc("foo", keep=2)] == [1, 3, 4]
    assert [b.version for b in reg.versions("foo")] == [2, 5, 6]
    assert reg.gc("foo", keep=4) == [] and reg.gc("foo", keep=3) == []
    assert all(r.ok for r in reg.verify())


# -- integrity ----------------------------------------------------------------------------------
def flip_byte(path: Path, offset: int = 3) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, message", [
    (lambda p: flip_byte(p / "model.safetensors"), "model.safetensors: sha256 mismatch"),
    (lambda p: (p / "model.safetensors").write_bytes(b"wei"), "model.safetensors: truncated"),
    (lambda p: (p / "tokenizer.model").unlink(), "tokenizer.model: missing"),
    (lambda p: (p / "evil.py").write_text("import os"), "evil.py: not listed"),
    (lambda p: (p / "manifest.json").write_text((p / "manifest.json").read_text().replace('"ppl": 1', '"ppl": 0')),
     "manifest.json: manifest checksum mismatch"),
])
def test_damaged_bundle_fails_load_and_verify_naming_the_file(registry, damage, message):
    reg = Registry.open()
    good = publish(reg, metrics={"ppl": 1.5})
    bad = publish(reg, metrics={"ppl": 1.5})
    damage(bad.path)
    with pytest.raises(CorruptBundle, match=message):
        reg.load("foo@2")
    reg.load("foo@1")
    results = {r.ref: r for r in reg.verify()}
    assert results[good.ref].ok
    assert not results[bad.ref].ok and message in results[bad.ref].problems[0]
    assert str(bad.path) in results[bad.ref].problems[0]


def test_truncated_manifest_is_a_clear_error(registry):
    reg = Registry.open()
    b = publish(reg)
    m = b.path / "manifest.json"
    m.write_bytes(m.read_bytes()[:40])
    with pytest.raises(CorruptBundle, match=r"manifest.json: not valid JSON"):
        reg.load("foo@1")
    [r] = reg.verify()
    assert not r.ok and "manifest.json" in r.problems[0]


def test_a_version_without_manifest_is_broken_not_skipped(registry):
    reg = Registry.open()
    publish(reg)
    partial = registry / "models" / "foo" / "2"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half")
    (registry / "models" / "ghost" / "1").mkdir(parents=True)
    assert [b.ref for b in reg.list()] == ["foo@1"]
    assert [b.ref for b in reg.broken_versions()] == ["foo@2", "ghost@1"]
    for ref in ["foo", "foo@2", "ghost"]:  # "latest" never rolls back past a broken version
        with pytest.raises(CorruptBundle, match=r"@\d is broken.*manifest.json: missing.*'rnntool models rm"):
            reg.resolve(ref)
    assert [(r.ref, r.ok) for r in reg.verify()] == [("foo@1", True), ("foo@2", False), ("ghost@1", False)]
    assert publish(reg).version == 3  # and never overwritten
    assert reg.resolve("foo").version == 3


def test_manifest_cannot_point_outside_the_bundle(registry, tmp_path):
    reg = Registry.open()
    b = publish(reg)
    m = json.loads((b.path / "manifest.json").read_text())
    m["files"]["../../../secret"] = m["files"].pop("tokenizer.model")
    (b.path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(CorruptBundle, match="unsafe file name"):
        reg.load("foo@1")


def test_write_bundle_is_a_path_reference(registry, tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "tokenizer.model").write_bytes(b"spm")
    out = tmp_path / "out" / "mytok"
    b = write_bundle(src, out, name="mytok", kind="tokenizer", metrics={"vocab": 8})
    assert b.version is None and b.ref == str(out) and not any(src.iterdir())
    reg = Registry.open()
    monkeypatch.chdir(tmp_path / "out")
    for ref in [str(out), "./mytok", "mytok"]:  # a bare name falls back to a directory
        assert reg.load(ref, kind="tokenizer").file("tokenizer.model").read_bytes() == b"spm"
    (src / "tokenizer.model").write_bytes(b"spm2")  # -o DIR again replaces the old bundle
    assert write_bundle(src, out, name="mytok", kind="tokenizer").file("tokenizer.model").read_bytes() == b"spm2"
    other = tmp_path / "notabundle"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    (src / "tokenizer.model").write_bytes(b"x")
    with pytest.raises(UsageError, match="not an rnntool bundle"):
        write_bundle(src, other, name="x", kind="tokenizer")
    assert (other / "keep.txt").read_text() == "mine"
    with pytest.raises(ModelNotFound, match="not an rnntool bundle"):
        reg.resolve(str(other))


# -- concurrency and crashes --------------------------------------------------------------------
PUBLISHER = """
    import os, sys, time
    from rnntool.registry.store import Registry
    start = float(sys.argv[1])
    reg = Registry.open()
    with reg.staging() as tmp:
        payload = os.urandom(1 << 16) + str(os.getpid()).encode()
        (tmp / "model.safetensors").write_bytes(payload)
        while time.time() < start:
            time.sleep(0.005)
        b = reg.publish(tmp, name="race", kind="lm", metrics={"pid": os.getpid()})
    print(b.ref)
"""


def test_eight_concurrent_publishers_get_versions_1_to_8(registry):
    start = time.time() + 1.0
    procs = [spawn(PUBLISHER, str(start)) for _ in range(8)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    assert sorted(o[0].strip() for o in outs) == sorted(f"race@{i}" for i in range(1, 9))
    reg = Registry.open()
    versions = reg.versions("race")
    assert [b.version for b in versions] == list(range(1, 9))
    assert len({b.metrics["pid"] for b in versions}) == 8
    assert len({b.files["model.safetensors"]["sha256"] for b in versions}) == 8
    for b in versions:
        reg.load(b.ref)
    assert not any((registry / ".staging").iterdir())


KILLED_PUBLISHER = """
    import os, sys, time
    import rnntool.registry.store as registry
    from rnntool.registry.store import Registry
    moment = sys.argv[1]

    def pause(stage, path):
        if stage == moment:
            print(stage, flush=True)
            time.sleep(120)

    registry._publish_hook = pause
    reg = Registry.open()
    with reg.staging() as tmp:
        with open(tmp / "model.safetensors", "wb") as f:
            f.write(os.urandom(1 << 20))
            if moment == "writing":
                f.flush()
                print("writing", flush=True)
                time.sleep(120)
        reg.publish(tmp, name="foo", kind="lm")
"""


@pytest.mark.parametrize("moment", ["writing", "staged", "claimed", "published"])
def test_publisher_killed_mid_publish_leaves_registry_clean(registry, moment):
    reg = Registry.open()
    publish(reg)
    proc = spawn(KILLED_PUBLISHER, moment)
    assert proc.stdout.readline().strip() == moment, proc.stderr.read()
    kill(proc)
    expected = [1, 2] if moment == "published" else [1]
    assert [b.version for b in reg.versions("foo")] == expected
    assert all(r.ok for r in reg.verify()) and len(reg.verify()) == len(expected)
    lock = try_lock(registry / "locks" / "foo@publish.lock")  # the kernel dropped the dead holder's lock
    assert lock is not None
    lock.release()
    assert any((registry / ".staging").iterdir())  # the dead publisher's leftovers (at least its lock file)
    b = publish(reg)
    assert b.version > expected[-1] and reg.load(b.ref)
    assert sorted(p.name for p in (registry / ".staging").iterdir()) == []  # leftovers cleaned


def test_clean_staging_keeps_a_live_publishers_files(registry):
    code = """
        import time
        from rnntool.registry.store import Registry
        with Registry.open().staging() as tmp:
            (tmp / "big.bin").write_bytes(b"x")
            print(tmp, flush=True)
            time.sleep(120)
    """
    proc = spawn(code)
    try:
        stage = Path(proc.stdout.readline().strip())
        assert Registry.open().clean_staging() == 0
        assert (stage / "big.bin").exists()
    finally:
        kill(proc)
    assert Registry.open().clean_staging() == 1 and not stage.exists()


# -- locks --------------------------------------------------------------------------------------
HOLDER = """
    import sys, time
    from rnntool.registry.store import Registry
    with Registry.open().training_lock("foo"):
        print("locked", flush=True)
        time.sleep(float(sys.argv[1]))
"""


def test_training_lock_names_the_holder_and_dies_with_it(registry):
    proc = spawn(HOLDER, "120")
    try:
        assert proc.stdout.readline().strip() == "locked"
        reg = Registry.open()
        with pytest.raises(LockHeld) as e:
            reg.training_lock("foo")
        assert e.value.exit_code == 75
        assert f"pid {proc.pid}" in str(e.value) and "since" in str(e.value)
        with pytest.raises(LockHeld):
            reg.training_lock("foo", wait=0.3)
        with reg.training_lock("bar"):  # other names are independent
            pass
    finally:
        kill(proc)
    with reg.training_lock("foo", wait=False) as lock:
        assert lock.locked


def test_training_lock_wait_blocks_until_free(registry):
    proc = spawn(HOLDER, "0.5")
    assert proc.stdout.readline().strip() == "locked"
    t0 = time.monotonic()
    with Registry.open().training_lock("foo", wait=True):
        assert proc.poll() is not None or time.monotonic() - t0 > 0.2
    proc.wait(timeout=30)


def test_lock_excludes_a_second_holder_in_the_same_process(tmp_path):
    path = tmp_path / "x.lock"
    first = FileLock(path, what="job x").acquire()
    with pytest.raises(LockHeld, match=f"job x is in progress \\(pid {os.getpid()}"):
        FileLock(path, what="job x").acquire()
    assert try_lock(path) is None  # probing must not drop our own POSIX lock
    code = "import sys; from rnntool.registry.locking import try_lock; sys.exit(0 if try_lock(sys.argv[1]) is None else 3)"
    assert subprocess.run([sys.executable, "-c", code, str(path)]).returncode == 0
    first.release()
    FileLock(path).acquire().release()
    from rnntool.registry import locking

    assert not locking._held and not locking._thread_locks  # nothing leaks per lock path


# -- export / import ----------------------------------------------------------------------------
def test_export_import_round_trip(registry, tmp_path):
    reg = Registry.open()
    b = publish(reg, metrics={"ppl": 3.0}, parents={"tokenizer": "spm@1"})
    archive = reg.export("foo@1", tmp_path / "foo.tar.gz")
    copy = reg.export("foo@1", tmp_path / "foo-dir")
    other = Registry.open(tmp_path / "other")
    got = other.import_bundle(archive)
    assert (got.ref, got.metrics, got.parents) == ("foo@1", {"ppl": 3.0}, {"tokenizer": "spm@1"})
    assert got.file("model.safetensors").read_bytes() == b"weights"
    assert got.manifest["extra"]["imported_from"]["ref"] == "foo@1"
    assert other.import_bundle(copy, name="bar").ref == "bar@1"
    assert reg.import_bundle(archive).ref == "foo@2"  # never overwrites
    assert all(r.ok for r in other.verify()) and (copy / "manifest.json").exists()
    assert b.file("model.safetensors").exists()


def _tar_with(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_import_refuses_path_traversal_and_links(registry, tmp_path):
    reg = Registry.open()
    evil = _tar_with(tmp_path, [_file("b/manifest.json", b"{}"), _file("../../escaped.txt", b"x")])
    with pytest.raises(CorruptBundle, match="refusing member '../../escaped.txt'"):
        reg.import_bundle(evil)
    link = tarfile.TarInfo("b/model.safetensors")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(CorruptBundle, match="refusing member"):
        reg.import_bundle(_tar_with(tmp_path, [_file("b/manifest.json", b"{}"), (link, b"")]))
    assert not list(tmp_path.rglob("escaped.txt")) and reg.list() == []


def test_import_of_a_damaged_archive_names_the_member(registry, tmp_path):
    reg = Registry.open()
    publish(reg)
    archive = reg.export("foo@1", tmp_path / "foo.tar.gz")
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    damaged = [(m, d.replace(b"weights", b"weightz")) for m, d in members]
    bad = _tar_with(tmp_path, damaged)
    with pytest.raises(CorruptBundle, match=r"member model.safetensors\): sha256 mismatch"):
        reg.import_bundle(bad)
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(CorruptBundle):
        reg.import_bundle(tmp_path / "junk.tar.gz")
    assert [b.ref for b in reg.list()] == ["foo@1"]
