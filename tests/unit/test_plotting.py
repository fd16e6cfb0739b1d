"""Plots of a trained map (dasksom.plotting) and simpsom's plots module (dasksom.simpsom.plots)."""

import sys
import time
from types import SimpleNamespace

import dask.array as da
import matplotlib
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

from dasksom import SOM, Lattice
from dasksom import plotting as P
from dasksom.plotting import base
from dasksom.simpsom import plots

# Importing pyplot chooses no backend yet: the first figure would.
matplotlib.use("Agg")

CONFIGS = {
    "hexagonal": ("hexagonal", False),
    "hexagonal-pbc": ("hexagonal", True),
    "square-pbc": ("square", True),
}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=5.0, size=(3, 5))
    y = rng.integers(0, 3, 300)
    return centres[y] + rng.normal(size=(300, 5)), y


@pytest.fixture(scope="module", params=list(CONFIGS))
def som(request, data):
    topology, pbc = CONFIGS[request.param]
    return SOM(6, 8, topology=topology, pbc=pbc, epochs=4, random_state=0).fit(data[0])


@pytest.fixture(scope="module")
def hex_som(data):
    """One map for the tests that need not run on every topology."""
    return SOM(6, 8, epochs=4, random_state=0).fit(data[0])


def assert_png(path):
    """A written, readable PNG that is not a single flat colour."""
    assert path.exists() and path.stat().st_size > 0
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 50 and pixels.shape[1] > 50
    assert np.ptp(pixels[..., :3].reshape(-1, 3), axis=0).max() > 0.2


def reference_differences(weights, lattice):
    out = np.empty(lattice.n_nodes)
    for k in range(lattice.n_nodes):
        neighbours = lattice.neighbors(k)
        out[k] = np.mean([np.linalg.norm(weights[k] - weights[j]) for j in neighbours])
    return out


# --- tilings --------------------------------------------------------------------------------


@pytest.mark.parametrize("topology", ["square", "hexagonal"])
def test_tiles_touch_without_gaps_or_overlaps(topology):
    lattice = Lattice(4, 5, topology)
    tiling = P.tiling_for(lattice)
    assert tiling is {"square": P.Squares, "hexagonal": P.Hexagons}[topology]
    verts = tiling.tiles(lattice.positions)
    # Each tile covers exactly one lattice cell (1 x row height) ...
    x, y = verts[..., 0], verts[..., 1]
    area = 0.5 * np.abs(np.sum(x * np.roll(y, -1, 1) - np.roll(x, -1, 1) * y, axis=1))
    np.testing.assert_allclose(area, lattice.extent[1] / lattice.height)
    # ... and shares a whole edge (two vertices) with every lattice neighbour.
    for k in range(lattice.n_nodes):
        for j in lattice.neighbors(k):
            gaps = np.linalg.norm(verts[k][:, None] - verts[j][None], axis=-1)
            assert (gaps < 1e-9).sum() == 2
    np.testing.assert_allclose(tiling.tile(lattice.positions[7]), verts[7])


def test_hexagons_are_pointy_top():
    top = P.Hexagons.tile((0.0, 0.0))
    assert np.isclose(top[:, 1].max(), 1 / np.sqrt(3))
    assert np.isclose(np.ptp(top[:, 0]), 1.0)


def test_tiling_draws_a_map_like_simpsom_polygons():
    fig = plt.figure()
    lattice = Lattice(3, 4, "hexagonal")
    ax = P.Hexagons.draw_map(fig, lattice.positions, np.arange(12.0), cmap="magma")
    assert len(ax.collections[0].get_paths()) == 12
    assert ax.get_aspect() == 1.0


def test_tiling_for_unknown_topology():
    with pytest.raises(ValueError, match="topology"):
        P.tiling_for("triangular")


# --- U-matrix values ------------------------------------------------------------------------


def test_node_differences_of_a_fitted_map(som):
    diff = P.node_differences(som.weights_, som.lattice_)
    np.testing.assert_allclose(diff, reference_differences(som.weights_, som.lattice_))
    with pytest.raises(ValueError, match="shape"):
        P.node_differences(som.weights_[:-1], som.lattice_)


# --- plots of a fitted map ------------------------------------------------------------------


