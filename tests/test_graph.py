"""The declared graph and its one reuse key: shapes, keys per field, code edits, import order."""

import ast
import dataclasses
import shutil
from pathlib import Path

import mlflow
import pytest
from step_helpers import runs_of

from glioma.config import (
    MainConfig,
    PrepareConfig,
    SampleConfig,
    ScoreGenConfig,
    TrainClsConfig,
    TrainClsFoldConfig,
    TrainDDPMConfig,
    build_config,
)
from glioma.config.fields import RESULT, role_of
from glioma.config.plan import StudyPlan, plan_for
from glioma.config.steps import node_configs
from glioma.errors import ConfigError
from glioma.pipeline.ensure import RunContext, StepFailed, ensure
from glioma.pipeline.graph import Graph, node
from glioma.pipeline.keys import NodeResult, reuse_key
from glioma.pipeline.steps.prepare import prepare_node
from glioma.pipeline.steps.sample import run_sample, sample_graph_nodes
from glioma.pipeline.steps.score_gen import run_score_gen
from glioma.pipeline.steps.train_cls import classifier_for
from glioma.pipeline.steps.train_ddpm import run_train_ddpm
from glioma.pipeline.study import study_graph
from glioma.tracking import fingerprint

PACKAGE = Path(__file__).resolve().parents[1] / "glioma"
STEP_CONFIGS = tuple(node_configs().values())  # every node step, from the step table
# A valid other value for fields whose type alone does not give one.
OTHER = {
    "site": "phantom-b",
    "profile": "paper",
    "data": "/data/BraTS2019",
    "source_site": "brats",
    "target_site": "tasmc",
    "source_data": "/data/a.csv",
    "target_data": "/data/b.csv",
    "channel_mults": "1,2",
    "attention_resolutions": "16",
    "encoder": "per-modality",
    "setups": "baseline,ddpm",
    "held_out": "0,1",
    "ddpm_scope": "fold_groups:2",
    "ema_decay": 0.99,
    "memorisation_threshold": 0.9,
    "beta_end": 0.03,
    "val_fraction": 0.2,
    "mi_weight": 0.2,
    "ddpm_mi_weight": 0.2,
}


