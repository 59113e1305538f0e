"""``main``: the whole study as nested runs, reusing every step that already finished.

prepare both sites -> for each source site: train_cls for the four setups (the ddpm setups
train and sample their per-fold DDPMs, std and mi) -> score_gen of the fold-0 DDPMs' samples
(each grade and variant) -> cross_eval on the other site -> the 4 x 2 heatmaps and the results
table on the main run.

A step whose FINISHED run has the same parameters (as strings, upstream run ids included) and
code version is reused, not run again, so an interrupted study continues where it stopped and
a changed parameter redoes only what depends on it. Steps run in this process (``step_run``
nests them under the main run); ``mlflow run`` is only the outer entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from glioma.config import (
    CrossEvalConfig,
    MainConfig,
    ScoreGenConfig,
    TrainClsConfig,
    as_params,
    build_config,
    setup_list,
)
from glioma.pipeline.cross_eval_step import (
    champion_versions,
    log_study_figures,
    results_table,
    run_cross_eval,
)
from glioma.pipeline.fold_synthetic import VARIANT_OF_SETUP, fold_ddpm_run, fold_sample_run
from glioma.pipeline.prepare_step import PrepareOutput
from glioma.pipeline.score_gen_step import run_score_gen
from glioma.pipeline.train_cls_step import fold_data, run_train_cls
from glioma.pipeline.upstream import finished_run_for, load_prepared, prepared_site
from glioma.scoring.report import markdown_table
from glioma.tracking import step_run
from glioma.tracking.registry import ensemble_model_name


@dataclass(frozen=True)
class StudyOutput:
    run_id: str
    results: pd.DataFrame  # one row per setup and direction
    reused: int  # steps reused instead of run
    ran: int


class Steps:
    """Runs a step unless a finished run with the same settings exists; counts both."""

    def __init__(self) -> None:
        self.reused = self.ran = 0

    def run(self, config, run_step, tags: dict | None = None) -> str:
        found = finished_run_for(config, tags)
        label = " ".join(str(v) for v in (tags or {}).values())
        if found is not None:
            self.reused += 1
            print(f"main: reusing {config.step} {label} ({found.info.run_id})")
            return found.info.run_id
        self.ran += 1
        print(f"main: running {config.step} {label}")
        return run_step(config).run_id


def train_setups(steps: Steps, config: MainConfig, site: str, data: str, prepare_run: str) -> None:
    """The four setups' fold models and champions of one site (champion = this study's)."""
    for setup in setup_list(config.setups):
        overrides = {"site": site, "setup": setup, "source": data, "prepare_run": prepare_run}
        overrides |= {"mi_weight": config.mi_weight, "profile": config.profile, "seed": config.seed}
        cls = build_config(TrainClsConfig, overrides)
        run_id = steps.run(cls, run_train_cls, {"site": site, "setup": setup})
        version = mlflow.get_run(run_id).data.tags["ensemble_version"]
        MlflowClient().set_registered_model_alias(
            ensemble_model_name(site, setup), "champion", version
        )


def score_synthetic(steps: Steps, config: MainConfig, prepared: PrepareOutput) -> None:
    """score_gen for each grade and variant, on the fold-0 DDPMs' training samples."""
    dataset, splits = load_prepared(prepared)
    counts = fold_data(dataset, splits, 0).real_counts
    for setup in setup_list(config.setups):
        if setup not in VARIANT_OF_SETUP:
            continue
        variant = VARIANT_OF_SETUP[setup]
        for grade, count in counts.items():
            ddpm = fold_ddpm_run(
                prepared.run_id, grade, variant, 0, config.mi_weight, config.profile, config.seed
            )
            sample = fold_sample_run(ddpm, max(1, count), config.profile, config.seed)
            overrides = {"sample_run": sample, "site": prepared.site, "grade": grade}
            overrides |= {"variant": variant, "profile": config.profile, "seed": config.seed}
            score = build_config(ScoreGenConfig, overrides)
            steps.run(score, run_score_gen, {"site": prepared.site, "grade": grade})


def cross_evaluate(
    steps: Steps, config: MainConfig, source: str, target: str, data
) -> pd.DataFrame:
    overrides = {"source": source, "target": target, "setups": config.setups}
    overrides |= {"source_data": data[source], "target_data": data[target]}
    overrides |= {"n_boot": config.n_boot, "profile": config.profile, "seed": config.seed}
    cross = build_config(CrossEvalConfig, overrides)
    tags = {"direction": cross.direction}
    tags["champion_versions"] = champion_versions(source, setup_list(config.setups))
    run_id = steps.run(cross, run_cross_eval, tags)
    path = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/direction_results.csv")
    return pd.read_csv(path)


def run_main(config: MainConfig) -> StudyOutput:
    """The study; each step reuses a finished run with the same settings."""
    data = {config.site_a: config.data_a, config.site_b: config.data_b}
    extra = {"phantom_scale": config.phantom_scale} if config.phantom_scale else {}
    steps = Steps()
    with step_run("main", as_params(config), profile=config.profile) as run:
        prepared = {
            site: prepared_site(site, source, config.profile, config.seed, config.workers, **extra)
            for site, source in data.items()
        }
        results = []
        for source, target in ((config.site_a, config.site_b), (config.site_b, config.site_a)):
            train_setups(steps, config, source, data[source], prepared[source].run_id)
            score_synthetic(steps, config, prepared[source])
            results.append(cross_evaluate(steps, config, source, target, data))
        results = pd.concat(results, ignore_index=True)
        log_study_figures(results)
        mlflow.log_metrics({"steps_reused": steps.reused, "steps_run": steps.ran})
        table = results_table(results)[
            ["direction", "setup", "accuracy", "balanced_accuracy", "f1"]
        ]
        artifacts = mlflow.get_artifact_uri()
        print(
            f"main: done ({steps.ran} steps run, {steps.reused} reused)\n{markdown_table(table)}"
            f"figures and tables: {artifacts}/study_heatmaps.png, study_results.md"
        )
        return StudyOutput(run.info.run_id, results, steps.reused, steps.ran)
