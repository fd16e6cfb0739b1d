"""FCS, AnnData and array readers of dasksom.cytometry, and its lazy transforms."""

from __future__ import annotations

import numpy as np
import pytest

flowio = pytest.importorskip("flowio")
anndata = pytest.importorskip("anndata")

import dask.array as da  # noqa: E402

from dasksom.cytometry import (  # noqa: E402
    FCSError,
    Transform,
    UnknownMarkerError,
    arcsinh,
    compensate,
    read_anndata,
    read_array,
    read_fcs,
)

CHANNELS = ["FSC-A", "CD3", "CD4"]


def write_fcs(path, events, channels=CHANNELS, metadata=None):
    with open(path, "wb") as f:
        flowio.create_fcs(
            f,
            np.asarray(events, dtype=np.float32).ravel(),
            channels,
            opt_channel_names=[f"{c} label" for c in channels],
            metadata_dict=metadata or {},
        )
    return path


@pytest.fixture
def fcs_files(tmp_path):
    rng = np.random.default_rng(0)
    events = [rng.uniform(0, 1000, size=(n, 3)).astype(np.float32) for n in (50, 31, 17)]
    paths = [write_fcs(tmp_path / f"s{i}.fcs", e) for i, e in enumerate(events)]
    return paths, events


def test_read_fcs_round_trips_every_event_in_file_order(fcs_files):
    paths, events = fcs_files
    cells = read_fcs(paths)
    np.testing.assert_array_equal(cells.data.compute(), np.concatenate(events))
    assert cells.markers == tuple(CHANNELS)
    assert cells.descriptions == tuple(f"{c} label" for c in CHANNELS)


def test_read_fcs_keeps_the_file_of_every_row(fcs_files):
    paths, _ = fcs_files
    cells = read_fcs(paths)
    np.testing.assert_array_equal(cells.sample.compute(), np.repeat([0, 1, 2], [50, 31, 17]))
    assert cells.samples == ("s0.fcs", "s1.fcs", "s2.fcs")


def test_read_fcs_makes_one_chunk_per_file_by_default(fcs_files):
    assert read_fcs(fcs_files[0]).data.chunks[0] == (50, 31, 17)


def test_read_fcs_reads_blocks_of_events_within_files(fcs_files):
    paths, events = fcs_files
    cells = read_fcs(paths, events_per_chunk=20)
    assert cells.data.chunks[0] == (20, 20, 10, 20, 11, 17)
    np.testing.assert_array_equal(cells.data.compute(), np.concatenate(events))


def test_read_fcs_agrees_with_flowio_preprocessing(fcs_files):
    path = fcs_files[0][1]
    expected = flowio.FlowData(str(path)).as_array(preprocess=True)
    np.testing.assert_allclose(read_fcs([path], events_per_chunk=7).data.compute(), expected)


def test_read_fcs_picks_markers_by_name_or_description_in_any_file_order(tmp_path):
    a = write_fcs(tmp_path / "a.fcs", [[1, 2, 3]])
    b = write_fcs(tmp_path / "b.fcs", [[6, 5, 4]], channels=["CD4", "CD3", "FSC-A"])
    cells = read_fcs([a, b], markers=["CD4", "CD3 label"])
    np.testing.assert_array_equal(cells.data.compute(), [[3, 2], [6, 5]])
    assert cells.markers == ("CD4", "CD3")


def test_read_fcs_compensates_with_the_file_spill_matrix(tmp_path):
    spill = np.array([[1.0, 0.2], [0.1, 1.0]])
    true = np.array([[100.0, 10.0, 50.0], [200.0, 40.0, 5.0]])
    raw = true.copy()
    raw[:, 1:] = true[:, 1:] @ spill
    text = "2,CD3,CD4," + ",".join(str(v) for v in spill.ravel())
    path = write_fcs(tmp_path / "c.fcs", raw, metadata={"SPILL": text})
    cells = read_fcs([path], compensate=True)
    np.testing.assert_allclose(cells.data.compute(), true, rtol=1e-5)


def test_read_fcs_refuses_to_compensate_a_file_without_spill_matrix(fcs_files):
    with pytest.raises(FCSError, match="no spill matrix"):
        read_fcs(fcs_files[0], compensate=True)


def test_read_fcs_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.fcs"):
        read_fcs([tmp_path / "nope.fcs"])


def test_read_fcs_names_a_corrupt_file(tmp_path):
    path = tmp_path / "bad.fcs"
    path.write_bytes(b"FCS3.1    garbage" * 3)
    with pytest.raises(FCSError, match="bad.fcs.*not a readable FCS file"):
        read_fcs([path])


