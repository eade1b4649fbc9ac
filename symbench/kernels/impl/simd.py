"""Explicit SIMD vectors for numba: a vector type and five intrinsics.

Numba has no vector type, and LLVM's loop vectorizer only vectorizes the
innermost loop of a kernel, so it keeps a convolution's accumulators in
memory (one load and one store per multiply-add). Register blocking needs
accumulators that live in registers across the loops over taps and channels.
This module gives numba code an LLVM vector value, :class:`Vec`, one
register wide: 512 bits (16 float32 or 8 float64) on CPUs with AVX-512,
256 bits (8 float32 or 4 float64) on the others (:data:`VECTOR_BITS`), and the
operations a convolution tile needs:

``vzero_like(arr)``
    A zero vector of ``arr``'s dtype.
``vwidth(arr)``
    Lanes per vector for ``arr``'s dtype (a compile-time constant).
``vload(arr, i)``
    ``arr[i : i + width]`` of a 1-D contiguous array (unaligned load).
``vstore(arr, i, v)``
    ``arr[i : i + width] = v``.
``vsplat(s)``
    A vector with every lane equal to the scalar ``s``.
``vbroadcast(arr, i)``
    A vector with every lane equal to ``arr[i]`` (1-D contiguous array). The
    same as ``vsplat(arr[i])`` without the negative-index wrap-around that
    numba adds to ``arr[i]`` for a signed ``i`` (a compare and a select per
    load, which doubled the instructions of a channel tile).
``vfma(a, b, c)``
    ``a * b + c`` lane by lane, fused where the CPU has FMA (``llvm.fmuladd``).

There are no bounds checks: callers guarantee ``0 <= i`` and
``i + width <= len(arr)``. Only float32 and float64 arrays are accepted.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, models, register_model



def host_vector_bits() -> int:
    """512 on CPUs with AVX-512F, else 256 (AVX2 and narrower).

    A 512-bit vector on an AVX2 CPU is two ``ymm`` halves, which doubles the
    registers every tile needs: the 16 accumulators of a channel tile become
    32 of the 16 ``ymm`` registers and spill to the stack on every
    multiply-add (measured: the 64 -> 64 channel layer ran at 22 GFLOP/s on a
    Zen 3 core with 512-bit vectors). Tiles are sized for the register file
    the host has (numba compiles for the host CPU and caches per CPU).
    """
    try:
        import llvmlite.binding as llvm

        return 512 if llvm.get_host_cpu_features().get("avx512f", False) else 256
    except Exception:  # an llvmlite without the query: keep the wide default
        return 512


#: Vector register size in bits: the host's widest float vector (see :func:`host_vector_bits`).
VECTOR_BITS = host_vector_bits()


class Vec(types.Type):
    """An LLVM ``<width x dtype>`` value in numba's type system."""

    def __init__(self, dtype: types.Float, width: int) -> None:
        self.dtype = dtype
        self.width = width
        super().__init__(name=f"Vec({dtype} x {width})")


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):  # type: ignore[no-untyped-def]
        be_type = ir.VectorType(dmm.lookup(fe_type.dtype).get_value_type(), fe_type.width)
        super().__init__(dmm, fe_type, be_type)


def _float_dtype(dtype: types.Type) -> types.Float:
    if dtype not in (types.float32, types.float64):
        raise TypingError(f"SIMD vectors hold float32 or float64, not {dtype}")
    return dtype  # type: ignore[return-value]


def vec_of(dtype: types.Type) -> Vec:
    """The vector type of one register's worth of ``dtype``."""
    dtype = _float_dtype(dtype)
    return Vec(dtype, VECTOR_BITS // dtype.bitwidth)


def _check_array(arr: types.Type) -> None:
    if not isinstance(arr, types.Array) or arr.ndim != 1 or arr.layout != "C":
        raise TypingError(f"SIMD loads and stores need a 1-D C-contiguous array, not {arr}")


def _element_ptr(context, builder, arr_type, arr, index):  # type: ignore[no-untyped-def]
    ary = context.make_array(arr_type)(context, builder, arr)
    return builder.gep(ary.data, [index])


@intrinsic
def vzero_like(typingctx, arr):  # type: ignore[no-untyped-def]
    vt = vec_of(arr.dtype)

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        return ir.Constant(context.get_value_type(vt), [0.0] * vt.width)

    return vt(arr), codegen


@intrinsic
def vwidth(typingctx, arr):  # type: ignore[no-untyped-def]
    width = vec_of(arr.dtype).width

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        return context.get_constant(types.intp, width)

    return types.intp(arr), codegen


@intrinsic
def vload(typingctx, arr, index):  # type: ignore[no-untyped-def]
    _check_array(arr)
    vt = vec_of(arr.dtype)

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        ptr = _element_ptr(context, builder, sig.args[0], args[0], args[1])
        vptr = builder.bitcast(ptr, context.get_value_type(vt).as_pointer())
        # Aligned only to the element: convolution windows start anywhere.
        return builder.load(vptr, align=vt.dtype.bitwidth // 8)

    return vt(arr, types.intp), codegen


@intrinsic
def vstore(typingctx, arr, index, vec):  # type: ignore[no-untyped-def]
    _check_array(arr)
    if not isinstance(vec, Vec) or vec.dtype != arr.dtype:
        raise TypingError(f"cannot store {vec} into an array of {arr.dtype}")

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        ptr = _element_ptr(context, builder, sig.args[0], args[0], args[1])
        vptr = builder.bitcast(ptr, args[2].type.as_pointer())
        builder.store(args[2], vptr, align=vec.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(arr, types.intp, vec), codegen


@intrinsic
def vsplat(typingctx, scalar):  # type: ignore[no-untyped-def]
    vt = vec_of(scalar)

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        lt = context.get_value_type(vt)
        undef = ir.Constant(lt, ir.Undefined)
        one = builder.insert_element(undef, args[0], ir.Constant(ir.IntType(32), 0))
        mask = ir.Constant(ir.VectorType(ir.IntType(32), vt.width), [0] * vt.width)
        return builder.shuffle_vector(one, undef, mask)

    return vt(scalar), codegen


@intrinsic
def vfma(typingctx, a, b, c):  # type: ignore[no-untyped-def]
    if not (isinstance(a, Vec) and a == b == c):
        raise TypingError(f"vfma needs three vectors of one type, got {a}, {b}, {c}")

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        lt = args[0].type
        name = f"llvm.fmuladd.v{a.width}f{a.dtype.bitwidth}"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(lt, [lt, lt, lt]), name)
        return builder.call(fn, args)

    return a(a, b, c), codegen


@intrinsic
def vbroadcast(typingctx, arr, index):  # type: ignore[no-untyped-def]
    _check_array(arr)
    vt = vec_of(arr.dtype)

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        ptr = _element_ptr(context, builder, sig.args[0], args[0], args[1])
        scalar = builder.load(ptr)
        lt = context.get_value_type(vt)
        undef = ir.Constant(lt, ir.Undefined)
        one = builder.insert_element(undef, scalar, ir.Constant(ir.IntType(32), 0))
        mask = ir.Constant(ir.VectorType(ir.IntType(32), vt.width), [0] * vt.width)
        return builder.shuffle_vector(one, undef, mask)

    return vt(arr, types.intp), codegen
