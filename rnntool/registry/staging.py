"""Staging directories: where a publish (or a removal) happens before it becomes visible.

    with staging_area(root / ".staging") as tmp:   # .staging/<host>-<pid>-<rand>/ + its .lock
        ...                                         # write files, then rename tmp into place

Each staging directory has a lock file beside it, held by its owner for as long as it is in use.
A publisher killed with SIGKILL leaves its directory behind, but the kernel drops its lock, so
``clean_staging`` (run before every new staging directory and by ``models gc``) can tell leftovers
from work in progress without guessing from pids or ages. On a shared mount without working NFS
locks another host's lock would look free, so entries named after another host are only removed
once they are a day old.

``.staging`` lives in the registry root (its parent), which other people may write to: it must be
a real directory, lock files are never opened through links (locking.py), and a link somebody put
into it is never followed, only unlinked.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from rnntool.registry.locking import FileLock, held_by_this_process, try_lock
from rnntool.registry.safe_paths import check_dirs

STALE_FOREIGN_STAGING_SECONDS = 24 * 3600
_live: set[str] = set()  # staging directories this process is using now


def host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:64] or "host"


def is_live_staging(path: str | os.PathLike) -> bool:
    """True if ``path`` is a staging directory this process created and still holds."""
    return str(path) in _live


@contextlib.contextmanager
def staging_area(staging_dir: Path) -> Iterator[Path]:
    """An empty directory under ``staging_dir``, removed (with what is left in it) on exit."""
    clean_staging(staging_dir)
    token = f"{host_tag()}-{os.getpid()}-{secrets.token_hex(4)}"
    # wait: a clean-up elsewhere may hold our brand-new lock file for a moment before it unlinks it
    lock = FileLock(staging_dir / f"{token}.lock", what="staging", root=staging_dir.parent).acquire(wait=10.0)
    d = staging_dir / token
    try:
        d.mkdir()
        _live.add(str(d))
        yield d
    finally:
        _live.discard(str(d))
        shutil.rmtree(d, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.unlink(lock.path)
        lock.release()


def clean_staging(staging_dir: Path) -> int:
    """Remove staging left by dead owners (their lock is free); returns how many entries."""
    check_dirs(staging_dir.parent, staging_dir)
    try:
        entries = list(staging_dir.iterdir())
    except FileNotFoundError:
        return 0
    host, now, removed = host_tag(), time.time(), 0
    for p in [p for p in entries if p.is_symlink()]:  # never ours: unlinked, never followed
        with contextlib.suppress(OSError):
            p.unlink()
            removed += 1
    for p in [p for p in entries if not p.is_symlink()]:
        token = p.name[: -len(".lock")] if p.name.endswith(".lock") else p.name
        if p.name.endswith(".lock") and (os.path.lexists(staging_dir / token) or not os.path.lexists(p)):
            continue  # handled with its directory
        lock_path = staging_dir / f"{token}.lock"
        if held_by_this_process(lock_path):
            continue
        parts = token.rsplit("-", 2)
        with contextlib.suppress(OSError):
            if (len(parts) != 3 or parts[0] != host) and now - p.lstat().st_mtime < STALE_FOREIGN_STAGING_SECONDS:
                continue
        lock = try_lock(lock_path, root=staging_dir.parent)
        if lock is None:
            continue
        try:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p != lock_path:
                with contextlib.suppress(OSError):
                    p.unlink()
            with contextlib.suppress(OSError):
                os.unlink(lock_path)
            removed += 1
        finally:
            lock.release()
    return removed


__all__ = ["clean_staging", "host_tag", "is_live_staging", "staging_area"]
