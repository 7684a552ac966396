"""Registry maintenance: aliases, removal, gc and verification (mixed into ``Registry``).

Aliases move, versions never change (MLflow's rules): an alias is a file holding a version number,
rewritten atomically; a version is removed in one rename (into staging) and only then deleted, so
readers never see half a bundle. Everything that changes a model's versions or aliases runs under
that model's publish lock. A broken version (see BrokenVersion) can be removed like any other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rnntool.registry.bundle import NAME_RE, Bundle, validate_name
from rnntool.errors import CorruptBundle, InvalidName, ModelNotFound, RegistryError, UsageError
from rnntool.registry.run_gc import RunDir, collect_finished_runs
from rnntool.registry.safe_paths import write_text_atomic
from rnntool.textio import fsync_dir

RESERVED_ALIASES = ("latest",)


@dataclass(frozen=True)
class BrokenVersion:
    """A numbered entry of ``models/NAME/`` that is not a valid bundle: no or a bad manifest, a
    link, a file. Publishing renames complete bundles into place, so this is never a publish in
    progress but corruption, which is reported and never silently skipped."""

    name: str
    version: int
    path: Path
    reason: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def message(self) -> str:
        return f"{self.ref} is broken ({self.reason}); remove it with 'rnntool models rm {self.ref}'"


@dataclass
class VerifyResult:
    """One checked bundle; ``problems`` are one-line ``FILE: reason`` strings."""

    ref: str
    path: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


class RegistryAdmin:
    """Methods of ``Registry`` that change or check what is published (see store.py)."""

    # -- aliases, removal, gc -------------------------------------------------------------------
    def set_alias(self, ref, alias: str, *, only_from=...) -> Bundle | None:
        """Point ``alias`` at the version ``ref`` resolves to (moving it if it exists). With
        ``only_from`` (a version number, or None for "no such alias yet") the move happens only if the
        alias still points there, checked under the lock; returns None when it did not."""
        r = self._registry_ref(ref, "alias")
        validate_name(alias, "alias")
        if alias.isdigit():
            raise InvalidName(f"alias {alias!r} would read as a version number; use a name such as 'prod' or 'v{alias}'")
        if alias in RESERVED_ALIASES:
            raise InvalidName(f"'{alias}' is reserved (NAME@{alias} always means the newest version)")
        with self._name_lock(r.name):
            if only_from is not ... and self.aliases(r.name).get(alias) != only_from:
                return None
            b = self._resolve_ref(r)
            write_text_atomic(self.root, self.model_dir(r.name) / "aliases" / alias, f"{b.version}\n")
        return b

    def remove_alias(self, name: str, alias: str) -> int:
        """Delete an alias; returns the version it pointed to."""
        validate_name(name)
        validate_name(alias, "alias")
        with self._name_lock(name):
            aliases = self.aliases(name)
            if alias not in aliases:
                have = ", ".join(f"@{a}" for a in aliases) or "none"
                raise ModelNotFound(f"model '{name}' has no alias '{alias}' (aliases: {have})")
            os.unlink(self.model_dir(name) / "aliases" / alias)
            return aliases[alias]

    def _delete_dir(self, path: Path) -> None:
        """Make a version disappear in one rename (into staging), then delete its files."""
        with self.staging() as trash:
            os.rename(path, trash / "removed")
            fsync_dir(path.parent)

    def remove(self, ref, *, force: bool = False, all_versions: bool = False) -> list[Bundle | BrokenVersion]:
        """Delete one version (``NAME@N``/``NAME@ALIAS``, broken or not) or, with all_versions, every
        version of NAME."""
        r = self._registry_ref(ref, "rm")
        if r.version is None and r.alias is None and not all_versions:
            raise UsageError(
                f"give a version to remove ('rnntool models rm {r.name}@N'), or --all to remove every "
                f"version of '{r.name}'"
            )
        with self._name_lock(r.name):
            if all_versions and r.version is None and r.alias is None:
                good, broken = self._scan(r.name)
                targets = sorted([*good, *broken], key=lambda b: b.version)
                if not targets:
                    raise self._not_found(r.name)
            else:
                targets = [self._check_version(r.name, *self._entry(r))]
            aliases = self.aliases(r.name)
            doomed = {b.version for b in targets}
            aliased = sorted(f"{r.name}@{a} -> {v}" for a, v in aliases.items() if v in doomed)
            if aliased and not force:
                raise RegistryError(
                    f"refusing to remove an aliased version ({', '.join(aliased)}); move the alias "
                    f"('rnntool models alias {r.name}@N ALIAS'), remove it ('rnntool models alias --rm "
                    f"{r.name} ALIAS'), or pass --force"
                )
            for a, v in aliases.items():
                if v in doomed:
                    os.unlink(self.model_dir(r.name) / "aliases" / a)
            for b in targets:
                self._delete_dir(b.path)
        return targets

    def gc(self, name: str | None = None, keep: int = 3, *, dry_run: bool = False) -> list[Bundle]:
        """Remove all but the newest ``keep`` versions (aliased versions are always kept; broken
        ones are left for 'models rm', which the listing and verify point to)."""
        if keep < 0:
            raise UsageError("--keep must be 0 or more")
        names = [validate_name(name)] if name is not None else self.names()
        if name is not None and not self._version_dirs(name):
            raise self._not_found(name)
        removed: list[Bundle] = []
        for n in names:
            with self._name_lock(n):
                vs = self.versions(n)
                aliased = set(self.aliases(n).values())
                kept = {b.version for b in vs[max(0, len(vs) - keep):]}
                for b in vs:
                    if b.version not in kept and b.version not in aliased:
                        if not dry_run:
                            self._delete_dir(b.path)
                        removed.append(b)
        if not dry_run:
            self.clean_staging()
        return removed

    def gc_runs(self, older_than: float, *, dry_run: bool = False) -> list[RunDir]:
        """Remove the run directories under ``runs/`` of finished or abandoned training runs (see run_gc.py)."""
        return collect_finished_runs(self, older_than, dry_run=dry_run)

    # -- integrity --------------------------------------------------------------------------------
    def verify(self, ref=None) -> list[VerifyResult]:
        """Check checksums: every version of every model (no ref), of one model (a bare NAME), or one bundle."""
        if ref is None:
            try:
                names = sorted(p.name for p in self.models_dir.iterdir() if p.is_dir())
            except FileNotFoundError:
                names = []
            return [r for n in names if NAME_RE.match(n) for r in self._verify_model(n)]
        text = str(ref)
        if "@" not in text and NAME_RE.match(text) and self._version_dirs(text):
            return self._verify_model(text)
        try:
            b = self.resolve(ref)
        except CorruptBundle as e:
            return [VerifyResult(text, "", [str(e)])]
        result = _checked(b)
        if not result.ok and self.was_removed(b):
            raise self._removed(b.ref)
        return [result]

    def _verify_model(self, name: str) -> list[VerifyResult]:
        good, broken = self._scan(name)
        checked = [(b.version, _checked(b)) for b in good]
        checked = [(v, r) for v, r in checked if r.ok or os.path.lexists(r.path)]  # gone: removed meanwhile
        checked += [(b.version, VerifyResult(b.ref, str(b.path), [b.message()])) for b in broken]
        results = [r for _, r in sorted(checked, key=lambda vr: vr[0])]
        results += _mixed_kinds(self.model_dir(name), good)
        have = {v for v, _ in self._version_dirs(name)}
        for a, v in self.aliases(name).items():
            if v not in have:
                alias_file = self.model_dir(name) / "aliases" / a
                results.append(VerifyResult(f"{name}@{a}", str(alias_file), [
                    f"{alias_file}: alias points to version {v}, which does not exist; "
                    f"remove it with 'rnntool models alias --rm {name} {a}'"]))
        return results


def _mixed_kinds(model_dir: Path, versions: list[Bundle]) -> list[VerifyResult]:
    """A failed result when one name holds versions of several kinds (made before publish refused it)."""
    by_kind: dict[str, list[str]] = {}
    for b in versions:
        by_kind.setdefault(b.kind, []).append(f"@{b.version}")
    if len(by_kind) < 2:
        return []
    kinds = "; ".join(f"{kind}: {' '.join(vs)}" for kind, vs in sorted(by_kind.items()))
    return [VerifyResult(model_dir.name, str(model_dir), [
        f"{model_dir}: holds versions of several kinds ({kinds}); a name holds one kind of model: "
        f"export the odd ones, import them under another name ('rnntool models import --name'), "
        f"and remove them here ('rnntool models rm {model_dir.name}@N')"])]


def _checked(b: Bundle) -> VerifyResult:
    return VerifyResult(b.ref, str(b.path), [f"{b.path / rel if rel else b.path}: {why}" for rel, why in b.problems()])


def raise_for_results(results: list[VerifyResult]) -> None:
    """CorruptBundle (exit 1) naming the first bad file, if any result failed."""
    bad = [r for r in results if not r.ok]
    if bad:
        n = sum(len(r.problems) for r in bad)
        more = f" (and {n - 1} more problem{'s' if n > 2 else ''})" if n > 1 else ""
        raise CorruptBundle(
            f"{bad[0].ref} failed verification: {bad[0].problems[0]}{more}; re-create or re-import it, "
            "or remove it with 'rnntool models rm'"
        )
