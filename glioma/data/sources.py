"""Which layout a ``--data`` is, and a fingerprint of everything prepare would read from it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from glioma.data.layouts import discover_brats
from glioma.data.records import Discovery, read_manifest
from glioma.errors import DataError


def discover(source: str | Path, site: str, *, grades: str | Path | None = None) -> Discovery:
    """A folder is read as a BraTS root (any release), a ``.csv`` file as a manifest."""
    source = Path(source)
    if not source.exists():
        raise DataError(f"{source}: input does not exist")
    if source.is_file() and source.suffix.lower() == ".csv":
        return read_manifest(source, site)
    if source.is_dir():
        return discover_brats(source, site, grades)
    raise DataError(f"{source}: expected a BraTS root folder or a manifest .csv file")


def default_site_name(source: str | Path) -> str:
    """Site name when none is given: ``brats`` for a BraTS root, the CSV's stem otherwise."""
    source = Path(source)
    return source.stem.lower() if source.suffix.lower() == ".csv" else "brats"


def _files(path: Path) -> list[Path]:
    """A file, or every file under a DICOM series folder."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def source_fingerprint(source: str | Path, *, grades: str | Path | None = None) -> str:
    """A hash of what prepare would read: every discovered file's path, size and mtime.

    It changes when a subject is added, removed, replaced or edited (and when the manifest,
    the mapping or the grades file changes), so a step is not reused on stale data; it reads
    no voxels.
    """
    source = Path(source)
    found = discover(source, "fingerprint", grades=grades)
    files = {f for record in found.records for p in record.paths.values() for f in _files(p)}
    files |= {Path(e.path) for e in found.exclusions if e.path and Path(e.path).is_file()}
    files |= set(found.inputs) | ({source} if source.is_file() else set())
    digest = hashlib.sha256()
    for path in sorted(files):
        stat = path.stat() if path.is_file() else None
        size, mtime = (stat.st_size, stat.st_mtime_ns) if stat else (-1, -1)
        digest.update(f"{path.resolve()}\0{size}\0{mtime}\n".encode())
    for exclusion in sorted(found.exclusions, key=lambda e: (e.subject_id, e.reason)):
        digest.update(f"{exclusion.subject_id}\0{exclusion.reason}\n".encode())
    return digest.hexdigest()[:16]
