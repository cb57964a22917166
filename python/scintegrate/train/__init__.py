"""The one training loop shared by every model."""

from .loop import PlateauStopper, TrainingHistory, train_loop

__all__ = ["train_loop", "PlateauStopper", "TrainingHistory"]
