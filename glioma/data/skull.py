"""Is a volume skull-stripped? prepare assumes brain voxels on a zero background.

A skull-stripped volume (BraTS, HD-BET, SynthStrip output) is exactly zero around the brain,
and the brain does not reach the box's left/right and front/back faces (the field of view
holds the whole head). A head that is not stripped shows itself on those side faces: its
background is scanner noise (not zero), or scalp and face reach the border as bright voxels.
The top and bottom faces are left out on purpose: a stripped brain is often cut there by the
slab. Two cheap signs, no atlas:

- more than ``MAX_NONZERO_BORDER`` of the side-face voxels are non-zero (noise background);
- more than ``MAX_BRIGHT_BORDER`` of them are brighter than ``BRIGHT_OF_HIGH`` of the
  volume's 99th percentile (tissue at the border).
"""

from __future__ import annotations

import numpy as np

from glioma.errors import SubjectError

BRIGHT_OF_HIGH = 0.1
MAX_BRIGHT_BORDER = 0.02
MAX_NONZERO_BORDER = 0.5
SAMPLE = 200_000


def side_faces(data: np.ndarray) -> np.ndarray:
    """The voxels of the four faces across the first two (RAS: left-right, back-front) axes."""
    return np.concatenate([f.ravel() for f in (data[0], data[-1], data[:, 0], data[:, -1])])


def border_shares(data: np.ndarray) -> tuple[float, float]:
    """(non-zero share, bright share) of the side-face voxels."""
    border = side_faces(data)
    nonzero = float(np.mean(border != 0))
    if nonzero == 0.0:
        return 0.0, 0.0  # the stripped case, without a percentile
    values = data.ravel()[:: max(1, data.size // SAMPLE)]
    values = values[values != 0]
    if values.size == 0:
        return 0.0, 0.0
    threshold = BRIGHT_OF_HIGH * float(np.percentile(values, 99))
    return nonzero, float(np.mean(border > threshold))


def refuse_unstripped(path, data: np.ndarray) -> None:
    nonzero, bright = border_shares(data)
    if nonzero > MAX_NONZERO_BORDER or bright > MAX_BRIGHT_BORDER:
        sign = (
            f"{100 * bright:.0f} % of the border voxels are bright"
            if bright > MAX_BRIGHT_BORDER
            else f"background not zero on {100 * nonzero:.0f} % of the border"
        )
        raise SubjectError(
            f"{path}: not skull-stripped ({sign}); run a skull-stripping tool such as HD-BET "
            f"or SynthStrip first, or give a brain_mask column in the manifest "
            f"(--skull_check false for stripped volumes cropped to the brain)"
        )
