"""Fixtures that write small but real NIfTI subjects into temporary folders."""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # as glioma/__init__.py, before MLflow
# Under pytest-xdist the workers share the machine's cores: each worker (and what it starts)
# gets its share of threads, set before numpy and torch load. Two workers of two threads each on
# 2 cores took 192 s for the classifier and scoring tests against 138 s at one thread each.
if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))

import csv  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from nibabel.orientations import axcodes2ornt, ornt_transform  # noqa: E402

RAM_DISK = Path("/dev/shm")


def ram_temp_root() -> None:
    """Every test's folders (its MLflow store, data and models) on a RAM disk where one has room:
    a test's SQLite store commits after each write, and a commit on disk took 1.5 ms against
    0.1 ms in RAM here (the tiny study makes 3600 of them). Durability is no property a test
    checks; ``TMPDIR`` given by the user wins. Set before pytest makes its first temporary
    folder, so its workers and the subprocesses the tests start use it too."""
    if "TMPDIR" in os.environ or not RAM_DISK.is_dir() or not os.access(RAM_DISK, os.W_OK):
        return
    if shutil.disk_usage(RAM_DISK).free > 8 * 1024**3:
        os.environ["TMPDIR"] = str(RAM_DISK)
        tempfile.tempdir = None  # gettempdir() reads TMPDIR again


ram_temp_root()
# Tests never touch the network: no weights are downloaded (glioma.weights), and torch's hub
# cache is the session's own (a test finds there only what the suite put there).
os.environ["GLIOMA_OFFLINE"] = "1"
os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="glioma-torch-home-")

MODALITIES = ("t1", "t1ce", "t2", "flair")
SHAPE = (28, 30, 16)
SPACING = (2.0, 2.0, 3.0)

# The files that run whole studies and servers, the longest first (seconds summed over a
# file's tests in the suite of 2026-12-04): `make test` hands files to its two workers in
# collection order (--no-loadscope-reorder), so these start first and the short files fill in
# at the end (longest-processing-time-first); xdist's own order (most tests first) starts the
# 150 s study on Ray late. The three that run Ray (main, executors, tune) are spread so that
# they seldom run at once: two Ray clusters on 2 cores took the study 185 s instead of 150 s
# and the two-node test 66 s instead of 38 s. The rest keep pytest's order.
LONGEST_FIRST = (
    "test_main.py",  # 155, Ray
    "test_score_gen.py",  # 89
    "test_entrypoints.py",  # 89
    "test_executors.py",  # 113, Ray
    "test_ddpm_steps.py",  # 88
    "test_tune.py",  # 80, Ray
    "test_train_cls.py",  # 69
    "test_effects.py",  # 44
    "test_scale_out.py",  # 29
    "test_diffusion_training.py",  # 26
)


def pytest_collection_modifyitems(items) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own order


def pytest_unconfigure(config) -> None:
    """The machine's speed line under the suite's time (after it, so not counted in it), when
    the suite runs as ``make test`` runs it: its minutes move with the VM, and a figure without
    this line cannot be compared."""
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):
        return  # a pytest-xdist worker, or not the whole suite (make test runs it with -n)
    if config.option.collectonly:
        return
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from speed import speed_line

    print(f"\n{speed_line()} (after the suite)", flush=True)


def ras_affine(shape=SHAPE, spacing=SPACING) -> np.ndarray:
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = -np.asarray(spacing) * (np.asarray(shape) - 1) / 2
    return affine


def synthetic_subject(seed: int, grade: str = "HGG", shape=SHAPE, labels=(1, 2, 4)):
    """A brain ellipsoid with a spherical lesion: (4, X, Y, Z) images and BraTS labels, in RAS."""
    rng = np.random.default_rng(seed)
    x, y, z = np.ogrid[: shape[0], : shape[1], : shape[2]]
    centre = np.asarray(shape) / 2
    brain = ((x - centre[0]) / 12) ** 2 + ((y - centre[1]) / 13) ** 2 + (
        (z - centre[2]) / 7
    ) ** 2 < 1
    lc = centre + rng.integers(-3, 4, size=3) * np.array([1, 1, 0])
    r2 = (x - lc[0]) ** 2 + (y - lc[1]) ** 2 + (z - lc[2]) ** 2
    seg = np.zeros(shape, np.uint8)
    if 2 in labels:
        seg[r2 < 25] = 2
    if 1 in labels:
        seg[r2 < 12] = 1
    if 4 in labels:
        seg[(r2 < 12) & (r2 >= 4)] = 4
    seg[~brain] = 0
    base = np.array([600.0, 620.0, 400.0, 450.0]) * (1.3 if grade == "HGG" else 1.0)
    images = base[:, None, None, None] * (1 + 0.1 * rng.standard_normal((4, *shape)))
    images[:, seg > 0] *= 1.5
    images[:, ~brain] = 0
    return images.astype(np.float32), seg


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray, axcodes=("R", "A", "S")) -> Path:
    image = nib.Nifti1Image(data, affine)
    if tuple(axcodes) != ("R", "A", "S"):
        image = image.as_reoriented(ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(axcodes)))
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))
    return path


