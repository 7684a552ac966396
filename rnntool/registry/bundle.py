"""A model bundle: a self-contained directory of files plus ``manifest.json`` describing them.

    b = Bundle.open("runs/lm1")            # any bundle directory (registry versions are bundles too)
    b.verify()                              # every sha256 and size against the manifest
    b.file(WEIGHTS_FILE)                    # a path inside it (only files the manifest lists)

Writing bundles (manifests, checksums, ``write_bundle`` for ``-o DIR``) is in bundle_write.py.

The manifest is written last and carries the sha256 and size of every file, plus its own checksum
(``manifest_sha256``, over the canonical JSON of every other key), so any flipped byte, truncated,
missing or extra file is found by ``verify`` and reported naming the file. Nothing in a bundle is
ever executed: weights are safetensors, tokenizers SentencePiece protos, the rest JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path, PurePosixPath

from rnntool.errors import CorruptBundle, InvalidName, RegistryError, UsageError
from rnntool.kinds.catalog import CATALOG, KINDS

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1
FORMAT = "rnntool-bundle"
KIND_NOUNS = {kind: e.noun for kind, e in CATALOG.items()}
KIND_LABELS = {kind: e.label for kind, e in CATALOG.items()}
# Every file a bundle of each kind may hold besides the manifest (the catalog's table): what
# publishing writes for it. A manifest listing anything else is not trusted.
KIND_FILES = {kind: e.files for kind, e in CATALOG.items()}
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
MAX_NAME_LEN = 100
# Files a filesystem may leave inside a directory that are not part of the bundle (NFS "silly
# renames" of deleted-but-open files).
IGNORED_PREFIXES = (".nfs",)


# -- names and paths ------------------------------------------------------------------------------
def validate_name(name: str, what: str = "model name") -> str:
    """Return ``name`` if it is a valid model/alias name, else raise InvalidName (exit 2)."""
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > MAX_NAME_LEN:
        hint = " (names are lowercase)" if isinstance(name, str) and NAME_RE.match(name.lower()) else ""
        raise InvalidName(
            f"invalid {what} {name!r}{hint}: use lowercase letters, digits, '.', '_' and '-', "
            f"starting with a letter or digit, at most {MAX_NAME_LEN} characters"
        )
    return name


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise UsageError(f"unknown bundle kind {kind!r}; choose one of {', '.join(KINDS)}")
    return kind


def kind_files_text(kind: str) -> str:
    """'tokenizer bundles hold tokenizer.model only' (for messages about files a kind never holds)."""
    return f"{KIND_NOUNS[kind]} bundles hold {', '.join(KIND_FILES[kind])} only"


def foreign_files(kind: str, rels) -> list[str]:
    """The files in ``rels`` that a bundle of ``kind`` never holds, sorted."""
    return sorted(rel for rel in rels if rel not in KIND_FILES[kind])


def check_relpath(rel: str) -> str:
    """A file name from a manifest: relative, POSIX, no '..', nothing that could escape the bundle."""
    p = PurePosixPath(rel) if isinstance(rel, str) else None
    if (
        p is None
        or not rel
        or "\\" in rel
        or "\x00" in rel
        or p.is_absolute()
        or any(part in ("", ".", "..") for part in rel.split("/"))
    ):
        raise CorruptBundle(f"manifest lists an unsafe file name {rel!r}; the bundle cannot be trusted")
    return rel


def list_files(root: Path) -> list[str]:
    """Relative POSIX paths of every regular file under ``root`` (sorted), except the manifest."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            full = Path(dirpath) / fn
            rel = full.relative_to(root).as_posix()
            if rel == MANIFEST or fn.startswith(IGNORED_PREFIXES):
                continue
            st = full.lstat()
            if not stat.S_ISREG(st.st_mode):
                raise RegistryError(f"{full}: bundles hold regular files only (no links or devices)")
            out.append(rel)
        for dn in dirnames:
            if (Path(dirpath) / dn).is_symlink():
                raise RegistryError(f"{Path(dirpath) / dn}: bundles hold regular files only (no links)")
    return out

# -- manifests ------------------------------------------------------------------------------------
def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def manifest_digest(manifest: dict) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in manifest.items() if k != "manifest_sha256"})).hexdigest()

def read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CorruptBundle(f"{path}: missing; {root} is not an rnntool bundle") from None
    except OSError as e:
        raise CorruptBundle(f"{path}: cannot read ({e.strerror})") from None
    try:
        m = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CorruptBundle(f"{path}: not valid JSON (corrupt or truncated); remove or re-create the bundle") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT or not isinstance(m.get("files"), dict):
        raise CorruptBundle(f"{path}: not an rnntool bundle manifest")
    if not isinstance(m.get("schema_version"), int) or m["schema_version"] > SCHEMA_VERSION:
        raise CorruptBundle(
            f"{path}: manifest schema {m.get('schema_version')!r} is newer than this rnntool "
            f"understands ({SCHEMA_VERSION}); upgrade rnntool"
        )
    if m.get("kind") not in KINDS or not isinstance(m.get("name"), str):
        raise CorruptBundle(f"{path}: manifest has no valid kind/name")
    for rel, entry in m["files"].items():
        check_relpath(rel)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or not isinstance(
            entry.get("bytes"), int
        ):
            raise CorruptBundle(f"{path}: bad entry for {rel!r}")
    return m


