"""The registry and every CPU conv kernel against SciPy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from symbench.errors import KernelError, SymbenchError
from symbench.kernels import Kernel, KernelOptions, Prepared, all_kernels, get, register, resolve, unregister
from symbench.problem import Problem
from symbench.verify import Check, conv_suite, verify

CPU_CONV = ["direct", "direct-numpy", "direct-scipy", "fft-numpy", "fft-scipy", "oa-scipy", "fft-pyfftw",
            "auto-scipy", "auto-opencv"]


def test_every_spec_cpu_kernel_is_registered():
    names = all_kernels()
    for name in CPU_CONV:
        assert name in names
        k = names[name]
        assert k.device == "cpu" and "conv" in k.ops and k.method in ("direct", "fft", "auto")
    assert get("auto-opencv").dims == (2,)
    assert get("direct-numpy").dims == (1,)


def test_unknown_kernel_lists_valid_names():
    with pytest.raises(KernelError) as err:
        get("nosuchkernel")
    assert "fft-pyfftw" in str(err.value) and "nosuchkernel" in str(err.value)


def test_resolve_globs_and_lists():
    names = [k.name for k in resolve(["fft-*", "direct,direct-numpy"])]
    assert names[:2] == ["direct", "direct-numpy"]
    assert {"fft-numpy", "fft-scipy", "fft-pyfftw"} <= set(names)
    with pytest.raises(KernelError, match="no kernel matches"):
        resolve(["zzz-*"])


# Every kernel against the reference: tests/test_every_kernel.py, parametrised over the registry.


def test_unsupported_is_a_reason_not_a_crash():
    assert "1-D" in get("direct-numpy").supports(Problem(dim=2, n=8, k=3))
    assert "complex128" in get("auto-opencv").supports(Problem(dim=2, n=8, k=3, dtype="complex128"))
    assert "op" in get("fft-scipy").supports(Problem(op="lift", group="p4", dim=2, n=8, k=3, mode="valid"))


class _Wrong(Kernel):
    name = "test-wrong"
    method = "fft"
    library = "test"

    def prepare(self, problem, x, h, options=KernelOptions()):
        from symbench.reference import conv_reference

        y = conv_reference(x, h, problem.mode) * 1.01  # 1% off
        return Prepared(lambda: None, lambda: y)


def test_verify_flags_a_wrong_kernel():
    checks = verify([_Wrong()])
    assert checks and all(c.status == "fail" for c in checks)
    assert "rel_err" in checks[0].message


def test_entry_point_kernels(monkeypatch):
    import symbench.kernels.registry as reg

    class EP:
        def __init__(self, name, value, obj):
            self.name, self.value, self._obj = name, value, obj

        def load(self):
            if isinstance(self._obj, Exception):
                raise self._obj
            return self._obj

    eps = [EP("test-wrong", "tests:_Wrong", _Wrong), EP("test-broken", "nope:thing", ImportError("no module nope"))]
    monkeypatch.setattr(reg, "entry_points", lambda group: eps if group == reg.ENTRY_POINT_GROUP else [])
    with reg.temporary():
        names = reg.reload()
        assert "test-wrong" in names
        broken = names["test-broken"]
        assert not broken.available and "failed to load" in broken.unavailable_reason()
    assert "test-wrong" not in all_kernels()


def test_register_and_unregister():
    register(_Wrong())
    try:
        assert get("test-wrong").library == "test"
    finally:
        unregister("test-wrong")
    with pytest.raises(KernelError):
        get("test-wrong")


def test_fftw_uses_wisdom_cache(tmp_path, monkeypatch):
    pytest.importorskip("pyfftw")
    import symbench.kernels.fftw as fftw

    monkeypatch.setenv("SYMBENCH_CACHE_DIR", str(tmp_path))
    p = Problem(n=300, k=17)
    from symbench.problem import make_inputs

    x, h = make_inputs(p)
    prepared = get("fft-pyfftw").prepare(p, x, h, KernelOptions(planner="estimate"))
    prepared.call()
    assert fftw.wisdom_path().exists()
    assert prepared.notes["planner"] == "estimate"
    np.testing.assert_allclose(prepared.result()[0, 0], scipy.signal.convolve(x[0, 0], h[0, 0]), atol=1e-9)
    # Preparing what was planned already adds no wisdom: the file is not written again.
    writes = []
    real_replace = fftw.os.replace
    monkeypatch.setattr(fftw.os, "replace", lambda a, b: (writes.append(b), real_replace(a, b)))
    get("fft-pyfftw").prepare(p, x, h, KernelOptions(planner="estimate")).close()
    assert writes == []
    monkeypatch.setattr(fftw, "_wisdom_saved", None)  # as if the file were older than this process's wisdom
    get("fft-pyfftw").prepare(p, x, h, KernelOptions(planner="estimate")).close()
    assert writes == [fftw.wisdom_path()]
