"""The ``score_gen`` step: how good and how new one synthetic dataset is.

Scores a ``sample`` run's images against the real images its DDPM trained on (from the DDPM
run's ``training_subjects.json``), with the DDPM's held-out validation images of the same grade
as the reference for what "not memorised" looks like on this data.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import torch

from glioma.config import ScoreGenConfig, as_params
from glioma.data.dataset import Dataset, read_dataset
from glioma.devices import resolve_device
from glioma.diffusion.mi import mutual_information
from glioma.errors import DataError
from glioma.pipeline.prepare_step import DATASET_ARTIFACT
from glioma.pipeline.upstream import (
    artifact_folder,
    checked_run,
    load_prepared,
    prepare_run_output,
    sampled_run,
)
from glioma.scoring.classifier_features import classifier_features, load_classifier
from glioma.scoring.distances import (
    FrechetResult,
    frechet_distance,
    kernel_inception_distance,
)
from glioma.scoring.diversity import mean_pairwise_msssim
from glioma.scoring.encoders import encoded_views, parse_encoder
from glioma.scoring.figures import correlation_histogram, nearest_pairs_figure
from glioma.scoring.inception import (
    FIDInception,
    MissingWeightsError,
    find_weights,
    inception_features,
)
from glioma.scoring.inception_score import inception_score
from glioma.scoring.memorisation import memorisation_summary, nearest_training_correlation
from glioma.scoring.radiomics import radiomic_features, radiomic_frechet_distance
from glioma.scoring.report import comparison_table, markdown_table
from glioma.tracking import step_run
from glioma.tracking.registry import cls_model_name, resolve_alias
from glioma.tracking.reuse import find_finished_run

# Settings that must match for two score_gen runs (std vs mi) to be comparable.
COMPARABLE_PARAMS = ("encoder", "memorisation_region", "profile", "kid_subset_size")


@dataclass(frozen=True)
class ScoreInputs:
    sample_run: str
    ddpm_run: str
    prepare_run: str
    site: str
    grade: str
    variant: str
    synthetic: Dataset
    training: np.ndarray  # the DDPM's training images (this grade, non-test subjects)
    training_ids: list[str]
    held_out: np.ndarray  # the DDPM's validation images: real, same grade, never trained on
    held_out_ids: list[str]


@dataclass(frozen=True)
class ScoreOutput:
    run_id: str
    metrics: dict[str, float]


def score_inputs(config: ScoreGenConfig) -> ScoreInputs:
    """The synthetic set, and the real training / held-out images behind its DDPM."""
    sample_id = config.sample_run or sampled_run(
        config.site, config.grade, config.variant, config.profile, config.seed
    )
    sample = checked_run(sample_id, "sample")
    ddpm_id = sample.data.tags.get("ddpm_run", "")
    ddpm = checked_run(ddpm_id, "train_ddpm") if ddpm_id else None
    if ddpm is None or "parent_step_run" not in ddpm.data.tags:
        raise DataError(f"sample_run {sample_id}: its DDPM run ({ddpm_id or 'none'}) is unknown")
    subjects = mlflow.artifacts.load_dict(f"runs:/{ddpm_id}/training_subjects.json")
    real, splits = load_prepared(prepare_run_output(ddpm.data.tags["parent_step_run"]))
    leaked = sorted(set(subjects["train"]) & set(splits["test"]))
    if leaked:  # the science rule, checked again where the data meet
        raise DataError(f"DDPM run {ddpm_id} trained on test subject(s) {', '.join(leaked)}")
    synthetic = read_dataset(artifact_folder(sample_id, DATASET_ARTIFACT))
    training, training_ids = real.select(subjects["train"])
    held_out, held_out_ids = real.select(subjects["validation"])
    tags = sample.data.tags
    return ScoreInputs(
        sample_id,
        ddpm_id,
        ddpm.data.tags["parent_step_run"],
        tags.get("site", config.site),
        tags.get("grade", config.grade),
        tags.get("variant", config.variant),
        synthetic,
        training,
        training_ids,
        held_out,
        held_out_ids,
    )


def _frechet(prefix: str, distance: Callable[[], FrechetResult]) -> dict[str, float]:
    """FD plus its sample counts; a singular-covariance warning goes to the console and a tag."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = distance()
    for warning in caught:
        if not issubclass(warning.category, UserWarning):
            continue  # e.g. scipy's deprecation notices from inside pytorch-fid
        print(f"score_gen: {prefix}: {warning.message}", file=sys.stderr)
    mlflow.set_tag(f"{prefix}_singular_covariance", str(result.singular).lower())
    return {
        prefix: result.value,
        f"{prefix}_n_real": result.n_a,
        f"{prefix}_n_synthetic": result.n_b,
    }


