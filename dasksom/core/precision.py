"""Precision of the BMU search's products: exact, TF32, bfloat16 or float16 operands.

Finding best-matching units is one large product per row block (design.md section 5), and on GPUs
with tensor cores that product runs several times faster with narrow operands.  A
:class:`Precision` says how the two operands are rounded before they are multiplied:

========== ================= ============================== ==================================
name       operand bits      range                          on a GPU
========== ================= ============================== ==================================
exact      the data's type   the data's type                the compute type's own product
tf32       10 fraction bits  float32's                      float32 in, TF32 tensor cores
bfloat16   7 fraction bits   float32's                      bfloat16 in, float32 out
float16    10 fraction bits  up to 65504                    float16 in, float32 out
========== ================= ============================== ==================================

Products are always accumulated in float32 (or the data's float64 when exact), and only the
choice of BMU is affected: the sums ``S`` and ``n``, the distances and every quality measure
are taken from the data at full precision.

On CuPy arrays a narrow product is one cuBLAS ``gemmEx`` call with float32 output.  On NumPy
arrays the operands are rounded to the narrow format (to nearest, ties to even) and multiplied
in float32: the same inputs a GPU's tensor cores see, so a CPU run predicts the map a GPU run
gives (only the order of the float32 additions differs).  That emulation costs a little time
and saves none: on CPUs, narrow precisions are for checking, ``exact`` for speed.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# CUDA and cuBLAS enumerators (library_types.h, cublas_api.h): a stable ABI, named here so that
# the call does not depend on which CuPy version exports which constant.
CUDA_R_32F = 0
CUDA_R_16F = 2
CUDA_R_16BF = 14
CUBLAS_OP_N = 0
CUBLAS_COMPUTE_32F = 68
CUBLAS_COMPUTE_32F_FAST_TF32 = 77
CUBLAS_GEMM_DEFAULT = -1

FLOAT32_FRACTION_BITS = 23
# One CuPy elementwise operation: float32 ``x`` to bfloat16 bits ``y``, to nearest, ties to even.
BFLOAT16_BITS_OPERATION = (
    "const unsigned int b = __float_as_uint(x);"
    "y = (unsigned short)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);"
)


@dataclass(frozen=True)
class Precision:
    """How the BMU search's product rounds its operands.

    Attributes
    ----------
    name : the name users choose it by
    fraction_bits : fraction (mantissa) bits an operand keeps; None keeps the data's own type
    largest : the largest operand magnitude the format holds (inf: float32's range applies)
    cuda_type : CUDA data type of the operands on a GPU (None: the product is CuPy's own)
    compute_type : cuBLAS compute type of the GPU product
    """

    name: str
    fraction_bits: int | None
    largest: float
    cuda_type: int | None
    compute_type: int

    @property
    def exact(self) -> bool:
        """Whether operands keep the data's own type (``"exact"``)."""
        return self.fraction_bits is None

    def round(self, x: Any) -> Any:
        """The float32 values that ``x`` becomes in this format (``x`` itself when exact).

        Parameters
        ----------
        x : array, NumPy or CuPy
            Finite values.

        Returns
        -------
        float32 array shaped like ``x``, in its array module
        """
        if self.exact:
            return x
        xp = _array_module(x)
        x = xp.asarray(x, dtype=np.float32)
        if self.name == "float16":
            return x.astype(np.float16).astype(np.float32)
        return round_fraction_bits(x, self.fraction_bits or 0)

    def operand(self, x: Any) -> Any:
        """``x`` as the product takes it: rounded float32 on NumPy, the narrow type on CuPy.

        bfloat16 operands on CuPy are held as their 16-bit patterns in a ``uint16`` array;
        TF32 operands stay float32 (the tensor cores round them).

        Parameters
        ----------
        x : array, NumPy or CuPy
            A row block or the weights' scoring operand.

        Returns
        -------
        array shaped like ``x``, in its array module
            ``x`` itself when exact.
        """
        if self.exact:
            return x
        if _array_module(x) is np:
            return self.round(x)
        if self.name == "float16":
            # Through float32, as round() does: float64 straight to float16 rounds once, and
            # differently from the emulation where float32 rounding lands on a midpoint.
            return x.astype(np.float32, copy=False).astype(np.float16)
        if self.name == "bfloat16":
            return _device_bfloat16_bits()(x.astype(np.float32, copy=False))
        return x.astype(np.float32, copy=False)

    def product_dtype(self, dtype: Any) -> np.dtype:
        """Type of the product's result for operands widened from ``dtype``.

        Parameters
        ----------
        dtype : numpy dtype
            The compute dtype.

        Returns
        -------
        numpy.dtype
            ``dtype`` when exact, else float32.
        """
        return np.dtype(dtype) if self.exact else np.dtype(np.float32)

    def matmul(self, a: Any, b: Any) -> Any:
        """``a @ b`` for operands made by :meth:`operand`: ``(rows, D) @ (D, M)``.

        Parameters
        ----------
        a : array of shape (rows, D)
            The row block's operand.
        b : array of shape (D, M)
            The weights' operand.

        Returns
        -------
        array of shape (rows, M)
            NumPy's product on NumPy operands; on CuPy one cuBLAS ``gemmEx`` call with a
            float32 result unless exact.
        """
        if self.exact or _array_module(a) is np:
            return a @ b
        return _device_gemm(a, b, self)

    def check_range(self, largest: float, product_limit: float = math.inf) -> None:
        """Refuse values that this format cannot hold.

        Parameters
        ----------
        largest : float
            The data's and the weights' largest magnitude.
        product_limit : float, default=math.inf
            The largest magnitude whose products stay within float32, where a narrow product
            accumulates (:func:`dasksom.core.metrics.float32_limit`).

        Raises
        ------
        ValueError
            When a narrow format cannot hold ``largest``, saying what to do instead.
        """
        limit = min(self.largest, product_limit)
        if self.exact or largest <= limit:
            return
        wider = " or tf32 / bfloat16, which have float32's range" if self.name == "float16" else ""
        raise ValueError(
            f"precision={self.name!r} holds values up to {limit:g} here, but the data or the "
            f"weights reach {largest:g}. Scale the data (e.g. to [0, 1]), or choose "
            f"precision='exact'{wider}."
        )


PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("exact", None, math.inf, None, CUBLAS_COMPUTE_32F),
        Precision("tf32", 10, math.inf, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32),
        Precision("bfloat16", 7, math.inf, CUDA_R_16BF, CUBLAS_COMPUTE_32F),
        Precision("float16", 10, float(np.finfo(np.float16).max), CUDA_R_16F, CUBLAS_COMPUTE_32F),
    )
}


