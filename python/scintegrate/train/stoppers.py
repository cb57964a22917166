"""Early stopping for :func:`scintegrate.train.train_loop`.

A stopper is called after every epoch as ``stopper(epoch, means)`` (``means``: the epoch's mean loss terms)
and returns the reason to stop, or ``None`` to go on.

>>> from scintegrate.train import PlateauStopper
>>> s = PlateauStopper(patience=2, rel_tol=0.0)
>>> [s(i, {"loss": v}) for i, v in enumerate([3.0, 2.0, 2.0, 2.0])][-1]
'loss plateaued (no 0 relative gain in 2 epochs)'
"""

from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np


class PlateauStopper:
    """Stop when ``monitor`` has not improved by ``rel_tol`` (relative) for ``patience`` epochs.

    ``min_epochs`` epochs always run first (e.g. while a loss weight is still ramping up).
    """

    def __init__(self, patience: int = 30, rel_tol: float = 1e-3, min_epochs: int = 0, monitor: str = "loss"):
        self.patience, self.rel_tol, self.min_epochs, self.monitor = patience, rel_tol, min_epochs, monitor
        self.best = math.inf
        self.wait = 0

    def __call__(self, epoch: int, means: Dict[str, float]) -> Optional[str]:
        value = means[self.monitor]
        if not math.isfinite(self.best) or value < self.best - self.rel_tol * abs(self.best):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
        if epoch + 1 >= self.min_epochs and self.wait >= self.patience:
            return f"{self.monitor} plateaued (no {self.rel_tol:g} relative gain in {self.patience} epochs)"
        return None


class StableAssignmentStopper:
    """Stop once fewer than ``tol`` of the cells changed their assignment for ``patience`` epochs running.

    The model reports each epoch's assignments with :meth:`observe` (e.g. from ``on_epoch_end``);
    ``changed`` keeps the fraction that changed after every epoch. ``tol=0`` never stops.

    >>> s = StableAssignmentStopper(tol=0.1, patience=2, initial=[0, 0, 1])
    >>> for labels in ([0, 0, 1], [0, 0, 1]):
    ...     s.observe(labels)
    >>> s(1, {})
    'clusters stable: < 0.1 of cells changed cluster for 2 epochs'
    """

    def __init__(self, tol: float = 1e-3, patience: int = 3, initial=None):
        self.tol, self.patience = float(tol), int(patience)
        self.labels = None if initial is None else np.asarray(initial)
        self.changed = []
        self.quiet = 0

    def observe(self, labels) -> float:
        """Record one epoch's assignments; returns the fraction of cells that changed."""
        labels = np.asarray(labels)
        changed = 1.0 if self.labels is None else float(np.mean(labels != self.labels))
        self.labels = labels
        self.changed.append(changed)
        self.quiet = self.quiet + 1 if changed < self.tol else 0
        return changed

    def __call__(self, epoch: int, means: Dict[str, float]) -> Optional[str]:
        if self.quiet >= self.patience:
            return f"clusters stable: < {self.tol:g} of cells changed cluster for {self.patience} epochs"
        return None