def test_every_plot_writes_a_picture(som, data, tmp_path):
    X, y = data
    calls = {
        "umatrix": lambda f: P.plot_umatrix(som, print_out=True, file_name=f),
        "plane": lambda f: P.plot_component_planes(som, 2, print_out=True, file_name=f),
        "hits": lambda f: P.plot_hits(som, X, annotate=True, print_out=True, file_name=f),
        "labels": lambda f: P.plot_labels(som, X, y, print_out=True, file_name=f),
        "mosaic": lambda f: P.plot_weight_mosaic(som, (5, 1), print_out=True, file_name=f),
        "projection": lambda f: P.plot_projection(som, X, y, print_out=True, file_name=f),
        "convergence": lambda f: P.plot_convergence(
            som.history_, "map_difference", print_out=True, file_name=f
        ),
        "draw_map": lambda f: P.draw_map(
            som.weights_[:, 0], som.lattice_, cmap=plt.get_cmap("magma"), print_out=True,
            file_name=f,
        ),
    }  # fmt: skip
    for name, call in calls.items():
        path = tmp_path / f"{name}.png"
        fig, ax = call(path)
        assert isinstance(fig, matplotlib.figure.Figure)
        assert isinstance(ax, matplotlib.axes.Axes)
        assert_png(path)


def test_component_plane_grid(hex_som, tmp_path):
    path = tmp_path / "planes.png"
    fig, axes = P.plot_component_planes(
        hex_som, [0, 2, 4], feature_names=list("abcde"), ncols=2, print_out=True, file_name=path
    )
    assert axes.shape == (2, 2)
    assert [a.get_title() for a in axes.flat[:3]] == ["a", "c", "e"]
    assert not axes.flat[3].axison
    assert_png(path)
    fig, axes = P.plot_component_planes(hex_som)
    assert axes.size >= 5
    assert fig.get_suptitle() == "all 5 features"


def test_component_planes_of_wide_data_show_the_most_varying_features(hex_som):
    # Feature f varies with spread f: the last ones vary most.
    weights = np.linspace(-1.0, 1.0, 48)[:, None] * np.arange(40.0)
    wide = SimpleNamespace(weights_=weights, lattice_=hex_som.lattice_)
    fig, axes = P.plot_component_planes(wide)
    shown = [a.get_title() for a in axes.flat if a.get_title()]
    assert len(shown) == 16
    assert set(shown) == {f"feature {f}" for f in range(24, 40)}
    assert fig.get_suptitle() == "16 of 40 features, highest weight variance"
    fig, axes = P.plot_component_planes(wide, max_features=4, title="")
    assert [a.get_title() for a in axes.flat] == [f"feature {f}" for f in (39, 38, 37, 36)]
    assert fig.get_suptitle() == ""
    with pytest.raises(ValueError, match="max_features"):
        P.plot_component_planes(wide, max_features=0)


def test_component_planes_by_name(hex_som):
    named = SimpleNamespace(
        weights_=hex_som.weights_, lattice_=hex_som.lattice_, feature_names_in_=list("vwxyz")
    )
    fig, ax = P.plot_component_planes(named, "x")
    np.testing.assert_array_equal(ax.collections[0].get_array(), hex_som.weights_[:, 2])
    assert ax.get_title() == "x"
    fig, axes = P.plot_component_planes(named, ["z", 0])
    assert [a.get_title() for a in axes.flat[:2]] == ["z", "v"]
    with pytest.raises(ValueError, match="Unknown feature 'q'"):
        P.plot_component_planes(named, "q")
    with pytest.raises(ValueError, match="no feature names"):
        P.plot_component_planes(hex_som, "x")


def test_plots_draw_into_given_axes(hex_som, data):
    fig, axes = plt.subplots(1, 3)
    assert P.plot_umatrix(hex_som, ax=axes[0]) == (fig, axes[0])
    assert P.plot_hits(hex_som, data[0], ax=axes[1])[1] is axes[1]
    assert P.plot_convergence(hex_som, ax=axes[2])[1] is axes[2]


def test_hits_and_labels_take_dask_input(som, data):
    X, y = data
    Xd, yd = da.from_array(X, chunks=100), da.from_array(y, chunks=100)
    bmus = som.predict(X)
    fig, ax = P.plot_hits(som, Xd, colorbar=False)
    tiles = ax.collections[0]
    # The first 48 tiles are the nodes in order; a torus repeats its edge tiles after them.
    np.testing.assert_array_equal(tiles.get_array()[:48], np.bincount(bmus, minlength=48))
    fig, ax = P.plot_labels(som, Xd, yd)
    assert [t.get_text() for t in ax.get_legend().get_texts()][:3] == ["0", "1", "2"]


