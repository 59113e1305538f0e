"""Executors under failure: a failing step, a SIGKILLed study, a two-node Ray cluster."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import mlflow
import pytest
from step_helpers import TINY_DDPM, free_port, runs_of, stop_ray_cluster
from test_main import graph_signatures, run_signatures

from glioma.config import MainConfig, SampleConfig, TrainDDPMConfig, build_config
from glioma.pipeline.given import given
from glioma.pipeline.graph import Graph
from glioma.pipeline.invoke import StudyFailed, run_group
from glioma.pipeline.steps.sample import sample_node
from glioma.pipeline.steps.train_ddpm import ddpm_node
from glioma.pipeline.study import study_graph

REPO = Path(__file__).resolve().parents[1]


def ddpm(prepared, grade: str, fold: int = -1, **extra):
    overrides = {**TINY_DDPM, "grade": grade, "held_out": str(fold), **extra}
    return ddpm_node(given(prepared.run_id, "prepare"), build_config(TrainDDPMConfig, overrides))


def failing_graph(prepared) -> tuple[Graph, list]:
    """A DDPM that cannot be built and its sample, beside four good DDPMs and one sample."""
    bad = ddpm(prepared, "LGG", attention_resolutions="3")  # no level is 3 px wide
    good = [ddpm(prepared, grade, fold) for grade in ("LGG", "HGG") for fold in (0, 1)]
    draw = build_config(SampleConfig, {"n": "2", "steps": "2"})
    samples = [sample_node(bad, draw), sample_node(good[0], draw)]
    return Graph([*samples, *good[1:]]), [bad, *samples]


def check_failure_and_rerun(report: str, bad, blocked, config) -> None:
    """The failure's one line, what it kept from starting, and the rerun that reuses the rest."""
    assert "1 step(s) failed:" in report
    assert f"{bad.label}: attention_resolutions: 3 is not a level's resolution" in report
    assert f"{blocked.label} (needs {bad.label})" in report  # not started
    (failed,) = runs_of("train_ddpm", "FAILED")
    assert failed.data.tags["error"].startswith("attention_resolutions: 3 is not a level")
    assert "\n" not in failed.data.tags["error"]
    assert len(runs_of("train_ddpm", "FINISHED")) == 4 and len(runs_of("sample", "FINISHED")) == 1
    assert runs_of("sample", "FAILED") == [], "the dependant never started"


def test_a_failing_step_stops_only_what_depends_on_it(tiny_prepared):
    graph, (bad, blocked, _) = failing_graph(tiny_prepared)
    config = build_config(MainConfig)  # the group run: a study's
    with pytest.raises(StudyFailed) as caught:
        run_group(graph, config)
    check_failure_and_rerun(str(caught.value), bad, blocked, config)
    with pytest.raises(StudyFailed) as again:  # rerun: what finished is reused
        run_group(graph, config)
    assert "0 ran and 5 were reused" in str(again.value)  # the bad DDPM failed again
    assert len(runs_of("train_ddpm", "FINISHED")) == 4 and len(runs_of("sample")) == 1


