"""Shared fixtures: the location of ../shared/data and small simulated data sets."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("SCINTEGRATE_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the shared .h5ad files; tests that need it skip (with the reason) when it is absent."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} not found (set SCINTEGRATE_SHARED_DATA)")
    return path


PLUGINS = REPO / "tests" / "plugins"


def pytest_configure(config):
    """Register the toy plugin method, as a third-party package would, so every registry-generated test
    (contract, CLI, registry checks) covers a method that lives outside the package."""
    import sys

    if str(PLUGINS) not in sys.path:
        sys.path.insert(0, str(PLUGINS))
    import scintegrate_toy  # noqa: F401  (registers "toy")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """``scintegrate demo`` run once per session: ``(out_dir, metrics table indexed by method)``."""
    import pandas as pd

    from scintegrate.cli import main

    out = tmp_path_factory.mktemp("demo") / "demo_out"
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    return out, pd.read_csv(out / "metrics.csv").set_index("method")
