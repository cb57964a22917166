import math

import pytest
import torch

from scintegrate.train import PlateauStopper, train_loop


def _quadratic(target=2.0):
    w = torch.nn.Parameter(torch.zeros(1))
    return w, (lambda batch, epoch: {"loss": ((w - target) ** 2).sum(), "abs": w.abs().sum()})


def test_loop_minimises_and_records_history():
    w, step = _quadratic()
    opt = torch.optim.SGD([w], lr=0.2)
    hist = train_loop(lambda e: range(2), step, opt, n_epochs=30, progress=False)
    assert float(w.detach()) == pytest.approx(2.0, abs=1e-3)
    assert hist.n_epochs == 30 and len(hist.losses["loss"]) == 30 and "abs" in hist.losses
    assert hist.losses["loss"][-1] < hist.losses["loss"][0]
    assert hist.reason == "reached n_epochs=30"


def test_plateau_stopper_stops_early_but_not_before_min_epochs():
    w, step = _quadratic()
    opt = torch.optim.SGD([w], lr=0.4)
    hist = train_loop(lambda e: [0], step, opt, n_epochs=1000, progress=False,
                      stopper=PlateauStopper(patience=5, rel_tol=1e-3, min_epochs=40))
    assert hist.stopped_early and 40 <= hist.n_epochs < 1000
    assert "plateaued" in hist.reason


def test_plateau_stopper_counts():
    s = PlateauStopper(patience=2, rel_tol=0.0)
    assert [s(i, v) for i, v in enumerate([3, 2, 2, 2])] == [False, False, False, True]


def test_divergence_is_reported():
    w = torch.nn.Parameter(torch.ones(1))
    opt = torch.optim.SGD([w], lr=1.0)
    with pytest.raises(FloatingPointError, match="diverged"):
        train_loop(lambda e: [0], lambda b, e: {"loss": w.sum() * math.inf}, opt, n_epochs=3, progress=False)


def test_scheduler_steps_once_per_epoch():
    w, step = _quadratic()
    opt = torch.optim.SGD([w], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    train_loop(lambda e: range(3), step, opt, n_epochs=4, scheduler=sched, progress=False)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**4)
