"""Minibatch samplers with one seeding rule: epoch ``e`` of a sampler seeded ``s`` draws from its own
generator, seeded ``s * 1000 + e`` (:func:`epoch_generator`), so any epoch can be replayed on its own.

- :class:`UniformSampler` — a fresh permutation of the cells each epoch, cut into minibatches;
- :class:`ClusterBalancedSampler` — ``n_mb`` cells from every cluster per step (BERMUDA), small clusters
  oversampled through repeated permutations.

Samplers yield index arrays; the model turns them into tensors (sparse rows become dense per minibatch).

>>> from scintegrate.train.samplers import UniformSampler
>>> [len(b) for b in UniformSampler(10, batch_size=4, seed=0).epoch(0)]
[4, 4, 2]
"""

from __future__ import annotations

import numpy as np
import torch


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The CPU generator of one epoch of a sampler seeded ``seed``."""
    return torch.Generator().manual_seed(int(seed) * 1000 + int(epoch))


class UniformSampler:
    """Each epoch, a seeded permutation of ``0..n-1`` split into minibatches of ``batch_size`` (last smaller)."""

    def __init__(self, n: int, batch_size: int, seed: int, device="cpu"):
        self.n, self.batch_size, self.seed, self.device = int(n), int(batch_size), int(seed), device

    def epoch(self, epoch: int):
        perm = torch.randperm(self.n, generator=epoch_generator(self.seed, epoch))
        return [idx.to(self.device) for idx in perm.split(self.batch_size)]


class ClusterBalancedSampler:
    """Per step, ``n_mb`` cell indices from every cluster, stacked cluster by cluster (numpy arrays).

    Each cluster's indices run through fresh random permutations of its cells (concatenated as needed),
    which oversamples small clusters exactly as random oversampling + shuffling does.
    """

    def __init__(self, cluster_codes, n_clusters: int, n_mb: int, steps: int, seed: int):
        codes = np.asarray(cluster_codes)
        self.members = [np.flatnonzero(codes == k) for k in range(int(n_clusters))]
        self.n_mb, self.steps, self.seed = int(n_mb), int(steps), int(seed)

    def _stream(self, members, gen):
        need = self.n_mb * self.steps
        reps = -(-need // members.size)
        perm = torch.cat([torch.randperm(members.size, generator=gen) for _ in range(reps)])[:need]
        return members[perm.numpy()].reshape(self.steps, self.n_mb)

    def epoch(self, epoch: int):
        gen = epoch_generator(self.seed, epoch)
        streams = [self._stream(m, gen) for m in self.members]
        for s in range(self.steps):
            yield np.concatenate([st[s] for st in streams])
