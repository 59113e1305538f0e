"""Learning curve of the quick DDPM: what its samples are worth against optimiser steps.

For each arm (a UNet width and an MI setting) one DDPM per grade is trained on the quick
phantom-a site's non-test subjects (``ddpm_scope`` site, so the site's test split is unseen by
every DDPM and TSTR can be evaluated on it), with the quick profile's optimiser, batch,
augmentation and EMA. At each checkpoint, 64 samples per grade (DDIM-25, EMA weights) are
scored: FD_radiomic and KID_radiomic against the training images (beside the held-out real
reference: the DDPM's validation subjects), precision/recall/density/coverage in the same
radiomic space, memorisation (mean nearest-training Pearson r, beside the held-out real
images' own), and TSTR against TRTR (ResNet-18, quick settings) on the test split. Wall time
counts training only. Prints one table; writes learning_curve.csv and learning_curve.png.

    .venv/bin/python benchmarks/bench_learning_curve.py --arms w32:std,w16:std \\
        --checkpoints 250,500,1000,1500,2000 --out /tmp/lc

An arm is ``w<width>:<mi>[:cond][+extra...]`` with <mi> one of ``std``, ``lit`` (the paper's
term as first built: MI in nats at every t, unweighted, raw), ``mi`` / ``nmi`` (nats /
normalised, with the config's weighting, scale and target), ``mi@T`` / ``nmi@T`` (only at
t >= T); the MI weight is --mi_weight. Extras override one DDPM field each: ``+sqrt``,
``+minsnr``, ``+unweighted`` (mi_weighting), ``+rel`` / ``+raw`` (mi_scale), ``+near`` /
``+self`` (mi_target), ``+hminsnr`` (min-SNR-5 Huber), ``+cosine`` (lr schedule), or any
``+field=value`` (``+mi_t_max=750``, ``+ema_decay=0.999``). --phantom_seed 1 gives a phantom the
study does not report on (choose forms there); --site phantom-b the other hospital.
``:cond`` trains one class-conditional network for both grades instead of one per grade, at
equal compute: its checkpoints count twice the steps (both grades' budget), so each row
compares the same optimiser steps in total.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

# isort: split
from machine import machine_line, versions_line  # noqa: E402
from speed import speed_line  # noqa: E402

from glioma.config import PrepareConfig, TrainDDPMConfig, build_config  # noqa: E402
from glioma.data.splits import ddpm_subjects  # noqa: E402
from glioma.devices import resolve_device  # noqa: E402
from glioma.diffusion.pyfunc import LoadedDDPM  # noqa: E402
from glioma.names import GRADES, LABELS  # noqa: E402
from glioma.pipeline.entries import run_prepare  # noqa: E402
from glioma.pipeline.inputs import load_prepared  # noqa: E402
from glioma.pipeline.steps.train_ddpm import build_trainer  # noqa: E402
from glioma.scoring.distances import kernel_inception_distance  # noqa: E402
from glioma.scoring.fidelity import prdc_metrics  # noqa: E402
from glioma.scoring.memorisation import (  # noqa: E402
    copy_distances,
    nearest_training_correlation,
)
from glioma.scoring.radiomics import (  # noqa: E402
    radiomic_features,
    radiomic_frechet_distance,
    standardise,
)
from glioma.scoring.report import markdown_table  # noqa: E402
from glioma.scoring.tstr import TSTRSettings, balanced, tstr_trtr  # noqa: E402

N_SAMPLES = 64
SHOWN = ["arm", "grade", "steps", "train_min", "fd_radiomic", "fd_radiomic_held_out",
         "kid_radiomic", "precision", "recall", "density", "coverage", "memorisation_mean",
         "memorisation_held_out_mean", "copy_fraction", "copy_fraction_held_out",
         "tstr_balanced_accuracy", "tstr_roc_auc",
         "trtr_balanced_accuracy", "trtr_roc_auc"]  # fmt: skip
PROFILE = ["quick"]  # --profile: whose optimiser, batch, patch size and UNet depth are used


@dataclass(frozen=True)
class Arm:
    name: str
    overrides: dict

    @property
    def conditional(self) -> bool:
        return bool(self.overrides.get("conditional"))

    @classmethod
    def parse(cls, text: str, mi_weight: float) -> Arm:
        head, *extras = text.split("+")
        width, _, mi = head.partition(":")
        mi, _, cond = mi.partition(":")
        mode, _, t_min = mi.partition("@")
        overrides = {"base_channels": int(width.lstrip("w")), "conditional": cond == "cond"}
        if mode == "lit":  # the paper's term as built before issue 17: MI in nats, every t, raw
            mode = "mi"
            overrides |= {"mi_weighting": "none", "mi_scale": "raw", "mi_target": "self"}
        if mode != "std":
            overrides |= {"mi_weight": mi_weight, "mi_mode": mode, "mi_t_min": int(t_min or 0)}
        for extra in extras:
            key, sep, value = extra.partition("=")
            overrides |= {key: value} if sep else dict([SHORTHANDS[extra]])
        return cls(text, overrides)


# "+word" in an arm: one override of the DDPM config ("+key=value" gives any field).
SHORTHANDS = {
    "sqrt": ("mi_weighting", "sqrt_snr"),
    "minsnr": ("mi_weighting", "min_snr"),
    "unweighted": ("mi_weighting", "none"),
    "rel": ("mi_scale", "relative"),
    "raw": ("mi_scale", "raw"),
    "near": ("mi_target", "nearest"),
    "self": ("mi_target", "self"),
    "hminsnr": ("loss_weighting", "min_snr"),
    "cosine": ("lr_schedule", "cosine"),
}


@dataclass
class GradeData:
    train: np.ndarray
    held_out: np.ndarray
    train_features: np.ndarray
    held_out_features: np.ndarray


def site_data(home: Path, site: str, phantom_seed: int):
    """The quick phantom site of ``phantom_seed``, prepared once into ``home`` (reused later)."""
    os.environ["GLIOMA_HOME"] = str(home)
    overrides = {"site": site, "profile": PROFILE[0], "seed": phantom_seed}
    prepared = run_prepare(build_config(PrepareConfig, overrides))
    return load_prepared(prepared.run_id)


def grade_data(dataset, splits, grade: str, seed: int) -> tuple[GradeData, list[str]]:
    config = build_config(TrainDDPMConfig, {"grade": grade, "seed": seed, "profile": PROFILE[0]})
    ids, grades = list(dataset.subjects["subject_id"]), list(dataset.subjects["grade"])
    train_ids, val_ids = ddpm_subjects(
        ids, grades, splits, grade=grade, val_fraction=config.val_fraction, seed=seed
    )
    train, held = dataset.select(train_ids)[0], dataset.select(val_ids)[0]
    features = radiomic_features(train, progress=False), radiomic_features(held, progress=False)
    return GradeData(train, held, *features), train_ids


def geometry(images: np.ndarray, training: np.ndarray) -> dict[str, float]:
    """Do samples come out shifted or padded? Pearson r of the samples' mean image with the
    training images' mean image (4 contrasts, lesion centred in both), and the share of
    samples whose four 3x3 corners are constant (a padding value)."""

    def r(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

    mean, reference = images.mean(0), training.mean(0)
    edge = (slice(0, 3), slice(-3, None))
    corners = [images[:, :, a, b].reshape(len(images), -1) for a in edge for b in edge]
    flat = np.all([c.std(1) < 1e-3 for c in corners], axis=0)
    return {
        "mean_image_r": r(mean, reference),
        "flat_corners": float(flat.mean()),
    }


def sample_scores(samples: np.ndarray, data: GradeData, seed: int) -> dict[str, float]:
    fake = radiomic_features(samples, progress=False)
    real_z, fake_z = (
        standardise(data.train_features, data.train_features),
        standardise(fake, data.train_features),
    )
    kid = kernel_inception_distance(
        real_z, fake_z, subsets=50, subset_size=min(len(real_z), len(fake_z)), seed=seed
    )
    nearest = nearest_training_correlation(samples, data.train, progress=False)
    return {
        "copy_fraction": copy_distances(samples, data.train).fraction(),
        "fd_radiomic": radiomic_frechet_distance(data.train_features, fake).value,
        "kid_radiomic": kid.mean,
        **prdc_metrics(real_z, fake_z),
        "memorisation_mean": float(nearest.correlation.mean()),
        **geometry(samples, data.train),
    }


def references(data: GradeData) -> dict[str, float]:
    """The held-out real images' figures (FD needs two of them: phantom-b's LGG has one)."""
    nearest = nearest_training_correlation(data.held_out, data.train, progress=False)
    fd = float("nan")
    if len(data.held_out) >= 2:
        fd = radiomic_frechet_distance(data.train_features, data.held_out_features).value
    return {
        "copy_fraction_held_out": copy_distances(data.held_out, data.train).fraction(),
        "fd_radiomic_held_out": fd,
        "memorisation_held_out_mean": float(nearest.correlation.mean()),
    }


def trainers_of(arm: Arm, args, dataset, per_grade) -> dict:
    """grade -> (trainer, its images, its labels or None); one shared trainer if conditional."""
    size = dataset.images.shape[-1]
    if arm.conditional:
        config = build_config(
            TrainDDPMConfig, {"seed": args.seed, "profile": PROFILE[0], **arm.overrides}
        )
        images = np.concatenate([per_grade[g][0].train for g in GRADES])
        labels = np.concatenate([np.full(len(per_grade[g][0].train), LABELS[g]) for g in GRADES])
        trainer = build_trainer(config, size, len(images))
        shared = (trainer, torch.from_numpy(images), torch.from_numpy(labels).long())
        return {"both": shared}
    out = {}
    for grade in GRADES:
        config = build_config(
            TrainDDPMConfig,
            {"grade": grade, "seed": args.seed, "profile": PROFILE[0], **arm.overrides},
        )
        images = per_grade[grade][0].train
        out[grade] = (build_trainer(config, size, len(images)), torch.from_numpy(images), None)
    return out


def draw(trainer, grade: str, conditional: bool, seed: int) -> np.ndarray:
    ddpm = LoadedDDPM(trainer.sampling_model.eval(), trainer.schedule, trainer.unet_config)
    return ddpm.sample(N_SAMPLES, seed=seed, steps=25, grade=grade if conditional else "")


def run_arm(arm: Arm, args, dataset, splits, per_grade, device="cpu") -> list[dict]:
    trainers = trainers_of(arm, args, dataset, per_grade)
    factor = len(GRADES) if arm.conditional else 1  # equal compute: both grades' steps
    test = np.isin(dataset.subjects["subject_id"], splits["test"])
    evaluate = dataset.images[test], dataset.subjects["label"].to_numpy()[test]
    real_train = (
        np.concatenate([per_grade[g][0].train for g in GRADES]),
        np.concatenate([np.full(len(per_grade[g][0].train), LABELS[g]) for g in GRADES]),
    )
    rows, trained_s = [], dict.fromkeys(trainers, 0.0)
    for checkpoint in args.checkpoints:
        for key, (trainer, images, labels) in trainers.items():
            start = time.perf_counter()
            trainer.train_steps(images, factor * checkpoint - trainer.step, labels)
            trained_s[key] += time.perf_counter() - start
        samples = {
            g: draw(trainers["both" if arm.conditional else g][0], g, arm.conditional, args.seed)
            for g in GRADES
        }
        synthetic = balanced(samples, LABELS, args.seed)
        worth = tstr_trtr(synthetic, real_train, evaluate, TSTRSettings(seed=args.seed), device)
        for grade in GRADES:
            row = {"arm": arm.name, "grade": grade, "steps": checkpoint}
            spent = trained_s["both"] / 2 if arm.conditional else trained_s[grade]
            row |= {"train_min": spent / 60, **per_grade[grade][1]}
            row |= sample_scores(samples[grade], per_grade[grade][0], args.seed)
            row |= {k: worth[k] for k in ("tstr_balanced_accuracy", "tstr_roc_auc")}
            row |= {k: worth[k] for k in ("trtr_balanced_accuracy", "trtr_roc_auc")}
            rows.append(row)
            print(json.dumps(row), flush=True)
        np.save(
            args.out / f"samples-{arm.name.replace(':', '_')}-{checkpoint}.npy", samples["HGG"][:16]
        )
    return rows


def plot(frame: pd.DataFrame, path: Path) -> None:
    panels = ("fd_radiomic", "precision", "recall", "memorisation_mean", "tstr_balanced_accuracy")
    fig, axes = plt.subplots(len(GRADES), len(panels), figsize=(4 * len(panels), 7))
    for row, grade in enumerate(GRADES):
        for col, metric in enumerate(panels):
            ax = axes[row, col]
            for arm, part in frame[frame.grade == grade].groupby("arm"):
                ax.plot(part.steps, part[metric], marker="o", label=arm)
            if metric == "fd_radiomic":
                ax.axhline(frame[frame.grade == grade].fd_radiomic_held_out.iloc[0], ls="--", c="k")
                ax.set_yscale("log")
            ax.set_title(f"{grade} {metric}")
            ax.set_xlabel("optimiser steps")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", default="w32:std,w16:std")
    parser.add_argument("--checkpoints", default="250,500,1000,1500,2000")
    parser.add_argument("--mi_weight", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0, help="the DDPMs' and TSTR's seed")
    parser.add_argument("--site", default="phantom-a", choices=("phantom-a", "phantom-b"))
    parser.add_argument("--phantom_seed", type=int, default=0, help="1+: a phantom for choosing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", default="quick", help="paper: 96 px (for a GPU)")
    parser.add_argument("--home", default=str(Path(tempfile.gettempdir()) / "glioma-bench-lc"))
    parser.add_argument("--out", default="learning_curve")
    parser.add_argument(
        "--from_csv", default="", help="a,b,...: join earlier runs' CSVs, print and plot only"
    )
    args = parser.parse_args()
    if args.from_csv:
        frame = pd.concat([pd.read_csv(f) for f in args.from_csv.split(",")], ignore_index=True)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        plot(frame, Path(args.out) / "learning_curve.png")
        return print(markdown_table(frame[SHOWN].round(3)))
    args.checkpoints = [int(v) for v in args.checkpoints.split(",")]
    args.out, PROFILE[0] = Path(args.out), args.profile
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{machine_line()}\n{versions_line(torch)}\n{speed_line()}", flush=True)
    torch.set_num_threads(args.threads)
    print(f"torch threads: {args.threads}", flush=True)
    print(f"site {args.site}, phantom seed {args.phantom_seed}", flush=True)
    dataset, splits = site_data(Path(args.home), args.site, args.phantom_seed)
    per_grade = {}
    for grade in GRADES:
        data, _ = grade_data(dataset, splits, grade, args.seed)
        per_grade[grade] = (data, references(data))
        print(
            f"{grade}: {len(data.train)} training, {len(data.held_out)} held-out images", flush=True
        )
    rows = []
    for text in args.arms.split(","):
        arm = Arm.parse(text, args.mi_weight)
        rows += run_arm(arm, args, dataset, splits, per_grade, resolve_device("auto"))
        frame = pd.DataFrame(rows)
        frame.to_csv(args.out / "learning_curve.csv", index=False)
    plot(frame, args.out / "learning_curve.png")
    print(markdown_table(frame[SHOWN].round(3)))
    print(f"{speed_line()} (after)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
