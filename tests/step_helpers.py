"""Settings and helpers shared by the tests that run whole steps or real servers."""

import socket
import subprocess
import time
import urllib.error
import urllib.request

# A DDPM small enough to train in a second or two: the steps' tests need a model, not a good one.
TINY_DDPM = {
    "epochs": "2",
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
