"""Plain numpy reference of design.md, written from the formulas and nothing else.

Slow and simple on purpose: the tests hold dasksom's kernels and engine to it.
"""

import math

import numpy as np


def positions(height, width, topology):
    out = []
    for r in range(height):
        for c in range(width):
            if topology == "square":
                out.append((c, r))
            else:
                out.append((c + 0.5 * (r % 2), r * math.sqrt(3) / 2))
    return np.array(out, dtype=float)


def lattice_distance(p, q, height, width, topology, pbc):
    dx, dy = q[0] - p[0], q[1] - p[1]
    if pbc:
        size_x = width
        size_y = height * (math.sqrt(3) / 2 if topology == "hexagonal" else 1)
        while dx > size_x / 2:
            dx -= size_x
        while dx < -size_x / 2:
            dx += size_x
        while dy > size_y / 2:
            dy -= size_y
        while dy < -size_y / 2:
            dy += size_y
    return math.sqrt(dx * dx + dy * dy)


def distance_matrix(height, width, topology, pbc):
    pos = positions(height, width, topology)
    m = len(pos)
    return np.array(
        [
            [lattice_distance(pos[j], pos[k], height, width, topology, pbc) for k in range(m)]
            for j in range(m)
        ]
    )


def h(d, s, kind):
    if kind == "gaussian":
        return math.exp(-(d**2) / (2 * s**2))
    if kind == "bubble":
        return 1.0 if d <= s else 0.0
    return (1 - d**2 / s**2) * math.exp(-(d**2) / (2 * s**2))


def distance(x, w, metric):
    """The metric's distance between one row and one node (1 - cosine similarity for cosine)."""
    if metric == "euclidean":
        return float(np.linalg.norm(x - w))
    if metric == "manhattan":
        return float(np.abs(x - w).sum())
    return float(1 - x @ w / (np.linalg.norm(x) * np.linalg.norm(w)))


def bmu(x, weights, metric):
    if metric == "euclidean":
        scores = [np.linalg.norm(x - w) for w in weights]
        return int(np.argmin(scores))
    if metric == "manhattan":
        return int(np.argmin([np.abs(x - w).sum() for w in weights]))
    sims = [x @ w / (np.linalg.norm(x) * np.linalg.norm(w)) for w in weights]
    return int(np.argmax(sims))


def batch_epoch(data, weights, sigma, height, width, topology, pbc, metric, kind):
    """One batch epoch by the per-sample formula of design.md section 4."""
    dist = distance_matrix(height, width, topology, pbc)
    bmus = [bmu(x, weights, metric) for x in data]
    new = weights.copy()
    for j in range(len(weights)):
        hj = np.array([h(dist[j, b], sigma, kind) for b in bmus])
        den = hj.sum()
        if den > 0:
            new[j] = (hj[:, None] * data).sum(axis=0) / den
    return new


def sigma_schedule(height, width, epochs):
    s0 = max(height, width) / 2
    tau = epochs / math.log(s0)
    return [s0 * math.exp(-t / tau) for t in range(epochs)]


def train(data, weights, height, width, topology, pbc, metric, kind, sigmas):
    for s in sigmas:
        weights = batch_epoch(data, weights, s, height, width, topology, pbc, metric, kind)
    return weights


def quantization_error(data, weights, metric):
    return float(np.mean([np.linalg.norm(x - weights[bmu(x, weights, metric)]) for x in data]))


# -- missing values (NaN), design.md "Missing values" ---------------------------------------------


def bmu_observed(x, weights, metric):
    """BMU over the observed (non-NaN) features of ``x``; None when none is observed."""
    seen = ~np.isnan(x)
    if not seen.any():
        return None
    return bmu(x[seen], weights[:, seen], metric)


def batch_epoch_observed(data, weights, sigma, height, width, topology, pbc, metric, kind):
    """One batch epoch with missing values: W[k, d] = sum_j h_kj S_jd / sum_j h_kj n_jd."""
    dist = distance_matrix(height, width, topology, pbc)
    bmus = [bmu_observed(x, weights, metric) for x in data]
    new = weights.copy()
    for k in range(len(weights)):
        for d in range(weights.shape[1]):
            num = den = 0.0
            for x, b in zip(data, bmus, strict=True):
                if b is None or np.isnan(x[d]):
                    continue
                hk = h(dist[k, b], sigma, kind)
                num += hk * x[d]
                den += hk
            if den > 0:
                new[k, d] = num / den
    return new
