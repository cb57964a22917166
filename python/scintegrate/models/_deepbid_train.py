"""DeepBID's training phases (pretraining, choice of K, clustering phase), each through ``train_loop``.

``data`` is the dict built by ``models.deepbid._training_data``: ``inputs`` (the sparse
:class:`~scintegrate.models._deepbid_data.DeepBIDInputs`), ``size_factors`` and ``batch`` (codes) as tensors on
the device, ``n_batches``, ``device``; ``settings`` the resolved hyper-parameters. Minibatches are formed from
the sparse rows (:meth:`DeepBIDInputs.x_rows`) and the module's ``loss(batch)`` does the rest.

Example
-------
>>> import numpy as np
>>> from scintegrate.models._deepbid_train import estimate_n_clusters
>>> rng = np.random.default_rng(0)
>>> z = np.concatenate([rng.normal(0, 0.1, (60, 5)), rng.normal(3, 0.1, (60, 5)), rng.normal(-3, 0.1, (60, 5))])
>>> estimate_n_clusters(z, seed=0)[0]
3
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import torch

from ..nn.fuzzy import fuzzy_kmeans, memberships, update_centers
from ..train import StableAssignmentStopper, UniformSampler, map_chunks, train_loop


def _rows_batch(data: dict, idx: torch.Tensor, phase: str) -> dict:
    """The tensors of minibatch ``idx`` (CPU indices) for ``phase``, on the device."""
    inputs, device = data["inputs"], data["device"]
    rows = idx.numpy()
    batch = {"phase": phase}
    if not (phase == "heads" and inputs.likelihood == "nb"):  # the NB heads read the hidden layer and counts only
        batch["x"] = torch.from_numpy(inputs.x_rows(rows)).to(device)
    if phase in ("heads", "cluster"):
        idx_d = idx.to(device)
        batch["idx"] = idx_d
        if inputs.likelihood == "nb":
            batch["counts"] = torch.from_numpy(inputs.counts_rows(rows)).to(device)
            batch["size_factors"] = data["size_factors"][idx_d]
    return batch


def encode_all(module, data: dict) -> torch.Tensor:
    """Latent codes of every training cell (chunks of 4,096 rows, no grad)."""
    inputs, device = data["inputs"], data["device"]
    return map_chunks(lambda rows: module.encode(torch.from_numpy(inputs.x_rows(rows)).to(device)),
                      inputs.n_cells)


def _decode_all(module, data: dict) -> torch.Tensor:
    inputs, device = data["inputs"], data["device"]
    return map_chunks(lambda rows: module.decode(module.encode(torch.from_numpy(inputs.x_rows(rows)).to(device))),
                      inputs.n_cells)


def _adam(params, lr: float):
    """Adam with the fused kernel (one pass over the weights; same update, much less memory traffic)."""
    return torch.optim.Adam(params, lr=lr, fused=True)


def pretrain(module, data: dict, s: dict, progress: bool = True) -> Dict[str, object]:
    """Layer-wise MSE pretraining (f-h1-f, then h1-h2-h1), then the likelihood heads on the frozen AE."""
    sampler = UniformSampler(data["inputs"].n_cells, s["batch_size"], s["seed"])
    hist = {}

    def phase_batches(phase, extra=None):
        def make(epoch):
            for idx in sampler.epoch(epoch):
                batch = _rows_batch(data, idx, phase)
                if extra is not None:
                    batch.update(extra(batch))
                yield batch
        return make

    opt = _adam([*module.enc1.parameters(), *module.recon.parameters()], s["lr"])
    hist["layer1"] = train_loop(module, phase_batches("layer1"), opt, n_epochs=s["pretrain_epochs"],
                                progress=progress, desc="DeepBID pretrain f-500-f")
    opt = _adam([*module.enc2.parameters(), *module.dec1.parameters()], s["lr"])
    hist["layer2"] = train_loop(module, phase_batches("layer2"), opt, n_epochs=s["pretrain_epochs"],
                                progress=progress, desc="DeepBID pretrain 500-300-500")

    hidden = _decode_all(module, data)
    heads = _likelihood_heads(module, data)
    opt = _adam([p for h in heads for p in h.parameters()], s["lr"])
    hist["heads"] = train_loop(module, phase_batches("heads", lambda b: {"hidden": hidden[b["idx"]]}), opt,
                               n_epochs=s["pretrain_epochs"], progress=progress, desc="DeepBID pretrain output heads")
    return hist


def _likelihood_heads(module, data: dict):
    """The output heads of the active likelihood; NB mean bias starts at log mean normalised count."""
    if module.likelihood != "nb":
        return [module.recon]
    inputs = data["inputs"]
    sf = np.maximum(inputs.size_factors.astype(np.float64), 1e-6)
    mean = np.asarray(inputs.counts.multiply(1.0 / sf[:, None]).mean(axis=0), dtype=np.float64).ravel()
    with torch.no_grad():
        module.mean_head.bias.copy_(torch.log(torch.as_tensor(mean, dtype=torch.float32).clamp(min=1e-4)))
    return [module.mean_head, module.disp_head]


def estimate_n_clusters(z: np.ndarray, resolution: float = 0.5, n_neighbors: int = 20, n_pcs: int = 30,
                        seed: int = 0) -> Tuple[int, str]:
    """K when the user gives none: Leiden clusters of the pretrained latent space.

    Rule: centre ``z``, keep its top ``n_pcs`` principal components (the 300-d tanh space has hub-ridden
    kNN graphs; its leading PCs do not), build the Seurat SNN graph (``n_neighbors``, ``pp.snn_graph``) and
    count the Leiden clusters at ``resolution`` (``pp.cluster_graph``); K = max(2, that count). The pooled
    cells are clustered (clustering each batch alone under-counts small batches).

    Resolution 0.5, from a sweep on the pretrained latent spaces of seven data sets (true K in brackets):
    demo simulation (4), a 6-type count simulation (6), mixology (3), DC (4), pancreas (5), Kang (4),
    10x chemistries (3). At 0.2 both simulations collapse to K = 2; at 0.8 the real sets are over-split
    (5, 4, 7, 5, 9); at 0.5: 4, 3, 3, 4, 5, 5, 8 -- within one of the truth on five of seven.
    """
    from .. import pp

    z = np.asarray(z, dtype=np.float64)
    if z.shape[0] < 3:
        return 2, "fewer than 3 cells: K = 2"
    scores = pp.pca(z - z.mean(0), n_comps=min(n_pcs, z.shape[1]), seed=seed)[0]
    graph = pp.snn_graph(scores, n_neighbors=min(n_neighbors, z.shape[0] - 1), seed=seed)
    labels = pp.cluster_graph(graph, resolution=resolution, algorithm="leiden", seed=seed, n_starts=1)
    k = min(max(2, len(np.unique(labels))), z.shape[0])
    return k, f"Leiden on {scores.shape[1]} PCs of the pretrained latent (SNN k={n_neighbors}, resolution={resolution})"


def initial_centers(z: torch.Tensor, k: int, sigma, gamma, seed: int):
    """k-means (10 starts) on the latent space, refined by the fuzzy updates (Eqs. 13-14).

    ``sigma="auto"``: sigma = median over cells of the distance to the nearest k-means centre. The adaptive
    loss is quadratic for r << sigma and linear (robust) for r >> sigma, so sigma is a distance in latent
    units, like Huber's delta, and is set from a robust scale of the residuals: typical cells sit in the
    quadratic regime, outliers are down-weighted. (A fixed sigma = 1 puts almost every cell of a 300-d
    tanh latent in the linear regime, where L_A's pull has constant length and boundary cells drift.)
    ``gamma="auto"``: gamma = (median over cells of f(r_2nd) - f(r_1st)) / 10 at the k-means centres, so the
    memberships are scale-free (a fixed gamma = 1 merges every centre into one when latent distances are
    small: entropic fuzzy k-means above its critical temperature). Returns ``(centers, P, sigma, gamma)``.
    """
    from sklearn.cluster import KMeans

    from ..nn.fuzzy import adaptive_loss, center_distances

    if k > z.shape[0]:
        raise ValueError(f"n_clusters={k} is larger than the number of cells ({z.shape[0]})")
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(z.cpu().numpy().astype(np.float64))
    centers = torch.as_tensor(km.cluster_centers_, dtype=z.dtype, device=z.device)
    r = center_distances(z, centers)
    if sigma == "auto":
        sigma = max(float(r.min(1).values.median()), 1e-6)
    if gamma == "auto":
        f = adaptive_loss(r, sigma).sort(1).values
        gamma = max(float((f[:, 1] - f[:, 0]).median()) / 10.0, 1e-6)
    centers, p = fuzzy_kmeans(z, centers, sigma=sigma, gamma=float(gamma))
    return centers, p, (None if sigma is None else float(sigma)), float(gamma)


def fit_clusters(module, data: dict, k: int, s: dict, progress: bool = True) -> dict:
    """The clustering phase (Eq. 11, SGD); returns centres, P, history and the labels after every epoch."""
    batch_codes = data["batch"]
    onehot = torch.nn.functional.one_hot(batch_codes, data["n_batches"]).to(torch.float32)
    centers, p, sigma, gamma = initial_centers(encode_all(module, data), k, s["sigma"], s["gamma"], s["seed"])
    state = {"centers": centers, "p": p, "trace": [], "mass": onehot.t() @ p}
    v_global = onehot.mean(0)
    weights = {key: s[key] for key in ("lam1", "lam2", "kappa1", "kappa2", "alpha")}
    stopper = StableAssignmentStopper(tol=s["tol"], patience=3, initial=p.argmax(1).cpu().numpy())
    sampler = UniformSampler(data["inputs"].n_cells, s["batch_size"], s["seed"] + 1)

    def make_batches(epoch):
        for idx in sampler.epoch(epoch):
            batch = _rows_batch(data, idx, "cluster")
            i = batch["idx"]
            p_old = state["p"][i]
            batch.update(batch=batch_codes[i], onehot=onehot[i], p_old=p_old, centers=state["centers"],
                         sigma=sigma, gamma=gamma, v=v_global, weights=weights,
                         mass_rest=state["mass"] - onehot[i].t() @ p_old)  # every other cell, last-epoch value
            yield batch

    def on_epoch_end(epoch, means):
        z = encode_all(module, data)
        state["centers"] = update_centers(z, state["p"], state["centers"], sigma)
        state["p"] = memberships(z, state["centers"], sigma, gamma)
        state["mass"] = onehot.t() @ state["p"]
        labels = state["p"].argmax(1).cpu().numpy()
        stopper.observe(labels)
        state["trace"].append(labels)

    opt = torch.optim.SGD(module.parameters(), lr=s["cluster_lr"])
    history = train_loop(module, make_batches, opt, n_epochs=s["cluster_epochs"], progress=progress,
                         desc="DeepBID clustering", on_epoch_end=on_epoch_end, stopper=stopper)
    history.losses["changed"] = stopper.changed
    n = data["inputs"].n_cells
    trace = np.stack(state["trace"]) if state["trace"] else np.empty((0, n), dtype=np.int64)
    return {"centers": state["centers"], "p": state["p"], "history": history, "label_trace": trace,
            "sigma": sigma, "gamma": gamma}
