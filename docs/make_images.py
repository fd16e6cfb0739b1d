"""Draw the pictures in the README into docs/images/: run ``python docs/make_images.py``.

The map is the demo's (``dasksom demo``: scikit-learn's 1,797 handwritten digits, 8 x 8
pixels, on a 16 x 16 hexagonal map), trained with a fixed seed so that the pictures only
change when the code does.  PNGs are reduced to a 256-colour palette to stay small.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from dasksom import SOM, plotting

OUT = Path(__file__).resolve().parent / "images"
DPI = 80


def save_small(fig: plt.Figure, name: str) -> Path:
    """Save ``fig`` as a palette PNG under docs/images."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    image = Image.open(buffer).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    path = OUT / name
    image.save(path, optimize=True)
    return path


def main() -> None:
    digits = load_digits()
    X, y = digits.data / 16.0, digits.target
    som = SOM(16, 16, epochs=20, random_state=0, chunks=200).fit(X)
    bmus = som.predict(X)
    OUT.mkdir(parents=True, exist_ok=True)
    pictures = {
        "umatrix.png": plotting.plot_umatrix(som, title="U-matrix of the digits map")[0],
        "labels.png": plotting.plot_labels(som, X, y, bmus=bmus, title="Majority digit")[0],
        "weights.png": plotting.plot_weight_mosaic(som, (8, 8), title="Node weights")[0],
    }
    for name, fig in pictures.items():
        path = save_small(fig, name)
        print(f"{path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
