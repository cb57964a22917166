"""The one registry of integration methods: what each needs, what it writes, which class runs it.

Every method -- scintegrate's own, the uncorrected baseline and the external peers that only the
benchmark runs -- is one :class:`MethodSpec`. ``integrate``, the CLI, the demo, the benchmark runner,
the R package and the contract tests read this registry; nothing else names methods.

A method lands as a module, a model class on :class:`scintegrate.models.IntegrationModel` and one
``register(MethodSpec(...))`` call. Methods outside the package register themselves when their module
is imported: list it in the environment variable ``SCINTEGRATE_PLUGINS`` (comma-separated module
names) or in the ``scintegrate.methods`` entry-point group of its distribution.

Example
-------
>>> from scintegrate import registry
>>> spec = registry.get_spec("pca")
>>> spec.kind, spec.obsm_key
('baseline', 'X_pca_baseline')
>>> "bermuda" in registry.method_names()
True
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

#: what a method can take as input
INPUTS = ("counts", "log", "embedding")
#: "method": scintegrate's own; "baseline": no correction (the reference of the scores); "peer": an external
#: package run by the benchmark only
KINDS = ("method", "baseline", "peer")

#: the method ``integrate`` / the CLI / R use when none is named
DEFAULT_METHOD = "bermuda"


@dataclass(frozen=True)
class MethodSpec:
    """How one method is run and what it writes.

    ``model`` is ``"module:Class"`` (imported only when the method runs). ``input`` lists the kinds of
    data it accepts (raw ``"counts"``, ``"log"``-normalised values, an existing ``"embedding"``);
    ``allow_negative`` admits continuous input with negative values (scaled data, simulated Gaussians).
    ``obsm_key`` is the default key of the embedding (``"X_<name>"`` when empty); ``obs_keys``,
    ``obsm_keys`` and ``layer_keys`` are the further outputs ``integrate`` writes. ``requires`` names
    the Python modules that must be importable (peers). ``quick_params`` make a run on a few hundred
    cells take seconds (contract tests, smoke checks); they are not defaults. ``min_batch_cells``: a batch
    with fewer cells is refused; ``small_batch_cells``: a batch with fewer cells is warned about.
    ``multi_batch``: ``batch_key`` may name several columns (covariates corrected together); other methods
    refuse a list of more than one column. ``python_env`` (peers): an environment variable naming another
    Python interpreter that runs the peer when ``requires`` cannot be imported here (e.g. a package that
    needs NumPy 2). ``labels_param``: the parameter that names the ``obs`` column of cell-type labels, for
    semi-supervised methods (the benchmark passes its label column there).
    """

    name: str
    model: str
    description: str
    kind: str = "method"
    input: Tuple[str, ...] = ("counts",)
    allow_negative: bool = False
    obsm_key: str = ""
    obs_keys: Tuple[str, ...] = ()
    obsm_keys: Tuple[str, ...] = ()
    layer_keys: Tuple[str, ...] = ()
    requires: Tuple[str, ...] = ()
    quick_params: Dict[str, object] = field(default_factory=dict)
    min_batch_cells: int = 1
    small_batch_cells: int = 0
    multi_batch: bool = False
    python_env: str = ""
    labels_param: str = ""

    def __post_init__(self):
        if not self.name or self.name != self.name.lower() or not self.name.replace("_", "").isalnum():
            raise ValueError(f"method names are lower-case letters, digits and '_', got {self.name!r}")
        if ":" not in self.model:
            raise ValueError(f"model must be 'module:Class', got {self.model!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        bad = [i for i in self.input if i not in INPUTS]
        if bad or not self.input:
            raise ValueError(f"input must be a non-empty tuple of {INPUTS}, got {self.input!r}")
        if not self.obsm_key:
            object.__setattr__(self, "obsm_key", f"X_{self.name}")

    @property
    def needs_counts(self) -> bool:
        """True when raw counts are the only input the method takes."""
        return self.input == ("counts",)

    def model_class(self):
        """The model class (imports its module)."""
        module, cls = self.model.split(":")
        return getattr(importlib.import_module(module), cls)

    def is_installed(self) -> bool:
        """Whether the required packages (or the interpreter of ``python_env``) and the model's module can be
        found (nothing is imported)."""
        if not _findable(self.model.split(":")[0]):
            return False
        return all(_findable(m) for m in self.requires) or self.runs_elsewhere()

    def runs_elsewhere(self) -> bool:
        """Whether the peer runs in the interpreter named by ``python_env`` (set, existing, requires not here)."""
        if not self.python_env or all(_findable(m) for m in self.requires):
            return False
        return os.path.isfile(os.environ.get(self.python_env, ""))

    def outputs(self) -> Dict[str, List[str]]:
        """What ``integrate`` writes: ``{"obsm": [...], "obs": [...], "layers": [...]}``."""
        return {"obsm": [self.obsm_key, *self.obsm_keys], "obs": list(self.obs_keys), "layers": list(self.layer_keys)}


_REGISTRY: Dict[str, MethodSpec] = {}
_PLUGINS_LOADED = False


def register(spec: MethodSpec, *, replace: bool = False) -> MethodSpec:
    """Add ``spec`` to the registry; a second spec of the same name needs ``replace=True``."""
    if spec.name in _REGISTRY and not replace and _REGISTRY[spec.name] != spec:
        raise ValueError(f"a method named {spec.name!r} is registered already; pass replace=True")
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a method (tests that register toy methods clean up with this)."""
    _REGISTRY.pop(str(name).lower(), None)


