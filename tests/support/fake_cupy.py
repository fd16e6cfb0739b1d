"""A NumPy-backed stand-in for the parts of CuPy, cupyx and cupy_backends that dasksom uses.

``install(monkeypatch)`` puts it in ``sys.modules`` as ``cupy`` (with ``cupy.cuda``,
``cupy.cuda.device``, ``cupyx.scipy.sparse`` and ``cupy_backends.cuda.libs.cublas``), so that
``dasksom.backends.arrays.array_module`` takes its arrays for CuPy's and every ``xp is not np``
branch runs on a machine without a GPU.

What it can prove, because it keeps CuPy's rules where they differ from NumPy's:

- device arrays (:class:`DeviceArray`, a ``numpy.ndarray`` subclass whose class lives in
  module ``cupy``) never meet host arrays: a NumPy array, 0-d included, given to a ufunc or
  to a ``cupy.*`` function raises ``TypeError`` as in CuPy (creation functions copy host data
  to the device; index arguments may be on the host, as CuPy converts them);
  ``numpy.*`` functions on device arrays run only where ``cupy`` has a function of that name
  (CuPy's ``__array_function__``); reductions give 0-d device arrays, not scalars;
- ``cupy`` holds only the functions listed below, names that CuPy has, with CuPy's stable
  ``argsort`` and CuPy 13's ``bincount``, which fails on an empty array (it takes the max);
- ``cublas.gemmEx`` works from raw pointers, as cuBLAS does: it finds each operand in the
  memory of a live device array (``.data.ptr``), reads it column-major with the given type
  code (float32, float16, bfloat16 bit patterns) and leading dimension, refuses leading
  dimensions below the rows, reads past an allocation, device pointers for alpha and beta and
  unsupported type combinations, and writes ``C = alpha A B + beta C`` (float32 sums, TF32
  operands under the fast-TF32 compute type, C unread when beta is 0) into C's memory; a
  wrong pointer order, leading dimension or type code gives an error or wrong numbers;
- the ``dasksom_bfloat16_bits`` elementwise kernel and the ``best_columns`` raw kernel check
  their parameters (the raw kernel: its CUDA parameter list too), template types, launch
  shape and arguments (order, types, contiguity, sizes) and write their outputs in place,
  computing with NumPy references;
- ``cupyx.scipy.sparse.csr_matrix`` takes device arrays only, of the types cupyx allows.

What it cannot prove: that the CUDA sources compile or compute what their references do
(``BEST_COLUMNS_SOURCE``, the bfloat16 expression), that real CuPy has each function with the
same signature and casting rules, how TF32 hardware rounds, anything about streams,
asynchrony, memory pools or speed; and it cannot see a device array turned into a NumPy
array by ``numpy.asarray`` (a subclass passes silently where CuPy raises).
"""

from __future__ import annotations

import ctypes
import functools
import re
import sys
import types
import weakref
from typing import Any

import numpy as np
import scipy.sparse

from dasksom.core.precision import bfloat16_bits

FREE_BYTES = 1 << 30  # what runtime.memGetInfo reports free (tests may change it)


class DeviceArray(np.ndarray):
    """A "device" array: NumPy memory, CuPy's module name and CuPy's rules for mixing."""

    def get(self, stream: Any = None) -> np.ndarray:
        """A host (plain NumPy) copy, as ``cupy.ndarray.get``."""
        return np.array(self.view(np.ndarray), copy=True)

    @property
    def data(self) -> Any:
        """``.data.ptr``: the address of the first element, remembered as device memory."""
        ptr = self.__array_interface__["data"][0]
        _HANDED_OUT[ptr] = self
        return types.SimpleNamespace(ptr=ptr)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out", ())
        _refuse_host(ufunc.__name__, inputs + tuple(out))
        if out:
            kwargs["out"] = tuple(_host(o) for o in out)
        result = getattr(ufunc, method)(*_host(inputs), **kwargs)
        if out:
            return out[0] if len(out) == 1 else out
        return _device(result)

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        implementation = FUNCTIONS.get(func.__name__) if func.__module__ == "numpy" else None
        if implementation is None:  # CuPy returns NotImplemented: numpy raises TypeError
            raise TypeError(f"no cupy.{func.__name__} for numpy.{func.__name__}")
        return implementation(*args, **kwargs)  # which refuses host arrays


DeviceArray.__module__ = "cupy"
DeviceArray.__name__ = DeviceArray.__qualname__ = "ndarray"

