"""Cut the study's 2-D lesion patch: the central axial lesion slice, a fixed physical field of
view around the lesion centroid, resampled to ``size`` x ``size``, intensities in [-1, 1].

Resampling in millimetres (not voxels) makes patches from sites with different voxel spacing
cover the same anatomy. Inputs are skull-stripped with zero background, as BraTS is (voxels
that are non-zero in any contrast count as brain), or come with a brain mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from glioma.data.lesion import central_axial_slice, in_plane_centroid
from glioma.data.nifti import SubjectVolumes
from glioma.data.records import MODALITIES
from glioma.errors import SubjectError
from glioma.names import PIXEL_RANGE

BACKGROUND = -1.0
MAX_RANGE_VOXELS = 100_000
# Robust range: these brain-voxel percentiles map to -1 and 1; outliers are clipped.
LOW_PERCENTILE, HIGH_PERCENTILE = 0.5, 99.5


@dataclass(frozen=True)
class PatchSpec:
    size: int  # pixels per side
    fov_mm: float  # side of the square field of view, in mm

    @property
    def pixel_mm(self) -> float:
        return self.fov_mm / self.size


@dataclass(frozen=True)
class Patch:
    pixels: np.ndarray  # (4, size, size) float32 in [-1, 1]
    slice_index: int  # axial slice in RAS voxel coordinates
    lesion_area_mm2: float  # lesion area on that slice
    spacing_mm: tuple[float, float, float]


def sampled(index: np.ndarray) -> np.ndarray:
    """A systematic sample of at most MAX_RANGE_VOXELS of ``index``."""
    if len(index) > MAX_RANGE_VOXELS:
        return index[:: int(np.ceil(len(index) / MAX_RANGE_VOXELS))]
    return index


def robust_ranges(
    images: np.ndarray, brain: np.ndarray, resampled: tuple[int, ...] = ()
) -> np.ndarray:
    """(C, 2) percentile ranges of each channel's brain voxels; refuses a flat channel.

    A channel resampled onto the mask's grid counts only the brain voxels it covers (non-zero):
    a thick-slice series may end before the brain does, and its zeros there are no intensity.
    Percentiles of a systematic sample of at most MAX_RANGE_VOXELS voxels: the 0.5th and
    99.5th percentiles of 10^5 values move patch pixels by < 1 % of the range (measured).
    """
    flat_images = images.reshape(len(images), -1)
    inside = brain.ravel()
    shared = sampled(np.flatnonzero(inside))
    ranges = np.zeros((len(images), 2))
    for channel, values in enumerate(flat_images):
        index = sampled(np.flatnonzero(inside & (values != 0))) if channel in resampled else shared
        if len(index):
            ranges[channel] = np.percentile(values[index], (LOW_PERCENTILE, HIGH_PERCENTILE))
    flat = np.flatnonzero(~(ranges[:, 1] > ranges[:, 0]))
    if len(flat):
        raise SubjectError(
            f"flat intensities inside the brain in channel {int(flat[0])}; cannot normalise"
        )
    return ranges


def normalise(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map [low, high] linearly onto [-1, 1] (``PIXEL_RANGE``) and clip."""
    return np.clip(2.0 * (values - low) / (high - low) - 1.0, *PIXEL_RANGE)


def refuse_uncovered(planes: np.ndarray, brain_slice: np.ndarray, z: int) -> None:
    """Every contrast must hold an image on the lesion's slice (a thick-slice series resampled
    onto the mask's grid may end before it)."""
    empty = [MODALITIES[c] for c in range(len(planes)) if not np.any(planes[c][brain_slice])]
    if empty:
        raise SubjectError(
            f"{', '.join(empty)} empty on the lesion's slice (z = {z}): the series does not "
            f"cover the lesion"
        )


def extract_patch(volumes: SubjectVolumes, lesion: np.ndarray, spec: PatchSpec) -> Patch:
    """The normalised 4-channel patch centred on the lesion's central axial slice."""
    brain = volumes.brain
    if not brain.any():
        raise SubjectError("no brain voxels: every contrast is zero everywhere")
    z = central_axial_slice(lesion)
    ci, cj = in_plane_centroid(lesion[:, :, z])
    spacing = volumes.spacing
    offsets_mm = (np.arange(spec.size) - (spec.size - 1) / 2.0) * spec.pixel_mm
    rows, cols = np.meshgrid(
        ci + offsets_mm / spacing[0], cj + offsets_mm / spacing[1], indexing="ij"
    )
    brain_slice = brain[:, :, z]
    refuse_uncovered(volumes.images[:, :, :, z], brain_slice, z)
    pixels = np.empty((4, spec.size, spec.size), dtype=np.float32)
    resampled = tuple(MODALITIES.index(name) for name in volumes.resampled)
    for channel, (low, high) in enumerate(robust_ranges(volumes.images, brain, resampled)):
        volume = volumes.images[channel]
        plane = np.where(brain_slice, normalise(volume[:, :, z], low, high), BACKGROUND)
        pixels[channel] = ndimage.map_coordinates(
            plane, [rows, cols], order=1, mode="constant", cval=BACKGROUND
        )
    area = float(lesion[:, :, z].sum() * spacing[0] * spacing[1])
    return Patch(pixels, z, area, tuple(float(s) for s in spacing))
