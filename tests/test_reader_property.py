"""The tolerant reader under random damage (Hypothesis).

A run's files are corrupted at random: truncated, bytes inserted, lines glued
together or cut, columns reordered. Whatever happens, every line that is still
intact loads, and when rows are lost a warning says how many lines were
skipped and where the first one is.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from symbench.errors import SymbenchWarning  # noqa: E402
from symbench.store import MEASUREMENTS, SAMPLES, load, load_samples  # noqa: E402
from tests.synth import Table  # noqa: E402

_TEMPLATE: dict[str, Path] = {}


def _template() -> Path:
    """One small, valid run (12 rows, 36 samples), made once per session."""
    if "run" not in _TEMPLATE:
        t = Table()
        for name in ("direct-numpy", "fft-scipy"):
            for n in (256, 1024):
                for k in (3, 9, 33):
                    t.add(name, k, 1e-6 * k * n if name.startswith("direct") else 2e-5, n=n, count=3)
        _TEMPLATE["run"] = t.write(Path(tempfile.mkdtemp(prefix="symbench-prop-")) / "run")
    return _TEMPLATE["run"]


def _reorder(data: bytes, order: list[int]) -> bytes:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(data.decode())))
    perm = [i for i in order if i < len(rows[0])]
    perm += [i for i in range(len(rows[0])) if i not in perm]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([[r[i] for i in perm] for r in rows])
    return out.getvalue().encode()


damage = st.lists(st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=12)),
    st.tuples(st.just("glue"), st.floats(0, 1)),
    st.tuples(st.just("cut"), st.floats(0, 1), st.integers(1, 40)),
), min_size=0, max_size=4)


def _apply(data: bytes, ops: list[tuple]) -> bytes:
    head_end = data.index(b"\n") + 1  # the header stays whole: without it nothing can be read
    head, body = data[:head_end], bytearray(data[head_end:])
    for op in ops:
        if not body:
            break
        at = min(int(op[1] * len(body)), len(body) - 1)
        if op[0] == "truncate":
            del body[at:]
        elif op[0] == "insert":
            body[at:at] = op[2]
        elif op[0] == "glue":
            nl = body.find(b"\n", at)
            if nl >= 0:
                del body[nl]
        elif op[0] == "cut":
            end = body.find(b"\n", at)
            end = len(body) if end < 0 else end
            del body[at:min(end, at + op[2])]
    return head + bytes(body)


def _keys(df, cols) -> set[tuple]:
    return {tuple(str(v) for v in r) for r in df[cols].itertuples(index=False)}


@pytest.mark.parametrize("name", [MEASUREMENTS, SAMPLES])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=damage, order=st.permutations(list(range(8))), reorder=st.booleans())
def test_every_intact_row_loads_and_damage_is_named(tmp_path, name, ops, order, reorder):
    src = _template()
    run = Path(tempfile.mkdtemp(dir=tmp_path))
    shutil.copytree(src, run, dirs_exist_ok=True)
    data = (src / name).read_bytes()
    if reorder:
        data = _reorder(data, order)
    bad = _apply(data, ops)
    (run / name).write_bytes(bad)
    lines = data.split(b"\n")[1:-1]
    intact = [ln for ln in lines if b"\n" + ln + b"\n" in b"\n" + bad]
    reader, cols = ((load, ["kernel", "n", "k"]) if name == MEASUREMENTS
                    else (load_samples, ["kernel", "n", "k", "sample"]))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        df = reader(run)
    told = [str(w.message) for w in rec
            if issubclass(w.category, SymbenchWarning) and "do not parse" in str(w.message)]
    # Every intact line is loaded, with integer n and k.
    header = data.split(b"\n")[0].decode().split(",")
    want = set()
    for ln in intact:
        fields = dict(zip(header, ln.decode().split(",")))
        want.add(tuple(fields[c] for c in cols))
    assert want <= _keys(df, cols)
    assert str(df["n"].dtype) == "int64" and str(df["k"].dtype) == "int64"
    # Nothing is lost silently: every line with content either loads or is counted in the one
    # warning for the file (which names the first bad line). Only a line erased whole, or
    # rows cut off at a line boundary, leave nothing to count.
    import re

    body = bad.split(b"\n")[1:]
    content = sum(1 for ln in body if ln.strip())
    skipped = sum(int(re.search(r"skipped (\d+) line", t).group(1)) for t in told)
    assert len(df) + skipped == content, (told, len(df), content)
    assert len(told) <= 1
    if skipped:
        assert name in told[0] and re.search(r"first: line \d+", told[0])
