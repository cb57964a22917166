"""Safe output: paths and keys checked before anything runs, files written whole or not at all.

Every file the CLI, the benchmark, the demo and ``save()`` write goes to a temporary file in the same folder
and is moved into place (``os.replace``, atomic on one file system) only once it is complete, so a failed run
leaves no file behind and never a partial one where the user's data was.

Example
-------
>>> import tempfile, pathlib
>>> from scintegrate._files import atomic_write
>>> out = pathlib.Path(tempfile.mkdtemp()) / "table.csv"
>>> with atomic_write(out) as tmp:
...     _ = tmp.write_text("a,b\\n1,2\\n")
>>> out.read_text().splitlines()
['a,b', '1,2']
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterable, Optional


@contextlib.contextmanager
def atomic_write(path):
    """Yield a temporary path next to ``path``; move it onto ``path`` when the block succeeds, else delete it."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_output_file(path, *, inputs: Iterable = (), overwrite: bool = False,
                      suffixes: Optional[Iterable[str]] = None) -> Path:
    """``path`` as a file that can be written: not a folder, a parent that is (or can become) a folder,
    not one of ``inputs`` unless ``overwrite``, with one of ``suffixes``. Raises ``ValueError``."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"output {path} is a folder; give a file name")
    parent = _existing_parent(path)
    if not parent.is_dir():
        raise ValueError(f"output {path} cannot be written: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"output {path} cannot be written: no write permission in {parent}")
    if suffixes is not None and path.suffix.lower() not in tuple(suffixes):
        raise ValueError(f"output {path} should end in {' or '.join(suffixes)}")
    for source in inputs:
        if Path(source).exists() and path.exists() and Path(source).resolve() == path.resolve() and not overwrite:
            raise ValueError(f"output {path} is the input file; pass --overwrite to replace it "
                             "(it is replaced only after the run succeeds)")
    return path


def check_output_dir(path) -> Path:
    """``path`` as a folder that can hold outputs (it may not exist yet). Raises ``ValueError``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"output folder {path} is a file")
    parent = _existing_parent(path)
    if not parent.is_dir():
        raise ValueError(f"output folder {path} cannot be made: {parent} is a file, not a folder")
    if not os.access(parent if not path.exists() else path, os.W_OK):
        raise ValueError(f"output folder {path} cannot be written: no write permission")
    return path


def check_key(key: Optional[str], what: str = "key_added") -> Optional[str]:
    """A key AnnData can store (``obsm`` / ``obs`` / ``layers`` / ``uns``): a non-empty string without '/'."""
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip():
        raise ValueError(f"{what} must be a non-empty string, got {key!r}")
    if "/" in key:
        raise ValueError(f"{what}={key!r} contains '/', which h5ad files cannot store in a key; choose another name")
    return key


def _existing_parent(path: Path) -> Path:
    parent = path.resolve().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent
