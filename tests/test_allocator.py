"""symbench.sweep.allocator: the sweep's steady heap."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from symbench.sweep import allocator


def test_steady_heap_is_applied_once_and_recorded(tmp_path: Path):
    first = allocator.steady_heap()
    assert allocator.steady_heap() is first
    if sys.platform.startswith("linux") and first.get("malloc") == "glibc":
        assert first["mmap_threshold"] == 32 * 2**20 and first["trim_threshold"] == 64 * 2**20
    else:
        assert first["malloc"].startswith("unchanged")
    from symbench.config import load_config
    from symbench.sweep.runner import run_sweep

    cfg = load_config(None, {"kernel": ["direct-numpy"], "n": "64", "k": "3", "repeat": "2", "min_time": "0.0005"})
    run_sweep(cfg, tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["environment"]["allocator"] == first


_PROBE = """
import resource, sys
import numpy as np
if sys.argv[1] == "steady":
    from symbench.sweep.allocator import steady_heap
    assert steady_heap()["malloc"] == "glibc"
a = np.ones(1 << 19); del a           # frees 4 MB: glibc's own threshold rises to 4 MB only
b = np.ones(1 << 20); del b           # 8 MB: above that threshold
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
c = np.ones(1 << 20); del c           # again: fresh pages (faults) unless the heap kept them
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_steady_heap_keeps_large_blocks_without_page_faults():
    import subprocess

    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
        return int(out.stdout.strip())

    if allocator.steady_heap().get("malloc") != "glibc":
        pytest.skip("no glibc mallopt here")
    # Touched afresh without the steady heap (hundreds of faults, fewer than 2048 pages of 4 KiB
    # where the kernel maps some huge pages), reused with it.
    assert faults("default") > 100
    assert faults("steady") < 20
