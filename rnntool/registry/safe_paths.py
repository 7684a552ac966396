"""Writing into a shared registry without following links somebody else planted there.

    fd = open_regular(root / "locks" / "x@publish.lock", os.O_RDWR | os.O_CREAT, root=root)
    write_text_atomic(root, root / "models" / "x" / "aliases" / "prod", "3\\n")

A group-writable registry lets every member create entries in ``locks/``, ``.staging/`` or
``models/NAME/``. A symbolic link there (``locks/x@publish.lock -> ~victim/.bashrc``) must never make
another member's process write through it. So every file the registry writes is opened with
``O_NOFOLLOW`` and checked to be a regular file, and every directory between the registry root and
it must be a real directory (the root itself may be a link the user made). Anything else is a
RegistryError naming the path, what it is, and that it should be removed.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from rnntool.errors import RegistryError
from rnntool.textio import atomic_write_text

_KINDS = [
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
]


def what_is(mode: int) -> str:
    """'a symbolic link', 'a directory', ... for an ``lstat`` mode."""
    return next((what for test, what in _KINDS if test(mode)), "a device file")


def not_ours(path: Path, what: str, expected: str = "") -> RegistryError:
    expected = f", not {expected}" if expected else ""
    return RegistryError(
        f"{path} is {what}{expected}; rnntool writes only its own files and directories in a registry, "
        f"so something else put it there: remove it ('rm {path}') and run again"
    )


def _components(root: Path, d: Path) -> list[Path]:
    """The directories from just below ``root`` down to ``d`` ([] if ``d`` is not under ``root``)."""
    try:
        rel = Path(os.path.abspath(d)).relative_to(os.path.abspath(root))
    except ValueError:
        return []
    out, cur = [], root
    for part in rel.parts:
        cur = cur / part
        out.append(cur)
    return out


def check_dirs(root: Path, d: Path) -> None:
    """Every existing directory between ``root`` and ``d`` (inclusive) is a real directory."""
    for cur in _components(root, d):
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(st.st_mode):
            raise not_ours(cur, what_is(st.st_mode), "a directory")


def ensure_dirs(root: Path, d: Path) -> Path:
    """``mkdir -p d``, refusing any link or file between ``root`` and ``d``. Returns ``d``."""
    parts = _components(root, d)
    if not parts:
        d.mkdir(parents=True, exist_ok=True)
        return d
    Path(root).mkdir(parents=True, exist_ok=True)
    for cur in parts:
        try:
            os.mkdir(cur)
        except FileExistsError:
            pass
        st = os.lstat(cur)
        if not stat.S_ISDIR(st.st_mode):
            raise not_ours(cur, what_is(st.st_mode), "a directory")
    return d


def check_regular(path: Path) -> None:
    """``path`` is missing or a regular file (what rnntool may replace)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise not_ours(path, what_is(st.st_mode))


def open_regular(path: Path, flags: int, mode: int = 0o666) -> int:
    """``os.open`` that never follows a link at ``path`` and returns only a regular file's fd."""
    try:
        # O_NONBLOCK: a planted named pipe must not hang us; it changes nothing for regular files
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            st = os.lstat(path)
            raise not_ours(path, what_is(st.st_mode)) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise not_ours(path, what_is(st.st_mode))
    return fd


def write_text_atomic(root: Path, dest: Path, text: str) -> None:
    """Replace the registry file ``dest`` (temp file + rename) inside real directories only."""
    ensure_dirs(root, dest.parent)
    check_regular(dest)
    atomic_write_text(dest, text)


__all__ = ["check_dirs", "check_regular", "ensure_dirs", "not_ours", "open_regular", "what_is", "write_text_atomic"]
