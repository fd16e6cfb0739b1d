"""The CUDA sources of the device path, run on CPUs: the fused search and bfloat16 rounding.

``dasksom.core.search.BEST_COLUMNS_SOURCE`` is compiled as C++ with a thin shim for CUDA's names:
one ``std::thread`` per CUDA thread of a block, ``__syncthreads`` a ``std::barrier``, ``__shared__``
memory one object shared by the block's threads, and the blocks of a launch run one after
another.  Each CUDA thread runs the kernel's own code, so the strided scan, the shared-memory
tree reduction and its tie rule are tested as written; what no CPU can test (the compiler
NVRTC, warp scheduling, memory coalescing) is left to ``tests/device/test_gpu.py`` on a GPU.
"""

import shutil
import subprocess

import numpy as np
import pytest

from dasksom.core.precision import BFLOAT16_BITS_OPERATION, bfloat16_bits
from dasksom.core.search import BEST_COLUMNS_SOURCE, SEARCH_THREADS

COMPILER = shutil.which("g++")

SHIM = r"""
#include <barrier>
#include <cstdio>
#include <thread>
#include <vector>

struct uint3 { unsigned int x, y, z; };
thread_local uint3 threadIdx;
thread_local uint3 blockIdx;
std::barrier<>* block_barrier;
#define __global__
#define __shared__ static
inline void __syncthreads() { block_barrier->arrive_and_wait(); }
"""

MAIN = r"""
template <typename T>
int run(long long n_rows, long long n_cols) {
    std::vector<T> scores(n_rows * n_cols), offsets(n_cols);
    std::vector<long long> out(n_rows, -7);
    for (auto& v : scores) if (std::scanf(FORMAT, &v) != 1) return 2;
    for (auto& v : offsets) if (std::scanf(FORMAT, &v) != 1) return 2;
    for (unsigned int block = 0; block < n_rows; ++block) {
        std::barrier<> barrier(SEARCH_THREADS);
        block_barrier = &barrier;
        std::vector<std::thread> threads;
        for (unsigned int t = 0; t < SEARCH_THREADS; ++t) {
            threads.emplace_back([&, t] {
                threadIdx = {t, 0, 0};
                blockIdx = {block, 0, 0};
                best_columns<T>(scores.data(), offsets.data(), n_cols, out.data());
            });
        }
        for (auto& thread : threads) thread.join();
    }
    for (auto column : out) std::printf("%lld\n", column);
    return 0;
}

int main() {
    long long n_rows, n_cols;
    if (std::scanf("%lld %lld", &n_rows, &n_cols) != 2) return 2;
    return run<SCORE_TYPE>(n_rows, n_cols);
}
"""

TYPES = {np.float32: ("float", "%f"), np.float64: ("double", "%lf")}


@pytest.fixture(scope="module")
def kernel_programs(tmp_path_factory):
    if COMPILER is None:
        pytest.skip("no C++ compiler (g++) to build the kernel's CPU emulation")
    folder = tmp_path_factory.mktemp("kernel")
    programs = {}
    for dtype, (name, scan) in TYPES.items():
        source = folder / f"search_{name}.cpp"
        source.write_text(
            f"#define SEARCH_THREADS {SEARCH_THREADS}\n#define SCORE_TYPE {name}\n"
            f'#define FORMAT "{scan}"\n{SHIM}\n{BEST_COLUMNS_SOURCE}\n{MAIN}'
        )
        program = folder / f"search_{name}"
        built = subprocess.run(
            [COMPILER, "-std=c++20", "-O1", "-pthread", str(source), "-o", str(program)],
            capture_output=True,
            text=True,
        )
        if built.returncode != 0 and "barrier" in built.stderr and "No such file" in built.stderr:
            pytest.skip("the C++ library has no <barrier> (C++20)")
        assert built.returncode == 0, built.stderr
        programs[dtype] = program
    return programs


def search(program, scores: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    numbers = " ".join(repr(float(v)) for v in [*scores.ravel(), *offsets])
    stdin = f"{scores.shape[0]} {scores.shape[1]}\n{numbers}\n"
    done = subprocess.run([str(program)], input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return np.array(done.stdout.split(), dtype=np.int64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_cols", [1, 7, SEARCH_THREADS, 700])
def test_the_kernel_finds_numpys_argmax_with_ties_to_the_lowest_column(
    kernel_programs, dtype, n_cols
):
    rng = np.random.default_rng(n_cols)
    scores = rng.integers(0, 3, size=(12, n_cols)).astype(dtype)  # ties everywhere
    offsets = rng.integers(0, 2, size=n_cols).astype(dtype)
    expected = (scores - offsets).argmax(axis=1)
    np.testing.assert_array_equal(search(kernel_programs[dtype], scores, offsets), expected)


def test_the_kernel_finds_the_best_of_continuous_scores(kernel_programs):
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(20, 1000)).astype(np.float32)
    offsets = rng.normal(size=1000).astype(np.float32)
    expected = (scores - offsets).argmax(axis=1)
    np.testing.assert_array_equal(search(kernel_programs[np.float32], scores, offsets), expected)


def test_the_kernel_keeps_a_row_of_equal_scores_at_column_zero(kernel_programs):
    scores = np.full((3, 500), 2.5)
    found = search(kernel_programs[np.float64], scores, np.zeros(500))
    np.testing.assert_array_equal(found, [0, 0, 0])


ROUNDING = r"""
#include <cstdio>
#include <cstring>
inline unsigned int __float_as_uint(float x) { unsigned int b; std::memcpy(&b, &x, 4); return b; }
int main() {
    float x;
    while (std::scanf("%f", &x) == 1) {
        unsigned short y;
        { OPERATION }
        std::printf("%u\n", y);
    }
}
"""


def test_the_bfloat16_operation_rounds_as_the_cpu_emulation(tmp_path):
    if COMPILER is None:
        pytest.skip("no C++ compiler (g++) to build the operation's CPU emulation")
    source = tmp_path / "rounding.cpp"
    source.write_text(ROUNDING.replace("OPERATION", BFLOAT16_BITS_OPERATION))
    program = tmp_path / "rounding"
    built = subprocess.run([COMPILER, str(source), "-o", str(program)], capture_output=True)
    assert built.returncode == 0, built.stderr
    rng = np.random.default_rng(2)
    values = np.concatenate(
        [
            (rng.normal(size=500) * 10.0 ** rng.uniform(-6, 6, 500)).astype(np.float32),
            np.array([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 0.0, -0.0], dtype=np.float32),
        ]
    )
    stdin = "\n".join(repr(float(v)) for v in values)
    done = subprocess.run([str(program)], input=stdin, capture_output=True, text=True)
    np.testing.assert_array_equal(
        np.array(done.stdout.split(), dtype=np.uint16), bfloat16_bits(values)
    )
