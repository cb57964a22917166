"""Command line: ``scintegrate integrate | methods | demo | benchmark | metrics``.

Examples
--------
$ scintegrate methods
$ scintegrate demo --out demo_out
$ scintegrate integrate data.h5ad --method bermuda --batch-key batch --out integrated.h5ad
$ scintegrate benchmark data.h5ad --batch-key batch --label-key cell_type --methods pca,bermuda --peers --out bench
$ scintegrate metrics integrated.h5ad --embedding X_bermuda --batch-key batch --label-key cell_type --out m.csv
$ scintegrate metrics from_r.h5ad --embedding X_seurat --unintegrated X_pca_seurat --scorer both --out m.csv
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import sys
import warnings
import time
from pathlib import Path
from typing import Dict, List, Optional


def _parse_params(items: Optional[List[str]]) -> Dict:
    """``["n_epochs=50", "s_thr=0.85"]`` -> ``{"n_epochs": 50, "s_thr": 0.85}``."""
    params = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--param expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            params[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key.strip()] = value
    return params


def _split(text: Optional[str]) -> Optional[List[str]]:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _log(args, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr)


def _checked_run(args, methods=(), params=None):
    """Everything that can be checked before data is read: methods, their parameters, seed, device."""
    from .api import build_model

    for method in methods:
        build_model(method, seed=args.seed, device=args.device, progress=False, **(params or {}))


def _cmd_integrate(args) -> int:
    from . import registry
    from ._files import atomic_write, check_key, check_output_file
    from .api import integrate
    from .datasets import read_h5ad

    params = _parse_params(args.param)
    _checked_run(args, [args.method], params)
    check_key(args.key_added, "--key-added")
    out = check_output_file(args.out, inputs=[args.input], overwrite=args.overwrite, suffixes=(".h5ad",))
    adata = read_h5ad(args.input)
    t0 = time.time()
    batch_key = args.batch_key
    if "," in batch_key and batch_key not in adata.obs.columns:  # several covariates (methods with multi_batch)
        batch_key = [k.strip() for k in batch_key.split(",") if k.strip()]
    integrate(adata, method=args.method, batch_key=batch_key, key_added=args.key_added, seed=args.seed,
              device=args.device, layer=args.layer, input=args.input_kind, progress=not args.quiet, **params)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as tmp:
        adata.write_h5ad(tmp)
    key = args.key_added or registry.get_spec(args.method).obsm_key
    _log(args, f"{args.method}: wrote obsm[{key!r}] {adata.obsm[key].shape} to {out} in {time.time() - t0:.1f}s")
    return 0


def _cmd_methods(args) -> int:
    """One line per registered method: name, kind, input, whether it is installed, description."""
    from . import registry

    rows = [(s.name, s.kind, "+".join(s.input), "yes" if s.is_installed() else "no", s.description)
            for s in registry.specs() if args.all or s.kind != "peer"]
    width = max(len(r[0]) for r in rows)
    print(f"{'method':<{width}}  {'kind':<8}  {'input':<10}  {'installed':<9}  description")
    for name, kind, inputs, installed, description in rows:
        print(f"{name:<{width}}  {kind:<8}  {inputs:<10}  {installed:<9}  {description}")
    return 0


def _cmd_demo(args) -> int:
    from ._files import atomic_write, check_output_dir
    from .api import available_methods
    from .benchmark import run_benchmark
    from .datasets import demo_data

    methods = _split(args.methods) or available_methods()
    _checked_run(args, methods)
    out = check_output_dir(args.out)
    out.mkdir(parents=True, exist_ok=True)
    adata = demo_data(seed=args.seed)
    _log(args, f"demo: {adata.n_obs} simulated cells x {adata.n_vars} genes, "
               f"{adata.obs['batch'].nunique()} batches; methods: {', '.join(methods)}")
    t0 = time.time()
    table = run_benchmark(adata, batch_key="batch", label_key="cell_type", methods=methods, peers=[],
                          out_dir=out, seed=args.seed, device=args.device, progress=not args.quiet)
    with atomic_write(out / "integrated.h5ad") as tmp:
        adata.write_h5ad(tmp)
    _log(args, table.to_string(float_format=lambda v: f"{v:.3f}"))
    _log(args, f"demo: wrote {out}/integrated.h5ad, metrics.csv, overview.png, umap.png in {time.time() - t0:.0f}s")
    return 0


#: what each table holds, printed after it
_SOURCES = {"scintegrate": "scintegrate's definitions (overall = 0.4 batch + 0.6 bio; NMI/ARI of a Leiden sweep)",
            "scib-metrics": "scib-metrics' Benchmarker, default metrics, unscaled (its Total is not our overall)"}


@contextlib.contextmanager
def _warnings_as_lines(args):
    """Show each warning raised inside as one line, ``scintegrate <command>: warning: ...`` (once each)."""
    with warnings.catch_warnings(record=True) as caught:
        try:
            yield
        finally:
            seen = set()
            for w in caught:
                text = " ".join(str(w.message).split("\n")[0].split())
                if text not in seen:
                    seen.add(text)
                    print(f"scintegrate {args.command}: warning: {text}", file=sys.stderr)


def _cmd_benchmark(args) -> int:
    from ._files import check_output_dir
    from .api import available_methods
    from .benchmark import run_benchmark
    from .benchmark.scib_scorer import SCIB_FILE, check_scorer
    from .datasets import read_h5ad

    methods = _split(args.methods) or available_methods()
    _checked_run(args, methods)
    check_scorer(args.scorer)
    check_output_dir(args.out)
    adata = read_h5ad(args.input)
    peers = "all" if args.peers else []
    with _warnings_as_lines(args):
        table = run_benchmark(adata, batch_key=args.batch_key, label_key=args.label_key, methods=methods,
                              peers=peers, out_dir=Path(args.out), seed=args.seed, device=args.device,
                              progress=not args.quiet, scorer=args.scorer)
    fmt = {"float_format": lambda v: f"{v:.3f}"}
    if args.scorer in ("scintegrate", "both"):
        _log(args, f"{Path(args.out) / 'metrics.csv'}: {_SOURCES['scintegrate']}\n{table.to_string(**fmt)}")
    if args.scorer in ("scib-metrics", "both"):
        import pandas as pd

        scib = table if args.scorer == "scib-metrics" else pd.DataFrame.from_dict(table.attrs["scib_metrics"],
                                                                                   orient="tight")
        _log(args, f"{Path(args.out) / SCIB_FILE}: {_SOURCES['scib-metrics']}\n{scib.to_string(**fmt)}")
    return 0


def _cmd_metrics(args) -> int:
    from ._device import resolve_device
    from ._files import atomic_write, check_output_file
    from .benchmark import score_embedding
    from .benchmark.scib_scorer import check_scorer, scib_benchmark
    from .benchmark.table import check_inputs, get_embedding, reference_or_skip
    from .datasets import read_h5ad
    from .models._params import check_seed

    check_seed(args.seed)
    resolve_device(args.device)
    check_scorer(args.scorer)
    out = check_output_file(args.out, inputs=[args.input], suffixes=(".csv",))
    out_scib = out.with_name(f"{out.stem}_scib{out.suffix}") if args.scorer == "both" else out
    check_output_file(out_scib, inputs=[args.input], suffixes=(".csv",))
    adata = read_h5ad(args.input)
    check_inputs(adata, args.batch_key, args.label_key)
    get_embedding(adata, args.embedding)
    if args.unintegrated is not None:
        if args.unintegrated not in adata.obsm:
            raise KeyError(f"--unintegrated {args.unintegrated!r} not found in adata.obsm; "
                           f"available keys: {list(adata.obsm)}")
        get_embedding(adata, args.unintegrated)
    tables = {}
    with _warnings_as_lines(args):
        # the reference: --unintegrated, else obsm["X_pca"], else a PCA of .X, else none (one warning)
        ref = args.unintegrated or "X_pca"
        if reference_or_skip(adata, ref, batch_key=args.batch_key, seed=args.seed) is None:
            ref = None
        if args.scorer in ("scintegrate", "both"):
            tables[out] = ("scintegrate", score_embedding(
                adata, args.embedding, batch_key=args.batch_key, label_key=args.label_key,
                unintegrated=ref, seed=args.seed, device=args.device))
        if args.scorer in ("scib-metrics", "both"):
            tables[out_scib] = ("scib-metrics", scib_benchmark(
                adata, embeddings=[args.embedding], batch_key=args.batch_key, label_key=args.label_key,
                unintegrated=ref, progress=not args.quiet))
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, (source, table) in tables.items():
        with atomic_write(path) as tmp:
            table.to_csv(tmp, index=False)
        _log(args, f"{path}: {_SOURCES[source]}\n{table.T.to_string(header=False)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scintegrate", description="Batch integration for single-cell RNA-seq")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, batch=True):
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
        p.add_argument("--quiet", action="store_true", help="no progress bars or messages")
        p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
        if batch:
            p.add_argument("--batch-key", default="batch",
                           help="obs column with the batch (default 'batch'); integrate: a comma list corrects "
                                "several columns with methods that take them (e.g. harmony)")

    p = sub.add_parser("integrate", help="integrate the batches of an .h5ad file")
    p.add_argument("input", help="input .h5ad (raw counts in .X, or use --layer)")
    p.add_argument("--method", default=_default_method(),
                   help=f"integration method (default {_default_method()}; see 'scintegrate methods')")
    p.add_argument("--out", required=True, help="output .h5ad")
    p.add_argument("--key-added", default=None, help="obsm key for the embedding (default X_<method>)")
    p.add_argument("--layer", default=None, help="layer to use instead of .X")
    p.add_argument("--input-kind", default="auto", choices=["auto", "counts", "log"],
                   help="what the values are (default: decided from every value, batch by batch; 'counts' "
                        "normalises non-integer estimated counts, 'log' takes the values as they are)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="method parameter (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="allow --out to be the input file (replaced only "
                   "after the run succeeds)")
    common(p)
    p.set_defaults(func=_cmd_integrate)

    p = sub.add_parser("methods", help="list the registered methods, one line each")
    p.add_argument("--all", action="store_true", help="include the peers the benchmark can run")
    p.set_defaults(func=_cmd_methods)

    p = sub.add_parser("demo", help="simulate data, run every method, write results and plots")
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--methods", default=None, help="comma-separated methods (default: all available)")
    common(p, batch=False)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("benchmark", help="run methods (and peers) on an .h5ad file and score them")
    p.add_argument("input")
    p.add_argument("--label-key", default="cell_type")
    p.add_argument("--methods", default=None, help="comma-separated methods (default: all available)")
    p.add_argument("--peers", action="store_true", help="add the installed peers ('scintegrate methods --all')")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--scorer", default="scintegrate", choices=["scintegrate", "scib-metrics", "both"],
                   help="who computes the scores: scintegrate (metrics.csv, default), scib-metrics' Benchmarker "
                        "(metrics_scib.csv, unscaled; pip install scib-metrics) or both")
    common(p)
    p.set_defaults(func=_cmd_benchmark)

    p = sub.add_parser("metrics", help="score an embedding stored in an .h5ad file")
    p.add_argument("input")
    p.add_argument("--embedding", required=True, help="obsm key of the embedding, e.g. X_bermuda")
    p.add_argument("--label-key", default="cell_type")
    p.add_argument("--unintegrated", default=None, metavar="OBSM_KEY",
                   help="obsm key of the embedding before integration, the reference of pcr_comparison "
                        "(default: obsm['X_pca'], else a PCA of .X; without either, pcr_comparison is skipped)")
    p.add_argument("--scorer", default="scintegrate", choices=["scintegrate", "scib-metrics", "both"],
                   help="scintegrate (default), scib-metrics' Benchmarker (pip install scib-metrics), or both "
                        "(the scib table goes to <out>_scib.csv)")
    p.add_argument("--out", required=True, help="output .csv")
    common(p)
    p.set_defaults(func=_cmd_metrics)
    return parser


def _default_method() -> str:
    from .registry import DEFAULT_METHOD

    return DEFAULT_METHOD


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``scintegrate`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    args.quiet, args.debug = getattr(args, "quiet", False), getattr(args, "debug", False)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"scintegrate {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as err:  # every user error is one line; --debug shows the traceback
        if args.debug:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        known = (ValueError, KeyError, FileNotFoundError, RuntimeError, ImportError, OSError)
        prefix = "" if isinstance(err, known) else f"{type(err).__name__}: "
        text = " ".join(str(message).split("\n")[0].split()) if not args.debug else str(message)
        print(f"scintegrate {args.command}: error: {prefix}{text}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
