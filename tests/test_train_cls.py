"""train_cls as users run it: fold models, aliases, the champion ensemble, the leakage guard and
the real ``mlflow models serve`` from an environment without the project. Tiny phantom, tiny
DDPMs, few epochs."""

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from step_helpers import (
    TINY_DDPM,
    dataset_folder,
    free_port,
    isolated_python,
    runs_of,
    wait_for_http,
)

from glioma.config import PROFILES, TrainClsConfig, TrainDDPMConfig, build_config
from glioma.config.plan import plan_for
from glioma.data.dataset import read_dataset
from glioma.data.splits import read_splits
from glioma.errors import ConfigError, DataError
from glioma.pipeline.given import given
from glioma.pipeline.graph import Graph
from glioma.pipeline.inputs import refuse_leaks
from glioma.pipeline.steps.train_cls import classifier_node, run_train_cls
from glioma.pipeline.steps.train_ddpm import run_train_ddpm
from glioma.tracking.registry import resolve_alias

REPO = Path(__file__).resolve().parents[1]
FAST_CLS = {"epochs": "2", "imagenet_weights": "none", "batch_size": "8"}


@pytest.fixture
def prepared(tiny_prepared):
    return tiny_prepared


@pytest.fixture
def tiny_ddpm_profile(monkeypatch):
    """The quick profile with a tiny UNet and a 5-step sampler, for the DDPMs train_cls makes."""
    monkeypatch.setitem(PROFILES["quick"], "train_ddpm", dict(TINY_DDPM))
    monkeypatch.setitem(PROFILES["quick"], "sample", {"sampler": "ddim", "steps": 5})


def fold_probabilities(name: str, folds: int, images: np.ndarray) -> np.ndarray:
    probs = []
    for k in range(folds):
        model = mlflow.pytorch.load_model(f"models:/{name}@fold{k}")
        with torch.no_grad():
            probs.append(torch.sigmoid(model(torch.from_numpy(images))).numpy())
    return np.mean(probs, axis=0)


def stored_files(root: Path, name: str) -> list[Path]:
    return [p for p in root.rglob(name) if p.is_file()]


