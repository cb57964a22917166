"""The registry: every spec points at a documented model class, nothing outside a method's own files names
it, and a method registered from outside the package (tests/plugins) reaches the CLI with no other change."""

import ast
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scintegrate import registry
from scintegrate.models import IntegrationModel
from scintegrate.registry import MethodSpec

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "python" / "scintegrate"
BUILTIN = [s.name for s in registry.specs() if s.model.startswith("scintegrate.")]


@pytest.mark.parametrize("name", registry.method_names(peers=True))
def test_spec_points_at_a_documented_model_class(name):
    spec = registry.get_spec(name)
    if not spec.is_installed():
        pytest.skip(f"{name}: {spec.requires} not installed")
    cls = spec.model_class()
    assert issubclass(cls, IntegrationModel) and cls.method == name
    params = [p for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"]
    names = [p.name for p in params if p.kind != p.VAR_KEYWORD]
    assert set(spec.quick_params) <= set(names) or any(p.kind == p.VAR_KEYWORD for p in params)
    doc = inspect.getdoc(cls) or ""
    undocumented = [n for n in names if n not in ("seed", "device", "progress") and not re.search(rf"\b{n}\b", doc)]
    if cls.__module__.endswith("peers"):  # peers document their own few options in one line
        undocumented = []
    assert not undocumented, f"{cls.__name__} does not document {undocumented}"
    assert spec.description and "\n" not in spec.description


def test_spec_validation_and_duplicate_names():
    with pytest.raises(ValueError, match="lower-case"):
        MethodSpec(name="Bad Name", model="m:C", description="x")
    with pytest.raises(ValueError, match="kind must be one of"):
        MethodSpec(name="x", model="m:C", description="x", kind="other")
    with pytest.raises(ValueError, match="input must be"):
        MethodSpec(name="x", model="m:C", description="x", input=("fastq",))
    with pytest.raises(ValueError, match="registered already"):
        registry.register(MethodSpec(name=BUILTIN[0], model="m:C", description="x"))
    assert registry.get_spec("PCA").obsm_key == "X_pca_baseline"  # names are case-insensitive


def _docstring_nodes(tree):
    """Docstrings, and the strings of ``__all__`` (names of functions such as ``pp.pca``, not of methods)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            yield from (n for n in ast.walk(node.value) if isinstance(n, ast.Constant))
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                yield first.value


def _owner(path: Path, name: str) -> bool:
    """A method's own files carry its name (models/bermuda.py, modules/bermuda.py, models/_bermuda_*.py);
    the peers live in benchmark/peers.py; the registry may name everything."""
    rel = path.relative_to(PACKAGE).as_posix()
    return name in path.stem or rel == "registry.py" or (rel == "benchmark/peers.py" and
                                                          registry.get_spec(name).kind == "peer")


def test_no_method_name_literal_outside_its_own_files_and_the_registry():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        docs = {id(n) for n in _docstring_nodes(tree)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                if node.value in BUILTIN and not _owner(path, node.value):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
    for path in sorted((REPO / "Rpkg" / "R").glob("*.R")):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0] if not line.lstrip().startswith("#'") else ""
            for name in BUILTIN:
                if re.search(rf"[\"']{name}[\"']", code):
                    offenders.append(f"{path.relative_to(REPO)}:{lineno} {name!r}")
    assert not offenders, "method names outside their own files:\n" + "\n".join(offenders)


def _cli(*args, plugins=True):
    env = dict(os.environ)
    env.pop("SCINTEGRATE_PLUGINS", None)
    if plugins:
        env["SCINTEGRATE_PLUGINS"] = "scintegrate_toy"
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests" / "plugins"), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "scintegrate.cli", *args], capture_output=True, text=True, env=env)


def test_a_plugin_method_gets_the_cli_with_no_other_change(tmp_path):
    import anndata as ad

    import scintegrate as si

    listed = _cli("methods")
    assert listed.returncode == 0 and re.search(r"^toy\s+method\s+counts\+log\s+yes\s+toy plugin", listed.stdout, re.M)
    assert "toy" not in _cli("methods", plugins=False).stdout
    si.datasets.simulate_counts(n_cells=120, n_genes=60, seed=0).write_h5ad(tmp_path / "in.h5ad")
    run = _cli("integrate", str(tmp_path / "in.h5ad"), "--method", "toy", "--param", "n_dims=5",
               "--out", str(tmp_path / "out.h5ad"), "--quiet")
    assert run.returncode == 0, run.stderr
    out = ad.read_h5ad(tmp_path / "out.h5ad")
    assert out.obsm["X_toy"].shape == (120, 5) and "toy_norm" in out.obs
    bad = _cli("integrate", str(tmp_path / "in.h5ad"), "--method", "toy", "--param", "depth=2",
               "--out", str(tmp_path / "never.h5ad"))
    assert bad.returncode == 2 and "unknown parameter(s) ['depth'] for method 'toy'; valid: ['n_dims']" in bad.stderr


def test_methods_command_lists_every_method_once():
    res = _cli("methods", "--all", plugins=False)
    lines = res.stdout.splitlines()[1:]
    assert sorted(line.split()[0] for line in lines) == sorted(BUILTIN)  # no plugin in this subprocess
