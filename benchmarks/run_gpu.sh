#!/usr/bin/env bash
# The one prepared GPU check: install the carried wheels, run the GPU tests, then the benchmark.
#
# On the GPU machine (no network; python3 has CuPy and numpy), from the repository root, after
# `bash benchmarks/fetch_gpu_wheels.sh` here put the wheels in .gpu/wheels (carry `.gpu`):
#
#   bash benchmarks/run_gpu.sh [benchmark options]     # e.g. --quick, --budget 300
#
# Prints the test summary and one table; writes benchmarks/results/gpu.json (copied to $OUT when
# set).  Meant to end within 7 minutes: tests get 110 s, the benchmark a budget of 260 s.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
site=${GPU_SITE:-/tmp/dasksom-gpu-site}
wheels=${GPU_WHEELS:-.gpu/wheels}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
if compgen -G "$wheels/*.whl" >/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" "$wheels"/*.whl || { echo "wheel install failed"; exit 1; }
else
    echo "no wheels in $wheels: using what $python already has"
fi
export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}"
"$python" -m pip check 2>&1 | grep -iE 'dask|distributed|zarr|numcodecs|rmm' || true

# Separate kernel caches: the benchmark's warm-up then starts from an empty one, as on a fresh
# machine, whatever the tests compiled.
CUPY_CACHE_DIR=/tmp/cupy-cache-tests timeout 110 "$python" -m pytest -q -p no:cacheprovider \
    tests/device/test_gpu.py 2>&1 | tail -25
tests=${PIPESTATUS[0]}
echo "tests exit: $tests"

bench_cache=$(mktemp -d)
CUPY_CACHE_DIR=$bench_cache timeout 290 "$python" benchmarks/gpu.py --budget 260 "$@"
status=$?
rm -rf "$bench_cache"
if [ -n "${OUT:-}" ] && [ -f benchmarks/results/gpu.json ]; then
    cp benchmarks/results/gpu.json "$OUT/"
fi
[ "$tests" -eq 0 ] || echo "the GPU tests failed (exit $tests)"
exit $((status != 0 ? status : tests))
