"""Torch building blocks written once: layers, encoders, likelihoods, MMD and KL terms."""

from .layers import MLP
from .encoders import GaussianEncoder, kl_normal_var, kl_warmup
from .likelihoods import gaussian_nll, nb_nll, zinb_nll
from .mmd import TRVAE_SCALES, mmd_between_conditions, mmd_multi_kernel, mmd_rbf_multiscale
from .kl import kl_divergence, kl_normal, student_t_similarity, target_distribution

__all__ = [
    "MLP",
    "GaussianEncoder",
    "nb_nll",
    "zinb_nll",
    "gaussian_nll",
    "mmd_multi_kernel",
    "mmd_rbf_multiscale",
    "mmd_between_conditions",
    "TRVAE_SCALES",
    "kl_normal",
    "kl_normal_var",
    "kl_warmup",
    "kl_divergence",
    "student_t_similarity",
    "target_distribution",
]
