"""What kind of values a matrix holds, decided from all of its stored values and batch by batch.

Kinds: ``"counts"`` (non-negative integers), ``"noninteger_counts"`` (non-negative, non-integer, with values
too large for log data, e.g. Salmon/kallisto estimated counts), ``"log"`` (non-negative, non-integer, small:
log-normalised), ``"scaled"`` (negative values: centred or scaled data, simulated Gaussians). Every batch must
hold the same kind family -- counts (integer or not), log or scaled -- else a ``ValueError`` names the batches.
Non-integer counts are refused unless the user declares the input (``input="counts"``: normalise them as
counts; ``input="log"``: take them as they are); values are never rounded.

>>> import numpy as np
>>> from scintegrate.data.kinds import input_kind
>>> X = np.array([[0, 3.0], [1, 2], [0.5, 1.2], [0.1, 0.9]])
>>> input_kind(X, np.array([0, 0, 1, 1]), ["a", "b"])
Traceback (most recent call last):
...
ValueError: batches hold different kinds of values: counts in ['a'], log-normalised values in ['b']; pass every batch in the same form (e.g. all raw counts)
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import scipy.sparse as sp

from .._validation import LOG_MAX

KINDS = ("counts", "noninteger_counts", "log", "scaled")
DECLARED = ("auto", "counts", "log")
_FAMILY = {"counts": "counts", "noninteger_counts": "counts", "log": "log", "scaled": "scaled"}
_WORDS = {"counts": "counts", "noninteger_counts": "non-integer counts", "log": "log-normalised values",
          "scaled": "scaled values (negative entries)"}


def _row_stats(X):
    """Per row: number of negative and of non-integer stored values, and the maximum (all stored values)."""
    if sp.issparse(X):
        X = sp.csr_matrix(X)

        def per_row(flags):
            M = sp.csr_matrix((flags.astype(np.float32), X.indices, X.indptr), shape=X.shape)
            return np.asarray(M.sum(1)).ravel()
        v, ptr = X.data, X.indptr
        vmax = np.zeros(X.shape[0])  # never X.max(): it sorts the user's indices in place
        filled = np.diff(ptr) > 0
        if v.size:
            vmax[filled] = np.maximum.reduceat(v, ptr[:-1][filled])
        return per_row(v < 0), per_row(np.abs(v - np.round(v)) > 1e-6), vmax
    out = [], [], []
    A = np.asarray(X)
    for start in range(0, A.shape[0], 4096):
        block = A[start:start + 4096]
        out[0].append((block < 0).sum(1))
        out[1].append((np.abs(block - np.round(block)) > 1e-6).sum(1))
        out[2].append(block.max(1, initial=0.0))
    return tuple(np.concatenate(o) if o else np.zeros(0) for o in out)


def batch_kinds(X, batch: Optional[np.ndarray], levels: Sequence[str]) -> Dict[str, str]:
    """The kind of every batch (one entry ``"all"`` without a batch)."""
    neg, nonint, vmax = _row_stats(X)
    groups = {"all": np.ones(X.shape[0], dtype=bool)} if batch is None else {
        str(level): batch == code for code, level in enumerate(levels)}
    kinds = {}
    for name, rows in groups.items():
        if neg[rows].any():
            kinds[name] = "scaled"
        elif not nonint[rows].any():
            kinds[name] = "counts"
        else:
            kinds[name] = "noninteger_counts" if vmax[rows].max(initial=0.0) > LOG_MAX else "log"
    return kinds


def input_kind(X, batch: Optional[np.ndarray], levels: Sequence[str], declared: str = "auto") -> str:
    """The one kind of the whole input (see the module docstring); ``ValueError`` when batches differ."""
    if declared not in DECLARED:
        raise ValueError(f"input must be one of {DECLARED}, got {declared!r}")
    kinds = batch_kinds(X, batch, levels)
    families: Dict[str, List[str]] = {}
    for name, kind in kinds.items():
        families.setdefault(_FAMILY[kind], []).append(name)
    if len(families) > 1:
        parts = []
        for kind in KINDS:
            names = [b for b, k in kinds.items() if k == kind]
            if names:
                parts.append(f"{_WORDS[kind]} in {names[:5]}")
        raise ValueError(f"batches hold different kinds of values: {', '.join(parts)}; pass every batch in the "
                         "same form (e.g. all raw counts)")
    family = next(iter(families))
    if family == "counts":
        if declared == "log":
            return "log"
        if "noninteger_counts" in kinds.values():
            if declared == "counts":
                return "noninteger_counts"
            raise ValueError("the values look like non-integer counts (e.g. estimated counts from Salmon or "
                             f"kallisto: non-integers up to {_max(X):.4g}); pass input='counts' to normalise them "
                             "as counts or input='log' to take them as they are (values are never rounded)")
        return "counts"
    if declared == "counts":
        raise ValueError(f"input='counts' was given but the values are {_WORDS[family]}; pass the raw counts "
                         "(layer=...) or input='auto'")
    return family


def _max(X) -> float:
    v = X.data if sp.issparse(X) else np.asarray(X)
    return float(v.max()) if v.size else 0.0
