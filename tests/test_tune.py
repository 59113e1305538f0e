"""``tune``: Optuna trials as nested MLflow runs, shared storage, the Pareto front logged."""

import mlflow
import optuna
import pandas as pd
import pytest
from step_helpers import TINY_DDPM

from glioma.config import PROFILES, TuneConfig, build_config
from glioma.errors import ConfigError, DataError, GliomaError
from glioma.pipeline.tune import RUN_ID_ATTR, run_tune
from glioma.scoring import fid_helper
from glioma.scoring.inception import MissingWeightsError
from glioma.tracking.store import configure_tracking

TINY_PROFILE = {
    "prepare": {"patch_size": 16, "fov_mm": 64.0, "phantom_scale": 0.01},
    "train_ddpm": dict(TINY_DDPM),
    "sample": {"sampler": "ddim", "steps": 5},
    "score_gen": {
        "kid_subsets": 5,
        "msssim_pairs": 20,
        "classifier": "off",
        "c2st": False,
        "inception": "off",  # the trials' own scores: the objective is chosen by the tune run
    },
    "tune": {"n_trials": 2},
}


@pytest.fixture
def tiny_profile(monkeypatch, tmp_path):
    monkeypatch.setitem(PROFILES, "quick", TINY_PROFILE)
    # No FID Inception weights on this machine, whatever torch's hub cache holds elsewhere,
    # and no fid extra to build them from.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    monkeypatch.setattr(fid_helper, "torchscript_file", lambda: None)


def _trial_runs(tune_run_id: str) -> list[mlflow.entities.Run]:
    return mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.mlflow.parentRunId = '{tune_run_id}' and tags.step = 'tune_trial'",
        output_format="list",
    )


def test_two_trials_are_nested_runs_and_the_front_is_logged(project_home, tiny_profile):
    first = run_tune(build_config(TuneConfig, {"objective": "auto"}))
    trials = _trial_runs(first.run_id)
    assert len(trials) == 2
    storage = f"sqlite:///{project_home / 'optuna.db'}"  # the default storage
    study = optuna.load_study(study_name=first.study_name, storage=storage)
    assert study.user_attrs["distance_metric"] == "fd_radiomic"  # no Inception weights here
    by_run = {t.user_attrs[RUN_ID_ATTR]: t for t in study.trials}
    assert set(by_run) == {r.info.run_id for r in trials}
    for run in trials:
        trial = by_run[run.info.run_id]
        assert float(run.data.params["lr"]) == pytest.approx(trial.params["lr"])
        assert float(run.data.params["mi_weight"]) == pytest.approx(trial.params["mi_weight"])
        score = mlflow.get_run(run.data.tags["score_run"]).data.metrics
        assert trial.values == [score["fd_radiomic"], score["memorisation_mean"]]
        assert run.data.metrics["objective_fd_radiomic"] == pytest.approx(trial.values[0])
        ddpm = mlflow.get_run(run.data.tags["ddpm_run"])
        assert ddpm.data.tags["mlflow.parentRunId"] == run.info.run_id
    assert mlflow.MlflowClient().search_registered_models() == [], "trials never register"

    artifacts = mlflow.artifacts.download_artifacts(f"runs:/{first.run_id}/")
    table = pd.read_csv(f"{artifacts}/tune_trials.csv")
    assert len(table) == 2 and table["pareto"].any()
    front = {t.number for t in study.best_trials}
    assert set(table.loc[table["pareto"], "trial"]) == front
    assert (project_home / "mlruns").exists()
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(first.run_id)}
    assert {"pareto_front.png", "pareto_front.csv", "pareto_front.md"} <= names

    # A second process joins the same study through the same storage and adds a trial.
    second = run_tune(build_config(TuneConfig, {"n_trials": "1", "storage": storage}))
    assert second.study_name == first.study_name and len(second.trials) == 3
    assert len(optuna.load_study(study_name=first.study_name, storage=storage).trials) == 3
    assert second.trials["lr"].nunique() == 3, "a joining worker does not redraw old points"

    # Asking the same study for another distance is refused before anything trains.
    weights = project_home / "inception.pth"
    weights.write_bytes(b"only its presence is checked before the study opens")
    other = {"objective": "fid", "inception_weights": str(weights), "storage": storage}
    with pytest.raises(ConfigError, match="minimises fd_radiomic"):
        run_tune(build_config(TuneConfig, other))


