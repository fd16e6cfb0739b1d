"""The figures of dasksom.plotting.fields: prototype maps laid out as the lattice, frequency and
trend on the map, the transition graph."""

import numpy as np
import pytest

pytest.importorskip("xarray")

from dasksom.climate import FieldSOM, frequencies, frequency_trend, planted_regimes  # noqa: E402
from dasksom.climate import transitions as transition_matrix  # noqa: E402
from dasksom.plotting import fields as plots  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    data = planted_regimes(n_winters=3, n_lat=5, n_lon=6, seed=0)
    model = FieldSOM(height=2, width=2, epochs=2, random_state=0).fit(data["slp"])
    return model, model.bmus(data["slp"]).compute()


def test_prototype_maps_draw_one_lat_lon_panel_per_node_in_the_lattice_layout(fitted, tmp_path):
    model, bmus = fitted
    fig, axes = plots.plot_prototype_maps(
        model.prototypes(),
        frequencies=frequencies(bmus, 4),
        coastlines=False,
        print_out=True,
        file_name=tmp_path / "maps.png",
    )
    assert axes.shape == (2, 2)
    assert axes[1, 0].get_title().startswith("node 0")
    assert (tmp_path / "maps.png").stat().st_size > 0


def test_coastlines_without_cartopy_say_how_to_get_them(fitted, monkeypatch):
    monkeypatch.setattr(plots, "cartopy_available", lambda: False)
    with pytest.raises(ImportError, match="pip install cartopy"):
        plots.plot_prototype_maps(fitted[0].prototypes(), coastlines=True)


def test_a_prototype_map_needs_exactly_two_grid_dims(fitted):
    prototypes = fitted[0].prototypes().expand_dims(level=[500])
    with pytest.raises(ValueError, match="select one"):
        plots.plot_prototype_maps(prototypes)


def test_frequency_trend_draws_frequency_and_trend_side_by_side(fitted):
    model, bmus = fitted
    fig, axes = plots.plot_frequency_trend(frequency_trend(bmus, 4), model.som_.lattice_)
    assert [ax.get_title() for ax in axes] == ["frequency", "trend (* p < 0.05)"]


def test_transition_graph_draws_an_arrow_per_likely_transition(fitted):
    model, bmus = fitted
    moves = transition_matrix(bmus, 4)
    probability = np.nan_to_num(moves["probability"].values)
    likely = int(((probability >= 0.05) & ~np.eye(4, dtype=bool)).sum())
    fig, ax = plots.plot_transition_graph(moves, model.som_.lattice_)
    arrows = [text for text in ax.texts if getattr(text, "arrow_patch", None) is not None]
    assert len(arrows) == likely


def test_transition_graph_refuses_a_matrix_of_another_map(fitted):
    with pytest.raises(ValueError, match="4 x 4"):
        plots.plot_transition_graph(np.zeros((3, 3)), fitted[0].som_.lattice_)