def inception_metrics(config: ScoreGenConfig, inputs: ScoreInputs) -> dict[str, float]:
    """FID, KID and IS per encoder view; skipped (and said) when the weights are absent."""
    if config.inception == "off":
        mlflow.set_tag("inception_metrics", "off")
        return {}
    try:
        model = FIDInception.from_weights(config.inception_weights)
    except MissingWeightsError as exc:
        if config.inception == "required":
            raise
        print(f"score_gen: FID, KID and IS not computed: {exc}", file=sys.stderr)
        mlflow.set_tag("inception_metrics", f"skipped: {exc}"[:5000])
        return {}
    mlflow.set_tag("inception_metrics", "computed")
    device = resolve_device(config.device)
    metrics: dict[str, float] = {}
    views = encoded_views(config.encoder, inputs.training)
    for view, encode in views.items():
        suffix = "" if len(views) == 1 else f"_{view}"
        real_pool, real_logits = inception_features(
            model, encode(inputs.training), config.batch_size, device, f"inception real {view}"
        )
        syn_pool, syn_logits = inception_features(
            model, encode(inputs.synthetic.images), config.batch_size, device, f"inception {view}"
        )
        metrics.update(_frechet(f"fid{suffix}", partial(frechet_distance, real_pool, syn_pool)))
        kid = kernel_inception_distance(
            real_pool, syn_pool, config.kid_subsets, config.kid_subset_size, config.seed
        )
        metrics.update({f"kid_mean{suffix}": kid.mean, f"kid_std{suffix}": kid.std})
        metrics[f"kid_subset_size{suffix}"] = kid.subset_size
        for name, logits in (("is", syn_logits), ("is_real", real_logits)):
            splits = min(config.is_splits, len(logits))
            mean, std = inception_score(logits, splits)
            metrics.update({f"{name}_mean{suffix}": mean, f"{name}_std{suffix}": std})
            metrics[f"{name}_splits{suffix}"] = splits
    return metrics


def classifier_uri(config: ScoreGenConfig, site: str) -> str:
    """The FD_cls classifier: the given URI, or the site's baseline fold-0 model if registered."""
    if config.classifier not in ("", "off"):
        return config.classifier
    name = cls_model_name(site, "baseline")
    if config.classifier == "" and resolve_alias(name, "fold0") is not None:
        return f"models:/{name}@fold0"
    return ""


def offline_distances(config: ScoreGenConfig, inputs: ScoreInputs) -> dict[str, float]:
    """FD_radiomic always; FD_cls when a trained classifier is registered or given."""
    real = radiomic_features(inputs.training)
    synthetic = radiomic_features(inputs.synthetic.images)
    metrics = _frechet("fd_radiomic", partial(radiomic_frechet_distance, real, synthetic))
    if len(inputs.held_out) >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a reference figure; its counts are logged
            held_out = radiomic_features(inputs.held_out)
            metrics["fd_radiomic_held_out"] = radiomic_frechet_distance(real, held_out).value
    uri = classifier_uri(config, inputs.site)
    if not uri:
        reason = "off" if config.classifier == "off" else "no classifier registered yet"
        print(f"score_gen: FD_cls not computed ({reason}; run train_cls first)", file=sys.stderr)
        mlflow.set_tag("fd_cls", f"skipped: {reason}")
        return metrics
    model, device = load_classifier(uri), str(resolve_device(config.device))
    mlflow.set_tag("fd_cls", uri)
    features = {
        name: classifier_features(model, images, config.batch_size, device)
        for name, images in (("real", inputs.training), ("syn", inputs.synthetic.images))
    }
    metrics.update(_frechet("fd_cls", partial(frechet_distance, features["real"], features["syn"])))
    return metrics


def memorisation_metrics(config: ScoreGenConfig, inputs: ScoreInputs) -> dict[str, float]:
    """Nearest-training Pearson r and MI, for the synthetic and the held-out real images."""
    device, region = resolve_device(config.device), config.memorisation_region
    metrics: dict[str, float] = {}
    figures: dict[str, np.ndarray] = {}
    for name, images in (("", inputs.synthetic.images), ("_held_out", inputs.held_out)):
        if not len(images):
            continue
        nearest = nearest_training_correlation(images, inputs.training, region, device=device)
        summary = memorisation_summary(nearest, config.memorisation_threshold)
        metrics.update({f"memorisation{name}_{k}": v for k, v in summary.items()})
        mi = mutual_information(
            torch.from_numpy(images), torch.from_numpy(inputs.training[nearest.index])
        ).numpy()
        metrics.update(
            {f"mi_nearest{name}_mean": float(mi.mean()), f"mi_nearest{name}_std": float(mi.std())}
        )
        figures[name] = nearest.correlation
        if not name:
            _log_nearest(inputs, nearest, mi, config)
    figure = correlation_histogram(
        figures[""], figures.get("_held_out", np.empty(0)), config.memorisation_threshold
    )
    mlflow.log_figure(figure, "memorisation_histogram.png")
    plt.close(figure)
    return metrics


