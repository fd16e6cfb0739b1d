"""The ``dasksom`` command line: ``demo``, ``train`` (scheduled batch jobs with checkpoints),
``predict``, ``plot`` and ``info``.  A top layer, thin over the estimator and the plots.
"""

from dasksom.cli.main import main

__all__ = ["main"]