def stub_map(height=2, width=3):
    """A fitted-looking map whose data passes would fail: only bmus= may be used."""

    def no_pass(X):
        raise AssertionError("the plot went over the data although it was given bmus")

    lattice = Lattice(height, width, "square")
    return SimpleNamespace(
        weights_=np.arange(float(lattice.n_nodes))[:, None],
        lattice_=lattice,
        predict=no_pass,
        hit_counts=no_pass,
        best_matching_units=no_pass,
    )


def test_hits_hatch_empty_nodes_and_say_so():
    fig, ax = P.plot_hits(stub_map(), bmus=np.array([0, 0, 1, 5]), annotate=True)
    coloured, hatched = ax.collections
    np.testing.assert_array_equal(coloured.get_array(), [2, 1, 0, 0, 0, 1])
    assert len(hatched.get_paths()) == 3 and hatched.get_hatch() == P.NO_HITS_HATCH
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["no hits"]
    assert legend.legend_handles[0].get_hatch() == P.NO_HITS_HATCH
    fig, ax = P.plot_hits(stub_map(), bmus=np.arange(6))
    assert len(ax.collections) == 1 and ax.get_legend() is None


def test_hatched_nodes_wrap_on_a_torus(som, data):
    bmus = np.zeros(10, dtype=int)  # one hit node: every other node is hatched
    fig, ax = P.plot_hits(som, bmus=bmus)
    hatched = ax.collections[1]
    assert len(hatched.get_paths()) >= som.lattice_.n_nodes - 1
    # Clipped like the map under them: to the torus rectangle on a periodic map.
    np.testing.assert_allclose(
        hatched.get_clip_box().bounds, ax.collections[0].get_clip_box().bounds
    )


def test_plots_take_precomputed_bmus(som, data):
    X, y = data
    bmus = som.predict(X)
    stub = SimpleNamespace(**{**stub_map().__dict__, "weights_": som.weights_})
    stub.lattice_ = som.lattice_
    with_data = P.plot_hits(som, X)[1].collections[0].get_array()
    np.testing.assert_array_equal(P.plot_hits(stub, bmus=bmus)[1].collections[0].get_array(),
                                  with_data)  # fmt: skip
    with_data = P.plot_labels(som, X, y)[1].collections[0].get_array()
    np.testing.assert_array_equal(
        P.plot_labels(stub, None, y, bmus=bmus)[1].collections[0].get_array(), with_data
    )
    with_data = P.plot_projection(som, X, y)[1].collections[-1].get_offsets()
    np.testing.assert_array_equal(
        P.plot_projection(stub, None, y, bmus=bmus)[1].collections[-1].get_offsets(), with_data
    )
    with pytest.raises(ValueError, match="bmus"):
        P.plot_hits(som)
    with pytest.raises(ValueError, match="node indices"):
        P.plot_labels(stub, None, y, bmus=bmus + som.lattice_.n_nodes)


def test_bmus_come_from_best_matching_units_when_the_map_has_it(hex_som, data):
    X, y = data
    calls = []

    def best_matching_units(X):
        calls.append(len(X))
        return hex_som.predict(X)

    stub = SimpleNamespace(
        weights_=hex_som.weights_,
        lattice_=hex_som.lattice_,
        best_matching_units=best_matching_units,
    )
    P.plot_labels(stub, X, y)
    assert calls == [len(X)]


def test_labels_hatch_empty_nodes():
    lattice = Lattice(2, 3, "square")
    stub = SimpleNamespace(
        weights_=np.arange(6.0)[:, None],
        lattice_=lattice,
        predict=lambda X: np.asarray(X)[:, 0].astype(int),
    )
    X = np.array([[0], [0], [0], [1], [5]])
    fig, ax = P.plot_labels(stub, X, np.array(["a", "b", "b", "c", "a"]))
    coloured, blank, hatched = ax.collections
    np.testing.assert_array_equal(coloured.get_array(), [1, 2, 0])  # b, c, a
    assert len(blank.get_paths()) == 3
    assert len(hatched.get_paths()) == 3 and hatched.get_hatch() == P.NO_HITS_HATCH
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["a", "b", "c", "no samples"]


