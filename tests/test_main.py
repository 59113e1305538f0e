"""``main`` end to end with the tiny profile: on a real local Ray, then a serial rerun."""

import copy
import os
from collections import Counter
from functools import cache

import mlflow
import pytest
from step_helpers import TINY_PROFILE, runs_of

from glioma.config import PROFILES, MainConfig, build_config, result_fields
from glioma.errors import MissingWeightsError
from glioma.names import lineage_tag
from glioma.pipeline.ensure import RunContext, ensure
from glioma.pipeline.steps.prepare import run_prepare
from glioma.pipeline.study import check_weights, run_main, study_graph
from glioma.scoring import fid_helper
from glioma.tracking import configure_tracking
from glioma.tracking.runs import REUSE_KEY

SHOWN = ("step", "site", "grade", "variant", "setup", "fold", "direction", "seed")


def node_runs() -> list[mlflow.entities.Run]:
    """The runs of graph nodes (they carry a reuse key), every status."""
    return [
        r
        for r in mlflow.search_runs(search_all_experiments=True, output_format="list")
        if REUSE_KEY in r.data.tags
    ]


def run_signatures(runs: list[mlflow.entities.Run]) -> Counter:
    """Each run as (its tags, and the signature of every input by lineage tag)."""
    by_id = {r.info.run_id: r for r in runs}

    @cache
    def signature(run_id: str):
        tags = by_id[run_id].data.tags
        inputs = tuple(
            sorted((k, signature(v)) for k, v in tags.items() if k.endswith("_run") and v in by_id)
        )
        return tuple(tags.get(k, "") for k in SHOWN), inputs

    return Counter(signature(r.info.run_id) for r in runs)


def readers(name: str, context: str) -> Counter:
    """The steps of the runs that logged dataset ``name`` as an input in ``context``."""
    found = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"dataset.name = '{name}' AND dataset.context = '{context}'",
        output_format="list",
    )
    return Counter(r.data.tags.get("step") for r in found)


def graph_signatures(graph) -> Counter:
    """The same signature for each declared node: what its run must look like."""

    @cache
    def signature(item):
        tags = {"step": item.step, **{k: str(v) for k, v in item.tags}}
        inputs = tuple(sorted((lineage_tag(name), signature(up)) for name, up in item.inputs))
        return tuple(tags.get(k, "") for k in SHOWN), inputs

    return Counter(signature(item) for item in graph.nodes)


def test_the_study_on_ray_then_again_serially(project_home, tiny_profile):
    """On a real local Ray (2 workers): one FINISHED run per declared node, with the declared
    lineage (the SIGKILL test checks the same of the serial executor); then, serially, a rerun
    that reuses every step, whichever executor ran it."""
    config = build_config(MainConfig, {"n_boot": "100", "executor": "ray"})
    first = run_main(config)
    graph = study_graph(config)
    assert first.ran == len(graph) and first.reused == 0
    results = first.results
    assert len(results) == 8  # four setups x two directions
    assert list(results["direction"].unique()) == [
        "phantom-a-to-phantom-b",
        "phantom-b-to-phantom-a",
    ]
    assert set(results["setup"]) == {"baseline", "augment", "ddpm", "ddpm_mi"}
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(first.run_id)}
    assert {
        "study_heatmaps.png",
        "study_results.md",
        "study_results.csv",
        "data_cards.png",
    } <= names
    compared = mlflow.MlflowClient().list_artifacts(first.run_id, "comparison_std_vs_mi")
    assert len(compared) == 8  # each site and grade: std vs mi, .csv and .md
    runs = node_runs()
    assert all(r.info.status == "FINISHED" for r in runs)
    assert run_signatures(runs) == graph_signatures(graph)
    assert sum(graph_signatures(graph).values()) == 76  # one DDPM per site, grade, variant
    assert all(r.data.tags["mlflow.parentRunId"] == first.run_id for r in runs)
    assert len({r.data.tags["ray_node"] for r in runs}) == 1 and all(
        r.data.tags["pid"] != str(os.getpid()) for r in runs
    ), "every step ran in a Ray worker"
    # what each step read, as MLflow dataset inputs with the split as context, found by search
    assert readers("phantom-a", "test") == Counter({"train_cls_fold": 20, "train_cls": 4})
    evaluation = readers("phantom-b", "evaluation")
    assert evaluation["cross_eval"] == 1 and evaluation["cross_eval_setup"] == 4
    assert {"train_ddpm", "train_cls_fold", "score_gen"} <= set(readers("phantom-a", "training"))
    mi_set = readers("phantom-a-HGG-mi-synthetic", "synthetic")
    assert mi_set["train_cls_fold"] == 5 and mi_set["score_gen"] >= 1
    # the champion's logged model carries its score on the other hospital
    champion = mlflow.MlflowClient().get_model_version_by_alias(
        "glioma-ensemble-phantom-a-ddpm_mi", "champion"
    )
    model_id = mlflow.get_run(champion.run_id).data.tags["model_id"]
    linked = {(m.key, m.dataset_name): m.value for m in mlflow.get_logged_model(model_id).metrics}
    row = results.set_index(["direction", "setup"]).loc[("phantom-a-to-phantom-b", "ddpm_mi")]
    assert linked[("balanced_accuracy", "phantom-b")] == pytest.approx(row["balanced_accuracy"])
    assert ("test_balanced_accuracy", "phantom-a") in linked
    card = champion.description  # its model card: the other hospital's figures, intervals
    low, high = row["balanced_accuracy_ci_low"], row["balanced_accuracy_ci_high"]
    shown = f"{row['balanced_accuracy']:.3f} [{low:.3f}, {high:.3f}]"
    assert f"| phantom-b | {int(row['n_subjects'])} | {shown} |" in card, card
    assert "models:/glioma-ddpm-phantom-a-HGG-mi/" in champion.tags["ddpm_lineage"]

    second = run_main(build_config(MainConfig, {"n_boot": "100"}))
    assert second.ran == 0 and second.reused == first.ran
    assert second.results.equals(first.results)


