"""Precision, recall, density and coverage of a synthetic set, in a feature space.

FID mixes two failures into one number: samples that look wrong (low fidelity) and samples
that miss part of the real variety (low diversity). Kynkäänniemi et al. 2019 separate them with
k-nearest-neighbour balls around each real (precision: share of synthetic samples inside some
real ball) and each synthetic feature (recall: share of real samples inside some synthetic
ball); Naeem et al. 2020's density (how many real balls a sample falls in, / k) and coverage
(share of real balls that hold a sample) are less sensitive to outliers. Computed by the
``prdc`` package (Naeem et al.'s reference code).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
from prdc import compute_prdc

PRDC = ("precision", "recall", "density", "coverage")


def prdc_metrics(real: np.ndarray, synthetic: np.ndarray, *, k: int = 5) -> dict[str, float]:
    """The four figures of ``synthetic`` against ``real`` features (N, D); NaN when a set has
    at most 2 rows (the k-NN balls are undefined). ``k`` is capped at the smaller set - 2
    (prdc counts each point as its own nearest neighbour)."""
    k = min(k, len(real) - 2, len(synthetic) - 2)
    if k < 1:
        return dict.fromkeys(PRDC, float("nan"))
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        values = compute_prdc(
            np.asarray(real, np.float32), np.asarray(synthetic, np.float32), nearest_k=k
        )
    return {name: float(values[name]) for name in PRDC}
