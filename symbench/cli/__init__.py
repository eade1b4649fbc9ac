"""``symbench`` command line: typer commands, one module per family, and :func:`main`.

:func:`main` is the only place that exits: a :class:`~symbench.errors.SymbenchError`
or a usage error becomes one line on stderr and exit status 2, Ctrl-C becomes
130 and SIGTERM 143, and a command's own return value is its exit status (1 for
a found failure: a regression in ``compare``, a wrong result in ``verify``).

The heavy imports (typer, the commands) happen inside :func:`main`, after the
signal handlers are installed, so an interrupt during start-up is an exit
status and one line too, not a traceback.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

from symbench.sweep import interrupt

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from symbench.cli import commands  # noqa: F401  (registers the commands)
        from symbench.cli.app import app

        return app
    raise AttributeError(f"module 'symbench.cli' has no attribute {name!r}")


def _usage_errors() -> tuple[type[BaseException], ...]:
    import typer

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
    from symbench.cli.app import warn

    warn(str(message))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit status (the console script exits with it)."""
    interrupt.install()
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print(f"symbench: interrupted{' by ' + interrupt.received if interrupt.received else ''}",
              file=sys.stderr)
        return interrupt.exit_code()


def _main(argv: Sequence[str] | None) -> int:
    import warnings

    import typer

    from symbench.cli import commands  # noqa: F401  (registers the commands)
    from symbench.cli.app import app
    from symbench.errors import SymbenchError, SymbenchWarning

    warnings.showwarning = _show_warning
    # Library warnings are not the user's business; ours are.
    warnings.filterwarnings("ignore")
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
        return interrupt.exit_code()
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
    except OSError as exc:
        # The last line of defence for I/O faults no command turned into a
        # SymbenchError: one line, exit 2, never a traceback.
        where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        print(f"symbench: error: I/O error{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return int(rv) if isinstance(rv, int) else 0
