"""SOMNet: simpsom's interface over the dasksom engine, held to simpsom's tutorial and formats."""

import importlib.util
import math
from pathlib import Path

import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
import pytest

from dasksom import SOM
from dasksom.plotting import plot_umatrix
from dasksom.simpsom.plots import scatter_on_map
from dasksom.simpsom.somnet import SOMNet

# The tutorial calls show=True and plt.show(): without a display they must not block.
plt.switch_backend("Agg")

MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist.npz"
N_DIGITS = 1000


@pytest.fixture(scope="module")
def digits():
    """The first 1000 MNIST training images ``(1000, 28, 28)`` and their labels."""
    if not MNIST.exists():
        pytest.skip(f"MNIST not found at {MNIST} (the shared data folder is absent)")
    with np.load(MNIST) as data:
        return data["x_train"][:N_DIGITS], data["y_train"][:N_DIGITS]


@pytest.fixture(scope="module")
def flat(digits):
    return digits[0].reshape(N_DIGITS, -1)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("somnet_out")


@pytest.fixture(scope="module")
def net(flat, out):
    """A 10 x 10 map trained on the digits with the tutorial's settings (read-only in tests)."""
    trained = SOMNet(
        10,
        10,
        flat,
        topology="hexagonal",
        PBC=True,
        init="PCA",
        metric="cosine",
        neighborhood_fun="gaussian",
        random_seed=32,
        GPU=False,
        output_path=out,
    )
    trained.train(train_algo="batch", start_learning_rate=0.01, epochs=-1, batch_size=-1)
    return trained


@pytest.fixture
def small():
    """40 rows of 3 features around 3 centres: quick to train on."""
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=4.0, size=(3, 3))
    return centres[rng.integers(0, 3, 40)] + rng.normal(size=(40, 3))


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def hex_positions(height, width):
    return np.array(
        [(c + 0.5 * (r % 2), r * math.sqrt(3) / 2) for r in range(height) for c in range(width)]
    )


def torus_distances(positions, origin, height, width):
    """Minimum-image distances on a hexagonal torus, from design.md section 1."""
    size = np.array([width, height * math.sqrt(3) / 2])
    delta = positions - origin
    delta -= size * np.round(delta / size)
    return np.sqrt((delta**2).sum(axis=1))


# -- simpsom's tutorial ----------------------------------------------------------------------------


