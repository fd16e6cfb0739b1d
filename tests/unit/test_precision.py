"""Precision of the BMU search's product: rounding, products, and the maps they train."""

import math

import numpy as np
import pytest

from dasksom import SOM, SOMNet
from dasksom.core.metrics import PreparedWeights
from dasksom.core.precision import (
    PRECISIONS,
    bfloat16_bits,
    gemm_arguments,
    get_precision,
    round_fraction_bits,
)
from dasksom.core.search import best_matching_units
from dasksom.core.sums import partial_sums

NARROW = ["tf32", "bfloat16", "float16"]
FRACTION_BITS = {"tf32": 10, "bfloat16": 7, "float16": 10}


def reference_round(value: float, bits: int) -> float:
    """``value`` to ``bits`` fraction bits, to nearest with ties to even (Python's round)."""
    if value == 0:
        return 0.0
    mantissa, exponent = math.frexp(value)  # value = mantissa * 2**exponent, 0.5 <= |m| < 1
    return math.ldexp(round(mantissa * 2 ** (bits + 1)), exponent - bits - 1)


@pytest.fixture
def values():
    rng = np.random.default_rng(0)
    magnitudes = 10.0 ** rng.uniform(-4, 4, 2000)
    return (rng.choice([-1, 1], 2000) * magnitudes).astype(np.float32)


@pytest.mark.parametrize("bits", [7, 10])
def test_rounding_to_fraction_bits_matches_a_reference(values, bits):
    expected = [reference_round(float(v), bits) for v in values]
    np.testing.assert_array_equal(round_fraction_bits(values, bits), expected)


def test_ties_round_to_even():
    ties = np.array([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8)], dtype=np.float32)
    np.testing.assert_array_equal(round_fraction_bits(ties, 7), [1.0, 1 + 2**-6, -1.0])


def test_float16_rounding_is_numpys(values):
    in_range = values[np.abs(values) < 60000]
    expected = in_range.astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(PRECISIONS["float16"].round(in_range), expected)


def test_bfloat16_bits_are_the_top_half_of_the_rounded_float32(values):
    bits = bfloat16_bits(values)
    assert bits.dtype == np.uint16
    widened = (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)
    np.testing.assert_array_equal(widened, round_fraction_bits(values, 7))


def test_exact_precision_leaves_values_alone(values):
    assert PRECISIONS["exact"].round(values) is values


def test_unknown_precision_names_the_choices():
    with pytest.raises(ValueError, match="exact, tf32, bfloat16, float16"):
        get_precision("fp8")


def column_major(buffer, rows, columns, leading):
    """The ``rows x columns`` matrix a column-major library reads from ``buffer``."""
    return buffer[: leading * columns].reshape(columns, leading)[:, :rows].T


@pytest.mark.parametrize("shape", [(5, 3, 4), (1, 7, 2), (64, 1, 9)])
def test_gemm_arguments_give_the_row_major_product(shape):
    rows, depth, nodes = shape
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(rows, depth)), rng.normal(size=(depth, nodes))
    args = gemm_arguments(a.shape, b.shape)
    # cuBLAS: C(m x n) = op(first)(m x k) @ op(second)(k x n), all column-major, no transposes.
    first = column_major(b.ravel(), args["m"], args["k"], args["lda"])
    second = column_major(a.ravel(), args["k"], args["n"], args["ldb"])
    out = np.empty(rows * nodes)
    column_major(out, args["m"], args["n"], args["ldc"])[:] = first @ second
    np.testing.assert_allclose(out.reshape(rows, nodes), a @ b)


def test_gemm_arguments_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match="Cannot multiply"):
        gemm_arguments((4, 3), (2, 5))


@pytest.fixture
def problem():
    rng = np.random.default_rng(2)
    return rng.random((400, 30)).astype(np.float32), rng.random((25, 30))


