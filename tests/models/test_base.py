import numpy as np
import pytest
import torch

from scintegrate.models._base import SavableModel


class Tiny(SavableModel):
    def __init__(self, width=3):
        self.params = {"width": width}
        self.module = self._build_module()
        self.extras = {"centers": np.arange(6.0).reshape(2, 3)}

    def _build_module(self):
        return torch.nn.Linear(self.params["width"], 2)


def test_save_load_round_trip(tmp_path):
    model = Tiny(width=4)
    model.save(tmp_path / "m")
    loaded = Tiny.load(tmp_path / "m")
    x = torch.randn(5, 4)
    assert torch.equal(model.module(x), loaded.module(x))
    np.testing.assert_array_equal(loaded.extras["centers"], model.extras["centers"])
    assert loaded.params == {"width": 4}


def test_save_refuses_to_overwrite_and_load_checks_class(tmp_path):
    model = Tiny()
    model.save(tmp_path / "m")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.save(tmp_path / "m")
    model.save(tmp_path / "m", overwrite=True)

    class Other(Tiny):
        pass

    with pytest.raises(ValueError, match="holds a Tiny model"):
        Other.load(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="no params.json"):
        Tiny.load(tmp_path / "missing")
