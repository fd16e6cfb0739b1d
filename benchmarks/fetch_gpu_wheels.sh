#!/usr/bin/env bash
# Download, on a machine with network, the wheels that benchmarks/run_gpu.sh installs on a GPU
# machine without network whose Python (3.12, x86-64) already has CuPy and numpy but no dask.
#
#   bash benchmarks/fetch_gpu_wheels.sh [DEST]      # DEST defaults to .gpu/wheels (git-ignored)
#
# pip resolves dask, distributed, zarr, dask-cuda and RMM (for the workers' memory pool) for the
# GPU machine's Python and platform, binary wheels only.  Packages that the GPU machine's image
# already holds (its package list, read 2026-11) are then dropped, so that the image's own
# compiled builds (numpy, pandas, pyarrow, cuda-bindings, ...) are the ones imported; bokeh is
# dropped too (the dashboard only).  What is left is installed there with --no-deps.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1

dest=${1:-.gpu/wheels}
python=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
gpu_python=${GPU_PYTHON_VERSION:-3.12}
requirements=(
    "dask[array,dataframe]>=2024.8"
    "distributed>=2024.8"
    "zarr>=3,<4"
    "dask-cuda==26.10.*"
    "rmm-cu13==26.10.*"
)
# On the GPU image already (or, for bokeh and xyzservices, only needed by the dashboard).
present=(
    numpy pandas pyarrow pillow contourpy cuda-core cuda-bindings cuda-pathfinder psutil pyyaml
    markupsafe msgpack click cloudpickle fsspec jinja2 packaging python-dateutil
    sortedcontainers toolz typing-extensions zipp narwhals nvidia-ml-py six bokeh xyzservices
)

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
    platforms+=(--platform "${tag}_x86_64")
done
"$python" -m pip download --quiet --only-binary=:all: --implementation cp \
    --python-version "$gpu_python" "${platforms[@]}" -d "$staging" "${requirements[@]}"

rm -rf "$dest"
mkdir -p "$dest"
for wheel in "$staging"/*.whl; do
    name=$(basename "$wheel" | cut -d- -f1 | tr '[:upper:]_.' '[:lower:]--')
    if [[ " ${present[*]} " == *" $name "* ]]; then
        echo "skip  $(basename "$wheel") (on the GPU image)"
    else
        mv "$wheel" "$dest/"
    fi
done
echo
ls -1s --block-size=K "$dest"
echo "total: $(du -sh "$dest" | cut -f1) in $(find "$dest" -name '*.whl' | wc -l) wheels, in $dest"
