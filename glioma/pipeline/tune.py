"""``tune``: an Optuna study over the DDPM's mi_weight and learning rate, with two objectives.

Each trial is an MLflow run nested under the tune run (logged here, not by an Optuna callback,
so trials stay in the study's experiment); under it the trial's own train_ddpm (not registered,
so no trial ever moves ``@best``), sample and score_gen runs, declared from the trial's
``StudyPlan``. Trials are asked of Optuna ``trials_at_once`` at a time and their graphs run as
one through ``run_under``, the path every entry point takes: one after another here, or side by
side on Ray (``--executor ray``); then each is told its objectives, or FAIL, and a failed step
ends the tune with the same report as ``main``'s after the other trials finished.
Both objectives are minimised: how far the synthetic images are from the real ones (FID with
the Inception weights, else the offline FD_radiomic) and how closely they copy training images
(mean nearest-training correlation). The study lives in Optuna storage (a SQLite file by
default, any RDB URL with ``--storage``), so processes on several machines can add trials to
one study; every tune run logs the study's Pareto front as it stands when the run ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import optuna
import pandas as pd
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from tqdm.auto import tqdm

from glioma.config import TrainDDPMConfig, TuneConfig, as_params, build_config
from glioma.config.declared import ScoredSet
from glioma.config.plan import StudyPlan, plan_for
from glioma.config.scoring import mi_mode_list
from glioma.errors import ConfigError
from glioma.evaluate.figures import pareto_figure
from glioma.names import PAPER_MI_WEIGHT, variant_of
from glioma.pipeline.executors import Outcome
from glioma.pipeline.given import given
from glioma.pipeline.graph import Graph, Node
from glioma.pipeline.invoke import StudyFailed, run_under, sweep_orphans
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.steps.prepare import prepare_for, refuse_small_site
from glioma.pipeline.steps.score_gen import scored_sets
from glioma.scoring.inception import MissingWeightsError, find_weights
from glioma.scoring.report import markdown_table
from glioma.tracking import open_run, project_root
from glioma.tracking.runs import begin_child_run, end_child_run

MEMORISATION = "memorisation_mean"
TRIAL_STEPS = ("ddpm", "sample", "score")  # a trial run's lineage tags: ddpm_run, ...
RUN_ID_ATTR = "mlflow_run_id"  # the trial attribute that points at the trial's MLflow run


@dataclass(frozen=True)
class TuneOutput:
    run_id: str
    study_name: str
    trials: pd.DataFrame  # every finished trial of the study; column ``pareto`` marks the front


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
    # Trials asked together: each pretends the running ones scored badly, so they differ.
    study.sampler = optuna.samplers.TPESampler(
        seed=config.seed + len(study.trials),
        n_startup_trials=startup,
        constant_liar=config.trials_at_once > 1,
    )
    return study


def trial_plan(config: TuneConfig, point: dict, *, distance: str, out: Path) -> StudyPlan:
    """The plan of one trial: its DDPM takes the suggested point and is not registered (so no
    trial moves ``@best``), one grade's DDPM whatever the profile's conditioning; its images go
    to ``out``; its score has no classifier and no TSTR, and FID only when it is the distance."""
    settings = {k: v for k, v in point.items() if k != "mi_weight"}
    device = {"device": config.device}
    score = {"classifier": "", "tstr": False, "inception_weights": config.inception_weights}
    score |= {"inception": "required" if distance == "fid" else "off"}
    return plan_for(
        config,
        ddpm_mi_weight=point["mi_weight"] or PAPER_MI_WEIGHT,  # a trial at 0 is a std DDPM
        ddpm=settings | device | {"register": False, "conditional": False},
        sample=device | {"out_dir": str(out)},
        score=device | score,
    )


def trial_graph(config: TuneConfig, prepare: NodeResult, *, values: dict, distance: str, out: Path):
    """train_ddpm -> sample -> score_gen for one suggested point."""
    plan = trial_plan(config, values, distance=distance, out=out)
    variant, site, grade = variant_of(values["mi_weight"]), config.site, config.grade
    prepared = given(prepare.run_id, "prepare")
    chain = plan.chain(site, grade, variant)
    scored = {grade: ScoredSet(chain, plan.score_config(site, grade, variant))}
    (score,) = scored_sets(prepared, scored)
    return Graph([score]), score.upstream["ddpm"], score.upstream["sample"], score


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


@dataclass(frozen=True)
class PlannedTrial:
    """One asked trial: its Optuna handle, its MLflow run (open), its graph's nodes."""

    trial: optuna.Trial
    run_id: str
    ddpm: Node
    sample: Node
    score: Node

    @property
    def nodes(self) -> tuple[Node, ...]:
        return (self.ddpm, self.sample, self.score)


