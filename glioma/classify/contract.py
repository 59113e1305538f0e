"""What the served ensemble takes, in one place (the server checks it, the client follows it).

A batch of prepare-normalised patches: float32 (N, 4, S, S), channels T1, T1ce, T2, FLAIR, values
in prepare's range [-1, 1], S the profile's patch size (32 quick, 96 paper). The ensemble
declares it as its MLflow input schema (a tensor (-1, 4, S, S) float32), so the MLflow UI shows
it and ``mlflow models serve`` checks shape and type before the model runs; the model checks
what a schema cannot say (finite values inside the range).

Two encodings reach it: JSON (``{"inputs": <nested lists>}``) for a few images, and for bulk
clients a Parquet table (``Content-Type: application/vnd.apache.parquet``) with one column whose
cells are the flattened float32 images: MLflow reads it with pyarrow and reshapes it to the
schema's shape. MLflow parses JSON at about 0.6 us per number, Parquet 64 images of 32 px in
3 ms (``docs/PERFORMANCE.md``).

Light on purpose (numpy only; pandas when encoding): the client imports it without torch.
"""

from __future__ import annotations

import io

import numpy as np

from glioma.names import CHANNELS, PIXEL_RANGE

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
PARQUET_COLUMN = "images"


def patch_shape_text(image_size: int) -> str:
    channels = ", ".join(CHANNELS)
    return f"(N, {len(CHANNELS)}, {image_size}, {image_size}) float32, channels {channels}"


def parquet_body(images: np.ndarray) -> bytes:
    """The bulk request body: one row per image, its float32 pixels flattened."""
    import pandas as pd

    flat = np.ascontiguousarray(images, dtype=np.float32).reshape(len(images), -1)
    buffer = io.BytesIO()
    pd.DataFrame({PARQUET_COLUMN: list(flat)}).to_parquet(buffer, index=False)
    return buffer.getvalue()


def range_problem(batch: np.ndarray) -> str | None:
    """Why the batch is not prepare-normalised patches, or None: the first image that holds a
    NaN, an infinity or a value outside ``PIXEL_RANGE``."""
    flat = batch.reshape(len(batch), -1)
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        return f"input holds NaN or infinite values (first in image {int(np.flatnonzero(bad)[0])})"
    low, high = PIXEL_RANGE
    outside = (flat.min(axis=1) < low) | (flat.max(axis=1) > high)
    if not outside.any():
        return None
    first = int(np.flatnonzero(outside)[0])
    return (
        f"input values must lie in prepare's range [{low:g}, {high:g}]; image {first} spans "
        f"[{flat[first].min():.4g}, {flat[first].max():.4g}]: send prepare-normalised patches "
        "(a prepare run's images.npy), not raw intensities"
    )
