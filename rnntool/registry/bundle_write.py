"""Writing bundles: checksums, the manifest (written last), and ``write_bundle`` for ``-o DIR``.

    write_bundle(staged_dir, "out/mylm", name="mylm", kind="lm", config=..., metrics=..., data=[...])

The registry publishes through the same functions (store.py); a bundle written here is used
later as a path reference (``-m out/mylm``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import secrets
import shlex
import shutil
import sys
from pathlib import Path

from rnntool import __version__
from rnntool.registry.bundle import (
    FORMAT,
    MANIFEST,
    SCHEMA_VERSION,
    Bundle,
    check_kind,
    foreign_files,
    kind_files_text,
    list_files,
    manifest_digest,
    validate_name,
)
from rnntool.errors import RegistryError, UsageError
from rnntool.textio import atomic_write_text, finite_json, fingerprint_file, fsync_dir


def checksum_files(root: Path, *, fsync: bool = True) -> dict[str, dict]:
    """``{rel: {"sha256", "bytes"}}`` for every file under root, fsync'ed so a publish is durable."""
    files: dict[str, dict] = {}
    for rel in list_files(root):
        h = hashlib.sha256()
        size = 0
        with open(root / rel, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
                size += len(chunk)
            if fsync:
                os.fsync(f.fileno())
        files[rel] = {"sha256": h.hexdigest(), "bytes": size}
    return files


# -- manifests ------------------------------------------------------------------------------------
def _package_version(dist: str) -> str | None:
    from importlib import metadata  # here, not at import: 20 ms of every command's start-up (`--help` too)

    try:  # never import torch just to learn its version
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def default_command() -> str:
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "rnntool"
    if prog in ("__main__.py", "-m", "-c", "-", ""):
        prog = "rnntool"
    return shlex.join([prog, *sys.argv[1:]])


def normalize_data(data) -> list[dict]:
    """Input fingerprints: dicts from ``textio.fingerprint_file`` or paths (fingerprinted here)."""
    out = []
    for d in data or []:
        out.append(dict(d) if isinstance(d, dict) else fingerprint_file(d))
    return out


def build_manifest(
    *,
    name: str,
    kind: str,
    files: dict[str, dict],
    version: int | None = None,
    config: dict | None = None,
    metrics: dict | None = None,
    data=None,
    parents: dict | None = None,
    extra: dict | None = None,
    command: str | None = None,
    created: str | None = None,
) -> dict:
    foreign = foreign_files(check_kind(kind), files)
    if foreign:
        raise RegistryError(
            f"{foreign[0]}: {kind_files_text(kind)}; remove it from the staged files"
        )
    manifest = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "kind": check_kind(kind),
        "name": validate_name(name),
        "version": version,
        "created": created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "rnntool_version": __version__,
        "torch_version": _package_version("torch"),
        "config": config or {},
        "metrics": metrics or {},
        "data": normalize_data(data),
        "parents": {str(k): str(v) for k, v in (parents or {}).items()},
        "extra": extra or {},
        "command": command if command is not None else default_command(),
        "files": files,
    }
    try:  # a JSON round trip so the digest is over exactly what a reader will load
        manifest = json.loads(json.dumps(finite_json(manifest), ensure_ascii=False, allow_nan=False))
    except TypeError as e:
        raise RegistryError(f"manifest values must be JSON (numbers, strings, lists, dicts): {e}") from None
    return finalize_manifest(manifest)


def finalize_manifest(manifest: dict) -> dict:
    manifest["manifest_sha256"] = manifest_digest(manifest)
    return manifest


def write_manifest(root: Path, manifest: dict) -> None:
    """Write ``manifest.json`` via a temp file + fsync + rename (the last file of a bundle)."""
    atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


# -- building bundles ---------------------------------------------------------------------------
def move_contents(src: Path, dest: Path, *, copy: bool = False) -> None:
    """Move (or copy) every entry of ``src`` into the existing directory ``dest``."""
    for entry in sorted(src.iterdir()):
        target = dest / entry.name
        if copy:
            if entry.is_dir() and not entry.is_symlink():
                shutil.copytree(entry, target, symlinks=True)
            else:
                shutil.copy2(entry, target, follow_symlinks=False)
        else:
            shutil.move(str(entry), str(target))


def current_umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def fix_permissions(root: Path) -> None:
    """Readable by everyone the umask allows (mkstemp makes 0600 files; a shared registry needs more)."""
    umask = current_umask()
    if root.is_file():
        os.chmod(root, 0o666 & ~umask)
        return
    os.chmod(root, 0o777 & ~umask)
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            os.chmod(Path(dirpath) / d, 0o777 & ~umask)
        for f in filenames:
            if not (Path(dirpath) / f).is_symlink():  # chmod follows links (list_files refuses them later)
                os.chmod(Path(dirpath) / f, 0o666 & ~umask)


def check_staged(src: str | os.PathLike, name: str, kind: str) -> Path:
    """What every publish checks first (the registry's and ``-o DIR``'s): a valid name and kind, and
    staged files without a manifest of their own (rnntool writes it)."""
    validate_name(name)
    check_kind(kind)
    src = Path(src)
    if not src.is_dir():
        raise RegistryError(f"{src}: not a directory of files to publish")
    if (src / MANIFEST).exists():
        raise RegistryError(f"{src / MANIFEST}: the manifest is written by rnntool; remove it from the staged files")
    return src


def _sibling_tmp(dest: Path, tag: str) -> Path:
    return dest.parent / f".{dest.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}"


def write_bundle(
    src_dir: str | os.PathLike,
    dest_dir: str | os.PathLike,
    *,
    name: str,
    kind: str,
    config: dict | None = None,
    metrics: dict | None = None,
    data=None,
    parents: dict | None = None,
    extra: dict | None = None,
    command: str | None = None,
    copy: bool = False,
) -> Bundle:
    """A bundle outside the registry (``-o DIR``): moves src's files into ``dest_dir`` atomically.

    ``dest_dir`` may not exist yet, be empty, or hold an older bundle (replaced as a whole);
    anything else there is refused rather than overwritten.
    """
    src, dest = check_staged(src_dir, name, kind), Path(os.path.abspath(Path(dest_dir).expanduser()))
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest} exists and is not a directory; choose another output directory")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / MANIFEST).is_file():
        raise UsageError(f"{dest} exists and is not an rnntool bundle; choose another output directory or remove it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling_tmp(dest, "tmp")
    tmp.mkdir()
    old = None
    try:
        move_contents(src, tmp, copy=copy)
        fix_permissions(tmp)
        files = checksum_files(tmp)
        manifest = build_manifest(
            name=name, kind=kind, files=files, config=config, metrics=metrics, data=data,
            parents=parents, extra=extra, command=command,
        )
        write_manifest(tmp, manifest)
        if dest.exists():
            old = _sibling_tmp(dest, "old")
            os.rename(dest, old)
        os.rename(tmp, dest)
        fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not dest.exists():
            os.rename(old, dest)
            old = None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return Bundle.open(dest)


__all__ = [
    "build_manifest",
    "check_staged",
    "checksum_files",
    "finalize_manifest",
    "fix_permissions",
    "move_contents",
    "write_bundle",
    "write_manifest",
]