# Device arrays whose .data.ptr was taken, by address (the memory gemmEx may read and write).
_HANDED_OUT: weakref.WeakValueDictionary[int, DeviceArray] = weakref.WeakValueDictionary()


def _host(value: Any) -> Any:
    """Device arrays as plain NumPy views (same memory), inside lists and tuples too."""
    if isinstance(value, DeviceArray):
        return value.view(np.ndarray)
    if isinstance(value, list | tuple):
        return type(value)(_host(v) for v in value)
    return value


def _device(value: Any) -> Any:
    """NumPy results as device arrays; NumPy scalars as 0-d device arrays, as CuPy returns."""
    if isinstance(value, np.ndarray):
        return value.view(DeviceArray)
    if isinstance(value, np.generic):
        return np.asarray(value).view(DeviceArray)
    if isinstance(value, list | tuple):
        return type(value)(_device(v) for v in value)
    return value


def _refuse_host(what: str, values: Any) -> None:
    for value in values:
        if isinstance(value, list | tuple):
            _refuse_host(what, value)
        elif isinstance(value, np.ndarray) and not isinstance(value, DeviceArray):
            raise TypeError(
                f"Unsupported type {type(value)}: {what} takes device arrays, and this one is "
                "on the host (move it with cupy.asarray)"
            )


def _on_device(name: str, function: Any) -> Any:
    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        checked = args[:1] if name in HOST_INDICES else (*args, *kwargs.values())
        _refuse_host(f"cupy.{name}", checked)
        kwargs = {key: _host(value) for key, value in kwargs.items()}
        return _device(function(*_host(args), **kwargs))

    return run


def _creation(function: Any) -> Any:
    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], np.ndarray) and not isinstance(args[0], DeviceArray):
            args = (np.array(args[0], copy=True), *args[1:])  # host to device is a copy
        kwargs = {key: _host(value) for key, value in kwargs.items()}
        return _device(function(*_host(args), **kwargs))

    return run


# cupy.* functions: all exist in CuPy under these names.  Creation functions take host data.
CREATION = ("array", "asarray", "ascontiguousarray", "arange", "empty", "full", "ones", "zeros")
DEVICE = (
    "abs", "all", "any", "argmax", "argmin", "argwhere", "broadcast_to", "concatenate",
    "count_nonzero", "cumsum", "dot", "einsum", "empty_like", "flatnonzero", "full_like",
    "isfinite", "isinf", "isnan", "matmul", "max", "maximum", "mean", "min", "minimum", "ndim",
    "nanmax", "nanmean", "nanmin", "nansum", "nextafter", "nonzero", "ones_like", "repeat",
    "reshape", "shape", "sort", "sqrt", "stack", "subtract", "sum", "take", "tensordot",
    "transpose", "where", "zeros_like",
)  # fmt: skip
# Functions whose arguments after the first are indices, which CuPy moves to the device itself.
HOST_INDICES = ("take",)
FUNCTIONS: dict[str, Any] = {name: _creation(getattr(np, name)) for name in CREATION}
FUNCTIONS.update({name: _on_device(name, getattr(np, name)) for name in DEVICE})
# CuPy sorts stably (radix sort) whatever ``kind`` says; NumPy's default is not stable.
FUNCTIONS["argsort"] = _on_device("argsort", functools.partial(np.argsort, kind="stable"))


def _bincount(x: np.ndarray, weights: Any = None, minlength: Any = None) -> np.ndarray:
    """CuPy 13's bincount: its length is ``int(cupy.max(x)) + 1``, so no empty ``x``."""
    if x.size == 0:
        raise ValueError("zero-size array to reduction operation cupy_max which has no identity")
    return np.bincount(x, weights, minlength or 0)


FUNCTIONS["bincount"] = _on_device("bincount", _bincount)
FUNCTIONS["asnumpy"] = lambda a, **_: a.get() if isinstance(a, DeviceArray) else np.asarray(a)


# --- kernels ------------------------------------------------------------------------------


def _check_device(name: str, value: Any, dtype: Any, ndim: int | None = None) -> None:
    if not isinstance(value, DeviceArray):
        raise TypeError(f"{name} must be a device array, got {type(value).__name__}")
    if value.dtype != np.dtype(dtype):
        raise TypeError(f"{name} must be {np.dtype(dtype)}, got {value.dtype}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), not {value.ndim}")


