"""Published weights in torch's hub cache: found there, else downloaded as torch.hub does.

pytorch-fid and torchvision fetch their weights on first use into ``<torch hub>/checkpoints``,
checking the SHA-256 of what arrived against the hash prefix in the file's name, with a
progress bar (``torch.hub.download_url_to_file``). The steps that need such weights do the same
here, once, before their work starts. ``GLIOMA_OFFLINE=1`` (a host without internet, and the
test suite) never tries: the step then says what to copy where.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch

from glioma.errors import MissingWeightsError

OFFLINE_ENV = "GLIOMA_OFFLINE"
# urllib has no timeout of its own: a firewall that drops packets would hang the step for ever.
DOWNLOAD_TIMEOUT_S = 60.0


def hub_checkpoints() -> Path:
    """Where torch.hub (and so pytorch-fid and torchvision) keeps downloaded weights."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


def fetch(url: str, *, what: str) -> Path:
    """The hub cache's copy of ``url``, downloaded first when it is absent.

    ``what`` names the weights in the message. The hash prefix in the file name
    (``resnet18-f37072fd.pth``) is checked as ``torch.hub.load_state_dict_from_url`` checks it;
    the file appears only whole (torch.hub writes a temporary file and renames it). Raises
    MissingWeightsError with the reason, on one line, when the file cannot be had.
    """
    file = hub_checkpoints() / url.rsplit("/", 1)[-1]
    if file.is_file():
        return file
    absent = f"{what} {file.name}: not in torch's hub cache {file.parent}"
    if offline():
        raise MissingWeightsError(f"{absent}, and {OFFLINE_ENV} is set (no download tried)")
    match = torch.hub.HASH_REGEX.search(file.name)
    file.parent.mkdir(parents=True, exist_ok=True)
    former = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        torch.hub.download_url_to_file(url, str(file), match.group(1) if match else None)
    except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        failed = f"{absent}, and the download from {url} failed ({reason})"
        raise MissingWeightsError(failed) from None
    finally:
        socket.setdefaulttimeout(former)
    return file
