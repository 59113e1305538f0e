"""Read a subject's NIfTI volumes into one canonical (RAS) orientation, checking them on the way.

Every problem becomes a ``SubjectError`` whose message names the file and the reason, so the
caller can exclude the subject and go on.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from glioma.data.records import MODALITIES, SubjectRecord
from glioma.errors import SubjectError

AFFINE_TOLERANCE_MM = 1e-3


@dataclass(frozen=True)
class SubjectVolumes:
    images: np.ndarray  # (4, X, Y, Z) float32, channel order T1, T1ce, T2, FLAIR, RAS
    seg: np.ndarray  # (X, Y, Z) integer labels, RAS
    affine: np.ndarray  # RAS voxel -> world (mm)

    @property
    def spacing(self) -> np.ndarray:
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))


def _squeeze_trailing(image: nib.Nifti1Image, path: Path) -> nib.Nifti1Image:
    """Accept (X, Y, Z, 1); refuse any real 4-D volume (time series, stacked channels)."""
    shape = image.shape
    if len(shape) == 3:
        return image
    if len(shape) > 3 and all(n == 1 for n in shape[3:]):
        return image.slicer[(slice(None),) * 3 + (0,) * (len(shape) - 3)]
    raise SubjectError(f"{path}: {len(shape)}-D volume of shape {shape}; expected 3-D")


def _read(path: Path, raw: bool) -> tuple[np.ndarray, np.ndarray]:
    """Voxels and affine in RAS: nibabel's canonical reorientation applied to the array alone.

    Same result as ``nib.as_closest_canonical`` (flips and axis swaps, a view), without
    building a second image; ``raw`` keeps the stored integer type (masks) instead of float32.
    """
    image = _squeeze_trailing(nib.load(str(path)), path)
    ornt = nib.io_orientation(image.affine)
    data = np.asanyarray(image.dataobj) if raw else image.get_fdata(dtype=np.float32)
    affine = image.affine @ nib.orientations.inv_ornt_aff(ornt, image.shape)
    return nib.orientations.apply_orientation(data, ornt), affine


def load_canonical(path: Path, raw: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Voxels (scaled by scl_slope/inter) and affine of ``path`` in RAS orientation."""
    try:
        data, affine = _read(path, raw)
    except SubjectError:
        raise
    except (OSError, EOFError, ValueError, zlib.error, nib.filebasedimages.ImageFileError) as exc:
        raise SubjectError(
            f"{path}: unreadable or truncated NIfTI ({type(exc).__name__}: {exc})"
        ) from None
    if data.ndim != 3:
        raise SubjectError(f"{path}: {data.ndim}-D data; expected a 3-D volume")
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise SubjectError(f"{path}: {bad} NaN/inf voxel(s)")
    return data, affine


def load_subject(record: SubjectRecord) -> SubjectVolumes:
    """The four contrasts and the mask of ``record``; all must share shape and affine."""
    first, reference = load_canonical(record.paths[MODALITIES[0]])
    images = np.empty((len(MODALITIES), *first.shape), dtype=np.float32)
    images[0] = first
    for channel, modality in enumerate(MODALITIES[1:], start=1):
        data, affine = load_canonical(record.paths[modality])
        _check_aligned(record, modality, data.shape, affine, first.shape, reference)
        images[channel] = data
    seg, affine = load_canonical(record.paths["seg"], raw=True)
    _check_aligned(record, "seg", seg.shape, affine, first.shape, reference)
    if seg.dtype.kind == "f" and np.any(seg != np.round(seg)) or seg.min() < 0:
        raise SubjectError(
            f"{record.paths['seg']}: segmentation holds non-integer or negative labels"
        )
    return SubjectVolumes(images, np.ascontiguousarray(seg, dtype=np.int16), reference)


def _check_aligned(record: SubjectRecord, name: str, shape, affine, ref_shape, ref_affine) -> None:
    path, reference = record.paths[name], record.paths[MODALITIES[0]].name
    if shape != ref_shape:
        raise SubjectError(f"{path}: shape {shape} differs from {reference} {ref_shape}")
    if not np.allclose(affine, ref_affine, atol=AFFINE_TOLERANCE_MM):
        raise SubjectError(f"{path}: affine differs from {reference} (volumes not co-registered)")
