"""Write real DICOM MR series with pydicom from a NIfTI-style volume (array + RAS affine).

Each axial slice k of ``data[:, :, k]`` becomes one file; geometry follows the DICOM standard
(C.7.6.2): ImageOrientationPatient holds the row and column direction cosines in LPS,
ImagePositionPatient the LPS centre of the first pixel, PixelSpacing the row then column
spacing. Pixel values are stored as int16 through RescaleSlope/RescaleIntercept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _slice_dataset(common: dict, pixels: np.ndarray, position, number: int) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    for key, value in common.items():
        setattr(ds, key, value)
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<i2").tobytes()
    return ds


def write_series(
    folder: Path,
    data: np.ndarray,
    affine: np.ndarray,
    *,
    slope: float = 0.05,
    intercept: float = -10.0,
    series_number: int = 3,
    description: str = "t1ce",
    field_strength: float = 3.0,
    skip_slices: tuple[int, ...] = (),
    image_type: str = r"ORIGINAL\PRIMARY\M\ND",
    study_uid: str | None = None,
) -> Path:
    """One file per axial slice of ``data`` (RAS voxel axes i, j, k; ``affine`` voxel -> RAS)."""
    folder.mkdir(parents=True, exist_ok=True)
    lps = RAS_TO_LPS @ affine
    spacing = np.sqrt((lps[:3, :3] ** 2).sum(axis=0))
    row_cosine, column_cosine = lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]
    common = {
        "Modality": "MR",
        "PatientID": "PHANTOM",
        "PatientName": "Phantom^Test",
        "StudyInstanceUID": study_uid or generate_uid(),
        "SeriesInstanceUID": generate_uid(),
        "FrameOfReferenceUID": generate_uid(),
        "SeriesNumber": series_number,
        "SeriesDescription": description,
        "ImageType": image_type,
        "MagneticFieldStrength": field_strength,
        "Manufacturer": "PhantomCo",
        "ImageOrientationPatient": [f"{v:.8f}" for v in (*row_cosine, *column_cosine)],
        "PixelSpacing": [f"{spacing[1]:.6f}", f"{spacing[0]:.6f}"],
        "SliceThickness": f"{spacing[2]:.6f}",
        "RescaleSlope": f"{slope:g}",
        "RescaleIntercept": f"{intercept:g}",
    }
    stored = np.round((np.asarray(data, dtype=np.float64) - intercept) / slope)
    stored = np.clip(stored, -32768, 32767).astype(np.int16)
    for k in range(data.shape[2]):
        if k in skip_slices:
            continue
        position = (lps @ np.array([0.0, 0.0, k, 1.0]))[:3]
        # Pixel (row r, column c) is voxel (i=c, j=r): the array is the slice transposed.
        ds = _slice_dataset(common, stored[:, :, k].T, position, k + 1)
        ds.save_as(folder / f"IM{k:04d}.dcm", enforce_file_format=True)
    return folder


def oblique_affine(shape, spacing, degrees: float = 15.0) -> np.ndarray:
    """A RAS affine rotated about the S axis (and a little about R): an oblique acquisition."""
    a, b = np.radians(degrees), np.radians(degrees / 3)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ np.diag(spacing)
    affine[:3, 3] = -affine[:3, :3] @ ((np.asarray(shape) - 1) / 2)
    return affine
