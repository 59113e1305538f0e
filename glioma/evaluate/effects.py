"""Paired differences to baseline over training seeds and subjects, with their uncertainty.

Every setup is tested on the same target subjects in every training seed, so a setup's effect is
a paired difference: ``d_s = metric(setup, seed s) - metric(baseline, seed s)`` on one set of
subjects, and the study's effect is the mean of ``d_s`` over seeds. Two sources move it: which
subjects the target site happened to have, and which training run each seed gave. They are
crossed (every seed sees every subject), so:

- **Interval: the pigeonhole bootstrap** (Owen 2007, "The pigeonhole bootstrap", Ann. Appl.
  Stat. 1(2):386-411): each resample draws the subjects with replacement *and*, independently,
  the seeds with replacement, and recomputes the mean difference; the percentile interval of the
  resamples. For crossed random effects it is mildly conservative (Owen's Theorem 2), which we
  prefer to an interval that ignores one source. With one seed it is the subject bootstrap.
  A mixed model would need a per-subject outcome; balanced accuracy, macro-F1 and ROC AUC are
  not sums over subjects, which the bootstrap does not need.
- **Test: a paired permutation test, the subject the unit, pooled over seeds**: under "setup and
  baseline are the same", swapping a subject's two outputs changes nothing; each permutation
  swaps a random set of subjects in every seed at once and recomputes the mean difference; the
  two-sided p-value counts permutations at least as extreme as the observed one (Bandos,
  Rockette & Gur 2005, Stat. Med. 24:2873-2893, for ROC AUC; the same swap for the threshold
  metrics). It conditions on the trained models: the interval, not the test, carries the seeds'
  variance.

All resamples are computed at once on arrays (resample, seed, subject); ROC AUC by midranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from glioma.evaluate.stats import count_metrics

EFFECT_METRICS = ("balanced_accuracy", "macro_f1", "roc_auc")


@dataclass(frozen=True)
class PairedOutputs:
    """One direction's setup and baseline on the same subjects: ``labels`` (N,), probabilities
    of HGG (S, N) per training seed, in the same subject order."""

    labels: np.ndarray
    setup: np.ndarray
    baseline: np.ndarray
    seeds: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.setup.shape != self.baseline.shape or self.setup.shape[1:] != self.labels.shape:
            raise ValueError(
                f"paired outputs: setup {self.setup.shape}, baseline {self.baseline.shape} and "
                f"labels {self.labels.shape} do not line up"
            )


def arm_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, np.ndarray]:
    """Each effect metric of (R, S, N) probabilities against (R, N) labels: (R, S) values."""
    y = labels[:, None, :].astype(bool)
    predicted = probabilities >= 0.5
    counts = count_metrics(
        (y & predicted).sum(-1),
        (~y & predicted).sum(-1),
        (~y & ~predicted).sum(-1),
        (y & ~predicted).sum(-1),
    )
    positives = y.sum(-1)
    negatives = y.shape[-1] - positives
    ranks = rankdata(probabilities, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = ((ranks * y).sum(-1) - positives * (positives + 1) / 2) / (positives * negatives)
    auc = np.where((positives > 0) & (negatives > 0), auc, np.nan)
    return {
        "balanced_accuracy": counts["balanced_accuracy"],
        "macro_f1": counts["macro_f1"],
        "roc_auc": auc,
    }


def differences(
    labels: np.ndarray, setup: np.ndarray, baseline: np.ndarray
) -> dict[str, np.ndarray]:
    """metric(setup) - metric(baseline), (R, S), for (R, N) labels and (R, S, N) outputs."""
    first, second = arm_metrics(labels, setup), arm_metrics(labels, baseline)
    return {name: first[name] - second[name] for name in EFFECT_METRICS}


def per_seed(outputs: PairedOutputs) -> dict[str, np.ndarray]:
    """Each seed's difference on all subjects: (S,) per metric."""
    found = differences(outputs.labels[None], outputs.setup[None], outputs.baseline[None])
    return {name: values[0] for name, values in found.items()}


