"""The model base class: fit checks once, stage timings, save -> load (atomic, version- and damage-checked)."""

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from scintegrate.models import IntegrationModel
from scintegrate.models._base import FORMAT_VERSION
from scintegrate.registry import MethodSpec, register, unregister


class Tiny(IntegrationModel):
    method = "tiny_base_test"

    def __init__(self, *, width=3, seed=0, device="cpu", progress=False):
        self._setup({"width": width}, seed=seed, device=device, progress=progress)

    def _fit(self, adata, data):
        with self._stage("build"):
            self.module = self._build_module()
            self.offset_ = float(data.batch.mean())
            with torch.no_grad():
                self.embedding_ = self.module(torch.as_tensor(np.asarray(data.X)[:, :self.params["width"]])).numpy()

    def _build_module(self):
        torch.manual_seed(0)
        return torch.nn.Linear(self.params["width"], 2)

    def _fitted_state(self):
        return {"offset": self.offset_}, {"centers": np.arange(6.0).reshape(2, 3)}

    def _restore_state(self, state, arrays):
        self.offset_, self.centers_ = state["offset"], arrays["centers"]


@pytest.fixture(autouse=True)
def tiny_spec():
    register(MethodSpec(name="tiny_base_test", model=f"{__name__}:Tiny", description="test", input=("counts",)))
    yield
    unregister("tiny_base_test")


def _adata():
    X = np.random.default_rng(0).poisson(2.0, (12, 4)).astype(np.float32)
    return ad.AnnData(X, obs=pd.DataFrame({"batch": ["a", "b"] * 6}, index=[f"c{i}" for i in range(12)]))


def test_fit_records_stages_and_fitted_attributes():
    model = Tiny(width=4).fit(_adata(), batch_key="batch")
    assert model.embed().shape == (12, 2) and set(model.timings_) == {"build"}
    assert model.offset_ == 0.5 and model.params == {"width": 4, "seed": 0} and model.batch_key_ == "batch"


def test_save_load_round_trip(tmp_path):
    model = Tiny(width=4).fit(_adata())
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["arrays.npz", "model.json", "weights.pt"]
    loaded = Tiny.load(tmp_path / "m")
    x = torch.randn(5, 4)
    assert torch.equal(model.module(x), loaded.module(x))
    np.testing.assert_array_equal(loaded.embed(), model.embed())
    assert loaded.params == model.params and loaded.offset_ == 0.5 and loaded.centers_.shape == (2, 3)


def test_save_refuses_to_overwrite_and_load_checks_class_and_format(tmp_path):
    model = Tiny().fit(_adata())
    model.save(tmp_path / "m")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.save(tmp_path / "m")
    model.save(tmp_path / "m", overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary folder left behind

    class Other(Tiny):
        pass

    with pytest.raises(ValueError, match="holds a Tiny model"):
        Other.load(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="no model.json"):
        Tiny.load(tmp_path / "missing")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["format"] = FORMAT_VERSION - 1
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="refit the model"):
        Tiny.load(tmp_path / "m")


def test_damaged_files_give_a_clear_error(tmp_path):
    Tiny().fit(_adata()).save(tmp_path / "m")
    (tmp_path / "m" / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="weights.pt is damaged"):
        Tiny.load(tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text("{oops")
    with pytest.raises(ValueError, match="damaged: not a scintegrate model"):
        Tiny.load(tmp_path / "m")


def test_unfitted_model_refuses_embed_and_save(tmp_path):
    with pytest.raises(RuntimeError, match="not fitted"):
        Tiny().embed()
    with pytest.raises(RuntimeError, match="not fitted"):
        Tiny().save(tmp_path / "m")
