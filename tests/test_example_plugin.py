"""The worked plug-in example (examples/symbench-example-plugin) installs, is listed, verifies and sweeps.

It is installed the way users install plug-ins (pip, from its pyproject), into a
private target directory put on PYTHONPATH, so the test environment itself is
left alone; symbench finds the kernel through the ``symbench.kernels`` entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

EXAMPLE = ROOT / "examples" / "symbench-example-plugin"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("plugin")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(EXAMPLE)], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"pip install of the example plug-in failed: {done.stderr[-2000:]}")
    return target


def _symbench(plugin_path: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "symbench", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def test_example_plugin_is_listed_and_verified(plugin_path: Path, tmp_path: Path) -> None:
    listed = _symbench(plugin_path, "kernels", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    kernels = {k["name"]: k for k in json.loads(listed.stdout)}
    assert kernels["direct-example-loop"]["available"] and kernels["direct-example-loop"]["method"] == "direct"
    verified = _symbench(plugin_path, "verify", "--kernel", "direct-example-loop", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert " 0 failed" in verified.stdout


def test_example_plugin_sweeps_next_to_builtin_kernels(plugin_path: Path, tmp_path: Path) -> None:
    done = _symbench(plugin_path, "sweep", "--kernel", "direct-example-loop,fft-numpy", "--n", "256", "--k", "3,17",
                     "--repeat", "3", "--min-time", "0.0005", "--quiet", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    import pandas as pd

    rows = pd.read_csv(tmp_path / "run" / "measurements.csv")
    mine = rows[rows.kernel == "direct-example-loop"]
    assert list(mine.status) == ["ok", "ok"] and (mine.time_s > 0).all()
