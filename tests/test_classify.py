"""The classifier parts on known cases: stem, ImageNet rule, focal loss, augmentation, ensemble."""

import io

import numpy as np
import pytest
import torch
import torchvision
from mlflow.exceptions import MlflowException
from torchvision.ops import sigmoid_focal_loss

from glioma.classify.augment import classic_augmentation
from glioma.classify.contract import parquet_body
from glioma.classify.ensemble import (
    EnsemblePyfunc,
    averaged_model,
    checked_batch,
    ensemble_signature,
)
from glioma.classify.export import save_fold_model, stored_precision
from glioma.classify.losses import focal_loss
from glioma.classify.network import GliomaResNet, build_classifier, imagenet_weight_files
from glioma.errors import DataError


def test_four_channel_stem_and_one_logit():
    model = GliomaResNet("resnet18")
    assert model.net.conv1.weight.shape == (64, 4, 7, 7)
    out = model(torch.zeros(3, 4, 32, 32))
    assert out.shape == (3,) and model.features(torch.zeros(2, 4, 32, 32)).shape == (2, 512)


@pytest.fixture
def imagenet_file(tmp_path, monkeypatch):
    """A torchvision ResNet-18 state dict under its ImageNet file name in a fake hub cache."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    torch.manual_seed(1)
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "hub" / "checkpoints" / imagenet_weight_files("resnet18")[0]
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return path, state


def test_imagenet_init_rule(imagenet_file):
    path, state = imagenet_file
    model, init = build_classifier("resnet18")  # found in the hub cache
    assert init == f"imagenet:{path.name}"
    stem = model.net.conv1.weight.detach()
    torch.testing.assert_close(stem[:, :3], state["conv1.weight"])
    torch.testing.assert_close(stem[:, 3], state["conv1.weight"].mean(dim=1))
    torch.testing.assert_close(model.net.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])
    assert model.net.fc.weight.shape == (1, 512)
    assert build_classifier("resnet18", "none")[1] == "random"
    assert build_classifier("resnet18", str(path))[1] == f"imagenet:{path.name}"


def test_without_imagenet_weights_random_init_and_bad_files(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty"))
    assert build_classifier("resnet18")[1] == "random"
    with pytest.raises(DataError, match="no such file"):
        build_classifier("resnet18", str(tmp_path / "missing.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"junk")
    with pytest.raises(DataError, match="not a torch state dict"):
        build_classifier("resnet18", str(junk))


def test_focal_loss_is_torchvisions_with_alpha_025_gamma_2():
    logits, labels = torch.randn(16), (torch.rand(16) > 0.5).float()
    expected = sigmoid_focal_loss(logits, labels, alpha=0.25, gamma=2.0, reduction="mean")
    torch.testing.assert_close(focal_loss(logits, labels), expected)
    p = torch.sigmoid(logits)
    p_t = p * labels + (1 - p) * (1 - labels)
    alpha_t = 0.25 * labels + 0.75 * (1 - labels)
    by_hand = (-alpha_t * (1 - p_t) ** 2 * torch.log(p_t)).mean()
    torch.testing.assert_close(focal_loss(logits, labels), by_hand)


def test_augmentation_keeps_the_four_contrasts_aligned():
    torch.manual_seed(0)
    plane = torch.rand(32, 32) * 2 - 1
    image = torch.stack([plane, plane * 0.5, -plane, plane])
    transform = classic_augmentation(noise=0.0, intensity=0.0)
    moved = 0
    for seed in range(10):
        torch.manual_seed(seed)
        out = transform(image)
        assert out.shape == (4, 32, 32)
        background = out[0] == -1.0  # filled identically in every contrast
        torch.testing.assert_close(out[1][~background], out[0][~background] * 0.5)
        torch.testing.assert_close(out[2][~background], -out[0][~background])
        torch.testing.assert_close(out[3], out[0])
        moved += not torch.equal(out, image)
    assert moved >= 8  # it does transform


class _Context:
    def __init__(self, artifacts, config):
        self.artifacts, self.model_config = artifacts, config


def test_ensemble_equals_the_mean_of_its_folds(tmp_path):
    torch.manual_seed(0)
    folds = [GliomaResNet("resnet18").eval() for _ in range(3)]
    paths = {}
    for k, model in enumerate(folds):
        paths[f"fold{k}"] = str(save_fold_model(model, tmp_path / f"f{k}", 16))
    x = torch.rand(5, 4, 16, 16) * 2 - 1
    with torch.no_grad():
        stored = [stored_precision(m) for m in folds]  # as save_fold_model keeps them
        expected = torch.stack([torch.sigmoid(m(x)) for m in stored]).mean(0).numpy()
    ensemble = EnsemblePyfunc()
    ensemble.load_context(_Context(paths, {"image_size": 16, "combine": "mean_prob"}))
    frame = ensemble.predict(None, x.numpy())
    np.testing.assert_allclose(frame["prob_hgg"], expected, rtol=1e-5)
    assert list(frame["label"]) == ["HGG" if p >= 0.5 else "LGG" for p in expected]
    merged = averaged_model([GliomaResNet("resnet18") for _ in range(2)])
    assert isinstance(merged, GliomaResNet)


def test_weight_averaging_averages_parameters():
    torch.manual_seed(0)
    a, b = GliomaResNet("resnet18"), GliomaResNet("resnet18")
    wa, wb = a.net.fc.weight.detach().clone(), b.net.fc.weight.detach().clone()
    merged = averaged_model([a, b])
    torch.testing.assert_close(merged.net.fc.weight.detach(), (wa + wb) / 2)


def test_a_parquet_body_reaches_the_model_as_the_declared_tensor():
    """The bulk encoding goes through MLflow's own Parquet reader and schema enforcement."""
    from mlflow.models.utils import _enforce_schema
    from mlflow.pyfunc.scoring_server import parse_parquet_input

    images = np.random.default_rng(0).uniform(-1, 1, (3, 4, 16, 16)).astype(np.float32)
    table = parse_parquet_input(io.BytesIO(parquet_body(images)))
    batch = _enforce_schema(table, ensemble_signature(16).inputs)
    np.testing.assert_array_equal(checked_batch(batch, 16), images)
    with pytest.raises(MlflowException, match=r"expected shape of: '\(-1, 4, 16, 16\)'"):
        _enforce_schema(parse_parquet_input(io.BytesIO(parquet_body(images[:, :3]))),
                        ensemble_signature(16).inputs)  # fmt: skip


@pytest.mark.parametrize(
    "payload, reason",
    [
        (np.zeros((2, 3, 16, 16)), "input shape (2, 3, 16, 16)"),
        (np.zeros((2, 4, 8, 16)), "expected (N, 4, 16, 16)"),
        (np.zeros((4, 16, 16)), "input shape (4, 16, 16)"),
        (np.full((2, 4, 16, 16), np.nan), "NaN or infinite values (first in image 0)"),
        ([["a", "b"]], "must be numbers"),
        (
            np.full((2, 4, 16, 16), 0.5) + np.eye(16) * 811,
            "range [-1, 1]; image 0 spans [0.5, 811.5]",
        ),
        (np.full((1, 4, 16, 16), -1.0001), "not raw intensities"),
    ],
)
def test_bad_inputs_raise_a_400_that_says_what_is_wrong(payload, reason):
    with pytest.raises(MlflowException) as caught:
        checked_batch(payload, 16)
    assert reason in caught.value.message and caught.value.get_http_status_code() == 400