def test_baseline_folds_aliases_and_champion_ensemble(prepared, project_home):
    output = run_train_cls(
        build_config(TrainClsConfig, {**FAST_CLS, "prepare_run": prepared.run_id})
    )
    splits = read_splits(dataset_folder(prepared))
    client = mlflow.MlflowClient()
    name, ensemble_name = "glioma-cls-phantom-a-baseline", "glioma-ensemble-phantom-a-baseline"
    for k in range(5):
        fold_run = mlflow.get_run(output.tags[f"fold{k}_run"])  # lineage: which run is fold k
        version = client.get_model_version_by_alias(name, f"fold{k}")
        assert fold_run.data.tags["fold_model_uri"] == f"models:/{name}/{version.version}"
        assert fold_run.data.tags["fold"] == str(k) and fold_run.data.params["init"] == "random"
        assert fold_run.data.tags["prepare_run"] == prepared.run_id
        assert int(fold_run.data.params["n_val"]) == len(splits["folds"][k])
        assert "val_loss" in fold_run.data.metrics and "test_roc_auc" in fold_run.data.metrics
    champion = client.get_model_version_by_alias(ensemble_name, "champion")
    assert champion.run_id == output.run_id
    assert output.tags["ensemble_version"] == str(champion.version)
    dataset = read_dataset(dataset_folder(prepared))
    test = dataset.subjects["subject_id"].isin(splits["test"]).to_numpy()
    ensemble = mlflow.pyfunc.load_model(f"models:/{ensemble_name}@champion")
    expected = fold_probabilities(name, 5, dataset.images[test])
    np.testing.assert_allclose(
        ensemble.predict(dataset.images[test])["prob_hgg"], expected, rtol=1e-5
    )
    # Each fold's weights are stored once (inside the ensemble), in float16.
    weights = stored_files(project_home / "mlruns", "model.pth")
    assert len(weights) == 5, weights
    stored = torch.load(weights[0], weights_only=False)
    assert next(stored.parameters()).dtype == torch.float32  # computed in float32 once loaded
    run = mlflow.get_run(output.run_id)
    assert run.data.metrics["n_test"] == test.sum() and "test_balanced_accuracy" in run.data.metrics
    assert "folds_val_accuracy_mean" in run.data.metrics
    assert "confusion_test.png" in {a.path for a in client.list_artifacts(output.run_id)}

    # MLflow 3's Models tab: the ensemble and the five folds are logged models with their
    # metrics; the ensemble's test metrics name the test split as their dataset
    logged = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], output_format="list"
    )
    by_id = {m.model_id: m for m in logged}
    ensemble_model = by_id[run.data.tags["model_id"]]
    assert ensemble_model.source_run_id == output.run_id and ensemble_model.name == "ensemble"
    test_metrics = {m.key: m for m in ensemble_model.metrics if m.key.startswith("test_")}
    assert test_metrics["test_balanced_accuracy"].value == pytest.approx(
        run.data.metrics["test_balanced_accuracy"]
    )
    assert test_metrics["test_balanced_accuracy"].dataset_name == "phantom-a"
    assert ensemble_model.params["setup"] == "baseline"  # the run's parameters
    for k in range(5):
        fold_run = mlflow.get_run(output.tags[f"fold{k}_run"])
        fold_model = by_id[fold_run.data.tags["model_id"]]
        assert fold_model.source_run_id == fold_run.info.run_id
        assert {"val_loss", "test_roc_auc"} <= {m.key for m in fold_model.metrics}
        # its files went into the ensemble (stored once); the logged model says where
        assert fold_model.tags["weights_in"] == fold_run.data.tags["fold_model_uri"]

    # the model card a reviewer reads on the champion's version page
    card = champion.description
    n_lgg = int((dataset.subjects["grade"] == "LGG").sum())
    assert champion.tags["training_site"] == "phantom-a" and champion.tags["setup"] == "baseline"
    assert champion.tags["training_subjects"].startswith(f"{len(dataset.subjects)} ({n_lgg} LGG")
    assert champion.tags["ddpm_lineage"] == "none (real images only)"
    assert "Research only" in champion.tags["intended_use"] and champion.tags["known_limits"]
    balanced = run.data.metrics["test_balanced_accuracy"]
    assert f"| balanced_accuracy | {balanced:.3f} |" in card
    assert "Not a medical device" in card and "Not evaluated yet" in card


def test_ddpm_setup_uses_per_fold_ddpms_and_reuses_them(prepared, tiny_ddpm_profile):
    config = build_config(
        TrainClsConfig,
        {**FAST_CLS, "prepare_run": prepared.run_id, "setup": "ddpm_mi", "ddpm_scope": "fold"},
    )
    output = run_train_cls(config)
    splits = read_splits(dataset_folder(prepared))
    for grade in ("LGG", "HGG"):
        for k in range(5):  # each fold's DDPM never saw the fold's or the test subjects
            version = resolve_alias(f"glioma-ddpm-phantom-a-{grade}-mi", f"fold{k}")
            refuse_leaks(version.run_id, splits, (k,))
    fold_run = mlflow.get_run(output.tags["fold0_run"])
    params = fold_run.data.params
    assert int(params["n_train_synthetic"]) == int(params["n_train_real"])  # ratio 1
    tags = fold_run.data.tags
    assert tags["ddpm_LGG_run"] != tags["ddpm_HGG_run"]
    assert mlflow.get_run(tags["sample_LGG_run"]).data.tags["ddpm_run"] == tags["ddpm_LGG_run"]
    assert len(runs_of("train_ddpm")) == 10
    again = run_train_cls(config)  # the same study again: every step is reused
    assert again.run_id == output.run_id and again.reused
    assert len(runs_of("train_ddpm")) == 10 and len(runs_of("train_cls_fold")) == 5


