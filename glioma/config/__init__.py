"""One config source: profiles (``quick``, ``paper``) plus overrides, typed per step."""

from glioma.config.build import as_params, build_config
from glioma.config.profiles import DEFAULT_PROFILE, PROFILES
from glioma.config.steps import (
    CrossEvalConfig,
    MainConfig,
    PrepareConfig,
    SampleConfig,
    ScoreGenConfig,
    TrainClsConfig,
    TrainDDPMConfig,
    TuneConfig,
    int_list,
    setup_list,
)

__all__ = [
    "CrossEvalConfig",
    "DEFAULT_PROFILE",
    "PROFILES",
    "MainConfig",
    "PrepareConfig",
    "SampleConfig",
    "ScoreGenConfig",
    "TrainClsConfig",
    "TrainDDPMConfig",
    "TuneConfig",
    "int_list",
    "setup_list",
    "as_params",
    "build_config",
]
