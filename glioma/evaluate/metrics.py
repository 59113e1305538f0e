"""Binary LGG/HGG metrics (HGG = 1 is the positive class) and the confusion-matrix picture."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    roc_auc_score,
)

from glioma.names import GRADES  # noqa: E402

CLASS_NAMES = GRADES  # label 0, label 1


def binary_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict:
    """accuracy, f1 (HGG positive), balanced_accuracy, roc_auc (NaN with one class present)."""
    labels = np.asarray(labels).astype(int)
    predicted = (np.asarray(probabilities) >= threshold).astype(int)
    both = len(np.unique(labels)) == 2
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1": float(f1_score(labels, predicted, pos_label=1, zero_division=0)),
        "balanced_accuracy": float(balanced_accuracy_score(labels, predicted))
        if both
        else float("nan"),
        "roc_auc": float(roc_auc_score(labels, probabilities)) if both else float("nan"),
    }


def confusion(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """2x2 counts: rows true LGG/HGG, columns predicted LGG/HGG."""
    predicted = (np.asarray(probabilities) >= threshold).astype(int)
    return confusion_matrix(np.asarray(labels).astype(int), predicted, labels=[0, 1])


def confusion_figure(matrix: np.ndarray, title: str):
    fig, ax = plt.subplots(figsize=(3.4, 3.0), constrained_layout=True)
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        ax.text(j, i, str(count), ha="center", va="center", color=colour, fontsize=12)
    ax.set_xticks([0, 1], CLASS_NAMES)
    ax.set_yticks([0, 1], CLASS_NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    return fig