def test_site_scope_trains_one_ddpm_per_grade_and_the_guard_allows_just_that(
    prepared, tiny_ddpm_profile
):
    overrides = {**FAST_CLS, "prepare_run": prepared.run_id, "setup": "ddpm", "ddpm_scope": "site"}
    output = run_train_cls(build_config(TrainClsConfig, overrides))
    assert len(runs_of("train_ddpm")) == 2 and len(runs_of("sample")) == 2
    assert output.tags["ddpm_scope"] == "site"
    splits = read_splits(dataset_folder(prepared))
    for k in range(5):
        fold = mlflow.get_run(output.tags[f"fold{k}_run"])
        assert fold.data.tags["ddpm_scope"] == "site"
        params = fold.data.params  # the site's samples cut to the fold's own real counts
        assert int(params["n_train_synthetic"]) == int(params["n_train_real"])
        ddpm = fold.data.tags["ddpm_HGG_run"]
        refuse_leaks(ddpm, splits)  # never the test split
        with pytest.raises(DataError, match=f"fold {k}"):
            refuse_leaks(ddpm, splits, (k,))  # it did see fold k: what site scope allows


def ddpm_nodes(prepare, scope: str) -> list:
    config = build_config(TrainClsConfig, {"setup": "ddpm", "ddpm_scope": scope})
    graph = Graph([classifier_node(prepare, config, plan_for(config).classifier_chains(config))])
    return [n for n in graph.nodes if n.step == "train_ddpm"]


def test_fold_groups_declare_one_ddpm_per_group(prepared):
    prepare = given(prepared.run_id, "prepare")
    for scope, per_grade in (("fold", 5), ("fold_groups:2", 2), ("fold_groups:3", 3), ("site", 1)):
        assert len(ddpm_nodes(prepare, scope)) == 2 * per_grade, scope
    groups = {n.config.held_out for n in ddpm_nodes(prepare, "fold_groups:2")}
    assert groups == {"0,1,2", "3,4"}
    with pytest.raises(ConfigError, match="ddpm_scope"):
        build_config(TrainClsConfig, {"ddpm_scope": "fold_groups:7"})


def test_leakage_guard_names_the_subjects(prepared):
    splits = read_splits(dataset_folder(prepared))
    whole = run_train_ddpm(
        build_config(TrainDDPMConfig, {**TINY_DDPM, "prepare_run": prepared.run_id, "grade": "HGG"})
    )[0]
    dataset = read_dataset(dataset_folder(prepared))
    hgg = set(dataset.subjects.loc[dataset.subjects["grade"] == "HGG", "subject_id"])
    seen_in_fold = sorted(hgg & set(splits["folds"][0]))
    with pytest.raises(DataError) as caught:
        refuse_leaks(whole.run_id, splits, (0,))
    message = str(caught.value)
    assert whole.run_id in message and "fold 0" in message
    assert all(subject in message for subject in seen_in_fold)


