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

from glioma.config import SampleConfig, TrainDDPMConfig, build_config
from glioma.data.dataset import read_dataset
from glioma.data.splits import read_splits
from glioma.errors import DataError
from glioma.pipeline.sample_step import run_sample
from glioma.pipeline.train_ddpm_step import checkpoint_path, run_train_ddpm
from glioma.tracking.registry import resolve_alias

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "epochs": "2",
    "batch_size": "8",
    "base_channels": "8",
    "channel_mults": "1,2",
    "attention_resolutions": "8",
    "num_steps": "50",
    "sample_every": "1",
    "checkpoint_every_s": "0",
    "lr": "2e-3",
}


@pytest.fixture
def prepared(tiny_prepared):
    return tiny_prepared


def _tiny(prepared, **extra) -> TrainDDPMConfig:
    return build_config(TrainDDPMConfig, {**TINY, "prepare_run": prepared.run_id, **extra})


def _best_weights(run_id: str) -> dict:
    folder = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/ddpm")
    path = next(Path(folder).rglob("best.pt"))
    return torch.load(path, weights_only=True)["weights"]


def test_train_both_grades_register_and_sample(prepared):
    outputs = run_train_ddpm(_tiny(prepared, mi_weight="0.1"))
    assert [o.grade for o in outputs] == ["LGG", "HGG"] and {o.variant for o in outputs} == {"mi"}
    splits = read_splits(prepared.out_dir)
    for output in outputs:
        version = resolve_alias(f"glioma-ddpm-phantom-a-{output.grade}-mi", "best")
        assert version is not None and version.run_id == output.run_id
        run = mlflow.get_run(output.run_id)
        assert (
            run.data.tags["grade"] == output.grade
            and run.data.tags["parent_step_run"] == prepared.run_id
        )
        history = mlflow.MlflowClient().get_metric_history(output.run_id, "train_loss")
        assert len(history) == 2 and {"train_huber", "train_mi", "val_loss"} <= set(
            run.data.metrics
        )
        subjects = mlflow.artifacts.load_dict(f"runs:/{output.run_id}/training_subjects.json")
        assert not (set(subjects["train"]) | set(subjects["validation"])) & set(splits["test"])
        names = {f.path for f in mlflow.MlflowClient().list_artifacts(output.run_id, "samples")}
        assert {"samples/epoch_0001.png", "samples/best.png"} <= names

    pyfunc = mlflow.pyfunc.load_model("models:/glioma-ddpm-phantom-a-HGG-mi@best")
    drawn = pyfunc.predict(pd.DataFrame([{"n": 2, "seed": 3, "steps": 4}]))
    assert drawn.shape == (2, 4, 16, 16) and np.abs(drawn).max() <= 1

    config = build_config(SampleConfig, {"grade": "LGG", "variant": "mi", "n": "5", "steps": "10"})
    first = run_sample(config)
    again = run_sample(
        build_config(SampleConfig, {**config.__dict__, "out_dir": str(first.out_dir) + "-2"})
    )
    a, b = read_dataset(first.out_dir), read_dataset(again.out_dir)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.images.shape == (5, 4, 16, 16) and np.abs(a.images).max() <= 1
    assert a.subjects["synthetic"].all() and set(a.subjects["grade"]) == {"LGG"}
    assert a.subjects["source"].iloc[0] == "models:/glioma-ddpm-phantom-a-LGG-mi@best (version 1)"
    assert mlflow.get_run(first.run_id).data.tags["ddpm_run"] == outputs[0].run_id


def test_kill_and_resume_gives_the_clean_result(prepared, project_home):
    clean = run_train_ddpm(_tiny(prepared, grade="HGG", epochs="4", sample_every="0"))[0]
    config = _tiny(prepared, grade="HGG", epochs="4", sample_every="0", seed="0")
    last = checkpoint_path(config, "HGG", prepared.data_hash)
    assert not last.exists(), "a finished run leaves its checkpoints in MLflow only"
    args = [f"--{k}={v}" for k, v in {**TINY, "epochs": "4", "sample_every": "0"}.items()]
    cmd = [
        sys.executable,
        "-m",
        "entrypoints.train_ddpm",
        "--grade",
        "HGG",
        "--prepare_run",
        prepared.run_id,
        *args,
    ]
    env = {**os.environ, "GLIOMA_HOME": str(project_home), "TQDM_DISABLE": "1"}
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    epochs_done = torch.load(last, weights_only=True)["epoch"]
    assert 1 <= epochs_done < 4, "the kill should land mid-training"
    resumed = run_train_ddpm(
        _tiny(prepared, grade="HGG", epochs="4", sample_every="0", resume="true")
    )[0]
    assert mlflow.get_run(resumed.run_id).data.tags["resumed_from_epoch"] == str(epochs_done)
    clean_w, resumed_w = _best_weights(clean.run_id), _best_weights(resumed.run_id)
    assert clean_w.keys() == resumed_w.keys()
    assert all(torch.equal(clean_w[k], resumed_w[k]) for k in clean_w)


def test_two_process_ddp_matches_one_process(prepared, project_home):
    single = run_train_ddpm(_tiny(prepared, grade="LGG", sample_every="0"))[0]
    args = [f"--{k}={v}" for k, v in {**TINY, "sample_every": "0", "seed": "0"}.items()]
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [
        str(torchrun),
        "--nproc_per_node=2",
        "-m",
        "entrypoints.train_ddpm",
        "--grade=LGG",
        f"--prepare_run={prepared.run_id}",
        *args,
    ]
    env = {
        **os.environ,
        "GLIOMA_HOME": str(project_home),
        "TQDM_DISABLE": "1",
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.grade = 'LGG'", output_format="list"
    )
    ddp = next(r for r in runs if r.info.run_id != single.run_id)
    assert ddp.info.status == "FINISHED"
    a, b = _best_weights(single.run_id), _best_weights(ddp.info.run_id)
    flat_a = torch.cat([a[k].flatten().double() for k in a])
    flat_b = torch.cat([b[k].flatten().double() for k in a])
    # Same model up to summation order (Adam magnifies rounding in near-zero gradients).
    assert float((flat_a - flat_b).norm() / flat_a.norm()) < 1e-3


def test_sample_refuses_a_foreign_model(project_home):
    with mlflow.start_run() as run:
        mlflow.log_dict({"not": "a ddpm"}, "ddpm/MLmodel.json")
    config = build_config(SampleConfig, {"model": run.info.run_id, "n": "2"})
    with pytest.raises(DataError) as err:
        run_sample(config)
    assert run.info.run_id in str(err.value)


def test_mlflow_run_train_ddpm_one_grade(prepared, project_home):
    uri = f"sqlite:///{project_home / 'mlflow.db'}"
    extras = [
        x
        for k, v in {**TINY, "epochs": "1", "sample_every": "0"}.items()
        for x in ("-P", f"{k}={v}")
    ]
    cmd = [
        "mlflow",
        "run",
        str(REPO),
        "-e",
        "train_ddpm",
        "--env-manager",
        "local",
        "-P",
        "grade=LGG",
        "-P",
        "mi_weight=0.1",
        "-P",
        f"prepare_run={prepared.run_id}",
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
