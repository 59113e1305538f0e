"""The ``sample`` step: a registered DDPM -> a synthetic dataset in the real data's format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
from tqdm.auto import tqdm

from glioma.config import SampleConfig, TrainDDPMConfig, as_params, build_config
from glioma.data.dataset import write_dataset
from glioma.data.preview import grid_figure
from glioma.data.records import GRADES
from glioma.devices import resolve_device
from glioma.diffusion.pyfunc import CHECKPOINT_ARTIFACT, LoadedDDPM
from glioma.errors import DataError
from glioma.tracking import code_version, project_root, step_run
from glioma.tracking.registry import ddpm_model_name, resolve_alias

DATASET_ARTIFACT = "dataset"


@dataclass(frozen=True)
class SampleOutput:
    run_id: str
    out_dir: Path
    ddpm_run: str
    n: int


def _model_uri(config: SampleConfig) -> str:
    """The DDPM to sample: the given URI or run id, else the site/grade/variant's ``@best``."""
    if config.model.startswith("models:/") or config.model.startswith("runs:/"):
        return config.model
    if config.model:
        return f"runs:/{config.model}/ddpm"
    name = ddpm_model_name(config.site, config.grade, config.variant)
    if resolve_alias(name, "best") is None:
        print(f"models:/{name}@best does not exist yet: training it first")
        from glioma.pipeline.train_ddpm_step import run_train_ddpm

        mi_weight = "0" if config.variant == "std" else "0.1"
        overrides = {
            "site": config.site,
            "grade": config.grade,
            "mi_weight": mi_weight,
            "profile": config.profile,
            "seed": config.seed,
        }
        run_train_ddpm(build_config(TrainDDPMConfig, overrides))
    return f"models:/{name}@best"


def _ddpm_run_id(model_uri: str) -> tuple[str, str]:
    """(run id, version or '') behind a model URI."""
    from mlflow.models import get_model_info

    info = get_model_info(model_uri)
    version = ""
    if model_uri.startswith("models:/") and "@" in model_uri:
        name, alias = model_uri[len("models:/") :].split("@", 1)
        version = str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
    return info.run_id, version


def run_sample(config: SampleConfig) -> SampleOutput:
    """Sample ``n`` images; trains the default DDPM first when it is not registered yet."""
    tags = {
        "site": config.site,
        "grade": config.grade,
        "variant": config.variant,
        "profile": config.profile,
    }
    with step_run("sample", as_params(config), **tags) as run:
        model_uri = _model_uri(config)
        try:
            ddpm_run, version = _ddpm_run_id(model_uri)
            local = Path(mlflow.artifacts.download_artifacts(model_uri))
        except mlflow.exceptions.MlflowException as exc:
            raise DataError(
                f"{model_uri}: cannot load this DDPM ({str(exc).splitlines()[0]})"
            ) from None
        checkpoint = next(local.rglob("best.pt"), None)
        if checkpoint is None:
            raise DataError(
                f"{model_uri}: no {CHECKPOINT_ARTIFACT} (best.pt) inside; not a glioma DDPM"
            )
        ddpm = LoadedDDPM.from_checkpoint(checkpoint, resolve_device(config.device))
        source_run = mlflow.get_run(ddpm_run).data
        site, grade, variant = (
            source_run.tags.get(k, getattr(config, k)) for k in ("site", "grade", "variant")
        )
        mlflow.set_tags(
            {
                "site": site,
                "grade": grade,
                "variant": variant,
                "ddpm_run": ddpm_run,
                "model_uri": model_uri,
                "model_version": version,
            }
        )
        n = config.n or int(source_run.params.get("n_train_images", 0)) or 1
        images = _draw(ddpm, config, n, grade)
        source = f"{model_uri} (version {version})" if version else model_uri
        meta = {
            "synthetic": True,
            "ddpm_run": ddpm_run,
            "model_uri": model_uri,
            "model_version": version,
            "sampler": config.sampler,
            "steps": config.steps,
            "eta": config.eta,
            "seed": config.seed,
            "code_version": code_version(),
            "patch_size": ddpm.config.image_size,
            "site": site,
        }
        default_dir = project_root() / "data" / "synthetic" / f"{site}-{grade}-{variant}"
        out_dir = Path(config.out_dir) if config.out_dir else default_dir
        dataset = write_dataset(
            out_dir, images, synthetic_subjects(n, grade, site, ddpm_run, config.seed, source), meta
        )
        mlflow.set_tag("data_hash", dataset.data_hash)
        mlflow.log_metric("n_images", n)
        mlflow.log_artifacts(str(out_dir), DATASET_ARTIFACT)
        figure = grid_figure(
            images[:32], title=f"{site} {grade} {variant}: {config.sampler} samples"
        )
        mlflow.log_figure(figure, "samples.png")
        plt.close(figure)
        print(f"sample: {n} synthetic {grade} images from {source} -> {out_dir}")
        return SampleOutput(run.info.run_id, out_dir, ddpm_run, n)


def _draw(ddpm: LoadedDDPM, config: SampleConfig, n: int, grade: str):
    steps = ddpm.schedule.num_steps if config.sampler == "ddpm" else config.steps
    with tqdm(total=steps * -(-n // config.batch_size), desc=f"sample {grade}", unit="step") as bar:
        return ddpm.sample(
            n, config.seed, config.sampler, config.steps, config.eta, config.batch_size, bar.update
        )


def synthetic_subjects(
    n: int, grade: str, site: str, ddpm_run: str, seed: int, source: str
) -> pd.DataFrame:
    """``subjects.csv`` rows of synthetic images: flagged, and traceable to their DDPM run."""
    return pd.DataFrame(
        {
            "subject_id": [f"syn-{ddpm_run[:8]}-{seed}-{i:05d}" for i in range(n)],
            "grade": grade,
            "label": GRADES[grade],
            "site": site,
            "synthetic": True,
            "slice_index": -1,
            "mask_source": "",
            "spacing_mm": "",
            "lesion_area_mm2": float("nan"),
            "source": source,
        }
    )
