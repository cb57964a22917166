"""Experimental design shared by the simulators: which cell type sits in which batch, and how many.

Names are 1-based: batches ``"batch1".."batchB"``, cell types ``"type1".."typeT"``.
The BERMUDA experiments (Wang et al. 2019, Genome Biology) are

- ``"all"``: every type in every batch;
- ``"removal1"``: ``type1`` is absent from ``batch1``;
- ``"removal2"``: ``type1`` is absent from ``batch1`` and the last type (``type4`` for the default
  four types) is absent from ``batch2``.

A dict ``{"batch1": ["type1"], ...}`` names absent types directly.

Example
-------
>>> import numpy as np
>>> absent = absent_types("removal2", n_batches=2, n_types=4)
>>> absent
{'batch1': ['type1'], 'batch2': ['type4']}
>>> types, batches = assign_cells(np.random.default_rng(0), [50, 60], 4, absent)
>>> bool(((batches == "batch1") & (types == "type1")).any())
False
"""

from __future__ import annotations

from typing import Mapping, Sequence, Union

import numpy as np

EXPERIMENTS = ("all", "removal1", "removal2")
Experiment = Union[str, Mapping[str, Sequence[str]]]


def batch_names(n_batches: int) -> list:
    return [f"batch{i + 1}" for i in range(n_batches)]


def type_names(n_types: int) -> list:
    return [f"type{i + 1}" for i in range(n_types)]


def absent_types(experiment: Experiment, n_batches: int, n_types: int) -> dict:
    """Map batch name -> list of type names absent from it (see module docstring)."""
    if isinstance(experiment, Mapping):
        absent = {str(b): [str(t) for t in ts] for b, ts in experiment.items()}
        unknown_b = set(absent) - set(batch_names(n_batches))
        unknown_t = {t for ts in absent.values() for t in ts} - set(type_names(n_types))
        if unknown_b or unknown_t:
            raise ValueError(f"experiment names unknown batches {sorted(unknown_b)} or types {sorted(unknown_t)}; "
                             f"use {batch_names(n_batches)} and {type_names(n_types)}")
    elif experiment == "all":
        absent = {}
    elif experiment == "removal1":
        _need(n_batches >= 2 and n_types >= 2, experiment, "at least 2 batches and 2 cell types")
        absent = {"batch1": ["type1"]}
    elif experiment == "removal2":
        _need(n_batches >= 2 and n_types >= 3, experiment, "at least 2 batches and 3 cell types")
        absent = {"batch1": ["type1"], "batch2": [f"type{n_types}"]}
    else:
        raise ValueError(f"unknown experiment {experiment!r}; choose one of {list(EXPERIMENTS)} "
                         "or pass a dict {batch: [absent types]}")
    for b, ts in absent.items():
        if len(set(ts)) >= n_types:
            raise ValueError(f"experiment leaves {b} without any cell type")
    return absent


def _need(ok: bool, experiment: str, what: str) -> None:
    if not ok:
        raise ValueError(f"experiment {experiment!r} needs {what}")


def compositions(rng: np.random.Generator, n_batches: int, n_types: int, absent: Mapping,
                 min_weight: float = 0.2) -> np.ndarray:
    """Random cell-type proportions, one row per batch: U(min_weight, 1) weights, absent types 0, normalised.

    BERMUDA / MNN draw U(0, 1) weights (``min_weight=0``); the floor keeps every present type
    visible in small simulations.
    """
    weights = rng.uniform(min_weight, 1.0, size=(n_batches, n_types))
    names = type_names(n_types)
    for i, b in enumerate(batch_names(n_batches)):
        for t in absent.get(b, []):
            weights[i, names.index(t)] = 0.0
    return weights / weights.sum(axis=1, keepdims=True)


def batch_sizes(n_cells, n_batches: int | None) -> list:
    """Cells per batch from an int (split evenly over ``n_batches``) or a sequence (one count per batch)."""
    if np.ndim(n_cells) == 0:
        n_batches = 2 if n_batches is None else int(n_batches)
        if n_batches < 1 or int(n_cells) < n_batches:
            raise ValueError(f"need n_batches >= 1 and n_cells >= n_batches, got n_cells={n_cells}, "
                             f"n_batches={n_batches}")
        base, extra = divmod(int(n_cells), n_batches)
        return [base + (i < extra) for i in range(n_batches)]
    sizes = [int(s) for s in n_cells]
    if n_batches is not None and len(sizes) != n_batches:
        raise ValueError(f"got {len(sizes)} batch sizes but n_batches={n_batches}")
    if not sizes or min(sizes) < 1:
        raise ValueError(f"every batch needs at least one cell, got sizes {sizes}")
    return sizes


def assign_cells(rng: np.random.Generator, sizes: Sequence[int], n_types: int, absent: Mapping,
                 min_weight: float = 0.2):
    """Draw each cell's type from its batch's random composition; returns (types, batches) string arrays."""
    props = compositions(rng, len(sizes), n_types, absent, min_weight)
    tnames, bnames = np.array(type_names(n_types)), np.array(batch_names(len(sizes)))
    types = np.concatenate([rng.choice(n_types, size=n, p=props[i]) for i, n in enumerate(sizes)])
    batches = np.repeat(np.arange(len(sizes)), sizes)
    return tnames[types], bnames[batches]


def make_obs(types: np.ndarray, batches: np.ndarray, n_types: int, n_batches: int, prefix: str = "cell"):
    """obs DataFrame with categorical ``batch`` and ``cell_type`` (all levels kept, in order)."""
    import pandas as pd

    obs = pd.DataFrame({
        "batch": pd.Categorical(batches, categories=batch_names(n_batches)),
        "cell_type": pd.Categorical(types, categories=type_names(n_types)),
    })
    obs.index = [f"{prefix}{i + 1}-{b}" for i, b in enumerate(batches)]
    return obs
