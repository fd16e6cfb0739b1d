"""dasksom: distributed, out-of-core batch Self-Organizing Maps on Dask."""

from .estimator import SOM
from .lattice import Lattice
from .persistence import load

__all__ = ["SOM", "Lattice", "load"]
__version__ = "0.1.0"
