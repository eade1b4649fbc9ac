"""``symbench`` command line: typer commands, one module per family, and :func:`main`.

:func:`main` is the only place that exits: a :class:`~symbench.errors.SymbenchError`
or a usage error becomes one line on stderr and exit status 2, Ctrl-C becomes
130, and a command's own return value is its exit status (1 for a found
failure: a regression in ``compare``, a wrong result in ``verify``).
"""

from __future__ import annotations

import sys
import warnings
from typing import Sequence

import typer

from symbench.sweep import interrupt
from symbench.cli import commands  # noqa: F401  (registers the commands)
from symbench.cli.app import app, warn
from symbench.errors import SymbenchError

__all__ = ["app", "main"]


def _usage_errors() -> tuple[type[BaseException], ...]:
    # Typer >= 0.22 vendors click and exposes TyperException; older ones use click.
    errors: list[type[BaseException]] = []
    if hasattr(typer, "TyperException"):
        errors.append(typer.TyperException)
    try:
        import click

        errors.append(click.ClickException)
    except ImportError:
        pass
    return tuple(errors)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # type: ignore[no-untyped-def]
    warn(str(message))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit status (the console script exits with it)."""
    interrupt.install()
    warnings.showwarning = _show_warning
    # Library warnings are not the user's business; ours are.
    warnings.filterwarnings("ignore")
    from symbench.errors import SymbenchWarning

    warnings.filterwarnings("default", category=SymbenchWarning)
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=list(argv) if argv is not None else None, prog_name="symbench",
                          standalone_mode=False)
    except SymbenchError as exc:
        print(f"symbench: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except typer.Abort:
        return 130
    except KeyboardInterrupt:
        print("symbench: interrupted", file=sys.stderr)
        return 130
    except _usage_errors() as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            # Typer's rich help prints itself while the error is built; plain click returns it.
            text = exc.format_message()  # type: ignore[attr-defined]
            if text.strip():
                print(text)
            return 0
        msg = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
        ctx = getattr(exc, "ctx", None)
        where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        print(f"symbench: error: {msg}{where}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except BrokenPipeError:
        return 1
    return int(rv) if isinstance(rv, int) else 0