def get_precision(name: str) -> Precision:
    """The :class:`Precision` called ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`PRECISIONS`.

    Returns
    -------
    Precision

    Raises
    ------
    ValueError
        When ``name`` is not one, naming the choices.
    """
    if not isinstance(name, str) or name not in PRECISIONS:
        raise ValueError(f"Unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}.")
    return PRECISIONS[name]


def _array_module(x: Any) -> Any:
    """:func:`dasksom.backends.arrays.array_module`, imported when first needed."""
    from dasksom.backends.arrays import array_module

    return array_module(x)


def round_fraction_bits(x: Any, bits: int) -> Any:
    """float32 ``x`` rounded to ``bits`` fraction bits, to nearest with ties to even.

    Works on the bit patterns, so it is exact and runs the same on NumPy and CuPy.  Finite
    values only (the data has been checked); a value that rounds past float32's largest
    becomes inf, as in hardware.

    Parameters
    ----------
    x : array, NumPy or CuPy
        Values, converted to float32 first.
    bits : int
        Fraction bits to keep, fewer than float32's 23.

    Returns
    -------
    float32 array shaped like ``x``
    """
    xp = _array_module(x)
    dropped = FLOAT32_FRACTION_BITS - bits
    pattern = xp.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    lowest_kept = (pattern >> np.uint32(dropped)) & np.uint32(1)
    half = np.uint32((1 << (dropped - 1)) - 1)
    rounded = (pattern + half + lowest_kept) & np.uint32(~((1 << dropped) - 1) & 0xFFFFFFFF)
    return rounded.view(np.float32)


