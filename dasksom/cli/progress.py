"""Training progress on the command line: a live bar on a terminal, plain lines otherwise,
and optionally one JSON object per epoch appended to a file.

The engine logs every epoch on the ``dasksom`` logger with the epoch's history entry attached
as ``record.epoch_record``; :class:`EpochProgress` is a logging handler that shows it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import sys
from collections.abc import Iterator
from typing import IO

from dasksom.io.atomic import local_path

_BAR_WIDTH = 20


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def _rate(rows_per_second: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rows_per_second >= scale:
            return f"{rows_per_second / scale:.3g}{suffix}"
    return f"{rows_per_second:.3g}"


class EpochProgress(logging.Handler):
    """Shows each epoch record: ``\\r``-rewritten on a terminal, one line each otherwise."""

    def __init__(self, stream: IO[str], live: bool, log_json: IO[str] | None = None) -> None:
        super().__init__(logging.INFO)
        self.stream = stream
        self.live = live
        self.log_json = log_json
        self.seconds: list[float] = []
        self._open_line = False

    def line(self, record: dict) -> str:
        """The progress text of one epoch record.

        Parameters
        ----------
        record : dict
            The epoch's history entry (:func:`dasksom.training.history.epoch_record`) with
            ``epochs`` and ``n_samples``.

        Returns
        -------
        str
            ``epoch t/T  radius r  QE before update q  rate rows/s  h:mm:ss left``: the QE is
            that of the map the epoch started from, measured in the epoch's own pass.
        """
        done, total = record["epoch"] + 1, record["epochs"]
        self.seconds.append(record["seconds"])
        left = (total - done) * sum(self.seconds) / len(self.seconds)
        rate = record["n_samples"] / record["seconds"] if record["seconds"] > 0 else 0.0
        # An epoch's QE is measured in its own pass, on the map before its update: the
        # final map's error (after the last update) is the summary's.
        text = (
            f"epoch {done}/{total}  radius {record['sigma']:.3g}  "
            f"QE before update {record['quantization_error']:.5g}  {_rate(rate)} rows/s  "
            f"{_duration(left)} left"
        )
        if not self.live:
            return text
        filled = round(_BAR_WIDTH * done / total)
        return f"[{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] {text}"

    def emit(self, record: logging.LogRecord) -> None:
        """Show the epoch record a log record carries (others are ignored).

        Parameters
        ----------
        record : logging.LogRecord
            A record of the ``dasksom`` logger; the engine's epoch lines carry
            ``epoch_record``.
        """
        epoch = getattr(record, "epoch_record", None)
        if epoch is None:
            return
        try:
            text = self.line(epoch)
            if self.live:
                self.stream.write(f"\r{text}\x1b[K")
                self._open_line = epoch["epoch"] + 1 < epoch["epochs"]
                if not self._open_line:
                    self.stream.write("\n")
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
            if self.log_json is not None:
                self._write_json(self.log_json, epoch)
        except Exception:
            self.handleError(record)

    @staticmethod
    def _write_json(log_json: IO[str], epoch: dict) -> None:
        rate = epoch["n_samples"] / epoch["seconds"] if epoch["seconds"] > 0 else None
        entry = {
            **epoch,
            "rows_per_second": rate,
            "time": datetime.datetime.now(datetime.UTC).isoformat(),
        }
        log_json.write(json.dumps(entry) + "\n")
        log_json.flush()

    def close(self) -> None:
        """End a bar left open (training stopped early or was interrupted)."""
        if self._open_line:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False
        super().close()


@contextlib.contextmanager
def progress(
    log_json: str | os.PathLike | None = None, stream: IO[str] | None = None
) -> Iterator[EpochProgress]:
    """Show the epochs trained inside the block.

    Parameters
    ----------
    log_json : str or os.PathLike, default=None
        A file to append one JSON object per epoch to (its folder is created when missing);
        the records keep the engine's keys (``quantization_error`` is the map's before the
        epoch's update) and add ``rows_per_second`` and ``time``.
    stream : text stream, default=None
        Where the lines go; None: stderr.  A terminal gets a bar rewritten in place.

    Yields
    ------
    EpochProgress
        The logging handler showing the epochs.
    """
    stream = stream if stream is not None else sys.stderr
    live = hasattr(stream, "isatty") and stream.isatty()
    logger = logging.getLogger("dasksom")
    with contextlib.ExitStack() as stack:
        records = None
        if log_json is not None:
            path = local_path(log_json, "JSON log")
            path.parent.mkdir(parents=True, exist_ok=True)
            records = stack.enter_context(open(path, "a"))
        handler = EpochProgress(stream, live, records)
        level = logger.level
        # Epoch records are logged at INFO: let them through while the block runs.
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        try:
            yield handler
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
            handler.close()


__all__ = ["EpochProgress", "progress"]
