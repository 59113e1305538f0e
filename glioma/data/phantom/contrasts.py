"""Render T1, T1ce, T2 and FLAIR from label maps, then apply what a scanner and site add.

Relative intensities follow the usual appearance of brain MRI: white matter brighter than grey
on T1, CSF bright on T2 and dark on FLAIR, oedema bright on T2/FLAIR, an enhancing rim bright on
T1ce only, necrosis dark on T1 and bright on T2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from glioma.data.phantom.anatomy import (
    CSF,
    ENHANCING,
    GREY,
    NECROTIC_CORE,
    OEDEMA,
    WHITE,
    Grid,
    Tumour,
    smooth_field,
)

MODALITIES = ("t1", "t1ce", "t2", "flair")

# Mean intensity per tissue, in channel order T1, T1ce, T2, FLAIR (arbitrary units ~ 0..1).
TISSUE_INTENSITY = {
    CSF: (0.20, 0.22, 1.00, 0.10),
    GREY: (0.58, 0.60, 0.62, 0.62),
    WHITE: (0.82, 0.83, 0.40, 0.48),
}
LESION_INTENSITY = {
    OEDEMA: (0.55, 0.56, 0.82, 0.88),
    NECROTIC_CORE: (0.38, 0.40, 0.92, 0.72),
    ENHANCING: (0.58, 0.60, 0.70, 0.80),
}
# Extra T1ce signal of the enhancing compartment at full enhancement.
ENHANCEMENT_GAIN = 0.75


@dataclass(frozen=True)
class ScannerStyle:
    """What a site's scanner and protocol do to the image."""

    gamma: tuple[float, float, float, float]  # per-channel contrast curve
    enhancement_scale: float  # contrast agent uptake relative to the reference site
    bias_strength: float  # amplitude of the multiplicative low-frequency bias field
    noise: float  # noise standard deviation relative to white matter on T1
    slice_blur_voxels: float  # through-plane partial volume (thick slices), sigma in voxels
    intensity_scale: float  # stored value of intensity 1.0


def render_contrasts(
    grid: Grid,
    tissue: np.ndarray,
    seg: np.ndarray,
    tumour: Tumour,
    *,
    style: ScannerStyle,
    rng: np.random.Generator,
) -> np.ndarray:
    """Four co-registered contrasts, shape (4, *grid.shape), zero outside the brain."""
    brain = tissue > 0
    images = np.zeros((4, *grid.shape), dtype=np.float32)
    # Per-subject variation of every compartment's contrast, so the grades overlap.
    shift = rng.normal(1.0, 0.06, size=(len(TISSUE_INTENSITY) + len(LESION_INTENSITY), 4))
    compartments = [(tissue == label) & (seg == 0) for label in TISSUE_INTENSITY]
    compartments += [(seg == label) & brain for label in LESION_INTENSITY]
    means = [*TISSUE_INTENSITY.values(), *LESION_INTENSITY.values()]
    for where, mean, row in zip(compartments, means, shift):
        images[:, where] = (np.asarray(mean) * row)[:, None]
    enhancing = (seg == ENHANCING) & brain
    images[1, enhancing] += ENHANCEMENT_GAIN * tumour.enhancement * style.enhancement_scale
    texture = smooth_field(rng, grid, 4.0)
    images *= 1.0 + 0.05 * texture[None]
    heterogeneity = smooth_field(rng, grid, 3.0)
    lesion = (seg > 0) & brain
    images[:, lesion] *= 1.0 + 0.08 * heterogeneity[lesion]
    images = ndimage.gaussian_filter(images, sigma=(0, 0.6, 0.6, 0.6 + style.slice_blur_voxels))
    return _scanner(images, brain, grid, style, rng)


def _scanner(images, brain, grid, style, rng) -> np.ndarray:
    """Contrast curve, bias field, noise and scaling; background stays 0 (skull-stripped)."""
    gamma = np.asarray(style.gamma, dtype=np.float32)[:, None, None, None]
    images = np.clip(images, 0.0, None) ** gamma
    bias = 1.0 + style.bias_strength * smooth_field(rng, grid, 120.0)
    images *= bias[None]
    images += style.noise * rng.standard_normal(images.shape).astype(np.float32)
    images = np.clip(images, 0.0, None) * style.intensity_scale
    images[:, ~brain] = 0.0
    return images.astype(np.float32)
