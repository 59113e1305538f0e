"""Registered model names and aliases (DESIGN.md), and registering a logged model."""

from __future__ import annotations

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from glioma.errors import DataError


def ddpm_model_name(site: str, grade: str, label: str) -> str:
    """``label``: ``std``, ``mi`` (the paper's weight, default form), ``mi-w0.05``, ``mi-f<hash>``
    (``TrainDDPMConfig.model_label``)."""
    return f"glioma-ddpm-{site}-{grade}-{label}"


def registered_ddpms(site: str, grade: str, variant: str) -> list[str]:
    """Names of the registered DDPMs of one site, grade and variant, whatever their MI settings."""
    prefix = ddpm_model_name(site, grade, variant)
    found = MlflowClient().search_registered_models(filter_string=f"name LIKE '{prefix}%'")
    return sorted(m.name for m in found if m.name == prefix or m.name.startswith(prefix + "-"))


def ddpm_alias(held_out: tuple[int, ...]) -> str:
    """``best``: trained on every non-test subject; ``fold<k>``: also without fold k's subjects;
    ``folds<a>-<b>``: without the subjects of a group of folds."""
    if not held_out:
        return "best"
    if len(held_out) == 1:
        return f"fold{held_out[0]}"
    return "folds" + "-".join(map(str, held_out))


def cls_model_name(site: str, setup: str) -> str:
    return f"glioma-cls-{site}-{setup}"


def ensemble_model_name(site: str, setup: str) -> str:
    return f"glioma-ensemble-{site}-{setup}"


def register(model_uri: str, name: str, alias: str) -> str:
    """Register ``model_uri`` as a new version of ``name`` and point ``alias`` at it."""
    version = str(mlflow.register_model(model_uri, name).version)
    set_alias(name, alias, version)
    return version


def register_source(source: str, name: str, alias: str, run_id: str, model_id: str) -> str:
    """Register the model folder at ``source`` (inside logged model ``model_id`` of run
    ``run_id``) as a new version of ``name`` and point ``alias`` at it: for models inside
    another model's folder (a fold inside its ensemble)."""
    client = MlflowClient()
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    made = client.create_model_version(name, source, run_id=run_id, model_id=model_id)
    version = str(made.version)
    set_alias(name, alias, version)
    return version


def set_alias(name: str, alias: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(name, alias, version)


def resolve_alias(name: str, alias: str):
    """The ModelVersion behind ``name@alias``, or None when there is none."""
    try:
        return MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def require_alias(name: str, alias: str):
    version = resolve_alias(name, alias)
    if version is None:
        raise DataError(f"models:/{name}@{alias}: no such registered model version")
    return version


def pinned(uri: str) -> str:
    """``models:/name@alias`` -> ``models:/name/<version>``: a reuse key must not follow an
    alias, which moves."""
    name, _, alias = uri.removeprefix("models:/").partition("@")
    if not uri.startswith("models:/") or not alias:
        return uri
    return f"models:/{name}/{require_alias(name, alias).version}"