def post(port: int, body: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def assert_the_client_prints_each_subject(port, prepared, expected, tmp_path):
    """`glioma predict` posts a prepare folder's images as Parquet, in batches, and prints one
    row per subject; a raw array gets the server's reason in one line."""
    glioma = [str(Path(sys.executable).parent / "glioma"), "predict"]
    folder = dataset_folder(prepared)
    url = f"http://127.0.0.1:{port}"
    out = tmp_path / "predictions.csv"
    done = subprocess.run(
        [*glioma, str(folder), "--url", url, "--batch_size", "2", "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out)
    subjects = read_dataset(folder).subjects
    assert list(table["subject_id"]) == list(subjects["subject_id"])
    np.testing.assert_allclose(table["prob_hgg"][:5], expected["prob_hgg"], rtol=1e-5)
    assert f"{len(subjects)} image(s)" in done.stdout and "label = grade for" in done.stdout
    assert str(subjects["subject_id"].iloc[0]) in done.stdout
    raw = tmp_path / "raw.npy"
    np.save(raw, read_dataset(folder).images[:3] * 400 + 500)
    refused = subprocess.run([*glioma, str(raw), "--url", url], capture_output=True, text=True)
    assert refused.returncode == 2
    assert "answered 400: input values must lie in prepare's range [-1, 1]" in refused.stderr


def test_mlflow_run_train_cls_then_serve_without_the_project(prepared, project_home, tmp_path):
    """`mlflow run -e train_cls`, then `mlflow models serve` from an environment and a folder
    that have no project: the model brings its code and names its requirements."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        GLIOMA_HOME=str(project_home),
        TQDM_DISABLE="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    store = f"sqlite:///{project_home / 'mlflow.db'}"
    train = [
        *("mlflow", "run", str(REPO), "-e", "train_cls", "--env-manager", "local"),
        *("-P", f"prepare_run={prepared.run_id}", "-P", "imagenet_weights=none"),
        *("-P", "epochs=1", "-P", "batch_size=8"),
    ]
    proc = subprocess.run(
        train, cwd=project_home, env={**env, "MLFLOW_TRACKING_URI": store},
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    uri = "models:/glioma-ensemble-phantom-a-baseline@champion"
    local = Path(mlflow.artifacts.download_artifacts(uri))
    requirements = (local / "requirements.txt").read_text()
    assert "glioma" not in requirements and "-e " not in requirements
    trained_with = f"torch=={metadata.version('torch').split('+')[0]}"
    assert trained_with in requirements.split(), "the versions it was trained with, not floors"
    assert (local / "code" / "glioma" / "classify" / "ensemble.py").is_file()  # code_paths
    assert (local / "python_env.yaml").is_file()  # what build-docker installs from
    mlmodel = yaml.safe_load((local / "MLmodel").read_text())  # what the MLflow UI shows
    spec = {"dtype": "float32", "shape": [-1, 4, 16, 16]}
    assert json.loads(mlmodel["signature"]["inputs"]) == [{"type": "tensor", "tensor-spec": spec}]

    python, clean = isolated_python(tmp_path / "serve-env")
    probe = subprocess.run([python, "-c", "import glioma"], capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'glioma'" in probe.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    serve = [
        *(python, "-m", "mlflow", "models", "serve", "-m", uri),
        *("--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)),
    ]
    server = subprocess.Popen(
        serve, cwd=elsewhere, env={**clean, "MLFLOW_TRACKING_URI": store},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", server)
        images = read_dataset(dataset_folder(prepared)).images[:5]
        status, answer = post(port, json.dumps({"inputs": images.tolist()}))
        assert status == 200, answer
        predictions = answer["predictions"]
        expected = mlflow.pyfunc.load_model(uri).predict(images)
        np.testing.assert_allclose(
            [p["prob_hgg"] for p in predictions], expected["prob_hgg"], rtol=1e-5
        )
        assert [p["label"] for p in predictions] == list(expected["label"])
        nan = images.copy()
        nan[2, 1, 3, 3] = np.nan
        raw = images * 400 + 500  # raw intensities, not prepare's
        bad = {
            "channels": (images[:, :3], ["(5, 3, 16, 16)", "(-1, 4, 16, 16)"]),
            "size": (images[:, :, :8], ["(5, 4, 8, 16)", "(-1, 4, 16, 16)"]),
            "nan": (nan, ["NaN or infinite values (first in image 2)"]),
            "raw": (raw, ["prepare's range [-1, 1]; image 0 spans", "not raw intensities"]),
            "text": ([[["a"]]], ["could not convert string to float"]),
        }
        for name, (body, reasons) in bad.items():
            inputs = body.tolist() if isinstance(body, np.ndarray) else body
            status, answer = post(port, json.dumps({"inputs": inputs}))
            assert status == 400 and all(r in answer["message"] for r in reasons), (name, answer)
        status, answer = post(port, "{inputs: oops")
        assert status == 400 and "valid JSON" in answer["message"], answer
        status, _ = post(port, json.dumps({"inputs": images[:1].tolist()}))
        assert status == 200  # still serving after the bad requests
        assert_the_client_prints_each_subject(port, prepared, expected, tmp_path)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
