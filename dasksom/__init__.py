"""dasksom: distributed, out-of-core batch Self-Organizing Maps on Dask.

The package's folders are its layers, each importing only those below it (checked in CI by
import-linter; see docs/architecture.md)::

    cli | simpsom            command line; simpsom's SOMNet, plots and online training
    plotting                 the figures (matplotlib)
    estimator                dasksom.SOM, the scikit-learn style estimator
    training                 the distributed epoch loop, checkpoints, GPU clusters
    io                       data sources, storage types, map files, atomic writes
    core                     the mathematics of design.md on arrays
    backends                 NumPy or CuPy, CUDA and device memory

The plotting package and the simpsom facade load on first use, so that dask workers, which
import this package to run the chunk kernels, do not pay for matplotlib.
"""

import importlib
from typing import TYPE_CHECKING, Any

from dasksom import io
from dasksom.core.lattice import Lattice
from dasksom.estimator import SOM, load

if TYPE_CHECKING:
    # The lazy attributes, typed for type checkers.
    from dasksom import plotting
    from dasksom.core import analysis
    from dasksom.simpsom import SOMNet, plots

__all__ = ["SOM", "SOMNet", "Lattice", "load", "analysis", "io", "plots", "plotting"]
__version__ = "0.1.0"

# name -> (module, attribute or None for the module itself)
_LAZY = {
    "SOMNet": ("dasksom.simpsom", "SOMNet"),
    "analysis": ("dasksom.core.analysis", None),
    "plots": ("dasksom.simpsom.plots", None),
    "plotting": ("dasksom.plotting", None),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'dasksom' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)
