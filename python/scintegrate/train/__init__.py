"""The one training loop shared by every model, its stoppers, samplers and chunked inference."""

from .inference import map_chunks
from .loop import TrainingHistory, train_loop
from .samplers import ClusterBalancedSampler, UniformSampler, epoch_generator
from .stoppers import PlateauStopper, StableAssignmentStopper

__all__ = ["train_loop", "TrainingHistory", "PlateauStopper", "StableAssignmentStopper", "UniformSampler",
           "ClusterBalancedSampler", "epoch_generator", "map_chunks"]
