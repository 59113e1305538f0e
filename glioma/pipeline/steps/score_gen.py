"""``score_gen``: how good and how new one synthetic dataset is.

Scores a sample run's images against the real images its DDPM trained on (the DDPM run's
``training_subjects.json``), with the DDPM's held-out validation images of the same grade as
the reference for what "not memorised" looks like on this data. The scores are computed by
``glioma.scoring.suite`` (no MLflow there); ``record`` logs them.
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import mlflow

from glioma.config import ScoreGenConfig
from glioma.errors import DataError
from glioma.pipeline.inputs import ddpm_subjects, load_dataset, load_prepared, refuse_leaks
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.spec import Inputs, StepSpec
from glioma.scoring.encoders import parse_encoder
from glioma.scoring.inception import find_weights
from glioma.scoring.suite import (
    ScoreData,
    ScorePart,
    diversity_part,
    inception_part,
    memorisation_part,
    offline_part,
    summary_lines,
)


def score_data(inputs: Inputs) -> ScoreData:
    """The synthetic set, and the real training / held-out images behind its DDPM."""
    sample, ddpm, prepare = inputs["sample"], inputs["ddpm"], inputs["prepare"]
    if sample.tags.get("ddpm_run") != ddpm.run_id:
        raise DataError(
            f"sample_run {sample.run_id}: drawn from DDPM run {sample.tags.get('ddpm_run')}, "
            f"not {ddpm.run_id}"
        )
    subjects = ddpm_subjects(ddpm.run_id)
    real, splits = load_prepared(prepare.run_id)
    refuse_leaks(ddpm.run_id, splits, -1)  # the science rule, checked again where data meet
    synthetic = load_dataset(sample.run_id)
    training, training_ids = real.select(subjects["train"])
    held_out, _ = real.select(subjects["validation"])
    synthetic_ids = synthetic.subjects["subject_id"].tolist()
    return ScoreData(synthetic.images, synthetic_ids, training, training_ids, held_out)


def classifier_uri(config: ScoreGenConfig, classifier: NodeResult | None) -> str:
    """FD_cls's model: the one given, else fold 0 of the study's baseline ensemble, if any."""
    if config.classifier == "off":
        return ""
    if config.classifier:
        return config.classifier
    return classifier.tags.get("fold0_model_uri", "") if classifier else ""


def compute(config: ScoreGenConfig, inputs: Inputs) -> ScorePart:
    data = score_data(inputs)
    counts = {
        "n_synthetic": len(data.synthetic),
        "n_real_train": len(data.training),
        "n_held_out": len(data.held_out),
    }
    scores = ScorePart(metrics=dict(counts))
    device, batch = config.device, config.batch_size
    scores.add(
        inception_part(
            data,
            inception=config.inception,
            weights=config.inception_weights,
            encoder=config.encoder,
            batch_size=batch,
            device=device,
            kid_subsets=config.kid_subsets,
            kid_subset_size=config.kid_subset_size,
            is_splits=config.is_splits,
            seed=config.seed,
        )
    )
    uri = classifier_uri(config, inputs.get("classifier"))
    scores.add(offline_part(data, classifier_uri=uri, batch_size=batch, device=device))
    scores.add(diversity_part(data, pairs=config.msssim_pairs, seed=config.seed))
    scores.add(
        memorisation_part(
            data,
            region=config.memorisation_region,
            threshold=config.memorisation_threshold,
            pairs_shown=config.pairs_shown,
            device=device,
        )
    )
    return scores


def record(config: ScoreGenConfig, scores: ScorePart, inputs: Inputs) -> None:
    """The one place score_gen logs: metrics, tags, figures, tables, the console summary."""
    for note in scores.notes:
        print(f"score_gen: {note}", file=sys.stderr)
    mlflow.set_tags({**scores.tags, "data_hash": inputs["sample"].data_hash})
    mlflow.log_metrics(scores.metrics)
    for path, figure in scores.figures.items():
        mlflow.log_figure(figure, path)
        plt.close(figure)
    for path, text in scores.texts.items():
        mlflow.log_text(text, path)
    mlflow.log_dict(scores.metrics, "scores.json")
    m, sample = scores.metrics, inputs["sample"].tags
    print(
        f"score_gen {sample.get('site')} {sample.get('grade')} {config.variant}: "
        f"{int(m['n_synthetic'])} synthetic vs {int(m['n_real_train'])} training images "
        f"({int(m['n_held_out'])} held-out real as reference)"
    )
    print("\n".join(summary_lines(m)))


def run(config: ScoreGenConfig, inputs: Inputs) -> None:
    parse_encoder(config.encoder)  # a bad contrast name stops here, before any work
    if config.inception == "required":
        find_weights(config.inception_weights)
    record(config, compute(config, inputs), inputs)


STEP = StepSpec("score_gen", run)
