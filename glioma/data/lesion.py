"""Which voxels are "the lesion", and which axial slice and point to centre the patch on.

The study centres its patches on the enhancing lesion. Many BraTS LGG cases have no enhancing
label, so the choice falls back to the tumour core (labels 1 + 4), then the whole tumour
(any label), and the subject's row records which mask was used.
"""

from __future__ import annotations

import numpy as np

from glioma.errors import SubjectError

ENHANCING, NECROTIC_CORE, OEDEMA = 4, 1, 2
ENHANCING_2023 = 3


def choose_lesion_mask(seg: np.ndarray, convention: str) -> tuple[np.ndarray, str]:
    """The lesion mask and its kind (``enhancing``, ``core`` or ``whole``).

    ``convention``: ``brats`` reads labels 1/2/4; ``brats2023`` the 2023 labels (1 necrotic
    core, 2 oedema, 3 enhancing), mapped onto 1/2/4; ``auto`` reads a binary mask (labels
    {0, 1}) as the enhancing-lesion segmentation of a clinical cohort, and anything else as
    BraTS.
    """
    if convention == "brats2023":
        if np.any(seg == ENHANCING):
            raise SubjectError("segmentation holds label 4; BraTS 2023 uses 1, 2, 3")
        seg = np.where(seg == ENHANCING_2023, ENHANCING, seg)
    counts = np.bincount(seg.ravel().astype(np.intp, copy=False))  # O(n), unlike np.unique
    labels = set(np.flatnonzero(counts).tolist()) - {0}
    if not labels:
        raise SubjectError("empty segmentation: no lesion voxel")
    if convention == "auto" and labels == {1}:
        return seg == 1, "enhancing"
    unknown = labels - {ENHANCING, NECROTIC_CORE, OEDEMA}
    if unknown:
        raise SubjectError(f"segmentation holds label(s) {sorted(unknown)}; BraTS uses 1, 2, 4")
    if ENHANCING in labels:
        return seg == ENHANCING, "enhancing"
    if NECROTIC_CORE in labels:
        return (seg == NECROTIC_CORE) | (seg == ENHANCING), "core"
    return seg > 0, "whole"


def central_axial_slice(mask: np.ndarray) -> int:
    """The lesion slice nearest the middle of the lesion's axial extent (RAS: last axis)."""
    slices = np.flatnonzero(mask.any(axis=(0, 1)))
    middle = (slices[0] + slices[-1]) / 2.0
    return int(slices[np.argmin(np.abs(slices - middle))])


def in_plane_centroid(mask_slice: np.ndarray) -> tuple[float, float]:
    """Centroid (voxel coordinates) of the lesion on one axial slice."""
    i, j = np.nonzero(mask_slice)
    return float(i.mean()), float(j.mean())
