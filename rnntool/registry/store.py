"""The model registry: a plain directory of immutable, versioned bundles.

    reg = Registry.open()                       # --registry > $RNNTOOL_HOME > user data dir
    with reg.staging() as tmp:                  # on the registry's filesystem
        (tmp / WEIGHTS_FILE).write_bytes(...)
        b = reg.publish(tmp, name="shakespeare", kind="lm", config=cfg, metrics=m, data=[...])
    reg.load("shakespeare@prod", kind="lm")     # resolve + kind check + verify checksums

Layout under ROOT (any directory, a shared/NFS mount included)::

    models/<name>/<version>/        a bundle (manifest.json written last; see bundle.py)
    models/<name>/aliases/<alias>   a file holding a version number (aliases move)
    models/<name>/.last-version     highest version ever claimed (numbers are never reused)
    locks/<name>@publish.lock       claims version numbers, guards alias/rm/gc
    locks/<name>@train.lock         one training run per name
    .staging/<host>-<pid>-<rand>/   a publish (or removal) in progress, with its .lock beside it

Reading and publishing are here; aliases, rm, gc and verify in admin.py; staging
directories in staging.py; export/import in archive.py; the bundle format in bundle.py;
cleaning ``runs/`` in run_gc.py.

Publishing: files are staged in ``.staging``, checksummed and fsync'ed; then, under the name's
publish lock, the next version number is claimed, the manifest written and the staging directory
renamed into place in one step. Readers see a version completely or not at all; a killed
publisher leaves only a staging directory, removed by the next publish or ``gc`` once its lock is
free (the kernel drops the lock of a dead process). Versions are never overwritten.

A numbered entry under ``models/NAME/`` without a valid manifest (or that is a link, not a
directory) is therefore corruption, never a publish in progress: it is reported, ``NAME`` refuses
to fall back to an older version past it, and ``models rm NAME@N`` removes it. One name holds one
kind of model. The registry may be shared by a group: nothing it writes is opened through a link
(safe_paths.py). Waiting for a name's publish lock is reported through ``on_wait`` after a second
and given up after ``$RNNTOOL_LOCK_TIMEOUT`` seconds (LockHeld, exit 75).
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rnntool.registry.bundle import KIND_LABELS, KIND_NOUNS, KINDS, MANIFEST, NAME_RE, Bundle, check_kind, validate_name
from rnntool.registry.bundle_write import (
    build_manifest,
    check_staged,
    checksum_files,
    finalize_manifest,
    fix_permissions,
    move_contents,
    write_bundle,
    write_manifest,
)
from rnntool.errors import CorruptBundle, InvalidName, ModelNotFound, RegistryError, UsageError, WrongKind
from rnntool.registry.locking import FileLock
from rnntool.registry.admin import RESERVED_ALIASES, BrokenVersion, RegistryAdmin, VerifyResult, raise_for_results
from rnntool.registry.safe_paths import check_dirs, check_regular, ensure_dirs, what_is, write_text_atomic
from rnntool.registry.staging import clean_staging, is_live_staging, staging_area
from rnntool.textio import fsync_dir

ENV_HOME = "RNNTOOL_HOME"
ENV_LOCK_TIMEOUT = "RNNTOOL_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 120.0  # seconds a command waits for a name's publish lock
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


def lock_timeout_from_env() -> float:
    """Seconds to wait for a publish lock: ``$RNNTOOL_LOCK_TIMEOUT`` (UsageError if not a number), else 120."""
    text = os.environ.get(ENV_LOCK_TIMEOUT, "").strip()
    if not text:
        return DEFAULT_LOCK_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise UsageError(f"${ENV_LOCK_TIMEOUT} must be a number of seconds to wait for a registry lock "
                         f"(e.g. {DEFAULT_LOCK_TIMEOUT:g}), not {text!r}")
    return seconds


class Registry(RegistryAdmin):
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser().absolute()
        self.models_dir = self.root / "models"
        self.locks_dir = self.root / "locks"
        self.staging_dir = self.root / ".staging"
        self.runs_dir = self.root / "runs"
        # ``on_wait(message)``: told whom we wait for when a lock is busy for a second (the CLI
        # shows it); ``lock_timeout``: seconds before giving up (None: $RNNTOOL_LOCK_TIMEOUT or 120).
        self.on_wait: Callable[[str], None] | None = None
        self.lock_timeout: float | None = None

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
            root=self.root,
        ).acquire(wait)

    def _name_lock(self, name: str) -> FileLock:
        """The lock under which ``models/name/`` changes, once its directories are known to be real."""
        timeout = self.lock_timeout if self.lock_timeout is not None else lock_timeout_from_env()
        lock = FileLock(
            self.locks_dir / f"{name}@publish.lock",
            what=f"a registry update of '{name}'",
            hint=f"gave up after {timeout:g}s; try again later, or set {ENV_LOCK_TIMEOUT} (seconds) to wait longer",
            root=self.root,
        ).acquire(wait=timeout, on_wait=self.on_wait)
        try:
            check_dirs(self.root, self.model_dir(name) / "aliases")
        except BaseException:
            lock.release()
            raise
        return lock

    # -- reading --------------------------------------------------------------------------------
    def model_dir(self, name: str) -> Path:
        return self.models_dir / validate_name(name)

    def _version_dirs(self, name: str) -> list[tuple[int, Path]]:
        """Every numbered entry of models/name/ (directories or not: anything else there is broken)."""
        d = self.model_dir(name)
        try:
            entries = list(d.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted((int(p.name), p) for p in entries if VERSION_RE.match(p.name))

    def _check_version(self, name: str, version: int, path: Path | None = None) -> Bundle | BrokenVersion:
        """The bundle at models/name/version, or what is wrong with it; ModelNotFound if it was
        removed (renamed away by gc or rm) while we looked."""
        path = path or self.model_dir(name) / str(version)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise self._removed(f"{name}@{version}") from None
        if not stat.S_ISDIR(st.st_mode):
            return BrokenVersion(name, version, path, f"{path} is {what_is(st.st_mode)}, not a version directory")
        try:
            b = Bundle.open(path)
        except CorruptBundle as e:
            if not os.path.lexists(path):
                raise self._removed(f"{name}@{version}") from None
            return BrokenVersion(name, version, path, str(e))
        if b.name != name or b.version != version:
            return BrokenVersion(name, version, path, (
                f"{path / MANIFEST}: says {b.name}@{b.version} but lives at {name}@{version}; "
                "bundles cannot be moved by hand (use 'rnntool models export/import')"))
        return b

    def _open_version(self, name: str, version: int, path: Path | None = None) -> Bundle:
        """The bundle at models/name/version; CorruptBundle if it is broken (see BrokenVersion)."""
        b = self._check_version(name, version, path)
        if isinstance(b, BrokenVersion):
            raise CorruptBundle(b.message())
        return b

    @staticmethod
    def _removed(ref: str) -> ModelNotFound:
        return ModelNotFound(f"{ref} was removed (by 'models gc' or 'models rm') while it was being read; run again")

    def _scan(self, name: str) -> tuple[list[Bundle], list[BrokenVersion]]:
        """The valid versions of ``name`` and the broken ones, oldest first."""
        good: list[Bundle] = []
        broken: list[BrokenVersion] = []
        for v, p in self._version_dirs(name):
            with contextlib.suppress(ModelNotFound):  # removed while we looked: not there
                b = self._check_version(name, v, p)
                (broken if isinstance(b, BrokenVersion) else good).append(b)
        return good, broken

    def versions(self, name: str) -> list[Bundle]:
        """Every valid version of ``name``, oldest first (``broken_versions`` lists the others)."""
        return self._scan(name)[0]

    def broken_versions(self, name: str | None = None) -> list[BrokenVersion]:
        """Numbered entries of ``name`` (or of every model) that are not valid bundles."""
        names = [name] if name is not None else self.names()
        return [b for n in names for b in self._scan(n)[1]]

    def names(self) -> list[str]:
        """Every model name with at least one version (valid or broken)."""
        try:
            entries = sorted(p.name for p in self.models_dir.iterdir() if p.is_dir())
        except FileNotFoundError:
            return []
        return [n for n in entries if NAME_RE.match(n) and self._version_dirs(n)]

    def list(self, name: str | None = None, kind: str | None = None) -> list[Bundle]:
        if kind is not None:
            check_kind(kind)
        if name is not None:
            validate_name(name)
            if not self._version_dirs(name):
                raise self._not_found(name)
        names = [name] if name is not None else self.names()
        return [b for n in names for b in self.versions(n) if kind is None or b.kind == kind]

    def latest(self, name: str) -> Bundle | None:
        """The newest version of ``name`` (None if it has none); CorruptBundle if a newer one is
        broken: "latest" never silently rolls back past a damaged version."""
        good, broken = self._scan(name)
        newest = good[-1] if good else None
        newer = [b for b in broken if newest is None or b.version > newest.version]
        if newer:
            raise CorruptBundle(
                f"{newer[-1].message()}; until then '{name}' cannot mean its newest version "
                f"(name an older one as {name}@N)"
            )
        return newest

    def check_name_kind(self, name: str, kind: str) -> None:
        """RegistryError unless ``name`` is new or holds models of ``kind`` (a name holds one kind).
        Publishing checks it under the name's lock; call it before training to fail fast."""
        validate_name(name)
        check_kind(kind)
        other = sorted({b.kind for b in self.versions(name)} - {kind})
        if other:
            raise RegistryError(
                f"'{name}' holds {KIND_NOUNS[other[0]]}s; a name holds one kind of model; choose another --name"
            )

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
                if p.is_symlink():  # never written by rnntool; set_alias refuses it, naming it
                    continue
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
        if ref.version is None and ref.alias is None:
            b = self.latest(ref.name)
            if b is None:
                raise self._not_found(ref.name)
            return b
        return self._open_version(ref.name, *self._entry(ref))

    def _entry(self, ref: ModelRef) -> tuple[int, Path]:
        """The version number and directory ``NAME@N``/``NAME@ALIAS`` names (ModelNotFound if none)."""
        if not self._version_dirs(ref.name):
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
        path = self.model_dir(ref.name) / str(version)
        if not os.path.lexists(path):
            have = ", ".join(str(v) for v, _ in self._version_dirs(ref.name)) or "none"
            via = f" (alias '{ref.alias}' points to it)" if ref.alias else ""
            raise ModelNotFound(
                f"model '{ref.name}' has no version {version}{via}; versions: {have} "
                f"(see 'rnntool models show {ref.name}')"
            )
        return version, path

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
        try:
            return b.verify()
        except CorruptBundle:
            if self.was_removed(b):
                raise self._removed(b.ref) from None
            raise

    def was_removed(self, b: Bundle) -> bool:
        """True if ``b`` is a version of this registry that is gone now (gc or rm renamed it away)."""
        return b.path.parent.parent == self.models_dir and not os.path.lexists(b.path)

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
        src = check_staged(src, name, kind)
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
                self.check_name_kind(name, kind)
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
        d = ensure_dirs(self.root, self.model_dir(name))
        counter = d / ".last-version"
        check_regular(counter)
        try:
            last = int(counter.read_text(encoding="utf-8").strip() or 0)
        except (FileNotFoundError, ValueError):
            last = 0
        existing = max((v for v, _ in self._version_dirs(name)), default=0)
        version = max(last, existing) + 1
        while os.path.lexists(d / str(version)):  # an entry nobody should have made; never touch it
            version += 1
        write_text_atomic(self.root, counter, f"{version}\n")
        return version

    def _registry_ref(self, ref, what: str) -> ModelRef:
        text = str(ref)
        if _looks_like_path(text):
            raise UsageError(f"{what} works on registry models (NAME@VERSION), not on directories like {text!r}")
        return ref if isinstance(ref, ModelRef) else ModelRef.parse(text)

    # -- moving bundles between registries ------------------------------------------------------
    def export(self, ref, dest: str | os.PathLike) -> Path:
        from rnntool.registry.archive import export_bundle

        return export_bundle(self.load(ref), Path(dest))

    def import_bundle(self, path: str | os.PathLike, *, name: str | None = None) -> Bundle:
        from rnntool.registry.archive import import_bundle

        return import_bundle(self, Path(path), name=name)


__all__ = [
    "BrokenVersion",
    "DEFAULT_LOCK_TIMEOUT",
    "ENV_LOCK_TIMEOUT",
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
