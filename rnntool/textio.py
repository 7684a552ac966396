"""Text input and atomic file output shared by every command.

Input rules (the CLI contract): UTF-8, lines split on ``\\n`` only (never ``str.splitlines``, which
also splits on U+2028 and friends), a leading BOM stripped, a trailing ``\\r`` (CRLF) removed,
invalid UTF-8 is an error naming ``file:line`` unless ``on_bad_utf8="replace"``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from rnntool.errors import BadInput, RnnToolError, UsageError

STDIN_NAMES = (None, "-", "")
BAD_UTF8_POLICIES = ("strict", "replace")


# Every character str.splitlines() breaks at: none may reach a line-per-record output.
_LINE_BREAKS = str.maketrans(dict.fromkeys("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029", " "))


def one_line(text: str) -> str:
    """Text as one output line (line breaks become spaces): byte-fallback pieces of an undertrained
    model can decode to line breaks, which would break the one-line-out-per-line-in contract."""
    return text.translate(_LINE_BREAKS)


def finite_json(value):
    """``value`` with every non-finite float (inf, nan) replaced by None, in nested dicts and lists:
    what strict JSON (``allow_nan=False``) can hold, and what jq, browsers and pandas can read."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def display_name(path: str | os.PathLike | None) -> str:
    return "<stdin>" if path in STDIN_NAMES else str(path)


def _open_binary(path: str | os.PathLike | None) -> BinaryIO:
    if path in STDIN_NAMES:
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, expected a text file") from None
    except PermissionError:
        raise BadInput(f"{path}: permission denied") from None


def decode_line(raw: bytes, name: str, lineno: int, on_bad_utf8: str = "strict") -> str:
    """Decode one raw line (without its ``\\n``): strip a trailing ``\\r`` and, on line 1, a BOM."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        if on_bad_utf8 == "replace":
            return raw.decode("utf-8", errors="replace")
        if b"\x00" in raw:  # NUL bytes and invalid UTF-8: not text at all
            raise BadInput(f"{name}:{lineno}: this looks like a binary file, not UTF-8 text (NUL bytes, invalid "
                           "UTF-8); give a text file") from None
        raise BadInput(
            f"{name}:{lineno}: invalid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
            "fix the file or pass --on-bad-utf8 replace"
        ) from None


def iter_raw_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Yield lines without their ``\\n`` as soon as each arrives (works on pipes, no read-ahead wait)."""
    readline = stream.readline
    while True:
        raw = readline()
        if not raw:
            return
        yield raw[:-1] if raw.endswith(b"\n") else raw


def read_lines(
    path: str | os.PathLike | None = None,
    *,
    on_bad_utf8: str = "strict",
    allow_empty: bool = False,
) -> Iterator[str]:
    """Stream decoded lines of a file (``-``/None = stdin). Empty input raises ``BadInput``."""
    if on_bad_utf8 not in BAD_UTF8_POLICIES:
        raise UsageError(f"--on-bad-utf8 must be one of {', '.join(BAD_UTF8_POLICIES)}")
    name = display_name(path)
    stream = _open_binary(path)
    lineno = 0
    try:
        for lineno, raw in enumerate(iter_raw_lines(stream), start=1):
            yield decode_line(raw, name, lineno, on_bad_utf8)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if lineno == 0 and not allow_empty:
        raise BadInput(f"{name}: input is empty; give a file with at least one line of text")


def read_all_lines(paths: Iterable[str | os.PathLike | None], **kw) -> list[str]:
    out: list[str] = []
    for p in paths:
        out.extend(read_lines(p, **kw))
    return out


def spool_stdin(dest_dir: Path, on_bad_utf8: str = "strict") -> Path:
    """Copy (validated) stdin to a file so it can be fingerprinted and read twice."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="stdin-", suffix=".txt", dir=dest_dir)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
        for line in read_lines("-", on_bad_utf8=on_bad_utf8):
            f.write(line + "\n")
    return Path(name)


def fingerprint_file(path: str | os.PathLike) -> dict:
    """sha256, size and line count of a file, as recorded in manifests (DVC-style)."""
    h = hashlib.sha256()
    size = 0
    lines = 0
    last = b""
    with _open_binary(path) as f:  # a missing file: BadInput naming it
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
            last = chunk
    if last and not last.endswith(b"\n"):
        lines += 1
    return {"path": str(Path(path).resolve()), "sha256": h.hexdigest(), "bytes": size, "lines": lines}


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(path: str | os.PathLike) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``dest``; on success fsync it and rename it over ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get normal permissions
        os.replace(tmp_path, dest)
        fsync_dir(dest.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(dest: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a new temp file beside ``dest`` through the descriptor that created it (a
    link swapped in for the temp file's name is never written through), then rename it over ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600; outputs get normal permissions
            os.fsync(f.fileno())
            if not os.path.samestat(os.fstat(f.fileno()), os.lstat(tmp)):
                raise RnnToolError(f"{tmp}: replaced by something else while being written; {dest} was not written")
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(dest: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(dest, text.encode("utf-8"))


@contextlib.contextmanager
def open_output(path: str | os.PathLike | None) -> Iterator[TextIO]:
    """Text output: stdout for None/``-``, else a file written atomically (never a half file)."""
    if path in STDIN_NAMES:
        yield sys.stdout
        sys.stdout.flush()
        return
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            yield f


def line_writer(out: TextIO, *, flush_each: bool = True):
    """Return ``write(line)`` that appends ``\\n`` and flushes (streaming to pipes)."""

    def write(line: str) -> None:
        out.write(line + "\n")
        if flush_each:
            out.flush()

    return write


def is_stdin(path) -> bool:
    return path in STDIN_NAMES


__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "decode_line",
    "display_name",
    "fingerprint_file",
    "is_stdin",
    "iter_raw_lines",
    "line_writer",
    "one_line",
    "open_output",
    "read_all_lines",
    "read_lines",
    "sha256_file",
    "spool_stdin",
]
