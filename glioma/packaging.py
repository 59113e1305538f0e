"""The package's source, copied for a model to carry (MLflow ``code_paths``).

A model logged with this code loads wherever MLflow and the model's own pip requirements are
installed: no checkout of the project, no ``pip install -e``. Only the ``.py`` files go (no
caches), about 0.35 MB per model.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import glioma

PACKAGE_DIR = Path(glioma.__file__).resolve().parent


@contextmanager
def package_code() -> Iterator[list[str]]:
    """``code_paths`` for ``log_model``/``save_model``: a clean copy of ``glioma/``."""
    with tempfile.TemporaryDirectory(prefix="glioma-code-") as tmp:
        target = Path(tmp) / PACKAGE_DIR.name
        shutil.copytree(PACKAGE_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        yield [str(target)]


def pinned_requirements(*distributions: str) -> list[str]:
    """``name==version`` of each distribution this process runs: a model names the versions it
    was trained with, not floors (a local label such as ``+cu130`` is dropped: it names a wheel
    index, not a version).
    """
    return [f"{name}=={metadata.version(name).split('+')[0]}" for name in distributions]