def other_value(config, field: dataclasses.Field):
    value = getattr(config, field.name)
    if field.name in OTHER and OTHER[field.name] != value:
        return OTHER[field.name]
    choices = field.metadata.get("choices")
    if choices:
        return next(c for c in choices if c != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 1.5 if value else 0.05
    return (value or "x") + "-other"


def fake_inputs() -> dict[str, NodeResult]:
    return {"prepare": NodeResult("prepare", "a" * 32, {"data_hash": "feed"})}


def cases():
    for cls in STEP_CONFIGS:
        for field in dataclasses.fields(cls):
            yield pytest.param(cls, field, id=f"{cls.step}.{field.name}")


# Values under which every result field of the step is used (``StepConfig.unused_fields``).
ALL_USED = {
    PrepareConfig: {"data": "/data/BraTS2019"},
    TrainDDPMConfig: {"conditional": True, "loss_weighting": "min_snr", "mi_weighting": "min_snr"},
    TrainClsFoldConfig: {"setup": "ddpm_mi"},
    TrainClsConfig: {"setup": "ddpm_mi"},
}


@pytest.mark.parametrize(("cls", "field"), list(cases()))
def test_every_result_field_changes_the_key_and_no_other_does(cls, field):
    base = cls(**ALL_USED.get(cls, {}))
    assert not base.unused_fields()
    if field.name == "mi_pair":  # (eps_hat, eps) has no other training image to compare with
        base = dataclasses.replace(base, mi_target="self")
    if cls is TrainDDPMConfig and field.name == "grade":  # one grade: not the conditional DDPM
        base = dataclasses.replace(base, conditional=False)
    if field.name == "zero_terminal_snr":  # refused with eps-prediction (Lin et al., 2024)
        base = dataclasses.replace(base, prediction="v")
    changed = dataclasses.replace(base, **{field.name: other_value(base, field)})
    inputs = fake_inputs()
    key = reuse_key(node(cls.step, base), inputs, "code")
    other = reuse_key(node(cls.step, changed), inputs, "code")
    assert (other != key) == (role_of(field) == RESULT), role_of(field)


@pytest.mark.parametrize(
    ("cls", "values", "unused"),
    [
        (TrainClsFoldConfig, {"setup": "baseline"}, {"ddpm_scope": "site", "synthetic_ratio": 2.0}),
        (TrainClsConfig, {"setup": "augment"}, {"ddpm_scope": "site", "ddpm_mi_weight": 0.2}),
        (TrainClsConfig, {"setup": "ddpm"}, {"ddpm_mi_weight": 0.2}),
        (TrainDDPMConfig, {"grade": "HGG", "augment_prob": 0.0}, {"augment_zoom": 0.2}),
        (TrainDDPMConfig, {"grade": "HGG"}, {"cond_dropout": 0.3, "snr_gamma": 2.0}),
        (SampleConfig, {"sampler": "ddpm"}, {"steps": 100, "eta": 1.0}),
    ],
)
def test_a_field_that_cannot_change_the_result_is_not_in_the_key(cls, values, unused):
    """A baseline classifier reads no DDPM: its scope and ratio leave its key alone."""
    base = cls(**values)
    other = dataclasses.replace(base, **unused)
    inputs = fake_inputs()
    key = reuse_key(node(cls.step, base), inputs, "code")
    assert reuse_key(node(cls.step, other), inputs, "code") == key
    used = cls(**ALL_USED.get(cls, {}))
    assert reuse_key(node(cls.step, dataclasses.replace(used, **unused)), inputs, "code") != (
        reuse_key(node(cls.step, used), inputs, "code")
    )


def test_inputs_code_and_data_change_the_key():
    config = TrainDDPMConfig(grade="HGG")
    item = node("train_ddpm", config)
    key = reuse_key(item, fake_inputs(), "code")
    other_run = {"prepare": NodeResult("prepare", "b" * 32, {"data_hash": "feed"})}
    assert reuse_key(item, other_run, "code") != key
    assert reuse_key(item, fake_inputs(), "edited") != key
    assert reuse_key(dataclasses.replace(item, data="new files"), fake_inputs(), "code") != key


def test_the_study_graph_has_every_node_once():
    quick = study_graph(build_config(MainConfig)).steps()  # quick: ddpm_scope site
    assert quick["train_ddpm"] == quick["sample"] == 8  # 2 sites x 2 grades x 2 variants
    graph = study_graph(build_config(MainConfig, {"ddpm_scope": "fold"}))
    assert graph.steps() == {
        "prepare": 2,
        "train_ddpm": 40,  # 2 sites x 2 grades x 2 variants x 5 folds
        "sample": 40,
        "train_cls_fold": 40,  # 2 sites x 4 setups x 5 folds
        "train_cls": 8,
        "score_gen": 8,  # 2 sites x 2 grades x 2 variants, on the fold-0 samples
        "cross_eval": 2,
    }
    order = {item: i for i, item in enumerate(graph.nodes)}
    assert all(order[up] < order[item] for item in graph.nodes for _, up in item.inputs)
    score = next(n for n in graph.nodes if n.step == "score_gen")
    fold0 = next(
        n
        for n in graph.nodes
        if n.step == "train_cls_fold" and n.config.fold == 0
        and n.config.site == score.config.site
        and n.config.setup == {"std": "ddpm", "mi": "ddpm_mi"}[score.config.variant]
    )  # fmt: skip
    grade = score.config.grade
    assert score.upstream["sample"] == fold0.upstream[f"sample_{grade}"]  # one node, shared
    with pytest.raises(ConfigError, match="setups"):
        study_graph(build_config(MainConfig, {"setups": "baseline,gan"}))


def results_of(item) -> dict[str, NodeResult]:
    """Finished-looking results of ``item``'s inputs: run tags as ``ensure`` would log them."""
    return {
        name: NodeResult(up.step, f"{i:032x}", dict(up.tags) | {"data_hash": "feed"})
        for i, (name, up) in enumerate(item.inputs)
    }


def test_a_ddpm_fold_missing_or_given_a_wrong_synthetic_set_stops_with_one_line(project_home):
    """A renamed, missing or mismatched input is an error naming the fold, never a fold that
    trains on real images only."""
    graph = study_graph(build_config(MainConfig))
    fold = next(
        n for n in graph.nodes if n.step == "train_cls_fold" and n.config.setup == "ddpm_mi"
    )
    where = f"train_cls_fold {fold.config.site} ddpm_mi fold {fold.config.fold}"
    missing = dataclasses.replace(
        fold, inputs=tuple((k, up) for k, up in fold.inputs if k != "sample_LGG")
    )
    with pytest.raises(StepFailed, match=f"{where}: input 'sample_LGG' is missing"):
        ensure(missing, results_of(missing), RunContext())
    renamed = dataclasses.replace(
        fold, inputs=tuple((k, up) for k, up in fold.inputs if not k.endswith("_LGG"))
    )
    with pytest.raises(StepFailed, match=f"{where}: no synthetic LGG set"):
        ensure(renamed, results_of(renamed), RunContext())
    std = next(
        n
        for n in graph.nodes
        if n.step == "train_cls_fold" and n.config.setup == "ddpm"
        and n.config.site == fold.config.site and n.config.fold == fold.config.fold
    )  # fmt: skip
    swapped = dataclasses.replace(
        fold, inputs=tuple((k, std.upstream[k] if "LGG" in k else up) for k, up in fold.inputs)
    )
    with pytest.raises(StepFailed, match=f"{where}: the LGG synthetic set's sample is variant std"):
        ensure(swapped, results_of(swapped), RunContext())
    assert not runs_of("train_cls_fold"), "checked before a run opens"


def untagged(item):
    """A node without its seed tag (and its inputs likewise): what it computes."""
    inputs = tuple((k, untagged(up)) for k, up in item.inputs)
    tags = tuple((k, v) for k, v in item.tags if k != "seed")
    return dataclasses.replace(item, inputs=inputs, tags=tags)


def test_several_seeds_share_prepare_and_copy_the_rest_once_per_seed():
    single = study_graph(build_config(MainConfig))
    graph = study_graph(build_config(MainConfig, {"seeds": "0,1,2"}))
    steps = graph.steps()
    assert steps["prepare"] == 2
    assert all(steps[s] == 3 * n for s, n in single.steps().items() if s != "prepare")
    labels = [n.label for n in graph.nodes]
    assert len(set(labels)) == len(labels), "labels tell the seeds apart (Ray matches by label)"
    for item in graph.nodes:
        tags = dict(item.tags)
        if item.step == "prepare":
            assert "seed" not in tags and item.config.seed == 0  # the data's split seed
        else:
            assert item.config.seed == tags["seed"] and item.label.endswith(f"seed{tags['seed']}")
    seed0 = {untagged(n) for n in graph.nodes if dict(n.tags).get("seed") == 0}
    assert seed0 == set(single.nodes) - {n for n in single.nodes if n.step == "prepare"}
    assert not any("seed" in dict(n.tags) for n in single.nodes)  # one seed: as before
    split_seed = study_graph(build_config(MainConfig, {"seed": "7", "seeds": "1,2"}))
    assert {n.config.seed for n in split_seed.nodes if n.step == "prepare"} == {7}
    assert {n.config.seed for n in split_seed.nodes if n.step != "prepare"} == {1, 2}
    for bad, reason in (("0,x", "non-negative integers"), ("1,1", "names a seed twice")):
        with pytest.raises(ConfigError, match=f"seeds: .*{reason}"):
            build_config(MainConfig, {"seeds": bad})


def chain(graph: Graph) -> set:
    return {n for n in graph.nodes if n.step in ("train_ddpm", "sample")}


def test_one_plan_declares_the_same_ddpms_for_main_and_the_single_entry_points():
    """The study plan is the one source of the DDPM chain: the ``train_cls`` and ``sample``
    entries declare exactly the DDPMs and samples ``main`` does, so each reuses the other's."""
    config = build_config(MainConfig, {"ddpm_mi_weight": 0.05, "synthetic_ratio": 0.5})
    plan = plan_for(config)
    assert (plan.ddpm_scope, plan.ddpm_mi_weight, plan.synthetic_ratio) == ("site", 0.05, 0.5)
    main = chain(study_graph(config))
    overrides = {"ddpm_mi_weight": 0.05, "synthetic_ratio": 0.5, "setup": "ddpm_mi"}
    single = chain(Graph([classifier_for(build_config(TrainClsConfig, overrides))]))
    assert single and single <= main
    [mi_ddpm] = {n.config.mi_weight for n in single if n.step == "train_ddpm"}
    assert mi_ddpm == 0.05
    drawn = {n.config.n_per_subject for n in main if n.step == "sample"}
    assert drawn == {0.5}
    default = chain(study_graph(build_config(MainConfig)))
    sample, _ = sample_graph_nodes(build_config(SampleConfig, {"variant": "mi"}))
    assert chain(Graph([sample])) <= default  # the profile's weight (0.1), as main's
    with pytest.raises(ConfigError, match="ddpm_scope"):
        StudyPlan(ddpm_scope="fold_groups:9")
    with pytest.raises(ConfigError, match="ddpm_mi_weight: must be in"):
        StudyPlan(ddpm_mi_weight=1.5)


def test_one_direction_trains_only_on_its_source():
    """--directions a-to-b: site_b is only a target (it may be evaluation-only)."""
    graph = study_graph(build_config(MainConfig, {"directions": "a-to-b"}))
    assert graph.steps()["prepare"] == 2 and graph.steps()["cross_eval"] == 1
    trained = {n.config.site for n in graph.nodes if n.step in ("train_ddpm", "train_cls")}
    assert trained == {"phantom-a"}
    [cross] = [n for n in graph.nodes if n.step == "cross_eval"]
    assert cross.config.direction == "phantom-a-to-phantom-b"
    with pytest.raises(ConfigError, match="directions"):
        build_config(MainConfig, {"directions": "sideways"})


def glioma_imports(path: Path) -> tuple[set[str], list[str]]:
    """(modules of glioma a file imports at top level, imports of glioma inside functions)."""
    tree = ast.parse(path.read_text())
    inside = []
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for item in ast.walk(function):
                if isinstance(item, ast.ImportFrom) and (item.module or "").startswith("glioma"):
                    inside.append(f"{path.name}:{function.name} imports {item.module}")
                elif isinstance(item, ast.Import):
                    inside += [
                        f"{path.name}:{function.name} imports {a.name}"
                        for a in item.names
                        if a.name.startswith("glioma")
                    ]
    top = set()
    for item in tree.body:
        if isinstance(item, ast.ImportFrom) and (item.module or "").startswith("glioma"):
            top.add(item.module)
            top.update(f"{item.module}.{a.name}" for a in item.names)
        elif isinstance(item, ast.Import):
            top.update(a.name for a in item.names if a.name.startswith("glioma"))
    return top, inside


def test_no_import_cycle_and_no_import_hidden_in_a_function():
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph, hidden = {}, []
    for name, path in modules.items():
        top, inside = glioma_imports(path)
        graph[name] = {m for m in top if m in modules and m != name}
        hidden += inside
    assert not hidden, hidden

    def visit(name: str, stack: list[str], done: set[str]) -> None:
        if name in stack:
            raise AssertionError(
                "import cycle: " + " -> ".join([*stack[stack.index(name) :], name])
            )
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*stack, name], done)
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        visit(name, [], done)


