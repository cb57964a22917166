"""DeepBID's training phases (pretraining, choice of K, clustering phase), each through ``train_loop``.

``data`` is the dict built by ``models.deepbid._to_tensors``: ``x`` (standardised input), ``counts`` (or None),
``size_factors``, ``batch`` (codes), ``n_batches``, ``likelihood``; ``settings`` the resolved hyper-parameters.

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

from ..modules.deepbid import batch_proportion_kl, within_batch_similarity_kl
from ..nn import gaussian_nll, nb_nll
from ..nn.fuzzy import fuzzy_kmeans, fuzzy_kmeans_loss, memberships, update_centers, weight_penalty
from ..train import train_loop


def _minibatches(n: int, batch_size: int, seed: int, device):
    """``make_batches`` for train_loop: a fresh seeded permutation of 0..n-1 each epoch, cut in minibatches."""
    def make(epoch: int):
        g = torch.Generator().manual_seed(int(seed) * 1000 + epoch)
        return [idx.to(device) for idx in torch.randperm(n, generator=g).split(batch_size)]
    return make


def _encode_all(module, x) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([module.encode(chunk) for chunk in torch.split(x, 4096)])


def _decode_all(module, x) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([module.decode(module.encode(chunk)) for chunk in torch.split(x, 4096)])


def _reconstruction(module, data: dict, idx, hidden) -> torch.Tensor:
    """L_rec per entry: NB negative log-likelihood of the counts, or 1/2 squared error (Gaussian)."""
    if data["likelihood"] == "nb":
        mu, theta = module.nb_params(hidden, data["size_factors"][idx])
        return nb_nll(data["counts"][idx], mu, theta).mean()
    return gaussian_nll(data["x"][idx], module.reconstruct(hidden)).mean()


def _adam(params, lr: float):
    """Adam with the fused kernel (one pass over the weights; same update, much less memory traffic)."""
    return torch.optim.Adam(params, lr=lr, fused=True)


def pretrain(module, data: dict, s: dict, progress: bool = True) -> Dict[str, object]:
    """Layer-wise MSE pretraining (f-h1-f, then h1-h2-h1), then the likelihood heads on the frozen AE."""
    x, n = data["x"], data["x"].shape[0]
    make = _minibatches(n, s["batch_size"], s["seed"], x.device)
    mse = torch.nn.functional.mse_loss
    hist = {}

    def step1(idx, epoch):
        return {"loss": mse(module.recon(torch.tanh(module.enc1(x[idx]))), x[idx])}
    opt = _adam([*module.enc1.parameters(), *module.recon.parameters()], s["lr"])
    hist["layer1"] = train_loop(make, step1, opt, n_epochs=s["pretrain_epochs"], progress=progress,
                                desc="DeepBID pretrain f-500-f")

    def step2(idx, epoch):
        with torch.no_grad():
            h1 = torch.tanh(module.enc1(x[idx]))
        return {"loss": mse(module.decode(torch.tanh(module.enc2(h1))), h1)}
    opt = _adam([*module.enc2.parameters(), *module.dec1.parameters()], s["lr"])
    hist["layer2"] = train_loop(make, step2, opt, n_epochs=s["pretrain_epochs"], progress=progress,
                                desc="DeepBID pretrain 500-300-500")

    hidden = _decode_all(module, x)
    heads = _likelihood_heads(module, data)

    def step3(idx, epoch):
        return {"loss": _reconstruction(module, data, idx, hidden[idx])}
    opt = _adam([p for h in heads for p in h.parameters()], s["lr"])
    hist["heads"] = train_loop(make, step3, opt, n_epochs=s["pretrain_epochs"], progress=progress,
                               desc="DeepBID pretrain output heads")
    return hist


def _likelihood_heads(module, data: dict):
    """The output heads of the active likelihood; NB mean bias starts at log mean normalised count."""
    if data["likelihood"] != "nb":
        return [module.recon]
    with torch.no_grad():
        mean = (data["counts"] / data["size_factors"].clamp(min=1e-6).unsqueeze(1)).mean(0)
        module.mean_head.bias.copy_(torch.log(mean.clamp(min=1e-4)))
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
    x, batch = data["x"], data["batch"]
    onehot = torch.nn.functional.one_hot(batch, data["n_batches"]).to(x.dtype)
    centers, p, sigma, gamma = initial_centers(_encode_all(module, x), k, s["sigma"], s["gamma"], s["seed"])
    state = {"centers": centers, "p": p, "labels": p.argmax(1), "trace": [], "changed": [], "quiet": 0,
             "mass": onehot.t() @ p}
    v_global = onehot.mean(0)
    layers = [module.enc1, module.enc2, module.dec1,
              *((module.mean_head, module.disp_head) if data["likelihood"] == "nb" else (module.recon,))]

    def step(idx, epoch):
        z = module.encode(x[idx])
        rec = _reconstruction(module, data, idx, module.decode(z))
        la = fuzzy_kmeans_loss(z, state["centers"], state["p"][idx], sigma)
        lo = weight_penalty(layers) / len(idx)
        kl1 = within_batch_similarity_kl(z, batch[idx], s["alpha"])
        p_old = state["p"][idx]
        rest = state["mass"] - onehot[idx].t() @ p_old  # every other cell's mass, at its last-epoch value
        kl2 = batch_proportion_kl(memberships(z, state["centers"], sigma, gamma), onehot[idx],
                                  v=v_global, mass_rest=rest)
        loss = rec + s["lam1"] * la + s["lam2"] * lo + s["kappa1"] * kl1 + s["kappa2"] * kl2
        return {"loss": loss, "rec": rec, "L_A": la, "L_O": lo, "KL1": kl1, "KL2": kl2}

    def on_epoch_end(epoch, means):
        z = _encode_all(module, x)
        state["centers"] = update_centers(z, state["p"], state["centers"], sigma)
        state["p"] = memberships(z, state["centers"], sigma, gamma)
        state["mass"] = onehot.t() @ state["p"]
        labels = state["p"].argmax(1)
        changed = float((labels != state["labels"]).float().mean())
        state["labels"] = labels
        state["trace"].append(labels.cpu().numpy())
        state["changed"].append(changed)
        state["quiet"] = state["quiet"] + 1 if changed < s["tol"] else 0
        if state["quiet"] >= 3:
            return f"clusters stable: < {s['tol']:g} of cells changed cluster for 3 epochs"
        return None

    opt = torch.optim.SGD(module.parameters(), lr=s["cluster_lr"])
    history = train_loop(_minibatches(x.shape[0], s["batch_size"], s["seed"] + 1, x.device), step, opt,
                         n_epochs=s["cluster_epochs"], progress=progress, desc="DeepBID clustering",
                         on_epoch_end=on_epoch_end)
    history.losses["changed"] = state["changed"]
    trace = np.stack(state["trace"]) if state["trace"] else np.empty((0, x.shape[0]), dtype=np.int64)
    return {"centers": state["centers"], "p": state["p"], "history": history, "label_trace": trace,
            "sigma": sigma, "gamma": gamma}