def test_weight_mosaic_places_each_node_at_its_position():
    for topology in ("square", "hexagonal"):
        lattice = Lattice(4, 5, topology)
        weights = np.repeat(np.arange(20.0)[:, None], 6, axis=1)  # node k's image is all k
        stub = SimpleNamespace(weights_=weights, lattice_=lattice)
        fig, ax = P.plot_weight_mosaic(stub, (2, 3), padding=2)
        image = ax.images[0]
        canvas = image.get_array()
        left, right, bottom, top = image.get_extent()
        for k, (x, y) in enumerate(lattice.positions):
            col = int((x - left) / (right - left) * canvas.shape[1])
            row = int((top - y) / (top - bottom) * canvas.shape[0])
            assert canvas[row, col] == pytest.approx(k / 19)


def test_weight_mosaic_of_a_large_map_is_fast():
    lattice = Lattice(50, 50, "hexagonal")
    stub = SimpleNamespace(weights_=np.random.default_rng(0).random((2500, 784)), lattice_=lattice)
    started = time.perf_counter()
    fig, ax = P.plot_weight_mosaic(stub, (28, 28))
    fig.canvas.draw()
    assert time.perf_counter() - started < 5.0
    with pytest.raises(ValueError, match="image_shape"):
        P.plot_weight_mosaic(stub, (28, 27))


def test_projection_is_seeded_and_stays_on_the_map(som, data):
    X, y = data
    first = P.plot_projection(som, X, jitter=0.45)[1].collections[-1].get_offsets()
    again = P.plot_projection(som, X, jitter=0.45)[1].collections[-1].get_offsets()
    np.testing.assert_array_equal(first, again)
    fig, ax = P.plot_projection(som, X)
    points = ax.collections[-1].get_offsets()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert points[:, 0].min() >= x0 and points[:, 0].max() <= x1
    assert points[:, 1].min() >= y0 and points[:, 1].max() <= y1


def test_periodic_maps_are_drawn_inside_their_torus(som):
    fig, ax = P.plot_umatrix(som)
    lattice = som.lattice_
    if not lattice.pbc:
        return
    width, height = lattice.extent
    row = height / lattice.height
    assert ax.get_xlim() == pytest.approx((-0.5, width - 0.5))
    assert ax.get_ylim() == pytest.approx((-row / 2, height - row / 2))
    tiles = ax.collections[0]
    assert tiles.get_clip_box() is not None
    # Every node is drawn in place, in node order; wrapped overhangs come after.
    centres = [path.vertices[:-1].mean(axis=0) for path in tiles.get_paths()[: lattice.n_nodes]]
    np.testing.assert_allclose(centres, lattice.positions, atol=1e-9)


def test_convergence_reads_history(hex_som):
    fig, ax = P.plot_convergence(hex_som, "sigma")
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [h["sigma"] for h in hex_som.history_])
    # sigma belongs to each epoch's update: epochs 1, 2, ...
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), np.arange(1, 5))
    assert ax.get_xlabel() == "epoch"
    with pytest.raises(KeyError, match="quantization_error"):
        P.plot_convergence(hex_som.history_, "nope")


def test_convergence_draws_the_qe_of_the_initial_map_at_zero():
    # Each record's QE is of the weights its epoch started from: history[0] is the initial map.
    history = [{"quantization_error": qe} for qe in (3.0, 2.0, 1.5)]
    fig, ax = P.plot_convergence(history)
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [0, 1, 2])
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [3.0, 2.0, 1.5])
    assert ax.get_xlabel() == "epochs completed"
    assert "initial map" in ax.get_legend().get_texts()[0].get_text()


def test_convergence_draws_the_final_maps_qe_as_the_last_point(hex_som, data):
    history = [{"quantization_error": qe, "sigma": 1.0} for qe in (3.0, 2.0, 1.5)]
    fig, ax = P.plot_convergence(history)
    assert len(ax.lines) == 1  # the final map's QE is on no record: not drawn unless given
    fig, ax = P.plot_convergence(history, final_quantization_error=1.2)
    before_update, final = ax.lines
    np.testing.assert_array_equal(before_update.get_xdata(), [0, 1, 2])
    # The trained map, after all 3 epochs: dashed on from the map the last epoch started from.
    np.testing.assert_array_equal(final.get_xdata(), [2, 3])
    np.testing.assert_array_equal(final.get_ydata(), [1.5, 1.2])
    assert final.get_linestyle() == "--" and final.get_marker() == "*"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [
        "map before epoch x+1's update (0: initial map)",
        "final map (after 3 epochs)",
    ]
    assert ax.get_xlabel() == "epochs completed"
    with pytest.raises(ValueError, match="final_quantization_error"):
        P.plot_convergence(history, "sigma", final_quantization_error=1.2)
    # A fitted map: its history and its QE on the data, measured after the last epoch.
    qe = hex_som.quantization_error(data[0])
    fig, ax = P.plot_convergence(hex_som, final_quantization_error=qe)
    assert ax.lines[1].get_xdata()[-1] == len(hex_som.history_) == 4
    assert ax.lines[1].get_ydata()[-1] == pytest.approx(qe)
    assert qe < hex_som.history_[0]["quantization_error"]


