"""DDPM training augmentation: label-preserving, centred, no padding, seeded."""

import pytest
import torch

from glioma.diffusion.augment import Augmentation, augment_batch
from glioma.errors import ConfigError


def lesion_batch(n: int = 64, size: int = 32) -> torch.Tensor:
    """Images with brain texture everywhere and a bright disc (the lesion) at the centre."""
    gen = torch.Generator().manual_seed(1)
    images = torch.rand((n, 4, size, size), generator=gen) * 0.6 - 0.8
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disc = ((yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2) < 25
    images[:, 1][:, disc] = 0.9  # T1ce enhancing
    images[:, 0, :, : size // 4] -= 0.1  # a left-right asymmetry, to see flips
    return images


def centroid(images: torch.Tensor) -> torch.Tensor:
    mask = (images[:, 1] > 0.5).float()
    yy, xx = torch.meshgrid(
        torch.arange(images.shape[-2]), torch.arange(images.shape[-1]), indexing="ij"
    )
    total = mask.sum(dim=(1, 2))
    return torch.stack([(mask * yy).sum((1, 2)) / total, (mask * xx).sum((1, 2)) / total], 1)


def test_flip_is_exact_and_zero_probability_is_identity():
    images = lesion_batch(16)
    gen = torch.Generator().manual_seed(0)
    flipped = augment_batch(images, gen, Augmentation(prob=1.0, degrees=0.0, zoom=0.0))
    for a, b in zip(images, flipped):
        assert torch.allclose(b, a, atol=1e-5) or torch.allclose(b, a.flip(-1), atol=1e-5)
    assert any(not torch.allclose(b, a, atol=1e-5) for a, b in zip(images, flipped))
    off = augment_batch(images, torch.Generator().manual_seed(0), Augmentation(prob=0.0))
    assert off is images


def test_rotation_and_zoom_keep_the_lesion_centred_without_padding():
    images = lesion_batch()
    aug = Augmentation(prob=1.0, degrees=10.0, zoom=0.05)
    out = augment_batch(images, torch.Generator().manual_seed(3), aug)
    assert out.shape == images.shape and out.abs().max() <= 1
    assert (centroid(out) - centroid(images)).abs().max() < 0.75  # pixels
    # reflection: the corners hold image texture, not a constant fill value
    corners = out[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.std() > 0.1 and not torch.isclose(corners, torch.tensor(-1.0)).any()
    assert not torch.allclose(out, images)
    # the four channels move together: the lesion is where it was in every contrast
    lesion = out[:, 1] > 0.5
    assert lesion.sum() > 0.8 * (images[:, 1] > 0.5).sum()


def test_share_transformed_follows_prob_and_the_seed_decides():
    images = lesion_batch(400, 8)
    out = augment_batch(images, torch.Generator().manual_seed(5), Augmentation(prob=0.3))
    changed = (out - images).flatten(1).abs().max(1).values > 1e-5
    assert 0.22 < changed.float().mean() < 0.38
    again = augment_batch(images, torch.Generator().manual_seed(5), Augmentation(prob=0.3))
    assert torch.equal(out, again)


@pytest.mark.parametrize(
    "field,kwargs", [("augment_prob", {"prob": 1.5}), ("augment_degrees", {"degrees": 90})]
)
def test_bad_settings_name_the_field(field, kwargs):
    with pytest.raises(ConfigError, match=field):
        Augmentation(**kwargs)
