"""The model registry: a plain directory of immutable, versioned bundles.

    reg = Registry.open()                       # --registry > $RNNTOOL_HOME > user data dir
    with reg.staging() as tmp:                  # on the registry's filesystem
        (tmp / "model.safetensors").write_bytes(...)
        b = reg.publish(tmp, name="shakespeare", kind="lm", config=cfg, metrics=m, data=[...])
    reg.load("shakespeare@prod", kind="lm")     # resolve + kind check + verify checksums

Layout under ROOT (any directory, a shared/NFS mount included)::

    models/<name>/<version>/        a bundle (manifest.json written last; see bundle.py)
    models/<name>/aliases/<alias>   a file holding a version number (aliases move)
    models/<name>/.last-version     highest version ever claimed (numbers are never reused)
    locks/<name>@publish.lock       claims version numbers, guards alias/rm/gc
    locks/<name>@train.lock         one training run per name
    .staging/<host>-<pid>-<rand>/   a publish (or removal) in progress, with its .lock beside it

Reading and publishing are here; aliases, rm, gc and verify in registry_admin.py; staging
directories in staging.py; export/import in bundle_archive.py; the bundle format in bundle.py.

Publishing: files are staged in ``.staging``, checksummed and fsync'ed; then, under the name's
publish lock, the next version number is claimed, the manifest written and the staging directory
renamed into place in one step. Readers see a version completely or not at all; a killed
publisher leaves only a staging directory, removed by the next publish or ``gc`` once its lock is
free (the kernel drops the lock of a dead process). Versions are never overwritten.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from rnntool.bundle import KIND_LABELS, KINDS, MANIFEST, NAME_RE, Bundle, check_kind, validate_name
from rnntool.bundle_write import (
    build_manifest,
    checksum_files,
    finalize_manifest,
    fix_permissions,
    move_contents,
    write_bundle,
    write_manifest,
)
from rnntool.errors import CorruptBundle, InvalidName, ModelNotFound, RegistryError, UsageError, WrongKind
from rnntool.locking import FileLock
from rnntool.registry_admin import RESERVED_ALIASES, RegistryAdmin, VerifyResult, raise_for_results
from rnntool.staging import clean_staging, is_live_staging, staging_area
from rnntool.textio import atomic_write_text, fsync_dir

ENV_HOME = "RNNTOOL_HOME"
VERSION_RE = re.compile(r"[1-9][0-9]*\Z")

# Test hook: called as _publish_hook(stage_name, path) at "staged", "claimed" and "published".
_publish_hook = None


def _hook(stage: str, path: Path) -> None:
    if _publish_hook is not None:
        _publish_hook(stage, path)


@dataclass(frozen=True)
class ModelRef:
    """``NAME`` (latest), ``NAME@3`` (a version) or ``NAME@prod`` (an alias)."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> "ModelRef":
        name, sep, tag = str(text).partition("@")
        validate_name(name)
        if not sep or tag == "latest":
            return cls(name)
        if tag.isdigit():
            if not VERSION_RE.match(tag):
                raise InvalidName(f"invalid version in {text!r}: versions are 1, 2, 3, ...")
            return cls(name, version=int(tag))
        return cls(name, alias=validate_name(tag, "alias"))

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


def _looks_like_path(text: str) -> bool:
    return "/" in text or os.sep in text or text.startswith(("~", "."))


