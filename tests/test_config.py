"""One config source: profiles, typed fields with help and roles, MLproject kept in step."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from glioma.cli import build_parser
from glioma.cli import main as cli_main
from glioma.config import (
    PROFILES,
    MainConfig,
    PrepareConfig,
    SampleConfig,
    TrainClsConfig,
    TrainDDPMConfig,
    as_params,
    build_config,
)
from glioma.config.fields import choices_of, help_of
from glioma.config.steps import CONFIGS, ENTRY_POINTS, TABLE
from glioma.diffusion.settings import TrainSettings, UNetConfig
from glioma.errors import ConfigError
from glioma.names import param_text

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


# Library fields that train_ddpm's command line does not set: they keep the library's default.
LIBRARY_ONLY = {UNetConfig: {"channels", "dropout"}, TrainSettings: {"grad_clip"}}


def test_train_ddpm_builds_the_librarys_values_with_the_librarys_defaults():
    """One set of defaults: each config field that becomes a library field defaults to it, and
    every library field is set from the config unless it is knowingly the library's own."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainDDPMConfig)}
    text = {"channel_mults", "attention_resolutions"}  # "1,2,2" on the command line
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
    parts = [
        (config.mi_term, settings.mi, "mi_", {}),
        (config.denoise_term, settings.denoise, "", {"weighting": "loss_weighting"}),
        (config.augmentation, settings.augment, "augment_", {}),
        (config.noise_schedule, config.noise_schedule, "", {}),
        (config.unet(32), config.unet(32), "", {}),
        (settings, settings, "", {}),
    ]
    for value, held, prefix, names in parts:
        assert value == held
        cls = type(value)
        for item in dataclasses.fields(cls):
            name = names.get(item.name, prefix + item.name)
            if name not in defaults:
                assert item.name in LIBRARY_ONLY.get(cls, set()) | {"image_size", "num_classes"} | {
                    "mi",
                    "denoise",
                    "augment",
                }, f"{cls.__name__}.{item.name} is set by no train_ddpm field"
                continue
            expected = getattr(config, name)
            shown = defaults[name]
            if name in text:
                expected = tuple(int(v) for v in expected.split(","))
                shown = tuple(int(v) for v in shown.split(","))
            if name != "train_steps":  # train_steps: or epochs x passes (total_steps)
                assert getattr(value, item.name) == expected, (cls.__name__, item.name)
            if item.default is not dataclasses.MISSING:
                assert shown == item.default, f"{name}: config {shown!r}, library {item.default!r}"
    assert config.unet(32).num_classes == 2 and settings.train_steps == 77
    assert dataclasses.replace(config, epochs=2).train_settings(n_train=10).train_steps == 8


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


def test_every_field_has_help_and_known_profile_keys():
    for cls in CONFIGS.values():
        for field in dataclasses.fields(cls):
            assert help_of(field), f"{cls.__name__}.{field.name} has no help"
    for profile in PROFILES:
        for cls in CONFIGS.values():
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


def test_mlproject_declares_only_config_fields_with_their_defaults():
    """MLproject and the configs cannot drift: every declared parameter exists, defaults agree,
    and none is a setting a profile chooses (its MLproject default would override it)."""
    project = yaml.safe_load((REPO / "MLproject").read_text())
    assert set(project["entry_points"]) == set(CONFIGS)
    for entry, spec in project["entry_points"].items():
        cls = CONFIGS[entry]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name, declared in spec.get("parameters", {}).items():
            assert name in fields, f"MLproject {entry}.{name}: not a parameter of {cls.__name__}"
            default = param_text(fields[name].default)
            assert str(declared["default"]) == default, f"{entry}.{name}: {declared} vs {default}"
            assert f"--{name} {{{name}}}" in spec["command"], f"{entry}.{name} not passed on"
            chosen = {k for p in PROFILES.values() for k in p.get(cls.section(), {})}
            assert name not in chosen, f"{entry}.{name} is a profile's setting"
            choices = choices_of(fields[name])
            assert choices is None or fields[name].default in choices


def test_the_step_table_is_the_one_list_of_steps():
    """Each row's node module holds that step's StepSpec, each entry names a function that
    exists, has its MLproject entry and its shim; the CLI offers exactly the table's entries."""
    import importlib

    from glioma.pipeline.steps import STEPS

    assert set(STEPS) == {name for name, step in TABLE.items() if step.node}
    project = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]
    for name, step in ENTRY_POINTS.items():
        module, _, function = step.entry.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), step.entry
        shim = (REPO / "entrypoints" / f"{name}.py").read_text()
        assert f'run_step("{name}"' in shim, f"entrypoints/{name}.py"
        assert f"python -m entrypoints.{name} " in project[name]["command"]
    assert "train_cls_fold" in STEPS and "train_cls_fold" not in ENTRY_POINTS
    done = subprocess.run(
        [sys.executable, "-m", "glioma.cli", "--help"], capture_output=True, text=True
    )
    assert all(name in done.stdout + done.stderr for name in ENTRY_POINTS)


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
