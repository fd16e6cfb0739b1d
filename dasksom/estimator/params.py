"""Declarative parameter checks, in the manner of scikit-learn's ``_parameter_constraints``.

An estimator lists, for each constructor parameter, the constraints a value may satisfy;
:func:`validate_params` checks them all before any work starts and raises one ``ValueError``
that names the parameter, the value and what is allowed.  Types are checked strictly:
``pbc="no"`` is refused, not read as ``bool("no")``.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np


class Constraint:
    """One kind of value a parameter may take."""

    if TYPE_CHECKING:
        # What a message says is allowed: a class attribute, a dataclass field or a property.
        @property
        def description(self) -> str: ...

    def allows(self, value: Any) -> bool:
        raise NotImplementedError


class Options(Constraint):
    """One of a set of strings: a tuple, or a registry such as ``kernels.METRICS``, read when
    checking, so an entry added to a registry is accepted at once."""

    def __init__(self, choices: Collection[str]) -> None:
        self.choices = choices

    def allows(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.choices

    @property
    def description(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)


@dataclass(frozen=True)
class Interval(Constraint):
    """A finite number in ``[low, high]`` (either bound may be None or open)."""

    kind: type  # numbers.Integral or numbers.Real
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # "both", "left", "right" or "neither"

    def allows(self, value: Any) -> bool:
        if isinstance(value, bool | np.bool_) or not isinstance(value, self.kind):
            return False
        # An instance of self.kind, numbers.Integral or numbers.Real: it compares as a float.
        number = cast(float, value)
        if not math.isfinite(number):
            return False
        low_ok = self.low is None or (
            number >= self.low if self.closed in ("both", "left") else number > self.low
        )
        high_ok = self.high is None or (
            number <= self.high if self.closed in ("both", "right") else number < self.high
        )
        return low_ok and high_ok

    @property
    def description(self) -> str:
        name = "an integer" if self.kind is numbers.Integral else "a finite number"
        left = "[" if self.low is not None and self.closed in ("both", "left") else "("
        right = "]" if self.high is not None and self.closed in ("both", "right") else ")"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{name} in {left}{low}, {high}{right}"


class StrictBool(Constraint):
    """``True`` or ``False`` (numpy booleans too), nothing that merely converts to one."""

    description = "True or False"

    def allows(self, value: Any) -> bool:
        return isinstance(value, bool | np.bool_)


class NoneValue(Constraint):
    description = "None"

    def allows(self, value: Any) -> bool:
        return value is None


@dataclass(frozen=True)
class InstanceOf(Constraint):
    """An instance of one of ``types``."""

    types: tuple[type, ...]
    description: str

    def allows(self, value: Any) -> bool:
        return isinstance(value, self.types) and not isinstance(value, bool | np.bool_)


@dataclass(frozen=True)
class PositivePair(Constraint):
    """A pair ``(start, end)`` of positive finite numbers."""

    description: str = "a pair (start, end) of positive finite numbers"

    def allows(self, value: Any) -> bool:
        positive = Interval(numbers.Real, 0, None, closed="neither")
        return (
            isinstance(value, tuple | list)
            and len(value) == 2
            and all(positive.allows(v) for v in value)
        )


class ArrayLike(Constraint):
    """An array (NumPy, CuPy, dask, ...): anything with a ``shape``, or a nested list."""

    description = "an array"

    def allows(self, value: Any) -> bool:
        return hasattr(value, "shape") or isinstance(value, list)


PATH = InstanceOf((str, os.PathLike), "a path")


def validate_params(
    owner: str, params: Mapping[str, Any], constraints: Mapping[str, list[Constraint]]
) -> None:
    """Raise ``ValueError`` for the first parameter that satisfies none of its constraints.

    Parameters
    ----------
    owner : name of the estimator, for the message
    params : parameter name to value
    constraints : parameter name to the list of constraints, any one of which suffices
    """
    for name, allowed in constraints.items():
        value = params[name]
        if any(constraint.allows(value) for constraint in allowed):
            continue
        choices = "; or ".join(constraint.description for constraint in allowed)
        shown = f"an array of shape {value.shape}" if hasattr(value, "shape") else repr(value)
        raise ValueError(f"The {name!r} parameter of {owner} must be {choices}; got {shown}.")
