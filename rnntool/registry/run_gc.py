"""Cleaning up ``ROOT/runs/``: the run directories of finished or abandoned training runs.

    removed = reg.gc_runs(older_than=7 * 86400, dry_run=True)   # `models gc --runs [-n]`

A training run works in ``ROOT/runs/<label>-<time>-<random>/`` and holds the FileLock ``run.lock``
in it for as long as it runs (the kernel drops it when the process dies). A run directory is
removed when nobody holds that lock (a missing lock file counts as free) and

- the run published its model (it wrote ``published.json``), or
- it holds no checkpoint (there is nothing to ``--resume`` from), or
- nothing in it changed for ``older_than`` seconds (an abandoned run's checkpoint).

Like a version, it is renamed into staging under its lock and only then deleted. The two file
names are training/driver.py's (``RUN_LOCK_FILE``, ``PUBLISHED_FILE``).
"""

from __future__ import annotations

import datetime as _dt
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rnntool.errors import LockHeld, RegistryError
from rnntool.registry.locking import FileLock
from rnntool.registry.safe_paths import check_dirs

if TYPE_CHECKING:
    from rnntool.registry.store import Registry

DEFAULT_RUNS_OLDER_THAN = "7d"


@dataclass(frozen=True)
class RunDir:
    """A run directory ``gc --runs`` removed (or would remove), its size and why."""

    path: Path
    bytes: int
    reason: str


FRESH_RUN_SECONDS = 3600  # a run directory with no checkpoint is "abandoned" only after this long

def _size_and_newest(d: Path, skip: str, empty_mtime: float) -> tuple[int, float]:
    """Bytes of the regular files under ``d`` and the newest modification time of anything in it
    but the top-level ``skip`` (the run lock, which gc itself touches; ``empty_mtime`` when nothing else
    is there); links are not followed."""
    skipped = os.path.join(d, skip)
    total, newest = 0, None
    for dirpath, dirnames, filenames in os.walk(d):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
            if p != skipped:
                newest = st.st_mtime if newest is None else max(newest, st.st_mtime)
    return total, empty_mtime if newest is None else newest


def _reason(d: Path, published: bool, newest: float, older_than: float) -> str | None:
    """Why the (unlocked) run directory ``d`` can go, or None to keep it."""
    from rnntool.training.checkpoint import has_checkpoint  # imports torch: only on this command's path

    if published:
        return "published"
    if not has_checkpoint(d) and time.time() - newest > FRESH_RUN_SECONDS:
        return "no checkpoint"  # (a brand-new one may not have taken its lock yet: spared for a while)
    if time.time() - newest > older_than:
        when = _dt.datetime.fromtimestamp(newest).astimezone().strftime("%Y-%m-%d %H:%M")
        return f"untouched since {when}"
    return None


def _lock_if_free(reg: "Registry", lock_path: Path, dry_run: bool) -> FileLock | None | bool:
    """The run's lock, taken; False if a live run holds it; None when a dry run finds no lock
    file (free, and nothing is created)."""
    if dry_run and not os.path.lexists(lock_path):
        return None
    try:
        return FileLock(lock_path, what=f"the training run in {lock_path.parent}", root=reg.root).acquire(wait=False)
    except LockHeld:
        return False


def collect_finished_runs(reg: "Registry", older_than: float, *, dry_run: bool = False) -> list[RunDir]:
    """Remove (or with ``dry_run`` only list) the run directories no live run uses and none needs."""
    from rnntool.training.driver import PUBLISHED_FILE, RUN_LOCK_FILE  # the names training gives them

    check_dirs(reg.root, reg.runs_dir)
    try:
        entries = sorted(reg.runs_dir.iterdir())
    except FileNotFoundError:
        return []
    out: list[RunDir] = []
    for d in entries:
        if d.is_symlink() or not d.is_dir():
            continue  # not a run directory rnntool made
        newest_before_locking = os.lstat(d).st_mtime  # taking the lock would touch the directory
        try:
            lock = _lock_if_free(reg, d / RUN_LOCK_FILE, dry_run)
        except (PermissionError, RegistryError):
            continue  # another user's run directory we may not touch: theirs to clean
        if lock is False:
            continue
        try:
            size, newest = _size_and_newest(d, RUN_LOCK_FILE, newest_before_locking)
            reason = _reason(d, os.path.lexists(d / PUBLISHED_FILE), newest, older_than)
            if reason is None:
                continue
            if not dry_run:
                reg._delete_dir(d)
            out.append(RunDir(d, size, reason))
        except PermissionError:
            continue  # unreadable to this user: leave it
        finally:
            if lock:
                lock.release()
    return out


__all__ = ["DEFAULT_RUNS_OLDER_THAN", "RunDir", "collect_finished_runs"]