def test_pyplot_chooses_agg_on_a_headless_linux_box_only(monkeypatch):
    with monkeypatch.context() as m:
        for name in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND"):
            m.delenv(name, raising=False)
        m.setattr(sys, "platform", "linux")
        # Only the check runs while pyplot is out of sys.modules: nothing imports it afresh.
        m.delitem(sys.modules, "matplotlib.pyplot")
        assert base._headless_without_backend()
        m.setenv("WAYLAND_DISPLAY", "wayland-0")
        assert not base._headless_without_backend()
        m.delenv("WAYLAND_DISPLAY")
        m.setenv("MPLBACKEND", "pdf")
        assert not base._headless_without_backend()
        m.delenv("MPLBACKEND")
        m.setattr(sys, "platform", "darwin")
        assert not base._headless_without_backend()
    assert not base._headless_without_backend()  # pyplot is imported: the user's choice stands
    chosen = []
    monkeypatch.setattr(base, "_headless_without_backend", lambda: True)
    monkeypatch.setattr(matplotlib, "use", chosen.append)
    assert base.pyplot.__wrapped__() is plt
    assert chosen == ["Agg"]


def test_default_file_names_and_extension(hex_som, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    P.plot_umatrix(hex_som, print_out=True)
    assert_png(tmp_path / "som_umatrix.png")
    P.draw_map(np.arange(48.0), hex_som.lattice_, print_out=True, file_name=tmp_path / "plain")
    assert_png(tmp_path / "plain.png")


def test_large_map_renders_quickly():
    lattice = Lattice(200, 200, "hexagonal")
    values = np.random.default_rng(0).random(lattice.n_nodes)
    timings = []
    for _ in range(2):  # a second chance: the test machine is shared
        started = time.perf_counter()
        fig, ax = P.draw_map(values, lattice)
        fig.canvas.draw()
        timings.append(time.perf_counter() - started)
        plt.close(fig)
        if timings[-1] < 2.0:
            break
    assert min(timings) < 2.0


# --- simpsom's plots module -----------------------------------------------------------------


def test_simpsom_plot_map(hex_som, tmp_path):
    path = tmp_path / "map.png"
    tiling = P.tiling_for(hex_som.lattice_)
    fig, ax = plots.plot_map(
        hex_som.positions_.tolist(), hex_som.weights_[:, 1], tiling(), show=False, print_out=True,
        file_name=str(path), title="feature 1", cbar_label="value", cmap="plasma", fontsize=9,
    )  # fmt: skip
    assert ax.get_title() == "feature 1"
    assert_png(path)


def test_simpsom_scatter_on_map_tutorial_call(tmp_path):
    lattice = Lattice(10, 10, "hexagonal")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    centers = lattice.positions
    proj = centers[rng.integers(0, 100, 200)]
    path = tmp_path / "scatter.png"
    fig, ax = plots.scatter_on_map(
        [proj[y == i] for i in range(3)], centers, P.Hexagons, color_val=None, show=False,
        print_out=True, file_name=str(path),
    )  # fmt: skip
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
    assert_png(path)
    fig, ax = plots.scatter_on_map(
        [proj[y == i] for i in range(3)], centers, P.Hexagons, color_val=np.arange(100.0),
        show=True, print_out=True, file_name=str(tmp_path / "coloured"), cmap="tab10",
    )  # fmt: skip
    assert_png(tmp_path / "coloured.png")


def test_simpsom_line_plot(tmp_path):
    path = tmp_path / "line.png"
    fig, ax = plots.line_plot(
        [4.0, 2.0, 1.0, 0.5], show=False, print_out=True, file_name=str(path), logy=True,
        xlabel="epoch", ylabel="QE", title="convergence",
    )  # fmt: skip
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "epoch"
    assert_png(path)


def test_a_saved_picture_replaces_a_planted_link_instead_of_following_it(hex_som, tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "umatrix.png").symlink_to(target)
    P.plot_umatrix(hex_som, print_out=True, file_name=tmp_path / "umatrix.png")
    assert target.read_text() == "keep me"
    assert (tmp_path / "umatrix.png").read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt", "umatrix.png"]
