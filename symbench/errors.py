"""The one error type the library raises for bad usage or bad input.

The CLI is the only place that turns these into exit codes: every
:class:`SymbenchError` becomes exit status 2 and its message is printed as one
line on stderr, so each message must say what was wrong *and* what is allowed.
"""

from __future__ import annotations

from typing import Iterable, Sequence


class SymbenchError(Exception):
    """Bad usage or bad input; the message is shown to the user as is.

    Parameters
    ----------
    message : str
        One line that names the problem and what is allowed instead.
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        # Keep messages to one line: the CLI contract is "one line on stderr".
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return str(self)


def did_you_mean(word: str, choices: "Iterable[str]") -> str:
    """`` (did you mean 'fft-scipy'?)`` for the closest of ``choices`` (difflib), or ''."""
    import difflib

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def join_problems(messages: "Sequence[str]") -> str:
    """Several problems as one line: ``3 problems: a; b; c`` (one message as is)."""
    return messages[0] if len(messages) == 1 else f"{len(messages)} problems: " + "; ".join(messages)


class ConfigError(SymbenchError, ValueError):
    """A config file or command-line option has a bad value.

    Also a :class:`ValueError`, so ``except ValueError`` around library calls catches it.
    """


class KernelError(SymbenchError, ValueError):
    """An unknown kernel name, or a kernel that cannot run here (a :class:`ValueError` too)."""


class RunDirError(SymbenchError):
    """A run directory or CSV file is missing, malformed or not a run."""


class SchemaError(RunDirError):
    """A file was written by a newer symbench than this one."""


class SymbenchWarning(UserWarning):
    """Something the user should know about a file or a result, which did not stop the command.

    The CLI prints each on stderr as one ``warning:`` line.
    """
