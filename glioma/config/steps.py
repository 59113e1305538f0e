"""Typed configs, one per step. Field defaults are the ``quick`` profile's unless it overrides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from glioma.config.profiles import PROFILES
from glioma.errors import ConfigError


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True)
class PrepareConfig:
    """Read one site (BraTS root, manifest CSV or the phantom) into dataset files."""

    step: ClassVar[str] = "prepare"

    source: str = "phantom"  # "phantom", a BraTS 2019 root folder, or a manifest CSV
    site: str = ""  # site name; default: phantom-a (phantom), brats (root), CSV stem (manifest)
    out_dir: str = ""  # default: <project>/data/prepared/<site>
    patch_size: int = 32
    fov_mm: float = 64.0  # square field of view around the lesion centroid, in millimetres
    seed: int = 0
    workers: int = 2
    strict: bool = False  # stop at the first bad subject instead of excluding it
    phantom_scale: float = 0.25  # fraction of the study's cohort sizes for the phantom
    phantom_dir: str = ""  # default: <project>/data/phantom
    profile: str = "quick"

    def validate(self) -> None:
        _check(self.profile in PROFILES, f"profile: unknown profile {self.profile!r}")
        _check(bool(self.source.strip()), "source: empty; give 'phantom', a folder or a CSV")
        _check(8 <= self.patch_size <= 512, f"patch_size: must be 8..512, got {self.patch_size}")
        _check(4.0 <= self.fov_mm <= 400.0, f"fov_mm: must be 4..400 mm, got {self.fov_mm}")
        _check(1 <= self.workers <= 64, f"workers: must be 1..64, got {self.workers}")
        _check(self.seed >= 0, f"seed: must be >= 0, got {self.seed}")
        _check(
            0.0 < self.phantom_scale <= 4.0,
            f"phantom_scale: must be in (0, 4], got {self.phantom_scale}",
        )
        if self.source == "phantom":
            _check(
                self.site in ("", "phantom-a", "phantom-b"),
                f"site: the phantom has sites phantom-a and phantom-b, got {self.site!r}",
            )


@dataclass(frozen=True)
class MainConfig:
    """The whole study. For now: generate the phantom and prepare both of its sites."""

    step: ClassVar[str] = "main"

    seed: int = 0
    workers: int = 2
    phantom_scale: float = 0.0  # 0: the profile's value (quick 0.25, paper 1.0)
    profile: str = "quick"

    def validate(self) -> None:
        _check(self.profile in PROFILES, f"profile: unknown profile {self.profile!r}")
        _check(1 <= self.workers <= 64, f"workers: must be 1..64, got {self.workers}")
        _check(
            0.0 <= self.phantom_scale <= 4.0,
            f"phantom_scale: must be in [0, 4], got {self.phantom_scale}",
        )
