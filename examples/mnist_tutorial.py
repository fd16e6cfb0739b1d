"""simpsom's MNIST tutorial, run by dasksom.

The block at the bottom is simpsom's tutorial with ``import dasksom as sps`` and
``from dasksom.simpsom.plots import scatter_on_map`` in place of simpsom's imports; the only other
changes are an explicit ``import matplotlib.pyplot as plt`` and a fallback colormap where
pylettes is not installed.

keras is not needed: a small stand-in for ``keras.datasets.mnist`` reads ``mnist.npz`` (keras's
layout: ``x_train``, ``y_train``, ``x_test``, ``y_test``) from, in order, ``--data``, the
``DASKSOM_MNIST`` environment variable, or keras's cache ``~/.keras/datasets/mnist.npz``.

Usage::

    python examples/mnist_tutorial.py [--data mnist.npz] [--n-samples 2000] [--output DIR]
                                      [--no-show]

The figures and the saved map land in ``--output`` (default ``./mnist_tutorial_output``):
the tutorial writes to the current folder, so the script moves there first.  The whole
training set (60000 images on a 50 x 50 map) takes minutes on a few cores; ``--n-samples``
keeps the first N images for a quick run.
"""

import argparse
import os
import sys
import types
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

KERAS_CACHE = Path.home() / ".keras" / "datasets" / "mnist.npz"
ENV_VAR = "DASKSOM_MNIST"


def find_mnist(given: str | None) -> Path:
    """The first of ``--data``, ``$DASKSOM_MNIST`` and keras's cache that is given; exit if none."""
    candidates = [(given, "--data"), (os.environ.get(ENV_VAR), f"${ENV_VAR}")]
    for path, origin in candidates:
        if path:
            if not Path(path).is_file():
                sys.exit(f"MNIST not found at {path} (from {origin}).")
            return Path(path).resolve()
    if KERAS_CACHE.is_file():
        return KERAS_CACHE
    sys.exit(
        "MNIST not found. Give the path of an mnist.npz in keras's layout (x_train, y_train, "
        f"x_test, y_test) with --data PATH or ${ENV_VAR}, or place it at {KERAS_CACHE}."
    )


def install_keras_stand_in(path: Path, n_samples: int | None) -> None:
    """Make ``from keras.datasets import mnist; mnist.load_data()`` read ``path``."""

    def load_data():
        with np.load(path, allow_pickle=False) as data:
            keep = slice(None, n_samples)
            return (data["x_train"][keep], data["y_train"][keep]), (
                data["x_test"][keep],
                data["y_test"][keep],
            )

    keras = types.ModuleType("keras")
    datasets = types.ModuleType("keras.datasets")
    mnist = types.ModuleType("keras.datasets.mnist")
    mnist.load_data = load_data
    keras.datasets, datasets.mnist = datasets, mnist
    sys.modules.update({"keras": keras, "keras.datasets": datasets, "keras.datasets.mnist": mnist})


def setup(argv: list[str] | None = None) -> Path:
    """Parse the command line, provide MNIST, move into the output folder; returns it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="path of mnist.npz (keras's layout)")
    parser.add_argument("--n-samples", type=int, help="use only the first N images")
    parser.add_argument("--output", default="mnist_tutorial_output", help="folder for outputs")
    parser.add_argument("--no-show", action="store_true", help="save figures without showing")
    args = parser.parse_args(argv)
    if args.n_samples is not None and args.n_samples < 1:
        parser.error("--n-samples must be at least 1")
    if args.no_show:
        matplotlib.use("Agg")
    install_keras_stand_in(find_mnist(args.data), args.n_samples)
    output = Path(args.output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    os.chdir(output)
    print(f"Writing the tutorial's figures and map to {output}")
    return output


if __name__ == "__main__":
    output = setup()

    # fmt: off
    # ---- simpsom's MNIST tutorial ----
    import numpy as np  # noqa: I001 - the tutorial's own order
    import dasksom as sps
    try:
        from pylettes import *  # noqa: F403
        pylette = Tundra(reverse=True).cmap  # noqa: F405
    except ImportError:
        pylette = plt.get_cmap("cividis")
    from keras.datasets import mnist
    (train_X, train_y), (test_X, test_y) = mnist.load_data()
    flat_data = train_X.reshape(train_X.shape[0], -1)
    net = sps.SOMNet(50, 50, flat_data, topology='hexagonal', PBC=True, init='PCA',
                     metric='cosine', neighborhood_fun='gaussian', random_seed=32, GPU=False)
    net.train(train_algo='batch', start_learning_rate=0.01, epochs=-1, batch_size=-1)
    net.save_map("./trained_som_MNIST.npy")
    _ = net.plot_map_by_difference(show=True, print_out=True, cmap=pylette)
    _ = net.plot_map_by_feature(feature=100, show=True, print_out=True, cmap=pylette)
    from dasksom.simpsom.plots import scatter_on_map
    projection = net.project_onto_map(flat_data)
    scatter_on_map([projection[train_y==i][:1000] for i in range(10)],
                   [[node.pos[0], node.pos[1]] for node in net.nodes_list],
                   net.polygons, color_val=None, show=True, print_out=True, cmap=pylette)
    mean_bmus = [net.find_bmu_ix([train_X.reshape(train_X.shape[0], -1)
                 [train_y==i].mean(axis=0)]) for i in range(10)]
    for mb in mean_bmus:
        net.plot_projected_points([net.nodes_list[mb[0]].pos], project=False)
        plt.show()
        plt.imshow(net.nodes_list[mb[0]].weights.reshape(28, 28), cmap=pylette)
        plt.axis('off')
        plt.show()
    # fmt: on

    print("Written:", ", ".join(sorted(p.name for p in output.iterdir())))