class Registry(RegistryAdmin):
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser().absolute()
        self.models_dir = self.root / "models"
        self.locks_dir = self.root / "locks"
        self.staging_dir = self.root / ".staging"

    @classmethod
    def open(cls, root: str | os.PathLike | None = None) -> "Registry":
        """``root`` (``--registry``) > ``$RNNTOOL_HOME`` > the platform's user data directory."""
        if root in (None, ""):
            root = os.environ.get(ENV_HOME) or None
        if root is None:
            from platformdirs import user_data_dir

            root = user_data_dir("rnntool", appauthor=False)
        reg = cls(root)
        if reg.root.exists() and not reg.root.is_dir():
            raise RegistryError(f"registry {reg.root} is not a directory; pass --registry DIR or set ${ENV_HOME}")
        return reg

    def __repr__(self) -> str:
        return f"Registry({str(self.root)!r})"

    # -- locks ----------------------------------------------------------------------------------
    def training_lock(self, name: str, wait: bool | float = False, *, hint: str | None = None) -> FileLock:
        """``with reg.training_lock(name):`` one training run per name (LockHeld, exit 75, otherwise).

        ``wait=True`` blocks until the lock is free, ``wait=<seconds>`` at most that long. ``hint``
        replaces the "what to do next" part of the LockHeld message (e.g. mention a --wait flag).
        """
        validate_name(name)
        return FileLock(
            self.locks_dir / f"{name}@train.lock",
            what=f"a training run for '{name}'",
            hint=hint or "wait for it to finish (or stop it), or train under another name",
        ).acquire(wait)

    def _name_lock(self, name: str) -> FileLock:
        return FileLock(self.locks_dir / f"{name}@publish.lock", what=f"a registry update of '{name}'").acquire(
            wait=True
        )

    # -- reading --------------------------------------------------------------------------------
    def model_dir(self, name: str) -> Path:
        return self.models_dir / validate_name(name)

    def _version_dirs(self, name: str) -> list[tuple[int, Path]]:
        d = self.model_dir(name)
        try:
            entries = list(d.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        out = [(int(p.name), p) for p in entries if VERSION_RE.match(p.name) and p.is_dir()]
        return sorted(out)

    def _open_version(self, name: str, version: int, path: Path | None = None) -> Bundle:
        """The bundle at models/name/version; CorruptBundle if its manifest is bad or misplaced."""
        path = path or self.model_dir(name) / str(version)
        b = Bundle.open(path)
        if b.name != name or b.version != version:
            raise CorruptBundle(
                f"{path / MANIFEST}: says {b.name}@{b.version} but lives at {name}@{version}; "
                "bundles cannot be moved by hand (use 'rnntool models export/import')"
            )
        return b

    def versions(self, name: str) -> list[Bundle]:
        """Every published version of ``name``, oldest first (anything without a valid manifest is skipped)."""
        out = []
        for v, p in self._version_dirs(name):
            with contextlib.suppress(CorruptBundle):
                out.append(self._open_version(name, v, p))
        return out

    def names(self) -> list[str]:
        try:
            entries = sorted(p.name for p in self.models_dir.iterdir() if p.is_dir())
        except FileNotFoundError:
            return []
        return [n for n in entries if NAME_RE.match(n) and self.versions(n)]

    def list(self, name: str | None = None, kind: str | None = None) -> list[Bundle]:
        if kind is not None:
            check_kind(kind)
        if name is not None:
            validate_name(name)
            if not self.versions(name):
                raise self._not_found(name)
        names = [name] if name is not None else self.names()
        return [b for n in names for b in self.versions(n) if kind is None or b.kind == kind]

    def latest(self, name: str) -> Bundle | None:
        vs = self.versions(name)
        return vs[-1] if vs else None

    def aliases(self, name: str) -> dict[str, int]:
        """``{alias: version}`` for ``name`` (unreadable alias files are skipped; verify reports them)."""
        d = self.model_dir(name) / "aliases"
        out: dict[str, int] = {}
        try:
            entries = sorted(d.iterdir())
        except FileNotFoundError:
            return out
        for p in entries:
            with contextlib.suppress(OSError, ValueError, InvalidName):
                validate_name(p.name, "alias")
                text = p.read_text(encoding="utf-8").strip()
                if VERSION_RE.match(text):
                    out[p.name] = int(text)
        return out

    def aliases_by_version(self, name: str) -> dict[int, list[str]]:
        """``{version: [alias, ...]}`` for ``name``, from one read of its aliases."""
        out: dict[int, list[str]] = {}
        for alias, version in self.aliases(name).items():
            out.setdefault(version, []).append(alias)
        return out

    def aliases_of(self, bundle: Bundle) -> list[str]:
        if bundle.version is None:
            return []
        return self.aliases_by_version(bundle.name).get(bundle.version, [])

    def _not_found(self, name: str) -> ModelNotFound:
        names = self.names()
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        if close:
            hint = f"did you mean '{close[0]}'? (see 'rnntool models list')"
        elif names:
            hint = "see 'rnntool models list'"
        else:
            hint = "the registry is empty; train or import a model first (see 'rnntool models list')"
        return ModelNotFound(f"no model '{name}' in {self.root}; {hint}")

    def _resolve_ref(self, ref: ModelRef) -> Bundle:
        vs = self._version_dirs(ref.name)
        if not vs:
            raise self._not_found(ref.name)
        version = ref.version
        if ref.alias is not None:
            aliases = self.aliases(ref.name)
            if ref.alias not in aliases:
                have = ", ".join(f"@{a}" for a in aliases) or "none"
                raise ModelNotFound(
                    f"model '{ref.name}' has no alias '{ref.alias}' (aliases: {have}); "
                    f"set one with 'rnntool models alias {ref.name}@N {ref.alias}'"
                )
            version = aliases[ref.alias]
        if version is None:
            b = self.latest(ref.name)
            if b is None:
                raise self._not_found(ref.name)
            return b
        path = self.model_dir(ref.name) / str(version)
        if not (path / MANIFEST).is_file():
            have = ", ".join(str(b.version) for b in self.versions(ref.name)) or "none"
            via = f" (alias '{ref.alias}' points to it)" if ref.alias else ""
            raise ModelNotFound(
                f"model '{ref.name}' has no version {version}{via}; versions: {have} "
                f"(see 'rnntool models show {ref.name}')"
            )
        return self._open_version(ref.name, version, path)

    def resolve(self, ref: "str | os.PathLike | ModelRef | Bundle") -> Bundle:
        """A registry reference or a bundle directory -> Bundle (checksums are not verified)."""
        if isinstance(ref, Bundle):
            return ref
        if isinstance(ref, ModelRef):
            return self._resolve_ref(ref)
        text = os.fspath(ref)
        if isinstance(ref, os.PathLike) or _looks_like_path(text):
            return self._resolve_path(text)
        try:
            parsed = ModelRef.parse(text)
        except InvalidName:
            if Path(text).is_dir():
                return self._resolve_path(text)
            raise
        try:
            return self._resolve_ref(parsed)
        except ModelNotFound:
            if parsed.version is None and parsed.alias is None and (Path(text) / MANIFEST).is_file():
                return Bundle.open(text)
            raise

    @staticmethod
    def _resolve_path(text: str) -> Bundle:
        p = Path(text).expanduser()
        if (p / MANIFEST).is_file():
            return Bundle.open(p)
        if p.is_dir():
            raise ModelNotFound(f"{p} is a directory but not an rnntool bundle (no {MANIFEST})")
        if p.exists():
            raise ModelNotFound(f"{p} is a file; give a bundle directory or a registry name")
        raise InvalidName(
            f"invalid model reference {text!r}: no such bundle directory, and model names use only "
            "a-z, 0-9, '.', '_', '-' (see 'rnntool models list')"
        )

    def load(self, ref, kind: str | tuple[str, ...] | None = None) -> Bundle:
        """resolve + kind check (WrongKind) + checksum verification (CorruptBundle naming the file)."""
        b = self.resolve(ref)
        kinds = (kind,) if isinstance(kind, str) else kind
        if kinds and b.kind not in kinds:
            want = " or ".join(KIND_LABELS.get(k, k) for k in kinds)
            raise WrongKind(
                f"{b.ref} is {KIND_LABELS.get(b.kind, b.kind)}, not {want}; "
                f"see 'rnntool models list --kind {kinds[0]}'"
            )
        return b.verify()

    # -- staging and publishing -----------------------------------------------------------------
    def staging(self) -> contextlib.AbstractContextManager[Path]:
        """``with reg.staging() as tmp:`` an empty directory on the registry's filesystem, removed on exit."""
        return staging_area(self.staging_dir)

    def clean_staging(self) -> int:
        """Remove staging left by dead publishers (their lock is free); returns how many."""
        return clean_staging(self.staging_dir)

    def publish(
        self,
        src: str | os.PathLike,
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
        """Publish src's files as the next version of ``name`` (moved, or copied with copy=True)."""
        validate_name(name)
        check_kind(kind)
        src = Path(src)
        if not src.is_dir():
            raise RegistryError(f"{src}: not a directory of files to publish")
        if (src / MANIFEST).exists():
            raise RegistryError(f"{src / MANIFEST}: the manifest is written by rnntool; remove it from the staged files")
        with contextlib.ExitStack() as stack:
            if is_live_staging(src) and src.parent == self.staging_dir and not copy:
                stage = src
            else:
                stage = stack.enter_context(self.staging())
                move_contents(src, stage, copy=copy)
            fix_permissions(stage)
            manifest = build_manifest(
                name=name, kind=kind, files=checksum_files(stage), config=config, metrics=metrics,
                data=data, parents=parents, extra=extra, command=command,
            )
            _hook("staged", stage)
            with self._name_lock(name):
                version = self._claim_version(name)
                manifest["version"] = version
                write_manifest(stage, finalize_manifest(manifest))
                _hook("claimed", stage)
                final = self.model_dir(name) / str(version)
                os.rename(stage, final)
                fsync_dir(final.parent)
                _hook("published", final)
        return self._open_version(name, version, final)

    def _claim_version(self, name: str) -> int:
        """Next version number (call under the name lock); recorded first so it is never reused."""
        d = self.model_dir(name)
        d.mkdir(parents=True, exist_ok=True)
        counter = d / ".last-version"
        try:
            last = int(counter.read_text(encoding="utf-8").strip() or 0)
        except (FileNotFoundError, ValueError):
            last = 0
        existing = max((v for v, _ in self._version_dirs(name)), default=0)
        version = max(last, existing) + 1
        while (d / str(version)).exists():  # a directory nobody should have made; never touch it
            version += 1
        atomic_write_text(counter, f"{version}\n")
        return version

    def _registry_ref(self, ref, what: str) -> ModelRef:
        text = str(ref)
        if _looks_like_path(text):
            raise UsageError(f"{what} works on registry models (NAME@VERSION), not on directories like {text!r}")
        return ref if isinstance(ref, ModelRef) else ModelRef.parse(text)

    # -- moving bundles between registries ------------------------------------------------------
    def export(self, ref, dest: str | os.PathLike) -> Path:
        from rnntool.bundle_archive import export_bundle

        return export_bundle(self.load(ref), Path(dest))

    def import_bundle(self, path: str | os.PathLike, *, name: str | None = None) -> Bundle:
        from rnntool.bundle_archive import import_bundle

        return import_bundle(self, Path(path), name=name)


__all__ = [
    "KINDS",
    "MANIFEST",
    "RESERVED_ALIASES",
    "Bundle",
    "ModelRef",
    "Registry",
    "VerifyResult",
    "raise_for_results",
    "write_bundle",
]
