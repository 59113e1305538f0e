"""``prepare``: resolve the input, prepare the site, log the dataset files, preview and counts.

Also the prepare node every other step starts from (``prepare_for``: declared, or the finished
run the user names) and the check that a site can be trained on, before anything runs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow

from glioma.config import PrepareConfig, build_config
from glioma.data.card import data_card_figure
from glioma.data.nifti import ReadOptions
from glioma.data.patches import PatchSpec
from glioma.data.phantom import generate_cohort
from glioma.data.prepare import PrepareResult, prepare_site
from glioma.data.preview import preview_figure
from glioma.data.sources import default_site_name, discover, source_fingerprint
from glioma.data.splits import too_small, training_refused
from glioma.names import DATA_CARD, DATASET_ARTIFACT
from glioma.pipeline.given import given
from glioma.pipeline.graph import GIVEN, Node, node
from glioma.pipeline.invoke import run_target
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.spec import NoInputs, StepSpec
from glioma.tracking import code_fingerprint, project_root
from glioma.tracking.datasets import DataRead, log_reads, source_of

NOTES_SHOWN = 20  # discovery's console notes (layout, quirks); the rest are counted


def site_name(config: PrepareConfig) -> str:
    """The site a config prepares, known before anything is read."""
    if config.data == "phantom":
        return config.site or "phantom-a"
    return config.site or default_site_name(Path(config.data).expanduser())


def data_fingerprint(config: PrepareConfig) -> str:
    """What must match, beyond the parameters, for a finished prepare run to stand for this one.

    The phantom is generated from the parameters (and the code) alone; a user's data can change
    on disk: path, size and modification time of every file it reads.
    """
    if config.data == "phantom":
        return "phantom"
    return source_fingerprint(Path(config.data).expanduser(), grades=config.grades or None)


def resolve_input(config: PrepareConfig) -> Path:
    """The file or folder to read; generates (or reuses) the phantom when asked for."""
    if config.data != "phantom":
        return Path(config.data).expanduser()
    root = Path(config.phantom_dir) if config.phantom_dir else project_root() / "data" / "phantom"
    return generate_cohort(
        root, seed=config.seed, scale=config.phantom_scale, workers=config.workers
    )[site_name(config)]


def out_dir(config: PrepareConfig) -> Path:
    default = project_root() / "data" / "prepared" / site_name(config)
    return Path(config.out_dir) if config.out_dir else default


def read_options(config: PrepareConfig) -> ReadOptions:
    cache = config.dicom_cache or project_root() / "data" / "cache" / "dicom"
    return ReadOptions(
        strict_grids=config.strict_grids,
        skull_check=config.skull_check,
        dicom_cache=Path(cache).expanduser(),
    )


def compute(config: PrepareConfig) -> tuple[Path, PrepareResult]:
    """Read the site and write its dataset files; no MLflow here."""
    source = resolve_input(config)
    result = prepare_site(
        source,
        site_name(config),
        out_dir(config),
        PatchSpec(config.patch_size, config.fov_mm),
        seed=config.seed,
        workers=config.workers,
        strict=config.strict,
        options=read_options(config),
        grades=config.grades or None,
        extra_meta={"code_fingerprint": code_fingerprint()},
    )
    return source, result


def record(config: PrepareConfig, source: Path, result: PrepareResult) -> None:
    """The one place prepare logs: dataset files, dataset input, counts, preview."""
    subjects, site = result.dataset.subjects, site_name(config)
    mlflow.log_param("input_path", str(source))
    mlflow.set_tags(
        {
            "data_hash": result.dataset.data_hash,
            "source_fingerprint": data_fingerprint(config),
            "evaluation_only": str(result.evaluation_only).lower(),
        }
    )
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
    mlflow.log_artifacts(str(out_dir(config)), DATASET_ARTIFACT)
    location = f"{mlflow.active_run().info.artifact_uri}/{DATASET_ARTIFACT}"
    source = source_of(location, out_dir(config))
    log_reads([DataRead(subjects, result.dataset.meta, "prepared", source)])
    figure = preview_figure(result.dataset.images, subjects, seed=config.seed)
    mlflow.log_figure(figure, "preview.png")
    plt.close(figure)
    card = data_card_figure(result.dataset, result.exclusions)
    mlflow.log_figure(card, DATA_CARD)
    plt.close(card)
    for note in result.notes[:NOTES_SHOWN]:
        print(f"prepare {site}: {note}")
    if len(result.notes) > NOTES_SHOWN:
        print(f"prepare {site}: ... and {len(result.notes) - NOTES_SHOWN} more notes like these")
    print(
        f"prepare {site}: {len(subjects)} subjects ({len(result.exclusions)} excluded) "
        f"-> {out_dir(config)}"
    )
    if result.evaluation_only:
        print(
            f"prepare {site}: evaluation only ({result.splits['reason']}): no test set or "
            f"folds; usable as a cross_eval target, refused by the steps that train"
        )


def run(config: PrepareConfig, inputs: NoInputs) -> None:
    record(config, *compute(config))


STEP = StepSpec("prepare", run, inputs=NoInputs, uses_torch=False)


def prepare_node(config: PrepareConfig) -> Node:
    tags = {"site": site_name(config), "profile": config.profile}
    return node("prepare", config, tags=tags, data=data_fingerprint(config))


def prepare_for(
    site: str, data: str, *, profile: str, seed: int, prepare_run: str = "", **extra: Any
) -> Node:
    """The prepare node of ``site`` (reading ``data``), or the finished run the user named."""
    if prepare_run:
        return given(prepare_run, "prepare")
    overrides = {"site": site, "data": data, "profile": profile, "seed": seed, **extra}
    return prepare_node(build_config(PrepareConfig, overrides))


def site_of(prepare: Node) -> str:
    """The site a prepare node (declared, or a given run) stands for: its ``site`` tag."""
    return dict(prepare.tags)["site"]


def refuse_small_site(prepare: Node, *, hint: str = "") -> None:
    """Before anything runs: a site that is certainly evaluation-only cannot be trained on.

    Discovery (file names, no voxels) gives at most the subjects prepare keeps; when even those
    are too few for a test set and 5 folds, say so in one line now, not after the other steps.
    """
    if prepare.step == GIVEN or prepare.config.data == "phantom":
        return
    config = prepare.config
    found = discover(Path(config.data).expanduser(), "check", grades=config.grades or None)
    reason = too_small([r.grade for r in found.records])
    if reason:
        raise training_refused(site_name(config), reason, hint)


def upstream_prepare(config, site: str) -> Node:
    """The prepare node a step of ``site`` trains on: the given run, or prepare of its data."""
    common = {"profile": config.profile, "seed": config.seed}
    prepare = prepare_for(site, config.data, prepare_run=config.prepare_run, **common)
    refuse_small_site(prepare)
    return prepare


def with_site_of(config, prepare: Node):
    """A given prepare run decides the site; a config that says another is corrected."""
    return dataclasses.replace(config, site=site_of(prepare))


def run_prepare(config: PrepareConfig) -> NodeResult:
    target = prepare_node(config)
    return run_target(target, config)