def test_a_source_edit_makes_a_new_run(project_home, monkeypatch, tmp_path):
    """Uncommitted edits count: the code fingerprint hashes the sources as they are on disk."""
    copy = tmp_path / "glioma"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fingerprint, "PACKAGE_DIR", copy)
    config = build_config(PrepareConfig, {"phantom_scale": "0.01", "patch_size": "16"})
    target = prepare_node(config)
    first = ensure(target, {}, RunContext())
    assert ensure(target, {}, RunContext()).run_id == first.run_id  # nothing changed: reused
    losses = copy / "diffusion" / "losses.py"
    losses.write_text(losses.read_text() + "\n# a user's edit\n")
    fingerprint._fingerprint.cache_clear()  # what a new process (the user's next command) sees
    edited = ensure(target, {}, RunContext())
    assert not edited.reused and edited.run_id != first.run_id
    assert edited.tags["code_fingerprint"] != first.tags["code_fingerprint"]


def test_score_gen_never_scores_a_sample_of_another_n_or_steps(project_home, tiny_profile):
    (ddpm,) = run_train_ddpm(build_config(TrainDDPMConfig, {"grade": "HGG"}))
    manual = run_sample(build_config(SampleConfig, {"model": ddpm.run_id, "n": "3", "steps": "2"}))
    score = run_score_gen(build_config(ScoreGenConfig, {"grade": "HGG"}))
    scored = mlflow.get_run(score.tags["sample_run"])
    assert scored.info.run_id != manual.run_id
    assert scored.data.params["n"] == "0" and scored.data.params["steps"] == "5"  # tiny's
    assert score.tags["ddpm_run"] == ddpm.run_id  # the same DDPM: its node was reused
    # and TSTR's other grade: its DDPM trained now, beside the reused one
    ddpms = runs_of("train_ddpm")
    assert sorted(r.data.tags["grade"] for r in ddpms) == ["HGG", "LGG"]
    assert score.tags["other_ddpm_run"] in {r.info.run_id for r in ddpms} - {ddpm.run_id}


def test_a_graph_with_one_target_is_just_its_ancestors():
    config = build_config(MainConfig)
    first = study_graph(config).nodes[0]
    assert Graph([first]).nodes == (first,) and first.step == "prepare"