class ElementwiseKernel:
    """``cupy.ElementwiseKernel``, for the kernels in :data:`ELEMENTWISE` only."""

    def __init__(
        self, in_params: str, out_params: str, operation: str, name: str = "kernel", **_: Any
    ) -> None:
        if name not in ELEMENTWISE:
            raise NotImplementedError(f"the fake has no reference for kernel {name!r}")
        expected_in, expected_out, self.reference = ELEMENTWISE[name]
        if (in_params, out_params) != (expected_in, expected_out):
            raise ValueError(f"{name}: parameters {in_params!r} -> {out_params!r}")
        self.in_dtype, self.out_dtype = (np.dtype(p.split()[0]) for p in (in_params, out_params))

    def __call__(self, x: Any, out: Any = None) -> Any:
        _check_device("the kernel's input", x, self.in_dtype)
        if out is None:
            out = FUNCTIONS["empty"](x.shape, dtype=self.out_dtype)
        _check_device("the kernel's output", out, self.out_dtype, ndim=x.ndim)
        out[...] = _device(self.reference(x.get()))
        return out


# name: (in_params, out_params, NumPy reference)
ELEMENTWISE = {"dasksom_bfloat16_bits": ("float32 x", "uint16 y", bfloat16_bits)}


def _best_columns(grid: tuple, args: tuple, dtype: np.dtype) -> None:
    """The fused search's contract: ``out[i]`` = column of row i's highest scores - offsets."""
    scores, offsets, n_cols, out = args
    _check_device("scores", scores, dtype)
    _check_device("offsets", offsets, dtype, ndim=1)
    if type(n_cols) is not np.int64:  # the kernel's ``const long long``
        raise TypeError(f"n_cols must be numpy.int64, got {type(n_cols).__name__}")
    _check_device("out", out, np.int64, ndim=1)
    if not all(a.flags.c_contiguous for a in (scores, offsets, out)):
        raise ValueError("the kernel indexes raw pointers: C-contiguous arrays only")
    (n_rows,) = grid
    if offsets.size != n_cols or scores.size != n_rows * n_cols or out.size != n_rows:
        raise ValueError("scores, offsets, n_cols and out do not describe grid rows of n_cols")
    rows = scores.get().reshape(n_rows, int(n_cols))
    out[...] = _device(np.argmax(rows - offsets.get(), axis=1))  # ties to the lowest column


class RawModule:
    """``cupy.RawModule``: templates named in ``name_expressions``, references in RAW_KERNELS."""

    def __init__(self, code: str, *, name_expressions: Any = (), **_: Any) -> None:
        self.code, self.names = code, tuple(name_expressions)

    def get_function(self, name: str) -> Any:
        if name not in self.names:
            raise ValueError(f"{name!r} is not among the name_expressions {self.names}")
        template, _, argument = name.partition("<")
        expected, reference = RAW_KERNELS[template]
        declared = re.search(rf"__global__ void {template}\(([^)]*)\)", self.code)
        if declared is None or " ".join(declared.group(1).split()) != expected:
            raise ValueError(f"the code does not declare {template}({expected})")
        dtype = np.dtype({"float>": np.float32, "double>": np.float64}[argument])
        threads = int(re.findall(r"#define SEARCH_THREADS (\d+)", self.code)[0])
        if threads & (threads - 1) or not 0 < threads <= 1024:
            raise ValueError(f"SEARCH_THREADS={threads}: a power of two up to 1024")

        def launch(grid: tuple, block: tuple, args: tuple, **_: Any) -> None:
            if tuple(block) != (threads,):
                raise ValueError(f"block {block}: the reduction needs ({threads},)")
            reference(tuple(grid), tuple(args), dtype)

        return launch


# name: (the CUDA parameter list that the reference's arguments follow, reference)
RAW_KERNELS = {
    "best_columns": (
        "const T* scores, const T* offsets, const long long n_cols, long long* out",
        _best_columns,
    )
}


# --- cuBLAS ---------------------------------------------------------------------------------

CUBLAS_HANDLE = 0xC0B1A5
CUDA_TYPES = {0: np.dtype(np.float32), 2: np.dtype(np.float16), 14: np.dtype(np.uint16)}
# (compute type, A and B type, C type) that cublasGemmEx accepts, of those dasksom may use.
GEMM_TYPES = {(68, 0, 0), (68, 2, 0), (68, 14, 0), (77, 0, 0)}
COMPUTE_32F_FAST_TF32 = 77
OP_N = 0


