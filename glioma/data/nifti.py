"""Read a subject's volumes onto one grid, in RAS, checking them on the way.

The reference grid is the segmentation's: the lesion is defined there, and clinical contrasts
often come on their own grids (``glioma.data.grids``). A DICOM series folder is converted
first (``glioma.data.dicom``). Every problem becomes a ``SubjectError`` whose message names
the file and the reason, so the caller can exclude the subject and go on.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from glioma.data import grids
from glioma.data.dicom import convert_series
from glioma.data.records import MODALITIES, SubjectRecord
from glioma.data.skull import refuse_unstripped
from glioma.errors import SubjectError

REFERENCE = "seg"
ROUND_OFF = 1e-6  # of the largest magnitude


@dataclass(frozen=True)
class ReadOptions:
    """How to read: ``strict_grids`` refuses contrasts off the segmentation's grid;
    ``skull_check`` refuses volumes that do not look skull-stripped (off for data cropped to
    the brain, whose brain reaches the box's sides)."""

    strict_grids: bool = False
    skull_check: bool = True
    dicom_cache: Path = Path("data/cache/dicom")


READ_DEFAULTS = ReadOptions()


@dataclass(frozen=True)
class Volume:
    data: np.ndarray  # RAS voxels (float32, or the stored integers when raw)
    affine: np.ndarray  # RAS voxel -> world (mm)
    orientation: str  # axis codes as stored, e.g. "LPS"
    dtype: str  # stored data type, e.g. "int16"
    sidecar: dict = field(default_factory=dict)  # BIDS / dcm2niix JSON, when there is one
    converted: str = ""  # DICOM cache key when the file came from a DICOM series


@dataclass(frozen=True)
class SubjectVolumes:
    images: np.ndarray  # (4, X, Y, Z) float32, channel order T1, T1ce, T2, FLAIR, RAS
    seg: np.ndarray  # (X, Y, Z) integer labels, RAS
    affine: np.ndarray  # RAS voxel -> world (mm), the segmentation's grid
    brain: np.ndarray  # (X, Y, Z) bool: the brain mask given, else non-zero in any contrast
    resampled: tuple[str, ...] = ()  # contrasts read onto the segmentation's grid
    provenance: dict[str, str] = field(default_factory=dict)  # subjects.csv columns

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


def _sidecar(path: Path) -> dict:
    """The BIDS JSON beside a NIfTI file (``x.nii.gz`` -> ``x.json``), if any."""
    stem = path.name.removesuffix(".gz").removesuffix(".nii")
    candidate = path.with_name(stem + ".json")
    try:
        return json.loads(candidate.read_text()) if candidate.is_file() else {}
    except (OSError, ValueError):
        return {}


def _read(path: Path, raw: bool) -> Volume:
    """Voxels and affine in RAS: nibabel's canonical reorientation applied to the array alone.

    Same result as ``nib.as_closest_canonical`` (flips and axis swaps, a view), without
    building a second image; ``raw`` keeps the stored integer type (masks) instead of float32.
    """
    image = _squeeze_trailing(nib.load(str(path)), path)
    ornt = nib.io_orientation(image.affine)
    data = np.asanyarray(image.dataobj) if raw else image.get_fdata(dtype=np.float32)
    if not raw and float(getattr(image.dataobj, "inter", 0.0) or 0.0) != 0.0:
        _zero_round_off(data)  # only an intercept can move a stored 0 off zero
    affine = image.affine @ nib.orientations.inv_ornt_aff(ornt, image.shape)
    return Volume(
        nib.orientations.apply_orientation(data, ornt),
        affine,
        "".join(nib.aff2axcodes(image.affine)),
        str(image.get_data_dtype()),
        _sidecar(path),
    )


def load_canonical(path: Path, raw: bool = False, *, options: ReadOptions = READ_DEFAULTS):
    """``Volume`` of ``path`` (a NIfTI file or a DICOM series folder) in RAS orientation."""
    converted = None
    if path.is_dir():
        converted = convert_series(path, options.dicom_cache)
    try:
        volume = _read(converted.path if converted else path, raw)
    except SubjectError:
        raise
    except (OSError, EOFError, ValueError, zlib.error, nib.filebasedimages.ImageFileError) as exc:
        raise SubjectError(
            f"{path}: unreadable or truncated NIfTI ({type(exc).__name__}: {exc})"
        ) from None
    data = volume.data
    if data.ndim != 3:
        raise SubjectError(f"{path}: {data.ndim}-D data; expected a 3-D volume")
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise SubjectError(f"{path}: {bad} NaN/inf voxel(s)")
    if converted:
        return dataclasses.replace(volume, sidecar=converted.sidecar, converted=converted.key)
    return volume


def _zero_round_off(data: np.ndarray) -> None:
    """Stored integers times scl_slope plus scl_inter (a DICOM RescaleIntercept) can leave the
    zero background at 1e-7 instead of 0; values within float round-off of zero are zero."""
    if data.size:
        data[np.abs(data) < ROUND_OFF * float(np.abs(data).max())] = 0.0


def _onto_seg(record, name, volume: Volume, seg: Volume, options: ReadOptions, order: int):
    """The volume's voxels on the segmentation's grid, and whether it had to be resampled."""
    if grids.same_grid(volume.data.shape, volume.affine, seg.data.shape, seg.affine):
        return volume.data, False
    path, reference = record.paths[name], record.paths[REFERENCE].name
    if options.strict_grids:
        raise SubjectError(
            f"{path}: shape {volume.data.shape} or affine differs from {reference} "
            f"{seg.data.shape} (--strict_grids)"
        )
    grids.refuse_apart(path, volume.data.shape, volume.affine, seg.data.shape, seg.affine,
                       reference)  # fmt: skip
    return grids.onto_grid(volume.data, volume.affine, seg.data.shape, seg.affine,
                           order=order), True  # fmt: skip


def _brain_mask(record: SubjectRecord, seg: Volume, options: ReadOptions) -> np.ndarray:
    mask = load_canonical(record.paths["brain_mask"], raw=True, options=options)
    values, _ = _onto_seg(record, "brain_mask", mask, seg, options, order=0)
    brain = values > 0
    if not brain.any():
        raise SubjectError(f"{record.paths['brain_mask']}: empty brain mask")
    return brain


def _nonzero_brain(images: np.ndarray, resampled: list[str]) -> np.ndarray:
    """Voxels non-zero in any contrast on the mask's own grid: a resampled series' trilinear
    halo at the brain's edge is not brain (all contrasts resampled: any of them)."""
    native = [c for c, m in enumerate(MODALITIES) if m not in resampled]
    if not resampled or not native:
        return (images != 0).any(axis=0)
    return (images[native] != 0).any(axis=0)


def _provenance(volumes: dict[str, Volume], resampled: list[str], has_mask: bool) -> dict:
    main = volumes["t1ce"]
    field_t = next(
        (v.sidecar["MagneticFieldStrength"] for v in volumes.values()
         if "MagneticFieldStrength" in v.sidecar), ""
    )  # fmt: skip
    return {
        "orientation": main.orientation,
        "dtype": main.dtype,
        "field_strength_t": field_t,
        "resampled": ",".join(resampled),
        "converted": ",".join(f"{m}:{v.converted}" for m, v in volumes.items() if v.converted),
        "brain_mask": "brain_mask column" if has_mask else "non-zero voxels",
    }


def load_subject(record: SubjectRecord, options: ReadOptions = READ_DEFAULTS) -> SubjectVolumes:
    """The four contrasts on the segmentation's grid, the mask, the brain and their provenance."""
    seg = load_canonical(record.paths[REFERENCE], raw=True, options=options)
    labels = seg.data
    if labels.dtype.kind == "f" and np.any(labels != np.round(labels)) or labels.min() < 0:
        raise SubjectError(
            f"{record.paths['seg']}: segmentation holds non-integer or negative labels"
        )
    has_mask = "brain_mask" in record.paths
    images = np.empty((len(MODALITIES), *labels.shape), dtype=np.float32)
    volumes, resampled = {}, []
    for channel, modality in enumerate(MODALITIES):
        volume = load_canonical(record.paths[modality], options=options)
        if options.skull_check and not has_mask:
            refuse_unstripped(record.paths[modality], volume.data)
        images[channel], moved = _onto_seg(record, modality, volume, seg, options, order=1)
        volumes[modality] = volume
        resampled += [modality] if moved else []
    brain = _brain_mask(record, seg, options) if has_mask else _nonzero_brain(images, resampled)
    for modality in resampled:
        channel = MODALITIES.index(modality)
        grids.refuse_empty(record.paths[modality], images[channel], brain,
                           record.paths[REFERENCE].name)  # fmt: skip
    return SubjectVolumes(
        images,
        np.ascontiguousarray(labels, dtype=np.int16),
        seg.affine,
        brain,
        tuple(resampled),
        _provenance(volumes, resampled, has_mask),
    )