@pytest.mark.parametrize("precision", NARROW)
def test_narrow_product_is_the_product_of_rounded_operands(problem, precision):
    x, w = problem
    prepared = PreparedWeights.build(w, "euclidean", np, np.float32, precision)
    rounding = PRECISIONS[precision]
    expected = rounding.round(x).astype(np.float64) @ rounding.round(w.T.astype(np.float32))
    found = prepared.product(x)
    assert found.dtype == np.float32
    np.testing.assert_allclose(found, expected, rtol=1e-6)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("precision", NARROW)
def test_narrow_precision_changes_a_bmu_only_between_near_equal_nodes(problem, metric, precision):
    x, w = problem
    exact = PreparedWeights.build(w, metric, np, np.float64)
    narrow = best_matching_units(x, PreparedWeights.build(w, metric, np, np.float32, precision))
    best = best_matching_units(x.astype(np.float64), exact)
    scores = exact.metric.scores(x.astype(np.float64), exact)
    rows = np.arange(len(x))
    gap = scores[rows, best] - scores[rows, narrow]
    # Rounding both operands by at most u each moves a score by at most (2u + u^2) sum |x w|;
    # the narrow search can only prefer a node whose exact score is within twice that.
    u = 2.0 ** -(FRACTION_BITS[precision] + 1)
    scale = (np.abs(x) @ np.abs(exact.scoring)).max(axis=1)
    assert np.all(gap <= 2 * (2 * u + u * u) * scale * (1 + 1e-5) + 1e-6)
    assert np.mean(narrow == best) > 0.9


@pytest.mark.parametrize("precision", NARROW)
def test_sums_stay_exact_under_narrow_precision(problem, precision):
    x, w = problem
    sums = partial_sums(x, w, "euclidean", precision=precision)
    prepared = PreparedWeights.build(w, "euclidean", np, np.float32, precision)
    bmu = best_matching_units(x, prepared)
    expected = np.zeros_like(w)
    np.add.at(expected, bmu, x.astype(np.float64))
    np.testing.assert_allclose(sums.sums, expected, rtol=1e-5)
    np.testing.assert_array_equal(sums.counts, np.bincount(bmu, minlength=len(w)))


@pytest.fixture(scope="module")
def clusters():
    rng = np.random.default_rng(3)
    centres = rng.random((8, 12)) * 4
    return (centres[rng.integers(0, 8, 3000)] + rng.normal(0, 0.3, (3000, 12))).astype(np.float32)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("precision", NARROW)
def test_each_precision_trains_a_map_as_good_as_exact(clusters, metric, precision):
    def error(chosen):
        som = SOM(8, 8, metric=metric, precision=chosen, epochs=6, random_state=0)
        return som.fit(clusters).quality(clusters)["quantization_error"]

    assert error(precision) <= 1.01 * error("exact")


def test_float16_refuses_values_beyond_its_range(clusters):
    with pytest.raises(ValueError, match=r"precision='float16' holds values up to 65504"):
        SOM(3, 3, epochs=1, precision="float16").fit(clusters * 1e5)


def test_bfloat16_holds_float32_range(clusters):
    SOM(3, 3, epochs=1, precision="bfloat16").fit(clusters * 1e5)


def test_a_metric_without_a_product_refuses_narrow_precision(clusters):
    with pytest.raises(ValueError, match="metric='manhattan' computes none"):
        SOM(3, 3, metric="manhattan", precision="bfloat16").fit(clusters)


def test_an_unknown_precision_is_refused_before_training(clusters):
    with pytest.raises(ValueError, match="precision"):
        SOM(3, 3, precision="half").fit(clusters)


def test_somnet_passes_precision_to_training(clusters):
    net = SOMNet(4, 4, clusters, precision="bfloat16", random_seed=0)
    net.train(epochs=2)
    assert net.som.precision == "bfloat16"


def test_saved_map_records_its_precision(clusters, tmp_path):
    from dasksom import load

    SOM(3, 3, epochs=1, precision="tf32").fit(clusters).save(tmp_path / "m.npz")
    assert load(tmp_path / "m.npz").precision == "tf32"