def _specs() -> Dict[str, MethodSpec]:
    _load_plugins()
    return _REGISTRY


def get_spec(name: str) -> MethodSpec:
    """The spec registered under ``name`` (case-insensitive); a ``ValueError`` lists the known names."""
    key = str(name).lower()
    specs = _specs()
    if key not in specs:
        raise ValueError(f"unknown method {name!r}; available: {sorted(specs)}")
    return specs[key]


def specs(kind: Optional[str] = None) -> List[MethodSpec]:
    """All specs (or those of one ``kind``), in registration order."""
    return [s for s in _specs().values() if kind is None or s.kind == kind]


def method_names(*, peers: bool = False, installed: bool = False) -> List[str]:
    """Names of the methods ``integrate`` runs (methods and baselines; peers too with ``peers=True``)."""
    return [s.name for s in specs() if (peers or s.kind != "peer") and (not installed or s.is_installed())]


def peer_names(*, installed: bool = False) -> List[str]:
    """Names of the external peers the benchmark can run."""
    return [s.name for s in specs("peer") if not installed or s.is_installed()]


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _load_plugins() -> None:
    """Import the modules named in ``SCINTEGRATE_PLUGINS`` and the ``scintegrate.methods`` entry points once."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    names = [m.strip() for m in os.environ.get("SCINTEGRATE_PLUGINS", "").split(",") if m.strip()]
    for module in names:
        importlib.import_module(module)
    try:
        from importlib.metadata import entry_points

        found = entry_points()
        group = found.select(group="scintegrate.methods") if hasattr(found, "select") else found.get(
            "scintegrate.methods", [])
    except Exception:  # pragma: no cover - broken metadata must not break the package
        group = []
    for entry in group:
        entry.load()


# ------------------------------------------------------------------ the built-in methods
register(MethodSpec(
    name="pca", model="scintegrate.models.pca_baseline:PCABaseline", kind="baseline",
    description="Seurat-style PCA of all batches together, no correction (the unintegrated reference)",
    input=("counts", "log"), allow_negative=True, obsm_key="X_pca_baseline",
    quick_params={"n_comps": 10}, min_batch_cells=2))
register(MethodSpec(
    name="bermuda", model="scintegrate.models.bermuda:BERMUDA",
    description="BERMUDA (Wang et al. 2019): autoencoder with MMD between similar per-batch clusters",
    input=("counts", "log"), allow_negative=True, obs_keys=("bermuda_cluster",),
    quick_params={"max_steps": 30}, small_batch_cells=10))
register(MethodSpec(
    name="deepbid", model="scintegrate.models.deepbid:DeepBID",
    description="DeepBID (Qin et al. 2024): NB autoencoder with deep fuzzy clustering and two KL losses",
    input=("counts", "log"), obs_keys=("deepbid_cluster",), obsm_keys=("deepbid_soft",),
    layer_keys=("deepbid_denoised",), small_batch_cells=10,
    quick_params={"n_clusters": 3, "pretrain_epochs": 2, "cluster_epochs": 2, "hidden": [32, 16]}))
register(MethodSpec(
    name="harmony", model="scintegrate.models.harmony:Harmony",
    description="Harmony (Korsunsky et al. 2019): soft k-means with a batch-diversity penalty, ridge-corrected PCs",
    input=("counts", "log", "embedding"), allow_negative=True, multi_batch=True, min_batch_cells=1,
    quick_params={"n_comps": 10, "max_iter": 3, "max_iter_cluster": 5}))
register(MethodSpec(
    name="scanorama", model="scintegrate.models.scanorama:Scanorama",
    description="Scanorama (Hie et al. 2019): MNN panoramas of all batch pairs, Gaussian-smoothed translations",
    input=("counts", "log"), allow_negative=True, min_batch_cells=2, small_batch_cells=10,
    quick_params={"dimred": 20}))
register(MethodSpec(
    name="fastmnn", model="scintegrate.models.fastmnn:FastMNN",
    description="fastMNN (Haghverdi et al. 2018; batchelor): MNN pairs in a multi-batch PCA, batches merged in turn",
    input=("counts", "log"), allow_negative=True, min_batch_cells=1, quick_params={"d": 10}))
register(MethodSpec(
    name="seurat_cca", model="scintegrate.models.seurat_cca:SeuratCCA",
    description="Seurat v3 (Stuart et al. 2019): CCA anchors, filtered and scored, weighted correction of the features",
    input=("counts", "log"), allow_negative=True, layer_keys=("seurat_cca_corrected",), min_batch_cells=2,
    quick_params={"dims": 10, "n_pcs": 10, "k_filter": 50, "k_weight": 30}))
register(MethodSpec(
    name="harmonypy", model="scintegrate.benchmark.peers:HarmonyPy", kind="peer", requires=("harmonypy",),
    description="harmonypy on the Seurat-style PCA (Korsunsky et al. 2019)", input=("counts", "log"),
    allow_negative=True, min_batch_cells=2))
register(MethodSpec(
    name="scanoramapy", model="scintegrate.benchmark.peers:ScanoramaPy", kind="peer", requires=("scanorama",),
    description="the scanorama package on the log-normalised integration features (Hie et al. 2019)",
    input=("counts", "log"), allow_negative=True))
register(MethodSpec(
    name="scvi", model="scintegrate.models.scvi:SCVI",
    description="scVI (Lopez et al. 2018): conditional VAE of the counts, ZINB decoder, batch as the condition",
    quick_params={"max_epochs": 3, "n_hidden": 32}, min_batch_cells=1))
register(MethodSpec(
    name="scanvi", model="scintegrate.models.scanvi:SCANVI",
    description="scANVI (Xu et al. 2021): scVI, then semi-supervised with cell-type labels; predicts the unlabelled",
    obs_keys=("scanvi_prediction", "scanvi_confidence"), obsm_keys=("scanvi_probabilities",),
    labels_param="labels_key", quick_params={"max_epochs": 3, "n_hidden": 32, "scanvi_max_epochs": 2},
    min_batch_cells=1))
register(MethodSpec(
    name="trvae", model="scintegrate.models.trvae:TRVAE",
    description="trVAE (Lotfollahi et al. 2020): conditional VAE of the counts, NB decoder, MMD between batches",
    quick_params={"max_epochs": 3, "hidden": [32, 16]}, min_batch_cells=1))
register(MethodSpec(
    name="cvae", model="scintegrate.models.cvae:CVAE",
    description="conditional VAE of log-normalised values (Gaussian likelihood), for data without counts",
    input=("counts", "log"), allow_negative=True, quick_params={"max_epochs": 3, "hidden": [32, 16]},
    min_batch_cells=1))
register(MethodSpec(
    name="scvitools", model="scintegrate.benchmark.peers:ScviTools", kind="peer", requires=("scvi",),
    python_env="SCINTEGRATE_SCVI_PYTHON",
    description="scvi-tools' SCVI on the raw counts of the integration features (Lopez et al. 2018)"))
register(MethodSpec(
    name="scanvitools", model="scintegrate.benchmark.peers:ScanviTools", kind="peer", requires=("scvi",),
    python_env="SCINTEGRATE_SCVI_PYTHON", labels_param="labels_key",
    description="scvi-tools' scANVI from its SCVI, with cell-type labels (Xu et al. 2021)"))
register(MethodSpec(
    name="seuratr", model="scintegrate.benchmark.peers:SeuratR", kind="peer", requires=("rpy2",),
    description="R Seurat 4.3: CCA anchors + IntegrateData, then ScaleData + RunPCA (Stuart et al. 2019)",
    input=("counts",), min_batch_cells=2, quick_params={"dims": 10, "k_filter": 50, "k_weight": 30, "n_pcs": 10}))
register(MethodSpec(
    name="combat", model="scintegrate.benchmark.peers:ComBat", kind="peer", requires=("scanpy",),
    description="scanpy's ComBat on the log-normalised features, then scale + PCA (Johnson et al. 2007)",
    input=("counts", "log"), allow_negative=True))
