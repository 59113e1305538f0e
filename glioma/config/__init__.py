"""One config source: profiles (``quick``, ``paper``) plus overrides, typed per step.

Each config field carries its help text, choices and role (``glioma.config.fields``); every
config checks itself at construction and names the bad field.
"""

from glioma.config.build import as_params, build_config, profile_values
from glioma.config.classify import (
    ClsTrainingConfig,
    CrossEvalConfig,
    TrainClsConfig,
    TrainClsFoldConfig,
    setup_list,
)
from glioma.config.ddpm import SampleConfig, TrainDDPMConfig
from glioma.config.executor import ExecutorConfig
from glioma.config.fields import StepConfig, int_list, result_fields
from glioma.config.prepare import PrepareConfig
from glioma.config.profiles import DEFAULT_PROFILE, PROFILES
from glioma.config.scoring import ScoreGenConfig, TuneConfig
from glioma.config.study import MainConfig

__all__ = [
    "ClsTrainingConfig",
    "CrossEvalConfig",
    "DEFAULT_PROFILE",
    "ExecutorConfig",
    "MainConfig",
    "PROFILES",
    "PrepareConfig",
    "SampleConfig",
    "ScoreGenConfig",
    "StepConfig",
    "TrainClsConfig",
    "TrainClsFoldConfig",
    "TrainDDPMConfig",
    "TuneConfig",
    "as_params",
    "build_config",
    "int_list",
    "profile_values",
    "result_fields",
    "setup_list",
]
