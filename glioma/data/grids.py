"""Contrasts on their own grids: resample onto the segmentation's grid through the affines.

Clinical T2/FLAIR are often 4-6 mm axial beside a 1 mm 3-D T1ce, co-registered in scanner
space but not resampled. Both affines map voxels to the same world (scanner) coordinates, so
the value at a segmentation voxel is read from the contrast at the same world point
(``nibabel.processing.resample_from_to``: trilinear for images, nearest for labels, zero
outside the contrast's extent). Volumes whose world boxes do not meet were not acquired
together (or carry a wrong affine): those are refused, with the gap in millimetres.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
from nibabel.processing import resample_from_to

from glioma.errors import SubjectError

AFFINE_TOLERANCE_MM = 1e-3


def same_grid(shape, affine, ref_shape, ref_affine) -> bool:
    return tuple(shape) == tuple(ref_shape) and np.allclose(
        affine, ref_affine, atol=AFFINE_TOLERANCE_MM
    )


def world_box(shape, affine) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper world corners (mm) of the volume's voxel centres."""
    corners = np.array(np.meshgrid(*[(0, n - 1) for n in shape], indexing="ij")).reshape(3, -1)
    world = affine[:3, :3] @ corners + affine[:3, 3:4]
    return world.min(axis=1), world.max(axis=1)


def gap_mm(shape, affine, ref_shape, ref_affine) -> float:
    """Distance between the two volumes' world boxes; 0 when they overlap."""
    low, high = world_box(shape, affine)
    ref_low, ref_high = world_box(ref_shape, ref_affine)
    apart = np.maximum(0.0, np.maximum(low - ref_high, ref_low - high))
    return float(np.linalg.norm(apart))


def onto_grid(data: np.ndarray, affine: np.ndarray, ref_shape, ref_affine, *, order: int):
    """``data`` resampled onto the reference grid (order 1 for images, 0 for labels)."""
    image = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
    moved = resample_from_to(image, (tuple(ref_shape), ref_affine), order=order, cval=0.0)
    return np.asarray(moved.dataobj, dtype=np.float32)


def refuse_apart(path, shape, affine, ref_shape, ref_affine, reference: str) -> None:
    gap = gap_mm(shape, affine, ref_shape, ref_affine)
    if gap > 0:
        raise SubjectError(
            f"{path}: no overlap with {reference} in world space ({gap:.1f} mm apart); "
            f"the volumes are not co-registered"
        )


def refuse_empty(path, values: np.ndarray, inside: np.ndarray, reference: str) -> None:
    """A resampled contrast must hold an image inside the brain, not zeros or one value."""
    within = values[inside]
    if within.size == 0 or not np.any(within):
        raise SubjectError(f"{path}: empty inside the brain after resampling onto {reference}")
    if within.min() == within.max():
        raise SubjectError(
            f"{path}: constant ({within.min():g}) inside the brain after resampling onto "
            f"{reference}"
        )
