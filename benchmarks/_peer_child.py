"""Train one SOM library once; run by ``peers.py`` in a child process, one per library and size.

Usage: ``python _peer_child.py '<json settings>'`` with keys ``library``, ``data`` (.npy of
float32 rows), ``init`` (.npy of ``(M, D)`` starting weights in dasksom's node order; dasksom
also takes ``"pca"``), ``out`` (.npy the trained weights go to, in dasksom's node order),
``height``, ``width``, ``epochs``, and optionally ``metric`` and ``pbc`` (dasksom and simpsom
only; default euclidean, no periodic boundaries).  Prints one JSON line with
``train_seconds``, ``peak_rss_mib`` and ``note``.

The peers run in their own virtualenv, so this file needs only numpy, ``_common`` and the
library.  Each
library numbers and places its hexagonal nodes its own way; :func:`lattice_order` reads the
library's node positions and finds which of its nodes is dasksom's node ``k = r * width + c``.
"""

from __future__ import annotations

import json
import math
import sys
import time

import numpy as np
from _common import peak_rss_mib

HEX_ROW_HEIGHT = math.sqrt(3) / 2


def dasksom_positions(height: int, width: int) -> np.ndarray:
    """dasksom's hexagonal node positions (design.md section 1): odd rows shifted right."""
    rows, cols = np.divmod(np.arange(height * width), width)
    return np.column_stack([cols + 0.5 * (rows % 2), rows * HEX_ROW_HEIGHT])


def lattice_order(positions: np.ndarray, height: int, width: int) -> np.ndarray:
    """Library index of every dasksom node, from the library's ``(M, 2)`` node positions.

    A library that shifts odd rows left is dasksom's lattice mirrored, which keeps every
    lattice distance: its columns are then read right to left.  Some libraries space rows 1
    apart instead of sqrt(3)/2; the row order and neighbours are the same, so only the check
    rescales it.
    """
    _, rows = np.unique(np.round(positions[:, 1], 6), return_inverse=True)
    x = positions[:, 0]
    mirrored = height > 1 and x[rows == 1].min() < x[rows == 0].min()
    order = np.lexsort((-x if mirrored else x, rows))
    mapped = positions[order] - positions[order[0]]
    if mirrored:
        mapped[:, 0] *= -1
    if height > 1:
        mapped[:, 1] *= HEX_ROW_HEIGHT / mapped[width, 1]
    if not np.allclose(mapped, dasksom_positions(height, width)):
        raise RuntimeError("the library's node layout does not match dasksom's hexagonal lattice")
    return order


def sigma_schedule(height: int, width: int, epochs: int) -> tuple[float, float]:
    """dasksom's (and simpsom's) default radius: from s0 = max(h, w)/2, tau = E / ln(s0)."""
    s0 = max(height, width) / 2
    return s0, epochs / math.log(s0)


def train_dasksom(x, init, height, width, epochs, metric="euclidean", pbc=False):
    from dasksom import SOM

    som = SOM(height, width, topology="hexagonal", pbc=pbc, metric=metric, init=init)
    # The seed of simpsom's MNIST tutorial; only random and sample initialisations use it.
    som.set_params(neighborhood="gaussian", epochs=epochs, random_state=32)
    started = time.perf_counter()
    som.fit(x)
    return som.weights_, time.perf_counter() - started, "batch, threaded scheduler"


