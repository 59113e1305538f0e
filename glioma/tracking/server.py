"""A tracking server on loopback over a local store, for steps that run in parallel.

SQLite takes one writer at a time, and MLflow's SQLite store is not made for several processes
writing at once. When the steps of a study run as parallel workers and the store is a local
file, the study starts ``mlflow server`` on 127.0.0.1 over that same store and points every
worker (and itself) at it: one process writes the database, the workers talk HTTP. Artifacts
stay where the store's experiments keep them (the server runs with ``--no-serve-artifacts``,
so workers write artifact files directly), which is why this serves workers on this machine
or on a shared filesystem; a cluster across machines needs ``MLFLOW_TRACKING_URI`` set to a
shared server.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from glioma.errors import GliomaError

LOCAL_SCHEMES = ("sqlite:", "file:")


def is_local_store(uri: str) -> bool:
    """Whether ``uri`` is a file store that parallel writers must not share directly."""
    return uri.startswith(LOCAL_SCHEMES) or "://" not in uri


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: receive SIGTERM when the study process dies (Linux)."""
    # Elsewhere than Linux a killed study leaves the server to be stopped by hand.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setpgrp()


def _artifact_root(uri: str) -> Path:
    """Where new experiments keep artifacts: ``mlruns`` beside a database, or a file store."""
    if uri.startswith("sqlite:"):
        return Path(make_url(uri).database or ".").resolve().parent / "mlruns"
    return Path(uri.removeprefix("file://").removeprefix("file:")).resolve()


def _wait_until_healthy(url: str, server: subprocess.Popen, log, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            log.seek(0)
            tail = " ".join(log.read().decode(errors="replace").split()[-60:])
            raise GliomaError(f"mlflow server exited at start ({server.returncode}): {tail}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise GliomaError(f"mlflow server on {url} did not answer within {timeout:.0f} s")


@contextmanager
def loopback_server(store_uri: str, timeout: float = 120) -> Iterator[str]:
    """``mlflow server`` on 127.0.0.1 over ``store_uri``; yields its URL, stops it after."""
    port = _free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow_cli) if mlflow_cli.exists() else "mlflow",
        *("server", "--backend-store-uri", store_uri),
        *("--default-artifact-root", str(_artifact_root(store_uri)), "--no-serve-artifacts"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # The server's messages go to a file, read back only if it fails to start.
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            preexec_fn=_die_with_parent,  # a fork-safe prctl, then exec
        )
        try:
            _wait_until_healthy(f"http://127.0.0.1:{port}", server, log, timeout)
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(server)


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group; SIGKILL if it has not gone after 30 s."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
