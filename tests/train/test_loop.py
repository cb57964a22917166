"""The one training loop: module.loss(batch) steps, history, stoppers, schedule, divergence; samplers."""

import math

import numpy as np
import pytest
import torch

from scintegrate.train import (ClusterBalancedSampler, PlateauStopper, StableAssignmentStopper, UniformSampler,
                               epoch_generator, map_chunks, train_loop)


class Quadratic(torch.nn.Module):
    def __init__(self, target=2.0, scale=1.0):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.target, self.scale = target, scale

    def loss(self, batch):
        return {"loss": ((self.w - self.target) ** 2).sum() * self.scale, "abs": self.w.abs().sum()}


def test_loop_minimises_and_records_history():
    m = Quadratic()
    hist = train_loop(m, lambda e: range(2), torch.optim.SGD(m.parameters(), lr=0.2), n_epochs=30, progress=False)
    assert float(m.w.detach()) == pytest.approx(2.0, abs=1e-3)
    assert hist.n_epochs == 30 and len(hist.losses["loss"]) == 30 and "abs" in hist.losses
    assert hist.losses["loss"][-1] < hist.losses["loss"][0]
    assert hist.reason == "reached n_epochs=30"


def test_plateau_stopper_stops_early_but_not_before_min_epochs():
    m = Quadratic()
    hist = train_loop(m, lambda e: [0], torch.optim.SGD(m.parameters(), lr=0.4), n_epochs=1000, progress=False,
                      stopper=PlateauStopper(patience=5, rel_tol=1e-3, min_epochs=40))
    assert hist.stopped_early and 40 <= hist.n_epochs < 1000
    assert "plateaued" in hist.reason


def test_plateau_stopper_counts():
    s = PlateauStopper(patience=2, rel_tol=0.0)
    assert [s(i, {"loss": v}) is not None for i, v in enumerate([3, 2, 2, 2])] == [False, False, False, True]


def test_stable_assignment_stopper():
    s = StableAssignmentStopper(tol=0.2, patience=2, initial=[0, 0, 1, 1, 1])
    assert s.observe([0, 1, 1, 1, 1]) == pytest.approx(0.2) and s(0, {}) is None  # 1 of 5 changed: not < 0.2
    s.observe([0, 1, 1, 1, 1])
    assert s(1, {}) is None
    s.observe([0, 1, 1, 1, 1])
    assert s(2, {}) == "clusters stable: < 0.2 of cells changed cluster for 2 epochs"
    assert s.changed == [pytest.approx(0.2), 0.0, 0.0]
    never = StableAssignmentStopper(tol=0.0, patience=1, initial=[0])
    never.observe([0])
    assert never(0, {}) is None


def test_divergence_is_reported():
    m = Quadratic(scale=math.inf)
    with pytest.raises(FloatingPointError, match="diverged"):
        train_loop(m, lambda e: [0], torch.optim.SGD(m.parameters(), lr=1.0), n_epochs=3, progress=False)


def test_scheduler_steps_once_per_epoch():
    m = Quadratic()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    train_loop(m, lambda e: range(3), opt, n_epochs=4, scheduler=sched, progress=False)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**4)


def test_samplers_follow_one_seeding_rule():
    u = UniformSampler(10, batch_size=4, seed=3)
    first = torch.cat(u.epoch(5))
    assert sorted(first.tolist()) == list(range(10))
    assert torch.equal(first, torch.randperm(10, generator=epoch_generator(3, 5)))  # epoch 5 replayed alone
    assert not torch.equal(first, torch.cat(u.epoch(6)))
    codes = np.array([0] * 3 + [1] * 7)
    c = ClusterBalancedSampler(codes, 2, n_mb=4, steps=2, seed=3)
    steps = list(c.epoch(0))
    assert len(steps) == 2 and all(len(s) == 8 for s in steps)
    assert all((codes[s[:4]] == 0).all() and (codes[s[4:]] == 1).all() for s in steps)
    assert [s.tolist() for s in c.epoch(0)] == [s.tolist() for s in steps]  # same seed and epoch: same draw


def test_map_chunks_concatenates_in_order_without_grad():
    w = torch.nn.Parameter(torch.ones(2))
    x = torch.arange(10.0).reshape(5, 2)
    out = map_chunks(lambda rows: x[rows] * w, 5, chunk=2)
    assert torch.equal(out, x) and not out.requires_grad
