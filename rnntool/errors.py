"""Domain errors. Core modules raise these; the CLI turns them into one-line messages at one place.

Every message should say what to do next, e.g.
    ModelNotFound("no model 'en-de' in /reg; did you mean 'en-fr'? (see 'rnntool models list')")
"""

from __future__ import annotations

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
