"""bench/regret.py: held-out problems are off the tuning grid; the table it prints."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _module():
    spec = importlib.util.spec_from_file_location("bench_regret", ROOT / "bench" / "regret.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_draw_avoids_the_grid_and_stays_in_range():
    mod = _module()
    table = {"entries": [{"n": [1024.0, 2048.0, 4096.0], "measured": [False, True, True], "k_values": [4, 8, 16]}]}
    problems = mod.draw(1, 200, 3, table)
    assert len(problems) == 200
    for n, k in problems:
        assert 3000 <= n <= 100_000 and 3 <= k <= 1500
        assert not (n in (2048, 4096) and k in (4, 8, 16))
    assert mod.draw(1, 20, 3, table) == mod.draw(1, 20, 3, table)  # seeded


def test_markdown_summary():
    mod = _module()
    rows = [{"n": 5000, "k": 10, "chosen": "direct-numpy", "extrapolated": False, "best": "direct-numpy",
             "regret": 1.0, "scipy_regret": 2.0},
            {"n": 9000, "k": 900, "chosen": "fft-pyfftw", "extrapolated": True, "best": "direct",
             "regret": 1.4, "scipy_regret": 1.5}]
    text = mod.markdown(1, rows, ["direct-numpy", "fft-pyfftw"])
    assert "| `symbench.convolve` (tuned table) | 1.200 | 1.400 | 1/2 |" in text
    assert "| `scipy.signal.convolve` (method=auto) | 1.750 | 2.000 | |" in text
    assert "fft-pyfftw (extrap.)" in text
