"""``dasksom.SOM``, the scikit-learn style estimator, with its declarative parameter checks.

Imports :mod:`dasksom.training` and the layers below it; never matplotlib or scikit-learn.
"""

from dasksom.estimator.som import SOM, NonNumericDataError, NotFittedError, check_data, load

__all__ = ["SOM", "NonNumericDataError", "NotFittedError", "check_data", "load"]
