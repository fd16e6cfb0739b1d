"""docs/make_images.py draws the README's pictures by running ``dasksom demo``."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pictures drawn by something other than the demo: the explorer's screenshot is a browser's
# (docs/explorer.md), the climate figures are examples/climate_regimes.py's and the cytometry
# ones docs/make_cytometry_images.py's.
DRAWN_ELSEWHERE = ("explorer.png", "climate_", "cytometry_")


def readme_images():
    """The docs/images pictures README.md shows."""
    text = (ROOT / "README.md").read_text()
    return sorted(set(re.findall(r"\(docs/images/([\w.-]+\.png)\)", text)))


def test_make_images_writes_the_readme_pictures_from_the_demo(tmp_path):
    out = tmp_path / "images"
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_images.py"), "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    # The demo's own run: its progress and closing lines are in the output.
    assert "dasksom demo: 1797 handwritten digits" in result.stdout
    assert "final map: quantization error" in result.stdout
    expected = [name for name in readme_images() if not name.startswith(DRAWN_ELSEWHERE)]
    assert expected == ["labels.png", "umatrix.png", "weights.png"]
    assert sorted(p.name for p in out.iterdir()) == expected
    for name in expected:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, name


def test_every_picture_the_readme_shows_is_in_docs_images():
    for name in readme_images():
        data = (ROOT / "docs" / "images" / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, name
