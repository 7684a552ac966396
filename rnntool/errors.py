"""Domain errors. Core modules raise these; the CLI turns them into one-line messages at one place.

Every message should say what to do next, e.g.
    ModelNotFound("no model 'en-de' in /reg; did you mean 'en-fr'? (see 'rnntool models list')")
"""

from __future__ import annotations

import contextlib
import errno
import os

EX_OK = 0
EX_ERROR = 1
EX_USAGE = 2
EX_TEMPFAIL = 75  # sysexits.h: try again later (e.g. another training run holds the lock)


class RnnToolError(Exception):
    """Base class: a user-facing error. ``exit_code`` is what the process exits with."""

    exit_code = EX_ERROR


class UsageError(RnnToolError):
    """Bad combination of options or an invalid value that argument parsing could not catch."""

    exit_code = EX_USAGE


class BadInput(RnnToolError):
    """Input data is unusable: invalid UTF-8, empty file, mismatched parallel files, ..."""


class UnknownWord(BadInput):
    """A word asked about is not in a vectors' vocabulary (`rnntool neighbors`); ``word`` names it."""

    def __init__(self, message: str, *, word: str) -> None:
        super().__init__(message)
        self.word = word


class RegistryError(RnnToolError):
    """Anything wrong with the model registry or a bundle."""


class InvalidName(RegistryError, UsageError):
    exit_code = EX_USAGE


class ModelNotFound(RegistryError):
    pass


class CorruptBundle(RegistryError):
    """A bundle whose files do not match their manifest checksums, or that cannot be parsed."""


class WrongKind(RegistryError):
    """A bundle of the wrong kind for this command (e.g. a tokenizer given to `generate`)."""


class LockHeld(RnnToolError):
    """Another process holds a lock (e.g. a training run for the same name)."""

    exit_code = EX_TEMPFAIL


class TrainingError(RnnToolError):
    """Training could not go on (diverged, repeated non-finite loss, bad checkpoint, ...)."""


class CheckpointError(TrainingError):
    pass


class ConfigError(UsageError):
    """A model or training setting is invalid; the message names the setting and valid choices."""


class OptionalDependencyMissing(RnnToolError):
    pass


# A full disk, or a quota that stops the writer as if it were one.
DISK_FULL_ERRNOS = frozenset(c for c in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if c is not None)


class DiskFull(RnnToolError):
    """No space left on a device (ENOSPC), or a disk quota exceeded (EDQUOT), while writing.

    Code that writes knows the path and whether something was already published; build the error
    from the OSError there::

        except OSError as e:
            if DiskFull.matches(e):
                raise DiskFull.from_oserror(e, path, published=ref_or_None) from e
            raise
    """

    ADVICE = "free some space (or point --registry/--run-dir elsewhere) and run again"

    def __init__(self, message: str, *, path: str | None = None, published: bool | str | None = False) -> None:
        super().__init__(message)
        self.path = path
        self.published = published

    @staticmethod
    def matches(e: BaseException) -> bool:
        """Whether ``e`` is an OSError for a full disk or an exceeded quota."""
        return isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS

    @classmethod
    def from_oserror(cls, e: OSError | None = None, path: str | os.PathLike | None = None, *,
                     published: bool | str | None = False, advice: str | None = None) -> "DiskFull":
        """The one-line message for a full disk.

        ``path`` (else ``e.filename``) is the file being written. ``published``: False (the default)
        says nothing was published; a reference such as ``"news@4"`` (or True) says that it was;
        None says nothing about it. ``advice`` replaces what to do next.
        """
        if path is None and e is not None and e.filename is not None:
            path = e.filename
        path = os.fsdecode(path) if path is not None else None
        code = e.errno if e is not None else errno.ENOSPC
        why = "EDQUOT: disk quota exceeded" if code == getattr(errno, "EDQUOT", None) else "ENOSPC"
        parts = ["no space left on device" + (f" writing {path}" if path else "") + f" ({why})"]
        if published is False:
            parts.append("nothing was published")
        elif published is True:
            parts.append("the model was published before the error")
        elif published is not None:
            parts.append(f"{published} was published before the error")
        parts.append(advice or cls.ADVICE)
        return cls("; ".join(parts), path=path, published=published)

    @classmethod
    @contextlib.contextmanager
    def translating(cls, path: str | os.PathLike | None = None, *, published: bool | str | None = False):
        """``with DiskFull.translating(where):`` a full disk inside becomes this error (naming the
        file the OSError names, else ``where``); any other OSError passes through."""
        try:
            yield
        except OSError as e:
            if cls.matches(e):
                raise cls.from_oserror(e, e.filename or path, published=published) from e
            raise
