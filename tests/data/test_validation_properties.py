"""Property: any malformed AnnData gives either success or a one-line error, and the input is never changed."""

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scintegrate import registry
from scintegrate.data import check_input, extract


@st.composite
def malformed(draw):
    clean = draw(st.booleans())  # half the cases have no flaw but their random values and sizes
    n = draw(st.integers(4 if clean else 0, 12))
    g = draw(st.integers(2 if clean else 0, 6))
    kind = draw(st.sampled_from(["counts", "log"] if clean else
                                ["counts", "log", "negative", "nan", "inf", "zeros", "noninteger"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    X = rng.poisson(3.0, (n, g)).astype(np.float32)
    if kind == "log":
        X = np.log1p(X)
    elif kind == "negative":
        X -= 2
    elif kind in ("nan", "inf") and X.size:
        X.flat[draw(st.integers(0, X.size - 1))] = np.nan if kind == "nan" else np.inf
    elif kind == "zeros":
        X[:] = 0
    elif kind == "noninteger":
        X = X * 13.7 + 31
    batch = draw(st.lists(st.sampled_from(["a", "b", "c", None, 1.5]), min_size=n, max_size=n))
    cells = draw(st.lists(st.sampled_from(["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11",
                                           "c12"]), min_size=n, max_size=n))
    genes = draw(st.lists(st.sampled_from(["g1", "g2", "g3", "g4", "g5", "g6"]), min_size=g, max_size=g))
    if clean or draw(st.booleans()):
        batch = [("a", "b")[i % 2] for i in range(n)]
    if clean or draw(st.booleans()):
        cells = [f"c{i}" for i in range(n)]
    if clean or draw(st.booleans()):
        genes = [f"g{i}" for i in range(g)]
    obs = pd.DataFrame({"batch": np.asarray(batch, dtype=object)}, index=pd.Index(cells, dtype=str))
    if not clean and draw(st.booleans()):
        obs = obs.drop(columns="batch")
    adata = ad.AnnData(sp.csr_matrix(X) if draw(st.booleans()) else X, obs=obs,
                       var=pd.DataFrame(index=pd.Index(genes, dtype=str)))
    return adata, draw(st.sampled_from(registry.method_names()))


outcomes = []


def _state(adata):
    X = adata.X.toarray() if sp.issparse(adata.X) else np.array(adata.X)
    return np.nan_to_num(X, nan=-7.0, posinf=7.0), adata.obs.copy(), list(adata.var_names), list(adata.obs_names)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(malformed())
def test_validation_gives_success_or_one_line_error_and_never_changes_the_input(case):
    import warnings

    adata, method = case
    before = _state(adata)
    spec = registry.get_spec(method)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_input(adata, "batch", spec=spec)
            data = extract(adata, "batch")
        assert data.n_cells == adata.n_obs and len(data.batch_levels) >= 2
        outcomes.append("ok")
    except (ValueError, KeyError) as err:
        text = err.args[0] if isinstance(err, KeyError) else str(err)
        assert isinstance(text, str) and text and "\n" not in text, repr(text)
        outcomes.append("error")
    after = _state(adata)
    np.testing.assert_array_equal(after[0], before[0])
    pd.testing.assert_frame_equal(after[1], before[1])
    assert after[2:] == before[2:]


def test_some_malformed_cases_are_valid_and_some_are_refused():
    """Runs after the property (file order): both branches of the property were exercised."""
    assert "ok" in outcomes and "error" in outcomes