def train_simpsom(x, init, height, width, epochs, metric="euclidean", pbc=False):
    import tempfile

    from simpsom import SOMNet
    from simpsom.hexagons import coor_to_hex

    # SOMNet builds node (column x, row y) in this order; the row-0 header of a weights file
    # holds height, width and PBC.
    positions = np.array([coor_to_hex(c, r) for c in range(width) for r in range(height)])
    order = lattice_order(positions, height, width)
    table = np.zeros((len(init) + 1, init.shape[1]))
    table[0, :3] = height, width, pbc
    table[1:][order] = init
    # simpsom's batch step holds rows x nodes x features float64 arrays: cap them at ~256 MiB.
    batch = max(1, 2**28 // (len(init) * x.shape[1] * 8))
    with tempfile.NamedTemporaryFile(suffix=".npy") as weights_file:
        np.save(weights_file.name, table)
        net = SOMNet(height, width, x, load_file=weights_file.name, metric=metric, PBC=pbc)
    started = time.perf_counter()
    net.train(train_algo="batch", epochs=epochs, batch_size=batch)
    seconds = time.perf_counter() - started
    trained = np.array([node.weights for node in net.node_list])
    return trained[order], seconds, f"batch, batch_size={batch}, PCA init via load_file"


def train_minisom(x, init, height, width, epochs):
    from minisom import MiniSom

    s0, tau = sigma_schedule(height, width, epochs)
    # Learning rate 1 throughout: the weighted mean replaces the weights, as in batch SOM.
    som = MiniSom(
        width,
        height,
        x.shape[1],
        sigma=s0,
        learning_rate=1.0,
        decay_function=lambda rate, t, max_t: rate,
        neighborhood_function="gaussian",
        topology="hexagonal",
    )
    # sigma_decay_function only takes names; dasksom's exponential schedule goes in directly.
    som._sigma_decay_function = lambda sigma, t, max_t: sigma * math.exp(-t / tau)
    xx, yy = som.get_euclidean_coordinates()
    order = lattice_order(np.column_stack([xx.ravel(), yy.ravel()]), height, width)
    flat = np.empty_like(init)
    flat[order] = init
    som._weights = flat.reshape(width, height, -1)
    started = time.perf_counter()
    som.train_batch_offline(x, epochs)
    seconds = time.perf_counter() - started
    return som._weights.reshape(len(init), -1)[order], seconds, "train_batch_offline (batch)"


def train_xpysom(x, init, height, width, epochs):
    from xpysom import XPySom

    s0, _ = sigma_schedule(height, width, epochs)
    # Its exponential decay s0 * (sN / s0)^(t / E) with sN = 1 is dasksom's schedule; std_coeff 1
    # makes the gaussian exp(-d^2 / (2 sigma^2)).
    som = XPySom(
        width,
        height,
        x.shape[1],
        sigma=s0,
        sigmaN=1.0,
        decay_function="exponential",
        neighborhood_function="gaussian",
        std_coeff=1.0,
        topology="hexagonal",
        xp=np,
    )
    order = lattice_order(np.column_stack([som._xx.T.ravel(), som._yy.T.ravel()]), height, width)
    flat = np.empty_like(init)
    flat[order] = init
    som._weights = flat.reshape(width, height, -1)
    started = time.perf_counter()
    som.train(x, epochs)
    seconds = time.perf_counter() - started
    trained = np.asarray(som._weights).reshape(len(init), -1)
    return trained[order], seconds, "batch; hexagonal rows spaced 1 apart, not sqrt(3)/2"


def train_somoclu(x, init, height, width, epochs):
    from somoclu import Somoclu

    s0, _ = sigma_schedule(height, width, epochs)
    # Codebook order is (row, column); its plots shift even rows right, as placed here.
    rows, cols = np.divmod(np.arange(height * width), width)
    positions = np.column_stack([cols + 0.5 * (rows % 2 == 0), rows * HEX_ROW_HEIGHT])
    order = lattice_order(positions, height, width)
    codebook = np.empty(init.shape, dtype=np.float32)
    codebook[order] = init
    som = Somoclu(
        width,
        height,
        initialcodebook=codebook,
        gridtype="hexagonal",
        maptype="planar",
        compactsupport=False,
        neighborhood="gaussian",
        std_coeff=1.0,
    )
    started = time.perf_counter()
    # Exponential cooling s0 * (rN / s0)^(t / E) with rN = 1 is dasksom's schedule.
    som.train(x, epochs=epochs, radius0=s0, radiusN=1.0, radiuscooling="exponential")
    seconds = time.perf_counter() - started
    trained = som.codebook.reshape(len(init), -1)
    return trained[order], seconds, "batch (dense CPU kernel)"


TRAINERS = {
    "dasksom": train_dasksom,
    "simpsom": train_simpsom,
    "minisom": train_minisom,
    "xpysom": train_xpysom,
    "somoclu": train_somoclu,
}


def main() -> None:
    settings = json.loads(sys.argv[1])
    x = np.load(settings["data"])
    init = settings["init"] if settings["init"] == "pca" else np.load(settings["init"])
    trainer = TRAINERS[settings["library"]]
    # Only the libraries that take them get metric and pbc, so the others fail loudly.
    options = {key: settings[key] for key in ("metric", "pbc") if key in settings}
    weights, seconds, note = trainer(
        x, init, settings["height"], settings["width"], settings["epochs"], **options
    )
    np.save(settings["out"], np.asarray(weights, dtype=np.float64))
    report = {"train_seconds": seconds, "peak_rss_mib": peak_rss_mib(), "note": note}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
