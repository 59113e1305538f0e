"""The classifier two-sample test: what it says of sets it can and cannot tell apart."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from glioma.errors import ConfigError
from glioma.scoring.settings import TwoSampleSettings
from glioma.scoring.two_sample import auc_interval, two_sample_auc

FAST = TwoSampleSettings(epochs=15, width=8, n_boot=300)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def blobs(n: int, seed: int, *, rim: float = 0.0) -> np.ndarray:
    """Smooth random blobs in 4 channels, 16 px; ``rim`` adds a bright ring to channel 1."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(-1, 1, 16)
    y, x = np.meshgrid(axis, axis, indexing="ij")
    out = []
    for _ in range(n):
        cx, cy, r = rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(0.3, 0.6)
        d = np.hypot(x - cx, y - cy)
        image = np.stack([np.exp(-((d / r) ** 2)) * 2 - 1 for _ in range(4)])
        image[1] += rim * np.exp(-(((d - r) / 0.1) ** 2))
        out.append(np.clip(image + 0.05 * rng.standard_normal(image.shape), -1, 1))
    return np.asarray(out, dtype=np.float32)


def test_sets_it_cannot_tell_apart_score_near_half_and_others_near_one():
    real = blobs(40, 0)
    same = two_sample_auc(real, blobs(40, 1), settings=FAST)
    ringed = two_sample_auc(real, blobs(40, 2, rim=1.0), settings=FAST)
    assert same.low < 0.5 + 0.1 and same.high > 0.5 - 0.1 and same.auc < 0.8
    assert ringed.auc > 0.95 and ringed.low > 0.8
    assert same.n_train == 40 and same.n_test == 40  # half of each set on each side
    assert set(same.metrics("c2st_auc")) == {
        "c2st_auc", "c2st_auc_low", "c2st_auc_high", "c2st_auc_n_test"
    }  # fmt: skip
    again = two_sample_auc(real, blobs(40, 1), settings=FAST)
    assert again == same, "seeded: the same halves, weights and resamples"


def test_auc_interval_resamples_each_class_and_brackets_sklearns_auc():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(30), np.ones(20)].astype(int)
    scores = rng.normal(size=50) + labels
    low, high = auc_interval(labels, scores, n_boot=2000, seed=0)
    assert low < roc_auc_score(labels, scores) < high and high > 0.5
    assert auc_interval(labels, labels.astype(float), n_boot=50, seed=0) == (1.0, 1.0)
    assert auc_interval(labels, -labels.astype(float), n_boot=50, seed=0) == (0.0, 0.0)
    assert auc_interval(labels, np.zeros(50), n_boot=50, seed=0) == (0.5, 0.5)  # ties: half


def test_too_few_images_give_no_auc_and_bad_settings_name_the_field():
    assert two_sample_auc(blobs(3, 0), blobs(20, 1), settings=FAST) is None
    with pytest.raises(ConfigError, match="c2st_epochs: must be >= 1"):
        TwoSampleSettings(epochs=0)
