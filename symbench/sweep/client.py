"""The parent's end of a measuring worker (:mod:`symbench.sweep.worker`).

``symbench ab`` runs one worker per side; a sweep in rounds
(:mod:`symbench.sweep.rounds`) runs each round in a fresh one. Both start it
with :class:`WorkerClient`, check its hello (protocol version, symbench
installed) and send it one request at a time.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Mapping, Sequence

from symbench.errors import SymbenchError
from symbench.sweep.protocol import PROTOCOL

#: Seconds a worker may take to import symbench and its kernels and say hello.
HELLO_TIMEOUT_S = 120.0


class WorkerDied(Exception):
    """A worker closed its output (crashed, was killed, or exited)."""


@dataclass
class Side:
    """One side of the comparison: an interpreter with symbench, and extra environment variables.

    Attributes
    ----------
    label : str
        ``"base"`` or ``"new"``.
    python : str
        The interpreter (already resolved from a venv directory).
    env : dict of str
        Variables set for the side's worker on top of this process's environment.
    option : str
        The command-line option that named the side, for error messages.
    """

    label: str
    python: str
    env: dict[str, str] = field(default_factory=dict)
    option: str = ""


def resolve_python(spec: str, option: str) -> str:
    """The interpreter named by ``spec``: itself, or ``DIR/bin/python`` for a venv directory.

    Raises
    ------
    SymbenchError
        When there is no such interpreter.
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        for cand in (path / "bin" / "python", path / "Scripts" / "python.exe"):
            if cand.exists():
                return str(cand)
        raise SymbenchError(f"{option} {spec!r} is a directory but not a venv (no bin/python in it); "
                            "give an interpreter or a venv directory with symbench installed")
    if path.exists():
        if not os.access(path, os.X_OK):
            raise SymbenchError(f"{option} {spec!r} is not executable; give a Python interpreter or a venv directory")
        return str(path)
    if os.sep not in spec:  # a bare name such as python3: look it up on PATH
        import shutil

        found = shutil.which(spec)
        if found:
            return found
    raise SymbenchError(f"{option} {spec!r}: no such interpreter or venv directory")


def parse_env(items: Sequence[str] | None, option: str) -> dict[str, str]:
    """``KEY=VALUE`` items as a dict; a malformed one is a :class:`SymbenchError`."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = str(item).partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum():
            raise SymbenchError(f"{option} {item!r}: expected KEY=VALUE (e.g. {option} OMP_NUM_THREADS=1)")
        out[key] = value
    return out


class WorkerClient:
    """The parent's end of one worker process."""

    def __init__(self, side: Side) -> None:
        self.side = side
        self.proc: subprocess.Popen[str] | None = None
        self.hello: dict[str, Any] = {}
        self._stderr: IO[bytes] | None = None
        self._next = 0

    def start(self) -> None:
        """Start the worker and check its hello; bad sides are :class:`SymbenchError`."""
        self.spawn()
        self.handshake()

    def spawn(self, cpus: set[int] | None = None) -> None:
        """Start the worker process, on ``cpus`` if given (its hello is read by :meth:`handshake`)."""
        side = self.side
        self._next = 0
        self._stderr = tempfile.TemporaryFile()
        env = {**os.environ, **side.env}
        try:
            # Its own session: Ctrl-C in the terminal goes to the parent only, which
            # stops the run, keeps what was measured and then closes the workers.
            self.proc = subprocess.Popen([side.python, "-m", "symbench", "worker"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1,
                                         env=env, start_new_session=True)
        except OSError as exc:
            raise SymbenchError(f"{side.option} {side.python!r}: cannot start it ({exc.strerror})") from None
        if cpus and hasattr(os, "sched_setaffinity"):
            try:
                os.sched_setaffinity(self.proc.pid, cpus)
            except OSError:
                pass

    def handshake(self) -> None:
        """Read and check the worker's hello; bad sides are :class:`SymbenchError`."""
        side = self.side
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], HELLO_TIMEOUT_S)
        line = self.proc.stdout.readline() if ready else ""
        try:
            hello = json.loads(line) if line else None
        except ValueError:
            hello = None
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            self.stop()
            err = self.stderr_tail()
            if "No module named symbench" in err:
                raise SymbenchError(f"{side.option} {side.python}: symbench is not installed in that interpreter; "
                                    "install it there (pip install symbench) or give another one")
            if "No such command" in err or "worker" in err and "Usage" in err:
                raise SymbenchError(f"{side.option} {side.python}: its symbench has no worker command "
                                    "(too old for ab); install the same symbench version on both sides")
            why = err.splitlines()[-1] if err.strip() else ("no answer" if not ready else "no hello")
            raise SymbenchError(f"{side.option} {side.python}: the symbench worker did not start ({why})")
        if hello.get("protocol") != PROTOCOL:
            self.stop()
            raise SymbenchError(f"{side.option} {side.python}: its symbench {hello.get('symbench')} speaks worker "
                                f"protocol {hello.get('protocol')!r}, this one speaks {PROTOCOL}; install the same "
                                "symbench version on both sides")
        self.hello = hello

    @property
    def kernels(self) -> list[str]:
        return list(self.hello.get("kernels") or [])

    def stderr_tail(self, lines: int = 20) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def request(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        """Send one request and wait for its reply.

        Raises
        ------
        WorkerDied
            The worker's output ended (it crashed or was killed).
        RuntimeError
            The worker answered ``ok: false`` (a request it could not serve).
        """
        proc = self.proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise WorkerDied("the worker is not running")
        try:
            proc.stdin.write(json.dumps(msg, separators=(",", ":")) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except (BrokenPipeError, OSError, ValueError):
            line = ""
        if not line:
            raise WorkerDied(self.death_note())
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(str(reply.get("error", "the worker refused the request")))
        return reply

    def death_note(self) -> str:
        code = None
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
        tail = self.stderr_tail(1).strip()
        return f"the {self.side.label} worker died (exit status {code})" + (f": {tail}" if tail else "")

    def new_id(self) -> int:
        self._next += 1
        return self._next

    def stop(self) -> None:
        """Ask the worker to exit; kill it if it does not within a few seconds."""
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.poll() is None and proc.stdin is not None:
                proc.stdin.close()  # end of input: the worker exits
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            proc.kill()
            proc.wait()
        for stream in (proc.stdout,):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    def kill(self) -> None:
        """Stop the worker at once (Ctrl-C: what it is measuring now is not wanted)."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        self.stop()


__all__ = ["HELLO_TIMEOUT_S", "Side", "WorkerClient", "WorkerDied", "parse_env", "resolve_python"]