def test_tutorial_runs_on_an_mnist_subset(digits, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train_X, train_y = digits
    pylette = plt.get_cmap("viridis")
    flat_data = train_X.reshape(train_X.shape[0], -1)
    net = SOMNet(
        10,
        10,
        flat_data,
        topology="hexagonal",
        PBC=True,
        init="PCA",
        metric="cosine",
        neighborhood_fun="gaussian",
        random_seed=32,
        GPU=False,
    )
    net.train(train_algo="batch", start_learning_rate=0.01, epochs=-1, batch_size=-1)
    net.save_map("./trained_som_MNIST.npy")
    _ = net.plot_map_by_difference(show=True, print_out=True, cmap=pylette)
    _ = net.plot_map_by_feature(feature=100, show=True, print_out=True, cmap=pylette)
    projection = net.project_onto_map(flat_data)
    scatter_on_map(
        [projection[train_y == i][:1000] for i in range(10)],
        [[node.pos[0], node.pos[1]] for node in net.nodes_list],
        net.polygons,
        color_val=None,
        show=True,
        print_out=True,
        cmap=pylette,
    )
    mean_bmus = [
        net.find_bmu_ix([train_X.reshape(train_X.shape[0], -1)[train_y == i].mean(axis=0)])
        for i in range(10)
    ]
    for mb in mean_bmus:
        net.plot_projected_points([net.nodes_list[mb[0]].pos], project=False)
        plt.show()
        plt.imshow(net.nodes_list[mb[0]].weights.reshape(28, 28), cmap=pylette)
        plt.axis("off")
        plt.show()

    written = {p.name for p in tmp_path.iterdir()}
    assert {
        "trained_som_MNIST.npy",
        "som_difference.png",
        "som_feature_100.png",
        "som_projected.npy",
        "som_scatter.png",
    } <= written
    assert projection.shape == (N_DIGITS, 2)
    assert len({int(mb[0]) for mb in mean_bmus}) > 1


# -- training --------------------------------------------------------------------------------------


def test_batch_training_gives_the_same_weights_as_som(flat):
    data = flat[:300]
    net = SOMNet(
        6, 8, data, topology="hexagonal", PBC=True, init="PCA", metric="cosine", random_seed=32
    )
    net.train(epochs=4)
    som = SOM(
        6,
        8,
        topology="hexagonal",
        pbc=True,
        init="pca",
        metric="cosine",
        neighborhood="gaussian",
        epochs=4,
        random_state=32,
    ).fit(data)
    np.testing.assert_array_equal(net.som.weights_, som.weights_)
    assert net.convergence == [h["map_difference"] for h in som.history_]


def test_batch_epochs_minus_one_means_ten(net):
    assert net.som.n_iter_ == 10
    assert len(net.convergence) == 10


def test_batch_size_is_accepted_and_changes_nothing(small):
    nets = [SOMNet(4, 4, small, random_seed=2) for _ in range(2)]
    nets[0].train(epochs=3)
    nets[1].train(epochs=3, batch_size=7)
    np.testing.assert_array_equal(nets[0].som.weights_, nets[1].som.weights_)


def test_training_again_continues_from_the_trained_weights(small):
    net = SOMNet(4, 4, small, random_seed=2)
    net.train(epochs=2)
    trained = net.som.weights_.copy()
    net.train(epochs=2)
    expected = SOM(4, 4, init=trained, epochs=2).fit(small)
    np.testing.assert_array_equal(net.som.weights_, expected.weights_)


def online_reference(data, start, height, width, steps, lr0, seed, metric, neighborhood):
    """Sequential Kohonen training on a hexagonal torus, written from the formulas."""
    rng = np.random.default_rng(seed)
    n = len(data)
    order = np.concatenate([rng.permutation(n) for _ in range(-(-steps // n))])[:steps]
    positions = hex_positions(height, width)
    s0 = max(height, width) / 2
    tau = steps / math.log(s0)
    weights = start.copy()
    for t in range(steps):
        x = data[order[t]]
        if metric == "euclidean":
            bmu = np.argmin(((weights - x) ** 2).sum(axis=1))
        else:
            bmu = np.argmax(weights @ x / (np.linalg.norm(weights, axis=1) * np.linalg.norm(x)))
        d = torus_distances(positions, positions[bmu], height, width)
        sigma = s0 * math.exp(-t / tau)
        h = np.exp(-(d**2) / (2 * sigma**2)) if neighborhood == "gaussian" else d <= sigma
        weights = weights + lr0 * math.exp(-t / steps) * h[:, None] * (x - weights)
    return weights


@pytest.mark.parametrize("metric,neighborhood", [("euclidean", "gaussian"), ("cosine", "bubble")])
def test_online_training_matches_a_numpy_reference(small, metric, neighborhood):
    start = np.random.default_rng(5).normal(size=(24, 3))
    net = SOMNet(
        4,
        6,
        small,
        init=start,
        PBC=True,
        metric=metric,
        neighborhood_fun=neighborhood,
        random_seed=7,
    )
    net.train(train_algo="online", epochs=100, start_learning_rate=0.5)
    expected = online_reference(small, start, 4, 6, 100, 0.5, 7, metric, neighborhood)
    np.testing.assert_allclose(net.som.weights_, expected, rtol=1e-10, atol=1e-10)


def test_online_epochs_minus_one_means_ten_steps_per_sample(small):
    net = SOMNet(3, 3, small, random_seed=0)
    net.train(train_algo="online")
    assert net.som.history_[-1]["steps"] == 10 * len(small)
    assert len(net.convergence) == 10


def test_early_stopping_stops_batch_training(small):
    net = SOMNet(4, 4, small, random_seed=0)
    net.train(epochs=50, early_stop="mapdiff", early_stop_tolerance=1e9, early_stop_patience=2)
    assert net.som.n_iter_ == 2
    assert len(net.convergence) == 2


def test_early_stopping_stops_online_training_after_whole_passes(small):
    net = SOMNet(4, 4, small, random_seed=0)
    net.train(
        train_algo="online",
        epochs=20 * len(small),
        early_stop="mapdiff",
        early_stop_tolerance=1e9,
        early_stop_patience=3,
    )
    assert len(net.convergence) == 3
    assert net.som.history_[-1]["steps"] == 3 * len(small)


def test_dask_data_trains_like_numpy_data(small):
    nets = [SOMNet(4, 4, data, random_seed=3) for data in (small, da.from_array(small))]
    for net in nets:
        net.train(epochs=3)
    np.testing.assert_allclose(nets[0].som.weights_, nets[1].som.weights_, rtol=1e-12)


def test_pair_of_vectors_init_draws_weights_between_them(small):
    low, high = np.array([0.0, 1.0, 2.0]), np.array([0.5, 3.0, 2.5])
    weights = SOMNet(3, 4, small, init=[low, high], random_seed=0).som.weights_
    assert weights.shape == (12, 3)
    assert ((weights >= low) & (weights <= high)).all()


# -- maps in simpsom's .npy layout -----------------------------------------------------------------


def test_saved_map_reloads_through_load_file(net, tmp_path):
    path = net.save_map(tmp_path / "map")
    loaded = SOMNet(1, 1, None, load_file=str(path)[: -len(".npy")], metric="cosine")
    assert (loaded.height, loaded.width, loaded.PBC) == (10, 10, True)
    np.testing.assert_array_equal(loaded.som.weights_, net.som.weights_)


def test_saved_map_has_simpsoms_layout(net, tmp_path):
    table = np.load(net.save_map(tmp_path / "map.npy"), allow_pickle=False)
    n_features = net.som.weights_.shape[1]
    assert table.shape == (3 + 100, n_features)
    np.testing.assert_array_equal(
        table[:3], [[10.0] * n_features, [10.0] * n_features, [1.0] * n_features]
    )
    # simpsom lists nodes column by column: row 3 + x * height + y is the node at (x, y).
    for x, y in [(0, 0), (0, 1), (3, 7), (9, 9)]:
        np.testing.assert_array_equal(table[3 + x * 10 + y], net.som.weights_[y * 10 + x])


def simpsom_node_table(height, width, n_features):
    """Weights of simpsom's node (x, y), listed as simpsom does: x outer, y inner."""
    return [
        [float(x), float(y)] + [10.0 * x + y] * (n_features - 2)
        for x in range(width)
        for y in range(height)
    ]


def assert_nodes_sit_where_simpsom_put_them(net):
    for node in net.nodes_list:
        x, y = node.weights[:2]
        np.testing.assert_allclose(node.pos, [x + 0.5 * (y % 2), y * math.sqrt(3) / 2])


def test_map_in_simpsom3_layout_loads_without_pickle(tmp_path):
    height, width = 3, 4
    header = [[float(height)] * 5, [float(width)] * 5, [0.0] * 5]
    np.save(tmp_path / "simpsom3.npy", np.array(header + simpsom_node_table(height, width, 5)))
    net = SOMNet(9, 9, None, load_file=str(tmp_path / "simpsom3.npy"))
    assert (net.height, net.width, net.PBC) == (3, 4, False)
    assert_nodes_sit_where_simpsom_put_them(net)


def test_map_in_simpsom2_layout_loads_without_pickle(tmp_path):
    height, width = 4, 3
    header = [[float(height), float(width), 1.0, 0.0, 0.0]]
    np.save(tmp_path / "simpsom2.npy", np.array(header + simpsom_node_table(height, width, 5)))
    net = SOMNet(9, 9, None, load_file=str(tmp_path / "simpsom2.npy"))
    assert (net.height, net.width, net.PBC) == (4, 3, True)
    assert_nodes_sit_where_simpsom_put_them(net)


def test_pickled_file_is_refused(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([[1.0], "x"], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        SOMNet(2, 2, None, load_file=str(tmp_path / "objects.npy"))


def test_file_without_a_simpsom_header_is_refused(tmp_path):
    np.save(tmp_path / "plain.npy", np.ones((7, 4)))
    with pytest.raises(ValueError, match="not a simpsom map"):
        SOMNet(2, 2, None, load_file=str(tmp_path / "plain.npy"))


def test_dasksom_npz_map_loads_through_load_file(small, tmp_path):
    som = SOM(4, 6, topology="square", epochs=2, random_state=0).fit(small)
    som.save(tmp_path / "map.npz")
    net = SOMNet(1, 1, small, load_file=str(tmp_path / "map.npz"))
    assert (net.height, net.width, net.topology) == (4, 6, "square")
    np.testing.assert_array_equal(net.som.weights_, som.weights_)


# -- projections -----------------------------------------------------------------------------------


def test_find_bmu_ix_matches_som_predict(net, flat):
    np.testing.assert_array_equal(net.find_bmu_ix(flat[:50]), net.som.predict(flat[:50]))


def test_find_bmu_ix_takes_a_list_of_one_vector(net, flat):
    assert net.find_bmu_ix([flat[7]]).tolist() == [net.som.predict(flat[7:8])[0]]


def test_project_onto_map_gives_bmu_positions(net, flat, out):
    projection = net.project_onto_map(flat[:50], file_name="projected.npy")
    expected = net.som.positions_[net.som.predict(flat[:50])]
    np.testing.assert_array_equal(projection, expected)
    np.testing.assert_array_equal(np.load(out / "projected.npy"), expected)


def test_nodes_list_follows_the_som_node_order(net):
    assert len(net.nodes_list) == 100
    for k in (0, 9, 10, 57, 99):
        np.testing.assert_array_equal(net.nodes_list[k].pos, net.som.positions_[k])
        np.testing.assert_array_equal(net.nodes_list[k].weights, net.som.weights_[k])


def test_difference_map_honours_periodic_boundaries():
    weights = np.random.default_rng(0).normal(size=(24, 3))
    net = SOMNet(4, 6, weights, init=weights, PBC=True)
    positions = hex_positions(4, 6)
    expected = []
    for k in range(24):
        d = torus_distances(positions, positions[k], 4, 6)
        near = (d > 0) & (d <= 1.01)
        expected.append(np.linalg.norm(weights[near] - weights[k], axis=1).mean())
    np.testing.assert_allclose(net.get_nodes_difference(), expected)
    assert net.nodes_list[0].difference == pytest.approx(expected[0])


def test_cluster_groups_projected_samples(net, flat, out):
    with pytest.warns(UserWarning, match="periodic"):
        labels, points = net.cluster(
            flat[:200],
            algorithm="KMeans",
            file_name="clusters.npy",
            n_clusters=4,
            n_init=1,
            random_state=0,
        )
    assert labels.shape == (200,) and set(labels.tolist()) == {0, 1, 2, 3}
    np.testing.assert_array_equal(points, net.project_onto_map(flat[:200], file_name=None))
    np.testing.assert_array_equal(np.load(out / "clusters.npy"), labels)
    np.testing.assert_array_equal(np.load(out / "som_projected_KMeans.npy"), points)


def test_get_brings_any_array_to_the_host_as_simpsom_does(net, flat):
    np.testing.assert_array_equal(net._get(flat[:3]), flat[:3])
    np.testing.assert_array_equal(net._get(da.from_array(flat[:3])), flat[:3])


def test_cluster_takes_points_as_given_without_projection(net):
    labels, points = net.cluster(
        net.som.weights_,
        project=False,
        algorithm="AgglomerativeClustering",
        file_name=None,
        n_clusters=3,
    )
    assert labels.shape == (100,)
    assert points is not None and points.shape == net.som.weights_.shape


# -- plots -----------------------------------------------------------------------------------------


PLOTS = {
    "som_feature_3.png": lambda net, x: net.plot_map_by_feature(feature_ix=3, **x),
    "som_difference.png": lambda net, x: net.plot_map_by_difference(**x),
    "som_convergence.png": lambda net, x: net.plot_convergence(**x),
    "som_projected.png": lambda net, x: net.plot_projected_points(x.pop("data"), **x),
    "som_clusters.png": lambda net, x: net.plot_clusters(
        net.som.positions_, np.arange(100) % 3, **{k: v for k, v in x.items() if k != "data"}
    ),
}


@pytest.mark.parametrize("file_name", PLOTS)
def test_plots_save_into_output_path_with_simpsoms_names(net, flat, out, file_name):
    fig, ax = PLOTS[file_name](net, {"show": False, "print_out": True, "data": flat[:20]})
    assert (out / file_name).exists()
    assert ax.figure is fig


def test_plots_save_nothing_unless_asked(net, out):
    before = set(out.iterdir())
    net.plot_map_by_feature(feature=5, show=False)
    assert set(out.iterdir()) == before


def test_fitted_som_of_the_net_feeds_the_plotting_functions(net):
    fig, ax = plot_umatrix(net.som)
    assert ax.figure is fig


# -- bad arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"metric": "minkowski"}, "Unknown metric"),
        ({"neighborhood_fun": "triangle"}, "Unknown neighborhood"),
        ({"topology": "circle"}, "Unknown topology"),
        ({"init": "kmeans"}, "Unknown init"),
        ({"init": np.zeros((5, 3))}, "init array has shape"),
        ({"PBC": True, "net_height": 3}, "even height"),
        ({"net_height": 0}, "height must be"),
    ],
)
def test_bad_constructor_arguments_are_refused(small, kwargs, message):
    settings = {"net_height": 4, "net_width": 4, "data": small, **kwargs}
    with pytest.raises(ValueError, match=message):
        SOMNet(**settings)


def test_map_without_data_or_file_is_refused():
    with pytest.raises(ValueError, match="needs data"):
        SOMNet(3, 3, None)


def test_data_that_does_not_fit_the_loaded_map_is_refused(net, small, tmp_path):
    path = net.save_map(tmp_path / "map.npy")
    with pytest.raises(ValueError, match="features"):
        SOMNet(1, 1, small, load_file=str(path))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"train_algo": "sgd"}, "Unknown train_algo"),
        ({"epochs": 0}, "epochs must be"),
        ({"epochs": 2.5}, "epochs must be"),
        ({"early_stop": "bmudiff"}, "Unknown early_stop"),
        ({"early_stop_patience": 0}, "early_stop_patience must be"),
        ({"early_stop_tolerance": -1.0}, "early_stop_tolerance must be"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"train_algo": "online", "start_learning_rate": 0.0}, "start_learning_rate must be"),
    ],
)
def test_bad_training_arguments_are_refused(small, kwargs, message):
    net = SOMNet(3, 3, small)
    with pytest.raises(ValueError, match=message):
        net.train(**kwargs)


