import pytest

from glioma.config import MainConfig, PrepareConfig, as_params, build_config
from glioma.errors import ConfigError
from glioma.tracking.runs import param_text


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
        ({"source": "phantom", "site": "brats"}, "site: the phantom has sites"),
    ],
)
def test_bad_values_get_one_clear_line(overrides, phrase):
    with pytest.raises(ConfigError) as err:
        build_config(PrepareConfig, overrides)
    assert phrase in str(err.value)
    assert "\n" not in str(err.value)


def test_params_record_every_field():
    params = as_params(build_config(MainConfig, {"profile": "paper"}))
    assert set(params) == {
        *("site_a", "data_a", "site_b", "data_b", "setups", "mi_weight", "n_boot"),
        *("seed", "workers", "phantom_scale", "profile"),
    }
    assert [param_text(v) for v in (True, 64.0, 0.25, 3)] == ["true", "64", "0.25", "3"]
