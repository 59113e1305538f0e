"""One config source: profiles, typed fields with help and roles, MLproject kept in step."""

import contextlib
import dataclasses
import importlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from glioma.classify.settings import ClsSettings
from glioma.cli import build_parser
from glioma.cli import main as cli_main
from glioma.config import (
    PROFILES,
    MainConfig,
    PrepareConfig,
    SampleConfig,
    ScoreGenConfig,
    TrainClsConfig,
    TrainClsFoldConfig,
    TrainDDPMConfig,
    as_params,
    build_config,
    profile_values,
)
from glioma.config.fields import choices_of, help_of
from glioma.config.plan import plan_for
from glioma.config.steps import TABLE, configs, entry_points
from glioma.diffusion.settings import TrainSettings, UNetConfig
from glioma.errors import ConfigError
from glioma.names import param_text
from glioma.scoring.settings import TSTRSettings, TwoSampleSettings

REPO = Path(__file__).resolve().parents[1]


def test_profile_sets_defaults_and_overrides_win():
    quick = build_config(PrepareConfig)
    paper = build_config(PrepareConfig, {"profile": "paper"})
    assert (quick.patch_size, paper.patch_size, paper.fov_mm) == (32, 96, 96.0)
    assert build_config(PrepareConfig, {"profile": "paper", "patch_size": "64"}).patch_size == 64


def test_strings_are_typed():
    config = build_config(PrepareConfig, {"seed": "7", "fov_mm": "80", "strict": "True"})
    assert (config.seed, config.fov_mm, config.strict) == (7, 80.0, True)


@pytest.mark.parametrize(
    ("overrides", "phrase"),
    [
        ({"patch_size": "abc"}, "patch_size: expected a number"),
        ({"patch_size": "2.5"}, "patch_size: expected a whole number"),
        ({"patch_size": "4"}, "patch_size: must be 8..512"),
        ({"strict": "maybe"}, "strict: expected true or false"),
        ({"profile": "slow"}, "profile: unknown profile"),
        ({"patchsize": "32"}, "patchsize: unknown parameter"),
        ({"data": "phantom", "site": "brats"}, "got 'brats'; for your own data give its BraTS"),
    ],
)
def test_bad_values_get_one_clear_line(overrides, phrase):
    with pytest.raises(ConfigError) as err:
        build_config(PrepareConfig, overrides)
    assert phrase in str(err.value)
    assert "\n" not in str(err.value)


def test_configs_check_themselves_at_construction():
    """MONAI's way: a config that cannot work fails when made, naming the field."""
    with pytest.raises(ConfigError, match="grade: expected one of"):
        SampleConfig(grade="GBM")
    with pytest.raises(ConfigError, match="combine: expected one of"):
        TrainClsConfig(combine="vote")
    with pytest.raises(ConfigError, match="executor: expected one of"):
        MainConfig(executor="dask")
    with pytest.raises(ConfigError, match="base_channels: level width 12 x 1 = 12"):
        UNetConfig(base_channels=12)  # GroupNorm's 8 groups do not divide 12 channels
    with pytest.raises(ConfigError, match="attention_resolutions: 4 is not a level"):
        UNetConfig(image_size=32, channel_mults=(1, 2, 2), attention_resolutions=(4,))
    with pytest.raises(ConfigError, match="image_size: 30 px cannot be halved"):
        UNetConfig(image_size=30)


INCEPTION_NAMES = {"mode": "inception", "weights": "inception_weights"}


def patch_size(profile: str) -> int:
    return build_config(PrepareConfig, {"profile": profile}).patch_size


