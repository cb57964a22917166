"""Execute the Python code blocks of every Markdown vignette in vignettes/ (as a user would, in order)."""

import os
import re
from pathlib import Path

import pytest

VIGNETTES = sorted((Path(__file__).resolve().parents[1] / "vignettes").glob("*.md"))


def code_blocks(path: Path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.slow
@pytest.mark.parametrize("path", VIGNETTES, ids=lambda p: p.name)
def test_vignette_runs(path, tmp_path, monkeypatch):
    blocks = code_blocks(path)
    assert blocks, f"{path.name} has no python code blocks"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": "__vignette__"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{path.name}[block {i}]", "exec"), namespace)
        except Exception as err:  # pragma: no cover - message for the reader
            raise AssertionError(f"{path.name} block {i} failed: {err!r}\n{block}") from err
    produced = list(tmp_path.iterdir())
    assert produced, "the vignette should write its figures/results"