def write_subject(
    folder: Path,
    subject_id: str,
    images,
    seg,
    affine=None,
    axcodes=("R", "A", "S"),
    suffix=".nii.gz",
) -> dict[str, Path]:
    affine = ras_affine(seg.shape) if affine is None else affine
    paths = {
        m: write_nifti(folder / f"{subject_id}_{m}{suffix}", images[i], affine, axcodes)
        for i, m in enumerate(MODALITIES)
    }
    paths["seg"] = write_nifti(folder / f"{subject_id}_seg{suffix}", seg, affine, axcodes)
    return paths


def make_brats_root(root: Path, n_per_grade: int = 8, suffix=".nii.gz") -> Path:
    for g, grade in enumerate(("LGG", "HGG")):
        for i in range(n_per_grade):
            sid = f"Sub_{grade}_{i:03d}"
            images, seg = synthetic_subject(
                100 * g + i, grade, labels=(1, 2) if grade == "LGG" else (1, 2, 4)
            )
            write_subject(root / grade / sid, sid, images, seg, suffix=suffix)
    return root


def make_manifest(root: Path, n_per_grade: int = 8) -> Path:
    rows = []
    for g, grade in enumerate(("LGG", "HGG")):
        for i in range(n_per_grade):
            sid = f"Clin{grade}{i:03d}"
            images, seg = synthetic_subject(500 + 100 * g + i, grade)
            binary = (seg == 4) if (seg == 4).any() else seg > 0
            paths = write_subject(
                root / "scans" / sid, sid, images, binary.astype(np.uint8), axcodes=("P", "I", "R")
            )
            rows.append(
                {
                    "subject_id": sid,
                    "grade": grade,
                    **{k: str(p.relative_to(root)) for k, p in paths.items()},
                }
            )
    manifest = root / "clinic.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["subject_id", "grade", *MODALITIES, "seg"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


@pytest.fixture
def brats_root(tmp_path) -> Path:
    return make_brats_root(tmp_path / "brats")


@pytest.fixture
def manifest_csv(tmp_path) -> Path:
    return make_manifest(tmp_path / "clinic")


@pytest.fixture(scope="session")
def shared_phantom(tmp_path_factory) -> Path:
    """One phantom folder for the session: ``generate_cohort`` reuses it while seed and scale
    match (and rewrites it, under its lock, when a test asks for others)."""
    return tmp_path_factory.mktemp("phantom")


@pytest.fixture
def project_home(tmp_path, monkeypatch, shared_phantom) -> Path:
    """An empty project folder: the pinned MLflow store and data/ land here, not in the checkout.

    Its ``data/phantom`` links to the session's phantom: the NIfTI files are inputs, the same for
    every test of a seed and scale; every store, prepared dataset and cache stays per test.
    """
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    (home / "data" / "phantom").symlink_to(shared_phantom, target_is_directory=True)
    monkeypatch.setenv("GLIOMA_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.chdir(tmp_path)
    import mlflow

    yield home
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture
def tiny_prepared(project_home):
    """phantom-a at the smallest scale (8 subjects per grade), 16 px patches, prepared."""
    from glioma.config import PrepareConfig, build_config
    from glioma.pipeline.steps.prepare import run_prepare

    config = build_config(
        PrepareConfig, {"phantom_scale": "0.01", "patch_size": "16", "fov_mm": "64"}
    )
    return run_prepare(config)


@pytest.fixture
def tiny_profile(monkeypatch, tmp_path):
    """The ``tiny`` profile, here and in subprocesses (``GLIOMA_PROFILES``); ``quick`` too."""
    import json

    from step_helpers import TINY_PROFILE

    from glioma.config import PROFILES

    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"tiny": TINY_PROFILE}))
    monkeypatch.setenv("GLIOMA_PROFILES", str(path))
    monkeypatch.setitem(PROFILES, "quick", TINY_PROFILE)
    return "tiny"