def pigeonhole_bootstrap(
    outputs: PairedOutputs, *, n_boot: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """The mean difference over seeds, in each of ``n_boot`` resamples of subjects and of
    seeds (drawn independently: Owen 2007); resamples with one class give NaN."""
    n_seeds, n_subjects = outputs.setup.shape
    subjects = rng.integers(0, n_subjects, (n_boot, n_subjects))
    seeds = rng.integers(0, n_seeds, (n_boot, n_seeds))
    labels = outputs.labels[subjects]
    setup = np.moveaxis(outputs.setup[:, subjects], 0, 1)  # (R, S, N)
    baseline = np.moveaxis(outputs.baseline[:, subjects], 0, 1)
    found = differences(labels, setup, baseline)
    return {name: np.take_along_axis(d, seeds, 1).mean(1) for name, d in found.items()}


def permutation_means(
    outputs: PairedOutputs, *, n_perm: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """The mean difference over seeds when a random set of subjects has its setup and baseline
    outputs swapped, the same subjects in every seed (Bandos et al. 2005): (n_perm,)."""
    swap = rng.random((n_perm, 1, len(outputs.labels))) < 0.5
    setup = np.where(swap, outputs.baseline[None], outputs.setup[None])
    baseline = np.where(swap, outputs.setup[None], outputs.baseline[None])
    labels = np.broadcast_to(outputs.labels, (n_perm, len(outputs.labels)))
    return {name: d.mean(1) for name, d in differences(labels, setup, baseline).items()}


def paired_effect(
    outputs: PairedOutputs, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> list[dict]:
    """One row per metric: the mean difference, its interval, the pooled test, each seed's."""
    rng = np.random.default_rng(seed)
    points = per_seed(outputs)
    resampled = pigeonhole_bootstrap(outputs, n_boot=n_boot, rng=rng)
    permuted = permutation_means(outputs, n_perm=n_boot, rng=rng)
    tail = (1 - level) / 2 * 100
    rows = []
    for name in EFFECT_METRICS:
        observed = float(points[name].mean())
        finite = resampled[name][np.isfinite(resampled[name])]
        low, high = np.percentile(finite, (tail, 100 - tail)) if len(finite) else (np.nan,) * 2
        extreme = np.abs(permuted[name]) >= abs(observed) - 1e-12
        rows.append(
            {
                "metric": name,
                "difference": observed,
                "ci_low": float(low),
                "ci_high": float(high),
                "p_value": float((1 + extreme.sum()) / (1 + len(extreme))),
                "seed_sd": float(points[name].std(ddof=1)) if len(points[name]) > 1 else np.nan,
                "seed_differences": [float(v) for v in points[name]],
            }
        )
    return rows


def paired_outputs(predictions: pd.DataFrame, setup: str, baseline: str) -> PairedOutputs:
    """One direction's per-subject predictions (columns seed, setup, subject_id, label,
    prob_hgg) as arrays; every seed must hold the same subjects."""
    seeds = tuple(sorted(predictions["seed"].unique()))
    wide = predictions.pivot_table(
        index="subject_id", columns=["setup", "seed"], values="prob_hgg", aggfunc="first"
    )
    missing = [s for s in (setup, baseline) if s not in wide.columns.get_level_values(0)]
    if missing or wide.isna().any().any():
        raise ValueError(f"paired effects: {setup} and {baseline} lack subjects in some seed")
    labels = predictions.groupby("subject_id")["label"].first().loc[wide.index].to_numpy()
    return PairedOutputs(
        labels=labels.astype(int),
        setup=np.stack([wide[(setup, s)].to_numpy() for s in seeds]),
        baseline=np.stack([wide[(baseline, s)].to_numpy() for s in seeds]),
        seeds=seeds,
    )


def study_effects(
    predictions: pd.DataFrame, *, baseline: str = "baseline", n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Per direction and setup (other than ``baseline``), each metric's paired difference.

    ``predictions``: one row per direction, seed, setup and subject (columns direction, seed,
    setup, subject_id, label, prob_hgg). Empty without a baseline.
    """
    rows = []
    for direction, part in predictions.groupby("direction", sort=False):
        if baseline not in set(part["setup"]):
            continue
        for setup in [s for s in dict.fromkeys(part["setup"]) if s != baseline]:
            outputs = paired_outputs(part, setup, baseline)
            for row in paired_effect(outputs, n_boot=n_boot, seed=seed):
                rows.append(
                    {
                        "direction": direction,
                        "setup": setup,
                        **row,
                        "n_seeds": len(outputs.seeds),
                        "n_subjects": len(outputs.labels),
                    }
                )
    return pd.DataFrame(rows)