def test_on_ray_two_trials_run_side_by_side_under_their_runs(project_home, tiny_profile, capsys):
    """--executor ray --trials_at_once 2: both trials' graphs go to Ray as one graph (Ray
    schedules them side by side), each step under its trial's run; both trials are told."""
    config = build_config(TuneConfig, {"n_trials": "2", "trials_at_once": "2", "executor": "ray"})
    output = run_tune(config)
    printed = capsys.readouterr().out
    assert "tune: 7 step(s) in the graph (1 given, 2 train_ddpm, 2 sample, 2 score_gen)" in printed
    assert len(output.trials) == 2
    trials = _trial_runs(output.run_id)
    ddpms = [mlflow.get_run(t.data.tags["ddpm_run"]) for t in trials]
    for trial, ddpm in zip(trials, ddpms):
        assert ddpm.data.tags["mlflow.parentRunId"] == trial.info.run_id
        assert ddpm.data.tags["ray_node"], "trained by a Ray task"
        assert trial.info.status == "FINISHED" and "objective_fd_radiomic" in trial.data.metrics
    assert output.trials["lr"].nunique() == 2, "trials asked together draw different points"


def test_fid_objective_without_weights_stops_before_training(project_home, tiny_profile):
    with pytest.raises(MissingWeightsError, match="pt_inception"):
        run_tune(build_config(TuneConfig, {"objective": "fid"}))
    configure_tracking()  # this project's store, not the one an earlier test left set
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []


@pytest.mark.parametrize(
    ("overrides", "phrase"),
    [
        ({"site": "brats"}, "for your own data give its BraTS root or manifest CSV: --data"),
        ({"data": "/no/such/BraTS"}, "/no/such/BraTS"),
    ],
)
def test_a_refused_tune_leaves_no_optuna_study(project_home, tiny_profile, overrides, phrase):
    """A bad site or a missing folder is refused before the study exists (or its trials ran):
    the storage holds no empty study that a later, corrected run would join."""
    storage = f"sqlite:///{project_home / 'optuna.db'}"  # the default storage
    with pytest.raises(GliomaError) as error:
        run_tune(build_config(TuneConfig, {**overrides, "storage": storage}))
    assert phrase in str(error.value)
    database = project_home / "optuna.db"
    assert not database.exists() or optuna.get_all_study_summaries(storage) == []


@pytest.mark.parametrize("url", ["nosuchdb://x", "postgresql://tuner:s3cret@127.0.0.1:9/optuna"])
def test_bad_or_unreachable_storage_is_one_clear_message(project_home, tiny_profile, url):
    with pytest.raises(ConfigError, match="storage: cannot open") as error:
        run_tune(build_config(TuneConfig, {"storage": url}))
    assert "s3cret" not in str(error.value), "the password is never shown"


def test_a_failing_trial_fails_its_run_with_one_line(
    project_home, tiny_profile, monkeypatch, capsys
):
    import glioma.pipeline.steps.train_ddpm as train_ddpm_step

    def refuse(config, dataset, splits, *, key):
        raise DataError("train_ddpm: only 1 non-test HGG subject(s); need at least 2")

    monkeypatch.setattr(train_ddpm_step, "grade_training", refuse)
    with pytest.raises(GliomaError, match="train_ddpm-phantom-a-HGG-.*need at least 2") as error:
        run_tune(build_config(TuneConfig, {"n_trials": "2", "trials_at_once": "2"}))
    assert "2 step(s) failed" in str(error.value)  # main's report: both trials' DDPMs
    assert "not started" in str(error.value) and "run the same command again" in str(error.value)
    printed = capsys.readouterr()
    assert "tune: trial 0 failed: train_ddpm-phantom-a-HGG" in printed.out
    assert "Traceback" not in printed.out + printed.err
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    status = {(r.data.tags["step"], r.info.status) for r in runs}
    assert {s for s, _ in status} == {"tune", "tune_trial", "train_ddpm", "prepare"}
    assert {f for s, f in status if s != "prepare"} == {"FAILED"}
    trials = [r for r in runs if r.data.tags["step"] == "tune_trial"]
    assert len(trials) == 2 and all("need at least 2" in r.data.tags["error"] for r in trials)
    study = optuna.load_study(
        study_name="glioma-phantom-a-HGG-quick", storage=f"sqlite:///{project_home / 'optuna.db'}"
    )
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]
