"""dasksom: distributed, out-of-core batch Self-Organizing Maps on Dask."""

from . import plots, plotting
from .estimator import SOM
from .lattice import Lattice
from .persistence import load
from .somnet import SOMNet

__all__ = ["SOM", "SOMNet", "Lattice", "load", "plots", "plotting"]
__version__ = "0.1.0"
