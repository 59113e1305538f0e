"""``tune``: an Optuna study over the DDPM's mi_weight and learning rate, with two objectives.

Each trial is an MLflow run nested under the tune run (logged here, not by an Optuna callback,
so trials stay in the study's experiment); inside it the trial trains one DDPM (not registered,
so no trial ever moves ``@best``), samples it and scores it, each as its own nested step run.
Both objectives are minimised: how far the synthetic images are from the real ones (FID with
the Inception weights, else the offline FD_radiomic) and how closely they copy training images
(mean nearest-training correlation). The study lives in Optuna storage (a SQLite file by
default, any RDB URL with ``--storage``), so processes on several machines can add trials to
one study; every tune run logs the study's Pareto front as it stands when the run ends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import optuna
import pandas as pd
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from glioma.config import (
    SampleConfig,
    ScoreGenConfig,
    TrainDDPMConfig,
    TuneConfig,
    as_params,
    build_config,
)
from glioma.config.scoring import mi_mode_list
from glioma.errors import ConfigError, GliomaError
from glioma.evaluate.figures import pareto_figure
from glioma.pipeline.ensure import RunContext, StepFailed
from glioma.pipeline.executors import run_serial
from glioma.pipeline.graph import Graph, given
from glioma.pipeline.invoke import sweep_orphans
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.nodes import ddpm_node, prepare_for, refuse_small_site, sample_node, score_node
from glioma.scoring.inception import MissingWeightsError, find_weights
from glioma.scoring.report import markdown_table
from glioma.tracking import child_run, open_run, project_root
from glioma.tracking.store import experiment_id

MEMORISATION = "memorisation_mean"
RUN_ID_ATTR = "mlflow_run_id"  # the trial attribute that points at the trial's MLflow run


@dataclass(frozen=True)
class TuneOutput:
    run_id: str
    study_name: str
    trials: pd.DataFrame  # every finished trial of the study; column ``pareto`` marks the front


class _OneLineTrialErrors(logging.Filter):
    """Optuna logs a failed trial with its traceback; our errors are one line that says it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], GliomaError):
            record.exc_info = None
        return True


def _quiet_trial_tracebacks() -> None:
    # On the logger that reports failed trials: its handlers change while a progress bar shows.
    logger = logging.getLogger("optuna.study._optimize")
    if not any(isinstance(f, _OneLineTrialErrors) for f in logger.filters):
        logger.addFilter(_OneLineTrialErrors())


def default_storage() -> str:
    return f"sqlite:///{project_root() / 'optuna.db'}"


