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
