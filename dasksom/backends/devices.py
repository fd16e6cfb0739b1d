"""Where the chunks are computed: the device choices, named once for the estimator, the simpsom
facade and the command line."""

from __future__ import annotations

from typing import Literal, get_args

Device = Literal["cpu", "gpu"]
# "cpu": NumPy chunks (CuPy chunks still run on their GPU); "gpu": every chunk moved to a GPU.
DEVICES: tuple[Device, ...] = get_args(Device)