def test_a_fold_ddpm_trained_as_a_separate_job_is_reused_by_the_study(project_home, tiny_profile):
    """The README's cluster fan-out: one job per fold DDPM, then the study finds it."""
    from glioma.cli import run_step
    from glioma.config import PrepareConfig

    prepared = run_prepare(build_config(PrepareConfig, {"site": "phantom-a"}))
    job = [
        "--prepare_run",
        prepared.run_id,
        "--grade",
        "HGG",
        "--held_out",
        "3",
        "--mi_weight",
        "0.1",
    ]
    assert run_step("train_ddpm", job) == 0
    (trained,) = runs_of("train_ddpm")
    graph = study_graph(build_config(MainConfig, {"ddpm_scope": "fold"}))
    (node,) = [
        n
        for n in graph.nodes
        if n.step == "train_ddpm"
        and (n.config.site, n.config.grade, n.config.held_out_folds, n.config.variant)
        == ("phantom-a", "HGG", (3,), "mi")
    ]
    found = ensure(node, {"prepare": prepared}, RunContext())
    assert found.reused and found.run_id == trained.info.run_id


@pytest.mark.parametrize("field", ["executor", "ray_address", "cpus_per_task", "workers"])
def test_how_the_study_runs_is_not_what_it_computes(field):
    """Executor settings are volatile: the study's nodes do not depend on them."""
    other = {"executor": "ray", "ray_address": "auto", "cpus_per_task": "2", "workers": "1"}
    base, changed = build_config(MainConfig), build_config(MainConfig, {field: other[field]})

    def computed(config):  # what each node's reuse key reads from its config
        return [(n.step, result_fields(n.config)) for n in study_graph(config).nodes]

    assert computed(base) == computed(changed)


@pytest.mark.parametrize(
    ("section", "setting", "phrase"),
    [
        ("train_cls", {"imagenet_weights": "required"}, "--imagenet_weights none"),
        ("score_gen", {"inception": "required"}, "FID Inception weights"),
    ],
)
def test_main_stops_before_anything_runs_without_the_weights_its_profile_requires(
    project_home, monkeypatch, tmp_path, section, setting, phrase
):
    """A profile that requires ImageNet or FID Inception weights the machine lacks stops the
    study at once, saying where they go; nothing is prepared or trained first."""
    profile = copy.deepcopy(TINY_PROFILE)
    profile.setdefault(section, {}).update(setting)
    monkeypatch.setitem(PROFILES, "quick", profile)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    monkeypatch.setattr(fid_helper, "torchscript_file", lambda: None)  # without the fid extra
    with pytest.raises(MissingWeightsError, match=phrase):
        run_main(build_config(MainConfig, {"n_boot": "100"}))
    configure_tracking()  # this project's store, not the one an earlier test left set
    assert node_runs() == [], "nothing ran"
    if section == "train_cls":  # the user's way out: random weights, said in so many words
        check_weights(study_graph(build_config(MainConfig, {"imagenet_weights": "none"})))
