"""Synthetic data with known answers: measurement tables and run directories (for the analysis
tests), and seeded random convolution inputs (for the kernel tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from symbench.kernels import all_kernels
from symbench.problem import KEY_FIELDS
from symbench.store import COLUMNS, SAMPLE_COLUMNS, RunWriter

RUN_ID = "20260101-000000-test"
MACHINE = {"machine_id": "m0000000001", "machine_label": "testbox (Test CPU, 2 cores)"}
LIBS = {"numpy": "2.0.0", "scipy": "1.14.0", "pyfftw": "0.14.0", "cv2": None, "cupy": None}
#: Each kernel's method, from the registry (synthetic rows of other names default to "direct").
METHOD = {name: kernel.method for name, kernel in all_kernels().items()}


def spread_samples(median: float, spread: float = 0.02, count: int = 7) -> np.ndarray:
    """``count`` samples whose median is exactly ``median``, within +-``spread`` of it."""
    return median * (1.0 + spread * np.linspace(-1.0, 1.0, count))


def row(kernel: str, k: int, samples: Sequence[float] | None, *, n: int = 1024, dim: int = 1,
        dtype: str = "float64", mode: str = "full", device: str = "cpu", status: str = "ok",
        method: str | None = None, run_id: str = RUN_ID, op: str = "conv", group: str = "none",
        batch: int = 1, c_in: int = 1, c_out: int = 1, threads: int = 1, time_s: float | None = None,
        message: str = "") -> dict[str, Any]:
    """One measurements.csv row with statistics computed from ``samples``."""
    s = np.asarray(samples if samples is not None else [time_s], dtype=float)
    q1, q3 = np.percentile(s, [25, 75])
    return {
        "run_id": run_id, "kernel": kernel, "method": method or METHOD.get(kernel, "direct"), "op": op,
        "group": group, "library": "synthetic", "device": device, "dim": dim, "n": n, "k": k, "batch": batch,
        "c_in": c_in, "c_out": c_out, "dtype": dtype, "mode": mode, "threads": threads, "samples": len(s),
        "loops": 1, "time_s": float(np.median(s)) if time_s is None else time_s, "time_min_s": float(s.min()),
        "time_q1_s": float(q1), "time_q3_s": float(q3), "time_mean_s": float(s.mean()),
        "time_std_s": float(s.std(ddof=1)) if len(s) > 1 else 0.0, "setup_s": 0.001, "gflops": 1.0,
        "rel_err": 1e-16, "status": status, "message": message, "source": "grid", "host_time_s": None,
        "seed": 0, "setup_notes": "",
    }


def sample_rows(r: Mapping[str, Any], samples: Sequence[float]) -> list[dict[str, Any]]:
    return [{"run_id": r["run_id"], "kernel": r["kernel"], **{c: r[c] for c in KEY_FIELDS},
             "source": r["source"], "sample": i, "loops": 1, "time_s": float(t), "host_time_s": None}
            for i, t in enumerate(samples)]


class Table:
    """Collects rows and samples; gives DataFrames or writes a run directory."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.samples: list[dict[str, Any]] = []

    def add(self, kernel: str, k: int, median: float | None = None, *, samples: Sequence[float] | None = None,
            spread: float = 0.02, count: int = 7, with_samples: bool = True, **kw: Any) -> dict[str, Any]:
        if samples is None:
            samples = spread_samples(float(median), spread, count)  # type: ignore[arg-type]
        r = row(kernel, k, samples, **kw)
        self.rows.append(r)
        if with_samples and r["status"] == "ok":
            self.samples += sample_rows(r, samples)
        return r

    def series(self, kernel: str, times: Mapping[int, float], **kw: Any) -> None:
        for k, t in times.items():
            self.add(kernel, k, t, **kw)

    def df(self, machine: Mapping[str, str] = MACHINE) -> pd.DataFrame:
        df = pd.DataFrame(self.rows, columns=list(COLUMNS))
        df["machine_id"] = machine["machine_id"]
        df["machine"] = machine["machine_label"]
        return df

    def samples_df(self) -> pd.DataFrame:
        return pd.DataFrame(self.samples, columns=list(SAMPLE_COLUMNS))

    def write(self, run_dir: Path, *, machine: Mapping[str, str] = MACHINE,
              libraries: Mapping[str, Any] = LIBS, run_id: str = RUN_ID, complete: bool = True,
              scale: float = 1.0) -> Path:
        """A real run directory (through :class:`symbench.store.RunWriter`)."""
        meta = {"run_id": run_id, "started": "2026-01-01T00:00:00+00:00", "command": ["symbench", "test"],
                "config": {}, "environment": {"hostname": "testbox", **machine, "libraries": dict(libraries),
                                              "python": "3.12.0", "symbench_version": "0.1.0"}}
        w = RunWriter.create(run_dir, meta)
        for r in self.rows:
            r = {**r, "run_id": run_id}
            for c in ("time_s", "time_min_s", "time_q1_s", "time_q3_s", "time_mean_s", "time_std_s"):
                r[c] = r[c] * scale
            key = tuple(r[c] for c in ("kernel", *KEY_FIELDS))
            ss = [{**s, "run_id": run_id, "time_s": s["time_s"] * scale} for s in self.samples
                  if tuple(s[c] for c in ("kernel", *KEY_FIELDS)) == key]
            w.append(r, ss)
        w.finish(complete)
        w.close()
        return run_dir


def crossover_table(ks: Iterable[int], direct: Sequence[float], fft: Sequence[float], **kw: Any) -> Table:
    """A direct-numpy / fft-scipy pair with the given median times."""
    t = Table()
    for k, td, tf in zip(ks, direct, fft):
        t.add("direct-numpy", k, td, **kw)
        t.add("fft-scipy", k, tf, **kw)
    return t


def random_inputs(x_shape: tuple[int, ...], h_shape: tuple[int, ...], dtype: str, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal signal and filter of ``dtype`` (complex dtypes get a random imaginary part)."""
    rng = np.random.default_rng(seed)

    def draw(shape: tuple[int, ...]) -> np.ndarray:
        a = rng.standard_normal(shape)
        if dtype.startswith("complex"):
            a = a + 1j * rng.standard_normal(shape)
        return a.astype(dtype)

    return draw(x_shape), draw(h_shape)
