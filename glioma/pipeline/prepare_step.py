"""The ``prepare`` step as an MLflow run: resolve the input, prepare the site, log everything."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow

from glioma.config import PrepareConfig, as_params
from glioma.data.patches import PatchSpec
from glioma.data.phantom import generate_cohort
from glioma.data.prepare import prepare_site
from glioma.data.preview import preview_figure
from glioma.data.records import default_site_name, source_fingerprint
from glioma.tracking import code_version, project_root, step_run

DATASET_ARTIFACT = "dataset"


@dataclass(frozen=True)
class PrepareOutput:
    run_id: str
    site: str
    out_dir: Path
    data_hash: str


def resolve_input(config: PrepareConfig) -> tuple[Path, str]:
    """The file or folder to read and the site name; generates the phantom when asked for."""
    if config.source == "phantom":
        site = config.site or "phantom-a"
        root = (
            Path(config.phantom_dir) if config.phantom_dir else project_root() / "data" / "phantom"
        )
        inputs = generate_cohort(root, config.seed, config.phantom_scale, config.workers)
        return inputs[site], site
    source = Path(config.source).expanduser()
    return source, config.site or default_site_name(source)


def input_fingerprint(config: PrepareConfig) -> str:
    """What must match for a finished prepare run to stand for this one, beyond its parameters.

    The phantom is generated from the parameters alone; a user's data can change on disk.
    """
    if config.source == "phantom":
        return "phantom"
    return source_fingerprint(Path(config.source).expanduser())


def log_dataset_input(subjects, folder: Path, name: str) -> None:
    """Record the prepared table as the run's MLflow dataset input (schema, digest, source)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # integer-column schema hint
        dataset = mlflow.data.from_pandas(
            subjects, source=folder.resolve().as_uri(), name=name, targets="label"
        )
        mlflow.log_input(dataset, context="prepared")


def run_prepare(config: PrepareConfig) -> PrepareOutput:
    """Prepare one site; one MLflow run with the dataset files, preview and exclusions."""
    source, site = resolve_input(config)
    out_dir = (
        Path(config.out_dir) if config.out_dir else project_root() / "data" / "prepared" / site
    )
    fingerprint = input_fingerprint(config)
    with step_run("prepare", as_params(config), site=site, profile=config.profile) as run:
        mlflow.log_param("input_path", str(source))
        mlflow.set_tag("source_fingerprint", fingerprint)
        result = prepare_site(
            source,
            site,
            out_dir,
            PatchSpec(config.patch_size, config.fov_mm),
            config.seed,
            config.workers,
            config.strict,
            extra_meta={"code_version": code_version()},
        )
        subjects = result.dataset.subjects
        mlflow.set_tag("data_hash", result.dataset.data_hash)
        mlflow.log_metrics(
            {
                "n_subjects": len(subjects),
                "n_lgg": int((subjects["grade"] == "LGG").sum()),
                "n_hgg": int((subjects["grade"] == "HGG").sum()),
                "n_excluded": len(result.exclusions),
                "n_test": len(result.splits["test"]),
                "seconds": result.seconds,
                "subjects_per_s": len(subjects) / max(result.seconds, 1e-9),
            }
        )
        mlflow.log_artifacts(str(out_dir), DATASET_ARTIFACT)
        log_dataset_input(subjects, out_dir, f"{site}-patches")
        figure = preview_figure(result.dataset.images, subjects, seed=config.seed)
        mlflow.log_figure(figure, "preview.png")
        plt.close(figure)
        print(
            f"prepare {site}: {len(subjects)} subjects ({len(result.exclusions)} excluded) "
            f"-> {out_dir}  [run {run.info.run_id}]"
        )
        return PrepareOutput(run.info.run_id, site, out_dir, result.dataset.data_hash)
