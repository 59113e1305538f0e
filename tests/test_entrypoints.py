"""The steps as users run them: Python, ``python -m``, the console script, ``mlflow run``."""

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from conftest import make_brats_root

from glioma.cli import main as cli_main
from glioma.config import PrepareConfig, build_config
from glioma.data.dataset import read_dataset
from glioma.pipeline.steps.prepare import run_prepare
from glioma.tracking import configure_tracking

REPO = Path(__file__).resolve().parents[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["TQDM_DISABLE"] = "1"
    env.update(extra)
    return env


def _runs(uri: str) -> pd.DataFrame:
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(search_all_experiments=True)


def test_prepare_run_logs_dataset_preview_and_tags(project_home):
    config = build_config(
        PrepareConfig, {"phantom_scale": "0.01", "site": "phantom-b", "patch_size": "16"}
    )
    output = run_prepare(config)
    assert (project_home / "mlflow.db").exists()
    run = mlflow.get_run(output.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith(str(project_home / "mlruns"))
    assert run.data.tags["step"] == "prepare" and run.data.tags["site"] == "phantom-b"
    assert run.data.tags["data_hash"] == output.data_hash and run.data.tags["profile"] == "quick"
    assert run.data.tags["host"] and run.data.tags["pid"] and run.data.tags["reuse_key"]
    assert run.data.tags["code_fingerprint"]
    assert run.data.params["patch_size"] == "16" and run.data.params["phantom_scale"] == "0.01"
    assert run.data.metrics["n_subjects"] == 16
    artifacts = mlflow.artifacts.download_artifacts(run_id=output.run_id)
    files = {p.relative_to(artifacts).as_posix() for p in Path(artifacts).rglob("*") if p.is_file()}
    expected = {"images.npy", "subjects.csv", "meta.json", "splits.json", "exclusions.csv"}
    assert {f"dataset/{f}" for f in expected} | {"preview.png"} <= files
    assert read_dataset(Path(artifacts) / "dataset").data_hash == output.data_hash
    (logged,) = run.inputs.dataset_inputs  # the prepared site, as the steps that read it name it
    assert logged.dataset.name == "phantom-b" and logged.dataset.profile  # rows counted
    assert [t.value for t in logged.tags if t.key == "mlflow.data.context"] == ["prepared"]
    assert logged.dataset.source.endswith('/dataset"}')  # the logged dataset folder


def test_console_script_and_python_m_agree_on_errors(tmp_path, capsys):
    assert cli_main(["prepare", "--patch_size", "abc"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "glioma prepare: error: patch_size: expected a number, got 'abc'"
    proc = subprocess.run(
        [sys.executable, "-m", "entrypoints", "prepare", "--fov-mm", "-3"],
        cwd=REPO,
        env=_env(GLIOMA_HOME=str(tmp_path)),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "glioma prepare: error: fov_mm: must be 4..400 mm, got -3.0"
    ]
    assert cli_main(["unknown"]) == 2


@pytest.mark.parametrize("outcome", ["FINISHED", "FAILED"])
def test_mlflow_run_entry_point(tmp_path, outcome):
    root = make_brats_root(tmp_path / "brats", n_per_grade=8)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    patch = "16" if outcome == "FINISHED" else "4"
    cmd = [
        "mlflow",
        "run",
        str(REPO),
        "-e",
        "prepare",
        "--env-manager",
        "local",
        "-P",
        f"data={root}",
        "-P",
        "site=brats",
        "-P",
        f"out_dir={tmp_path / 'out'}",
        "-P",
        f"patch_size={patch}",
        "-P",
        "workers=1",
    ]
    env = _env(MLFLOW_TRACKING_URI=uri, GLIOMA_HOME=str(tmp_path))
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    runs = _runs(uri)
    assert len(runs) == 1 and runs["status"].iloc[0] == outcome, proc.stderr[-2000:]
    if outcome == "FINISHED":
        assert proc.returncode == 0
        assert runs["params.patch_size"].iloc[0] == "16" and runs["tags.step"].iloc[0] == "prepare"
        assert read_dataset(tmp_path / "out").images.shape == (16, 4, 16, 16)
        # Again: the target is reused, and the run `mlflow run` made says which run it reused.
        again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True,
                               text=True, timeout=300)  # fmt: skip
        assert again.returncode == 0 and "reusing prepare-brats" in again.stdout
        runs = _runs(uri).set_index("tags.step")
        assert set(runs.index) == {"prepare", "invocation"}
        assert runs.loc["invocation", "tags.reused_run"] == runs.loc["prepare", "run_id"]
        assert set(runs["status"]) == {"FINISHED"}
    else:
        assert proc.returncode != 0
        assert "patch_size: must be 8..512, got 4" in proc.stderr and "Traceback" not in proc.stderr


def test_upstream_prepare_is_reused_when_finished(project_home, brats_root):
    def prepared(seed: int):
        overrides = {"site": "brats", "data": str(brats_root), "seed": seed}
        return run_prepare(build_config(PrepareConfig, overrides))

    first, again, other_seed = prepared(0), prepared(0), prepared(1)
    assert again.run_id == first.run_id and again.data_hash == first.data_hash and again.reused
    assert other_seed.run_id != first.run_id


def test_two_clones_sharing_a_virtualenv_keep_their_own_stores(tmp_path):
    """Without GLIOMA_HOME, a command run inside a checkout (or a folder below it) writes that
    checkout's store and data; the installed package's checkout is not touched."""
    ours = REPO / "mlflow.db"
    before = ours.stat().st_mtime_ns if ours.exists() else None
    glioma = str(Path(sys.executable).with_name("glioma"))
    env = _env()
    env.pop("GLIOMA_HOME", None)
    for clone in ("a", "b"):
        folder = tmp_path / clone
        (folder / "notes").mkdir(parents=True)
        (folder / "MLproject").write_text((REPO / "MLproject").read_text())
        args = ["prepare", "--phantom_scale", "0.01", "--patch_size", "16", "--workers", "1"]
        subprocess.run([glioma, *args], cwd=folder / "notes", env=env, check=True,
                       capture_output=True)  # fmt: skip
        assert len(_runs(f"sqlite:///{folder / 'mlflow.db'}")) == 1
        assert (folder / "data" / "prepared" / "phantom-a" / "images.npy").exists()
    assert (ours.stat().st_mtime_ns if ours.exists() else None) == before


def test_a_new_glioma_home_gets_its_store_with_artifacts_inside(tmp_path, monkeypatch):
    """GLIOMA_HOME named before it exists: the folder, its mlflow.db and the Default
    experiment's artifact root <home>/mlruns are made there, whatever the current folder."""
    home = tmp_path / "not" / "yet" / "home"
    monkeypatch.setenv("GLIOMA_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert configure_tracking() == f"sqlite:///{home / 'mlflow.db'}"
    default = mlflow.MlflowClient().get_experiment("0")
    assert default.artifact_location in (
        str(home / "mlruns" / "0"),
        (home / "mlruns" / "0").as_uri(),
    )
    assert Path.cwd() == tmp_path and not (tmp_path / "mlruns").exists()
