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


def load_canonical(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Voxels (scaled by scl_slope/inter) and affine of ``path`` in RAS orientation."""
    try:
        image = nib.load(str(path))
        image = _squeeze_trailing(image, path)
        image = nib.as_closest_canonical(image)
        data = image.get_fdata(dtype=np.float32)
    except SubjectError:
        raise
    except (OSError, EOFError, ValueError, zlib.error, nib.filebasedimages.ImageFileError) as exc:
        raise SubjectError(
            f"{path}: unreadable or truncated NIfTI ({type(exc).__name__}: {exc})"
        ) from None
    if data.ndim != 3:
        raise SubjectError(f"{path}: {data.ndim}-D data; expected a 3-D volume")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise SubjectError(f"{path}: {bad} NaN/inf voxel(s)")
    return data, image.affine


def load_subject(record: SubjectRecord) -> SubjectVolumes:
    """The four contrasts and the mask of ``record``; all must share shape and affine."""
    channels, affines = [], []
    for modality in MODALITIES:
        data, affine = load_canonical(record.paths[modality])
        channels.append(data)
        affines.append(affine)
    seg, seg_affine = load_canonical(record.paths["seg"])
    reference_path = record.paths[MODALITIES[0]]
    for name, data, affine in zip(
        (*MODALITIES[1:], "seg"), (*channels[1:], seg), (*affines[1:], seg_affine)
    ):
        path = record.paths[name]
        if data.shape != channels[0].shape:
            raise SubjectError(
                f"{path}: shape {data.shape} differs from {reference_path.name} {channels[0].shape}"
            )
        if not np.allclose(affine, affines[0], atol=AFFINE_TOLERANCE_MM):
            raise SubjectError(
                f"{path}: affine differs from {reference_path.name} (volumes not co-registered)"
            )
    if np.any(seg != np.round(seg)) or seg.min() < 0:
        raise SubjectError(
            f"{record.paths['seg']}: segmentation holds non-integer or negative labels"
        )
    return SubjectVolumes(np.stack(channels), seg.astype(np.int16), affines[0])
