"""Planned FFTW convolution through pyFFTW: real plans, aligned buffers, wisdom on disk.

``prepare`` builds three FFTW plans over aligned, zero-padded buffers (one
forward plan over all signals, one over all filters, one inverse over all
outputs), at lengths from :func:`pyfftw.next_fast_len`. Planning happens there
and is reported in ``setup_s``; FFTW wisdom is loaded from and saved to the
user's cache directory, so a second sweep on the same machine plans in
milliseconds. The timed call copies both operands into the buffers (the
padding stays zero, so it is never refilled), runs the plans with
``execute()`` and multiplies the spectra in place.
"""

from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from symbench.paths import cache_dir
from symbench.kernels.base import (Kernel, KernelOptions, Prepared, buffered_plan, fft_workspace_bytes,
                                   is_plain)
from symbench.problem import Problem, crop_slices

_FLAGS = {"estimate": "FFTW_ESTIMATE", "measure": "FFTW_MEASURE", "patient": "FFTW_PATIENT",
          "exhaustive": "FFTW_EXHAUSTIVE"}
_WISDOM_LOCK = threading.Lock()
_wisdom_loaded = False


def wisdom_path() -> Path:
    import pyfftw

    # Wisdom is only valid for the FFTW build that made it.
    return cache_dir() / f"fftw-wisdom-pyfftw{pyfftw.__version__}.json"


def load_wisdom() -> int:
    """Import saved wisdom once per process; returns how many precisions were accepted."""
    global _wisdom_loaded
    import pyfftw

    with _WISDOM_LOCK:
        if _wisdom_loaded:
            return 0
        _wisdom_loaded = True
        path = wisdom_path()
        try:
            stored = json.loads(path.read_text())
            wisdom = tuple(s.encode("latin-1") for s in stored["wisdom"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0  # no wisdom yet, or a damaged file: plan from scratch
        return sum(bool(ok) for ok in pyfftw.import_wisdom(wisdom))


def save_wisdom() -> None:
    """Write the process's accumulated wisdom atomically (a crash never leaves half a file)."""
    import pyfftw

    with _WISDOM_LOCK:
        path = wisdom_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            payload = {"wisdom": [w.decode("latin-1") for w in pyfftw.export_wisdom()]}
            tmp.write_text(json.dumps(payload))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache only costs planning time next run


class FFTW(Kernel):
    name = "fft-pyfftw"
    method = "fft"
    library = "pyFFTW"
    requires = ("pyfftw",)
    description = ("pyFFTW: planned FFTW (real-to-complex for real data) at pyfftw.next_fast_len sizes, "
                   "aligned buffers, plans reused, wisdom cached; both operands transformed every call.")

    def memory_bytes(self, problem: Problem) -> int:
        # Padded real buffers plus their spectra.
        return problem.memory_bytes() + 2 * fft_workspace_bytes(problem)

    def prepare(self, problem: Problem, x: np.ndarray, h: np.ndarray,
                options: KernelOptions = KernelOptions()) -> Prepared:
        import pyfftw

        load_wisdom()
        sx, sh = x.shape[2:], h.shape[2:]
        nd = len(sx)
        complex_data = np.iscomplexobj(x) or np.iscomplexobj(h)
        dtype = np.result_type(x, h)
        cdtype = np.result_type(dtype, np.complex64)
        full = tuple(a + b - 1 for a, b in zip(sx, sh))
        shape = tuple(pyfftw.next_fast_len(int(s)) for s in full)
        spec = shape if complex_data else (*shape[:-1], shape[-1] // 2 + 1)
        B, ci, co = x.shape[0], x.shape[1], h.shape[0]
        axes = tuple(range(2, 2 + nd))
        flags = (_FLAGS[options.planner],)
        threads = problem.threads

        xbuf = pyfftw.zeros_aligned((B, ci, *shape), dtype=dtype)
        hbuf = pyfftw.zeros_aligned((co, ci, *shape), dtype=dtype)
        X = pyfftw.empty_aligned((B, ci, *spec), dtype=cdtype)
        H = pyfftw.empty_aligned((co, ci, *spec), dtype=cdtype)
        Y = pyfftw.empty_aligned((B, co, *spec), dtype=cdtype)
        ybuf = pyfftw.empty_aligned((B, co, *shape), dtype=dtype)
        fx = pyfftw.FFTW(xbuf, X, axes=axes, direction="FFTW_FORWARD", flags=flags, threads=threads)
        fh = pyfftw.FFTW(hbuf, H, axes=axes, direction="FFTW_FORWARD", flags=flags, threads=threads)
        # The inverse may overwrite its input (the product), which we rebuild every call.
        fi = pyfftw.FFTW(Y, ybuf, axes=axes, direction="FFTW_BACKWARD",
                         flags=flags + ("FFTW_DESTROY_INPUT",), threads=threads)
        save_wisdom()
        # Planning with FFTW_MEASURE scribbles over the buffers: zero them again.
        xbuf[...] = 0
        hbuf[...] = 0

        lead = (slice(None), slice(None))
        x_in = xbuf[lead + tuple(slice(0, s) for s in sx)]
        h_in = hbuf[lead + tuple(slice(0, s) for s in sh)]
        # FFTW's inverse is unnormalised; folding 1/N into the (small) filter
        # copy costs nothing extra on the hot path.
        scale = 1.0 / math.prod(shape)
        y_view = ybuf[lead + crop_slices(sx, sh, problem.mode)]
        plain = is_plain(x, h)

        if plain:
            def mac() -> None:
                np.multiply(X, H, out=Y)
        else:
            # Frequency-major batched matmul: (F, B, C_in) @ (F, C_in, C_out).
            Xf = X.reshape(B, ci, -1).transpose(2, 0, 1)
            Hf = H.reshape(co, ci, -1).transpose(2, 1, 0)
            Yf = Y.reshape(B, co, -1).transpose(2, 0, 1)

            def mac() -> None:
                np.matmul(Xf, Hf, out=Yf)

        def call() -> None:
            x_in[...] = x
            np.multiply(h, scale, out=h_in)
            fx.execute()
            fh.execute()
            mac()
            fi.execute()

        def result() -> np.ndarray:
            return np.array(y_view, copy=True)

        notes: dict[str, Any] = {"fft_shape": shape, "planner": options.planner}
        return Prepared(call, result, notes=notes)


def _planned(self: FFTW, problem: Problem, x_shape: tuple[int, ...], h_shape: tuple[int, ...], dtype: Any,
             options: KernelOptions = KernelOptions()) -> Any:
    """symbench.convolve's plan cache: FFTW plans and buffers made once per shape (the call reads its inputs)."""
    return buffered_plan(self, problem, x_shape, h_shape, dtype, options)


FFTW.planned = _planned  # type: ignore[method-assign]

KERNELS: list[Kernel] = [FFTW()]
