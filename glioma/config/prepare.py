"""The ``prepare`` step's config: one site's input read into the study's dataset files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from glioma.config.fields import VOLATILE, StepConfig, check, param

PHANTOM_SITES = ("phantom-a", "phantom-b")


@dataclass(frozen=True, kw_only=True)
class PrepareConfig(StepConfig):
    """Read one site (BraTS root, manifest CSV or the phantom) into dataset files."""

    step: ClassVar[str] = "prepare"
    renamed: ClassVar[dict[str, str]] = {"source": "data"}

    data: str = param(
        "phantom", "what to read: 'phantom', a BraTS training root (2019-2023) or a manifest CSV"
    )
    site: str = param(
        "", "site name; default: phantom-a (phantom), brats (BraTS root), the CSV's stem"
    )
    out_dir: str = param(
        "",
        "local copy of the dataset files (default <project>/data/prepared/<site>)",
        role=VOLATILE,
    )
    patch_size: int = param(32, "patch side in pixels")
    fov_mm: float = param(64.0, "square field of view around the lesion centroid, in mm")
    workers: int = param(2, "worker processes that read subjects", role=VOLATILE)
    strict: bool = param(False, "stop at the first bad subject instead of excluding it")
    grades: str = param(
        "",
        "CSV of subject_id, grade for BraTS layouts without grades (2021+); default grades.csv "
        "in or beside the root",
    )
    strict_grids: bool = param(
        False, "exclude a contrast off the segmentation's grid instead of resampling it"
    )
    skull_check: bool = param(
        True,
        "exclude volumes that are not skull-stripped (false: volumes cropped to the brain)",
    )
    dicom_cache: str = param(
        "",
        "where DICOM series are converted to (default <project>/data/cache/dicom)",
        role=VOLATILE,
    )
    phantom_scale: float = param(0.25, "fraction of the study's cohort sizes for the phantom")
    phantom_dir: str = param(
        "", "where the phantom's NIfTI files go (default <project>/data/phantom)", role=VOLATILE
    )

    def check(self) -> None:
        check(bool(self.data.strip()), "data: empty; give 'phantom', a folder or a CSV")
        check(8 <= self.patch_size <= 512, f"patch_size: must be 8..512, got {self.patch_size}")
        check(4.0 <= self.fov_mm <= 400.0, f"fov_mm: must be 4..400 mm, got {self.fov_mm}")
        check(1 <= self.workers <= 64, f"workers: must be 1..64, got {self.workers}")
        check(
            0.0 < self.phantom_scale <= 4.0,
            f"phantom_scale: must be in (0, 4], got {self.phantom_scale}",
        )
        check_phantom_site(self.site, self.data)


def check_phantom_site(site: str, data: str) -> None:
    """A site other than the phantom's needs its data named: ``brats`` with the default source
    would read the phantom. Every step that declares a prepare lands here, under its own name
    for the data, so the message lists them."""
    if data == "phantom":
        check(
            site in ("", *PHANTOM_SITES),
            f"site: the phantom has sites phantom-a and phantom-b, got {site!r}; for your own "
            "data give its BraTS root or manifest CSV: --data (main: --data_a / --data_b; "
            "cross_eval: --source_data / --target_data)",
        )


# What a later step's config says about the prepare run it needs, when it has to declare one.
PREPARE_RUN_HELP = "a finished prepare run to read (default: reuse or run prepare)"
DATA_HELP = "what prepare reads when the site is not prepared yet (see prepare's data)"
