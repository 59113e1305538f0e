"""The single entry points: each declares the minimal graph its output needs, then runs it.

``mlflow run . -e sample`` on a fresh clone declares prepare -> train_ddpm -> sample; the
steps that already finished with the same key are reused. A run the user names
(``--prepare_run``, ``--model``, ``--sample_run``) becomes a ``given`` node instead.
"""

from __future__ import annotations

import dataclasses

import mlflow

from glioma.config import (
    CrossEvalConfig,
    PrepareConfig,
    SampleConfig,
    ScoreGenConfig,
    TrainClsConfig,
    TrainDDPMConfig,
    build_config,
    setup_list,
)
from glioma.config.plan import plan_for
from glioma.devices import resolve_device
from glioma.diffusion.distributed import init_distributed, is_main_process
from glioma.errors import ConfigError
from glioma.names import GRADES, other_grade
from glioma.pipeline.given import given
from glioma.pipeline.graph import Graph, Node
from glioma.pipeline.invoke import run_entry, run_group
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.nodes import (
    classifier_node,
    cross_eval_node,
    ddpm_node,
    prepare_for,
    prepare_node,
    refuse_small_site,
    sample_node,
    score_node,
    site_of,
    synthetic_set,
)
from glioma.pipeline.steps.train_ddpm import follow_main_process
from glioma.scoring.encoders import parse_encoder
from glioma.scoring.inception import find_weights
from glioma.tracking.registry import ddpm_model_name, registered_ddpms, require_alias


def run_prepare(config: PrepareConfig) -> NodeResult:
    target = prepare_node(config)
    return run_entry(Graph([target]), config).result(target)


def upstream_prepare(config, site: str) -> Node:
    """The prepare node a step of ``site`` reads: the given run, or prepare of its data."""
    common = {"profile": config.profile, "seed": config.seed}
    prepare = prepare_for(site, config.data, prepare_run=config.prepare_run, **common)
    refuse_small_site(prepare)  # every caller trains on (or scores against) this site
    return prepare


def with_site_of(config, prepare: Node):
    """A given prepare run decides the site; a config that says another is corrected."""
    return dataclasses.replace(config, site=site_of(prepare))


def train_ddpm_nodes(config: TrainDDPMConfig) -> list[Node]:
    prepare = upstream_prepare(config, config.site)
    config = with_site_of(config, prepare)
    return [ddpm_node(prepare, dataclasses.replace(config, grade=g)) for g in job_grades(config)]


def job_grades(config: TrainDDPMConfig) -> list[str]:
    """One DDPM per grade, or ``config.grade``'s alone, or one conditional DDPM ("")."""
    return [config.grade] if config.grade or config.conditional else list(GRADES)


def run_train_ddpm(config: TrainDDPMConfig) -> list[NodeResult]:
    """Both grades (or ``config.grade``); under ``torchrun`` ranks > 0 follow rank 0."""
    grades = job_grades(config)
    if init_distributed(resolve_device(config.device)) and not is_main_process():
        follow_main_process(config, grades)
        return []
    targets = train_ddpm_nodes(config)
    run = run_group if len(targets) > 1 else run_entry
    invocation = run(Graph(targets), config)
    return [invocation.result(t) for t in targets]


def ddpm_run_of(model: str) -> str:
    """The train_ddpm run behind a models:/ or runs:/ URI or a run id."""
    if model.startswith("models:/"):
        name, _, number = pinned(model).removeprefix("models:/").partition("/")
        return mlflow.MlflowClient().get_model_version(name, number).run_id
    if model.startswith("runs:/"):
        return model.removeprefix("runs:/").split("/", 1)[0]
    return model


def sample_graph_nodes(config: SampleConfig, *, step: str = "sample") -> tuple[Node, Node]:
    """(sample, DDPM) nodes: the given model's, or those of the plan's DDPM of the config's
    site, grade and variant (the profile's MI weight for ``mi``)."""
    if config.model:
        ddpm = given(ddpm_run_of(config.model), "train_ddpm")
        tags = ddpm.config.result.tags
        grade = tags.get("grade", config.grade)  # a conditional DDPM draws the grade asked
        config = dataclasses.replace(
            config, site=tags["site"], grade=grade, variant=tags["variant"]
        )
        return sample_node(ddpm, config), ddpm
    plan = plan_for(config)
    announce_variant_ddpm(plan.ddpm_config(config.site, config.grade, config.variant), step=step)
    prepare = prepare_for(config.site, config.data, profile=config.profile, seed=config.seed)
    refuse_small_site(prepare)
    return synthetic_set(
        prepare, plan, site=config.site, grade=config.grade, variant=config.variant, sample=config
    )


def announce_variant_ddpm(ddpm: TrainDDPMConfig, *, step: str) -> None:
    """Say which DDPM a variant stands for before anything runs; refuse to train one when the
    store holds DDPMs of that site, grade and variant under other MI settings only (the user's
    own, which ``--model`` picks), so a DDPM nobody asked for is never trained silently."""
    name = ddpm_model_name(ddpm.site, ddpm.grade_label, ddpm.model_label)
    settings = f"mi_weight {ddpm.mi_weight:g}"
    if ddpm.variant == "mi":
        settings += ", " + ", ".join(f"{k} {v}" for k, v in ddpm.mi_form.items())
    print(f"{step}: the {ddpm.variant} DDPM: {name} ({settings}); reused when this store has it")
    registered = registered_ddpms(ddpm.site, ddpm.grade_label, ddpm.variant)
    if registered and name not in registered:
        choices = ", ".join(f"models:/{other}@best" for other in registered)
        raise ConfigError(
            f"variant: this store's {ddpm.variant} DDPMs of {ddpm.site} {ddpm.grade_label} are "
            f"{choices}, none with the profile's MI settings ({name}); pass --model to use one, "
            f"or train {name} first with train_ddpm"
        )


def run_sample(config: SampleConfig) -> NodeResult:
    target, _ = sample_graph_nodes(config)
    return run_entry(Graph([target]), config).result(target)


def pinned(uri: str) -> str:
    """``models:/name@alias`` -> ``models:/name/<version>``: a key must not follow an alias."""
    name, _, alias = uri.removeprefix("models:/").partition("@")
    if not uri.startswith("models:/") or not alias:
        return uri
    return f"models:/{name}/{require_alias(name, alias).version}"


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
    return run_entry(Graph([target]), config).result(target)


def classifier_for(config: TrainClsConfig) -> Node:
    prepare = upstream_prepare(config, config.site)
    config = with_site_of(config, prepare)
    return classifier_node(prepare, config, plan_for(config))


def run_train_cls(config: TrainClsConfig) -> NodeResult:
    target = classifier_for(config)
    return run_entry(Graph([target]), config).result(target)


def cross_eval_target(config: CrossEvalConfig) -> Node:
    common = {"profile": config.profile, "seed": config.seed}
    target = prepare_for(config.target_site, config.target_data, **common)
    classifiers = {
        setup: classifier_for(
            build_config(
                TrainClsConfig,
                {"site": config.source_site, "setup": setup, "data": config.source_data} | common,
            )
        )
        for setup in setup_list(config.setups)
    }
    return cross_eval_node(target, classifiers, config)


def run_cross_eval(config: CrossEvalConfig) -> NodeResult:
    target = cross_eval_target(config)
    return run_entry(Graph([target]), config).result(target)
