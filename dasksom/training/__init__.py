"""Training on a cluster: the distributed epoch loop and its tree reduction, the choice to
persist, history and early stopping, checkpoints (the one home of "same settings" and of the
data fingerprint), and the clusters it starts (dask-cuda).

Imports :mod:`dasksom.io`, :mod:`dasksom.core` and :mod:`dasksom.backends`.
"""