# Each library value a config builds: (config, how it builds it, prefix, renamed fields).
LIBRARIES = (
    (TrainDDPMConfig, lambda c: c.mi_term, "mi_", {}),
    (TrainDDPMConfig, lambda c: c.denoise_term, "", {"weighting": "loss_weighting"}),
    (TrainDDPMConfig, lambda c: c.augmentation, "augment_", {}),
    (TrainDDPMConfig, lambda c: c.noise_schedule, "", {}),
    (TrainDDPMConfig, lambda c: c.unet(patch_size(c.profile)), "", {}),
    (TrainDDPMConfig, lambda c: c.train_settings(n_train=10), "", {}),
    (TrainClsFoldConfig, lambda c: c.training, "", {}),
    (ScoreGenConfig, lambda c: c.inception_settings, "", INCEPTION_NAMES),
    (ScoreGenConfig, lambda c: c.memorisation, "memorisation_", {"pairs_shown": "pairs_shown"}),
    (ScoreGenConfig, lambda c: c.tstr_settings, "tstr_", {"seed": "seed"}),
    (ScoreGenConfig, lambda c: c.two_sample, "c2st_", {"seed": "seed"}),
)  # fmt: skip
# Library fields that no command line sets: they keep the library's default.
LIBRARY_ONLY = {
    UNetConfig: {"channels", "dropout"},
    TrainSettings: {"grad_clip"},
    ClsSettings: {"momentum"},
    TSTRSettings: {"batch_size", "lr", "val_share"},
    TwoSampleSettings: {"batch_size", "lr", "width", "n_boot"},
}
# Library fields the config computes rather than copies.
COMPUTED = {
    UNetConfig: {"image_size", "num_classes", "channel_mults", "attention_resolutions"},
    TrainSettings: {"mi", "denoise", "augment", "train_steps"},
    ClsSettings: {"seed"},  # seed + fold: each fold draws its own batches
}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_library_setting_is_built_from_its_config_with_one_set_of_defaults(profile):
    """Settings reach the libraries one way: each library value is built from its config under
    each profile, every field set from the config's field of that name unless it is knowingly
    the library's own, and where both declare a default they agree (one set of defaults)."""
    for config_cls, build, prefix, names in LIBRARIES:
        config = build_config(config_cls, {"profile": profile})
        defaults = {f.name: f.default for f in dataclasses.fields(config_cls)}
        value = build(config)
        cls = type(value)
        for item in dataclasses.fields(cls):
            name = names.get(item.name, prefix + item.name)
            if item.name in COMPUTED.get(cls, set()):
                continue
            if name not in defaults:
                assert item.name in LIBRARY_ONLY.get(cls, set()), f"{cls.__name__}.{item.name}"
                continue
            assert getattr(value, item.name) == getattr(config, name), (cls.__name__, item.name)
            if item.default is not dataclasses.MISSING:
                shown = defaults[name]
                assert shown == item.default, f"{name}: config {shown!r}, library {item.default!r}"


def test_train_ddpm_builds_the_librarys_values_from_every_field():
    """Each train_ddpm field that becomes a library field reaches it, however it is set."""
    config = TrainDDPMConfig(
        mi_weight=0.05, mi_mode="mi", mi_t_min=7, mi_t_max=200, mi_weighting="min_snr",
        mi_snr_gamma=3.0, mi_scale="raw", mi_target="self", loss_weighting="min_snr",
        snr_gamma=2.0, augment_prob=0.3, augment_degrees=4.0, augment_zoom=0.1, lr=1e-3,
        lr_schedule="cosine", lr_warmup_steps=5, weight_decay=0.01, ema_decay=0.9,
        cond_dropout=0.2, train_steps=77, eval_every=7, batch_size=3, bf16=True, seed=4,
        num_steps=300, beta_start=2e-4, beta_end=0.03, base_channels=16, channel_mults="1,2",
        num_res_blocks=2, attention_resolutions="16", conditional=True,
    )  # fmt: skip
    settings = config.train_settings(n_train=10)
    assert (settings.mi, settings.denoise, settings.augment) == (
        config.mi_term,
        config.denoise_term,
        config.augmentation,
    )
    assert config.mi_term.t_min == 7 and config.denoise_term.weighting == "min_snr"
    assert config.augmentation.zoom == 0.1 and config.noise_schedule.beta_end == 0.03
    unet = config.unet(32)
    assert (unet.channel_mults, unet.attention_resolutions) == ((1, 2), (16,))
    assert unet.num_classes == 2 and settings.train_steps == 77 and settings.ema_decay == 0.9
    assert dataclasses.replace(config, epochs=2).train_settings(n_train=10).train_steps == 8
    fold = build_config(TrainClsFoldConfig, {"fold": 3, "seed": 2, "epochs": 5})
    assert fold.training == ClsSettings(epochs=5, batch_size=32, lr=0.01, seed=5)


