"""``score_gen``: how good and how new one synthetic dataset is.

Scores a sample run's images against the real images its DDPM trained on (the DDPM run's
``training_subjects.json``), with the DDPM's held-out validation images of the same grade as
the reference for what "not memorised" looks like on this data. The scores are computed by
``glioma.scoring.suite`` (no MLflow there); ``record`` logs them. ``score_node`` declares the
node, ``scored_sets`` the scores of both grades' sets (each with the other for TSTR);
``run_score_gen`` is the entry point (a sample run the user names, or the plan's sample).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic

import matplotlib.pyplot as plt
import mlflow

from glioma.config import ScoreGenConfig
from glioma.config.declared import ScoredSet
from glioma.config.plan import plan_for
from glioma.data.dataset import Dataset
from glioma.errors import DataError
from glioma.names import other_grade
from glioma.pipeline.given import given
from glioma.pipeline.graph import Node, node
from glioma.pipeline.inputs import (
    check_lineage,
    data_read,
    ddpm_subjects,
    load_dataset,
    load_prepared,
    refuse_leaks,
)
from glioma.pipeline.invoke import run_target
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.spec import StepInputs, StepSpec, SyntheticSet, T, needed
from glioma.pipeline.steps.sample import sample_graph_nodes, synthetic_set
from glioma.scoring.encoders import parse_encoder
from glioma.scoring.inception import find_weights
from glioma.scoring.suite import (
    ScoreData,
    ScorePart,
    WorthData,
    diversity_part,
    inception_part,
    memorisation_part,
    offline_part,
    summary_lines,
    two_sample_part,
    worth_part,
)
from glioma.tracking.datasets import DataRead, log_reads
from glioma.tracking.registry import pinned


@dataclass(frozen=True)
class ScoreInputs(StepInputs, Generic[T]):
    """One grade's sample and DDPM with their prepare run; ``classifier`` (an ensemble whose
    fold 0 gives FD_cls) and ``other`` (the other grade's set, for TSTR) when the plan has
    them (inputs ``classifier``, ``other_sample``, ``other_ddpm``)."""

    sample: T
    ddpm: T
    prepare: T
    classifier: T | None = None
    other: SyntheticSet[T] | None = None

    def flat(self) -> dict[str, T]:
        out = {"sample": self.sample, "ddpm": self.ddpm, "prepare": self.prepare}
        if self.classifier is not None:
            out["classifier"] = self.classifier
        if self.other is not None:
            out |= {"other_sample": self.other.sample, "other_ddpm": self.other.ddpm}
        return out

    @classmethod
    def read(cls, flat: Mapping[str, NodeResult], config: ScoreGenConfig) -> ScoreInputs:
        where = f"score_gen {config.site} {config.grade} {config.variant}"
        other = None
        if "other_sample" in flat or "other_ddpm" in flat:
            other = SyntheticSet(
                needed(flat, "other_sample", where), needed(flat, "other_ddpm", where)
            )
        return cls(
            *(needed(flat, name, where) for name in ("sample", "ddpm", "prepare")),
            classifier=flat.get("classifier"),
            other=other,
        )


def of_grade(real: Dataset, ids: list[str], grade: str) -> list[str]:
    """The subjects of ``grade`` among ``ids``: a conditional DDPM trained on both grades, and
    a grade's samples are judged against that grade's images."""
    grades = real.subjects.set_index("subject_id")["grade"]
    return [s for s in ids if not grade or grades.get(s) == grade]


def score_data(inputs: ScoreInputs[NodeResult], real: Dataset, splits: dict) -> ScoreData:
    """The synthetic set, and the real training / held-out images behind its DDPM."""
    sample, ddpm = inputs.sample, inputs.ddpm
    check_lineage(sample, ddpm)
    subjects = ddpm_subjects(ddpm.run_id)
    refuse_leaks(ddpm.run_id, splits)  # the science rule, checked again where data meet
    synthetic = load_dataset(sample.run_id)
    grade = sample.tags.get("grade", "")
    training, training_ids = real.select(of_grade(real, subjects["train"], grade))
    held_out, _ = real.select(of_grade(real, subjects["validation"], grade))
    synthetic_ids = synthetic.subjects["subject_id"].tolist()
    return ScoreData(synthetic.images, synthetic_ids, training, training_ids, held_out)


def evaluation_subjects(splits: dict, ddpms: list[NodeResult]) -> tuple[list[str], str]:
    """Real subjects that none of ``ddpms`` trained on or selected with: the folds they all
    held out, or, when one of them held out none (``site`` scope), the test split."""
    held = [ddpm.tags.get("held_out_folds", "none") for ddpm in ddpms]
    ddpm_runs = [ddpm.run_id for ddpm in ddpms]
    common = set.intersection(*(set(h.split(",")) if h != "none" else set() for h in held))
    if common:
        folds = sorted(int(k) for k in common)
        ids = sorted(set().union(*(splits["folds"][k] for k in folds)))
        where = f"the validation subjects of fold(s) {', '.join(map(str, folds))}"
    else:
        ids, where = sorted(splits["test"]), "the test split"
    seen = set()
    for run in ddpm_runs:
        subjects = ddpm_subjects(run)
        seen |= set(subjects["train"]) | set(subjects["validation"])
    leaked = sorted(seen & set(ids))
    if leaked:
        raise DataError(f"TSTR: DDPMs {', '.join(ddpm_runs)} saw {', '.join(leaked[:10])}")
    return ids, where


def worth_data(
    inputs: ScoreInputs[NodeResult], grade: str, real: Dataset, splits: dict
) -> WorthData | None:
    """Both grades' synthetic and DDPM-training images, and TSTR's real evaluation images."""
    if inputs.other is None:
        return None
    other_sample, other_ddpm = inputs.other.sample, inputs.other.ddpm
    check_lineage(other_sample, other_ddpm)
    prepare_run, other = inputs.prepare.run_id, other_grade(grade)
    if other_sample.tags.get("grade") != other or other_ddpm.input_run("prepare") != prepare_run:
        raise DataError(
            f"other_sample_run {other_sample.run_id}: TSTR needs {other} images of the DDPMs' "
            f"own prepare run {prepare_run}; it is {other_sample.tags.get('grade')} of "
            f"{other_ddpm.input_run('prepare')}"
        )
    refuse_leaks(other_ddpm.run_id, splits)  # score_data checked this grade's DDPM
    pairs = {grade: (inputs.sample, inputs.ddpm), other: (other_sample, other_ddpm)}
    ids, where = evaluation_subjects(splits, [ddpm for _, ddpm in pairs.values()])
    keep = real.subjects["subject_id"].isin(ids).to_numpy()
    return WorthData(
        synthetic={g: load_dataset(s.run_id).images for g, (s, _) in pairs.items()},
        training={
            g: real.select(of_grade(real, ddpm_subjects(d.run_id)["train"], g))[0]
            for g, (_, d) in pairs.items()
        },
        evaluate=(real.images[keep], real.subjects["label"].to_numpy()[keep]),
        evaluated_on=f"{where} ({len(ids)} subjects)",
        evaluated_ids=tuple(ids),
    )


def classifier_uri(config: ScoreGenConfig, classifier: NodeResult | None) -> str:
    """FD_cls's model: the one given, else fold 0 of the study's baseline ensemble, if any."""
    if config.classifier == "off":
        return ""
    if config.classifier:
        return config.classifier
    return classifier.tags.get("fold0_model_uri", "") if classifier else ""


def score_reads(
    inputs: ScoreInputs[NodeResult], real: Dataset, splits: dict, worth: WorthData | None
) -> list[DataRead]:
    """What the scores read, as dataset inputs: the DDPM's training and validation images of
    this grade, the synthetic set, and with TSTR the other grade's set and the real images
    it is evaluated on."""
    grade, prepare = inputs.sample.tags.get("grade", ""), inputs.prepare
    subjects = ddpm_subjects(inputs.ddpm.run_id)
    reads = [
        data_read(real, prepare, "training", of_grade(real, subjects["train"], grade)),
        data_read(real, prepare, "validation", of_grade(real, subjects["validation"], grade)),
        data_read(load_dataset(inputs.sample.run_id), inputs.sample, "synthetic"),
    ]
    if worth is not None and inputs.other is not None:
        other = inputs.other.sample
        reads.append(data_read(load_dataset(other.run_id), other, "synthetic"))
        reads.append(data_read(real, prepare, "evaluation", worth.evaluated_ids))
    return reads


def compute(
    config: ScoreGenConfig, inputs: ScoreInputs[NodeResult]
) -> tuple[ScorePart, list[DataRead]]:
    real, splits = load_prepared(inputs.prepare.run_id)  # once, for every part
    data = score_data(inputs, real, splits)
    counts = {
        "n_synthetic": len(data.synthetic),
        "n_real_train": len(data.training),
        "n_held_out": len(data.held_out),
    }
    scores = ScorePart(metrics=dict(counts))
    device = config.device
    scores.add(inception_part(data, settings=config.inception_settings, device=device))
    uri = classifier_uri(config, inputs.classifier)
    batch, k = config.batch_size, config.prdc_k
    scores.add(offline_part(data, classifier_uri=uri, batch_size=batch, device=device, prdc_k=k))
    worth = worth_data(inputs, config.grade, real, splits) if config.tstr else None
    if worth is None:
        scores.tags["tstr"] = "off" if not config.tstr else "skipped: no other grade's sample"
        if config.tstr:
            scores.notes.append("TSTR not computed: no sample of the other grade given")
    else:
        scores.add(worth_part(worth, settings=config.tstr_settings, device=device))
    if config.c2st:
        scores.add(two_sample_part(data, settings=config.two_sample, device=device))
    else:
        scores.tags["c2st"] = "off"
    scores.add(diversity_part(data, pairs=config.msssim_pairs, seed=config.seed))
    scores.add(memorisation_part(data, settings=config.memorisation, device=device))
    return scores, score_reads(inputs, real, splits, worth)


def record(
    config: ScoreGenConfig,
    scored: tuple[ScorePart, list[DataRead]],
    inputs: ScoreInputs[NodeResult],
) -> None:
    """The one place score_gen logs: metrics, tags, figures, tables, the console summary."""
    scores, reads = scored
    for note in scores.notes:
        print(f"score_gen: {note}", file=sys.stderr)
    mlflow.set_tags({**scores.tags, "data_hash": inputs.sample.data_hash})
    log_reads(reads)
    mlflow.log_metrics(scores.metrics)
    for path, figure in scores.figures.items():
        mlflow.log_figure(figure, path)
        plt.close(figure)
    for path, text in scores.texts.items():
        mlflow.log_text(text, path)
    mlflow.log_dict(scores.metrics, "scores.json")
    m, sample = scores.metrics, inputs.sample.tags
    print(
        f"score_gen {sample.get('site')} {sample.get('grade')} {config.variant}: "
        f"{int(m['n_synthetic'])} synthetic vs {int(m['n_real_train'])} training images "
        f"({int(m['n_held_out'])} held-out real as reference)"
    )
    print("\n".join(summary_lines(m)))


def run(config: ScoreGenConfig, inputs: ScoreInputs[NodeResult]) -> None:
    parse_encoder(config.encoder)  # a bad contrast name stops here, before any work
    if config.inception == "required":
        find_weights(config.inception_weights)
    record(config, compute(config, inputs), inputs)


STEP = StepSpec("score_gen", run, inputs=ScoreInputs, trains=True)  # TSTR, TRTR, c2st


def score_node(
    sample: Node,
    ddpm: Node,
    prepare: Node,
    *,
    config: ScoreGenConfig,
    classifier: Node | None,
    other: tuple[Node, Node] | None = None,
) -> Node:
    """score_gen of ``sample``; ``other`` (the other grade's sample and DDPM) adds TSTR."""
    paired = SyntheticSet(*other) if other is not None and config.tstr else None
    inputs = ScoreInputs(sample, ddpm, prepare, classifier=classifier, other=paired)
    tags = {"site": config.site, "grade": config.grade, "variant": config.variant}
    return node("score_gen", config, inputs, tags=tags | {"profile": config.profile})


def scored_sets(
    prepare: Node, scored: Mapping[str, ScoredSet], *, classifier: Node | None = None
) -> list[Node]:
    """Per grade, the chain's DDPM and sample on ``prepare`` and the score of its images; the
    other grade's set adds TSTR."""
    sets = {grade: synthetic_set(prepare, part.chain) for grade, part in scored.items()}
    return [
        score_node(
            sample,
            ddpm,
            prepare,
            config=scored[grade].score,
            classifier=classifier,
            other=sets.get(other_grade(grade)),
        )  # fmt: skip
        for grade, (sample, ddpm) in sets.items()
    ]


def score_graph_nodes(config: ScoreGenConfig) -> Node:
    """score_gen of the given sample run (with its DDPM and data), or of a default sample."""
    parse_encoder(config.encoder)  # a bad contrast name stops here, before anything runs
    if config.inception == "required":
        find_weights(config.inception_weights)  # likewise missing weights, before training
    config = dataclasses.replace(config, classifier=pinned(config.classifier))
    if config.sample_run:
        sample, ddpm = given_sample(config.sample_run)
        tags = sample.config.result.tags
        config = dataclasses.replace(
            config,
            site=tags["site"],
            grade=tags["grade"],
            variant=tags.get("variant", config.variant),
        )
        prepare = given(ddpm.config.result.input_run("prepare"), "prepare")
        other = given_sample(config.other_sample_run) if config.other_sample_run else None
        return score_node(sample, ddpm, prepare, config=config, classifier=None, other=other)
    sample, ddpm = default_sample(config, config.grade)
    other = default_sample(config, other_grade(config.grade)) if config.tstr else None
    prepare = ddpm.upstream["prepare"]
    return score_node(sample, ddpm, prepare, config=config, classifier=None, other=other)


def given_sample(run_id: str) -> tuple[Node, Node]:
    """(sample, DDPM) nodes of a finished sample run the user named."""
    sample = given(run_id, "sample")
    return sample, given(sample.config.result.input_run("ddpm"), "train_ddpm")


def default_sample(config: ScoreGenConfig, grade: str) -> tuple[Node, Node]:
    """(sample, DDPM) nodes of the plan's sample of ``grade`` at the config's site/variant."""
    drawn = plan_for(config).sample_config(config.site, grade, config.variant)
    return sample_graph_nodes(dataclasses.replace(drawn, data=config.data), step="score_gen")


def run_score_gen(config: ScoreGenConfig) -> NodeResult:
    target = score_graph_nodes(config)
    return run_target(target, config)
