"""The command line end to end: quick sweeps, listings, and bad input (exit 2, one line)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from symbench.store import load


def test_help_lists_commands(cli):
    r = cli("--help")
    assert r.code == 0
    for cmd in ("kernels", "info", "sweep", "verify"):
        assert cmd in r.out


def test_python_dash_m(tmp_path: Path):
    r = subprocess.run([sys.executable, "-m", "symbench", "kernels", "--json"], capture_output=True, text=True)
    assert r.returncode == 0
    names = {k["name"] for k in json.loads(r.stdout)}
    assert {"direct", "fft-pyfftw", "auto-scipy"} <= names


def test_kernels_json(cli):
    r = cli("kernels", "--json")
    rows = json.loads(r.out)
    by = {k["name"]: k for k in rows}
    assert by["direct"]["available"] is True and by["direct"]["reason"] == ""
    for k in rows:
        assert {"name", "method", "ops", "device", "library", "dims", "dtypes", "available", "reason"} <= set(k)


def test_info_json(cli):
    r = cli("info", "--json")
    assert r.code == 0
    facts = json.loads(r.out)
    assert facts["cpu_count"] >= 1 and facts["libraries"]["numpy"]
    checks = facts["preflight"]["checks"]
    assert set(checks) == {"governor", "turbo", "load_average", "steal", "cgroup_quota", "battery"}
    assert all(c["status"] in ("ok", "warn", "unknown") for c in checks.values())
    r = cli("info")
    assert r.code == 0 and "pre-flight checks" in r.out and "cgroup_quota" in r.out


def test_quick_sweep_end_to_end(cli, tmp_path: Path):
    out = tmp_path / "run"
    r = cli("sweep", "--config", "quick", "--out", out)
    assert r.code == 0, r.err
    assert r.out.strip().splitlines()[-1] == str(out)
    df = load(out)
    assert len(df) == 4 * 2 * 3 + 2 * 2  # 1-D: 4 kernels x 2 n x 3 k; 2-D: 2 kernels x 1 n x 2 k
    assert set(df["status"]) == {"ok"}
    assert df.attrs["run"]["complete"] is True


def test_cli_grid_sweep(cli, tmp_path: Path):
    out = tmp_path / "run"
    r = cli("sweep", "--kernel", "direct-numpy", "--kernel", "fft-scipy", "--dim", "1", "--n", "64,128",
            "--k", "3:7:2", "--dtype", "float32", "--repeat", "2", "--min-time", "0.0005", "--quiet", "--out", out)
    assert r.code == 0, r.err
    assert r.out.strip() == str(out)  # --quiet: only the run directory
    df = load(out)
    assert len(df) == 2 * 2 * 3 and set(df["dtype"]) == {"float32"} and set(df["samples"]) == {2}


def test_verify_one_kernel(cli):
    r = cli("verify", "--kernel", "direct-numpy")
    assert r.code == 0, r.err
    assert "0 failed" in r.out


BAD = [
    (["sweep", "--n", "-5", "--k", "3", "--kernel", "direct"], "not positive"),
    (["sweep", "--n", "1024", "--k", "abc", "--kernel", "direct"], "not a number"),
    (["sweep", "--n", "0", "--k", "3", "--kernel", "direct"], "not positive"),
    (["sweep", "--n", "1024", "--k", "3", "--kernel", "nosuchkernel"], "valid kernels: direct"),
    (["sweep", "--n", "1024", "--k", "3", "--kernel", "direct", "--dtype", "float7"], "float7"),
    (["sweep", "--n", "1024", "--k", "3", "--kernel", "direct", "--mode", "middle"], "allowed: full, same, valid"),
    (["sweep", "--n", "1024", "--k", "3", "--kernel", "direct", "--dim", "3"], "dim"),
    (["sweep", "--n", "1024", "--k", "3", "--kernel", "direct", "--repeat", "0"], "--repeat"),
    (["sweep", "--n", "1024", "--k", "3", "--kernel", "direct", "--min-time", "x"], "--min-time"),
    (["sweep", "--n", "1024", "--k", "3", "--kernel", "direct", "--op", "lift", "--group", "p6"], "p6"),
    (["sweep", "--config", "/nonexistent.toml"], "does not exist"),
    (["sweep", "--resume", "/nonexistent-run"], "not a directory"),
    (["sweep", "--no-such-option"], "no-such-option"),
    (["verify", "--kernel", "zzz*"], "no kernel matches"),
]


@pytest.mark.parametrize("args, fragment", BAD)
def test_bad_input_exits_2_with_one_line(cli, tmp_path: Path, args, fragment):
    r = cli(*args, "--out", tmp_path / "x") if args[0] == "sweep" and "--resume" not in args else cli(*args)
    assert r.code == 2, (r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert fragment in lines[0]
    assert "Traceback" not in r.err
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_bad_toml_names_file_and_line(cli, tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml\n[")
    r = cli("sweep", "--config", bad, "--out", tmp_path / "x")
    assert r.code == 2 and "bad.toml" in r.err and "line 1" in r.err and len(r.err.strip().splitlines()) == 1


def test_unknown_toml_key(cli, tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[grid]]\nn = '64'\nsizes = 3\n")
    r = cli("sweep", "--config", bad, "--out", tmp_path / "x")
    assert r.code == 2 and "unknown key 'sizes'" in r.err


def test_resume_dir_that_is_not_a_run(cli, tmp_path: Path):
    r = cli("sweep", "--resume", tmp_path)
    assert r.code == 2 and "not a symbench run" in r.err


def test_out_existing_completed_run(cli, tmp_path: Path):
    args = ["sweep", "--kernel", "direct-numpy", "--n", "64", "--k", "3", "--repeat", "1", "--quiet", "--out",
            tmp_path / "run"]
    assert cli(*args).code == 0
    r = cli(*args)
    assert r.code == 2 and "already holds a completed run" in r.err
    assert len(load(tmp_path / "run")) == 1  # the existing run is untouched


def test_valid_mode_with_k_larger_than_n_is_not_an_error(cli, tmp_path: Path):
    r = cli("sweep", "--kernel", "direct-numpy,fft-scipy", "--n", "16", "--k", "40", "--mode", "valid",
            "--repeat", "1", "--quiet", "--out", tmp_path / "run")
    assert r.code == 0, r.err
    df = load(tmp_path / "run")
    assert set(df["status"]) == {"ok"}


def test_subprocess_bad_input_has_no_traceback(tmp_path: Path):
    r = subprocess.run([sys.executable, "-m", "symbench", "sweep", "--n", "1024", "--k", "abc", "--kernel", "direct",
                        "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