def plan_trial(
    trial: optuna.Trial, config: TuneConfig, prepare: NodeResult, distance: str, tune_run: str
) -> PlannedTrial:
    """Suggest a point, open the trial's run (a child of the tune run), declare its graph."""
    point = suggest(trial, config)
    params = {"trial": trial.number, **point}
    params |= {"profile": config.profile, "seed": config.seed, "device": config.device}
    tags = {"site": config.site, "grade": config.grade, "profile": config.profile}
    tags |= {"optuna_study": trial.study.study_name, "optuna_trial": trial.number}
    run_id = begin_child_run("tune_trial", params, tags, parent_run_id=tune_run)
    name = f"trial-{trial.number}-{config.site}-{config.grade}"
    mlflow.MlflowClient().set_tag(run_id, "mlflow.runName", name)
    trial.set_user_attr(RUN_ID_ATTR, run_id)
    out = project_root() / "data" / "synthetic" / "tune" / run_id
    _, ddpm, sample, score = trial_graph(config, prepare, values=point, distance=distance, out=out)
    return PlannedTrial(trial, run_id, ddpm, sample, score)


def run_round(
    planned: list[PlannedTrial], config: TuneConfig, distance: str, tune_run: str
) -> Outcome:
    """The trials' graphs as one graph through ``run_under`` (serial, or side by side on
    Ray), each trial's steps under its run; then each trial is told its objectives or FAIL."""
    nests = {n: p.run_id for p in planned for n in p.nodes}
    graph = Graph([p.score for p in planned])
    try:
        outcome = run_under(graph, config, tune_run, settings=config, nests=nests).outcome
    except StudyFailed as failed:
        outcome = failed.outcome
    for item in planned:
        tell(item, outcome, distance)
    return outcome


def tell(item: PlannedTrial, outcome: Outcome, distance: str) -> None:
    """Record one trial on its run and in the Optuna study (logged here, in one place)."""
    client, study = mlflow.MlflowClient(), item.trial.study
    if item.score not in outcome.results:
        failed = next(n for n in item.nodes if n in outcome.failures or n in outcome.not_started)
        blocker = outcome.not_started.get(failed, failed)
        reason = f"{blocker.label}: {outcome.failures[blocker]}"
        end_child_run(item.run_id, error=reason)
        study.tell(item.trial, state=optuna.trial.TrialState.FAIL)
        print(f"tune: trial {item.trial.number} failed: {reason}", flush=True)
        return
    runs = {step: outcome.results[n].run_id for step, n in zip(TRIAL_STEPS, item.nodes)}
    metrics = mlflow.get_run(runs["score"]).data.metrics
    values = [metrics[distance], metrics[MEMORISATION]]
    for step, run_id in runs.items():
        client.set_tag(item.run_id, f"{step}_run", run_id)
    names = (f"objective_{distance}", f"objective_{MEMORISATION}")
    for name, value in zip(names, values):
        client.log_metric(item.run_id, name, value)
    end_child_run(item.run_id)
    study.tell(item.trial, values)


def run_trials(
    study: optuna.Study, config: TuneConfig, prepare: NodeResult, distance: str, tune_run: str
) -> list[Outcome]:
    """Ask ``trials_at_once`` trials, run them, tell; until ``n_trials``. The rounds with a
    failed step are returned (their report is the same as ``main``'s)."""
    failed = []
    with tqdm(total=config.n_trials, desc="tune", unit="trial") as bar:
        for start in range(0, config.n_trials, config.trials_at_once):
            count = min(config.trials_at_once, config.n_trials - start)
            planned = [
                plan_trial(study.ask(), config, prepare, distance, tune_run) for _ in range(count)
            ]
            outcome = run_round(planned, config, distance, tune_run)
            if outcome.failures:
                failed.append(outcome)
            bar.update(count)
    return failed


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
    if not rows:  # every trial failed
        return pd.DataFrame(columns=["trial", distance, MEMORISATION, "pareto", RUN_ID_ATTR])
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
    # A bad site or data location fails here too: the Optuna study is opened (created, when new)
    # only once the data it tunes on is prepared, so a refused tune leaves no empty study behind.
    prepare = prepare_for(config.site, config.data, profile=config.profile, seed=config.seed)
    refuse_small_site(prepare)
    storage = open_storage(config)
    sweep_orphans("tune")
    params = as_params(config) | {"storage": shown_storage(config.storage or default_storage())}
    tags = {"site": config.site, "grade": config.grade, "profile": config.profile}
    with open_run("tune", params, tags) as run:
        tune_run = run.info.run_id
        prepared = run_under(Graph([prepare]), config, tune_run).result(prepare)
        study = open_study(config, distance, storage)
        mlflow.set_tags({"optuna_study": study.study_name, "distance_metric": distance})
        failed = run_trials(study, config, prepared, distance, tune_run)
        table = trials_table(study, distance)
        if len(table):
            log_front(table, distance)
            shown = table[table["pareto"]].drop(columns=[RUN_ID_ATTR])
            print(
                f"tune: study {study.study_name}, {len(table)} finished trial(s); Pareto front "
                f"({distance}, {MEMORISATION}; both lower is better):\n{markdown_table(shown)}"
                f"figure: {mlflow.get_artifact_uri()}/pareto_front.png"
            )
        if failed:
            raise StudyFailed(merged(failed))
        return TuneOutput(run.info.run_id, study.study_name, table)


def merged(outcomes: list[Outcome]) -> Outcome:
    """The failed rounds as one outcome: one report for the whole tune."""
    whole = Outcome(Graph([t for o in outcomes for t in o.graph.targets]))
    for outcome in outcomes:
        whole.results |= outcome.results
        whole.failures |= outcome.failures
        whole.not_started |= outcome.not_started
    return whole
