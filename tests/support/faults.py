"""Faults injected into training, as a killed job or a crashed driver would meet them."""

import contextlib
import itertools

from dasksom.training import engine


@contextlib.contextmanager
def killed_in_epoch(number: int):
    """The ``number``-th epoch (from 1) started inside the block stops with KeyboardInterrupt."""
    real = engine.epoch_sums
    calls = itertools.count(1)

    def dying(*args, **kwargs):
        if next(calls) == number:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    engine.epoch_sums = dying
    try:
        yield
    finally:
        engine.epoch_sums = real
