"""Moving bundles between registries: export to a directory or .tar.gz, import from either.

Import never trusts the archive: only regular files and directories are extracted (no links,
devices, absolute paths or '..'; tarfile's "data" filter on top where Python has it), every checksum is verified
against the bundle's manifest, and the bundle is then published as a *new* version under the
registry's own rules (its name may be changed with ``name=``).
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from rnntool.registry.bundle import MANIFEST, Bundle, list_files, validate_name
from rnntool.errors import CorruptBundle, RegistryError, UsageError
from rnntool.textio import atomic_path, fsync_dir

if TYPE_CHECKING:
    from rnntool.registry.store import Registry

TAR_SUFFIXES = (".tar.gz", ".tgz")


def is_archive_name(path: Path) -> bool:
    return path.name.endswith(TAR_SUFFIXES)


def _top_dir_name(b: Bundle) -> str:
    return f"{b.name}-{b.version}" if b.version is not None else b.name


def export_bundle(b: Bundle, dest: Path) -> Path:
    """Write a verified bundle to ``dest``: a .tar.gz (one top directory) or a new directory."""
    dest = dest.expanduser()
    rels = [MANIFEST, *list_files(b.path)]
    if is_archive_name(dest):
        if dest.is_dir():
            raise UsageError(f"{dest} is a directory; give a file name ending in .tar.gz")
        top = _top_dir_name(b)
        with atomic_path(dest) as tmp:
            with tarfile.open(tmp, "w:gz", format=tarfile.PAX_FORMAT) as tar:
                for rel in rels:
                    data = (b.path / rel).read_bytes()
                    info = tarfile.TarInfo(f"{top}/{rel}")
                    info.size, info.mode, info.mtime = len(data), 0o644, 0
                    tar.addfile(info, io.BytesIO(data))
        return dest
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest} already exists; give a new directory or a name ending in .tar.gz")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.export-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for rel in rels:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(b.path / rel, tmp / rel)
        if dest.exists():
            dest.rmdir()
        os.rename(tmp, dest)
        fsync_dir(dest.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _safe_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    members = []
    for m in tar.getmembers():
        name = m.name
        parts = PurePosixPath(name).parts
        if (
            name.startswith("/")
            or "\\" in name
            or ".." in parts
            or not (m.isfile() or m.isdir())
        ):
            raise CorruptBundle(
                f"{archive}: refusing member {name!r} (only plain files inside the archive are allowed)"
            )
        members.append(m)
    return members


def _data_filter() -> dict:
    """tarfile's "data" extraction filter where Python has it (3.11.4+, 3.10.12+, ...); before that
    the member checks of _safe_members are what keeps an archive inside its directory."""
    return {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


def _extract(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = _safe_members(tar, archive)
            tar.extractall(dest, members=members, **_data_filter())
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise CorruptBundle(f"{archive}: not a readable .tar.gz bundle ({e})") from None


def _find_bundle_root(d: Path, source: Path) -> Path:
    if (d / MANIFEST).is_file():
        return d
    subdirs = [p for p in d.iterdir() if p.is_dir()]
    if len(subdirs) == 1 and (subdirs[0] / MANIFEST).is_file():
        return subdirs[0]
    raise CorruptBundle(f"{source}: no {MANIFEST} found; not an rnntool bundle")


def import_bundle(reg: "Registry", path: Path, *, name: str | None = None) -> Bundle:
    """Verify the bundle at ``path`` (directory or .tar.gz) and publish it as a new version."""
    path = path.expanduser()
    if name is not None:
        validate_name(name)
    if not path.exists():
        raise RegistryError(f"{path}: no such file or directory; give a bundle directory or a .tar.gz")
    with reg.staging() as work:
        if path.is_dir():
            root = _find_bundle_root(path, path)
        elif tarfile.is_tarfile(path):
            _extract(path, work)
            root = _find_bundle_root(work, path)
        else:
            raise CorruptBundle(f"{path}: neither a bundle directory nor a .tar.gz archive")
        src = Bundle.open(root)
        bad = src.problems()
        if bad:
            rel, reason = bad[0]
            where = f"{path} (member {rel})" if path.is_file() else str(root / rel)
            raise CorruptBundle(f"{where}: {reason}; the bundle is damaged, re-export it")
        with reg.staging() as files:
            for rel in src.files:
                (files / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / rel, files / rel)
            m = src.manifest
            extra = dict(m.get("extra") or {})
            extra["imported_from"] = {
                "ref": f"{m['name']}@{m.get('version')}" if m.get("version") is not None else m["name"],
                "source": str(path.resolve()),
                "created": m.get("created"),
                "rnntool_version": m.get("rnntool_version"),
                "torch_version": m.get("torch_version"),
            }
            return reg.publish(
                files, name=name or src.name, kind=src.kind, config=m.get("config"), metrics=m.get("metrics"),
                data=m.get("data"), parents=m.get("parents"), extra=extra, command=m.get("command"),
            )


__all__ = ["export_bundle", "import_bundle", "is_archive_name"]
