"""A trained DDPM as an MLflow pyfunc model: registry-ready, loadable anywhere.

The model's one artifact is the checkpoint (``best.pt``: UNet config, the schedule and what the
network predicts, and the selected EMA weights), read back with ``weights_only=True``.
``predict`` takes a one-row frame ``{n, seed, sampler, steps, eta}`` and returns ``n`` images
(n, 4, H, W) in [-1, 1]; a class-conditional DDPM (one network for both grades) also takes
``grade`` (LGG or HGG) and ``guidance`` (the classifier-free guidance scale, 1: none).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema, TensorSpec

from glioma.diffusion.checkpoint import load_checkpoint
from glioma.diffusion.samplers import ddim_sample, ddpm_sample
from glioma.diffusion.schedule import NoiseSchedule
from glioma.diffusion.settings import ScheduleConfig
from glioma.diffusion.unet import Guided, UNet, UNetConfig
from glioma.errors import DataError
from glioma.names import LABELS
from glioma.packaging import package_code, pinned_requirements

CHECKPOINT_ARTIFACT = "checkpoint"
MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
# Written down rather than inferred: inference loads the model in a subprocess (slow).
PIP_REQUIREMENTS = pinned_requirements("torch", "mlflow", "numpy")


# What ``predict`` takes and returns, declared (MLflow cannot infer it from a model-from-code
# file and would say so on every log).
SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec("long", "n"),
            ColSpec("long", "seed", required=False),
            ColSpec("string", "sampler", required=False),
            ColSpec("long", "steps", required=False),
            ColSpec("double", "eta", required=False),
            ColSpec("string", "grade", required=False),
            ColSpec("double", "guidance", required=False),
        ]
    ),
    outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 4, -1, -1), "images")]),
)


def log_ddpm(checkpoint: Path, name: str = "ddpm", *, step: int = 0):
    """Log a sampling checkpoint as a pyfunc model in the active run: an MLflow 3 logged model
    (the experiment's *Models* tab) with the run's parameters, at training ``step`` (the best
    checkpoint's); returns its ModelInfo (``model_id``, ``model_uri`` = ``models:/<id>``)."""
    with warnings.catch_warnings():
        # An input example would make MLflow load and run the model at logging time; the
        # declared signature says all that the example would.
        warnings.filterwarnings("ignore", message=".*input example was not provided")
        with package_code() as code:
            return mlflow.pyfunc.log_model(
                name=name,
                python_model=str(MODEL_CODE),
                artifacts={CHECKPOINT_ARTIFACT: str(checkpoint)},
                code_paths=code,
                pip_requirements=PIP_REQUIREMENTS,
                signature=SIGNATURE,
                model_type="ddpm",
                step=step,
            )


@dataclass
class LoadedDDPM:
    model: UNet
    schedule: NoiseSchedule
    config: UNetConfig

    @property
    def conditional(self) -> bool:
        return self.config.num_classes > 0

    def eps_model(self, grade: str, guidance: float) -> torch.nn.Module:
        """What the samplers call: the network, or, if conditional, fixed to ``grade``."""
        if not self.conditional:
            if grade:
                raise DataError(
                    f"grade {grade}: this DDPM is not class-conditional; it draws one grade only"
                )
            return self.model
        if grade not in LABELS:
            raise DataError(f"grade: a class-conditional DDPM needs LGG or HGG, got {grade!r}")
        return Guided(self.model, LABELS[grade], guidance)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: torch.device | str = "cpu") -> LoadedDDPM:
        state = load_checkpoint(path, map_location=device)
        config = UNetConfig.from_dict(state["unet"])
        model = UNet(config, channels_last=True).to(device)
        model.load_state_dict(state["weights"])
        return cls(model.eval(), NoiseSchedule.of(schedule_of(state)).to(device), config)

    def sample(
        self,
        n: int,
        *,
        seed: int = 0,
        sampler: str = "ddim",
        steps: int = 50,
        eta: float = 0.0,
        batch_size: int = 64,
        progress=None,
        grade: str = "",
        guidance: float = 1.0,
    ) -> np.ndarray:
        """``n`` images; the same seed gives the same images (per batch size). A conditional
        DDPM needs the ``grade``; an unconditional one refuses a grade it cannot honour."""
        model = self.eps_model(grade, guidance)
        device = next(self.model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        out = []
        for start in range(0, n, batch_size):
            shape = (
                min(batch_size, n - start),
                self.config.channels,
                self.config.image_size,
                self.config.image_size,
            )
            if sampler == "ddpm":
                x = ddpm_sample(
                    model,
                    self.schedule,
                    shape,
                    generator=generator,
                    device=device,
                    progress=progress,
                )
            else:
                x = ddim_sample(
                    model,
                    self.schedule,
                    shape,
                    steps=steps,
                    eta=eta,
                    generator=generator,
                    device=device,
                    progress=progress,
                )
            out.append(x.float().cpu().numpy())
        return (
            np.concatenate(out)
            if out
            else np.zeros((0, 4, self.config.image_size, self.config.image_size), np.float32)
        )


def sampling_state(
    weights: dict[str, torch.Tensor], unet: UNetConfig, schedule: NoiseSchedule
) -> dict[str, Any]:
    """What a sampler needs, nothing more: the checkpoint a registered DDPM carries."""
    return {
        "unet": unet.to_dict(),
        "schedule": schedule.config.to_dict(),
        "weights": {k: v.detach().cpu() for k, v in weights.items()},
    }


def schedule_of(state: dict[str, Any]) -> ScheduleConfig:
    """The checkpoint's schedule and parameterisation; a checkpoint written before they could be
    chosen holds only the linear schedule's T and betas, and its network predicts eps."""
    if "schedule" in state:
        return ScheduleConfig(**state["schedule"])
    return ScheduleConfig(
        num_steps=state["num_steps"], beta_start=state["beta_start"], beta_end=state["beta_end"]
    )


class DDPMPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.ddpm = LoadedDDPM.from_checkpoint(context.artifacts[CHECKPOINT_ARTIFACT], device)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        row = model_input.iloc[0].to_dict() if hasattr(model_input, "iloc") else dict(model_input)
        return self.ddpm.sample(
            int(row.get("n", 1)),
            seed=int(row.get("seed", 0)),
            sampler=str(row.get("sampler", "ddim")),
            steps=int(row.get("steps", 50)),
            eta=float(row.get("eta", 0.0)),
            grade=row["grade"] if isinstance(row.get("grade"), str) else "",
            guidance=float(row["guidance"]) if pd.notna(row.get("guidance")) else 1.0,
        )
