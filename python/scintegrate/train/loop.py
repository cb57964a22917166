"""One training loop for every scintegrate model.

A model supplies its ``nn.Module`` (whose ``loss(batch)`` returns a dict of scalar tensors with a
``"loss"`` entry to minimise) and ``make_batches(epoch)`` (an iterable of minibatches: whatever the
module's ``loss`` takes, usually a dict of tensors already on the device). The loop does the optimiser
steps, optional learning-rate schedule, loss bookkeeping, a tqdm bar with the loss terms, and stopping
(:mod:`scintegrate.train.stoppers`).

Example
-------
>>> import torch
>>> from scintegrate.train import train_loop
>>> class Quadratic(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.w = torch.nn.Parameter(torch.tensor([3.0]))
...     def loss(self, batch):
...         return {"loss": (self.w ** 2).sum()}
>>> m = Quadratic()
>>> hist = train_loop(m, lambda e: [None], torch.optim.SGD(m.parameters(), lr=0.1), n_epochs=50, progress=False)
>>> float(m.w.abs()) < 0.01
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


def train_loop(
    module,
    make_batches: Callable[[int], Iterable],
    optimizer: torch.optim.Optimizer,
    *,
    n_epochs: int,
    scheduler=None,
    stopper: Optional[Callable[[int, Dict[str, float]], Optional[str]]] = None,
    progress: bool = True,
    desc: str = "training",
    on_epoch_end: Optional[Callable[[int, Dict[str, float]], None]] = None,
    grad_clip: Optional[float] = None,
    validate: Optional[Callable[[int], Dict[str, float]]] = None,
) -> TrainingHistory:
    """Run up to ``n_epochs`` epochs of ``module.loss`` over ``make_batches(epoch)``; return the history.

    ``validate(epoch)`` (optional) scores held-out cells after each epoch; its terms join the epoch's means as
    ``"val_<name>"`` (the module is put in eval mode and gradients are off while it runs). Then
    ``on_epoch_end(epoch, means)`` runs (e.g. closed-form updates of cluster centres), and
    ``stopper(epoch, means)`` may end training by returning its reason (it can monitor a ``val_`` term).
    """
    from tqdm.auto import tqdm

    history = TrainingHistory()
    bar = tqdm(range(n_epochs), desc=desc, disable=not progress, leave=False)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for epoch in bar:
        sums: Dict[str, float] = {}
        n_steps = 0
        for batch in make_batches(epoch):
            losses = module.loss(batch)
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
        if validate is not None:
            was_training = module.training
            module.eval()
            with torch.no_grad():
                means.update({f"val_{key}": float(value) for key, value in validate(epoch).items()})
            module.train(was_training)
        if not all(math.isfinite(v) for v in means.values()):
            raise FloatingPointError(f"training diverged at epoch {epoch}: losses {means}")
        history.add(means)
        if progress:
            shown = [k for k in means if not k.startswith("val_")][:4] + [k for k in means if k.startswith("val_")][:1]
            bar.set_postfix({k: f"{means[k]:.4g}" for k in shown})
        if on_epoch_end is not None:
            on_epoch_end(epoch, means)
        reason = stopper(epoch, means) if stopper is not None else None
        if reason:
            history.stopped_early, history.reason = True, reason
            break
    if not history.reason:
        history.reason = f"reached n_epochs={n_epochs}"
    bar.close()
    return history