def _allocation(ptr: int) -> tuple[int, int]:
    """Bytes ``[low, high)`` of the live device allocation that holds ``ptr``."""
    for array in list(_HANDED_OUT.values()):
        root = array
        while isinstance(root.base, np.ndarray):
            root = root.base
        low = root.__array_interface__["data"][0]
        if low <= ptr < low + root.nbytes:
            return low, low + root.nbytes
    raise ValueError(f"{ptr:#x} is not in device memory (no live array's .data.ptr)")


def _matrix(ptr: int, type_code: int, rows: int, cols: int, ld: int) -> np.ndarray:
    """The column-major ``rows x cols`` matrix at ``ptr`` (leading dimension ``ld``): a
    writable view of that memory, read as cuBLAS reads it."""
    if type_code not in CUDA_TYPES:
        raise ValueError(f"CUDA data type {type_code} is not one the fake knows")
    if ld < max(1, rows):
        raise ValueError(f"CUBLAS_STATUS_INVALID_VALUE: leading dimension {ld} < rows {rows}")
    dtype = CUDA_TYPES[type_code]
    low, high = _allocation(ptr)
    extent = ((cols - 1) * ld + rows) * dtype.itemsize if rows and cols else 0
    if ptr % dtype.itemsize or ptr + extent > high:
        raise ValueError(f"a {rows}x{cols} matrix (ld {ld}) at {ptr:#x} leaves its allocation")
    memory = np.ctypeslib.as_array((ctypes.c_uint8 * max(extent, 1)).from_address(ptr))
    flat = memory[:extent].view(dtype)
    return np.lib.stride_tricks.as_strided(
        flat, (rows, cols), (dtype.itemsize, ld * dtype.itemsize)
    )


def _as_float32(values: np.ndarray, type_code: int) -> np.ndarray:
    if type_code == 14:  # bfloat16: the high half of a float32
        return (values.astype(np.uint32) << np.uint32(16)).view(np.float32)
    return values.astype(np.float32)


