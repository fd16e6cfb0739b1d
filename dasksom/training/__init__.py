"""Training on a cluster: the distributed epoch loop and its tree reduction, the choice to
persist (:mod:`~dasksom.training.engine`), history and early stopping
(:mod:`~dasksom.training.history`), checkpoints (:mod:`~dasksom.training.checkpoints`, the one
home of "same settings" and of the data fingerprint), and the GPU clusters it starts
(:mod:`~dasksom.training.gpu`, dask-cuda).

Imports :mod:`dasksom.io`, :mod:`dasksom.core` and :mod:`dasksom.backends`.
"""