def shown_storage(url: str) -> str:
    """The storage URL without its password: safe to log and print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        raise ConfigError(f"storage: not a database URL: {url!r}") from None


def distance_metric(config: TuneConfig) -> str:
    """The distance objective: FID when the Inception weights are here; without them, ``fid``
    stops (before any training) and ``auto`` falls back to the offline FD_radiomic."""
    if config.objective == "fd_radiomic":
        return "fd_radiomic"
    try:
        find_weights(config.inception_weights)
        return "fid"
    except MissingWeightsError as exc:
        if config.objective == "fid":
            raise
        print(f"tune: {exc}\ntune: distance objective: fd_radiomic (offline) instead of fid")
        return "fd_radiomic"


def open_storage(config: TuneConfig) -> optuna.storages.BaseStorage:
    """The Optuna storage, reached now (a bad URL is one line before anything runs)."""
    storage = config.storage or default_storage()
    try:
        return optuna.storages.get_storage(storage)
    except (ImportError, ValueError, SQLAlchemyError) as exc:
        reason = str(exc).splitlines()[0]
        raise ConfigError(f"storage: cannot open {shown_storage(storage)} ({reason})") from None


def open_study(
    config: TuneConfig, distance: str, storage: optuna.storages.BaseStorage
) -> optuna.Study:
    """Create or join the study; refuse one that was optimising another distance."""
    name = config.study_name or f"glioma-{config.site}-{config.grade}-{config.profile}"
    study = optuna.create_study(
        storage=storage, study_name=name, directions=["minimize", "minimize"], load_if_exists=True
    )
    known = study.user_attrs.get("distance_metric", distance)
    if known != distance:
        raise ConfigError(
            f"objective: study {name!r} minimises {known}, not {distance}; "
            f"pass --objective {known} or another --study_name"
        )
    study.set_user_attr("distance_metric", distance)
    # Seeded by the trials already there, so workers that join later draw other points.
    startup = max(2, min(10, config.n_trials // 2))
    study.sampler = optuna.samplers.TPESampler(
        seed=config.seed + len(study.trials), n_startup_trials=startup
    )
    return study


def trial_graph(config: TuneConfig, prepare: NodeResult, *, values: dict, distance: str, out: Path):
    """train_ddpm (not registered) -> sample -> score_gen for one suggested point."""
    common = {"site": config.site, "grade": config.grade, "profile": config.profile}
    common |= {"seed": config.seed, "device": config.device}
    # one grade's DDPM is tuned, whatever the profile's conditioning
    ddpm_config = build_config(
        TrainDDPMConfig, common | values | {"register": False, "conditional": False}
    )
    prepare_node = given(prepare.run_id, "prepare")
    ddpm = ddpm_node(prepare_node, ddpm_config)
    sample_config = build_config(
        SampleConfig, common | {"variant": ddpm_config.variant, "out_dir": str(out)}
    )
    sample = sample_node(ddpm, sample_config)
    score_overrides = common | {"variant": ddpm_config.variant, "classifier": "", "tstr": False}
    score_overrides |= {"inception": "required" if distance == "fid" else "off"}
    score_overrides |= {"inception_weights": config.inception_weights}
    score_config = build_config(ScoreGenConfig, score_overrides)
    score = score_node(sample, ddpm, prepare_node, config=score_config, classifier=None)
    return Graph([score]), ddpm, sample, score


def suggest(trial: optuna.Trial, config: TuneConfig) -> dict:
    """One point: mi_weight, lr, the MI mode and the smallest step t the term acts on (in
    tenths of the DDPM's T, up to ``mi_t_min_max`` of T = 1000: 0, 100, ... for the profiles)."""
    num_steps = build_config(TrainDDPMConfig, {"profile": config.profile}).num_steps
    stride = max(1, num_steps // 10)
    top = min(config.mi_t_min_max * num_steps // 1000, num_steps - 1) // stride * stride
    return {
        "mi_weight": trial.suggest_float("mi_weight", 0.0, config.mi_weight_max),
        "lr": trial.suggest_float("lr", config.lr_min, config.lr_max, log=True),
        "mi_mode": trial.suggest_categorical("mi_mode", list(mi_mode_list(config.mi_modes))),
        "mi_t_min": trial.suggest_int("mi_t_min", 0, top, step=stride) if top else 0,
    }


def run_trial(
    trial: optuna.Trial, config: TuneConfig, prepare: NodeResult, distance: str
) -> tuple[float, float]:
    """train_ddpm -> sample -> score_gen for one suggested point, in a child run."""
    point = suggest(trial, config)
    params = {"trial": trial.number, **point}
    params |= {"profile": config.profile, "seed": config.seed, "device": config.device}
    tags = {"site": config.site, "grade": config.grade, "profile": config.profile}
    with child_run("tune_trial", params, **tags) as run:
        trial.set_user_attr(RUN_ID_ATTR, run.info.run_id)
        mlflow.set_tags(
            {
                "optuna_study": trial.study.study_name,
                "optuna_trial": str(trial.number),
                "mlflow.runName": f"trial-{trial.number}-{config.site}-{config.grade}",
            }
        )
        out = project_root() / "data" / "synthetic" / "tune" / run.info.run_id
        graph, ddpm, sample, score = trial_graph(
            config, prepare, values=point, distance=distance, out=out
        )
        context = RunContext(experiment_id(), run.info.run_id, None, "tune")
        outcome = run_serial(graph, context)
        if outcome.failures:
            raise StepFailed(*next(iter((n.label, r) for n, r in outcome.failures.items())))
        results = {n: outcome.results[n] for n in (ddpm, sample, score)}
        metrics = mlflow.get_run(results[score].run_id).data.metrics
        values = (metrics[distance], metrics[MEMORISATION])
        mlflow.set_tags(
            {
                "ddpm_run": results[ddpm].run_id,
                "sample_run": results[sample].run_id,
                "score_run": results[score].run_id,
            }
        )
        names = (f"objective_{distance}", f"objective_{MEMORISATION}")
        mlflow.log_metrics(dict(zip(names, values)))
        return values


def trials_table(study: optuna.Study, distance: str) -> pd.DataFrame:
    """Every completed trial of the study, the Pareto-optimal ones marked."""
    front = {t.number for t in study.best_trials}
    rows = [
        {
            "trial": t.number,
            "mi_weight": t.params["mi_weight"],
            "lr": t.params["lr"],
            "mi_mode": t.params.get("mi_mode", "mi"),
            "mi_t_min": t.params.get("mi_t_min", 0),
            distance: t.values[0],
            MEMORISATION: t.values[1],
            "pareto": t.number in front,
            RUN_ID_ATTR: t.user_attrs.get(RUN_ID_ATTR, ""),
        }
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    ]
    return pd.DataFrame(rows).sort_values([distance, MEMORISATION], ignore_index=True)


def log_front(table: pd.DataFrame, distance: str) -> None:
    front = table[table["pareto"]]
    mlflow.log_text(table.to_csv(index=False), "tune_trials.csv")
    mlflow.log_text(front.to_csv(index=False), "pareto_front.csv")
    mlflow.log_text(markdown_table(front), "pareto_front.md")
    figure = pareto_figure(table, distance, MEMORISATION)
    mlflow.log_figure(figure, "pareto_front.png")
    plt.close(figure)
    mlflow.log_metrics({"n_trials_complete": len(table), "pareto_size": len(front)})


def run_tune(config: TuneConfig) -> TuneOutput:
    """Add ``n_trials`` trials to the study and log its Pareto front on the tune run."""
    distance = distance_metric(config)  # fails here, before any training, if it must
    # A bad site or source fails here too: the Optuna study is opened (created, when new) only
    # once the data it tunes on is prepared, so a refused tune leaves no empty study behind.
    prepare = prepare_for(config.site, config.source, profile=config.profile, seed=config.seed)
    refuse_small_site(prepare)
    storage = open_storage(config)
    sweep_orphans("tune")
    params = as_params(config) | {"storage": shown_storage(config.storage or default_storage())}
    tags = {"site": config.site, "grade": config.grade, "profile": config.profile}
    with open_run("tune", params, tags) as run:
        context = RunContext(experiment_id(), run.info.run_id, None, "tune")
        prepared = run_serial(Graph([prepare]), context)
        if prepared.failures:
            raise StepFailed(*next(iter((n.label, r) for n, r in prepared.failures.items())))
        study = open_study(config, distance, storage)
        mlflow.set_tags({"optuna_study": study.study_name, "distance_metric": distance})
        _quiet_trial_tracebacks()
        study.optimize(
            lambda trial: run_trial(trial, config, prepared.results[prepare], distance),
            n_trials=config.n_trials,
            show_progress_bar=True,
        )
        table = trials_table(study, distance)
        log_front(table, distance)
        shown = table[table["pareto"]].drop(columns=[RUN_ID_ATTR])
        print(
            f"tune: study {study.study_name}, {len(table)} finished trial(s); Pareto front "
            f"({distance}, {MEMORISATION}; both lower is better):\n{markdown_table(shown)}"
            f"figure: {mlflow.get_artifact_uri()}/pareto_front.png"
        )
        return TuneOutput(run.info.run_id, study.study_name, table)