def _tf32(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to TF32's 10 fraction bits, to nearest with ties to even."""
    mantissa, exponent = np.frexp(values)
    return np.ldexp(np.round(mantissa * 2.0**11) / 2.0**11, exponent).astype(np.float32)


def _host_float(ptr: int) -> np.float32:
    try:
        _allocation(ptr)
    except ValueError:
        return np.float32(ctypes.c_float.from_address(ptr).value)
    raise ValueError("alpha and beta are host pointers (CUBLAS_POINTER_MODE_HOST)")


def gemmEx(  # noqa: N802 - cuBLAS's name
    handle: int, transa: int, transb: int, m: int, n: int, k: int,
    alpha: int, A: int, Atype: int, lda: int, B: int, Btype: int, ldb: int,  # noqa: N803
    beta: int, C: int, Ctype: int, ldc: int, computeType: int, algo: int,  # noqa: N803
) -> None:  # fmt: skip
    """``C = alpha op(A) op(B) + beta C``, column-major, from raw pointers (no transposes)."""
    if handle != CUBLAS_HANDLE:
        raise ValueError(f"{handle!r} is not the handle device.get_cublas_handle() gave")
    if (transa, transb) != (OP_N, OP_N):
        raise NotImplementedError("the fake multiplies untransposed operands only")
    if Atype != Btype or (computeType, Atype, Ctype) not in GEMM_TYPES:
        raise ValueError(f"CUBLAS_STATUS_NOT_SUPPORTED: {(computeType, Atype, Btype, Ctype)}")
    a = _as_float32(_matrix(A, Atype, m, k, lda), Atype)
    b = _as_float32(_matrix(B, Btype, k, n, ldb), Btype)
    c = _matrix(C, Ctype, m, n, ldc)
    if computeType == COMPUTE_32F_FAST_TF32:
        a, b = _tf32(a), _tf32(b)
    product = _host_float(alpha) * (a @ b)
    scale = _host_float(beta)
    c[...] = product if scale == 0 else product + scale * c  # beta = 0: C is not read


# --- the modules ----------------------------------------------------------------------------


def _module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


class _Device:
    id = 0
    pci_bus_id = "0000:01:00.0"

    def synchronize(self) -> None:
        pass


def _csr_matrix(arg1: tuple, shape: tuple[int, int]) -> Any:
    """``cupyx.scipy.sparse.csr_matrix((data, indices, indptr), shape)``, as cupyx checks it."""
    data, indices, indptr = arg1
    if not all(isinstance(a, DeviceArray) and a.ndim == 1 for a in arg1):
        raise ValueError("data, indices, and indptr should be 1-D")  # device arrays, too
    if len(data) != len(indices):
        raise ValueError("indices and data should have the same size")
    if data.dtype.char not in "?fdFD":
        raise ValueError("Only bool, float32, float64, complex64 and complex128 are supported")
    if len(indptr) != shape[0] + 1:
        raise ValueError(f"index pointer size ({len(indptr)}) should be ({shape[0] + 1})")
    host = scipy.sparse.csr_matrix((data.get(), indices.get(), indptr.get()), shape=shape)
    return _CSR(host)


class _CSR:
    def __init__(self, host: Any) -> None:
        self.host = host
        self.shape = host.shape

    def __matmul__(self, other: Any) -> Any:
        if not isinstance(other, DeviceArray):
            return NotImplemented
        return _device(np.asarray(self.host @ other.get()))


def _modules() -> dict[str, types.ModuleType]:
    cublas = _module("cupy_backends.cuda.libs.cublas", gemmEx=gemmEx, setStream=lambda h, s: None)
    libs = _module("cupy_backends.cuda.libs", cublas=cublas)
    backends_cuda = _module("cupy_backends.cuda", libs=libs)
    backends = _module("cupy_backends", cuda=backends_cuda)
    sparse = _module("cupyx.scipy.sparse", csr_matrix=_csr_matrix)
    scipy_ = _module("cupyx.scipy", sparse=sparse)
    cupyx = _module("cupyx", scipy=scipy_)
    device = _module("cupy.cuda.device", get_cublas_handle=lambda: CUBLAS_HANDLE)
    runtime = _module(
        "cupy.cuda.runtime",
        CUDARuntimeError=RuntimeError,
        getDeviceCount=lambda: 1,
        memGetInfo=lambda: (FREE_BYTES, 2 * FREE_BYTES),
    )
    cuda = _module(
        "cupy.cuda",
        Device=_Device,
        device=device,
        runtime=runtime,
        get_current_stream=lambda: types.SimpleNamespace(ptr=0),
    )
    constants = {
        name: getattr(np, name)
        for name in (
            "bool_", "dtype", "finfo", "float16", "float32", "float64", "iinfo", "inf",
            "int32", "int64", "nan", "newaxis", "uint8", "uint16", "uint32",
        )
    }  # fmt: skip
    cupy = _module(
        "cupy",
        **FUNCTIONS,
        **constants,
        ndarray=DeviceArray,
        cuda=cuda,
        ElementwiseKernel=ElementwiseKernel,
        RawModule=RawModule,
        get_default_memory_pool=lambda: types.SimpleNamespace(free_bytes=lambda: 0),
    )
    return {
        module.__name__: module
        for module in (cupy, cuda, device, runtime, cupyx, scipy_, sparse)
        + (backends, backends_cuda, libs, cublas)
    }


MODULES = _modules()
cupy = MODULES["cupy"]


def install(monkeypatch: Any) -> types.ModuleType:
    """Put the fake in ``sys.modules`` for one test; returns the fake ``cupy``.

    Also gives dasksom's compiled-kernel caches and dask's type dispatch tables fresh copies
    for the test, so that neither keeps the fake afterwards (where real CuPy is installed,
    later tests must get real kernels, and dask must still register the real ``cupy.ndarray``).
    """
    from dask.utils import Dispatch

    from dasksom.core import precision, search

    for name, module in MODULES.items():
        monkeypatch.setitem(sys.modules, name, module)
    for owner, name in ((precision, "_device_bfloat16_bits"), (search, "_best_columns_kernels")):
        monkeypatch.setattr(owner, name, functools.cache(getattr(owner, name).__wrapped__))
    dispatchers = {
        id(value): value
        for module_name, module in list(sys.modules.items())
        if module is not None and module_name.split(".")[0] in ("dask", "distributed")
        for value in list(vars(module).values())
        if isinstance(value, Dispatch)
    }
    for dispatch in dispatchers.values():
        monkeypatch.setattr(dispatch, "_lookup", dict(dispatch._lookup))
        monkeypatch.setattr(dispatch, "_lazy", dict(dispatch._lazy))
    return cupy


def to_device(x: np.ndarray) -> DeviceArray:
    """A device copy of a host array."""
    return np.array(x, copy=True).view(DeviceArray)
