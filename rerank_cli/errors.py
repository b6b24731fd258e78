"""The RerankError family: every error a user can cause, each with its documented exit code.

Exit codes follow sysexits(3) and are public API (README, `rerank --help`): never renumber them.
"""

from __future__ import annotations


class RerankError(Exception):
    """Base of the errors rerank reports as one line; exit 1 is reserved for internal errors."""

    exit_code = 1


class UsageError(RerankError):
    """A bad option value: unknown model name, unknown execution provider, bad combination."""

    exit_code = 2


class InputError(RerankError):
    """EX_DATAERR: an input record that cannot be read (bad JSON, missing field, bad UTF-8)."""

    exit_code = 65


class NoInputError(RerankError):
    """EX_NOINPUT: an input file that is missing or unreadable."""

    exit_code = 66


class ModelUnavailable(RerankError):
    """EX_UNAVAILABLE: a model that cannot be loaded: missing files, not cached offline, hub down."""

    exit_code = 69


class ModelError(RerankError):
    """A malformed built-in model record: a bug in the registry, so it keeps exit 1."""


class OutputError(RerankError):
    """EX_IOERR: the results cannot be written (disk full, closed stream)."""

    exit_code = 74


class Terminated(BaseException):
    """Raised by the SIGTERM handler; like KeyboardInterrupt, it is not an error of the run itself."""


# name -> exit code, for the README and --help tables (kept here so they cannot drift apart).
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "success"),
    (1, "internal error (a bug: please report it with --debug output)"),
    (2, "usage error: bad option, unknown model name, unknown execution provider"),
    (65, "bad input record (invalid JSON, missing or non-string text field, bad UTF-8)"),
    (66, "input missing or unreadable (no such file, stdin closed)"),
    (69, "model unavailable: missing or broken model files, not cached while offline, hub unreachable"),
    (74, "output cannot be written (disk full, stdout closed)"),
    (130, "interrupted (Ctrl-C)"),
    (141, "stdout closed early (`| head`): stopped quietly"),
    (143, "terminated (SIGTERM)"),
)
