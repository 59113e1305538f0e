"""Benchmark the classifier: training images/s per epoch, and the served ensemble.

The issue asks for, in one run on one machine:

- training images/s per epoch at each profile's size (ResNet-18 at 32 px for ``quick``,
  ResNet-152 at 96 px for ``paper``), with and without the ``augment`` transforms;
- inference images/s of the served ensemble (``mlflow models serve``, HTTP, batch of 64)
  next to a plain torch forward of the same five models on the same batch (target: serving
  overhead <= 2x).

The fold models have random weights: speed does not depend on them. They are logged and
registered in a temporary MLflow store, and the real ``mlflow models serve`` serves them.

    .venv/bin/python benchmarks/bench_cls.py [--profiles quick,paper] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

from glioma.classify.contract import PARQUET_CONTENT_TYPE, parquet_body  # noqa: E402
from glioma.classify.export import log_ensemble, save_fold_model, stored_precision  # noqa: E402
from glioma.classify.network import GliomaResNet  # noqa: E402
from glioma.config.profiles import PROFILES  # noqa: E402
from glioma.names import ENSEMBLE_MODEL  # noqa: E402
from glioma.tracking import configure_tracking  # noqa: E402

# isort: split
from machine import Interference, best_of, machine_line, versions_line  # noqa: E402
from speed import train_images_per_s  # noqa: E402

BATCH = 64
TARGET = 2.0


def profile_size(profile: str) -> tuple[str, int]:
    return PROFILES[profile]["train_cls"]["arch"], int(PROFILES[profile]["prepare"]["patch_size"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(uri: str, home: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}
    command = ["mlflow", "models", "serve", "-m", uri, "--env-manager", "local", "-p", str(port)]
    server = subprocess.Popen(
        command, cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    for _ in range(240):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
            return server, port
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("mlflow models serve did not start")


def register_ensemble(arch: str, size: int, site: str) -> tuple[str, list[torch.nn.Module]]:
    """Five random fold models saved and joined as ``train_cls`` does (float16 folds inside one
    ensemble, a logged model of a run); the ensemble's models:/ URI and the float32 models."""
    configure_tracking()
    models = []
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run():
        dirs = {}
        for k in range(5):
            torch.manual_seed(k)
            models.append(GliomaResNet(arch).eval())
            dirs[f"fold{k}"] = str(save_fold_model(models[-1], Path(tmp) / f"fold{k}", size))
        example = np.zeros((2, 4, size, size), np.float32)
        logged = log_ensemble(
            dirs, name=ENSEMBLE_MODEL, combine="mean_prob", metadata={"site": site}, example=example
        )
        uri = logged.model_uri
    models = [stored_precision(m) for m in models]  # what the served folds compute with
    return uri, models


def serving_vs_torch(arch: str, size: int, repeats: int, home: Path) -> tuple[float, ...]:
    """Seconds for one batch: plain torch, served with JSON lists, served as Parquet."""
    batch = np.random.default_rng(0).random((BATCH, 4, size, size), dtype=np.float32) * 2 - 1
    bodies = {
        "json": (json.dumps({"inputs": batch.tolist()}).encode(), "application/json"),
        "parquet": (parquet_body(batch), PARQUET_CONTENT_TYPE),
    }
    uri, models = register_ensemble(arch, size, f"bench-{arch}-{size}")
    x = torch.from_numpy(batch)

    def plain():
        with torch.no_grad():
            return np.mean([torch.sigmoid(m(x)).numpy() for m in models], axis=0)

    torch_s = best_of(repeats, plain)
    server, port = serve(uri, home)
    served = {}
    try:
        for name, (body, content_type) in bodies.items():
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/invocations", body, {"Content-Type": content_type}
            )
            call = lambda r=request: urllib.request.urlopen(r, timeout=600).read()  # noqa: E731
            call()  # warm-up
            served[name] = best_of(repeats, call)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return torch_s, served["json"], served["parquet"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="quick,paper")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    print(machine_line())
    print(versions_line(torch, torchvision, mlflow), f"threads {torch.get_num_threads()}")
    home = Path(tempfile.mkdtemp(prefix="bench-cls-"))
    os.environ["GLIOMA_HOME"] = str(home)  # a throw-away MLflow store for the served models
    interference = Interference.start()
    for profile in args.profiles.split(","):
        arch, size = profile_size(profile)
        plain_rate = train_images_per_s(arch, size, False, args.repeats)
        augment_rate = train_images_per_s(arch, size, True, args.repeats)
        print(f"\n{profile}: {arch} at {size} px, batch 32")
        print(f"  training {plain_rate:8.1f} img/s   with augment {augment_rate:8.1f} img/s")
        torch_s, json_s, parquet_s = serving_vs_torch(arch, size, args.repeats, home)
        print(
            f"  5-model ensemble, batch {BATCH}: torch {BATCH / torch_s:.1f} img/s, {torch_s:.3f} s"
        )
        for name, seconds in (("JSON lists", json_s), ("Parquet", parquet_s)):
            ratio = seconds / torch_s
            verdict = "target met" if ratio <= TARGET else "TARGET MISSED"
            print(
                f"    served, {name:<12} {BATCH / seconds:8.1f} img/s ({seconds:.3f} s)"
                f"   overhead {ratio:.2f}x  {verdict}"
            )
    print("\n" + interference.report() + " (the model server counts as another process)")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
