"""Torch modules of the network methods (tensors in, tensors out; no AnnData).

The module contract, which lets the one training loop (:func:`scintegrate.train.train_loop`) step any model
without model-specific glue: every module exposes

- ``encode(x, cond=None)``: the latent representation of a block of cells (``cond``: the condition, e.g. a
  one-hot batch, for conditional models; ignored by models without one);
- ``loss(batch) -> dict``: the named loss terms of one minibatch, with the total to minimise under ``"loss"``.

``batch`` is whatever the model class's minibatch maker yields (a dict of tensors on the device).
Methods that are algorithms rather than networks (the PCA baseline) are model classes without a module.

- :mod:`~scintegrate.modules.bermuda` — BERMUDA's autoencoder and MMD-between-clusters loss;
- :mod:`~scintegrate.modules.deepbid` — DeepBID's NB autoencoder, fuzzy-clustering loss and KL terms.
"""
