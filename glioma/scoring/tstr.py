"""What synthetic images are worth to a classifier: TSTR against TRTR (Esteban et al. 2017).

TSTR ("train on synthetic, test on real") trains a classifier of the study's architecture on
synthetic images only, both grades, balanced, and evaluates it on real images; TRTR trains the
same classifier, with the same settings and seed, on the real training images and evaluates it
on the same real images. TSTR / TRTR near 1 says the synthetic set carries what the real one
carries about the grade. Neither selects anything with the evaluation images: each keeps a
part of its own training set (``val_share``) to choose its epoch, so the evaluation images can
be ones that must stay unseen (a site's test split, for site-scoped DDPMs).
"""

from __future__ import annotations

import numpy as np
import torch

from glioma.classify.network import build_classifier
from glioma.classify.settings import ClsSettings
from glioma.classify.training import labels_tensor, predict_logits, train_fold
from glioma.evaluate.metrics import binary_metrics
from glioma.scoring.settings import TSTRSettings

Labelled = tuple[np.ndarray, np.ndarray]  # images (N, 4, H, W), labels (N,) 0 LGG / 1 HGG


def balanced(images: dict[str, np.ndarray], labels: dict[str, int], seed: int) -> Labelled:
    """Both grades' images, every one of them, the smaller grade topped up to the larger's count
    by seeded repeats (LGG sets are a third of HGG's: cutting HGG to LGG's count would leave a
    ResNet a few dozen images), with their labels."""
    n = max(len(v) for v in images.values())
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for grade, x in sorted(images.items()):
        extra = rng.choice(len(x), n - len(x), replace=True) if len(x) < n else []
        xs.append(np.concatenate([x, x[np.asarray(extra, dtype=int)]]))
        ys.append(np.full(n, labels[grade]))
    return np.concatenate(xs), np.concatenate(ys)


def split_off(data: Labelled, share: float, seed: int) -> tuple[Labelled, Labelled]:
    """(train, val): ``share`` of each class to val (at least one), stratified and seeded."""
    x, y = data
    rng = np.random.default_rng(seed)
    val = np.zeros(len(y), bool)
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        val[rng.choice(rows, max(1, int(round(share * len(rows)))), replace=False)] = True
    return (x[~val], y[~val]), (x[val], y[val])


def train_and_score(data: Labelled, evaluate: Labelled, settings: TSTRSettings, device) -> dict:
    """Train on ``data`` (its own val split picks the epoch); metrics on ``evaluate``."""
    (tx, ty), (vx, vy) = split_off(data, settings.val_share, settings.seed)
    torch.manual_seed(settings.seed)
    model, _ = build_classifier(settings.arch, "none")
    train_fold(
        model,
        train=(torch.from_numpy(tx), labels_tensor(ty)),
        val=(torch.from_numpy(vx), labels_tensor(vy)),
        settings=ClsSettings(
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            lr=settings.lr,
            seed=settings.seed,
        ),
        device=device,
    )
    probs = torch.sigmoid(predict_logits(model, torch.from_numpy(evaluate[0]))).numpy()
    return binary_metrics(evaluate[1], probs)


def tstr_trtr(
    synthetic: Labelled, real: Labelled, evaluate: Labelled, settings: TSTRSettings, device="cpu"
) -> dict[str, float]:
    """``tstr_*``, ``trtr_*`` (balanced_accuracy, roc_auc, accuracy, f1) and their ratios."""
    out = {}
    for name, data in (("tstr", synthetic), ("trtr", real)):
        metrics = train_and_score(data, evaluate, settings, device)
        out |= {f"{name}_{k}": v for k, v in metrics.items()}
    for key in ("balanced_accuracy", "roc_auc"):
        trtr = out[f"trtr_{key}"]
        out[f"tstr_over_trtr_{key}"] = out[f"tstr_{key}"] / trtr if trtr > 0 else float("nan")
    out |= {"tstr_n_train": len(synthetic[1]), "trtr_n_train": len(real[1])}
    return out | {"tstr_n_evaluated": len(evaluate[1])}