def _log_nearest(inputs: ScoreInputs, nearest, mi: np.ndarray, config: ScoreGenConfig) -> None:
    table = pd.DataFrame(
        {
            "synthetic_id": inputs.synthetic.subjects["subject_id"],
            "nearest_training_id": [inputs.training_ids[i] for i in nearest.index],
            "pearson_r": nearest.correlation,
            "mi_nats": mi,
        }
    )
    mlflow.log_text(table.to_csv(index=False), "nearest_training.csv")
    figure = nearest_pairs_figure(
        inputs.synthetic.images, inputs.training, nearest, inputs.training_ids, config.pairs_shown
    )
    mlflow.log_figure(figure, "nearest_pairs.png")
    plt.close(figure)


def diversity_metrics(config: ScoreGenConfig, inputs: ScoreInputs) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, images in (("synthetic", inputs.synthetic.images), ("real", inputs.training)):
        if len(images) >= 2:
            result = mean_pairwise_msssim(images, config.msssim_pairs, config.seed)
            metrics.update({f"msssim_{name}_mean": result.mean, f"msssim_{name}_std": result.std})
            metrics["msssim_scales"] = result.scales
    return metrics


def log_comparison(config: ScoreGenConfig, inputs: ScoreInputs, metrics: dict[str, float]) -> None:
    """std vs mi side by side, when the other variant of this site and grade was scored."""
    other = "mi" if inputs.variant == "std" else "std"
    params = {k: getattr(config, k) for k in COMPARABLE_PARAMS}
    run = find_finished_run(
        "score_gen", params, {"site": inputs.site, "grade": inputs.grade, "variant": other}
    )
    if run is None:
        return
    table = comparison_table({inputs.variant: metrics, other: run.data.metrics})
    mlflow.log_text(table.to_csv(index=False), "comparison_std_vs_mi.csv")
    mlflow.log_text(markdown_table(table), "comparison_std_vs_mi.md")
    mlflow.set_tag("compared_with", run.info.run_id)
    print(f"score_gen: {inputs.site} {inputs.grade} std vs mi\n{markdown_table(table)}")


def run_score_gen(config: ScoreGenConfig) -> ScoreOutput:
    """Score one synthetic dataset; samples (or trains) the default DDPM first if needed."""
    parse_encoder(config.encoder)  # a bad contrast name stops here, before any work
    tags = {"site": config.site, "grade": config.grade, "variant": config.variant}
    with step_run("score_gen", as_params(config), profile=config.profile, **tags) as run:
        if config.inception == "required":
            find_weights(config.inception_weights)  # fail before sampling or training anything
        inputs = score_inputs(config)
        mlflow.set_tags(
            {
                "site": inputs.site,
                "grade": inputs.grade,
                "variant": inputs.variant,
                "parent_step_run": inputs.sample_run,
                "sample_run": inputs.sample_run,
                "ddpm_run": inputs.ddpm_run,
                "prepare_run": inputs.prepare_run,
                "data_hash": inputs.synthetic.data_hash,
            }
        )
        metrics = {
            "n_synthetic": len(inputs.synthetic.images),
            "n_real_train": len(inputs.training),
            "n_held_out": len(inputs.held_out),
        }
        for part in (inception_metrics, offline_distances, diversity_metrics, memorisation_metrics):
            part_metrics = part(config, inputs)
            mlflow.log_metrics(part_metrics)
            metrics.update(part_metrics)
        mlflow.log_metrics({k: v for k, v in metrics.items() if k.startswith("n_")})
        mlflow.log_dict(metrics, "scores.json")
        log_comparison(config, inputs, metrics)
        print(summary_text(inputs, metrics))
        return ScoreOutput(run.info.run_id, metrics)


def summary_text(inputs: ScoreInputs, metrics: dict[str, float]) -> str:
    """The console summary: each headline figure beside its real-image reference."""
    lines = [
        f"score_gen {inputs.site} {inputs.grade} {inputs.variant}: "
        f"{int(metrics['n_synthetic'])} synthetic vs {int(metrics['n_real_train'])} training "
        f"images ({int(metrics['n_held_out'])} held-out real as reference)"
    ]
    pairs = {
        "fid": None,
        "kid_mean": None,
        "is_mean": "is_real_mean",
        "fd_radiomic": "fd_radiomic_held_out",
        "fd_cls": None,
        "msssim_synthetic_mean": "msssim_real_mean",
        "memorisation_mean": "memorisation_held_out_mean",
        "memorisation_fraction_above": "memorisation_held_out_fraction_above",
        "mi_nearest_mean": "mi_nearest_held_out_mean",
    }
    for name, reference in pairs.items():
        if name in metrics:
            real = f"   (real: {metrics[reference]:.4g})" if reference in metrics else ""
            lines.append(f"  {name:<30} {metrics[name]:10.4g}{real}")
    return "\n".join(lines)
