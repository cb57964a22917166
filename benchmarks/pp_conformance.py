"""``scintegrate.pp`` against Seurat 4.3 (R, through rpy2) on shared data sets.

For each data set: LogNormalize (max relative error), vst (max relative error of each column,
top-2,000 overlap, per-batch overlaps), SelectIntegrationFeatures over per-batch objects (overlap,
same order), ScaleData with and without ``split.by`` (max absolute error, on Seurat's variable
features), our PCA vs Seurat's RunPCA on the same scaled data (|correlation| of PCs 1-10), the SNN
graph and the clustering ARI at resolution 0.8 when Seurat's FindNeighbors (exact, ``rann``) +
FindClusters run on our PCA. Needs ``pip install 'scintegrate[r]'`` and R with Seurat.

Usage::

    nice .venv/bin/python benchmarks/pp_conformance.py                       # three data sets
    nice .venv/bin/python benchmarks/pp_conformance.py --datasets mixology_3cl

Writes ``benchmarks/results/pp_conformance.json`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import anndata as ad

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["mixology_3cl", "pancreas_baron_donors", "pbmc_10x_chemistries"]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=DEFAULT)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pp_conformance.json"))
    args = parser.parse_args(argv)

    from scintegrate.io import compare_with_seurat
    from scintegrate.io._r import require_r

    ro = require_r()
    results = {"seurat_version": str(ro.r('as.character(packageVersion("Seurat"))')[0]),
               "r_version": str(ro.r("R.version.string")[0]), "python": platform.python_version(),
               "settings": {"n_features": 2000, "n_comps": 30, "resolution": 0.8, "seed": 0},
               "datasets": {}}
    for name in args.datasets:
        adata = ad.read_h5ad(Path(args.data_dir) / f"{name}.h5ad")
        results["datasets"][name] = compare_with_seurat(adata, batch_key="batch", n_features=2000, n_comps=30,
                                                        resolution=0.8, seed=0)
        print(name, json.dumps(results["datasets"][name]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
