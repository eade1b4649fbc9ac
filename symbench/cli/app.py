"""The typer application and what every command shares (consoles, output helpers).

Commands only parse options, call one library function and render its
result; :func:`symbench.cli.main` is the one place that turns errors into exit
codes.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

app = typer.Typer(
    name="symbench",
    help="Measure where FFT convolution starts beating direct convolution on this machine.",
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from symbench import __version__

        print(f"symbench {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print symbench's version and exit.",
                                 callback=_version, is_eager=True),
) -> None:
    """Measure where FFT convolution starts beating direct convolution on this machine."""


def console(stderr: bool = False) -> Any:
    """A rich console; colour and width only when writing to a terminal."""
    from rich.console import Console

    from symbench.render.text import output_width

    stream = sys.stderr if stderr else sys.stdout
    # Logs and pipes get a wide fixed width instead of rich's 80 columns, so
    # tables stay readable in CI output and files; $COLUMNS, when set, wins.
    width = None if stream.isatty() else output_width()
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"symbench: warning: {' '.join(message.split())}", file=sys.stderr, flush=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def write_text(text: str, out: str | None) -> None:
    """Write ``text`` to the file ``out``, or to stdout."""
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    from pathlib import Path

    from symbench.errors import SymbenchError

    try:
        Path(out).write_text(text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise SymbenchError(f"cannot write --out {out!r}: {exc.strerror}") from None
