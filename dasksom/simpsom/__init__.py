"""simpsom's API over the dasksom engine: ``SOMNet``, its ``plots`` functions and online training.

Code written for simpsom runs with ``import dasksom as sps``.  A top layer: imports the
estimator, plotting and everything below them.
"""

from dasksom.simpsom.somnet import SOMNet, SOMNode

__all__ = ["SOMNet", "SOMNode"]
