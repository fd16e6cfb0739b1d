"""Training history and early stopping, shared by the batch engine and online training.

Both loops keep one record per epoch (one pass over the data) and stop early the same way: once
the mean absolute weight change has stayed below ``tol`` for ``patience`` epochs in a row.
"""

from __future__ import annotations

from dataclasses import dataclass


def epoch_record(
    epoch: int,
    sigma: float,
    quantization_error: float,
    map_difference: float,
    seconds: float,
    **extra: float,
) -> dict:
    """One history entry.

    Parameters
    ----------
    epoch : int
        The epoch's index, from 0.
    sigma : float
        Its neighbourhood radius.
    quantization_error : float
        That of the weights the epoch *started* from: it comes free from the epoch's own pass
        over the data, so ``history[t]`` describes the map after ``t`` epochs.
    map_difference : float
        Mean absolute change of the weights over the epoch.
    seconds : float
        Time the epoch took.
    **extra : float
        Further entries (``rows_without_values``, online training's ``steps`` and
        ``learning_rate``), stored as given.

    Returns
    -------
    dict
        JSON-ready: the five values as Python ``int`` and ``float``, then ``extra``.
    """
    return {
        "epoch": int(epoch),
        "sigma": float(sigma),
        "quantization_error": float(quantization_error),
        "map_difference": float(map_difference),
        "seconds": float(seconds),
        **extra,
    }


@dataclass
class EarlyStopping:
    """Counts the epochs in a row whose map difference stayed below ``tol``.

    Attributes
    ----------
    tol : float or None
        The threshold; None never stops.
    patience : int
        Epochs in a row below ``tol`` after which training stops.
    quiet_epochs : int, default=0
        Epochs in a row below ``tol`` so far.
    """

    tol: float | None
    patience: int
    quiet_epochs: int = 0

    @classmethod
    def resumed(cls, tol: float | None, patience: int, history: list[dict]) -> EarlyStopping:
        """The counter as it stood at the end of ``history`` (after a resume).

        Parameters
        ----------
        tol : float or None
            The threshold; None never stops.
        patience : int
            Epochs in a row below ``tol`` after which training stops.
        history : list of dict
            The epochs done, each with a ``map_difference``.

        Returns
        -------
        EarlyStopping
        """
        stopper = cls(tol, patience)
        for record in history:
            stopper.update(record["map_difference"])
        return stopper

    def update(self, map_difference: float) -> bool:
        """Count one epoch.

        Parameters
        ----------
        map_difference : float
            The epoch's mean absolute weight change.

        Returns
        -------
        bool
            True once training should stop (:attr:`should_stop`).
        """
        quiet = self.tol is not None and map_difference < self.tol
        self.quiet_epochs = self.quiet_epochs + 1 if quiet else 0
        return self.should_stop

    @property
    def should_stop(self) -> bool:
        """Whether ``patience`` epochs in a row stayed below ``tol`` (never with ``tol=None``)."""
        return self.tol is not None and self.quiet_epochs >= self.patience
