"""The mathematics of design.md on arrays, one module per idea.

- :mod:`~dasksom.core.lattice`: node positions, lattice distances, neighbours (section 1);
- :mod:`~dasksom.core.neighborhood`: the functions ``h(d)`` and the smoothing ``H @ S``
  (sections 2 and 4);
- :mod:`~dasksom.core.schedule`: the radius schedule (section 3);
- :mod:`~dasksom.core.metrics`: the distances, and the weights prepared for the search
  (section 5);
- :mod:`~dasksom.core.precision`: the rounding of the search's product;
- :mod:`~dasksom.core.search`: the BMU search in row blocks, fused on GPUs (section 5);
- :mod:`~dasksom.core.sums`: one chunk's partial sums ``S`` and ``n`` (section 4);
- :mod:`~dasksom.core.chunk_tasks`: what a fitted map computes per chunk: BMUs, distances,
  quality measures (section 7);
- :mod:`~dasksom.core.missing`: the NaN policies, and where data holds NaN or inf;
- :mod:`~dasksom.core.initialization`: the initial weights (section 6);
- :mod:`~dasksom.core.analysis`: numbers read off a trained map (U-matrix, label votes).

The chunk kernels take NumPy or CuPy arrays and compute with their array module.  Of dasksom's
own packages this one imports only :mod:`dasksom.backends`: no clusters, files or estimators
here.
"""
