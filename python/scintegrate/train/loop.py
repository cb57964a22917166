"""One training loop for every scintegrate model.

A model supplies ``make_batches(epoch)`` (an iterable of minibatches already on the device) and
``step(batch, epoch)`` (returns a dict of scalar loss tensors with a ``"loss"`` entry to minimise).
The loop does the optimiser steps, optional learning-rate schedule, loss bookkeeping, a tqdm progress
bar, and stopping on a plateau of the epoch loss.

Example
-------
>>> import torch
>>> from scintegrate.train import train_loop
>>> w = torch.nn.Parameter(torch.tensor([3.0]))
>>> opt = torch.optim.SGD([w], lr=0.1)
>>> hist = train_loop(lambda e: [None], lambda b, e: {"loss": (w ** 2).sum()}, opt, n_epochs=50,
...                   progress=False)
>>> float(w.abs()) < 0.01
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional

import torch


@dataclass
class TrainingHistory:
    """Mean of each loss term per epoch, and why training stopped."""

    losses: Dict[str, List[float]] = field(default_factory=dict)
    stopped_early: bool = False
    n_epochs: int = 0
    reason: str = ""

    def add(self, epoch_means: Dict[str, float]) -> None:
        for key, value in epoch_means.items():
            self.losses.setdefault(key, []).append(value)
        self.n_epochs += 1

    def to_dict(self) -> dict:
        return {"losses": self.losses, "stopped_early": self.stopped_early, "n_epochs": self.n_epochs,
                "reason": self.reason}


class PlateauStopper:
    """Stop when the monitored loss has not improved by ``rel_tol`` (relative) for ``patience`` epochs.

    ``min_epochs`` epochs always run first (e.g. while a loss weight is still ramping up).
    """

    def __init__(self, patience: int = 30, rel_tol: float = 1e-3, min_epochs: int = 0):
        self.patience, self.rel_tol, self.min_epochs = patience, rel_tol, min_epochs
        self.best = math.inf
        self.wait = 0

    def __call__(self, epoch: int, value: float) -> bool:
        if not math.isfinite(self.best) or value < self.best - self.rel_tol * abs(self.best):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
        return epoch + 1 >= self.min_epochs and self.wait >= self.patience


def train_loop(
    make_batches: Callable[[int], Iterable],
    step: Callable[[object, int], Dict[str, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    *,
    n_epochs: int,
    scheduler=None,
    stopper: Optional[PlateauStopper] = None,
    monitor: str = "loss",
    progress: bool = True,
    desc: str = "training",
    on_epoch_end: Optional[Callable[[int, Dict[str, float]], Optional[str]]] = None,
    grad_clip: Optional[float] = None,
) -> TrainingHistory:
    """Run up to ``n_epochs`` epochs; return the per-epoch loss history.

    ``on_epoch_end(epoch, means)`` runs after each epoch; returning a non-empty string stops training
    with that string as the stop reason (e.g. a clustering that no longer changes).
    """
    from tqdm.auto import tqdm

    history = TrainingHistory()
    bar = tqdm(range(n_epochs), desc=desc, disable=not progress, leave=False)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for epoch in bar:
        sums: Dict[str, float] = {}
        n_steps = 0
        for batch in make_batches(epoch):
            losses = step(batch, epoch)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            n_steps += 1
        if scheduler is not None:
            scheduler.step()
        means = {key: value / max(n_steps, 1) for key, value in sums.items()}
        if not all(math.isfinite(v) for v in means.values()):
            raise FloatingPointError(f"training diverged at epoch {epoch}: losses {means}")
        history.add(means)
        if progress:
            bar.set_postfix({k: f"{v:.4g}" for k, v in list(means.items())[:3]})
        if on_epoch_end is not None:
            request = on_epoch_end(epoch, means)
            if isinstance(request, str) and request:  # a callback may stop training, giving the reason
                history.stopped_early, history.reason = True, request
                break
        if stopper is not None and stopper(epoch, means[monitor]):
            history.stopped_early = True
            history.reason = f"{monitor} plateaued (no {stopper.rel_tol:g} relative gain in {stopper.patience} epochs)"
            break
    if not history.reason:
        history.reason = f"reached n_epochs={n_epochs}"
    bar.close()
    return history
