"""The phantom's two hospitals and how each writes a subject to disk.

Site A imitates BraTS 2019: a ``HGG/`` and ``LGG/`` tree, 2 mm isotropic voxels, LPS storage,
int16, full BraTS labels (1, 2, 4). Site B imitates a clinical cohort read through a manifest:
anisotropic 1.5 x 1.5 x 4.5 mm voxels, a permuted axis order, uint16 with scaling, a stronger
bias field, more noise, weaker contrast uptake, and a binary mask of the enhancing lesion
(the non-enhancing lesion where nothing enhances), as the study's clinical masks were drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.orientations import axcodes2ornt, ornt_transform

from glioma.data.phantom.anatomy import ENHANCING, Grid
from glioma.data.phantom.contrasts import MODALITIES, ScannerStyle

# Field of view of the phantom head, in mm (R-L, A-P, S-I).
HEAD_FOV_MM = (150.0, 180.0, 130.0)


@dataclass(frozen=True)
class SiteSpec:
    name: str
    layout: str  # "brats" (HGG/ LGG/ tree) or "manifest" (CSV)
    spacing: tuple[float, float, float]
    axcodes: tuple[str, str, str]  # storage orientation
    dtype: str
    scaled_storage: bool  # True: floats stored with scl_slope/inter; False: rounded integers
    mask_convention: str  # "brats" (1/2/4) or "enhancing" (binary lesion)
    counts: dict[str, int]  # study cohort sizes per grade, before scaling
    style: ScannerStyle

    def grid(self) -> Grid:
        shape = tuple(int(round(f / s)) for f, s in zip(HEAD_FOV_MM, self.spacing))
        return Grid(shape=shape, spacing=self.spacing)


SITES = {
    "phantom-a": SiteSpec(
        name="phantom-a",
        layout="brats",
        spacing=(2.0, 2.0, 2.0),
        axcodes=("L", "P", "S"),
        dtype="int16",
        scaled_storage=False,
        mask_convention="brats",
        counts={"LGG": 76, "HGG": 259},
        style=ScannerStyle(
            gamma=(1.0, 1.0, 1.0, 1.0),
            enhancement_scale=1.0,
            bias_strength=0.04,
            noise=0.02,
            slice_blur_voxels=0.0,
            intensity_scale=1000.0,
        ),
    ),
    "phantom-b": SiteSpec(
        name="phantom-b",
        layout="manifest",
        spacing=(1.5, 1.5, 4.5),
        axcodes=("P", "I", "R"),
        dtype="uint16",
        scaled_storage=True,
        mask_convention="enhancing",
        counts={"LGG": 37, "HGG": 187},
        style=ScannerStyle(
            gamma=(1.25, 0.85, 0.9, 1.3),
            enhancement_scale=0.7,
            bias_strength=0.12,
            noise=0.045,
            slice_blur_voxels=0.8,
            intensity_scale=2600.0,
        ),
    ),
}


def site_mask(seg: np.ndarray, convention: str) -> np.ndarray:
    """The segmentation as this site delivers it."""
    if convention == "brats":
        return seg.astype(np.uint8)
    enhancing = seg == ENHANCING
    lesion = enhancing if enhancing.any() else (seg == 1)
    return lesion.astype(np.uint8)


def write_volume(
    path: Path, data: np.ndarray, grid: Grid, *, axcodes, dtype: str, scaled: bool = False
) -> None:
    """Save a RAS array as NIfTI stored in orientation ``axcodes`` with on-disk ``dtype``.

    ``scaled``: let nibabel pick scl_slope/scl_inter for float data; else round to ``dtype``.
    """
    if not scaled:
        data = np.rint(data).astype(dtype)
    image = nib.Nifti1Image(data, grid.affine())
    image = image.as_reoriented(ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(axcodes)))
    image.set_data_dtype(np.dtype(dtype))
    image.header.set_xyzt_units("mm", "sec")
    nib.save(image, str(path))


def write_subject(
    folder: Path, subject_id: str, *, spec: SiteSpec, images: np.ndarray, seg: np.ndarray
) -> dict[str, Path]:
    """Write the four contrasts and the mask as ``<subject>_<modality>.nii.gz`` files."""
    folder.mkdir(parents=True, exist_ok=True)
    grid = spec.grid()
    paths: dict[str, Path] = {}
    for channel, modality in enumerate(MODALITIES):
        paths[modality] = folder / f"{subject_id}_{modality}.nii.gz"
        write_volume(
            paths[modality],
            images[channel],
            grid,
            axcodes=spec.axcodes,
            dtype=spec.dtype,
            scaled=spec.scaled_storage,
        )
    paths["seg"] = folder / f"{subject_id}_seg.nii.gz"
    mask = site_mask(seg, spec.mask_convention)
    write_volume(paths["seg"], mask, grid, axcodes=spec.axcodes, dtype="uint8")
    return paths
