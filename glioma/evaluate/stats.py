"""Confidence intervals and paired tests for classifiers evaluated on the same subjects.

- Bootstrap: resample subjects with replacement (``n_boot`` times, seeded), recompute the
  metric, take the 2.5th and 97.5th percentiles (percentile interval). One image per subject,
  so resampling images is resampling subjects. Resamples with one class only give NaN for
  metrics that need both and are skipped.
- Exact McNemar: of the subjects where exactly one of two classifiers is right (b: only the
  first, c: only the second), under H0 b ~ Binomial(b + c, 1/2); two-sided exact p-value.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    recall_score,
    roc_auc_score,
)

Metric = Callable[[np.ndarray, np.ndarray, np.ndarray], float]  # (labels, predicted, probs)


def _both(labels: np.ndarray) -> bool:
    return len(np.unique(labels)) == 2


METRICS: dict[str, Metric] = {
    "accuracy": lambda y, p, s: accuracy_score(y, p),
    "f1": lambda y, p, s: f1_score(y, p, pos_label=1, zero_division=0),
    "macro_f1": lambda y, p, s: f1_score(y, p, average="macro", labels=[0, 1], zero_division=0),
    "balanced_accuracy": lambda y, p, s: balanced_accuracy_score(y, p) if _both(y) else np.nan,
    "roc_auc": lambda y, p, s: roc_auc_score(y, s) if _both(y) else np.nan,
    "sensitivity": lambda y, p, s: (
        recall_score(y, p, pos_label=1, zero_division=0) if (y == 1).any() else np.nan
    ),
    "specificity": lambda y, p, s: (
        recall_score(y, p, pos_label=0, zero_division=0) if (y == 0).any() else np.nan
    ),
}


def point_estimates(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict:
    labels = np.asarray(labels).astype(int)
    predicted = (np.asarray(probabilities) >= threshold).astype(int)
    return {name: float(f(labels, predicted, probabilities)) for name, f in METRICS.items()}


def count_metrics(tp, fp, tn, fn) -> dict[str, np.ndarray]:
    """The threshold metrics from confusion counts (arrays: one value per resample)."""
    tp, fp, tn, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, tn, fn))
    with np.errstate(divide="ignore", invalid="ignore"):
        sensitivity = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        specificity = np.where(tn + fp > 0, tn / (tn + fp), np.nan)
        f1_hgg = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        f1_lgg = np.where(2 * tn + fn + fp > 0, 2 * tn / (2 * tn + fn + fp), 0.0)
    both = (tp + fn > 0) & (tn + fp > 0)
    return {
        "accuracy": (tp + tn) / (tp + fp + tn + fn),
        "f1": f1_hgg,
        "macro_f1": (f1_hgg + f1_lgg) / 2,
        "balanced_accuracy": np.where(both, (sensitivity + specificity) / 2, np.nan),
        "sensitivity": sensitivity,
        "specificity": specificity,
    }


def bootstrap_ci(
    labels: np.ndarray,
    probabilities: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    threshold: float = 0.5,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of every metric, resampling subjects.

    Threshold metrics come from confusion counts of all resamples at once; ROC AUC is
    sklearn's per resample.
    """
    labels = np.asarray(labels).astype(int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predicted = (probabilities >= threshold).astype(int)
    index = np.random.default_rng(seed).integers(0, len(labels), (n_boot, len(labels)))
    y, p = labels[index], predicted[index]
    samples = count_metrics(
        ((y == 1) & (p == 1)).sum(1),
        ((y == 0) & (p == 1)).sum(1),
        ((y == 0) & (p == 0)).sum(1),
        ((y == 1) & (p == 0)).sum(1),
    )
    samples["roc_auc"] = np.array(
        [roc_auc_score(yi, probabilities[i]) if _both(yi) else np.nan for yi, i in zip(y, index)]
    )
    tail = (1 - level) / 2 * 100
    intervals = {}
    for name in METRICS:
        values = samples[name][np.isfinite(samples[name])]
        intervals[name] = (
            tuple(float(v) for v in np.percentile(values, (tail, 100 - tail)))
            if len(values)
            else (float("nan"), float("nan"))
        )
    return intervals


def mcnemar_exact(labels: np.ndarray, first: np.ndarray, second: np.ndarray) -> dict[str, float]:
    """Exact McNemar test of two classifiers' predicted labels on the same subjects."""
    right_first = np.asarray(first) == np.asarray(labels)
    right_second = np.asarray(second) == np.asarray(labels)
    b = int((right_first & ~right_second).sum())
    c = int((~right_first & right_second).sum())
    p_value = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    return {"only_first_right": b, "only_second_right": c, "p_value": p_value}


def majority_accuracy(labels: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent class: the floor plain accuracy must beat."""
    labels = np.asarray(labels).astype(int)
    return float(max(labels.mean(), 1 - labels.mean())) if len(labels) else float("nan")
