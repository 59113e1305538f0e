"""Steps against a shared tracking server: a real ``mlflow server`` on loopback, as a team runs it.

The server keeps runs and the model registry in its own database and artifacts in its own
store (served over HTTP, ``--serve-artifacts``); the project folder keeps no MLflow store.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from step_helpers import TINY_DDPM, free_port, wait_for_http

from glioma.cli import run_step
from glioma.config import PrepareConfig, build_config
from glioma.data.dataset import read_dataset
from glioma.names import DATASET_ARTIFACT
from glioma.pipeline.inputs import artifact_folder
from glioma.pipeline.steps.prepare import run_prepare


@pytest.fixture
def tracking_server(tmp_path, monkeypatch):
    """``mlflow server`` with a SQLite backend and a served artifact store; yields its URI."""
    root = tmp_path / "server"
    root.mkdir()
    port = free_port()
    command = [
        *(str(Path(sys.executable).parent / "mlflow"), "server"),
        *("--backend-store-uri", f"sqlite:///{root / 'tracking.db'}"),
        *("--artifacts-destination", str(root / "artifacts")),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    server = subprocess.Popen(
        command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        uri = f"http://127.0.0.1:{port}"
        wait_for_http(f"{uri}/health", server)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri, root
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_steps_log_to_a_tracking_server_and_read_back_through_it(project_home, tracking_server):
    uri, server_root = tracking_server
    config = {"phantom_scale": "0.01", "patch_size": "16", "fov_mm": "64"}
    prepared = run_prepare(build_config(PrepareConfig, config))
    ddpm_args = [f"--{k}={v}" for k, v in TINY_DDPM.items()]
    # train_ddpm reads prepare's dataset back from the server's artifact store.
    args = ["--prepare_run", prepared.run_id, "--grade", "LGG", *ddpm_args]
    assert run_step("train_ddpm", args) == 0
    # sample finds the DDPM through the server's model registry (@best).
    model = "models:/glioma-ddpm-phantom-a-LGG-std@best"
    assert run_step("sample", ["--model", model, "--n", "4", "--steps", "3"]) == 0

    client = mlflow.MlflowClient(uri)
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert {r.data.tags["step"] for r in runs} == {"prepare", "train_ddpm", "sample"}
    assert all(r.info.status == "FINISHED" for r in runs)
    assert all(r.info.artifact_uri.startswith("mlflow-artifacts:") for r in runs)
    version = client.get_model_version_by_alias("glioma-ddpm-phantom-a-LGG-std", "best")
    assert version.run_id in {r.info.run_id for r in runs}
    sample_run = next(r for r in runs if r.data.tags["step"] == "sample")
    synthetic = read_dataset(artifact_folder(sample_run.info.run_id, DATASET_ARTIFACT))
    assert synthetic.images.shape == (4, 4, 16, 16)
    stored = {p.name for p in (server_root / "artifacts").rglob("*") if p.is_file()}
    assert {"best.pt", "images.npy", "training_subjects.json"} <= stored
    assert not (project_home / "mlflow.db").exists(), "nothing went to a local store"
