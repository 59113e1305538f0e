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

_cache: dict[Path, tuple[tuple, str]] = {}


def _sources(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def code_fingerprint(root: Path | None = None) -> str:
    """16 hex digits over the relative paths and bytes of every ``.py`` file under ``root``.

    Re-hashed only when a file's size or modification time changed (or a file came or went),
    so calling it before every step costs a directory walk.
    """
    root = root or PACKAGE_DIR
    files = _sources(root)
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    cached = _cache.get(root)
    if cached and cached[0] == stamp:
        return cached[1]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    value = digest.hexdigest()[:16]
    _cache[root] = (stamp, value)
    return value


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
