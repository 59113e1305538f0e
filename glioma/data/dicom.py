"""DICOM series folders -> NIfTI through dcm2niix, into a cache keyed by the series' content.

dcm2niix (the ``dcm2niix`` package on PyPI ships the converter) is the reference converter:
it reads ImagePositionPatient/ImageOrientationPatient/PixelSpacing into the affine, keeps
RescaleSlope/Intercept as ``scl_slope``/``scl_inter`` and writes a BIDS sidecar with the
scanner's field strength. A folder that does not give exactly one 3-D volume is refused with
dcm2niix's own words: several series in one folder, missing slices (dcm2niix equalises the
gap and writes an extra ``_Eq`` volume), or only 2-D/localiser/derived images (``-i y``
ignores those, so nothing is written).

The cache key is a hash of the folder's file names and bytes: the same series converts once,
an edited series converts again, and two folders holding the same series share one entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from glioma.errors import DataError, SubjectError

try:  # the PyPI package that ships the converter binary
    import dcm2niix as dcm2niix_package
except ImportError:  # pragma: no cover - a dependency; PATH may still have one
    dcm2niix_package = None

ARGS = ("-z", "y", "-b", "y", "-i", "y", "-f", "series_%s", "-w", "1")
NOISE = ("Chris Rorden", "Conversion required", "Patient Position", "Found ", "Convert ")
VOLUME, SIDECAR = "volume.nii.gz", "volume.json"


@dataclass(frozen=True)
class Conversion:
    path: Path  # the NIfTI volume in the cache
    key: str  # content hash of the series folder
    sidecar: dict  # dcm2niix's BIDS sidecar (MagneticFieldStrength, Manufacturer, ...)


def executable() -> str:
    """dcm2niix from the installed package, else from PATH."""
    path = str(getattr(dcm2niix_package, "bin_path", "") or shutil.which("dcm2niix") or "")
    if not path or not os.access(path, os.X_OK):
        raise DataError("dcm2niix not found: pip install dcm2niix (needed for DICOM series)")
    return path


def series_key(folder: Path) -> str:
    """Hash of every file's relative name and bytes under ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:20]


def _said(log: str) -> str:
    """dcm2niix's informative lines (errors and warnings), without its banner and timings."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith(NOISE)]
    return "; ".join(dict.fromkeys(kept)) or "no message"


def _one_volume(folder: Path, out: Path, log: str) -> Path:
    volumes = sorted(out.glob("*.nii.gz"))
    if not volumes:
        raise SubjectError(
            f"{folder}: dcm2niix made no volume (2-D, localiser or derived images are ignored; "
            f"it said: {_said(log)})"
        )
    if any("_Eq" in v.name for v in volumes):
        raise SubjectError(f"{folder}: missing or unevenly spaced slices (dcm2niix: {_said(log)})")
    if len(volumes) > 1:
        names = ", ".join(v.name.removesuffix(".nii.gz") for v in volumes)
        raise SubjectError(
            f"{folder}: {len(volumes)} series in one folder ({names}); give one series per folder"
        )
    return volumes[0]


def _convert(folder: Path, target: Path) -> None:
    """Run dcm2niix into a temporary folder; move the one volume and sidecar to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".convert-") as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        done = subprocess.run(
            [executable(), *ARGS, "-o", str(out), str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        log = done.stdout + done.stderr
        if done.returncode != 0:
            raise SubjectError(f"{folder}: dcm2niix failed ({done.returncode}): {_said(log)}")
        volume = _one_volume(folder, out, log)
        staged = Path(tmp) / "entry"
        staged.mkdir()
        volume.rename(staged / VOLUME)
        sidecar = volume.with_name(volume.name.removesuffix(".nii.gz") + ".json")
        (staged / SIDECAR).write_text(sidecar.read_text() if sidecar.is_file() else "{}")
        (staged / "dcm2niix.log").write_text(log)
        try:
            staged.rename(target)  # atomic; another worker may have won the race
        except OSError:
            if not (target / VOLUME).is_file():
                raise


def convert_series(folder: str | Path, cache: str | Path) -> Conversion:
    """The NIfTI of DICOM series ``folder``, converted once into ``cache/<key>/``."""
    folder = Path(folder)
    files = [p for p in folder.rglob("*") if p.is_file()]
    if not files:
        raise SubjectError(f"{folder}: empty DICOM folder")
    key = series_key(folder)
    target = Path(cache) / key
    if not (target / VOLUME).is_file():
        _convert(folder, target)
    sidecar = json.loads((target / SIDECAR).read_text() or "{}")
    return Conversion(target / VOLUME, key, sidecar)
