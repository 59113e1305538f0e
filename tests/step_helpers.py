"""Settings and helpers shared by the tests that run whole steps or real servers."""

import contextlib
import socket
import subprocess
import time
import urllib.error
import urllib.request

# A DDPM small enough to train in a second or two: the steps' tests need a model, not a good one.
TINY_DDPM = {
    "train_steps": "4",
    "eval_every": "2",
    "batch_size": "8",
    "base_channels": "8",
    "channel_mults": "1,2",
    "num_res_blocks": "1",
    "attention_resolutions": "",
    "num_steps": "50",
    "sample_every": "0",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, server: subprocess.Popen, timeout: float = 180) -> None:
    """Until ``url`` answers; fails with the server's stderr if it exits first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert server.poll() is None, server.stderr.read()[-3000:]
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


# The whole study at the smallest scale: 8 subjects per grade, 16 px, tiny DDPMs, 2-epoch folds
# (and 2-epoch TSTR/TRTR classifiers, as the folds: at the default 30 they took 12 % of a study).
TINY_PROFILE = {
    "prepare": {"patch_size": 16, "fov_mm": 64.0, "phantom_scale": 0.01},
    "train_ddpm": dict(TINY_DDPM),
    "sample": {"sampler": "ddim", "steps": 5},
    "score_gen": {
        "inception": "off",
        "kid_subsets": 5,
        "msssim_pairs": 20,
        "tstr_epochs": 2,
        "c2st_epochs": 3,
    },
    "train_cls": {
        "arch": "resnet18",
        "epochs": 2,
        "batch_size": 8,
        "imagenet_weights": "none",
    },
    "plan": {"ddpm_scope": "site"},
}


def dataset_folder(result):
    """The dataset a prepare or sample run logged, as a local folder."""
    from glioma.names import DATASET_ARTIFACT
    from glioma.pipeline.inputs import artifact_folder

    return artifact_folder(result.run_id, DATASET_ARTIFACT)


def runs_of(step: str, status: str | None = None) -> list:
    """Every run of ``step`` in the project's store (of ``status``, when given)."""
    import mlflow

    from glioma.tracking import configure_tracking

    configure_tracking()
    condition = f"tags.step = '{step}'" + (f" and attributes.status = '{status}'" if status else "")
    return mlflow.search_runs(
        search_all_experiments=True, filter_string=condition, output_format="list"
    )


def isolated_python(folder) -> tuple[str, dict[str, str]]:
    """A fresh virtualenv that sees the installed libraries but not the project.

    The libraries come through a ``.pth`` line naming this environment's site-packages; the
    ``.pth`` files inside that folder (the editable install of ``glioma`` among them) are not
    read, so ``import glioma`` fails there unless a model brings the package's code along.
    Returns the interpreter and an environment whose PATH starts at the new ``bin`` (with a
    ``uvicorn`` script, which ``mlflow models serve`` starts by name).
    """
    import os
    import sys
    import sysconfig
    from pathlib import Path

    venv = Path(folder)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "installed-libraries.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = venv / "bin" / "python"
    uvicorn = venv / "bin" / "uvicorn"
    uvicorn.write_text(f"#!{python}\nimport sys\nfrom uvicorn.main import main\nsys.exit(main())\n")
    uvicorn.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PYTHON"))}
    project_bin = str(Path(sys.executable).parent)
    paths = [p for p in env["PATH"].split(os.pathsep) if p != project_bin]
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *paths])
    env.pop("GLIOMA_HOME", None)
    return str(python), env


def _processes() -> dict[int, tuple[int, str]]:
    """Every live process of this machine: pid -> (parent pid, command line)."""
    import os
    from pathlib import Path

    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        if state != "Z":  # a zombie has exited already
            found[int(entry.name)] = (int(parent), cmdline)
    found.pop(os.getpid(), None)
    return found


def stop_ray_cluster(port: int, timeout: float = 20) -> None:
    """SIGKILL the Ray cluster whose GCS listens on ``port``, and only it (``ray stop --force``
    kills every Ray of the machine: under pytest-xdist, the study that the other worker runs
    on a local Ray of its own lost its raylet mid-study). A cluster's processes name its session
    folder on their command lines; its agents and workers (renamed ``ray::...``) are their
    children. The GCS and raylets ignore SIGTERM, as ``ray stop`` without ``--force`` waits out.
    """
    import os
    import signal

    processes = _processes()
    sessions = {
        word.split("=", 1)[1]
        for _, cmdline in processes.values()
        if f"--gcs_server_port={port} " in cmdline
        for word in cmdline.split()
        if word.startswith("--session-dir=")
    }
    ours = {pid for pid, (_, cmdline) in processes.items() if any(s in cmdline for s in sessions)}
    while more := {pid for pid, (parent, _) in processes.items() if parent in ours} - ours:
        ours |= more  # their descendants
    for pid in ours:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.time() + timeout
    while ours & set(_processes()) and time.time() < deadline:
        time.sleep(0.2)
