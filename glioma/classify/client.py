"""``glioma predict``: post a prepare run's patches to a served ensemble and print each image's
HGG probability.

The images are what prepare wrote (``images.npy``, float32 (N, 4, S, S) in [-1, 1]); when the
prepare folder's ``subjects.csv`` lies beside them, each row names its subject and true grade.
They go in batches as Parquet (``glioma.classify.contract``); a refusal of the server is shown
as its own reason, in one line. Needs numpy, pandas and pyarrow; no torch, no MLflow. For a
prepare run of another machine, ``mlflow artifacts download -u runs:/<id>/dataset`` first.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from glioma.classify.contract import PARQUET_CONTENT_TYPE, parquet_body
from glioma.data.dataset import IMAGES, SUBJECTS
from glioma.errors import DataError, GliomaError
from glioma.fileio import atomic_path


class ServingError(GliomaError):
    """The server refused a request or could not be reached."""


def read_images(source: str):
    """The patches (N, 4, H, W) and, when ``subjects.csv`` lies beside them, its rows."""
    import pandas as pd

    path = Path(source)
    file = path / IMAGES if path.is_dir() else path
    if not file.is_file():
        raise DataError(f"{source}: no {IMAGES} there (give a prepare folder or its {IMAGES})")
    try:
        images = np.load(file, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError) as error:
        raise DataError(f"{file}: not a .npy array ({error})") from None
    if images.ndim != 4 or not np.issubdtype(images.dtype, np.floating):
        raise DataError(f"{file}: holds {images.dtype} {images.shape}, not float (N, 4, H, W)")
    subjects = file.parent / SUBJECTS
    rows = pd.read_csv(subjects) if subjects.is_file() else None
    if rows is not None and len(rows) != len(images):
        print(f"glioma predict: {subjects} has {len(rows)} rows for {len(images)} images; "
              "rows are not labelled with subjects", file=sys.stderr)  # fmt: skip
        rows = None
    return images, rows


def post(url: str, images: np.ndarray, *, timeout: float) -> list[dict]:
    """One request: the server's predictions, or a ServingError with its reason."""
    request = urllib.request.Request(
        invocations_url(url), data=parquet_body(images),
        headers={"Content-Type": PARQUET_CONTENT_TYPE},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())["predictions"]
    except urllib.error.HTTPError as error:
        raise ServingError(f"{url} answered {error.code}: {reason_of(error.read())}") from None
    except (urllib.error.URLError, OSError) as error:
        raise ServingError(f"{url}: cannot reach the server ({error})") from None


def invocations_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/invocations") else f"{url}/invocations"


def reason_of(body: bytes) -> str:
    """MLflow's error message without the echo of the data it received."""
    try:
        message = str(json.loads(body).get("message", body.decode(errors="replace")))
    except ValueError:
        message = body.decode(errors="replace")
    return message.rsplit("Error: ", 1)[-1].strip()


def predict(url: str, images: np.ndarray, *, batch_size: int, timeout: float = 600.0):
    """Every image's ``prob_hgg`` and ``label``, in batches, with a progress bar."""
    import pandas as pd
    from tqdm import tqdm

    rows = []
    for start in tqdm(range(0, len(images), batch_size), desc="predict", unit="batch"):
        rows += post(url, np.asarray(images[start : start + batch_size]), timeout=timeout)
    return pd.DataFrame(rows)


def predict_and_print(source: str, *, url: str, batch_size: int, out: str | None) -> None:
    """``glioma predict``: the table on stdout (subject, grade, prob_hgg, label), a summary line,
    and the table as CSV at ``out`` when given."""
    images, subjects = read_images(source)
    table = predict(url, images, batch_size=batch_size)
    if subjects is not None:
        table.insert(0, "subject_id", subjects["subject_id"].to_numpy())
        if "grade" in subjects:
            table.insert(1, "grade", subjects["grade"].to_numpy())
    print(table.to_string(index=False, float_format=lambda p: f"{p:.4f}"))
    summary = f"{len(table)} image(s): " + ", ".join(
        f"{n} {label}" for label, n in table["label"].value_counts().sort_index().items()
    )
    if "grade" in table:
        summary += f"; label = grade for {(table['label'] == table['grade']).mean():.1%}"
    print(summary)
    if out:
        with atomic_path(Path(out)) as tmp:
            table.to_csv(tmp, index=False)