def test_read_fcs_names_a_truncated_file(fcs_files, tmp_path):
    data = fcs_files[0][0].read_bytes()
    path = tmp_path / "cut.fcs"
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(FCSError, match="cut.fcs"):
        read_fcs([path])


def test_read_fcs_refuses_files_with_different_channels(tmp_path):
    a = write_fcs(tmp_path / "a.fcs", [[1, 2, 3]])
    b = write_fcs(tmp_path / "b.fcs", [[1, 2, 3]], channels=["FSC-A", "CD3", "CD8"])
    with pytest.raises(FCSError, match=r"b.fcs.*missing \['CD4'\], extra \['CD8'\]"):
        read_fcs([a, b])


def test_read_fcs_names_an_unknown_marker_and_its_file(fcs_files):
    with pytest.raises(UnknownMarkerError, match=r"s0.fcs.*\['CD99'\]"):
        read_fcs(fcs_files[0], markers=["CD3", "CD99"])


def make_anndata(n=40):
    rng = np.random.default_rng(3)
    adata = anndata.AnnData(X=rng.normal(size=(n, 3)))
    adata.var_names = ["CD3", "CD4", "CD8"]
    adata.obs["donor"] = np.where(np.arange(n) % 3 == 0, "d1", "d2")
    return adata


def test_read_anndata_in_memory_picks_markers_by_var_names():
    adata = make_anndata()
    cells = read_anndata(adata, ["CD8", "CD3"], sample_key="donor", chunks=7)
    np.testing.assert_array_equal(cells.data.compute(), adata.X[:, [2, 0]])
    assert cells.samples == ("d1", "d2")
    np.testing.assert_array_equal(cells.sample.compute(), (np.arange(40) % 3 != 0).astype(int))


def test_read_anndata_reads_an_h5ad_file_lazily(tmp_path):
    adata = make_anndata()
    adata.obs["donor"] = adata.obs["donor"].astype("category")
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    cells = read_anndata(path, ["CD4"], sample_key="donor", chunks=9)
    assert cells.data.chunks[0] == (9, 9, 9, 9, 4)
    np.testing.assert_array_equal(cells.data.compute(), adata.X[:, [1]])
    np.testing.assert_array_equal(cells.sample.compute(), adata.obs["donor"].cat.codes)


def test_read_anndata_names_an_unknown_marker():
    with pytest.raises(UnknownMarkerError, match=r"\['CD99'\]"):
        read_anndata(make_anndata(), ["CD99"])


def test_read_array_takes_any_dasksom_source(tmp_path):
    values = np.arange(12.0).reshape(4, 3)
    np.save(tmp_path / "x.npy", values)
    cells = read_array(tmp_path / "x.npy", ["a", "b", "c"], sample=[0, 0, 1, 1], chunks=2)
    np.testing.assert_array_equal(cells.select(["c"]).data.compute()[:, 0], values[:, 2])
    assert cells.samples == ("sample-0", "sample-1")


def test_arcsinh_uses_a_cofactor_per_marker_and_stays_lazy():
    cells = read_array(da.from_array(np.full((6, 2), 10.0), chunks=2), ["a", "b"])
    out = arcsinh(cells, {"b": 5.0})
    assert out.data.chunks == cells.data.chunks
    np.testing.assert_allclose(out.data.compute(), np.tile([10.0, np.arcsinh(2.0)], (6, 1)))


def test_transform_scaling_matches_numpy_at_every_chunking():
    values = np.random.default_rng(5).normal(1e4, 3.0, size=(101, 3))
    for rows in (101, 10, 1):
        cells = read_array(da.from_array(values, chunks=rows), ["a", "b", "c"])
        transform = Transform.learn(cells, scale=True)
        np.testing.assert_allclose(transform.center, values.mean(axis=0))
        np.testing.assert_allclose(transform.scale, values.std(axis=0, ddof=1))


def test_compensate_inverts_an_explicit_spill_matrix():
    spill = np.array([[1.0, 0.3], [0.0, 1.0]])
    true = np.random.default_rng(2).uniform(size=(8, 3))
    raw = true.copy()
    raw[:, [2, 0]] = true[:, [2, 0]] @ spill
    cells = read_array(da.from_array(raw, chunks=3), ["a", "b", "c"])
    np.testing.assert_allclose(compensate(cells, spill, ["c", "a"]).data.compute(), true)