# -- bundles --------------------------------------------------------------------------------------
class Bundle:
    """A bundle directory and its manifest. ``version`` is None outside the registry (``-o DIR``)."""

    def __init__(self, path: Path, manifest: dict) -> None:
        self.path = Path(path)
        self.manifest = manifest

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Bundle":
        """Read the manifest (no checksums; see ``verify``). CorruptBundle if there is none."""
        p = Path(path).expanduser()
        return cls(p, read_manifest(p))

    # -- manifest fields ------------------------------------------------------------------------
    name = property(lambda self: self.manifest["name"])
    kind = property(lambda self: self.manifest["kind"])
    version = property(lambda self: self.manifest.get("version"))
    config = property(lambda self: self.manifest.get("config") or {})
    metrics = property(lambda self: self.manifest.get("metrics") or {})
    parents = property(lambda self: self.manifest.get("parents") or {})
    data = property(lambda self: self.manifest.get("data") or [])
    created = property(lambda self: self.manifest.get("created"))
    files = property(lambda self: self.manifest["files"])

    @property
    def ref(self) -> str:
        """``name@3`` for a registry version, the directory for a bundle outside the registry."""
        return f"{self.name}@{self.version}" if self.version is not None else str(self.path)

    @property
    def data_size(self) -> dict:
        return {
            "files": len(self.data),
            "bytes": sum(int(d.get("bytes") or 0) for d in self.data),
            "lines": sum(int(d.get("lines") or 0) for d in self.data),
        }

    @property
    def size_bytes(self) -> int:
        return sum(int(e["bytes"]) for e in self.files.values())

    def has_file(self, rel: str) -> bool:
        return rel in self.files

    def copy_files(self, dest: Path, skip: tuple[str, ...] = ()) -> None:
        """Copy every file the manifest lists, but ``skip``, into ``dest`` (a staging directory: a derived
        version such as an average or a model with a new lexical table)."""
        import shutil

        for rel in self.files:
            if rel not in skip:
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.file(rel), dest / rel)

    def file(self, rel: str) -> Path:
        """The path of a file the manifest lists (RegistryError naming what exists otherwise)."""
        if rel not in self.files:
            have = ", ".join(sorted(self.files)) or "no files"
            raise RegistryError(f"{self.ref} ({self.kind}) has no file {rel!r} (it has: {have})")
        return self.path / check_relpath(rel)

    # -- integrity --------------------------------------------------------------------------------
    def problems(self) -> list[tuple[str, str]]:
        """Every mismatch as ``(file, reason)``; empty when the bundle is intact."""
        out: list[tuple[str, str]] = []
        if self.manifest.get("manifest_sha256") != manifest_digest(self.manifest):
            out.append((MANIFEST, "manifest checksum mismatch (edited or corrupt)"))
        foreign = foreign_files(self.kind, self.files)
        out += [(rel, kind_files_text(self.kind)) for rel in foreign]
        for rel, entry in sorted(self.files.items()):
            if rel in foreign:
                continue
            p = self.path / check_relpath(rel)
            try:
                st = p.lstat()
            except FileNotFoundError:
                out.append((rel, "missing"))
                continue
            if not stat.S_ISREG(st.st_mode):
                out.append((rel, "not a regular file"))
                continue
            if st.st_size != entry["bytes"]:
                how = "truncated" if st.st_size < entry["bytes"] else "grown"
                out.append((rel, f"{how}: {st.st_size} bytes, the manifest says {entry['bytes']}"))
                continue
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            if h.hexdigest() != entry["sha256"]:
                out.append((rel, "sha256 mismatch (corrupt)"))
        try:
            on_disk = list_files(self.path)
        except RegistryError as e:
            out.append(("", str(e)))
            on_disk = []
        for rel in on_disk:
            if rel not in self.files and not rel.startswith(f".{MANIFEST}"):
                out.append((rel, "not listed in the manifest"))
        return out

    def verify(self) -> "Bundle":
        """Check every file against the manifest; CorruptBundle naming the (first) bad file."""
        bad = self.problems()
        if bad:
            raise corrupt_error(self.ref, self.path, bad)
        return self

    def summary(self) -> dict:
        """What `models list --json` shows for one version."""
        return {
            "ref": self.ref,
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "created": self.created,
            "path": str(self.path),
            "metrics": self.metrics,
            "parents": self.parents,
            "data": self.data_size,
            "bytes": self.size_bytes,
        }

    def __repr__(self) -> str:
        return f"Bundle({self.ref!r}, kind={self.kind!r}, path={str(self.path)!r})"


def corrupt_error(ref: str, path: Path, bad: list[tuple[str, str]]) -> CorruptBundle:
    rel, reason = bad[0]
    more = f" (and {len(bad) - 1} more problem{'s' if len(bad) > 2 else ''})" if len(bad) > 1 else ""
    where = path / rel if rel else path
    return CorruptBundle(
        f"bundle {ref} is corrupt: {where}: {reason}{more}; re-create it, or remove it with 'rnntool models rm'"
    )



__all__ = [
    "KINDS",
    "KIND_FILES",
    "KIND_LABELS",
    "KIND_NOUNS",
    "MANIFEST",
    "NAME_RE",
    "Bundle",
    "check_kind",
    "check_relpath",
    "corrupt_error",
    "foreign_files",
    "kind_files_text",
    "list_files",
    "manifest_digest",
    "read_manifest",
    "validate_name",
]
