"""Learning curve of the quick DDPM: what its samples are worth against optimiser steps.

For each arm (a UNet width and an MI setting) one DDPM per grade is trained on the quick
phantom-a site's non-test subjects (``ddpm_scope`` site, so the site's test split is unseen by
every DDPM and TSTR can be evaluated on it), with the quick profile's optimiser, batch,
augmentation and EMA. At each checkpoint, 64 samples per grade (DDIM-25, EMA weights) are
scored: FD_radiomic and KID_radiomic against the training images (beside the held-out real
reference: the DDPM's validation subjects), precision/recall/density/coverage in the same
radiomic space, the share with a T1ce ring (``rings.py``, beside the real training images'
share), the two-sample AUC (``glioma.scoring.two_sample``: a small CNN told to separate the
training images from the samples; 0.5 indistinguishable; beside training vs held-out real),
memorisation (mean nearest-training Pearson r, beside the held-out real images' own), and
TSTR against TRTR (ResNet-18, quick settings) on the test split. Wall time counts training
only. Prints one table; writes learning_curve.csv, learning_curve.png, rings.png (T1ce of each
arm's last HGG samples beside real ones) and every sample set (samples-<arm>-<step>.npz).

    .venv/bin/python benchmarks/bench_learning_curve.py --arms w32:std,w16:std \\
        --checkpoints 250,500,1000,1500,2000 --out /tmp/lc

An arm is ``w<width>:<mi>[:cond][+extra...]`` with <mi> one of ``std``, ``lit`` (the paper's
term as first built: MI in nats at every t, unweighted, raw), ``mi`` / ``nmi`` (nats /
normalised, with the config's weighting, scale and target), ``mi@T`` / ``nmi@T`` (only at
t >= T); the MI weight is --mi_weight. Extras override one DDPM field each: ``+sqrt``,
``+minsnr``, ``+unweighted`` (mi_weighting), ``+rel`` / ``+raw`` (mi_scale), ``+near`` /
``+self`` (mi_target), ``+hminsnr`` (min-SNR-5 Huber), ``+cosine`` (lr schedule), or any
``+field=value`` (``+prediction=v``, ``+schedule=sigmoid``, ``+ema_decay=0``). --phantom_seed 1
gives a phantom the study does not report on (choose forms there); --site phantom-b the other
hospital. ``:cond`` trains one class-conditional network for both grades instead of one per
grade, at equal compute: its checkpoints count twice the steps (both grades' budget), so each
row compares the same optimiser steps in total.
``--samplers ddim25,ddim25:eta1,ddim100,ddpm`` draws each of our checkpoints with each sampler
(rows ``arm~sampler``): the same weights, so the sampler alone differs.

``peer`` (or ``peer+eps+linear`` ...: ``peer.py``) is lucidrains' denoising-diffusion-pytorch
at its defaults on the same images and batches with the same optimiser (``pip install -e
'.[peer]'``): scored at the same checkpoints and, once, at the first arm's training time
(``@time``: equal wall time), each with its raw and its EMA weights (``peer:ema``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

# isort: split
from curve_figures import plot, rings_figure  # noqa: E402
from curve_scores import grade_data, references, sample_scores  # noqa: E402
from machine import machine_line, versions_line  # noqa: E402
from peer import PeerArm, PeerTrainer, schedule_check  # noqa: E402
from speed import speed_line  # noqa: E402

from glioma.config import PrepareConfig, TrainDDPMConfig, build_config  # noqa: E402
from glioma.devices import resolve_device  # noqa: E402
from glioma.diffusion.pyfunc import LoadedDDPM  # noqa: E402
from glioma.names import GRADES, LABELS  # noqa: E402
from glioma.pipeline.inputs import load_prepared  # noqa: E402
from glioma.pipeline.steps.prepare import run_prepare  # noqa: E402
from glioma.pipeline.steps.train_ddpm import build_trainer  # noqa: E402
from glioma.scoring.report import markdown_table  # noqa: E402
from glioma.scoring.settings import TSTRSettings  # noqa: E402
from glioma.scoring.tstr import balanced, train_and_score  # noqa: E402

N_SAMPLES = 64
TIME_CHUNK = 10  # a peer's steps between looks at the clock (equal wall time)
SHOWN = ["arm", "grade", "steps", "train_min", "fd_radiomic", "fd_radiomic_held_out",
         "kid_radiomic", "precision", "recall", "density", "coverage", "ring_share",
         "ring_share_real", "c2st_auc", "c2st_auc_low", "c2st_auc_high", "c2st_auc_held_out",
         "memorisation_mean", "memorisation_held_out_mean", "copy_fraction",
         "tstr_balanced_accuracy", "tstr_roc_auc",
         "trtr_balanced_accuracy", "trtr_roc_auc"]  # fmt: skip
DEVICE = resolve_device("auto")
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


def site_data(home: Path, site: str, phantom_seed: int):
    """The quick phantom site of ``phantom_seed``, prepared once into ``home`` (reused later)."""
    os.environ["GLIOMA_HOME"] = str(home)
    overrides = {"site": site, "profile": PROFILE[0], "seed": phantom_seed}
    prepared = run_prepare(build_config(PrepareConfig, overrides))
    return load_prepared(prepared.run_id)


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


def peer_trainers_of(arm: PeerArm, args, dataset, per_grade) -> dict:
    """grade -> (the peer's trainer, its images, None), with the quick profile's optimiser."""
    out = {}
    for grade in GRADES:
        config = build_config(
            TrainDDPMConfig, {"grade": grade, "seed": args.seed, "profile": PROFILE[0]}
        )
        images = per_grade[grade][0].train
        settings = config.train_settings(len(images))
        trainer = PeerTrainer(arm, settings, dataset.images.shape[-1])
        out[grade] = (trainer, torch.from_numpy(images), None)
    return out


def sampler_of(text: str) -> dict:
    """``ddim25`` (the quick profile's), ``ddim100:eta1`` (DDIM's steps and eta) or ``ddpm``
    (ancestral, all T steps): the keyword arguments of ``LoadedDDPM.sample``."""
    head, _, eta = text.partition(":eta")
    if head == "ddpm":
        return {"sampler": "ddpm"}
    if not head.startswith("ddim") or not head[4:].isdigit():
        raise SystemExit(f"--samplers: {text!r} is not ddimN, ddimN:etaX or ddpm")
    return {"sampler": "ddim", "steps": int(head[4:]), "eta": float(eta or 0.0)}


def draw(trainer, grade: str, conditional: bool, seed: int, sampler: str) -> np.ndarray:
    ddpm = LoadedDDPM(trainer.sampling_model.eval(), trainer.schedule, trainer.unet_config)
    grade = grade if conditional else ""
    return ddpm.sample(N_SAMPLES, seed=seed, grade=grade, **sampler_of(sampler))


@dataclass
class Contender:
    """One arm's trainers, how far they trained and how long it took, and what it draws: one
    sample set per label (ours: one; the peer: its raw and its EMA weights)."""

    name: str
    trainers: dict  # grade or "both" -> (trainer, images, labels)
    conditional: bool = False
    peer: bool = False
    samplers: tuple[str, ...] = ("ddim25",)  # ours: one sample set per sampler
    trained_s: dict = field(default_factory=dict)

    def train_to(self, step: int) -> None:
        factor = len(GRADES) if self.conditional else 1  # equal compute: both grades' steps
        for key, (trainer, images, labels) in self.trainers.items():
            start = time.perf_counter()
            trainer.train_steps(images, factor * step - trainer.step, labels)
            self.trained_s[key] = self.trained_s.get(key, 0.0) + time.perf_counter() - start

    @property
    def seconds(self) -> float:
        return sum(self.trained_s.values())

    def minutes(self, grade: str) -> float:
        return (self.trained_s["both"] / 2 if self.conditional else self.trained_s[grade]) / 60

    def draw(self, seed: int) -> dict[str, dict[str, np.ndarray]]:
        if self.peer:
            sample = lambda g, ema: self.trainers[g][0].sample(N_SAMPLES, seed=seed, ema=ema)  # noqa: E731
            return {
                label: {g: sample(g, ema) for g in GRADES}
                for label, ema in ((self.name, False), (f"{self.name}:ema", True))
            }
        trainer = (
            (lambda g: self.trainers["both"][0])
            if self.conditional
            else (lambda g: self.trainers[g][0])
        )
        named = len(self.samplers) > 1
        return {
            f"{self.name}~{sampler}" if named else self.name: {
                g: draw(trainer(g), g, self.conditional, seed, sampler) for g in GRADES
            }
            for sampler in self.samplers
        }


@dataclass
class Context:
    """The real data every arm is scored against, and TRTR (the same for every arm: once)."""

    per_grade: dict  # grade -> (GradeData, its reference figures)
    evaluate: tuple[np.ndarray, np.ndarray]  # the site's test split: images, labels
    trtr: dict[str, float]

    @classmethod
    def of(cls, dataset, splits, per_grade, seed: int) -> Context:
        test = np.isin(dataset.subjects["subject_id"], splits["test"])
        evaluate = dataset.images[test], dataset.subjects["label"].to_numpy()[test]
        real_train = (
            np.concatenate([per_grade[g][0].train for g in GRADES]),
            np.concatenate([np.full(len(per_grade[g][0].train), LABELS[g]) for g in GRADES]),
        )
        metrics = train_and_score(real_train, evaluate, TSTRSettings(seed=seed), DEVICE)
        trtr = {f"trtr_{k}": metrics[k] for k in ("balanced_accuracy", "roc_auc")}
        return cls(per_grade, evaluate, trtr)


def score_rows(label, step, samples, contender, args, context: Context, worth: bool) -> list:
    """One row per grade of one sample set: fidelity, memorisation, rings, two-sample AUC and,
    when ``worth``, TSTR (both grades' samples against the real test split) beside TRTR."""
    tstr = {}
    if worth:
        synthetic = balanced(samples, LABELS, args.seed)
        metrics = train_and_score(synthetic, context.evaluate, TSTRSettings(seed=args.seed), DEVICE)
        tstr = {f"tstr_{k}": metrics[k] for k in ("balanced_accuracy", "roc_auc")}
    rows = []
    for grade in GRADES:
        data, reference = context.per_grade[grade]
        row = {"arm": label, "grade": grade, "steps": step, "train_min": contender.minutes(grade)}
        row |= reference | sample_scores(samples[grade], data, args.seed) | tstr | context.trtr
        rows.append(row)
        print(json.dumps(row), flush=True)
    name = label.replace(":", "_").replace("+", "_").replace("=", "-")
    np.savez_compressed(args.out / f"samples-{name}-{step}.npz", **samples)
    return rows


def run_contender(contender: Contender, args, context, reference_s: float | None) -> list[dict]:
    """Train to each checkpoint and score there; a peer also stops once at ``reference_s``
    seconds of training (both grades), the first arm's at its last checkpoint: equal wall
    time, scored as ``<label>@time``."""
    rows, stops = [], sorted(args.checkpoints)
    timed = not (contender.peer and reference_s)
    step = 0
    while stops or not timed:
        target = stops[0] if stops else step + TIME_CHUNK
        if not timed:
            target = min(target, step + TIME_CHUNK)
        contender.train_to(target)
        step = target
        if not timed and contender.seconds >= reference_s:
            timed = True
            for label, samples in contender.draw(args.seed).items():
                rows += score_rows(f"{label}@time", step, samples, contender, args, context, True)
        if stops and step == stops[0]:
            stops.pop(0)
            worth = args.tstr == "all" or (args.tstr == "last" and not stops)
            for label, samples in contender.draw(args.seed).items():
                rows += score_rows(label, step, samples, contender, args, context, worth)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", default="w32:std,w16:std")
    parser.add_argument("--checkpoints", default="250,500,1000,1500,2000")
    parser.add_argument("--mi_weight", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0, help="the DDPMs' and TSTR's seed")
    parser.add_argument("--site", default="phantom-a", choices=("phantom-a", "phantom-b"))
    parser.add_argument("--phantom_seed", type=int, default=0, help="1+: a phantom for choosing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--samplers", default="ddim25", help="ddim25,ddim25:eta1,ddim100,ddpm: ours, each scored"
    )
    parser.add_argument(
        "--tstr", default="all", choices=("all", "last", "off"), help="at which checkpoints"
    )
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
        data, _ = grade_data(dataset, splits, grade, args.seed, PROFILE[0])
        per_grade[grade] = (data, references(data))
        print(
            f"{grade}: {len(data.train)} training, {len(data.held_out)} held-out images", flush=True
        )
    rows, reference_s = [], None
    context = Context.of(dataset, splits, per_grade, args.seed)
    for text in args.arms.split(","):
        contender = contender_of(text, args, dataset, per_grade)
        rows += run_contender(contender, args, context, reference_s)
        if reference_s is None and not contender.peer:
            reference_s = contender.seconds  # the first arm's, at its last checkpoint
        frame = pd.DataFrame(rows)
        frame.to_csv(args.out / "learning_curve.csv", index=False)
    plot(frame, args.out / "learning_curve.png")
    rings_figure(frame, per_grade["HGG"][0].train, args.out)
    print(markdown_table(frame[[c for c in SHOWN if c in frame]].round(3)))
    print(f"{speed_line()} (after)", flush=True)


def contender_of(text: str, args, dataset, per_grade) -> Contender:
    """Our arm ``w32:std+...`` or the peer's ``peer+...`` (module docstrings)."""
    if text.startswith("peer"):
        arm = PeerArm.parse(text)
        print(f"{text}: its {arm.schedule} abar within {schedule_check(arm):.1e} of ours")
        return Contender(text, peer_trainers_of(arm, args, dataset, per_grade), peer=True)
    arm = Arm.parse(text, args.mi_weight)
    trainers = trainers_of(arm, args, dataset, per_grade)
    samplers = tuple(args.samplers.split(","))
    return Contender(text, trainers, conditional=arm.conditional, samplers=samplers)


if __name__ == "__main__":
    sys.exit(main())
