"""The RerankError family: every error a user can cause, each with its documented exit code.

Exit codes follow sysexits(3) and are public API (README, `rerank --help`): never renumber them.
"""

from __future__ import annotations


class RerankError(Exception):
    """Base of the errors rerank reports as one line; exit 1 is reserved for internal errors.

    Messages name a parameter the Python way (`threads=0`); `param` says which one, so that the
    command line can show the flag instead (`--threads 0`) with `cli_message()`.
    """

    exit_code = 1

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param

    def cli_message(self) -> str:
        """The message as the command line says it: `max_length=2` becomes `--max-length 2`."""
        if self.param is None:
            return str(self)
        return str(self).replace(f"{self.param}=", f"--{self.param.replace('_', '-')} ")


class UsageError(RerankError, ValueError):
    """A bad option or argument value: unknown model name or provider, out of range, bad combination.

    Also a ValueError, so that Python callers catch it where they would catch one.
    """

    exit_code = 2


class ArgumentTypeError(UsageError, TypeError):
    """A Python argument of the wrong type (a str where a list of documents belongs, None, a bool)."""


class InputError(RerankError):
    """EX_DATAERR: an input record that cannot be read (bad JSON, missing field, bad UTF-8)."""

    exit_code = 65


class NoInputError(RerankError):
    """EX_NOINPUT: an input file that is missing or unreadable."""

    exit_code = 66


class ModelUnavailable(RerankError):
    """EX_UNAVAILABLE: a model that cannot be loaded: missing files, not cached offline, hub down."""

    exit_code = 69


class ServiceUnavailable(RerankError):
    """EX_UNAVAILABLE: what a requested feature runs on is missing: Ray not installed, a Ray cluster unreachable."""

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
