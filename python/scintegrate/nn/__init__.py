"""Torch building blocks written once: layers, likelihoods, MMD and KL terms."""

from .layers import MLP
from .likelihoods import gaussian_nll, nb_nll
from .mmd import mmd_multi_kernel
from .kl import kl_divergence, kl_normal, student_t_similarity, target_distribution

__all__ = [
    "MLP",
    "nb_nll",
    "gaussian_nll",
    "mmd_multi_kernel",
    "kl_normal",
    "kl_divergence",
    "student_t_similarity",
    "target_distribution",
]