def bfloat16_bits(x: Any) -> Any:
    """The bfloat16 bit patterns of float32 ``x``, rounded to nearest, ties to even.

    Parameters
    ----------
    x : array, NumPy or CuPy
        Finite values.

    Returns
    -------
    uint16 array shaped like ``x``
    """
    rounded = round_fraction_bits(x, 7)
    return (rounded.view(np.uint32) >> np.uint32(16)).astype(np.uint16)


@functools.cache
def _device_bfloat16_bits() -> Any:
    """:func:`bfloat16_bits` as one CuPy kernel (one compilation, one pass over the data)."""
    import cupy

    return cupy.ElementwiseKernel(
        "float32 x", "uint16 y", BFLOAT16_BITS_OPERATION, "dasksom_bfloat16_bits"
    )


def gemm_arguments(a_shape: tuple[int, int], b_shape: tuple[int, int]) -> dict[str, int]:
    """cuBLAS (column-major) arguments for the row-major product ``C = A @ B``.

    A row-major ``(rows, D)`` array is, read column-major, its ``(D, rows)`` transpose, so
    ``C^T = B^T A^T`` is computed with no transposition: ``m = M``, ``n = rows``, ``k = D``,
    the first operand ``B`` (leading dimension ``M``), the second ``A`` (leading dimension
    ``D``), and ``C`` written as ``(M, rows)`` column-major, which is ``(rows, M)`` row-major.

    Parameters
    ----------
    a_shape : (int, int)
        ``(rows, D)``.
    b_shape : (int, int)
        ``(D, M)``.

    Returns
    -------
    dict
        ``m``, ``n``, ``k``, ``lda``, ``ldb`` and ``ldc``.

    Raises
    ------
    ValueError
        When the inner dimensions differ.
    """
    rows, depth = a_shape
    depth_b, n_nodes = b_shape
    if depth != depth_b:
        raise ValueError(f"Cannot multiply {a_shape} by {b_shape}.")
    return {"m": n_nodes, "n": rows, "k": depth, "lda": n_nodes, "ldb": depth, "ldc": n_nodes}


def _device_gemm(a: Any, b: Any, precision: Precision) -> Any:
    """``a @ b`` on the GPU with narrow operands and a float32 result (one ``gemmEx`` call)."""
    import cupy
    from cupy.cuda import device
    from cupy_backends.cuda.libs import cublas

    a = cupy.ascontiguousarray(a)
    b = cupy.ascontiguousarray(b)
    shape = gemm_arguments(a.shape, b.shape)
    out = cupy.empty((a.shape[0], b.shape[1]), dtype=np.float32)
    if out.size == 0:
        return out
    one = np.ones(1, dtype=np.float32)
    zero = np.zeros(1, dtype=np.float32)
    handle = device.get_cublas_handle()
    cublas.setStream(handle, cupy.cuda.get_current_stream().ptr)
    cuda_type = precision.cuda_type
    cublas.gemmEx(
        handle,
        CUBLAS_OP_N,
        CUBLAS_OP_N,
        shape["m"],
        shape["n"],
        shape["k"],
        one.ctypes.data,
        b.data.ptr,
        cuda_type,
        shape["lda"],
        a.data.ptr,
        cuda_type,
        shape["ldb"],
        zero.ctypes.data,
        out.data.ptr,
        CUDA_R_32F,
        shape["ldc"],
        precision.compute_type,
        CUBLAS_GEMM_DEFAULT,
    )
    return out
