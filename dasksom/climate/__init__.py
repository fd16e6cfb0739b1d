"""Gridded fields (climate and weather): a SOM fitted on a labelled xarray field, its results
and the regime diagnostics climate users write by hand, all labelled with the original
coordinates.

- :mod:`~dasksom.climate.fields`: :class:`FieldLayout`, the reversible layout of a field
  (stacked sample dims, masks, area weights, per-variable scaling, EOFs);
- :mod:`~dasksom.climate.model`: :class:`FieldSOM`, fit on a field; prototypes, BMUs and
  distances as xarray; :meth:`FieldSOM.save` to zarr or NetCDF;
- :mod:`~dasksom.climate.diagnostics`: frequencies and their trends, transitions, residence
  times, composites, frequency comparison;
- :mod:`~dasksom.climate.synthetic`: a field with planted regimes and a known answer.

Needs the ``climate`` extra (xarray).  A domain layer above the estimator: it never
imports matplotlib (its figures are in :mod:`dasksom.plotting.fields`).
"""

from dasksom.climate.diagnostics import (
    compare_frequencies,
    composites,
    frequencies,
    frequency_trend,
    hit_counts,
    residence_times,
    segments,
    transitions,
)
from dasksom.climate.fields import EOFBasis, FieldLayout, VariableLayout
from dasksom.climate.model import FieldSOM
from dasksom.climate.synthetic import planted_regimes

__all__ = [
    "EOFBasis",
    "FieldLayout",
    "FieldSOM",
    "VariableLayout",
    "compare_frequencies",
    "composites",
    "frequencies",
    "frequency_trend",
    "hit_counts",
    "planted_regimes",
    "residence_times",
    "segments",
    "transitions",
]
