"""train_ddpm and sample as users run them, on a tiny prepared phantom and a tiny UNet."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from step_helpers import dataset_folder, runs_of

from glioma.config import PrepareConfig, SampleConfig, TrainDDPMConfig, build_config
from glioma.data.dataset import read_dataset
from glioma.data.splits import read_splits
from glioma.errors import ConfigError, DataError
from glioma.pipeline.steps.prepare import run_prepare
from glioma.pipeline.steps.sample import run_sample
from glioma.pipeline.steps.train_ddpm import checkpoint_path, run_train_ddpm
from glioma.tracking import configure_tracking
from glioma.tracking.registry import resolve_alias

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "train_steps": "4",
    "eval_every": "2",
    "batch_size": "8",
    "base_channels": "8",
    "channel_mults": "1,2",
    "attention_resolutions": "8",
    "num_steps": "50",
    "sample_every": "2",
    "checkpoint_every_s": "0",
    "lr": "2e-3",
}
TINY_PREPARE = {"phantom_scale": "0.01", "patch_size": "16", "fov_mm": "64"}


@pytest.fixture
def prepared(tiny_prepared):
    return tiny_prepared


def _tiny(prepared, **extra) -> TrainDDPMConfig:
    return build_config(TrainDDPMConfig, {**TINY, "prepare_run": prepared.run_id, **extra})


def _best_weights(run_id: str) -> dict:
    model_id = mlflow.get_run(run_id).data.tags["model_id"]  # the run's logged model
    folder = mlflow.artifacts.download_artifacts(f"models:/{model_id}")
    path = next(Path(folder).rglob("best.pt"))
    return torch.load(path, weights_only=True)["weights"]


def _fresh_project(tmp_path, monkeypatch, name: str):
    """Another empty project folder (its own store), with the tiny phantom prepared in it."""
    home = tmp_path / name
    home.mkdir()
    monkeypatch.setenv("GLIOMA_HOME", str(home))
    return run_prepare(build_config(PrepareConfig, TINY_PREPARE))


def test_a_variant_is_the_users_ddpm_and_another_weight_never_moves_its_best(prepared, capsys):
    """A DDPM at mi_weight 0.05 is ``...-mi-w0.05``; ``sample --variant mi`` (the profile's
    0.1) says which DDPM it means and, rather than train one nobody asked for, names the
    user's; ``--model`` samples that; a 0.1 DDPM registers ``...-mi`` and leaves the other's
    ``@best`` where it was."""
    other = run_train_ddpm(_tiny(prepared, mi_weight="0.05", grade="HGG"))[0]
    assert resolve_alias("glioma-ddpm-phantom-a-HGG-mi-w0.05", "best").run_id == other.run_id
    with pytest.raises(ConfigError, match="models:/glioma-ddpm-phantom-a-HGG-mi-w0.05@best"):
        run_sample(build_config(SampleConfig, {"grade": "HGG", "variant": "mi"}))
    said = capsys.readouterr().out
    assert "sample: the mi DDPM: glioma-ddpm-phantom-a-HGG-mi (mi_weight 0.1, mi_pair x0" in said
    assert len(runs_of("train_ddpm")) == 1, "nothing was trained"
    model = "models:/glioma-ddpm-phantom-a-HGG-mi-w0.05@best"
    drawn = run_sample(build_config(SampleConfig, {"model": model, "n": "3", "steps": "4"}))
    assert drawn.tags["ddpm_run"] == other.run_id

    paper = run_train_ddpm(_tiny(prepared, mi_weight="0.1", grade="HGG"))[0]
    assert resolve_alias("glioma-ddpm-phantom-a-HGG-mi", "best").run_id == paper.run_id
    assert resolve_alias("glioma-ddpm-phantom-a-HGG-mi-w0.05", "best").run_id == other.run_id
    form = run_train_ddpm(_tiny(prepared, mi_weight="0.1", grade="HGG", mi_mode="mi"))[0]
    name = build_config(TrainDDPMConfig, {"mi_weight": "0.1", "mi_mode": "mi"}).model_label
    assert name.startswith("mi-f") and len(name) == len("mi-f") + 8
    assert resolve_alias(f"glioma-ddpm-phantom-a-HGG-{name}", "best").run_id == form.run_id
    assert resolve_alias("glioma-ddpm-phantom-a-HGG-mi", "best").run_id == paper.run_id


def test_train_both_grades_register_and_sample(prepared, monkeypatch):
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.1")  # 10 s by default
    outputs = run_train_ddpm(_tiny(prepared, mi_weight="0.1", prediction="v", schedule="cosine"))
    assert [o.tags["grade"] for o in outputs] == ["LGG", "HGG"]
    assert {o.tags["variant"] for o in outputs} == {"mi"}
    splits = read_splits(dataset_folder(prepared))
    for output in outputs:
        version = resolve_alias(f"glioma-ddpm-phantom-a-{output.tags['grade']}-mi", "best")
        assert version is not None and version.run_id == output.run_id
        run = mlflow.get_run(output.run_id)
        assert run.data.tags["prepare_run"] == prepared.run_id  # lineage names what it is
        assert (run.data.params["prediction"], run.data.params["schedule"]) == ("v", "cosine")
        assert run.data.tags["mlflow.parentRunId"]  # both grades under one invocation run
        history = mlflow.MlflowClient().get_metric_history(output.run_id, "train_loss")
        assert len(history) == 2 and {"train_huber", "train_mi", "val_loss"} <= set(
            run.data.metrics
        )
        subjects = mlflow.artifacts.load_dict(f"runs:/{output.run_id}/training_subjects.json")
        assert not (set(subjects["train"]) | set(subjects["validation"])) & set(splits["test"])
        names = {f.path for f in mlflow.MlflowClient().list_artifacts(output.run_id, "samples")}
        assert names == {"samples/best.png"}
        # the grids during training: one image key over steps (the UI's step slider)
        images = [f.path for f in mlflow.MlflowClient().list_artifacts(output.run_id, "images")]
        assert any(p.startswith("images/samples+step+2+") and p.endswith(".png") for p in images)
        files = {f.path for f in mlflow.MlflowClient().list_artifacts(output.run_id)}
        assert "checkpoints" not in files, "a finished run keeps no resumable checkpoint"
        # a training run records MLflow's system metrics while it trains
        assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(
            run.data.metrics
        )

    pyfunc = mlflow.pyfunc.load_model("models:/glioma-ddpm-phantom-a-HGG-mi@best")
    drawn = pyfunc.predict(pd.DataFrame([{"n": 2, "seed": 3, "steps": 4}]))
    assert drawn.shape == (2, 4, 16, 16) and np.abs(drawn).max() <= 1
    schedule = pyfunc.unwrap_python_model().ddpm.schedule.config  # the model samples as trained
    assert (schedule.prediction, schedule.schedule, schedule.num_steps) == ("v", "cosine", 50)

    model = "models:/glioma-ddpm-phantom-a-LGG-mi@best"
    config = build_config(SampleConfig, {"model": model, "n": "5", "steps": "10"})
    first = run_sample(config)
    a = read_dataset(dataset_folder(first))
    assert a.images.shape == (5, 4, 16, 16) and np.abs(a.images).max() <= 1
    assert a.subjects["synthetic"].all() and set(a.subjects["grade"]) == {"LGG"}
    assert a.subjects["source"].iloc[0] == "models:/glioma-ddpm-phantom-a-LGG-mi/1"
    assert first.tags["ddpm_run"] == outputs[0].run_id
    assert first.tags["variant"] == "mi", "the given model decides site, grade and variant"
    assert not any(name.startswith("system/") for name in first.metrics), "sampling trains nothing"
    # Only where the files go changed (a volatile field): the finished run is the answer.
    again = run_sample(build_config(SampleConfig, {**config.__dict__, "out_dir": "elsewhere"}))
    assert again.run_id == first.run_id and again.reused
    more = run_sample(build_config(SampleConfig, {**config.__dict__, "n": "6"}))
    assert more.run_id != first.run_id and read_dataset(dataset_folder(more)).images.shape[0] == 6


def test_kill_and_resume_gives_the_clean_result(prepared, project_home, tmp_path, monkeypatch):
    config = _tiny(prepared, grade="HGG", train_steps="8", sample_every="0")
    pattern = checkpoint_path(config, "*")  # the run's reuse key names the folder
    found = []
    args = [f"--{k}={v}" for k, v in {**TINY, "train_steps": "8", "sample_every": "0"}.items()]
    cmd = [
        *(sys.executable, "-m", "entrypoints", "train_ddpm"),
        *("--grade", "HGG", "--prepare_run", prepared.run_id, *args),
    ]
    env = {**os.environ, "GLIOMA_HOME": str(project_home), "TQDM_DISABLE": "1"}
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 120
    while not found and time.time() < deadline and proc.poll() is None:
        found = list(pattern.parent.parent.glob(f"{pattern.parent.name}/{pattern.name}"))
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (last,) = found
    steps_done = torch.load(last, weights_only=True)["step"]
    assert 2 <= steps_done < 8, "the kill should land mid-training"
    killed = runs_of("train_ddpm", "RUNNING")
    assert len(killed) == 1, "SIGKILL leaves its run RUNNING"
    assert last.parent.name.endswith(killed[0].data.tags["reuse_key"][:16]), (
        "resume key = reuse key"
    )
    resumed = _tiny(prepared, grade="HGG", train_steps="8", sample_every="0", resume="true")
    resumed = run_train_ddpm(resumed)[0]
    assert mlflow.get_run(killed[0].info.run_id).info.status == "KILLED"  # found at the restart
    assert mlflow.get_run(resumed.run_id).data.tags["resumed_from_step"] == str(steps_done)
    resumed_w = _best_weights(resumed.run_id)
    assert not last.exists(), "a finished run leaves its checkpoints in MLflow only"

    images = read_dataset(dataset_folder(prepared)).images
    clean_prepared = _fresh_project(tmp_path, monkeypatch, "clean")
    same = read_dataset(dataset_folder(clean_prepared)).images  # the same data, another store
    np.testing.assert_array_equal(same, images)
    clean = run_train_ddpm(_tiny(clean_prepared, grade="HGG", train_steps="8", sample_every="0"))[0]
    clean_w = _best_weights(clean.run_id)
    assert clean_w.keys() == resumed_w.keys()
    assert all(torch.equal(clean_w[k], resumed_w[k]) for k in clean_w)


def test_two_process_ddp_matches_one_process(prepared, project_home, tmp_path, monkeypatch):
    args = [f"--{k}={v}" for k, v in {**TINY, "sample_every": "0", "seed": "0"}.items()]
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [
        *(str(torchrun), "--nproc_per_node=2", "-m", "entrypoints", "train_ddpm"),
        *("--grade=LGG", f"--prepare_run={prepared.run_id}", *args),
    ]
    env = {**os.environ, "GLIOMA_HOME": str(project_home), "TQDM_DISABLE": "1"}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (ddp,) = runs_of("train_ddpm")
    assert ddp.info.status == "FINISHED"
    ddp_w = _best_weights(ddp.info.run_id)
    single_prepared = _fresh_project(tmp_path, monkeypatch, "single")
    single = run_train_ddpm(_tiny(single_prepared, grade="LGG", sample_every="0"))[0]
    a, b = _best_weights(single.run_id), ddp_w
    flat_a = torch.cat([a[k].flatten().double() for k in a])
    flat_b = torch.cat([b[k].flatten().double() for k in a])
    # Same model up to summation order (Adam magnifies rounding in near-zero gradients).
    assert float((flat_a - flat_b).norm() / flat_a.norm()) < 1e-3


def test_sample_refuses_a_foreign_model(project_home):
    configure_tracking()  # the project's store, where sample looks
    with mlflow.start_run() as run:
        mlflow.log_dict({"not": "a ddpm"}, "ddpm/MLmodel.json")
    config = build_config(SampleConfig, {"model": run.info.run_id, "n": "2"})
    with pytest.raises(DataError) as err:
        run_sample(config)
    assert run.info.run_id in str(err.value) and "not a FINISHED train_ddpm run" in str(err.value)


def test_mlflow_run_train_ddpm_one_grade(prepared, project_home):
    uri = f"sqlite:///{project_home / 'mlflow.db'}"
    extras = [
        x
        for k, v in {**TINY, "train_steps": "2", "sample_every": "0"}.items()
        for x in ("-P", f"{k}={v}")
    ]
    cmd = [
        *("mlflow", "run", str(REPO), "-e", "train_ddpm", "--env-manager", "local"),
        *("-P", "grade=LGG", "-P", "mi_weight=0.1", "-P", f"prepare_run={prepared.run_id}"),
        *extras,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        MLFLOW_TRACKING_URI=uri,
        GLIOMA_HOME=str(project_home),
        TQDM_DISABLE="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    proc = subprocess.run(
        cmd, cwd=project_home, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    version = resolve_alias("glioma-ddpm-phantom-a-LGG-mi", "best")
    run = mlflow.get_run(version.run_id)
    assert run.info.status == "FINISHED" and run.data.params["mi_weight"] == "0.1"
    assert run.data.tags["variant"] == "mi" and run.data.tags["step"] == "train_ddpm"
    assert len(runs_of("train_ddpm")) == 1, "the run mlflow run made is the step's run"


def test_conditional_ddpm_learns_both_grades_in_one_network(prepared):
    options = {"prediction": "x0", "schedule": "sigmoid", "zero_terminal_snr": "true"}
    outputs = run_train_ddpm(_tiny(prepared, conditional="true", **options))
    assert len(outputs) == 1, "one network for both grades"
    run = mlflow.get_run(outputs[0].run_id)
    assert run.data.tags["conditional"] == "true" and "grade" not in run.data.tags
    params = run.data.params
    assert int(params["n_train_LGG"]) > 0 and int(params["n_train_HGG"]) > 0
    version = resolve_alias("glioma-ddpm-phantom-a-both-std", "best")
    assert version is not None and version.run_id == outputs[0].run_id
    drawn = {}
    for grade in ("LGG", "HGG"):
        config = build_config(
            SampleConfig,
            {"model": outputs[0].run_id, "grade": grade, "steps": "4", "guidance": "2"},
        )
        sample = run_sample(config)
        data = read_dataset(dataset_folder(sample))
        assert set(data.subjects["grade"]) == {grade} and sample.tags["grade"] == grade
        assert len(data.images) == int(params[f"n_train_{grade}"]) + int(params[f"n_val_{grade}"])
        drawn[grade] = data.images
    assert not np.allclose(drawn["LGG"][:2], drawn["HGG"][:2]), "the grade changes the images"
    pyfunc = mlflow.pyfunc.load_model("models:/glioma-ddpm-phantom-a-both-std@best")
    images = pyfunc.predict(pd.DataFrame([{"n": 2, "seed": 1, "steps": 3, "grade": "LGG"}]))
    assert images.shape == (2, 4, 16, 16) and np.isfinite(images).all()
    schedule = pyfunc.unwrap_python_model().ddpm.schedule
    assert schedule.config.prediction == "x0" and float(schedule.alphas_cumprod[-1]) == 0.0
    with pytest.raises(Exception, match="needs LGG or HGG"):
        pyfunc.predict(pd.DataFrame([{"n": 2, "seed": 1, "steps": 3}]))