def test_training_a_map_loaded_without_data_is_refused(net, tmp_path):
    loaded = SOMNet(1, 1, None, load_file=str(net.save_map(tmp_path / "map.npy")))
    with pytest.raises(ValueError, match="no data"):
        loaded.train()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({}, "Give the feature"),
        ({"feature": 1, "feature_ix": 2}, "disagree"),
        ({"feature": 784}, "out of range"),
    ],
)
def test_bad_feature_index_is_refused(net, kwargs, message):
    with pytest.raises(ValueError, match=message):
        net.plot_map_by_feature(show=False, **kwargs)


def test_unknown_clustering_algorithm_is_refused(net, flat):
    with pytest.raises(ValueError, match="Unknown clustering algorithm"):
        net.cluster(flat[:10], algorithm="NotAnAlgorithm", file_name=None)


def test_convergence_plot_before_training_is_refused(small):
    with pytest.raises(RuntimeError, match="not been trained"):
        SOMNet(3, 3, small).plot_convergence(show=False)


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_gpu_without_cupy_warns_and_trains_on_the_cpu(small):
    with pytest.warns(UserWarning, match="CuPy is not installed"):
        net = SOMNet(3, 3, small, GPU=True)
    assert net.GPU is False
    net.train(epochs=2)


def test_gpu_keeps_the_training_chunks_on_the_gpu(small):
    cupy = pytest.importorskip("cupy")
    net = SOMNet(3, 3, small, GPU=True, random_seed=0)
    assert isinstance(net.data._meta, cupy.ndarray)
    net.train(epochs=2)
    cpu = SOMNet(3, 3, small, random_seed=0)
    cpu.train(epochs=2)
    np.testing.assert_allclose(net.som.weights_, cpu.som.weights_, rtol=1e-6, atol=1e-8)
