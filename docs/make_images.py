"""Put the pictures of ``dasksom demo`` into docs/images/ for the README.

Run ``python docs/make_images.py`` (``--output FOLDER`` writes elsewhere).  It runs the demo
itself, with its defaults (scikit-learn's 1,797 handwritten digits, 8 x 8 pixels, on a 16 x 16
hexagonal map, 20 epochs, seed 0, a local cluster of 2 workers), into a temporary folder and
copies the PNGs the demo writes, byte for byte, under the names README.md uses: the README
shows exactly what ``dasksom demo`` draws, and changes only when the demo does.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

IMAGES = Path(__file__).resolve().parent / "images"
# The README's picture: the demo's file it copies.
PICTURES = {
    "umatrix.png": "umatrix.png",
    "labels.png": "labels.png",
    "weights.png": "weights.png",
}


def make_images(output: Path, demo_options: Sequence[str] = ()) -> list[Path]:
    """Run ``dasksom demo`` and copy its pictures into ``output``.

    Parameters
    ----------
    output : pathlib.Path
        The folder for the pictures, created when missing.
    demo_options : sequence of str, default=()
        More ``dasksom demo`` options; none for the README's pictures.

    Returns
    -------
    list of pathlib.Path
        The pictures written, in the order of :data:`PICTURES`.
    """
    import matplotlib

    matplotlib.use("Agg")
    from dasksom.cli.main import main as dasksom

    with tempfile.TemporaryDirectory(prefix="dasksom-demo-") as demo:
        status = dasksom(["demo", "--output", demo, *demo_options])
        if status != 0:
            raise SystemExit(f"dasksom demo failed (exit status {status})")
        output.mkdir(parents=True, exist_ok=True)
        written = []
        for name, drawn in PICTURES.items():
            written.append(Path(shutil.copyfile(Path(demo) / drawn, output / name)))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """The script's command line.

    Parameters
    ----------
    argv : sequence of str, default=None
        The arguments; None reads ``sys.argv``.

    Returns
    -------
    int
        The exit status, 0.
    """
    parser = argparse.ArgumentParser(
        description="Run `dasksom demo` and copy its pictures for the README.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--output", type=Path, default=IMAGES, help="folder for the pictures")
    args = parser.parse_args(argv)
    for path in make_images(args.output):
        print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
