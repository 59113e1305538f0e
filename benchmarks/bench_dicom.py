"""Benchmark DICOM series conversion: dcm2niix into the content-keyed cache, and a cache hit.

A 3-D series of ``--shape`` (default a BraTS-sized 240 x 240 x 155 at 1 mm) is written with
pydicom (the test suite's writer, ``tests/dicom_helpers.py``), converted once by
``glioma.data.dicom.convert_series``, then asked for again (a cache hit: the content hash of the
folder's files, no conversion). Prints figures; no target; exits 0 unless something fails.

    .venv/bin/python benchmarks/bench_dicom.py [--shape 240 240 155]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from dicom_helpers import write_series  # noqa: E402

from glioma.data.dicom import convert_series, series_key  # noqa: E402


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(240, 240, 155))
    shape = tuple(parser.parse_args(argv).shape)
    volume = np.random.default_rng(0).normal(500, 50, shape).astype(np.float32)
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    with tempfile.TemporaryDirectory() as tmp:
        series, cache = Path(tmp) / "series", Path(tmp) / "cache"
        write = timed(write_series, series, volume, affine)
        megabytes = sum(p.stat().st_size for p in series.iterdir()) / 1e6
        convert = timed(convert_series, series, cache)
        hit = timed(convert_series, series, cache)
        key = timed(series_key, series)
    print(f"series {'x'.join(map(str, shape))} int16: {megabytes:.1f} MB in {shape[2]} files")
    print(f"pydicom write {write:.2f} s | dcm2niix conversion {convert:.2f} s | "
          f"cache hit {hit:.3f} s (content hash {key:.3f} s) | hit / conversion "
          f"{hit / convert:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