def wait_for(condition, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        if condition():
            return
        time.sleep(0.2)
    raise TimeoutError("the moment to kill did not come")


def finished(step: str) -> list[str]:
    return [r.info.run_id for r in runs_of(step, "FINISHED")]


def test_a_sigkilled_study_continues_from_what_finished(project_home, tiny_profile):
    """Killed during DDP training and again during the folds, the study finishes the rest
    (one direction, ``--directions a-to-b``: phantom-b is only evaluated; one DDPM per fold, so
    that DDPMs are still training when the first kill comes)."""
    args = ["--profile", tiny_profile, "--setups", "ddpm_mi", "--n_boot", "100"]
    args += ["--directions", "a-to-b", "--ddpm_scope", "fold"]
    command = [sys.executable, "-m", "entrypoints", "main", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {"TQDM_DISABLE": "1"}

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip

    study = start()  # 1st kill: while DDPMs train
    wait_for(lambda: len(finished("train_ddpm")) >= 2, study)
    study.send_signal(signal.SIGKILL)
    study.wait()
    ddpms_before = set(finished("train_ddpm"))
    left_running = {r.info.run_id for r in runs_of("main", "RUNNING")}
    left_running |= {r.info.run_id for r in runs_of("train_ddpm", "RUNNING")}
    assert len(left_running) >= 1

    study = start()  # 2nd kill: while the ddpm_mi folds train, before their ensemble
    ddpm_mi_folds = lambda: [  # noqa: E731
        r for r in runs_of("train_cls_fold", "FINISHED") if r.data.tags["setup"] == "ddpm_mi"
    ]
    wait_for(lambda: len(ddpm_mi_folds()) >= 2, study)
    study.send_signal(signal.SIGKILL)
    study.wait()
    out = study.stdout.read()
    assert all(f"({run_id})" in out for run_id in ddpms_before), "finished DDPMs are reused"
    assert all(mlflow.get_run(r).info.status == "KILLED" for r in left_running)
    folds_before = {r.info.run_id for r in ddpm_mi_folds()}

    study = start()  # and now to the end
    out, _ = study.communicate(timeout=600)
    assert study.returncode == 0, out[-3000:]
    assert "marked" in out and "KILLED" in out
    assert all(f"({run_id})" in out for run_id in folds_before), "a killed train_cls keeps folds"
    assert runs_of("train_cls_fold", "RUNNING") == [] and runs_of("main", "RUNNING") == []
    settings = {"profile": tiny_profile, "setups": "ddpm_mi", "directions": "a-to-b"}
    settings |= {"ddpm_scope": "fold"}
    graph = study_graph(build_config(MainConfig, settings))
    assert {r.data.tags["site"] for r in runs_of("train_cls_fold")} == {"phantom-a"}
    done = [r for s in graph.steps() for r in runs_of(s, "FINISHED")]
    assert run_signatures(done) == graph_signatures(graph), "one FINISHED run per node"


@pytest.fixture
def two_node_cluster():
    """A Ray head and a second node joined with ``ray start --address``, on this machine.

    Ray's token authentication (on for a new cluster) asks the nodes and drivers that join it
    to say so, before Ray is imported: ``RAY_AUTH_MODE=token``, and to hold its token.
    """
    ray_cli = str(Path(sys.executable).with_name("ray"))
    # The cluster's own token: a fresh machine has no ~/.ray/auth_token, and `ray start`
    # (unlike a local `ray.init`) does not create one.
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex}
    common = ["--num-cpus=1", "--disable-usage-stats"]
    port = free_port()
    ray_start(ray_cli, env, ["--head", f"--port={port}", "--include-dashboard=false", *common])
    try:
        ray_start(ray_cli, env, [f"--address=127.0.0.1:{port}", *common])
        yield f"127.0.0.1:{port}", env
    finally:
        stop_ray_cluster(port)  # not `ray stop`: that stops every Ray of the machine


def ray_start(ray_cli: str, env: dict, args: list[str]) -> None:
    """``ray start ARGS``; a failure shows Ray's own output, not only the exit status."""
    done = subprocess.run([ray_cli, "start", *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"ray start {' '.join(args)}: {done.stderr[-3000:]}"


TWO_NODE_DRIVER = """
import sys
from glioma.config import MainConfig, build_config
from glioma.pipeline.invoke import StudyFailed, run_group
from test_executors import failing_graph
from glioma.pipeline.keys import NodeResult

graph, _ = failing_graph(NodeResult("prepare", sys.argv[1], {}))
config = build_config(MainConfig, {"executor": "ray", "ray_address": sys.argv[2]})
try:
    run_group(graph, config, settings=config)
except StudyFailed as failed:
    print(failed)
    sys.exit(3)
"""


def test_on_a_two_node_ray_cluster_a_failing_step_stops_only_its_dependants(
    tiny_prepared, two_node_cluster
):
    """Both nodes take tasks; Ray starts no dependant of the failed task; the rest finish."""
    address, env = two_node_cluster
    command = [sys.executable, "-c", TWO_NODE_DRIVER, tiny_prepared.run_id, address]
    env = {**env, "PYTHONPATH": str(REPO / "tests")}
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Ray with 2 node(s), 2 CPU(s)" in proc.stdout
    graph, (bad, blocked, _) = failing_graph(tiny_prepared)
    check_failure_and_rerun(proc.stdout, bad, blocked, build_config(MainConfig))
    runs = runs_of("train_ddpm", "FINISHED")
    assert len({r.data.tags["ray_node"] for r in runs}) == 2, "both nodes trained DDPMs"
    with pytest.raises(StudyFailed, match="0 ran and 5 were reused"):  # rerun, here: serially
        run_group(graph, build_config(MainConfig))
