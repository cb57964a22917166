"""What the benchmark scripts share: package versions, peak RSS, and one measured run in a child process.

Example
-------
>>> from _bench import version
>>> version("no-such-package")
'not installed'
"""

from __future__ import annotations

import json
import resource
import subprocess
import tempfile
import time
from pathlib import Path


def version(package: str) -> str:
    """The installed version of ``package``, or ``"not installed"``."""
    from importlib.metadata import PackageNotFoundError, version as _version

    try:
        return _version(package)
    except PackageNotFoundError:
        return "not installed"


def rss_gb() -> float:
    """Peak resident memory of this process so far, in GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def run_child(cmd: list, ident: dict, timeout: float) -> dict:
    """Run ``cmd + ["--result", path]`` (a script that writes its numbers as JSON to ``path``) and return them;
    a crash, an out-of-memory kill or a timeout gives ``ident`` with an ``error`` instead, so the others go on."""
    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        out = Path(tmp) / "result.json"
        start = time.perf_counter()
        try:
            proc = subprocess.run([*cmd, "--result", str(out)], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {**ident, "error": f"timed out after {timeout:g} s"}
        if proc.returncode == 0 and out.exists():
            return json.loads(out.read_text())
        return {**ident, "error": f"exit {proc.returncode}: {proc.stderr.strip()[-1500:]}",
                "wall_s_until_error": round(time.perf_counter() - start, 1)}
