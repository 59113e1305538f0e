"""What code produced a run: a hash of the package's source files as they are on disk.

The git commit alone misses uncommitted edits (a user who edits ``diffusion/losses.py`` and
reruns the study must not get yesterday's runs back), and is absent outside a checkout. The
fingerprint hashes every ``.py`` file under the package, names included; the commit is
recorded beside it for humans.
"""

from __future__ import annotations

import hashlib
import subprocess
from functools import cache
from pathlib import Path

from glioma.packaging import PACKAGE_DIR


def _sources(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


@cache
def _fingerprint(root: Path) -> str:
    digest = hashlib.sha256()
    for path in _sources(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def code_fingerprint(root: Path | None = None) -> str:
    """16 hex digits over the relative paths and bytes of every ``.py`` file under ``root``.

    Computed once per process: the code a process runs is what it imported when it started,
    so an edit made while a study runs belongs to the next command, not to the steps left.
    """
    return _fingerprint(root or PACKAGE_DIR)


@cache
def git_commit(root: Path = PACKAGE_DIR) -> str:
    """The checkout's commit (``-dirty`` when files changed), '' outside one; once a process."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12", "--exclude=*"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return out
