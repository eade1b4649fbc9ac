"""Run files: writing, loading, truncated lines, schema versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from symbench.errors import RunDirError, SchemaError
from symbench.store import (COLUMNS, MEASUREMENTS, RUN_JSON, SAMPLES, SCHEMA_VERSION, RunWriter, SymbenchWarning,
                            load, load_samples, read_run_json)


def _row(k: int, status: str = "ok") -> dict:
    return {"run_id": "r", "kernel": "direct", "method": "direct", "op": "conv", "group": "none",
            "library": "x", "device": "cpu", "dim": 1, "n": 64, "k": k, "batch": 1, "c_in": 1, "c_out": 1,
            "dtype": "float64", "mode": "full", "threads": 1, "samples": 2, "loops": 10, "time_s": 1e-3 * k,
            "time_min_s": 1e-3, "time_q1_s": 1e-3, "time_q3_s": 1e-3, "time_mean_s": 1e-3,
            "time_std_s": 0.0, "setup_s": 0.1, "gflops": 1.5, "rel_err": 1e-16, "status": status,
            "message": "" if status == "ok" else "why, with a comma", "source": "grid", "seed": 0}


def _samples(k: int) -> list[dict]:
    base = {c: v for c, v in _row(k).items() if c in ("run_id", "kernel", "op", "group", "dim", "n", "k", "batch",
                                                       "c_in", "c_out", "dtype", "mode", "threads", "source")}
    return [{**base, "sample": i, "loops": 10, "time_s": 1e-3 * k} for i in range(2)]


def test_write_and_load(tmp_path: Path):
    w = RunWriter.create(tmp_path / "run", {"run_id": "r"})
    w.append(_row(3), _samples(3))
    w.append(_row(5, "skipped"))
    w.finish(complete=True)
    df = load(tmp_path / "run")
    assert list(df.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert df["k"].tolist() == [3, 5]
    assert df["message"].tolist() == ["", "why, with a comma"]
    assert df["time_s"].iloc[0] == pytest.approx(3e-3)
    assert df.attrs["run"]["complete"] is True
    assert df.attrs["run"]["schema_version"] == SCHEMA_VERSION
    s = load_samples(tmp_path / "run")
    assert len(s) == 2 and set(s["k"]) == {3}
    # a measurements.csv given directly also loads
    assert len(load(tmp_path / "run" / MEASUREMENTS)) == 2


def test_create_refuses_existing_runs(tmp_path: Path):
    w = RunWriter.create(tmp_path / "run", {"run_id": "r"})
    with pytest.raises(RunDirError, match="in use by another symbench"):  # its writer is alive
        RunWriter.create(tmp_path / "run", {"run_id": "r2"})
    w.close()
    with pytest.raises(RunDirError, match="unfinished run.*--resume"):
        RunWriter.create(tmp_path / "run", {"run_id": "r2"})
    w.finish(complete=True)
    with pytest.raises(RunDirError, match="completed run"):
        RunWriter.create(tmp_path / "run", {"run_id": "r2"})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file.txt").write_text("x")
    with pytest.raises(RunDirError, match="not an empty directory"):
        RunWriter.create(tmp_path / "other", {"run_id": "r3"})
    RunWriter.create(tmp_path / "empty", {"run_id": "r4"})  # new directories are fine


def test_truncated_last_line_is_skipped_with_warning(tmp_path: Path):
    w = RunWriter.create(tmp_path / "run", {"run_id": "r"})
    w.append(_row(3))
    with open(tmp_path / "run" / MEASUREMENTS, "a") as f:
        f.write("r,direct,direct,conv,no")  # a crash mid-row
    with pytest.warns(SymbenchWarning, match="truncated"):
        df = load(tmp_path / "run")
    assert len(df) == 1


def test_reopen_repairs_partial_rows_and_orphan_samples(tmp_path: Path):
    w = RunWriter.create(tmp_path / "run", {"run_id": "r"})
    w.append(_row(3), _samples(3))
    # samples of k=5 written, then the process died before its row
    w._append(SAMPLES, "".join(
        ",".join(str(s.get(c, "")) for c in load_samples(tmp_path / "run").columns) + "\n" for s in _samples(5)))
    with open(tmp_path / "run" / MEASUREMENTS, "a") as f:
        f.write("r,direct,dir")
    w.close()  # the process died: the OS released its lock
    with pytest.warns(SymbenchWarning):
        w2 = RunWriter.reopen(tmp_path / "run")
    assert len(w2.rows()) == 1
    assert set(load_samples(tmp_path / "run")["k"]) == {3}


def test_newer_schema_is_refused(tmp_path: Path):
    w = RunWriter.create(tmp_path / "run", {"run_id": "r"})
    w.meta["schema_version"] = SCHEMA_VERSION + 1
    w.save_meta()
    with pytest.raises(SchemaError, match="newer symbench"):
        load(tmp_path / "run")


def test_older_file_without_extra_columns_loads(tmp_path: Path):
    run = tmp_path / "run"
    RunWriter.create(run, {"run_id": "r"})
    row = _row(3)
    core = COLUMNS[:29]
    (run / MEASUREMENTS).write_text(",".join(core) + "\n" + ",".join(str(row[c]) for c in core) + "\n")
    df = load(run)
    assert df["source"].tolist() == ["grid"] and df["seed"].tolist() == [0]


@pytest.mark.parametrize("content, fragment", [
    (None, "does not exist"),
    ("a,b,c\n1,2,3\n", "missing columns"),
])
def test_bad_csv(tmp_path: Path, content, fragment):
    path = tmp_path / "m.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RunDirError, match=fragment):
        load(path)


def test_not_a_run(tmp_path: Path):
    with pytest.raises(RunDirError, match="not a symbench run"):
        read_run_json(tmp_path)
    (tmp_path / RUN_JSON).write_text("{broken")
    with pytest.raises(RunDirError, match="cannot read"):
        read_run_json(tmp_path)
    (tmp_path / RUN_JSON).write_text(json.dumps({"x": 1}))
    with pytest.raises(RunDirError, match="no schema_version"):
        read_run_json(tmp_path)
