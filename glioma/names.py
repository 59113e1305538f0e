"""The study's vocabulary, written once: grades, variants, setups, artifact paths, lineage tags.

Every module that names one of these imports it from here (the bottom layer: this module
imports nothing from ``glioma``), so a name cannot drift between the step that writes a thing
and the step that reads it.
"""

from __future__ import annotations

# Tumour grades and their labels: HGG is the positive class.
GRADES = ("LGG", "HGG")
LABELS = {"LGG": 0, "HGG": 1}


def other_grade(grade: str) -> str:
    """LGG -> HGG, HGG -> LGG."""
    return GRADES[1 - GRADES.index(grade)]


# DDPM variants: ``std`` is trained with mi_weight = 0, ``mi`` with a positive MI weight.
VARIANTS = ("std", "mi")
# The paper's MI weight (loss = 0.9 Huber + 0.1 MI): the mi variant's default weight.
PAPER_MI_WEIGHT = 0.1

# Classifier setups, and the DDPM variant whose samples each synthetic setup adds.
SETUPS = ("baseline", "augment", "ddpm", "ddpm_mi")
SETUP_VARIANT = {"ddpm": "std", "ddpm_mi": "mi"}

# Every patch a model takes: channels in this order, intensities in this range (prepare clips
# to it; the served ensemble refuses values outside it).
CHANNELS = ("T1", "T1ce", "T2", "FLAIR")
PIXEL_RANGE = (-1.0, 1.0)

# Cross-validation folds of the classifier (and of the per-fold DDPMs).
N_FOLDS = 5


def variant_of(mi_weight: float) -> str:
    """``std`` for a DDPM trained without the MI term, ``mi`` with it."""
    return "mi" if mi_weight > 0 else "std"


def direction_of(source_site: str, target_site: str) -> str:
    """``<source>-to-<target>``: models trained on the source site, tested on the target."""
    return f"{source_site}-to-{target_site}"


# Artifact paths inside a run, shared by the step that logs and the steps that read.
DATASET_ARTIFACT = "dataset"  # prepare and sample: images.npy, subjects.csv, meta.json, ...
DATA_CARD = "data_card.png"  # prepare: the site at a glance (counts, grids, intensities)
TRAINING_SUBJECTS = "training_subjects.json"  # train_ddpm: {"train": [...], "validation": [...]}
DDPM_MODEL = "ddpm"  # train_ddpm: the pyfunc model (its artifact: the sampling checkpoint)
FOLD_MODEL = "fold_model"  # train_cls_fold: the fold classifier until its ensemble holds it
ENSEMBLE_MODEL = "ensemble"  # train_cls: the five folds and the pyfunc that averages them
# The tag of a run that logged a model: its MLflow 3 logged model's id (models:/<id>)
MODEL_ID = "model_id"
DIRECTION_RESULTS = "direction_results.csv"  # cross_eval: one row per setup
DIRECTION_PREDICTIONS = "direction_predictions.csv"  # cross_eval: one row per setup, subject


def lineage_tag(input_name: str) -> str:
    """The tag that records which run fed a step's input: ``prepare`` -> ``prepare_run``."""
    return f"{input_name}_run"


def param_text(value: object) -> str:
    """One spelling per value, so runs started in different ways compare equal in the UI."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)