def test_the_librarys_checks_name_the_command_line_field():
    with pytest.raises(ConfigError, match="mi_t_min: must be >= 0"):
        build_config(TrainDDPMConfig, {"mi_t_min": "-1"})
    with pytest.raises(ConfigError, match="augment_prob: must be in"):
        build_config(TrainDDPMConfig, {"augment_prob": "2"})
    with pytest.raises(ConfigError, match="lr: must be in"):
        build_config(TrainDDPMConfig, {"lr": "3"})
    with pytest.raises(ConfigError, match="beta_start, beta_end"):
        build_config(TrainDDPMConfig, {"beta_start": "0.5", "beta_end": "0.1"})


def test_a_misspelt_profile_key_is_named(monkeypatch):
    monkeypatch.setitem(PROFILES["quick"], "train_ddpm", {"epochs": 3, "learning_rate": 1e-3})
    with pytest.raises(ConfigError, match="profile 'quick': train_ddpm.learning_rate: not a"):
        build_config(TrainDDPMConfig)


def test_profiles_from_a_file(monkeypatch, tmp_path):
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"cluster": {"train_ddpm": {"epochs": 400}}}))
    monkeypatch.setenv("GLIOMA_PROFILES", str(path))
    assert build_config(TrainDDPMConfig, {"profile": "cluster"}).epochs == 400
    path.write_text(json.dumps({"cluster": {"train_ddpm": {"epoch": 400}}}))
    with pytest.raises(ConfigError, match="cluster'?: train_ddpm.epoch: not a parameter"):
        build_config(TrainDDPMConfig, {"profile": "cluster"})


def test_the_plan_is_chosen_once_for_every_step_that_holds_it(monkeypatch, tmp_path):
    """A profile's plan section reaches main, train_cls, its folds and the plan of a step
    outside a study; set in a step's own section, or misspelt, it is refused by name."""
    path = tmp_path / "profiles.json"
    plan = {"ddpm_scope": "fold_groups:2", "ddpm_mi_weight": 0.3, "synthetic_ratio": 2.0}
    path.write_text(json.dumps({"lab": {"plan": plan}}))
    monkeypatch.setenv("GLIOMA_PROFILES", str(path))
    main = build_config(MainConfig, {"profile": "lab"})
    ensemble = build_config(TrainClsConfig, {"profile": "lab"})
    sample = build_config(SampleConfig, {"profile": "lab"})
    for holder in (main, ensemble, plan_for(sample), plan_for(main)):
        assert holder.plan_values() == plan
    assert ensemble.fold_config(1).ddpm_scope == "fold_groups:2"
    given = build_config(MainConfig, {"profile": "lab", "ddpm_scope": "site"})
    assert plan_for(given).held_out(3) == ()  # a given value wins over the profile's
    path.write_text(json.dumps({"lab": {"train_cls": {"ddpm_scope": "site"}}}))
    with pytest.raises(ConfigError, match="train_cls.ddpm_scope: shared .* set it as plan"):
        build_config(TrainClsConfig, {"profile": "lab"})
    path.write_text(json.dumps({"lab": {"plan": {"ddpm_scop": "site"}}}))
    with pytest.raises(ConfigError, match="plan.ddpm_scop: not a plan field"):
        plan_for(build_config(SampleConfig, {"profile": "lab"}))


def test_every_field_has_help_and_known_profile_keys():
    for cls in configs().values():
        for field in dataclasses.fields(cls):
            assert help_of(field), f"{cls.__name__}.{field.name} has no help"
    for profile in PROFILES:
        for cls in configs().values():
            build_config(cls, {"profile": profile})  # every profile key is a field


