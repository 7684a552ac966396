"""Inter-process file locks that die with their holder and say who holds them.

    with FileLock(root / "locks" / "shakespeare@train.lock", what="training 'shakespeare'"):
        ...                      # a second holder gets LockHeld naming our pid, host, start time

Why ``fcntl.lockf`` (POSIX record locks) and not ``flock`` or a pid file:

- The kernel (or, on NFS, the server) drops the lock when the holding process dies, SIGKILL
  included, so there is never a stale lock to clean up by hand. The pid/host/start time written
  into the file are only for the message; the lock itself is what counts, and a leftover file from
  a dead holder is simply taken over.
- POSIX locks are what NFS supports: NFSv4 has them in the protocol (lease-based, released when the
  client process exits or its lease expires) and NFSv3 through NLM/lockd. ``flock`` is local-only
  on some systems and on Linux NFS clients is silently emulated with POSIX locks anyway, so
  ``lockf`` behaves the same on local disks and on a shared registry mount.
- The catch with POSIX locks is that they belong to the *process*: a second ``open()`` of the same
  file in the same process does not conflict, and closing *any* descriptor of the file drops the
  lock. This module hides that: locks held by this process are kept in a table, a second holder in
  the same process is refused (or waits) like one in another process, and the file is never
  reopened while we hold it.

Lock files live in directories other people may write to (a shared registry), so they are opened
without following links and must be regular files (``safe_paths``); given the registry ``root``,
the directories down to the lock must be real directories too. A waiting ``acquire`` tells
``on_wait`` whom it waits for once it has waited ``WAIT_NOTICE_SECONDS``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rnntool.errors import LockHeld, RnnToolError
from rnntool.registry.safe_paths import ensure_dirs, open_regular

# Locks this process holds: key (absolute path) -> FileLock; and one thread lock per key (with a
# count of its users, so entries for one-off paths such as staging tokens are dropped again) so
# that two holders in one process exclude each other like two processes do.
_held: dict[str, "FileLock"] = {}
_thread_locks: dict[str, list] = {}  # key -> [threading.Lock, users]
_table_guard = threading.Lock()

POLL_SECONDS = 0.1
WAIT_NOTICE_SECONDS = 1.0  # a waiting acquire says whom it waits for after this long


def _key(path: Path) -> str:
    return os.path.join(os.path.realpath(path.parent), path.name)


def _use_thread_lock(key: str) -> threading.Lock:
    with _table_guard:
        entry = _thread_locks.setdefault(key, [threading.Lock(), 0])
        entry[1] += 1
        return entry[0]


def _drop_thread_lock(key: str) -> None:
    with _table_guard:
        entry = _thread_locks[key]
        entry[1] -= 1
        if entry[1] == 0:
            del _thread_locks[key]


@dataclass
class LockInfo:
    """Who holds a lock, as written into the lock file by the holder."""

    pid: int | None = None
    host: str | None = None
    started: str | None = None
    command: str | None = None

    @classmethod
    def current(cls) -> "LockInfo":
        return cls(
            pid=os.getpid(),
            host=socket.gethostname(),
            started=_dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300] if sys.argv else None,
        )

    @classmethod
    def parse(cls, raw: bytes) -> "LockInfo | None":
        try:
            d = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        if not isinstance(d, dict):
            return None
        pid = d.get("pid")
        return cls(
            pid=pid if isinstance(pid, int) else None,
            host=str(d["host"]) if d.get("host") else None,
            started=str(d["started"]) if d.get("started") else None,
            command=str(d["command"]) if d.get("command") else None,
        )

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__).encode("utf-8") + b"\n"

    def describe(self) -> str:
        if self.pid is None:
            return "another process (pid unknown)"
        return f"pid {self.pid} on {self.host or 'unknown host'} since {self.started or 'an unknown time'}"


def _read_info(fd: int) -> LockInfo | None:
    # The holder writes its info right after locking; retry briefly if we caught it mid-write.
    for _ in range(5):
        try:
            info = LockInfo.parse(os.pread(fd, 4096, 0))
        except OSError:
            return None
        if info is not None:
            return info
        time.sleep(0.02)
    return None


def _would_block(e: OSError) -> bool:
    return e.errno in (errno.EACCES, errno.EAGAIN)


class FileLock:
    """An exclusive lock on ``path`` (created if missing), re-entrant for nobody.

    ``acquire(wait=False)`` raises ``LockHeld`` at once when taken; ``wait=True`` blocks until free;
    ``wait=<seconds>`` blocks at most that long and then raises ``LockHeld``. ``on_wait(message)``
    is called once when the wait lasts ``WAIT_NOTICE_SECONDS``, naming the holder. ``root``: the
    registry (or other shared directory) the lock lives under; no directory between it and the
    lock may be a link.
    """

    def __init__(self, path: str | os.PathLike, *, what: str = "", hint: str = "",
                 root: str | os.PathLike | None = None) -> None:
        self.path = Path(path)
        self.root = Path(root) if root is not None else None
        self.what = what or f"lock {self.path}"
        self.hint = hint or "try again when it has finished"
        self._fd: int | None = None
        self._key: str | None = None
        self.info: LockInfo | None = None

    @property
    def locked(self) -> bool:
        return self._fd is not None

    # -- acquire / release ----------------------------------------------------------------------
    def acquire(self, wait: bool | float = False, on_wait: Callable[[str], None] | None = None) -> "FileLock":
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this FileLock")
        if self.root is not None:
            ensure_dirs(self.root, self.path.parent)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        key = _key(self.path)
        deadline = None if wait is True or wait is False else time.monotonic() + float(wait)
        waiting = _Waiting(self, deadline, on_wait)
        tlock = _use_thread_lock(key)
        if not self._acquire_thread_lock(tlock, key, wait, waiting):
            _drop_thread_lock(key)
            raise self._held_error(_holder_in_this_process(key))
        try:
            fd = self._acquire_file_lock(wait, waiting)
        except BaseException:
            tlock.release()
            _drop_thread_lock(key)
            raise
        self._fd, self._key = fd, key
        self.info = LockInfo.current()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, self.info.to_json(), 0)
        except OSError:  # a read-only lock file still locks; only the message loses detail
            pass
        with _table_guard:
            _held[key] = self
        return self

    @staticmethod
    def _acquire_thread_lock(tlock: threading.Lock, key: str, wait: bool | float, waiting: "_Waiting") -> bool:
        """Another holder in this process (a thread): like the file lock, with the same notice."""
        if wait is False:
            return tlock.acquire(blocking=False)
        if tlock.acquire(timeout=waiting.seconds_until_notice()):
            return True
        if waiting.expired():
            return False
        waiting.notify(_holder_in_this_process(key))
        if waiting.deadline is None:
            return tlock.acquire()
        return tlock.acquire(timeout=max(0.0, waiting.deadline - time.monotonic()))

    def _acquire_file_lock(self, wait: bool | float, waiting: "_Waiting") -> int:
        while True:
            try:
                fd = open_regular(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except PermissionError:
                raise RnnToolError(
                    f"cannot open lock file {self.path}: permission denied; on a shared registry make "
                    "its locks/ and .staging/ directories (and files) group-writable"
                ) from None
            try:
                while True:
                    try:
                        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except OSError as e:
                        if not _would_block(e):
                            raise
                        if wait is False or waiting.expired():
                            raise self._held_error(_read_info(fd)) from None
                        if waiting.due():
                            waiting.notify(_read_info(fd))
                        if wait is True and waiting.notified:  # said whom we wait for: block until free
                            fcntl.lockf(fd, fcntl.LOCK_EX)
                            break
                        time.sleep(POLL_SECONDS)
                # The file may have been unlinked (e.g. by staging clean-up) between open and lock:
                # then we locked an orphan inode; start again on the file now at the path.
                try:
                    same = os.path.samestat(os.fstat(fd), os.lstat(self.path))
                except FileNotFoundError:
                    same = False
                if same:
                    return fd
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)

    def _held_error(self, info: LockInfo | None) -> LockHeld:
        who = (info or LockInfo()).describe()
        return LockHeld(f"{self.what} is in progress ({who}; lock {self.path}); {self.hint}")

    def waiting_message(self, info: LockInfo | None, deadline: float | None) -> str:
        who = (info or LockInfo()).describe()
        until = "" if deadline is None else f"; giving up in {max(0, round(deadline - time.monotonic()))}s"
        return f"waiting for {self.what} ({who}; lock {self.path}){until}"

    def release(self) -> None:
        if self._fd is None:
            return
        fd, key = self._fd, self._key
        self._fd = self._key = None
        with _table_guard:
            if _held.get(key) is self:
                del _held[key]
        try:
            with contextlib.suppress(OSError):
                fcntl.lockf(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
            with _table_guard:
                tlock = _thread_locks[key][0]
            tlock.release()
            _drop_thread_lock(key)

    def __enter__(self) -> "FileLock":
        if self._fd is None:
            self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:  # pragma: no cover - best effort if a holder is dropped unreleased
        with contextlib.suppress(Exception):
            self.release()


def _holder_in_this_process(key: str) -> LockInfo:
    with _table_guard:
        holder = _held.get(key)
    return holder.info if holder is not None and holder.info is not None else LockInfo.current()


class _Waiting:
    """The deadline of one acquire, and the one "waiting for ..." notice it gives when it waits."""

    def __init__(self, lock: FileLock, deadline: float | None, on_wait: Callable[[str], None] | None) -> None:
        self.lock, self.deadline, self.on_wait = lock, deadline, on_wait
        self.notice_at = time.monotonic() + WAIT_NOTICE_SECONDS
        self.notified = False

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def due(self) -> bool:
        return not self.notified and time.monotonic() >= self.notice_at

    def seconds_until_notice(self) -> float:
        end = self.notice_at if self.deadline is None else min(self.notice_at, self.deadline)
        return max(0.0, end - time.monotonic())

    def notify(self, info: LockInfo | None) -> None:
        self.notified = True
        if self.on_wait is not None:
            self.on_wait(self.lock.waiting_message(info, self.deadline))


def held_by_this_process(path: str | os.PathLike) -> bool:
    with _table_guard:
        return _key(Path(path)) in _held


def try_lock(path: str | os.PathLike, *, root: str | os.PathLike | None = None) -> FileLock | None:
    """Take the lock without waiting, or return None if anyone (this process included) holds it."""
    lock = FileLock(path, root=root)
    try:
        return lock.acquire(wait=False)
    except LockHeld:
        return None


__all__ = ["FileLock", "LockInfo", "held_by_this_process", "try_lock"]
