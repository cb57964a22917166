"""Loaders for the shared real data sets (``../shared/data/*.h5ad``) and a checked ``read_h5ad``.

The folder is found in this order: the environment variable ``SCINTEGRATE_SHARED_DATA``;
``../shared/data`` relative to the current directory; ``../shared/data`` relative to the source
checkout this package was imported from. Every shared file holds ``obs["batch"]`` and
``obs["cell_type"]``; sets that are not counts carry ``uns["note"]`` (kept as is).

Example
-------
>>> from scintegrate.datasets import list_shared, load_shared
>>> "mixology_3cl" in list_shared()            # doctest: +SKIP
True
>>> load_shared("mixology_3cl").obs["batch"].nunique()   # doctest: +SKIP
2
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

ENV_VAR = "SCINTEGRATE_SHARED_DATA"
REQUIRED_OBS = ("batch", "cell_type")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _candidates() -> list:
    checkout = Path(__file__).resolve().parents[3]  # <repo>/python/scintegrate/datasets/shared.py
    return [Path.cwd().parent / "shared" / "data", checkout.parent / "shared" / "data"]


def shared_data_dir() -> Path:
    """Folder of the shared ``.h5ad`` files; FileNotFoundError naming the places searched."""
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{ENV_VAR}={env!r} is not a folder")
        return path
    tried = _candidates()
    for path in tried:
        if path.is_dir():
            return path.resolve()
    raise FileNotFoundError(
        f"shared data folder not found (looked in {[str(p) for p in tried]}); set {ENV_VAR} to the folder "
        "holding the shared .h5ad files"
    )


def list_shared() -> list:
    """Names (without ``.h5ad``) of the shared data sets, sorted."""
    return sorted(p.stem for p in shared_data_dir().glob("*.h5ad"))


def load_shared(name: str):
    """Read ``<shared_data_dir>/<name>.h5ad`` (``name`` with or without ``.h5ad``) and check its obs columns."""
    stem = name[: -len(".h5ad")] if name.endswith(".h5ad") else name
    folder = shared_data_dir()
    path = folder / f"{stem}.h5ad"
    if not path.is_file():
        raise FileNotFoundError(f"no shared data set {stem!r} in {folder}; available: {list_shared()}")
    adata = read_h5ad(path)
    missing = [c for c in REQUIRED_OBS if c not in adata.obs.columns]
    if missing:
        raise KeyError(f"shared data set {stem!r} lacks obs columns {missing} (has {list(adata.obs.columns)})")
    for col in REQUIRED_OBS:
        if adata.obs[col].isna().any():
            raise ValueError(f"shared data set {stem!r} has missing values in obs[{col!r}]")
    return adata


def _looks_like_hdf5(path: Path) -> bool:
    """HDF5 files start with the signature at byte 0, 512, 1024, 2048, ... (user block)."""
    with open(path, "rb") as fh:
        offset = 0
        while True:
            fh.seek(offset)
            head = fh.read(len(_HDF5_SIGNATURE))
            if head == _HDF5_SIGNATURE:
                return True
            if len(head) < len(_HDF5_SIGNATURE):
                return False
            offset = 512 if offset == 0 else offset * 2


def read_h5ad(path: Union[str, Path]):
    """``anndata.read_h5ad`` with clear errors for a missing file or a file that is not h5ad.

    >>> read_h5ad("missing.h5ad")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no such file: 'missing.h5ad'
    """
    import anndata as ad

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    if not _looks_like_hdf5(path):
        raise ValueError(f"{str(path)!r} is not an .h5ad file (no HDF5 signature); "
                         "read CSV/MTX/loom with anndata or scanpy and convert first")
    try:
        return ad.read_h5ad(path)
    except Exception as err:  # an HDF5 file anndata cannot read
        raise ValueError(f"{str(path)!r} is an HDF5 file but not a readable AnnData (.h5ad): {err}") from err
