"""Label maps of a synthetic head: brain tissue classes and a glioma in BraTS labels.

Everything is drawn on a canonical RAS voxel grid centred on the head, in millimetres, so the
same subject can be rendered on any site's grid (spacing, field of view) and stored in any
orientation afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Brain tissue labels (the phantom's own; not written to disk).
BACKGROUND, CSF, GREY, WHITE = 0, 1, 2, 3
# BraTS 2019 segmentation labels.
NECROTIC_CORE, OEDEMA, ENHANCING = 1, 2, 4


@dataclass(frozen=True)
class Grid:
    """A RAS voxel grid: ``shape`` voxels of ``spacing`` mm, centred on the origin."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]

    def affine(self) -> np.ndarray:
        spacing = np.asarray(self.spacing, dtype=float)
        affine = np.diag([*spacing, 1.0])
        affine[:3, 3] = -spacing * (np.asarray(self.shape) - 1) / 2.0
        return affine

    def axes_mm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Open (broadcastable) world coordinates of the voxel centres, in mm."""
        origin = self.affine()[:3, 3]
        axes = [origin[i] + self.spacing[i] * np.arange(self.shape[i]) for i in range(3)]
        return np.ix_(*axes)


def _gaussian_weights(positions: np.ndarray, knots: np.ndarray, sigma: float) -> np.ndarray:
    weights = np.exp(-0.5 * ((positions[:, None] - knots[None, :]) / sigma) ** 2)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def smooth_field(rng: np.random.Generator, grid: Grid, scale_mm: float) -> np.ndarray:
    """Zero-mean, unit-variance random field with structures about ``scale_mm`` across.

    White noise on a lattice of knots ``scale_mm`` apart, spread by a separable Gaussian
    kernel (one small matrix product per axis): smooth by construction, and fast.
    """
    positions = [axis.ravel() for axis in grid.axes_mm()]
    knots = [np.arange(p[0] - scale_mm, p[-1] + 2 * scale_mm, scale_mm) for p in positions]
    field = rng.standard_normal([len(k) for k in knots]).astype(np.float32)
    for axis, (pos, knot) in enumerate(zip(positions, knots)):
        weights = _gaussian_weights(pos, knot, 0.6 * scale_mm)
        field = np.moveaxis(np.tensordot(weights, np.moveaxis(field, axis, 0), axes=1), 0, axis)
    return ((field - field.mean()) / (field.std() + 1e-8)).astype(np.float32)


@dataclass(frozen=True)
class Head:
    """Brain ellipsoid semi-axes (mm) and the smooth fields that shape its tissues."""

    semi_axes: tuple[float, float, float]


def sample_head(rng: np.random.Generator) -> Head:
    base = np.array([66.0, 82.0, 58.0])
    return Head(semi_axes=tuple(base * rng.uniform(0.92, 1.06, size=3)))


def _ellipsoid_radius(grid: Grid, semi_axes, centre=(0.0, 0.0, 0.0)) -> np.ndarray:
    x, y, z = grid.axes_mm()
    return np.sqrt(
        ((x - centre[0]) / semi_axes[0]) ** 2
        + ((y - centre[1]) / semi_axes[1]) ** 2
        + ((z - centre[2]) / semi_axes[2]) ** 2
    ).astype(np.float32)


def tissue_labels(grid: Grid, head: Head, rng: np.random.Generator) -> np.ndarray:
    """CSF / grey / white matter label map: a folded cortex around white matter and ventricles."""
    radius = _ellipsoid_radius(grid, head.semi_axes)
    outline = radius + 0.03 * smooth_field(rng, grid, 30.0)
    labels = np.zeros(grid.shape, dtype=np.uint8)
    brain = outline < 1.0
    labels[brain] = WHITE
    cortex_depth = 0.80 + 0.06 * smooth_field(rng, grid, 12.0)
    labels[brain & (outline > cortex_depth)] = GREY
    sulci = smooth_field(rng, grid, 6.0) > 1.3
    labels[brain & (outline > cortex_depth + 0.05) & sulci] = CSF
    a, b, c = head.semi_axes
    for side in (-1.0, 1.0):
        ventricle = _ellipsoid_radius(
            grid, (0.10 * a, 0.32 * b, 0.16 * c), (side * 0.09 * a, 0.02 * b, 0.10 * c)
        )
        labels[ventricle < 1.0] = CSF
    return labels


@dataclass(frozen=True)
class Tumour:
    """A glioma: where, how large and which compartments it has."""

    grade: str  # "LGG" or "HGG"
    centre_mm: tuple[float, float, float]
    radius_mm: float
    lobulation: float  # amplitude of the boundary's smooth distortion
    rim_fraction: float  # enhancing rim thickness relative to the radius (HGG)
    necrotic: bool  # HGG: necrotic centre inside the rim
    enhancing_focus: bool  # LGG: a small enhancing nodule
    oedema_mm: float  # oedema extent beyond the tumour boundary
    enhancement: float  # 0..1, how strongly the enhancing part takes up contrast


def sample_tumour(rng: np.random.Generator, grade: str, head: Head) -> Tumour:
    """Grade-dependent distributions that overlap, so grading is learnable but not trivial."""
    direction = rng.standard_normal(3)
    direction /= np.linalg.norm(direction)
    depth = rng.uniform(0.15, 0.55)
    centre = tuple(float(v) for v in direction * depth * np.asarray(head.semi_axes))
    if grade == "HGG":
        return Tumour(
            grade,
            centre,
            radius_mm=rng.uniform(9.0, 22.0),
            lobulation=rng.uniform(0.05, 0.25),
            rim_fraction=rng.uniform(0.2, 0.45),
            necrotic=bool(rng.random() < 0.7),
            enhancing_focus=False,
            oedema_mm=rng.uniform(3.0, 16.0),
            enhancement=float(rng.uniform(0.35, 1.0)),
        )
    return Tumour(
        grade,
        centre,
        radius_mm=rng.uniform(7.0, 18.0),
        lobulation=rng.uniform(0.0, 0.15),
        rim_fraction=0.0,
        necrotic=False,
        enhancing_focus=bool(rng.random() < 0.3),
        oedema_mm=rng.uniform(0.0, 6.0),
        enhancement=float(rng.uniform(0.2, 0.7)),
    )


def tumour_labels(
    grid: Grid, tumour: Tumour, brain: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """BraTS labels (1 core, 2 oedema, 4 enhancing) of ``tumour``, confined to the brain."""
    x, y, z = grid.axes_mm()
    cx, cy, cz = tumour.centre_mm
    distance = np.sqrt((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2).astype(np.float32)
    rho = distance / tumour.radius_mm + tumour.lobulation * smooth_field(
        rng, grid, tumour.radius_mm
    )
    seg = np.zeros(grid.shape, dtype=np.uint8)
    seg[rho < 1.0 + tumour.oedema_mm / tumour.radius_mm] = OEDEMA
    inside = rho < 1.0
    if tumour.grade == "HGG":
        seg[inside] = ENHANCING
        if tumour.necrotic:
            seg[rho < 1.0 - tumour.rim_fraction] = NECROTIC_CORE
    else:
        seg[inside] = NECROTIC_CORE
        if tumour.enhancing_focus:
            offset = rng.standard_normal(3)
            offset *= 0.5 * tumour.radius_mm / np.linalg.norm(offset)
            focus = np.sqrt(
                (x - cx - offset[0]) ** 2 + (y - cy - offset[1]) ** 2 + (z - cz - offset[2]) ** 2
            )
            seg[inside & (focus < 0.35 * tumour.radius_mm)] = ENHANCING
    seg[~brain] = 0
    return seg
