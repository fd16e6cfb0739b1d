"""dasksom: distributed, out-of-core batch Self-Organizing Maps on Dask.

The plotting modules and the simpsom facade load on first use, so that dask workers, which
import this package to run the chunk kernels, do not pay for matplotlib.
"""

import importlib
from typing import TYPE_CHECKING, Any

from .estimator import SOM, load
from .lattice import Lattice

if TYPE_CHECKING:
    # The lazy attributes, typed for type checkers.
    from . import io, plots, plotting
    from .somnet import SOMNet

__all__ = ["SOM", "SOMNet", "Lattice", "load", "io", "plots", "plotting"]
__version__ = "0.1.0"

_LAZY = {
    "SOMNet": ("somnet", "SOMNet"),
    "io": ("io", None),
    "plots": ("plots", None),
    "plotting": ("plotting", None),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'dasksom' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(f".{module_name}", __name__)
    return module if attribute is None else getattr(module, attribute)
