"""Overview and UMAP figures: PNGs written, non-trivial, sized by the data; min-max scaling by hand."""

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from scintegrate.benchmark import METRIC_COLUMNS, plot_overview, plot_umap_grid
from scintegrate.benchmark.plots import minmax_goodness, umap_2d


def _table(n_rows, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.uniform(size=(n_rows, len(METRIC_COLUMNS))), columns=METRIC_COLUMNS,
                        index=[f"method{i}" for i in range(n_rows)])


def _image(path):
    img = imread(str(path))
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    return img


def test_minmax_goodness_by_hand():
    np.testing.assert_allclose(minmax_goodness(pd.Series([1.0, 2.0, 3.0])), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(minmax_goodness(pd.Series([1.0, 2.0, 3.0]), lower_is_better=True), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(minmax_goodness(pd.Series([0.4, 0.4])), [1.0, 1.0])
    out = minmax_goodness(pd.Series([2.0, np.nan, 4.0]))
    assert out[0] == 0.0 and np.isnan(out[1]) and out[2] == 1.0


def test_plot_overview_writes_png_growing_with_rows(tmp_path):
    backend = matplotlib.get_backend()
    small = _table(2)
    big = _table(6)
    big.loc["method3", "kbet"] = np.nan  # a missing metric is drawn as n/a, not an error
    p_small = plot_overview(small, tmp_path / "small.png")
    p_big = plot_overview(big, tmp_path / "sub" / "big.png", title="six methods")
    assert p_big.exists() and p_big.stat().st_size > 20_000
    img_small, img_big = _image(p_small), _image(p_big)
    assert img_big.shape[0] > img_small.shape[0]  # one line per method
    assert img_big[..., :3].std() > 0.05  # not a blank canvas
    assert matplotlib.get_backend() == backend  # no global backend switch


def test_plot_overview_only_aggregates_and_errors(tmp_path):
    df = pd.DataFrame({"batch_score": [0.2, 0.5], "bio_score": [0.9, 0.7], "overall": [0.62, 0.62],
                       "seconds": [1.0, 2.0]}, index=["a", "b"])
    assert plot_overview(df, tmp_path / "agg.png").stat().st_size > 5_000
    with pytest.raises(ValueError, match="no metric columns to plot"):
        plot_overview(pd.DataFrame({"seconds": [1.0]}), tmp_path / "x.png")
    with pytest.raises(ValueError, match="no rows"):
        plot_overview(_table(0), tmp_path / "x.png")


def test_plot_umap_grid_2d_embeddings(adata, structured, tmp_path):
    # 2-column embeddings are drawn as they are (no UMAP), which keeps this test fast
    adata.obsm["X_a"] = structured(adata)[:, :2]
    adata.obsm["X_b"] = structured(adata, seed=1, batch_shift=5.0)[:, [0, 9]]
    one = plot_umap_grid(adata, ["X_a"], path=tmp_path / "one.png")
    two = plot_umap_grid(adata, {"A": "X_a", "B": "X_b"}, path=tmp_path / "two.png", max_cells=100)
    img_one, img_two = _image(one), _image(two)
    assert img_two.shape[0] > 1.6 * img_one.shape[0]  # one row per method
    assert img_two[..., :3].std() > 0.05


@pytest.mark.slow  # numba compiles UMAP on first use (~20 s)
def test_umap_2d_is_seeded(structured, adata):
    X = structured(adata)[:150]
    a, b = umap_2d(X, seed=0), umap_2d(X, seed=0)
    assert a.shape == (150, 2)
    np.testing.assert_allclose(a, b)


def test_plot_umap_grid_errors(adata, tmp_path):
    with pytest.raises(KeyError, match="embedding 'X_missing' not found in adata.obsm"):
        plot_umap_grid(adata, ["X_missing"], path=tmp_path / "u.png")
    with pytest.raises(KeyError, match="label column 'type' not found"):
        plot_umap_grid(adata, ["X_missing"], label_key="type", path=tmp_path / "u.png")
    with pytest.raises(ValueError, match="no embeddings given"):
        plot_umap_grid(adata, [], path=tmp_path / "u.png")