def test_help_prints_the_profile_resolved_default(capsys):
    with pytest.raises(SystemExit):
        cli_main(["sample", "--profile", "paper", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "DDIM steps (DDPM always takes all T) (profile paper: 1000)" in text
    assert "the grade of the default DDPM (default: HGG; one of 'LGG', 'HGG')" in text


def test_renamed_parameters_still_work_once_with_a_notice(capsys):
    config = build_config(TrainClsConfig, {"mi_weight": "0.2"})
    assert config.ddpm_mi_weight == 0.2
    assert "--mi_weight is deprecated" in capsys.readouterr().err
    parser = build_parser(MainConfig, "glioma main", "quick")
    assert vars(parser.parse_args(["--mi_weight", "0.3"]))["mi_weight"] == "0.3"


def check_mlproject(path: Path) -> None:
    """MLproject and the step table cannot drift: one entry per entry point, each running
    ``python -m entrypoints <step>``; every declared parameter exists, defaults agree, and none
    is a setting a profile chooses (its MLproject default would override it)."""
    project = yaml.safe_load(path.read_text())
    assert set(project["entry_points"]) == set(configs())
    for entry, spec in project["entry_points"].items():
        assert spec["command"].startswith(f"python -m entrypoints {entry} "), entry
        cls = configs()[entry]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name, declared in spec.get("parameters", {}).items():
            assert name in fields, f"MLproject {entry}.{name}: not a parameter of {cls.__name__}"
            default = param_text(fields[name].default)
            assert str(declared["default"]) == default, f"{entry}.{name}: {declared} vs {default}"
            assert f"--{name} {{{name}}}" in spec["command"], f"{entry}.{name} not passed on"
            chosen = {k for p in PROFILES for k in profile_values(cls, p)}
            assert name not in chosen, f"{entry}.{name} is a profile's setting"
            choices = choices_of(fields[name])
            assert choices is None or fields[name].default in choices


def check_step_table() -> None:
    """Each node row's module holds that step's StepSpec, each entry point's module its
    ``run_<step>``; the CLI offers exactly the table's entry points."""
    from glioma.pipeline.steps import spec_of

    for name, step in TABLE.items():
        if step.node:
            assert spec_of(name).name == name
        if step.entry:
            module, _, function = step.function.partition(":")
            assert callable(getattr(importlib.import_module(module), function)), step.function
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main([]) == 0
    assert all(name in out.getvalue() for name in entry_points()), out.getvalue()


def test_mlproject_declares_only_config_fields_with_their_defaults():
    check_mlproject(REPO / "MLproject")


def test_the_step_table_is_the_one_list_of_steps():
    check_step_table()
    assert TABLE["train_cls_fold"].node and "train_cls_fold" not in entry_points()
    assert not TABLE["main"].node and TABLE["main"].function == "glioma.pipeline.study:run_main"
    shims = sorted(p.name for p in (REPO / "entrypoints").glob("*.py"))
    assert shims == ["__init__.py", "__main__.py"], shims  # MLproject needs no file per step
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints", "--help"], capture_output=True, text=True, cwd=REPO
    )
    assert all(name in done.stdout for name in entry_points()), done.stdout + done.stderr


def test_params_record_every_field():
    params = as_params(build_config(MainConfig, {"profile": "paper"}))
    assert set(params) == {f.name for f in dataclasses.fields(MainConfig)}
    assert {"executor", "ray_address", "ddpm_mi_weight"} <= set(params)
    assert [param_text(v) for v in (True, 64.0, 0.25, 3)] == ["true", "64", "0.25", "3"]


HELP_IMPORTS = """
import contextlib, io, sys
from glioma.cli import main
for argv in ([], ["--help"], ["train_ddpm", "--help"], ["main", "--profile", "paper", "--help"],
             ["predict", "--help"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main(argv)
print(sorted(m for m in ("torch", "mlflow", "ray", "optuna") if m in sys.modules))
"""


def test_help_imports_neither_torch_nor_mlflow():
    """`glioma --help` and a step's --help answer from the configs alone (they took ~9 s)."""
    done = subprocess.run(
        [sys.executable, "-c", HELP_IMPORTS], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
