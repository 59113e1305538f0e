"""The learning curve's scores of one sample set against one grade's real images
(``bench_learning_curve.py``): fidelity and coverage in the radiomic space, rings, the
two-sample AUC, memorisation and geometry, each beside the held-out real images' own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rings import ring_share

from glioma.config import TrainDDPMConfig, build_config
from glioma.data.splits import ddpm_subjects
from glioma.scoring.distances import kernel_inception_distance
from glioma.scoring.fidelity import prdc_metrics
from glioma.scoring.memorisation import copy_distances, nearest_training_correlation
from glioma.scoring.radiomics import radiomic_features, radiomic_frechet_distance, standardise
from glioma.scoring.two_sample import TwoSampleSettings, two_sample_auc


@dataclass
class GradeData:
    train: np.ndarray
    held_out: np.ndarray
    train_features: np.ndarray
    held_out_features: np.ndarray


def grade_data(dataset, splits, grade: str, seed: int, profile: str) -> tuple[GradeData, list[str]]:
    config = build_config(TrainDDPMConfig, {"grade": grade, "seed": seed, "profile": profile})
    ids, grades = list(dataset.subjects["subject_id"]), list(dataset.subjects["grade"])
    train_ids, val_ids = ddpm_subjects(
        ids, grades, splits, grade=grade, val_fraction=config.val_fraction, seed=seed
    )
    train, held = dataset.select(train_ids)[0], dataset.select(val_ids)[0]
    features = radiomic_features(train, progress=False), radiomic_features(held, progress=False)
    return GradeData(train, held, *features), train_ids


def geometry(images: np.ndarray, training: np.ndarray) -> dict[str, float]:
    """Do samples come out shifted or padded? Pearson r of the samples' mean image with the
    training images' mean image (4 contrasts, lesion centred in both), and the share of
    samples whose four 3x3 corners are constant (a padding value)."""

    def r(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

    mean, reference = images.mean(0), training.mean(0)
    edge = (slice(0, 3), slice(-3, None))
    corners = [images[:, :, a, b].reshape(len(images), -1) for a in edge for b in edge]
    flat = np.all([c.std(1) < 1e-3 for c in corners], axis=0)
    return {
        "mean_image_r": r(mean, reference),
        "flat_corners": float(flat.mean()),
    }


def sample_scores(samples: np.ndarray, data: GradeData, seed: int) -> dict[str, float]:
    fake = radiomic_features(samples, progress=False)
    real_z, fake_z = (
        standardise(data.train_features, data.train_features),
        standardise(fake, data.train_features),
    )
    kid = kernel_inception_distance(
        real_z, fake_z, subsets=50, subset_size=min(len(real_z), len(fake_z)), seed=seed
    )
    nearest = nearest_training_correlation(samples, data.train, progress=False)
    c2st = two_sample_auc(data.train, samples, settings=TwoSampleSettings(seed=seed))
    return {
        "ring_share": ring_share(samples),
        **c2st.metrics("c2st_auc"),
        "copy_fraction": copy_distances(samples, data.train).fraction(),
        "fd_radiomic": radiomic_frechet_distance(data.train_features, fake).value,
        "kid_radiomic": kid.mean,
        **prdc_metrics(real_z, fake_z),
        "memorisation_mean": float(nearest.correlation.mean()),
        **geometry(samples, data.train),
    }


def references(data: GradeData) -> dict[str, float]:
    """The held-out real images' figures (FD needs two of them: phantom-b's LGG has one)."""
    nearest = nearest_training_correlation(data.held_out, data.train, progress=False)
    fd = float("nan")
    if len(data.held_out) >= 2:
        fd = radiomic_frechet_distance(data.train_features, data.held_out_features).value
    c2st = two_sample_auc(data.train, data.held_out)
    return {
        "ring_share_real": ring_share(data.train),
        "c2st_auc_held_out": c2st.auc if c2st else float("nan"),
        "copy_fraction_held_out": copy_distances(data.held_out, data.train).fraction(),
        "fd_radiomic_held_out": fd,
        "memorisation_held_out_mean": float(nearest.correlation.mean()),
    }
