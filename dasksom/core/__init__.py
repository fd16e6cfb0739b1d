"""The mathematics of design.md on arrays: lattice, neighbourhoods, metrics, the BMU search,
partial sums, quality, precision, the radius schedule, initialisation and missing values.

Every kernel takes NumPy or CuPy arrays and computes with their array module.  Imports only
:mod:`dasksom.backends`: no clusters, files or estimators here.
"""
