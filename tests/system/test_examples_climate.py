"""examples/climate_regimes.py runs end to end and writes its figures where it is told, and
examples/climate_regimes.ipynb holds the same cells (running this file as a script rebuilds the
notebook from the example)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("xarray")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPT = EXAMPLES / "climate_regimes.py"
NOTEBOOK = EXAMPLES / "climate_regimes.ipynb"
FIGURES = ("prototypes", "frequency_trend", "transitions", "composites")


def script_cells(text: str) -> list[dict]:
    """The script's ``# %%`` cells as notebook cells: ``# %% [markdown]`` ones without their
    comment marks."""
    cells = []
    for chunk in text.split("# %%")[1:]:
        header, _, body = chunk.partition("\n")
        body = body.strip("\n")
        if header.strip() == "[markdown]":
            lines = [
                line[2:] if line.startswith("# ") else line.lstrip("#")
                for line in body.splitlines()
            ]
            cells.append({"cell_type": "markdown", "metadata": {}, "source": "\n".join(lines)})
        else:
            cells.append(
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "metadata": {},
                    "outputs": [],
                    "source": body,
                }
            )
    return cells


def notebook(text: str) -> dict:
    """An nbformat 4 notebook of the script's cells, without outputs."""
    return {
        "cells": script_cells(text),
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def test_the_climate_example_writes_its_figures_and_results_to_the_given_folder(tmp_path):
    output = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(output)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name in FIGURES:
        assert (output / f"climate_{name}.png").stat().st_size > 10_000
    assert (output / "climate_regimes.nc").exists() and (output / "climate_regimes.zarr").is_dir()
    assert "100% of its days" in done.stdout


def test_the_notebook_holds_the_cells_of_the_script():
    found = json.loads(NOTEBOOK.read_text())
    expected = script_cells(SCRIPT.read_text())
    assert [(c["cell_type"], "".join(c["source"])) for c in found["cells"]] == [
        (c["cell_type"], c["source"]) for c in expected
    ]


if __name__ == "__main__":
    NOTEBOOK.write_text(json.dumps(notebook(SCRIPT.read_text()), indent=1) + "\n")
    print(f"wrote {NOTEBOOK}")
