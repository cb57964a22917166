"""Run scvi-tools' SCVI in a separate Python environment (the ``scvitools`` peer when scvi-tools is installed
beside another NumPy): ``python _scvitools_child.py input.h5ad params.json output.npz``.

Standalone on purpose: it imports only anndata, numpy and scvi-tools, so the environment that runs it needs no
scintegrate. ``input.h5ad`` holds the raw counts of the integration features in ``X`` and the batch in
``obs["batch"]``; ``params.json`` holds ``seed``, ``accelerator`` and the keyword arguments of ``SCVI`` (under
``"model"``) and of ``train`` (under ``"train"``); with ``"semi_supervised": true``, ``obs["labels"]`` holds
cell-type labels (``"unlabeled_category"`` for unlabelled cells) and scANVI is trained from the SCVI at its
defaults. Writes the latent representation and the training seconds.
"""

import json
import sys
import time


def main(src: str, params_file: str, out: str) -> None:
    import anndata as ad
    import numpy as np
    import scvi

    params = json.loads(open(params_file).read())
    adata = ad.read_h5ad(src)
    adata.layers["counts"] = adata.X.copy()
    if params.get("semi_supervised"):  # scANVI reads the labels through the scVI model's registration
        adata.obs["labels"] = adata.obs["labels"].astype(str)
    scvi.settings.seed = int(params["seed"])
    scvi.model.SCVI.setup_anndata(adata, layer="counts", batch_key="batch")
    model = scvi.model.SCVI(adata, **params.get("model", {}))
    start = time.perf_counter()
    model.train(accelerator=params.get("accelerator", "cpu"), enable_progress_bar=False, **params.get("train", {}))
    if params.get("semi_supervised"):
        model = scvi.model.SCANVI.from_scvi_model(model, params["unlabeled_category"], labels_key="labels",
                                                  adata=adata)
        model.train(accelerator=params.get("accelerator", "cpu"), enable_progress_bar=False)
    seconds = time.perf_counter() - start
    epochs = int(model.history["elbo_train"].shape[0]) if "elbo_train" in model.history else -1
    np.savez(out, latent=np.asarray(model.get_latent_representation(), dtype=np.float32),
             train_seconds=seconds, epochs=epochs, version=scvi.__version__)


if __name__ == "__main__":
    main(*sys.argv[1:4])
